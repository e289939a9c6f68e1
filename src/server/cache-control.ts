// Caching is opt-in: an answer the handler did not mark cacheable is `Cache-Control: no-store`
// and `Pragma: no-cache` (for HTTP/1.0 caches and proxies that ignore Cache-Control).
// Tessera's answers hold tokens, refresh tokens, API tokens, claims and users' data, and the
// side-effect-free methods are also served over Connect GET, which HTTP caches store by default
// rules; only the public keys, the discovery document and the version say otherwise (their
// handlers set `public, max-age`). The interceptor runs for every protocol (REST through the
// transcoder, Connect, gRPC-Web, gRPC) on a call's success.
//
// An error is never cacheable, whoever writes it: a shared cache may store a 404, 405, 410, 414
// or 501 without any freshness given (RFC 9111 4.2.2, heuristic freshness) and serve one
// caller's refusal to everyone. Every answer of the HTTP/1.1 and HTTP/2 servers is made by the
// response classes below (listener.ts gives them to both servers), which mark an error answer
// `no-store` as its head is written, over any Cache-Control set before: an HTTP status of 400 or
// more (REST, Connect unary, the listener's and dispatcher's own refusals, the probes', docs'
// and metrics' errors), and a gRPC-Web or Connect streaming answer that no handler marked (its
// status travels in its body, its HTTP status is 200: a success's handler has marked it, the
// interceptor above). gRPC answers (`application/grpc`, HTTP/2) are left as they are: no HTTP
// cache stores them. The listener's answers written as bytes (a request its parser refused, plain
// HTTP on the TLS port) carry `notStored` too.
import http from "node:http";
import http2 from "node:http2";
import type { Interceptor } from "@connectrpc/connect";

/** The headers of an answer no cache may store. */
export const notStored = { "cache-control": "no-store", pragma: "no-cache" } as const;

export function createCacheControlInterceptor(): Interceptor {
  return (next) => async (req) => {
    const res = await next(req);
    if (!res.header.has("cache-control")) {
      for (const [name, value] of Object.entries(notStored)) res.header.set(name, value);
    }
    return res;
  };
}

/** An answer whose status its body carries, HTTP 200 either way (gRPC-Web, a Connect stream). */
const statusInBody = /^application\/(?:grpc-web|connect\+)/i;

type HeaderObject = http.OutgoingHttpHeaders;
/** writeHead's arguments after the status: [reason phrase,] headers (an object, or a flat list of names and values). */
type HeadArgs = [string | HeaderObject | http.OutgoingHttpHeader[] | undefined, (HeaderObject | http.OutgoingHttpHeader[])?];

/** Whether `name` is one of notStored's headers. */
const isMark = (name: unknown) => typeof name === "string" && name.toLowerCase() in notStored;

/** The headers of writeHead's arguments, as name/value pairs. */
function pairsOf(given: HeaderObject | http.OutgoingHttpHeader[] | undefined): [string, unknown][] {
  if (given === undefined) return [];
  if (!Array.isArray(given)) return Object.entries(given);
  const pairs: [string, unknown][] = [];
  for (let i = 0; i + 1 < given.length; i += 2) pairs.push([String(given[i]), given[i + 1]]);
  return pairs;
}

/** Whether the answer about to be written is an error that must not be stored (above). */
function isError(status: number, pairs: [string, unknown][], set: (name: string) => unknown): boolean {
  if (status >= 400) return true;
  const header = (name: string) => pairs.find(([key]) => key.toLowerCase() === name)?.[1] ?? set(name);
  return statusInBody.test(String(header("content-type") ?? "")) && header("cache-control") === undefined;
}

/** writeHead's arguments, with `notStored` over the Cache-Control and Pragma of an error answer. */
function marked(status: number, args: HeadArgs, res: { getHeader(name: string): unknown; removeHeader(name: string): void }): HeadArgs {
  const [first, second] = args;
  const phrase = typeof first === "string" ? first : undefined;
  const given = typeof first === "string" ? second : first;
  const pairs = pairsOf(given);
  if (!isError(status, pairs, (name) => res.getHeader(name))) return args;
  for (const name of Object.keys(notStored)) res.removeHeader(name);
  const kept = pairs.filter(([key]) => !isMark(key));
  const headers = Array.isArray(given)
    ? [...kept, ...Object.entries(notStored)].flat() as http.OutgoingHttpHeader[]
    : ({ ...Object.fromEntries(kept), ...notStored } as HeaderObject);
  return phrase === undefined ? [headers] : [phrase, headers];
}

/** The HTTP/1.1 server's answers (http.createServer's ServerResponse option). */
export class NotStoredOnError extends http.ServerResponse {
  override writeHead(status: number, ...args: HeadArgs): this {
    return super.writeHead(status, ...(marked(status, args, this) as [string, HeaderObject]));
  }
}

/** The HTTP/2 server's answers (http2.createServer's Http2ServerResponse option). */
export class NotStoredOnErrorH2 extends http2.Http2ServerResponse {
  override writeHead(status: number, ...args: HeadArgs): this {
    return super.writeHead(status, ...(marked(status, args, this) as [string, http2.OutgoingHttpHeaders]));
  }
}
