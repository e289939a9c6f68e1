// Where a request goes: an RPC path (/pkg.Service/Method) to its connect-es handler (a plain
// unary gRPC call to grpc-unary.ts, which answers it as that handler would, for a fraction of
// its cost), any other path to the fallback (the REST transcoder, the probes), except a gRPC,
// gRPC-Web or Connect call to a method no service has, answered UNIMPLEMENTED in its own framing
// (unknownProcedure). CORS comes first, for every path and protocol alike (cors.ts). This is connect-node's adapter
// (packages/connect-node/src/connect-node-adapter.ts: createConnectRouter, a map from request
// path to UniversalHandler, universalRequestFromNodeRequest / universalResponseToNodeResponse)
// owned here, so the response is corrected between the handler and the wire:
// protobuf that does not parse is INVALID_ARGUMENT and `grpc-message` is spec-encoded
// (protocol-errors.ts); an enveloped request body that ends inside an envelope is INVALID_ARGUMENT
// however it is cut (wholeEnvelopes), a body still arriving at the call's deadline is
// DEADLINE_EXCEEDED (untilDue); and a request whose authority is missing or malformed is a 400 rather
// than an exception thrown out of the request listener (which would end the process).
//
// Why correct the answer rather than raise the right code in the first place: connect-es 2.1.2
// has no hook there.
// - The protocol handlers parse the request message themselves: each builds its serializer
//   from the method descriptor (createMethodSerializationLookup -> fromBinary), which throws
//   ConnectError INTERNAL "parse binary: ..."; `binaryOptions` only carries readUnknownFields
//   and recursionLimit, and no serializer can be passed in.
// - For a unary method the message is parsed before the interceptor chain is entered
//   (invokeUnaryImplementation receives it parsed; Connect unary parses in its handler), so no
//   interceptor ever sees the error. A streaming method's interceptor could wrap the message
//   iterable, but that would be a second mechanism for half the cases.
// - Building the per-protocol handlers ourselves (the protocol handler factories +
//   createUniversalMethodHandler) changes nothing: the factories build the serializer inside.
//   Raising INVALID_ARGUMENT at the source would mean copying the three protocol handlers.
// So the answer is corrected where it is produced, per protocol, with connect-es's own codecs;
// the framing is told by the response's content type. What a call pays: a success over gRPC
// one trailer lookup, over Connect unary one header lookup (only a 500 body is read); a
// gRPC-Web or Connect stream is passed through chunk by chunk, its envelope prefixes followed
// so that only the final envelope (trailers, end-stream) is decoded. test/server/dispatch.test.ts
// pins connect-es's behaviour, so an upgrade that changes it is noticed.
import { isUtf8 } from "node:buffer";
import { promisify } from "node:util";
import zlib from "node:zlib";
import type http from "node:http";
import type http2 from "node:http2";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, createConnectRouter, createServiceImplSpec, type ConnectRouter, type ConnectRouterOptions, type ContextValues } from "@connectrpc/connect";
import type { Compression, UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { AdminGate } from "../access/admin-gate.js";
import { addAnswerHeaders } from "../access/context.js";
import { CallEnd, callEndKey, currentCall } from "../call-scope.js";
import type { Logger } from "../logger.js";
import type { Cors } from "../transcode/cors.js";
import { entityTag, noneMatch, storable } from "../transcode/conditional.js";
import { applyCors } from "./cors.js";
import { sendErrorBody, sendMethodNotAllowed, serverError } from "./error-details.js";
import { describeError } from "./error-report.js";
import type { DirectUnary } from "../transcode/transcoder.js";
import {
  answerUnaryConnect,
  answerUnaryGrpc,
  BodyCutError,
  envelope,
  errorFramingOf,
  invokeUnary,
  nodeHeaders,
  plainUnaryConnect,
  plainUnaryGrpc,
  readBody,
  sendFramedError,
  type GrpcUnaryOptions,
  type UnarySpec,
} from "./grpc-unary.js";
import { createResponseCorrection } from "./protocol-errors.js";
import { arrivalTimedOut } from "../request-arrival.js";
import { nameOfCode, protocolOf, refusedBeforeInterceptors, type RefusalObserver } from "./logging-interceptor.js";
import { normalizeTimeouts, requestedTimeoutMs } from "./deadline-interceptor.js";
import { unquotable } from "../credential-shapes.js";
import { quotedRequestText, unroutedPath } from "../core/text.js";

export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;
export type NodeHandler = (req: NodeRequest, res: NodeResponse) => void;

/** connect-es's default for compressMinBytes (protocol/limit-io.ts): smaller answers go uncompressed. */
const defaultCompressMinBytes = 1024;

export interface DispatcherOptions extends ConnectRouterOptions {
  /** Registers the services (router.service). */
  routes(router: ConnectRouter): void;
  /** CORS, applied to every request before routing (preflights answered here). */
  cors?: Cors;
  contextValues(req: NodeRequest): ContextValues;
  logger: Logger;
  /**
   * The admin methods' credential check before the message is read (access/admin-gate.ts): a
   * call without the admin token is served an empty message in its own framing, its body
   * discarded; a call with it whose message does not parse (on the unary paths of grpc-unary.ts)
   * is recorded.
   */
  adminGate?: AdminGate | undefined;
  /**
   * Text that is a secret of the configuration (config.ts configuredSecret): the answer to an
   * unknown RPC never quotes it, as it never quotes text of a credential's shape.
   */
  isSecret?: (text: string) => boolean;
  /**
   * Told of every call to a method of the router refused before it reached the interceptors
   * (its message, body, content type, timeout header or HTTP method refused, by this dispatcher
   * or by connect-es), with the code its client got; a call the interceptors saw is theirs to
   * tell of. A call to a method no service has is not told of (its names are the client's).
   */
  refused?: RefusalObserver | undefined;
}

export interface Dispatcher {
  /**
   * One handler per RPC, as the router built them, their answers corrected as on the wire
   * (the REST transcoder calls them).
   */
  readonly handlers: UniversalHandler[];
  /**
   * The request listener: RPC paths to their handler, every other path to `fallback`.
   * `fallbackOwns`: whether a path's first segment is one of `fallback`'s routes' (the REST
   * routes'), which a Connect call to an unknown procedure is then never answered in place of.
   */
  listener(fallback: NodeHandler, fallbackOwns?: (firstSegment: string) => boolean): NodeHandler;
}

export function createDispatcher(o: DispatcherOptions): Dispatcher {
  const { routes, contextValues, logger, cors, adminGate, isSecret, refused: onRefused, ...routerOptions } = o;
  const hidden = unquotable(isSecret);
  // connect-node's adapter default: requests and answers may be gzip or brotli (answers in
  // brotli at answerBrotliQuality).
  const acceptCompression = (routerOptions.acceptCompression ?? [compressionGzip, answerBrotli]).map(cutShortIsInvalid);
  // Unknown fields of a request message are skipped, not kept: nothing reads them, and
  // protobuf-es keeps each one (an object and a copy of its bytes), so a message of 64 KiB of
  // two-byte unknown fields cost some fifteen times the CPU of a call without them.
  const binaryOptions = { ...routerOptions.binaryOptions, readUnknownFields: false };
  const router = createConnectRouter({ ...routerOptions, acceptCompression, binaryOptions });
  // The unary methods' implementations, for the unary gRPC path (grpc-unary.ts); a service
  // registered with options of its own (interceptors, limits) is left to connect-es alone.
  const unary = new Map<string, UnarySpec>();
  routes(
    Object.assign(Object.create(router) as ConnectRouter, {
      service(...args: Parameters<ConnectRouter["service"]>) {
        const [service, impl, options] = args;
        if (options === undefined) {
          for (const spec of Object.values(createServiceImplSpec(service, impl).methods)) {
            if (spec.kind === "unary") unary.set(`/${service.typeName}/${spec.method.name}`, spec as UnarySpec);
          }
        }
        return router.service(...args);
      },
    }),
  );
  const grpcUnary: GrpcUnaryOptions = {
    interceptors: routerOptions.interceptors ?? [],
    readMaxBytes: routerOptions.readMaxBytes ?? 0xffffffff,
    binaryOptions,
    jsonOptions: routerOptions.jsonOptions,
    compressions: acceptCompression,
    compressMinBytes: routerOptions.compressMinBytes ?? defaultCompressMinBytes,
    // (adminGate.malformed() records admin methods' calls only.) A message that does not parse
    // is refused before the interceptors.
    malformed:
      adminGate || onRefused
        ? async (spec, error, protocol) => {
            onRefused?.(spec.method.parent.typeName, spec.method.name, protocol, nameOfCode(error.code));
            await adminGate?.malformed(`${spec.method.parent.typeName}/${spec.method.name}`, error.findDetails(ErrorInfoSchema)[0]?.reason);
          }
        : undefined,
  };
  const paths = new Map(router.handlers.map((h) => [h.requestPath, h]));
  // The admin methods' handlers, found once: every other call passes the gate with one lookup.
  const procedureOf = (h: (typeof router.handlers)[number]) => `${h.service.typeName}/${h.method.name}`;
  const adminHandlers = new Set(adminGate ? router.handlers.filter((h) => adminGate.isAdmin(procedureOf(h))) : []);
  const serviceNames = new Set(router.handlers.map((h) => h.service.typeName));
  // An error answered by connect-es to a call the interceptors never saw (scope.api unset) is a
  // refusal; told only where the dispatcher serves the call itself (the REST transcoder tells of
  // its own).
  const correct = createResponseCorrection({
    compressions: acceptCompression,
    jsonOptions: routerOptions.jsonOptions,
    hidden,
    // A request its client left before it arrived whole (its connection closed, its stream
    // reset: the call's signal aborted) is answered to nobody: canceled, whatever connect-es
    // made of what it had read; one the request timeout cut off (arrived(): DEADLINE_EXCEEDED)
    // was answered 408, whatever became of its connection after.
    failed: onRefused && ((call, protocol, code) => {
      if (refusedBeforeInterceptors()) onRefused(call.service.typeName, call.method.name, protocol, code !== Code.DeadlineExceeded && currentCall()?.signal?.aborted ? "canceled" : nameOfCode(code));
    }),
  });
  /** A refusal answered here, before connect-es: `code` in the protocol the request's content type names. */
  const refuse = (h: UniversalHandler, contentType: string | null | undefined, code: Code) => {
    onRefused?.(h.service.typeName, h.method.name, protocolOf(contentType ?? null, ""), nameOfCode(code));
  };
  // Each unary handler also offers the call without its Connect framing (the REST transcoder
  // builds the message itself, so it need not be encoded, decoded, and the answer likewise).
  const handlers = router.handlers.map((h): UniversalHandler => {
    const spec = unary.get(h.requestPath);
    const direct: DirectUnary | undefined = spec && ((input, call) => invokeUnary(spec, grpcUnary.interceptors, "connect", call, "application/proto", () => input));
    return Object.assign((req: UniversalServerRequest) => h(req).then((res) => correct(withAnswerHeaders(req, res))), h, direct && { invokeUnary: direct });
  });

  const failed = (h: UniversalHandler, res: NodeResponse) => (e: unknown) => {
    // A client that went away (its stream closed under a write: Canceled) is nothing to report.
    const code = ConnectError.from(e).code;
    if (code !== Code.Aborted && code !== Code.Canceled) {
      logger.error("rpc answer failed", { procedure: `${h.service.typeName}/${h.method.name}`, ...describeError(e) });
    }
    // The handlers answer every error themselves: this is a write that failed, or a bug. Do not
    // leave a request that got no answer at all hanging until its timeout.
    if (!res.headersSent) {
      try {
        res.writeHead(500);
        res.end();
      } catch {
        // the stream is gone
      }
    }
  };

  /** `text`: a gRPC-Web text call (its answer goes out in base64). */
  const serve = (h: UniversalHandler, uReq: UniversalServerRequest, res: NodeResponse, text = false): Promise<void> =>
    h(uReq).then((uRes) => {
      if (uRes.status === 415 && uRes.header === undefined) {
        refuse(h, uReq.header.get("content-type"), Code.InvalidArgument);
        return unsupportedMediaType(res, uReq, hidden);
      }
      if (uRes.status === 505 && !uRes.body) {
        refuse(h, uReq.header.get("content-type"), Code.Unimplemented);
        return bidiOverHttp1(res, uReq);
      }
      const out = correct(withAnswerHeaders(uReq, uRes), h);
      const send = (r: UniversalServerResponse) => toNodeResponse(text ? grpcWebTextResponse(r) : r, res);
      if (uReq.method === "GET") return Promise.resolve(out).then((r) => validated(r, uReq.header.get("if-none-match"))).then(send);
      return out instanceof Promise ? out.then(send) : send(out);
    });

  return {
    handlers,
    listener(fallback, fallbackOwns = () => false) {
      return (req, res) => {
        if (cors && applyCors(cors, req, res, hidden)) return;
        const url = req.url ?? "";
        const q = url.indexOf("?");
        const path = q < 0 ? url : url.slice(0, q);
        const h = paths.get(path);
        if (!h) return unknownProcedure(req, res, url, path, serviceNames, hidden, fallbackOwns) || fallback(req, res);
        if (!h.allowedMethods.includes(req.method ?? "")) {
          // connect-es answers a bare 405, without the Allow a 405 must carry (RFC 9110 15.5.6).
          refuse(h, req.headers["content-type"], Code.Unimplemented);
          sendMethodNotAllowed(res, req.method, path, h.allowedMethods.join(", "), hidden);
          return;
        }
        const scope = currentCall();
        if (scope) scope.requestType = h.method.input;
        let uReq: ReturnType<typeof universalRequest>;
        try {
          // Without a query, the target is the method's path as the router has it.
          uReq = universalRequest(req, res, contextValues(req), q < 0);
        } catch {
          // No Host (HTTP/1.0) or :authority, or one that is no URL authority.
          refuse(h, req.headers["content-type"], Code.InvalidArgument);
          badAuthority(res);
          return;
        }
        // Until the deadline interceptor sets the call's own (the same, or linked to it).
        if (scope) scope.signal = uReq[callEndKey];
        // An empty coding header names no coding: identity, as connect-go (its compression pools
        // take "" for identity) and grpc-go (`rc != "" && rc != identity`) take it, and as a Connect
        // GET's empty `compression` is (withoutEmptyCompression). connect-es refused it as the
        // unknown compression "" (501 unimplemented; gRPC 12).
        for (const name of codingHeaders) if (req.headers[name] === "") uReq.header.delete(name);
        // An admin call without the admin token: an empty message instead of its own, which is
        // not read (access/admin-gate.ts); the access check answers it.
        const refused = adminHandlers.has(h) && adminGate!.refuses(procedureOf(h), uReq.header);
        if (req.method === "GET" && q >= 0 && h.allowedMethods.includes("GET")) {
          // connect-es compresses the answer as Accept-Encoding allows, and a GET answer may be
          // cached: the cache must tell the variants apart (after CORS's Vary: Origin).
          const vary = res.getHeader("vary");
          res.setHeader("vary", vary === undefined ? "Accept-Encoding" : `${String(vary)}, Accept-Encoding`);
          const emptied = refused ? withEmptyMessage(uReq.url) : undefined;
          if (emptied !== undefined) {
            uReq.url = emptied;
          } else {
            if (notBase64Message(url, q)) {
              refuse(h, undefined, Code.InvalidArgument);
              malformedRequest(res, "the message query parameter is not base64 (base64=1)");
              return;
            }
            // Only a percent-escape can carry a byte that is no UTF-8.
            if (url.includes("%", q)) {
              const bytes = messageBytesNotText(uReq.url);
              if (bytes) uReq.url = withBase64Message(uReq.url, bytes);
            }
            const identity = withoutEmptyCompression(uReq.url);
            if (identity !== undefined) uReq.url = identity;
          }
        }
        const typed = grpcTypeWithParameters.exec(req.headers["content-type"] ?? "");
        if (typed) uReq.header.set("content-type", typed[1]!.toLowerCase());
        else {
          const json = utf8JsonType(req.headers["content-type"] ?? "");
          if (json) uReq.header.set("content-type", json);
        }
        // The caller's deadline holds while its body arrives too (connect-es starts it only once
        // the message is read): performance.now() at which the body is due, if it has one.
        const due = bodyDue(req, uReq.header);
        const empty = refused ? emptyMessage(req, uReq) : undefined;
        if (empty) req.resume();
        if (grpcWebText.test(req.headers["content-type"] ?? "")) {
          // gRPC-Web's text mode, which connect-es does not serve: its binary framing in base64.
          uReq.header.set("content-type", "application/grpc-web+proto");
          uReq.body = empty ? bytes([empty]) : wholeEnvelopes(base64Decoded(untilDue(arrived(req), due)));
          serve(h, uReq, res, true).catch(failed(h, res));
          return;
        }
        const spec = unary.get(path);
        const framing = spec && plainUnaryGrpc(req, uReq.header.get("content-type"));
        const connectType = spec && !framing ? plainUnaryConnect(req) : undefined;
        if (spec && (framing || connectType)) {
          (empty ? Promise.resolve({ chunks: [empty], size: empty.length, done: true }) : readBody(req, framing ? grpcUnary.readMaxBytes + 5 : grpcUnary.readMaxBytes, due))
            .then(async (read) => {
              if (read.done) {
                const body = Buffer.concat(read.chunks, read.size);
                // The request itself (header, url, signal, contextValues), its signal not yet made.
                const request = uReq;
                const answered = framing
                  ? await answerUnaryGrpc(spec, grpcUnary, framing, res, body, request)
                  : await answerUnaryConnect(spec, grpcUnary, connectType!, res, body, request);
                if (answered) return;
                uReq.body = bytes([body]);
              } else {
                uReq.body = bytes(read.chunks, untilDue(arrived(req), due)[Symbol.asyncIterator]());
              }
              if (framing) uReq.body = wholeEnvelopes(uReq.body);
              await serve(h, uReq, res);
            })
            .catch((e: unknown) => {
              // Its client left before the request arrived whole: nobody is answered. Or the
              // request timeout cut it off: answered 408 DEADLINE_EXCEEDED (request-arrival.ts).
              if (e instanceof BodyCutError) {
                refuse(h, uReq.header.get("content-type"), arrivalTimedOut(req) ? Code.DeadlineExceeded : Code.Canceled);
                // An admin call whose credential let its message be read: canceled.
                if (adminHandlers.has(h)) void adminGate!.cut(procedureOf(h));
              }
              failed(h, res)(e);
            });
          return;
        }
        uReq.body = empty ? bytes([empty]) : untilDue(arrived(req), due);
        if (enveloped.test(uReq.header.get("content-type") ?? "")) uReq.body = wholeEnvelopes(uReq.body);
        serve(h, uReq, res).catch(failed(h, res));
      };
    },
  };
}

/**
 * Writes `u` to `res`: connect-node's universalResponseToNodeResponse, but for a write that waits
 * for room. That one waited for "drain" or "error", and a response whose stream is reset (by its
 * client, or by h2-guard.ts once it stalled for the idle timeout) or whose connection closes
 * emits neither, only "close": a call whose answer was held back by a client that read nothing
 * then never ended (its handler's iterator left suspended, its log line and metrics never
 * written). Here the wait also ends at "close", the write failing as CANCELED; a write that fails
 * is passed to the body's iterator (`throw`), which is closed (`return`) whatever happens.
 */
async function toNodeResponse(u: UniversalServerResponse, res: NodeResponse): Promise<void> {
  const it = u.body?.[Symbol.asyncIterator]();
  let writing = false;
  try {
    if (it !== undefined) {
      // The headers go after the first chunk: the handler may still set some until then.
      let chunk = await it.next();
      // Not on an answer already ended: the listener's to a call the request timeout cut off
      // (listener.ts refuseNotArrived), whose body then failed. A chunk is then written to a
      // closed answer, which fails (CANCELED), as when the client left; with none, the trailer
      // is still read (its error told of: protocol-errors.ts), and nothing more goes out.
      if (!res.writableEnded) res.writeHead(u.status, u.header && nodeHeaders(u.header));
      for (; chunk.done !== true; chunk = await it.next()) {
        writing = true;
        await written(res, chunk.value);
        writing = false;
      }
    }
    if (!res.headersSent) res.writeHead(u.status, u.header && nodeHeaders(u.header));
    // Read once: a gRPC answer's trailer is corrected (and its error told of) as it is read.
    const trailer = u.trailer;
    if (trailer) res.addTrailers(nodeHeaders(trailer));
    res.end();
  } catch (e) {
    const error = writeError(e);
    if (writing) it?.throw?.(error).catch(() => {});
    throw error;
  } finally {
    it?.return?.().catch(() => {});
  }
}

/** Resolves once `chunk` is written or buffered with room to spare; rejects when `res` fails or closes first. */
function written(res: NodeResponse, chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    if (res.errored) return reject(res.errored);
    if (res.destroyed) return reject(closedError());
    const settle = (error?: unknown) => {
      res.off("drain", onDrain);
      res.off("error", onError);
      res.off("close", onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onDrain = () => settle();
    const onError = (e: unknown) => settle(e);
    const onClose = () => settle(closedError());
    res.on("drain", onDrain);
    res.on("error", onError);
    res.on("close", onClose);
    // A write that fails (the stream already closed) calls back with its error; what failed it
    // is then also emitted as "error", taken by this listener rather than thrown.
    const flushed = (res as { write(chunk: Uint8Array, cb: (e?: Error | null) => void): boolean }).write(chunk, (e) => {
      if (e) {
        res.once("error", () => {});
        settle(e);
      }
    });
    if (flushed) settle();
  });
}

const closedError = (cause?: unknown) => new ConnectError("the stream closed before its answer was written", Code.Canceled, undefined, undefined, cause);

/**
 * A write's failure as a ConnectError: CANCELED when the stream or connection is gone (the call
 * is then logged as one its client abandoned, as when it leaves between two messages).
 */
function writeError(e: unknown): ConnectError {
  if (e instanceof ConnectError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  const gone = code === "ERR_STREAM_DESTROYED" || code === "ERR_HTTP2_INVALID_STREAM" || code === "ECONNRESET" || code === "ERR_STREAM_WRITE_AFTER_END";
  return gone ? closedError(e) : ConnectError.from(e, Code.Internal);
}

/**
 * `res`, the answer connect-es made, with the call's answer headers (answerHeaders) in its
 * headers: in every framing, an error's too (connect-es puts an error's metadata in a gRPC
 * trailer or the gRPC-Web trailer envelope). A unary call's interceptors have all run by then.
 */
function withAnswerHeaders(req: UniversalServerRequest, res: UniversalServerResponse): UniversalServerResponse {
  addAnswerHeaders(req.contextValues, res.header);
  return res;
}

/**
 * The request as connect-es's handlers take it: what connect-node's
 * universalRequestFromNodeRequest builds, but for two per-call costs. Its signal aborts only
 * when the client left before the answer was written (connect-node aborts it when every
 * response closes, and an abort without a reason builds a DOMException, stack trace and all:
 * 3-5 % of a no-op call's CPU, bench/profile.ts); and the body is the Node request itself (an
 * async iterable of Buffers) rather than a generator around it. Throws when the request has
 * no usable authority. `routerPath`: the request target is exactly one of the router's paths
 * (`/package.Service/Method`, no query), which the URL parser leaves as it is: its URL is then
 * the origin (urlOrigin) and the path.
 */
export function universalRequest(req: NodeRequest, res: NodeResponse, contextValues: ContextValues, routerPath = false): RoutedRequest {
  const authority = req.httpVersionMajor === 2 ? (req as http2.Http2ServerRequest).authority : req.headers.host;
  if (!authority) throw new Error("no authority");
  let encrypted = false;
  try {
    encrypted = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
  } catch {
    // an HTTP/2 stream whose session is gone: its socket proxy throws
  }
  const base = `${encrypted ? "https" : "http"}://${authority}`;
  const url = routerPath ? urlOrigin(base) + req.url : new URL(req.url ?? "", base).toString();
  const end = new CallEnd();
  res.once("close", () => {
    if (!res.writableEnded) end.abort(new ConnectError("the client closed the request", Code.Canceled));
  });
  const header = webHeaders(req.headers);
  if (req.headers["grpc-timeout"] !== undefined || req.headers["connect-timeout-ms"] !== undefined) normalizeTimeouts(header);
  return new RoutedRequest(req.httpVersion, req.method ?? "", url, header, req as AsyncIterable<Uint8Array>, end, contextValues);
}

/**
 * A request as connect-es's handlers take it, its signal made when something asks for it
 * (call-scope.ts CallEnd): connect-es's handlers do at once, the unary paths of grpc-unary.ts
 * only for a call that needs it. A class, for its getter: an object literal with one costs V8
 * a map of its own, several µs a call (about what the signal costs).
 */
class RoutedRequest implements UniversalServerRequest {
  readonly [callEndKey]: CallEnd;

  constructor(
    readonly httpVersion: string,
    readonly method: string,
    public url: string,
    readonly header: Headers,
    public body: AsyncIterable<Uint8Array>,
    end: CallEnd,
    readonly contextValues: ContextValues,
  ) {
    this[callEndKey] = end;
  }

  get signal(): AbortSignal {
    return this[callEndKey].signal;
  }
}

/** urlOrigin's answers by base; a client may name any authority, so it holds a few at most. */
const origins = new Map<string, string>();

/**
 * What precedes the path in the URL of an absolute path (`/...`) against `base` (scheme and
 * authority): the URL parser's scheme, credentials, host and port, as it writes them (a
 * lower-case host, no default port). Parsed once per base: a URL parse (two, the base's and
 * the target's) was about 3 % of a gRPC token check's CPU (bench/profile.ts). Throws as the
 * parser does when `base` has no valid authority.
 */
function urlOrigin(base: string): string {
  let origin = origins.get(base);
  if (origin === undefined) {
    origin = new URL("/", base).href.slice(0, -1);
    if (origins.size >= 32) origins.clear();
    origins.set(base, origin);
  }
  return origin;
}

/**
 * A Connect GET answer that a cache may store (its handler set a Cache-Control without
 * no-store), as the REST transcoder answers one (transcode/conditional.ts): a strong ETag of the
 * bytes sent, compressed as they are sent, so the gzip and identity answers (which Vary:
 * Accept-Encoding tells apart) have tags of their own; and 304, without the body and its
 * Content-Type, Content-Encoding and Content-Length, when If-None-Match names it.
 */
async function validated(r: UniversalServerResponse, ifNoneMatch: string | null): Promise<UniversalServerResponse> {
  if (r.status !== 200 || !storable(r.header?.get("cache-control"))) return r;
  const chunks: Uint8Array[] = [];
  if (r.body) for await (const chunk of r.body) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  const header = new Headers(r.header);
  const tag = entityTag(body);
  header.set("etag", tag);
  if (noneMatch(ifNoneMatch ?? undefined, tag)) {
    for (const name of ["content-type", "content-encoding", "content-length"]) header.delete(name);
    return { status: 304, header, ...(r.trailer && { trailer: r.trailer }) };
  }
  return { ...r, header, body: bytes([body]) };
}

const brotliCompress = promisify(zlib.brotliCompress);

/**
 * The brotli quality answers are compressed at: about gzip's cost at its default level (some
 * 3 ms of CPU for reflection's 70 KB answer describing JwtService's file and its imports, a fifth
 * larger than at quality 11), as CDNs compress answers made for one request. connect-node's
 * compressionBrotli compresses at zlib's default, quality 11, made for files compressed once
 * and served many times: some 0.1 s of CPU for that answer, thirty times gzip's, in libuv's
 * threads (argon2's too). A client without any credential asking for it in br
 * (`grpc-accept-encoding: br`, `connect-accept-encoding`, `accept-encoding`) 30 times in one
 * reflection stream, 1 KB sent, cost the server over 3 s of CPU.
 */
const answerBrotliQuality = 4;

/** connect-node's brotli, its compression at answerBrotliQuality (decompression its own). */
const answerBrotli: Compression = {
  name: compressionBrotli.name,
  compress: (bytes) =>
    brotliCompress(bytes, {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: answerBrotliQuality, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.byteLength },
    }).then((b) => (b.buffer instanceof ArrayBuffer ? (b as Uint8Array<ArrayBuffer>) : new Uint8Array(b))),
  decompress: (bytes, readMaxBytes) => compressionBrotli.decompress(bytes, readMaxBytes),
};

/**
 * `c`, but compressed request data that ends early (zlib's Z_BUF_ERROR, "unexpected end of
 * file": a body or an envelope cut short) is INVALID_ARGUMENT, as data that is no gzip or
 * brotli at all already is: connect-node's decompressors leave that one error code out of their
 * mapping and raise INTERNAL "decompression failed", a 500 (gRPC: 13) for a client's mistake,
 * in every protocol. Any other outcome is connect-node's own.
 */
function cutShortIsInvalid(c: Compression): Compression {
  return {
    name: c.name,
    compress: (bytes) => c.compress(bytes),
    decompress: (bytes, readMaxBytes) =>
      c.decompress(bytes, readMaxBytes).catch((e: unknown) => {
        if (e instanceof ConnectError && e.code === Code.Internal && (e.cause as { code?: unknown } | undefined)?.code === "Z_BUF_ERROR") {
          throw new ConnectError(e.rawMessage, Code.InvalidArgument, undefined, undefined, e.cause);
        }
        throw e;
      }),
  };
}

/**
 * A binary gRPC or gRPC-Web content type followed by parameters ("application/grpc;
 * charset=utf-8"), the type in group 1. PROTOCOL-HTTP2's Content-Type has none, and connect-es
 * answers 415; grpc-go serves such a type as protobuf (grpcutil.ContentSubtype reads what follows
 * ';' as a codec name, finds none, and falls back to proto) and grpc-js serves any type that
 * starts with "application/grpc". So it is served as its type, the parameters left out.
 * gRPC+JSON takes a UTF-8 charset alone (utf8JsonType).
 */
const grpcTypeWithParameters = /^(application\/grpc(?:-web)?(?:\+proto)?)[ \t]*;/i;

/** The JSON content types of the RPC protocols: Connect's unary and streaming ones, gRPC's, gRPC-Web's. */
const rpcJsonTypes = new Set(["application/json", "application/connect+json", "application/grpc+json", "application/grpc-web+json"]);

/**
 * One parameter of a media type, after the previous one (RFC 9110 8.3.1: `OWS ";" OWS [
 * parameter ]`, a parameter `token "=" ( token / quoted-string )`), read from `lastIndex` on: its
 * name in group 1 and value in group 2, both absent for an empty parameter.
 */
const mediaTypeParameter = /[ \t]*;[ \t]*(?:([!#$%&'*+.^_`|~0-9A-Za-z-]+)=([!#$%&'*+.^_`|~0-9A-Za-z-]+|"(?:[\t !#-[\]-~]|\\[\t -~])*"))?/y;

/**
 * The bare type of an RPC JSON content type whose parameters say no more than that it is UTF-8,
 * in a spelling connect-es's rule (`; charset=utf-8`, one optional space) does not take: RFC 9110
 * 8.3.1 lets white space surround the ";" and a parameter be empty, and 8.3.2 makes a quoted
 * value the same as the token (`charset="utf-8"` is `charset=utf-8`). connect-go reads such a
 * type as its own (mime.ParseMediaType); connect-es answered 415. Undefined for any other type: a
 * charset other than UTF-8, one given twice, or another parameter keeps its 415.
 */
function utf8JsonType(contentType: string): string | undefined {
  const semicolon = contentType.indexOf(";");
  if (semicolon < 0) return undefined;
  const type = contentType.slice(0, semicolon).replace(/[ \t]+$/, "").toLowerCase();
  if (!rpcJsonTypes.has(type)) return undefined;
  let charsets = 0;
  mediaTypeParameter.lastIndex = semicolon;
  for (;;) {
    const at = mediaTypeParameter.lastIndex;
    const p = mediaTypeParameter.exec(contentType);
    if (!p) return /^[ \t]*$/.test(contentType.slice(at)) && charsets <= 1 ? type : undefined;
    if (p[1] === undefined) continue;
    const value = p[2]!.startsWith('"') ? p[2]!.slice(1, -1).replace(/\\(.)/g, "$1") : p[2]!;
    if (p[1].toLowerCase() !== "charset" || !/^utf-?8$/i.test(value)) return undefined;
    charsets++;
  }
}

/** gRPC-Web's text mode (the grpc-web library's default): base64 of its binary framing, both ways. */
const grpcWebText = /^application\/grpc-web-text(?:\+proto)?[ \t]*(?:;|$)/i;

/** A base64 segment: whole 4-character groups, padding only at its end. */
const base64Segment = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The bytes of a gRPC-Web text body, however its base64 is cut into chunks. A client may send
 * several padded segments (one per write); anything else (a character outside base64, a body
 * that ends inside a group) is INVALID_ARGUMENT. The segments of a chunk are handed on together,
 * in one chunk: one segment a byte made as many chunks as bytes.
 */
async function* base64Decoded(body: AsyncIterable<Buffer>): AsyncGenerator<Uint8Array> {
  const invalid = () => new ConnectError("the gRPC-Web text body is not base64", Code.InvalidArgument);
  let carry = "";
  for await (const chunk of body) {
    const text = carry + chunk.toString("latin1");
    const whole = text.length - (text.length % 4);
    carry = text.slice(whole);
    const decoded: Buffer[] = [];
    // Each padded segment ends at its "=" (a group of 4 with it).
    for (const segment of text.slice(0, whole).split(/(?<==)(?=[^=])/)) {
      if (!base64Segment.test(segment)) {
        // What came before it still goes on first, as it did segment by segment.
        if (decoded.length > 0) yield Buffer.concat(decoded);
        throw invalid();
      }
      if (segment.length > 0) decoded.push(Buffer.from(segment, "base64"));
    }
    if (decoded.length > 0) yield decoded.length === 1 ? decoded[0]! : Buffer.concat(decoded);
  }
  if (carry.length > 0) throw invalid();
}

/** A gRPC-Web answer as text mode sends it: each chunk in base64 (padded), its content type. */
function grpcWebTextResponse(r: UniversalServerResponse): UniversalServerResponse {
  if (!r.body || !(r.header?.get("content-type") ?? "").startsWith("application/grpc-web")) return r;
  const header = new Headers(r.header);
  header.set("content-type", "application/grpc-web-text+proto");
  const body = r.body;
  return {
    ...r,
    header,
    body: (async function* () {
      for await (const chunk of body) yield Buffer.from(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("base64"), "latin1");
    })(),
  };
}

/**
 * When the body of a POST with a deadline (`grpc-timeout`, `connect-timeout-ms`, as the
 * deadline interceptor reads them) is due: performance.now() at the deadline. Undefined without
 * one, or for a GET (no body).
 */
function bodyDue(req: NodeRequest, header: Headers): number | undefined {
  if (req.method !== "POST") return undefined;
  const timeoutMs = requestedTimeoutMs(header);
  return timeoutMs === undefined ? undefined : performance.now() + timeoutMs;
}

/**
 * The request's body as connect-es reads it, failing DEADLINE_EXCEEDED when the request timeout
 * cut it off (its 408 sent: request-arrival.ts): over HTTP/2 the body then ends as its stream
 * closes, and would be read as whole; over HTTP/1.1 its connection closes, as when a client leaves.
 */
async function* arrived(req: NodeRequest): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) yield chunk;
  } catch (e) {
    if (!arrivalTimedOut(req)) throw e;
  }
  if (arrivalTimedOut(req)) throw new ConnectError("the request did not arrive in time", Code.DeadlineExceeded);
}

/**
 * `body`, which fails with DEADLINE_EXCEEDED (connect-es's message for a deadline) when it has
 * not ended by `due`: each protocol's handler answers that error as it answers one it raised
 * itself. `body` as it is without a deadline.
 */
function untilDue(body: AsyncIterable<Buffer>, due: number | undefined): AsyncIterable<Buffer> {
  if (due === undefined) return body;
  return (async function* () {
    let timer: NodeJS.Timeout | undefined;
    const passed = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConnectError("the operation timed out", Code.DeadlineExceeded)), Math.max(0, due - performance.now()));
    });
    passed.catch(() => {});
    const it = body[Symbol.asyncIterator]();
    try {
      for (let r = await Promise.race([it.next(), passed]); !r.done; r = await Promise.race([it.next(), passed])) yield r.value;
    } finally {
      clearTimeout(timer);
    }
  })();
}

/** The content types whose body is a sequence of envelopes: gRPC, gRPC-Web, Connect streaming. */
const enveloped = /^application\/(?:grpc|connect\+)/i;

/**
 * `body` (a sequence of envelopes), failing with connect-es's INVALID_ARGUMENT "protocol error:
 * incomplete envelope" when it ends inside one. connect-es raises that itself for an envelope
 * cut short, but not for one whose 5-byte prefix came and none of its data (its decoder counts
 * the bytes it holds, and holds none then): a unary call was "missing input message"
 * (UNIMPLEMENTED) and a stream's input ended as if whole. Only the prefixes are read.
 *
 * The bytes of a message are handed on once it is whole, in one chunk; all else (a prefix, its
 * bytes before a message, the end of one) as it arrives. connect-es's decoder adds up the sizes
 * of the chunks it holds for each chunk it is given, time quadratic in the chunks a message
 * arrives in: a 60 KB message in 1-byte HTTP/2 DATA frames or HTTP/1.1 chunks (gRPC, Connect
 * streaming, gRPC-Web text: Health/Watch, no credential) held the event loop for a minute. The
 * decoder reads a message only once it is whole, and its prefix (its size checked against the
 * limit) still reaches it at once.
 */
export async function* wholeEnvelopes(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let prefixSeen = 0;
  let length = 0;
  let left = 0;
  /** The bytes of the message under way that came in chunks before this one. */
  let held: Uint8Array[] = [];
  for await (const chunk of body) {
    /** The chunk's bytes before `whole` go on now: up to the end of a prefix or of a message. */
    let whole = 0;
    for (let pos = 0; pos < chunk.length; ) {
      if (left > 0) {
        const n = Math.min(left, chunk.length - pos);
        pos += n;
        left -= n;
        if (left === 0) whole = pos;
        continue;
      }
      // A prefix byte: the flags, then the length's four bytes (big-endian).
      if (prefixSeen > 0) length = length * 256 + chunk[pos]!;
      pos++;
      if (++prefixSeen === 5) {
        left = length;
        prefixSeen = 0;
        length = 0;
        whole = pos;
      }
    }
    // Between messages, or inside a prefix: nothing of a message waits.
    if (left === 0) whole = chunk.length;
    if (whole > 0) {
      const ready = whole === chunk.length ? chunk : chunk.subarray(0, whole);
      yield held.length === 0 ? ready : Buffer.concat([...held, ready]);
      held = [];
    }
    if (whole < chunk.length) held.push(chunk.subarray(whole));
  }
  if (held.length > 0) yield Buffer.concat(held);
  if (left > 0 || prefixSeen > 0) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
}

/** Chunks already read, then the rest of the body. */
async function* bytes(read: Buffer[], rest?: AsyncIterator<Buffer>): AsyncGenerator<Uint8Array> {
  yield* read;
  if (!rest) return;
  for (let r = await rest.next(); !r.done; r = await rest.next()) yield r.value;
}

/** Node's request headers as fetch Headers, HTTP/2 pseudo-headers left out. */
function webHeaders(headers: http.IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const k in headers) {
    if (k.charCodeAt(0) === 58 /* ":" */) continue;
    const v = headers[k];
    if (v === undefined) continue;
    if (typeof v === "string") out.append(k, v);
    else for (const e of v) out.append(k, e);
  }
  return out;
}

/**
 * An empty request message in the request's own framing (gRPC, gRPC-Web binary or text, with or
 * without compression; Connect unary POST, JSON or binary, with or without content-encoding,
 * which it then goes without), for a call that is refused whatever its message
 * (access/admin-gate.ts). Undefined for any other request (a Connect GET: withEmptyMessage; a
 * content type no protocol takes), which is served as it came.
 */
function emptyMessage(req: NodeRequest, uReq: UniversalServerRequest): Buffer | undefined {
  if (req.method !== "POST") return undefined;
  const type = (uReq.header.get("content-type") ?? "").toLowerCase();
  const connect = /^application\/(json|proto)(?:;|$)/.exec(type);
  const body = /^application\/grpc(?:-web)?(?:\+proto)?$/.test(type) || grpcWebText.test(type)
    ? envelope(0, new Uint8Array(0))
    : /^application\/grpc(?:-web)?\+json(?:;|$)/.test(type)
      ? envelope(0, Buffer.from("{}"))
      : connect
        ? Buffer.from(connect[1] === "json" ? "{}" : "")
        : undefined;
  if (body === undefined) return undefined;
  // The length and coding the caller declared were its own body's.
  uReq.header.delete("content-length");
  if (connect) uReq.header.delete("content-encoding");
  return body;
}

/**
 * A Connect GET's URL with its message replaced by the empty message of its encoding (`{}`, or
 * no bytes), for a call that is refused whatever its message (access/admin-gate.ts): without
 * this the message in the query was parsed before the access check, and a caller without the
 * admin token got 400 naming the field problem (or the base64 or compression that did not
 * decode) instead of 401, with no admin.call event. `base64` and `compression` go: they
 * described the message sent. Undefined for an encoding connect-es does not take (answered 415
 * before the method runs, as a POST's unknown content type is).
 */
function withEmptyMessage(url: string): string | undefined {
  const parsed = new URL(url);
  const query = parsed.searchParams;
  const encoding = query.get("encoding");
  if (encoding !== "json" && encoding !== "proto") return undefined;
  query.set("message", encoding === "json" ? "{}" : "");
  query.delete("base64");
  query.delete("compression");
  return parsed.toString();
}

/**
 * A call to a path no RPC has, in any RPC protocol: a client with a newer stub than this server.
 * Answered as grpc-go and connect-go answer it, in the protocol's own framing: UNIMPLEMENTED
 * "unknown method M for service S" (or "unknown service S"), with its ErrorInfo.
 * - gRPC: grpc-status 12 in the trailers; over HTTP/1.1 (which connect-es serves for a method it
 *   has), a trailers-only answer, the status in the headers.
 * - gRPC-Web, over either HTTP version: the body's one trailer envelope (base64 in text mode).
 * - Connect unary POST and GET: HTTP 404 with the Connect error JSON, code unimplemented (the
 *   Connect protocol's status for that code); a Connect stream: HTTP 200 and the end-stream
 *   message carrying the error.
 * The REST fallback's 404 JSON (code not_found) reached these clients as NOT_FOUND, or as a
 * transport failure ("Received HTTP status code 404") without the message or details.
 * gRPC's and gRPC-Web's content types are no REST route's, so any path of theirs is answered. A
 * Connect call is told from a REST request by its path, /S/M with S a protobuf full name
 * (dotted) that is no REST route's first segment (`fallbackOwns`), and by a Connect mark (a
 * Connect-Protocol-Version header, which connect-es and connect-go send on every call,
 * ?connect=v1 on a GET, a content type only Connect takes): a JSON POST or a GET without one,
 * to any service, is the REST 404 it always was, which quotes no path segment after the first
 * (a token sent as a method name comes back in no answer). Returns false for any other request. A
 * name `hidden` says not to quote (a credential's shape, a secret of the configuration) is
 * written "*"; so is every segment of another path after its first (unroutedPath).
 */
function unknownProcedure(
  req: NodeRequest,
  res: NodeResponse,
  url: string,
  path: string,
  services: ReadonlySet<string>,
  hidden: (text: string) => boolean,
  fallbackOwns: (firstSegment: string) => boolean,
): boolean {
  // Every REST request not routed to an RPC passes here: a GET without a query (GET /session)
  // can be no RPC call (a Connect GET carries ?connect=v1) and leaves at once, unparsed.
  if (req.method === "GET" ? url.indexOf("?") < 0 : req.method !== "POST") return false;
  const contentType = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
  const framing = errorFramingOf(req, contentType);
  const grpcType = framing !== undefined && framing !== "connect-stream";
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
  const connect = !grpcType && m !== null && connectCall(req, url, contentType, m[1]!, fallbackOwns);
  if (!grpcType && !connect) return false;
  // A name is quoted only as a client's stub would send it, a protobuf name (a path segment
  // that is anything else may carry a credential behind a comma or a dot), and not too long.
  const name = (text: string, shape: RegExp) => (text.length <= maxQuotedName && shape.test(text) && !hidden(text) ? text : "*");
  const message = !m
    ? `no RPC at ${unroutedPath(path, hidden)}`
    : services.has(m[1]!)
      ? `unknown method ${name(m[2]!, identifier)} for service ${m[1]}`
      : `unknown service ${name(m[1]!, serviceName)}`;
  const error = serverError(Code.Unimplemented, "UNIMPLEMENTED", message);
  // The body is not read: let it drain (an HTTP/1.1 connection stays usable).
  req.resume();
  if (connect === "unary") {
    sendErrorBody(res, 404, Code.Unimplemented, "UNIMPLEMENTED", message);
    return true;
  }
  sendFramedError(req, res, connect === "stream" ? "connect-stream" : framing!, contentType, error);
  return true;
}

/** A protobuf full name with a package: what the first segment of an RPC path holds. */
const fullName = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$/;

/** A protobuf identifier: what a method name is. */
const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A protobuf full name, with a package or without: what a gRPC service name is. */
const serviceName = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/** The longest service or method name an UNIMPLEMENTED message quotes (a longer one is "*"). */
const maxQuotedName = 256;

/**
 * Whether a request to /`service`/M is a Connect call (unknownProcedure says how it is told from
 * a REST request), and which: "unary" (a POST of JSON or protobuf, or a GET) or "stream".
 */
function connectCall(req: NodeRequest, url: string, contentType: string, service: string, fallbackOwns: (firstSegment: string) => boolean): "unary" | "stream" | false {
  if (!fullName.test(service) || fallbackOwns(service)) return false;
  if (req.method === "GET") {
    const q = url.indexOf("?");
    return q >= 0 && new URLSearchParams(url.slice(q + 1)).get("connect") === "v1" ? "unary" : false;
  }
  if (req.method !== "POST") return false;
  const type = /^application\/(?:(json|proto)|connect\+(?:json|proto))$/i.exec(contentType);
  if (!type) return false;
  if (type[1] === undefined) return "stream";
  return type[1].toLowerCase() === "proto" || req.headers["connect-protocol-version"] !== undefined ? "unary" : false;
}

function badAuthority(res: NodeResponse): void {
  malformedRequest(res, "the request has no valid Host header or :authority");
}

/**
 * connect-es's 415 (a content type, or a Connect GET's encoding, that no protocol of the method
 * takes) has no body: this one names what was refused, as quotedRequestText quotes it (`hidden`).
 */
function unsupportedMediaType(res: NodeResponse, req: UniversalServerRequest, hidden: (text: string) => boolean): void {
  const path = new URL(req.url).pathname;
  let message: string;
  if (req.method === "GET") {
    const encoding = new URL(req.url).searchParams.get("encoding");
    message = `${encoding === null ? "no encoding query parameter" : `unsupported encoding ${quotedRequestText(encoding, hidden)}`} on ${path}: a Connect GET takes encoding=json or encoding=proto`;
  } else {
    const type = req.header.get("content-type");
    message = type === null ? `no content type on ${path}` : `unsupported content type ${quotedRequestText(type, hidden)} on ${path}`;
  }
  sendErrorBody(res, 415, Code.InvalidArgument, "UNSUPPORTED_MEDIA_TYPE", message);
}

/** connect-es's 505 for a bidirectional stream over HTTP/1.1 (it closes the connection) has no body. */
function bidiOverHttp1(res: NodeResponse, req: UniversalServerRequest): void {
  const path = new URL(req.url).pathname;
  sendErrorBody(res, 505, Code.Unimplemented, "UNIMPLEMENTED", `${path} is a bidirectional stream: it is served over HTTP/2 only`, { connection: "close" });
}

function malformedRequest(res: NodeResponse, message: string): void {
  sendErrorBody(res, 400, Code.InvalidArgument, "MALFORMED_REQUEST", message);
}

/**
 * Whether a Connect GET (of a known encoding: connect-es answers another one 415 first) declares
 * its `message` base64 (`base64=1`) and it is not: text that protobuf-es's base64Decode, which
 * connect-es decodes it with, refuses (a character outside both alphabets, padding and four
 * white-space characters; a last group of one character, as in a message cut short). It throws
 * a plain Error there, which connect-es answers as INTERNAL (500): a client's mistake, not the
 * server's. The parameters are read as connect-es reads them (URLSearchParams): a name may be
 * percent-encoded (`ba%73e64=1`).
 */
function notBase64Message(url: string, q: number): boolean {
  if (!url.includes("base64", q) && !url.includes("%", q)) return false;
  const query = new URLSearchParams(url.slice(q + 1));
  const encoding = query.get("encoding");
  if (query.get("base64") !== "1" || (encoding !== "json" && encoding !== "proto")) return false;
  try {
    base64Decode(query.get("message") ?? "");
    return false;
  } catch {
    return true;
  }
}

/**
 * The bytes of a Connect GET's `message` (of a known encoding, not declared base64) when they are
 * no UTF-8 text; undefined otherwise. connect-es reads the parameter with URLSearchParams, which
 * decodes the percent-escapes as UTF-8, turning bytes that are not into U+FFFD, and encodes that
 * text back to bytes: JSON that is no UTF-8 was accepted, changed, where a POST body with the
 * same bytes is INVALID_ARGUMENT, and a binary message (encoding=proto) lost every byte that is
 * not. `url` is the request's URL as connect-es parses it (serialized: its query is ASCII).
 */
function messageBytesNotText(url: string): Buffer | undefined {
  const parsed = new URL(url);
  const query = parsed.searchParams;
  const encoding = query.get("encoding");
  if (query.get("base64") === "1" || (encoding !== "json" && encoding !== "proto")) return undefined;
  // The first `message` pair, as URLSearchParams.get finds it (names are decoded too).
  for (const pair of parsed.search.slice(1).split("&")) {
    const eq = pair.indexOf("=");
    if (percentDecode(eq < 0 ? pair : pair.slice(0, eq)).toString() !== "message") continue;
    const bytes = percentDecode(eq < 0 ? "" : pair.slice(eq + 1));
    return isUtf8(bytes) ? undefined : bytes;
  }
  return undefined;
}

/**
 * `url` with its `message` replaced by `bytes` in base64 (base64=1), which connect-es decodes
 * byte for byte: a JSON message that is no UTF-8 is then refused by the router's text decoder
 * as a POST body is (INVALID_ARGUMENT), and a binary one is parsed as sent.
 */
function withBase64Message(url: string, bytes: Buffer): string {
  const parsed = new URL(url);
  parsed.searchParams.set("message", bytes.toString("base64url"));
  parsed.searchParams.set("base64", "1");
  return parsed.toString();
}

/**
 * A Connect GET's URL without its `compression` parameters when the first is empty
 * (`compression=`, or `compression` alone), which connect-es refused as the unknown compression
 * "" (501 unimplemented). The Connect protocol takes an omitted compression as identity, and
 * connect-go an empty one as well (it reads the parameter's first value, "" either way): so
 * here. Undefined for any other URL, which goes on as it came. The other parameters are kept as
 * written (not re-encoded: a percent-escape of a byte that is no UTF-8 stays one).
 */
function withoutEmptyCompression(url: string): string | undefined {
  const q = url.indexOf("?");
  // Without a percent-escape in the query, the name can only be written as it is.
  if (q < 0 || (!url.includes("compression", q) && !url.includes("%", q))) return undefined;
  const pairs = url.slice(q + 1).split("&");
  const named = (pair: string) => {
    const eq = pair.indexOf("=");
    return percentDecode(eq < 0 ? pair : pair.slice(0, eq)).toString() === "compression";
  };
  // The first pair named `compression` (URLSearchParams.get's), empty once decoded.
  const first = pairs.find(named);
  if (first === undefined || percentDecode(first.slice(first.indexOf("=") + 1 || first.length)).length > 0) return undefined;
  return `${url.slice(0, q + 1)}${pairs.filter((p) => !named(p)).join("&")}`;
}

/** The request headers that name the coding of a call's body: Connect unary, Connect streams, gRPC and gRPC-Web. */
const codingHeaders = ["content-encoding", "connect-content-encoding", "grpc-encoding"] as const;

const hex = /^[0-9A-Fa-f]{2}$/;

/** application/x-www-form-urlencoded bytes of an ASCII query component: "+" a space, "%XX" a byte. */
function percentDecode(s: string): Buffer {
  const out = Buffer.allocUnsafe(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 /* % */ && hex.test(s.slice(i + 1, i + 3))) {
      out[n++] = parseInt(s.slice(i + 1, i + 3), 16);
      i += 2;
    } else {
      out[n++] = c === 0x2b /* + */ ? 0x20 : c;
    }
  }
  return out.subarray(0, n);
}
