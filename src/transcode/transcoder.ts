import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { create, toBinary, type DescMethod, type DescService, type JsonValue, type Message } from "@bufbuild/protobuf";
import { createContextValues, type ConnectError, type ContextValues } from "@connectrpc/connect";
import { codeToString, parseTimeout } from "@connectrpc/connect/protocol-connect";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import type { AdminGate } from "../access/admin-gate.js";
import { unquotable } from "../credential-shapes.js";
import { shownRequestText } from "../core/text.js";
import { arrivalTimedOut, unarrivedCode } from "../request-arrival.js";
import { compileServiceRoutes, type Binding, type Route, type RouteMount } from "./binding.js";
import { Cors } from "./cors.js";
import { errorDetailsJson } from "./error-details.js";
import { HttpError, type TranscodeReason } from "./http-error.js";
import { buildRequestMessage } from "./request.js";
import { send, sendError, sendOutcome, sendRpcResponse, type NodeHeaders, type NodeResponse } from "./response.js";
import { render, RouteTable } from "./route-table.js";

/**
 * A handler may also offer its call without the Connect framing: the request message as the
 * transcoder built it in, the output message (or the error, as the Connect protocol would
 * have reported it) out. The transcoder then skips encoding the request, the Connect
 * handler's reading of it, and decoding the answer.
 */
export type DirectUnary = (input: Message, call: UnaryCall) => Promise<UnaryOutcome>;

/** What a unary call is invoked with, besides its input. */
export interface UnaryCall {
  header: Headers;
  url: string;
  signal: AbortSignal;
  contextValues: ContextValues;
  timeoutMs?: number;
}

/** A unary call's end: its output or its error (as Tessera answers it), and its metadata. */
export type UnaryOutcome = { message: Message; error?: undefined; header: Headers; trailer: Headers } | { message?: undefined; error: ConnectError; header: Headers; trailer: Headers };

export interface TranscoderService extends RouteMount {
  service: DescService;
  /** The service's routes compiled already (compileServiceRoutes with this mount); unset: compiled here. */
  routes?: readonly Route[];
}

export interface TranscoderOptions {
  services: TranscoderService[];
  /** ConnectRouter.handlers: the same handlers Connect serves, so interceptors apply. */
  handlers: UniversalHandler[];
  /** Default 1 MiB; a larger request body is 413. */
  maxBodyBytes?: number;
  /** Allowed web origins ("*" for any); preflights are answered before routing. */
  corsOrigins?: string[];
  /**
   * The google.rpc.ErrorInfo `domain` of the transcoder's own errors: set, each carries an
   * ErrorInfo with its reason (TranscodeReasons), and a google.rpc.BadRequest naming the field
   * when it is about one, in `details`; unset, `details` is empty.
   */
  errorDomain?: string;
  /**
   * Text that is a secret of the configuration (config.ts configuredSecret): an error never
   * quotes it, as it never quotes text of a credential's shape (a path segment, a query
   * parameter's name).
   */
  isSecret?: (text: string) => boolean;
  contextValues?: (req: IncomingMessage | Http2ServerRequest) => ContextValues;
  /**
   * Told about every failure that is not an HTTP answer (a bug, a write that failed): the
   * caller gets a bare 500, so this is the only place its cause can be seen. `route` is the
   * request's method and the matched route's template (`GET /api/authenticationtoken/{token}/user`),
   * never the path's values or the query: they may hold credentials.
   */
  onError?: (error: unknown, route: string) => void;
  /**
   * The admin methods' credential check before the request is read (access/admin-gate.ts): a
   * call without the admin token runs with an empty message, its body and query unread; a call
   * with it whose request is refused (400, 413, 415) is recorded.
   */
  adminGate?: AdminGate;
  /**
   * Told of every request of a route refused before its RPC was called (a body, query or path
   * value that does not parse, a body over maxBodyBytes, a content type no route takes, a
   * timeout header that does not parse), with the RPC and the Connect code name it was answered
   * with ("invalid_argument"). A request of no route is not told of.
   */
  refused?: (rpc: DescMethod, code: string) => void;
}

export interface Transcoder {
  /** Always answers: 404 JSON when no route matches. */
  handle(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): Promise<void>;
  /** Every mounted route; `rpc` is "pkg.Service/Method". */
  readonly routes: ReadonlyArray<{ method: string; path: string; rpc: string }>;
}

const defaultMaxBodyBytes = 1024 * 1024;

// Request headers that describe the HTTP body or the hop, not the call.
const droppedRequestHeaders = new Set([
  "content-type",
  "content-length",
  "content-encoding",
  "accept-encoding",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
]);

const safeAuthority = /^[A-Za-z0-9.\-:[\]]+$/;

/**
 * The longest delay a Node timer takes (one set for longer fires after 1 ms): a
 * `connect-timeout-ms` beyond it (24.8 days) is treated as no deadline (as connect-go treats a
 * timeout it cannot represent), not as one that passes at once.
 */
const maxTimerMs = 2 ** 31 - 1;

/**
 * Builds every route from the services' google.api.http options. Throws on a bad template,
 * a duplicate route, or a bound method the router has no handler for.
 */
export function createTranscoder(opts: TranscoderOptions): Transcoder {
  const handlers = new Map(opts.handlers.map((h) => [h.requestPath, h]));
  const hidden = unquotable(opts.isSecret);
  const table = new RouteTable<Binding>((b) => b.rpcName, hidden);
  /** Each binding's template as text, for reports (onError). */
  const templates = new Map<Binding, string>();
  const routes: Array<{ method: string; path: string; rpc: string }> = [];
  for (const { service, routes: compiled, ...mount } of opts.services) {
    for (const route of compiled ?? compileServiceRoutes(service, mount)) {
      const handler = handlers.get(`/${route.rpcName}`);
      if (!handler) {
        throw new Error(`transcoder: no handler for ${route.rpcName}; register the service on the router`);
      }
      const b: Binding = { ...route, handler };
      table.add(b.httpMethod, b.template, b);
      templates.set(b, render(b.template));
      routes.push({ method: b.httpMethod, path: templates.get(b)!, rpc: b.rpcName });
    }
  }
  const maxBodyBytes = opts.maxBodyBytes ?? defaultMaxBodyBytes;
  const cors = new Cors(opts.corsOrigins ?? []);
  const contextValues = opts.contextValues;
  const details = (reason: TranscodeReason, field?: string, description?: string): JsonValue[] =>
    opts.errorDomain === undefined ? [] : errorDetailsJson(opts.errorDomain, reason, field, description);

  /**
   * The refusal of a path with a malformed escape in a segment compared with a literal (match's
   * `malformed`): a 400 quoting the path as the 404 does, each segment only a variable takes
   * written "*".
   */
  function malformedPath(rawPath: string): HttpError {
    return new HttpError(400, "invalid_argument", "MALFORMED_PATH", `malformed percent-encoding in the path ${table.describePath(rawPath)}`);
  }

  /**
   * The methods a raw path takes, for `Allow`: its routes' methods, and HEAD when its GET route
   * answers one (answersHead).
   */
  function allowedMethods(rawPath: string): string[] {
    const methods = table.methods(rawPath);
    if (!methods.includes("GET")) return methods;
    const get = table.match("GET", rawPath);
    return get.kind === "found" && answersHead(get.match.route) ? [...methods, "HEAD"].sort() : methods;
  }

  /** `matched.binding`: set once the request's route is known (what a report names). */
  async function serve(req: IncomingMessage | Http2ServerRequest, res: NodeResponse, headers: NodeHeaders, matched: { binding?: Binding }): Promise<void> {
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const rawPath = q < 0 ? url : url.slice(0, q);
    const rawQuery = q < 0 ? "" : url.slice(q + 1);

    // HEAD runs the GET route, where that GET has no side effects (answersHead); Node leaves the
    // body out of the answer to a HEAD request.
    const head = method === "HEAD";
    const found = table.match(head ? "GET" : method, rawPath);
    if (found.kind === "not-found") {
      if (found.malformed) throw malformedPath(rawPath);
      throw new HttpError(404, "not_found", "ROUTE_NOT_FOUND", `no route for ${shownRequestText(method, hidden)} ${table.describePath(rawPath)}`);
    }
    if (found.kind === "method-not-allowed" || (head && !answersHead(found.match.route))) {
      // A HEAD to a GET that spends a token or logs in runs nothing: refused before any reading,
      // and before the path is decoded (a 405 whatever its segments hold).
      throw new HttpError(405, "unimplemented", "METHOD_NOT_ALLOWED", `${shownRequestText(method, hidden)} is not allowed on ${table.describePath(rawPath)}`, {
        headers: { allow: allowedMethods(rawPath).join(", ") },
      });
    }
    if (found.malformed) throw malformedPath(rawPath);
    const { route: binding, segments } = found.match;
    matched.binding = binding;
    const header = rpcHeaders(req);
    let message: Message;
    try {
      message = await requestMessage(binding, req, header, segments, rawQuery);
    } catch (e) {
      // A body its client cut short by leaving (its connection closed, its stream reset) is
      // answered to nobody: canceled; one the request timeout cut off was answered 408:
      // deadline_exceeded (request-arrival.ts).
      if (e instanceof HttpError) opts.refused?.(binding.rpc, req.aborted || arrivalTimedOut(req) ? unarrivedCode(req) : e.code);
      throw e;
    }

    const abort = new AbortController();
    // Abort only when the client left before the answer was written: abort() on every finished
    // request builds a DOMException (stack and all) for nothing — ~3% of the server's CPU under load.
    res.once("close", () => {
      if (!res.writableEnded) abort.abort();
    });
    // A GET or HEAD answer a cache may keep gets a validator (response.ts, sendSuccess).
    const conditional = method === "GET" || method === "HEAD" ? { ifNoneMatch: req.headers["if-none-match"] } : undefined;
    const direct = (binding.handler as { invokeUnary?: DirectUnary }).invokeUnary;
    let timeout = parseTimeout(header.get("connect-timeout-ms"), Number.MAX_SAFE_INTEGER);
    if (!timeout.error && timeout.timeoutMs !== undefined && timeout.timeoutMs > maxTimerMs) {
      // Further away than a timer holds (it would fire at once): no deadline.
      header.delete("connect-timeout-ms");
      timeout = {};
    }
    if (direct && !timeout.error) {
      const call = { header, url: rpcUrl(req, binding), signal: abort.signal, contextValues: contextValues?.(req) ?? createContextValues(), timeoutMs: timeout.timeoutMs };
      return sendOutcome(res, binding, await direct(message, call), headers, conditional);
    }
    // A timeout header that does not parse: the handler refuses the call with its error.
    if (timeout.error) opts.refused?.(binding.rpc, codeToString(timeout.error.code));
    const uReq: UniversalServerRequest = {
      httpVersion: req.httpVersion,
      url: rpcUrl(req, binding),
      method: "POST",
      header,
      body: once(toBinary(binding.rpc.input, message)),
      signal: abort.signal,
      contextValues: contextValues?.(req),
    };
    const uRes = await binding.handler(uReq);
    await sendRpcResponse(res, binding, uRes, headers, conditional);
  }

  /** The call's request message; an empty one for an admin call without the admin credential (adminGate). */
  async function requestMessage(binding: Binding, req: IncomingMessage | Http2ServerRequest, header: Headers, segments: readonly string[], rawQuery: string): Promise<Message> {
    const gate = opts.adminGate;
    if (gate === undefined || !gate.isAdmin(binding.rpcName)) return buildRequestMessage(binding, req, segments, rawQuery, maxBodyBytes, hidden);
    if (gate.refuses(binding.rpcName, header)) return create(binding.rpc.input);
    try {
      return await buildRequestMessage(binding, req, segments, rawQuery, maxBodyBytes, hidden);
    } catch (e) {
      // A body that never arrived whole (its client left, the request timeout cut it off) did
      // not fail to parse: the call ended first.
      if (e instanceof HttpError) await (req.aborted || arrivalTimedOut(req) ? gate.cut(binding.rpcName) : gate.malformed(binding.rpcName, e.reason));
      throw e;
    }
  }

  async function handle(req: IncomingMessage | Http2ServerRequest, res: NodeResponse): Promise<void> {
    const headers: NodeHeaders = {};
    const origin = req.headers.origin;
    if (cors.enabled) {
      // Whether the answer carries CORS headers depends on Origin: say so to caches, always.
      headers.vary = cors.vary;
      if (origin !== undefined && Cors.isPreflight(req.method, req.headers)) {
        if (!cors.allows(origin)) {
          return sendError(res, 403, "permission_denied", `origin ${shownRequestText(origin, hidden)} is not allowed`, details("ORIGIN_NOT_ALLOWED"), headers);
        }
        return send(res, 204, cors.preflightHeaders(origin, req.headers["access-control-request-headers"]), undefined);
      }
      if (origin !== undefined && cors.allows(origin)) {
        Object.assign(headers, cors.originHeaders(origin));
      }
    }
    const matched: { binding?: Binding } = {};
    try {
      await serve(req, res, headers, matched);
    } catch (e) {
      if (!(e instanceof HttpError)) opts.onError?.(e, `${shownRequestText(req.method ?? "GET", hidden)} ${matched.binding ? templates.get(matched.binding) : "(no route)"}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof HttpError) {
        Object.assign(headers, e.options.headers);
        return sendError(res, e.status, e.code, e.message, details(e.reason, e.options.field, e.message), headers);
      }
      // Details stay in the server log, never in the answer.
      return sendError(res, 500, "internal", "internal error", details("INTERNAL"), headers);
    }
  }

  return { handle, routes };
}

/**
 * Whether a HEAD is answered on this GET route: only when its method is declared
 * `idempotency_level = NO_SIDE_EFFECTS`. A HEAD must be safe to send (RFC 9110 9.3.2: link
 * checkers, mail scanners and proxies send one to any URL they see), and a HEAD that ran a GET
 * which mints or spends a token, or logs in, would do that unseen. Elsewhere HEAD is 405.
 */
export function answersHead(route: Route): boolean {
  return route.httpMethod === "GET" && route.rpc.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
}

function rpcUrl(req: IncomingMessage | Http2ServerRequest, binding: Binding): string {
  const authority = req.headers[":authority"] ?? req.headers.host;
  const host = typeof authority === "string" && safeAuthority.test(authority) ? authority : "localhost";
  return `http://${host}${binding.handler.requestPath}`;
}

/** The caller's headers, minus body framing, plus what the Connect unary protocol needs. */
function rpcHeaders(req: IncomingMessage | Http2ServerRequest): Headers {
  const header = new Headers();
  const h = req.headers;
  for (const k in h) {
    if (k.charCodeAt(0) === 58 /* ":" */ || droppedRequestHeaders.has(k)) {
      continue;
    }
    const v = h[k];
    if (typeof v === "string") {
      header.append(k, v);
    } else if (Array.isArray(v)) {
      for (const e of v) header.append(k, e);
    }
  }
  header.set("content-type", "application/proto");
  header.set("connect-protocol-version", "1");
  return header;
}

function once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      let done = false;
      return {
        next() {
          if (done) return Promise.resolve({ done: true, value: undefined });
          done = true;
          return Promise.resolve({ done: false, value: bytes });
        },
      };
    },
  };
}
