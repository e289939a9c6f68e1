// Typed clients of Tessera's services over gRPC, Connect or gRPC-Web (connect-node). One
// transport is one connection pool (one HTTP/2 session): make one with createTesseraTransport
// and share it between the services' clients.
import { getOption, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type CallOptions, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import type * as http2 from "node:http2";
import type * as https from "node:https";
import { access } from "../gen/tessera/options/v1/options_pb.js";
import { checkSendable, credentialInterceptor, invalidArgument, type CredentialSource } from "./credentials.js";
import { deadlineInterceptors, either } from "./deadline.js";
import { Connections } from "./connections.js";
import { createNodeTransport } from "./node-transport.js";
import { transportFailures } from "./transport-failures.js";
import { httpUrl } from "./verify/token-verifier.js";

export type Protocol = "grpc" | "connect" | "grpc-web";

export interface TesseraTransportOptions {
  /** Where Tessera is, e.g. "https://auth.internal" or "http://127.0.0.1:8080". */
  baseUrl: string;
  /** gRPC (HTTP/2 only), Connect or gRPC-Web: Tessera serves all three on one port. */
  protocol: Protocol;
  /** HTTP/2 (default; h2c for http URLs) or HTTP/1.1 (Connect and gRPC-Web only). */
  httpVersion?: "1.1" | "2";
  /** Headers sent on every call: e.g. `{ ...clientId("web"), ...bearer(token) }` (or [name, value] pairs, or a Headers), or a function giving them. */
  credentials?: CredentialSource;
  /** Protobuf binary (default) or JSON (Connect and gRPC-Web). */
  useBinaryFormat?: boolean;
  /** Connect only: call side-effect-free methods with HTTP GET (cacheable). */
  useHttpGet?: boolean;
  /** A deadline for calls that set none, in milliseconds (a fraction rounded up; at most 99,999,999, about 28 hours: a larger one is that). */
  defaultTimeoutMs?: number;
  /** The largest answer a call reads, in bytes (decompressed); a larger one fails RESOURCE_EXHAUSTED. Default 4 MiB. */
  readMaxBytes?: number;
  /** More interceptors, run after the credentials are set. */
  interceptors?: readonly Interceptor[];
  /**
   * Options for node:http2 or node:https (a CA to trust, a client certificate...). Over HTTP/2, a
   * `createConnection` of your own that returns a net.Socket (TCP or TLS) is bounded by
   * pingTimeoutMs and cut by close() as the transport's own connections are; any other stream
   * is neither.
   */
  nodeOptions?: http2.SecureClientSessionOptions | https.RequestOptions;
  /**
   * HTTP/2: a PING is sent when a connection with calls open has received nothing for this long,
   * and before a call on a connection idle for longer. Default 30,000 ms; Infinity sends none.
   */
  pingIntervalMs?: number;
  /**
   * HTTP/2: a PING not answered within this is a dead connection: closed, its calls failed
   * UNAVAILABLE; so is a new connection not established within it (TCP, TLS's handshake, and
   * the server's HTTP/2 SETTINGS).
   * Default 10,000 ms.
   */
  pingTimeoutMs?: number;
  /** HTTP/2: PING a connection with no call open too (default false: an idle one is checked before its next call). */
  pingIdleConnection?: boolean;
}

/** The HTTP/2 keep-alive defaults: a silently dead connection fails its calls within 40 s. */
const defaultPingIntervalMs = 30_000;
const defaultPingTimeoutMs = 10_000;

/** The longest a Node timer holds (2^31 - 1 ms): past it, it fires at once. */
const maxTimerMs = 2 ** 31 - 1;

/**
 * The longest timeout a call is given: 99,999,999 ms (about 28 hours), the most grpc-timeout
 * holds in milliseconds (8 digits; connect-es writes "<n>m", and a server refuses more digits),
 * and under what a Node timer holds (2^31 - 1 ms; connect-es's deadline fires at once past it).
 */
const maxTimeoutMs = 99_999_999;

/** The largest answer read by default: gRPC's usual limit, far above any of Tessera's. */
export const defaultReadMaxBytes = 4 * 1024 * 1024;

/** connect-es's own ceiling for readMaxBytes. */
const maxReadMaxBytes = 0xffffffff;

/**
 * A timeout in whole milliseconds, at most maxTimeoutMs. grpc-timeout and connect-timeout-ms
 * carry digits only (connect-es would write "1500.5m", which a server refuses INVALID_ARGUMENT):
 * a fraction is rounded up, so a deadline is never shorter than asked.
 */
function timerMs(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined ? undefined : Math.min(Math.ceil(timeoutMs), maxTimeoutMs);
}

/**
 * A Transport of Tessera's calls, over connections of its own: close() ends them. Calls under
 * way when it is called finish (as grpc-js's channel.close() and grpc-go's ClientConn.Close()
 * let them); a call made after it fails CANCELED, unsent (transportClosed).
 */
export interface TesseraTransport extends Transport {
  /**
   * Refuses new calls (CANCELED), lets those under way finish, then closes the transport's
   * connections. Resolves once they are closed (a call that never ends, a Watch, holds it: end
   * such a call with its signal, or by leaving its loop). Calling it again gives the same promise.
   */
  close(): Promise<void>;
}

export function createTesseraTransport(options: TesseraTransportOptions): TesseraTransport {
  // connect-node parses it only when a call is made (INTERNAL "Invalid URL" on every call).
  httpUrl(options.baseUrl, "baseUrl");
  // connect-es adds each call's path to the URL's text: after a query (or an empty "?") it went
  // into the query, after a fragment nowhere, and every call failed UNIMPLEMENTED, HTTP 404.
  if (/[?#]/.test(String(options.baseUrl))) throw new TypeError("baseUrl: must have no query or fragment (each call's path is added to its path)");
  const httpVersion = options.httpVersion ?? "2";
  if (httpVersion !== "2" && httpVersion !== "1.1") throw new TypeError('httpVersion: "1.1" or "2"');
  const { defaultTimeoutMs, readMaxBytes = defaultReadMaxBytes } = options;
  if (defaultTimeoutMs !== undefined && !(typeof defaultTimeoutMs === "number" && defaultTimeoutMs > 0)) {
    throw new TypeError("defaultTimeoutMs: a positive number of milliseconds");
  }
  if (!Number.isSafeInteger(readMaxBytes) || readMaxBytes <= 0) throw new TypeError("readMaxBytes: a positive whole number of bytes");
  const { pingIntervalMs = defaultPingIntervalMs, pingTimeoutMs = defaultPingTimeoutMs, pingIdleConnection = false } = options;
  if (!(typeof pingIntervalMs === "number" && pingIntervalMs > 0)) throw new TypeError("pingIntervalMs: a positive number of milliseconds (Infinity: no PING)");
  if (!(typeof pingTimeoutMs === "number" && pingTimeoutMs > 0 && pingTimeoutMs <= maxTimerMs)) throw new TypeError(`pingTimeoutMs: a positive number of milliseconds, at most ${maxTimerMs}`);
  if (typeof pingIdleConnection !== "boolean") throw new TypeError("pingIdleConnection: true or false");
  // connect-node sets no timer past maxTimerMs: a longer interval (Infinity) sends no PING.
  const ping = { pingIntervalMs, pingTimeoutMs, pingIdleConnection };
  // Outermost first: the deadline is noted as the call begins, and what is left of it is
  // written as each attempt leaves, after the credentials and the caller's own interceptors.
  const deadline = deadlineInterceptors(options.protocol === "connect" ? "connect-timeout-ms" : "grpc-timeout");
  const interceptors = [
    deadline.start,
    transportFailures,
    ...(options.credentials !== undefined ? [credentialInterceptor(options.credentials)] : []),
    ...(options.interceptors ?? []),
    deadline.send,
  ];
  const common = {
    baseUrl: options.baseUrl,
    interceptors,
    useBinaryFormat: options.useBinaryFormat ?? true,
    readMaxBytes: Math.min(readMaxBytes, maxReadMaxBytes),
    ...(defaultTimeoutMs !== undefined && { defaultTimeoutMs: timerMs(defaultTimeoutMs) }),
  };
  if (options.protocol === "grpc" && httpVersion !== "2") throw new TypeError("httpVersion: gRPC needs HTTP/2");
  if (!(["grpc", "connect", "grpc-web"] as unknown[]).includes(options.protocol)) {
    throw new TypeError(`protocol: "grpc", "connect" or "grpc-web", not ${JSON.stringify(options.protocol)}`);
  }
  // HTTP/2: one connection, kept alive with PINGs, for every call of the transport (Connect GET
  // and POST alike); HTTP/1.1: the transport's own agent.
  const connections = new Connections(
    options.baseUrl,
    httpVersion === "2"
      ? { httpVersion, ping, nodeOptions: options.nodeOptions as http2.SecureClientSessionOptions | undefined }
      : { httpVersion, nodeOptions: options.nodeOptions as https.RequestOptions | undefined },
  );
  const transport = (useHttpGet: boolean) => createNodeTransport(options.protocol, { ...common, useHttpGet }, connections.httpClient);
  let calls: Transport;
  if (options.protocol === "connect" && options.useHttpGet === true) {
    // One connection for both: GET, and POST for a call whose message carries a token.
    const post = transport(false);
    const get = transport(true);
    calls = {
      unary: (method, signal, timeoutMs, header, message, ...rest) =>
        (carriesToken(method, message) ? post : get).unary(method, signal, timeoutMs, header, message, ...rest),
      stream: (...args) => post.stream(...args),
    };
  } else {
    calls = transport(false);
  }
  return { ...guarded(calls), close: () => connections.close() };
}

/**
 * Whether a call's message carries a token in its method's token field (JwtService's
 * access_token). Connect GET puts the message in the URL, which proxies, caches and access logs
 * keep: such a call goes by POST, as Tessera's API reference asks.
 */
function carriesToken(method: DescMethod, message: unknown): boolean {
  const tokenField = getOption(method, access).tokenField;
  const field = tokenField === "" ? undefined : method.input.fields.find((f) => f.name === tokenField);
  if (field === undefined || typeof message !== "object" || message === null) return false;
  const value = (message as Record<string, unknown>)[field.localName];
  return typeof value === "string" && value !== "";
}

/** A call's own headers as entries (a Headers too: it refuses NUL and line breaks, not the other control characters). */
function headerEntries(header: ConstructorParameters<typeof Headers>[0]): Iterable<readonly [string, unknown]> {
  if (header === undefined) return [];
  if (header instanceof Headers) return header.entries();
  return Array.isArray(header) ? (header as Array<[string, unknown]>) : Object.entries(header);
}

/**
 * What a call brings before connect-node reads it: its headers (connect-node's Headers would
 * refuse a line break with the value, a credential, in its message) and its timeout (whole
 * milliseconds, at most maxTimeoutMs: past it, the call failed at once). A mistake there, or
 * one connect-node's Headers finds in the call's headers (a name no header has) before the call
 * begins, fails it INVALID_ARGUMENT (invalidArgument), not with a bare TypeError.
 */
function guarded(transport: Transport): Transport {
  return {
    async unary(method, signal, timeoutMs, header, ...rest) {
      try {
        checkSendable(headerEntries(header), "headers");
        return await transport.unary(method, signal, callTimerMs(timeoutMs), header, ...rest);
      } catch (e) {
        throw invalidArgument(e);
      }
    },
    async stream(method, signal, timeoutMs, header, ...rest) {
      try {
        checkSendable(headerEntries(header), "headers");
        return await transport.stream(method, signal, callTimerMs(timeoutMs), header, ...rest);
      } catch (e) {
        throw invalidArgument(e);
      }
    },
  };
}

/**
 * A call's timeoutMs as timerMs gives it. NaN (a deadline computed from nothing) would time the
 * call out at once, DEADLINE_EXCEEDED, its request sent all the same with "NaNm" for a
 * grpc-timeout; it is the caller's mistake, named as such. Zero or less is connect-es's "no
 * deadline", kept.
 */
function callTimerMs(timeoutMs: number | undefined): number | undefined {
  if (timeoutMs !== undefined && !(typeof timeoutMs === "number" && !Number.isNaN(timeoutMs))) throw new TypeError("timeoutMs: a number of milliseconds");
  return timerMs(timeoutMs);
}

/**
 * A client made by createTesseraClient from transport options, over a transport of its own:
 * close() is that transport's (TesseraTransport.close). It is no RPC (no Tessera method is named
 * Close: createTesseraClient refuses a service that has one) and not enumerable, so that
 * Object.keys of the client are its service's methods alone, as connect-es's client's are.
 */
export type TesseraClient<S extends DescService> = Client<S> & {
  /** Closes the client's own transport (TesseraTransport.close): calls under way finish, later ones fail CANCELED. */
  close(): Promise<void>;
};

/**
 * A typed client of one of Tessera's services (SessionService, ApiTokenService, JwtService...):
 * given transport options, over a transport of its own that its close() ends; or given a
 * transport shared with other clients, which the transport's owner closes (no close()). A
 * server-streaming call ends when the loop reading it is left (loopLeftCancels).
 */
export function createTesseraClient<S extends DescService>(service: S, options: TesseraTransportOptions): TesseraClient<S>;
export function createTesseraClient<S extends DescService>(service: S, transport: Transport): Client<S>;
export function createTesseraClient<S extends DescService>(service: S, options: TesseraTransportOptions | Transport): Client<S>;
export function createTesseraClient<S extends DescService>(service: S, options: TesseraTransportOptions | Transport): Client<S> {
  const own = "protocol" in options;
  if (own && service.methods.some((m) => m.localName === "close")) {
    throw new TypeError(`${service.typeName} has a method named close: make its transport with createTesseraTransport, and close that`);
  }
  const transport = own ? createTesseraTransport(options) : options;
  const client = createClient(service, transport);
  if (own) Object.defineProperty(client, "close", { value: () => (transport as TesseraTransport).close(), enumerable: false });
  const methods = client as unknown as Record<string, ServerStreamingCall>;
  for (const method of service.methods) {
    if (method.methodKind === "server_streaming") methods[method.localName] = loopLeftCancels(methods[method.localName]!);
  }
  return client;
}

type ServerStreamingCall = (input: unknown, options?: CallOptions) => AsyncIterable<unknown>;

/**
 * connect-es's server-streaming call, cancelled when the loop reading it is left before its end
 * (a `break`, a `return` or a throw in a `for await`: the iterator's `return`). connect-es's
 * iterator has no `return`: the call went on, its stream open and Tessera holding it, the
 * process kept alive, until its deadline or its end (Health.Watch has none). The call's signal
 * follows the caller's and is aborted as the call ends, however it ends (nothing is left
 * listening on a caller's long-lived signal).
 */
function loopLeftCancels(call: ServerStreamingCall): ServerStreamingCall {
  return (input, options = {}) => {
    const over = new AbortController();
    const signal = options.signal === undefined ? over.signal : either(options.signal, over.signal);
    const messages = call(input, { ...options, signal });
    return {
      [Symbol.asyncIterator]() {
        const it = messages[Symbol.asyncIterator]();
        return {
          next: () =>
            it.next().then(
              (r) => {
                if (r.done === true) over.abort();
                return r;
              },
              (e: unknown) => {
                over.abort();
                throw e;
              },
            ),
          return: (value?: unknown) => {
            over.abort(new ConnectError("the loop reading the call's answers was left", Code.Canceled));
            return Promise.resolve({ done: true as const, value });
          },
        };
      },
    };
  };
}
