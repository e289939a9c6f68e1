// One port for every protocol. Without TLS, plain HTTP/1.1 and h2c (HTTP/2 with prior
// knowledge, as gRPC clients speak it) arrive on the same socket: the first bytes tell them
// apart (an HTTP/2 connection starts with the preface "PRI * HTTP/2.0"). With TLS, ALPN tells
// them apart once the handshake is done. Either way the connection is handed to one HTTP/1.1
// server or one HTTP/2 server, both sharing one request handler, so every transport gets the
// same timeouts:
// - nothing at all (no byte, no ClientHello), or a ClientHello or HTTP/2 preface (h2c, or h2
//   after the handshake) that has not arrived whole: closed after the headers timeout;
// - HTTP/1.1: Node's headers, request and keep-alive timeouts (plain and TLS alike), a request
//   not arrived in time answered 408 with the JSON error (answerClientError; an RPC call whose
//   answer has not begun, as over HTTP/2: refuseNotArrived), and a connection
//   whose answer has been waiting to be sent, none of it taken by the client, for the idle
//   timeout is closed (a client that does not read); pipelined requests are served one at a
//   time, so a connection holds one answer at once, and bytes the parser refuses after them
//   are answered after theirs; an answer sent before its request's body was read keeps the
//   connection only when at most unreadBodyDrainBytes of that body are still due (else
//   Connection: close, then lingeringClose);
// - HTTP/2, per stream: the request (headers and body) must have arrived within the request
//   timeout, else 408 (or RST_STREAM(CANCEL) once the answer has begun); per session: see
//   h2-guard.ts (idle sessions, stalled streams, floods and rapid resets).
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { constants as crypto, randomBytes } from "node:crypto";
import tls from "node:tls";
import { Code } from "@connectrpc/connect";
import type { PortSharing } from "../cluster.js";
import { NotStoredOnError, NotStoredOnErrorH2, notStored } from "./cache-control.js";
import { errorBody, sendErrorBody, serverError, type ServerReason } from "./error-details.js";
import { errorFramingOf, sendFramedError, type FramedError } from "./grpc-unary.js";
import { guardSession, resetStream } from "./h2-guard.js";
import { requestIdHeader, requestIdOf } from "./request-id.js";
import { unreadBodyDrainBytes, unreadBodyLinger } from "./limits.js";
import { markArrivalTimedOut } from "../request-arrival.js";
import { quotedRequestText } from "../core/text.js";
import { credentialShaped } from "../credential-shapes.js";

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface ListenerOptions {
  host: string;
  port: number;
  tls?: { cert: Buffer; key: Buffer };
  /** Under TLS: how often the key that seals session tickets is replaced (default: every hour). */
  ticketKeyRotationMs?: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  /** TCP keepalive on every accepted connection: its first probe after this long without traffic (0: off). */
  keepAliveMs: number;
  /** Connections served at once (0: no limit); beyond, a new one is closed as it is accepted. */
  maxConnections?: number;
  /** Told of each connection closed for want of room (for the metrics). */
  onRefused?(): void;
  /** Largest request header block, bytes. */
  maxHeaderBytes: number;
  /**
   * Requests a client may have in flight at once on one connection: HTTP/2 streams open, and
   * HTTP/1.1 requests pipelined (beyond, the HTTP/1.1 connection is shed).
   */
  maxConcurrentStreams: number;
  /** Told when a connection is shed for abuse (for the log). */
  onShed?(reason: string, peer: string | undefined, protocol: "h2" | "http/1.1"): void;
  /**
   * Whether `req` calls one of the handler's RPCs (gRPC, gRPC-Web or Connect, unary or not; no
   * REST route). Over HTTP/1.1 such a call, like any request in an RPC framing (errorFramingOf),
   * that the request timeout cuts off before its answer has begun is answered as over HTTP/2
   * (refuseNotArrived), on its own answer; any other request gets the listener's own 408
   * (answerClientError). Unset: only the requests in an RPC framing.
   */
  rpcCall?(req: http.IncomingMessage): boolean;
  /**
   * Whether the answers made here carry an x-request-id, as the handler's do: the request's own
   * (requestIdOf) on a 405 to CONNECT, a 417 or a 505, where `holdsSecret` finds the
   * configuration's secrets (the admin token) not to quote back, as the handler does not; a new
   * one on the JSON errors to bytes that are no request. Unset: none (TESSERA_METRICS_PORT, whose
   * handler sets none).
   */
  requestIds?: { holdsSecret(text: string): boolean };
  /**
   * Under TLS: the Strict-Transport-Security value of the answers made here (a 400 or 431 to bytes
   * the parser refuses, a 405 to CONNECT, a 417, a 505), as the handler's carry. Unset: none.
   */
  hsts?: string;
  /**
   * What the answers made here do not quote of a request (an Expect a 417 names: see
   * unquotable, quotedRequestText); default a credential's shape.
   */
  hidden?: (text: string) => boolean;
  /** What a 405 to CONNECT lists in Allow: the methods the handler takes (default servedMethods). */
  allow?: string;
  /**
   * Expect: 100-continue (RFC 9110 10.1.1): whether the request's body would be refused unread,
   * as its header already tells (a Content-Length over the body limit). Then no 100 (Continue)
   * goes out, and the handler, told so by continueWithheld(req), answers at once with the final
   * status; otherwise the 100 goes out first, as Node sends it. Unset: always the 100.
   */
  refusesBody?(req: http.IncomingMessage | http2.Http2ServerRequest): boolean;
  /**
   * Under TESSERA_WORKERS (cluster.ts): the first worker listens and hands some of the
   * connections it accepts to the others; the others bind nothing and serve what they are handed.
   */
  sharing?: PortSharing | undefined;
}

export interface Listener {
  readonly port: number;
  readonly secure: boolean;
  /** Requests being served right now. */
  inFlight(): number;
  /** Connections open right now (served here). */
  connections(): number;
  /** Under TLS: new handshakes are made with this certificate and key (open connections keep theirs). */
  setCertificate(pair: { cert: Buffer; key: Buffer }): void;
  /**
   * Moves the clients off the connections they keep, as a proxy drains (a stop's lame-duck
   * period, TESSERA_SHUTDOWN_DELAY_SECONDS), while new connections are still accepted and served:
   * from now on every HTTP/1.1 answer carries Connection: close and its connection closes once
   * it is answered, and every HTTP/2 session open now, or opened later once its first call has
   * been answered, is sent GOAWAY(NO_ERROR) once the streams its client has sent are read (they
   * are served, then the session closes).
   */
  drain(): void;
  /**
   * Graceful stop: refuse new connections, let in-flight requests finish (HTTP/2 sessions get
   * GOAWAY, idle HTTP/1.1 connections close), and after `graceMs` destroy what is left.
   */
  close(graceMs: number): Promise<void>;
}

/**
 * The HTTP/2 server's answers: NotStoredOnErrorH2, calling `onEnded` (set by the listener) once
 * each is ended. The compatibility layer hands an answer without a body to nghttp2 in end(), and
 * emits nothing then ("finish" follows only when the stream closes, and a HEAD stream's own
 * "finish" comes as it opens).
 */
class AnswerH2 extends NotStoredOnErrorH2 {
  onEnded: (() => void) | undefined;
  override end(...args: unknown[]): this {
    super.end(...(args as Parameters<NotStoredOnErrorH2["end"]>));
    this.onEnded?.();
    return this;
  }
}

/**
 * The HTTP/1.1 server's answers: NotStoredOnError, asking (for an answer the listener counts,
 * `watched`; no closure a request) as the head is written whether the answer must close its connection (a request body left unread:
 * unreadBeyondDrain); if so Connection: close is added after the headers given (Node then writes
 * no Connection: keep-alive nor Keep-Alive of its own).
 */
class AnswerH1 extends NotStoredOnError {
  /** Whether the listener counts this answer's request (its `req`), and so asks unreadBeyondDrain. */
  watched = false;
  override writeHead(status: number, ...args: unknown[]): this {
    const closes = this.watched && unreadBeyondDrain(this.req);
    return super.writeHead(status, ...((closes ? withConnectionClose(args) : args) as [string, http.OutgoingHttpHeaders]));
  }
}

/** writeHead's arguments after the status ([reason phrase,] headers), with Connection: close last among the headers. */
function withConnectionClose(args: unknown[]): unknown[] {
  const phrase = typeof args[0] === "string" ? [args[0]] : [];
  const given = args[phrase.length] as http.OutgoingHttpHeaders | http.OutgoingHttpHeader[] | undefined;
  if (given === undefined) return [...phrase, { connection: "close" }];
  if (Array.isArray(given)) return [...phrase, [...given, "connection", "close"]];
  return [...phrase, { ...given, connection: "close" }];
}

/**
 * Whether more of an HTTP/1.1 request's body may still be due than its connection drains after
 * an answer written before that body was read (unreadBodyDrainBytes): not all of it has arrived,
 * and its Content-Length is over that, or its length is unknown (chunked).
 */
function unreadBeyondDrain(req: http.IncomingMessage): boolean {
  if (req.complete) return false;
  if (req.headers["transfer-encoding"] !== undefined) return true;
  return Number(req.headers["content-length"] ?? 0) > unreadBodyDrainBytes;
}

/**
 * An HTTP/1.1 connection whose last answer has gone while its request's body was still due:
 * closed as unreadBodyLinger says. Its parser is fed no more (`parserFeed`, Node's "data"
 * listener: a listener of our own, added first, also takes the socket's reads off the parser
 * where Node had it read the handle itself): the bytes are counted and dropped, never parsed.
 * The client's own close ends it at once (Node's parser, told the connection ended mid-body,
 * reports it to answerClientError, which destroys the socket: the request was answered).
 */
function lingeringClose(socket: Socket, parserFeed: Array<(...args: unknown[]) => void>): void {
  let dropped = 0;
  socket.on("data", (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped >= unreadBodyLinger.bytes) socket.pause();
  });
  for (const feed of parserFeed) socket.removeListener("data", feed);
  socket.end();
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), unreadBodyLinger.ms);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}

const preface = Buffer.from("PRI * HTTP/2.0");
/** The whole HTTP/2 client connection preface (RFC 9113 3.4), of which `preface` is the start. */
const wholePreface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * What a TLS handshake may agree on, set on every secure context (a reloaded certificate's too),
 * so that the process's defaults (NODE_OPTIONS=--tls-min-v1.0, --tls-cipher-list) cannot lower it:
 * - TLS 1.2 and 1.3 (Node's default floor, made explicit);
 * - under TLS 1.2, ECDHE with AES-GCM or ChaCha20-Poly1305 only (Mozilla's "intermediate"
 *   list without DHE, which Node does not serve without dhparam). Node's default list ends in
 *   OpenSSL's HIGH: CBC suites with SHA-1 MACs, static RSA key exchange (a key stolen later
 *   decrypts every recorded session, passwords and tokens included), CCM8 and ARIA;
 * - no renegotiation: Node allowed a client 3 in 10 minutes, each a signature on the server's
 *   CPU, and HTTP/2 forbids it (RFC 9113 9.2.1). TLS 1.3 has none.
 */
export const tlsPolicy = {
  minVersion: "TLSv1.2",
  ciphers: [
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
  ].join(":"),
  secureOptions: crypto.SSL_OP_NO_RENEGOTIATION,
} as const satisfies tls.SecureContextOptions;

interface H1Connection {
  /** The answers under way on the connection that have not closed. */
  answers: Set<http.ServerResponse>;
  /** Its output: bytes sent when last seen moving, and since when it has waited unmoved. */
  sent: number;
  since: number | undefined;
  /** An answer that closes the connection has been handed over: nothing read after it is served. */
  closing: boolean;
  /** The requests read after that answer, not served. */
  dropped: number;
  /**
   * The requests waiting for the answers before theirs to be sent, in order, served one at a
   * time: each starts its own unless it has closed meanwhile (false).
   */
  queued: Array<() => boolean>;
  /**
   * The answer to bytes the parser refused after requests still being answered (answerClientError's),
   * sent once their answers have gone, then the connection closed.
   */
  refused: (() => void) | undefined;
}

/** A "close" token in a Connection header value. */
const closeToken = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i;

/** Whether an HTTP/1.1 answer closes its connection once sent: Connection: close set on it, or written (Node's _last). */
function closesConnection(res: http.ServerResponse): boolean {
  return (res as { _last?: boolean })._last === true || closeToken.test(String(res.getHeader("connection") ?? ""));
}

/** Whether one of a connection's answers under way closes it (no array built: every request asks). */
function anyClosesConnection(answers: Set<http.ServerResponse>): boolean {
  for (const res of answers) if (closesConnection(res)) return true;
  return false;
}

/**
 * An HTTP/1.0 request with Transfer-Encoding: its framing is faulty (RFC 9112 6.1), as an
 * HTTP/1.0 intermediary, which knows no chunked, may have read its body as the next request. It
 * is served, and its connection closed after it.
 */
function faultyFraming(req: http.IncomingMessage | http2.Http2ServerRequest): boolean {
  return req.httpVersionMajor === 1 && req.httpVersionMinor === 0 && req.headers["transfer-encoding"] !== undefined;
}

/**
 * How many bytes of `socket`'s output the kernel has taken. libuv's own count (bytes handed to
 * it, less those it still holds) moves as the client reads, within a single large write too; the
 * socket's (its writes completed) moves only once a whole write has gone, and one answer of a
 * few megabytes to a client reading slowly can take longer than the idle timeout. Under TLS the
 * TCP handle is the one under the TLS layer.
 */
function bytesTaken(socket: Socket): number {
  type Handle = { bytesWritten?: unknown; writeQueueSize?: unknown; _parent?: Handle };
  const handle = (socket as unknown as { _handle?: Handle })._handle;
  const tcp = handle?._parent ?? handle;
  if (typeof tcp?.bytesWritten === "number" && typeof tcp.writeQueueSize === "number") return tcp.bytesWritten - tcp.writeQueueSize;
  return socket.bytesWritten - socket.writableLength;
}

/**
 * An HTTP/2 request's header list size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113
 * 6.5.2): each field's name and value, pseudo-header fields included, and 32 bytes. Node gives
 * header values as Latin-1 strings: a character is a byte.
 */
function headerListSize(rawHeaders: readonly string[]): number {
  let size = 0;
  for (const field of rawHeaders) size += field.length;
  return size + 16 * rawHeaders.length;
}

/**
 * The fewest bytes an HTTP/1.1 request's header block can have taken: its request line, each
 * field as `name:value` and a line end, and the blank line. Node's parser counts toward
 * maxHeaderSize the request target and the fields' names and values alone, not the colons and
 * line ends: 8000 empty fields (`x:`, 32 KiB on the wire) counted 8000 bytes, within 16 KiB.
 */
function headerBlockFloor(req: http.IncomingMessage): number {
  // "METHOD target HTTP/1.1" and its line end.
  let size = (req.method?.length ?? 0) + (req.url?.length ?? 0) + 12;
  for (const field of req.rawHeaders) size += field.length;
  return size + (req.rawHeaders.length / 2) * 3 + 2;
}

/** The peer address of each HTTP/2 session, as its socket reported it when it was accepted. */
const sessionPeers = new WeakMap<http2.Http2Session, string | undefined>();

/**
 * The address of the peer that sent `req`. An HTTP/2 session's peer is remembered when the
 * session starts: a stream's `req.socket` is a proxy that throws once the session is gone.
 */
export function peerAddress(req: http.IncomingMessage | http2.Http2ServerRequest): string | undefined {
  if (req.httpVersionMajor === 2) {
    const session = (req as http2.Http2ServerRequest).stream?.session;
    if (session && sessionPeers.has(session)) return sessionPeers.get(session);
  }
  try {
    return req.socket?.remoteAddress;
  } catch {
    return undefined; // an HTTP/2 stream whose session is gone: its socket proxy throws
  }
}

/**
 * A request in HTTP/1 syntax of another version: llhttp parses "HTTP/2.0" (and HTTP/0.9) request
 * lines, and everything downstream takes httpVersionMajor 2 for a request of the HTTP/2 server
 * (its stream, its :authority): such a request threw in the request listener and ended the
 * process. 505 (RFC 9110 15.6.6), and the connection closes.
 */
function versionNotServed(req: http.IncomingMessage, res: http.ServerResponse, headers: OwnHeaders): void {
  res.shouldKeepAlive = false;
  sendErrorBody(
    res,
    505,
    Code.Unimplemented,
    "UNIMPLEMENTED",
    `HTTP/${req.httpVersion} is not served in HTTP/1.1 syntax: this port speaks HTTP/1.0, HTTP/1.1 and HTTP/2 (which starts with its connection preface)`,
    { ...headers, connection: "close" },
  );
}

/** An "upgrade" token in a Connection header value. */
const upgradeToken = /(?:^|,)[ \t]*upgrade[ \t]*(?:,|$)/i;

/**
 * Whether Node's parser (llhttp) took the request for a protocol upgrade: an Upgrade header and
 * "upgrade" in Connection. Without an "upgrade" listener Node serves it as a plain request, as
 * RFC 9110 7.8 lets a server ignore Upgrade, but the parser stops at its end: whatever came in
 * the same read after it (a pipelined request) is dropped, unanswered, while the connection
 * stays open. Such a request's answer closes the connection (Connection: close), so a client
 * that pipelined sends the rest again on a new one (RFC 9112 9.3.2) instead of waiting for the
 * idle timeout.
 */
function upgradeAsked(req: http.IncomingMessage | http2.Http2ServerRequest): boolean {
  const connection = req.headers.connection;
  return req.headers.upgrade !== undefined && connection !== undefined && upgradeToken.test(connection);
}

/** Methods some resource here takes: what a 405 to CONNECT lists in Allow. */
export const servedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE";

/**
 * CONNECT (RFC 9110 9.3.6) asks for a tunnel, which this server, no proxy, never opens: 405 with
 * Allow and the JSON error body. Node's servers do not hand CONNECT to the request listener:
 * without a "connect" listener the HTTP/1.1 server destroyed the socket without a byte, and the
 * HTTP/2 one answered 405 with neither Allow (which a 405 must carry) nor a body.
 */
function noTunnel(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
  allow: string,
  headers: OwnHeaders,
): void {
  sendErrorBody(res, 405, Code.Unimplemented, "METHOD_NOT_ALLOWED", "CONNECT is not allowed: this server opens no tunnels", {
    allow,
    ...headers,
    ...(req.httpVersionMajor === 1 && { connection: "close" }),
  });
}

/**
 * An Expect other than 100-continue (RFC 9110 10.1.1): 417. Node's servers call this instead of
 * the request listener; without it they answered a bare "417 Expectation Failed", without a body
 * naming the expectation or a request id. The expectation is quoted as quotedRequestText quotes
 * it (`hidden`). HTTP/1.1: the connection closes (the body the client may still send is not read).
 */
function expectationFailed(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
  headers: OwnHeaders,
  hidden: (text: string) => boolean,
): void {
  const expect = quotedRequestText(String(req.headers.expect ?? ""), hidden);
  sendErrorBody(res, 417, Code.InvalidArgument, "MALFORMED_REQUEST", `the expectation ${expect} cannot be met: this server meets only Expect: 100-continue`, {
    ...headers,
    ...(req.httpVersionMajor === 1 && { connection: "close" }),
  });
}

/** The requests that expected 100-continue and were not sent it (ListenerOptions.refusesBody). */
const withheld = new WeakSet<http.IncomingMessage | http2.Http2ServerRequest>();

/**
 * Whether the request expected 100 (Continue) and was not sent it, its body to be refused unread:
 * its handler must answer without waiting for the body, which the client may never send.
 */
export function continueWithheld(req: http.IncomingMessage | http2.Http2ServerRequest): boolean {
  return withheld.has(req);
}

/** The content type of an error answer in each framing (a request's own, when it is long). */
const framedTypes: Record<FramedError, string> = {
  grpc: "application/grpc",
  "grpc-web": "application/grpc-web",
  "grpc-web-text": "application/grpc-web-text",
  "connect-stream": "application/connect+json",
};

/**
 * An error answered here, before the request reached the dispatcher: in the framing of an RPC
 * call whose clients read no JSON error body (errorFramingOf: gRPC, gRPC-Web, a Connect stream;
 * grpc-js made a 408 UNKNOWN "Received HTTP status code 408"), else the JSON error, `status`.
 */
function sendRefusal(req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1], status: number, code: Code, reason: ServerReason, message: string): void {
  const contentType = mediaTypeOf(req);
  const framing = errorFramingOf(req, contentType);
  if (framing === undefined) return sendErrorBody(res, status, code, reason, message);
  // The request's own content type, unless it is long: the field may be what made the list too large.
  sendFramedError(req, res, framing, contentType.length <= 64 ? contentType : framedTypes[framing], serverError(code, reason, message));
}

/** The media type a request's Content-Type names (no parameters), or "". */
function mediaTypeOf(req: Parameters<RequestHandler>[0]): string {
  return String(req.headers["content-type"] ?? "").split(";")[0]!.trim();
}

/**
 * A request the request timeout cut off before it arrived whole, its answer not begun: marked
 * so (request-arrival.ts: its reader is told it did not arrive whole), and answered 408
 * DEADLINE_EXCEEDED, an RPC call in its own framing (sendRefusal). Every HTTP/2 stream's answer;
 * over HTTP/1.1, an RPC call's (answerClientError), its connection then closed.
 */
function refuseNotArrived(req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1], requestTimeoutMs: number): void {
  markArrivalTimedOut(req);
  sendRefusal(req, res, 408, Code.DeadlineExceeded, "DEADLINE_EXCEEDED", `the request did not arrive in time: all of it is due within ${requestTimeoutMs} ms`);
}

/**
 * The headers of an answer made here (listen's headersOf): its x-request-id (none where the port
 * sets none), and under TLS Strict-Transport-Security.
 */
type OwnHeaders = { [requestIdHeader]?: string; "strict-transport-security"?: string };

/** An Expect that is 100-continue, in any case (RFC 9110 10.1.1: the value is case-insensitive). */
const hundredContinue = /^[ \t]*100-continue[ \t]*$/i;

/** What an HTTP/1.1 server's "clientError" listener is told about the bytes it could not take. */
type ClientError = Error & { code?: string; reason?: string };

/**
 * What an HTTP/2 client that did not negotiate h2 over TLS is sent (RFC 9113 3.2: HTTP/2 over
 * TLS is chosen with ALPN): the server preface (an empty SETTINGS frame), then GOAWAY(last stream
 * 0, HTTP_1_1_REQUIRED) whose debug data says why.
 */
const noH2WithoutAlpn = h2Refusal(
  http2.constants.NGHTTP2_HTTP_1_1_REQUIRED,
  "HTTP/2 over TLS is negotiated with ALPN h2: this connection did not negotiate it, and is served HTTP/1.1",
);

/** The start of an HTTP/1.x request line: a method token and a space. */
const plainRequestLine = /^[A-Z]{3,12} /;
/** The start of what may still become such a request line (a method dribbled): more is awaited. */
const plainMethodSoFar = /^[A-Z]{1,12}$/;

/**
 * An HTTP/1.1 error answer as bytes, for a connection no ServerResponse answers (its bytes
 * refused by the parser, or not HTTPS on the TLS port): the JSON error, then the connection closes.
 */
function rawErrorAnswer(status: number, code: Code, reason: ServerReason, message: string, requestId = true, hsts?: string): string {
  const body = errorBody(code, reason, message);
  return (
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n` +
    (requestId ? `${requestIdHeader}: ${requestIdOf(undefined)}\r\n` : "") +
    (hsts !== undefined ? `strict-transport-security: ${hsts}\r\n` : "") +
    Object.entries(notStored).map(([name, value]) => `${name}: ${value}\r\n`).join("") +
    "content-type: application/json\r\n" +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    "connection: close\r\n\r\n" +
    body
  );
}

/** What a plain HTTP request on the TLS port is answered (sniffTls). */
function cleartextHttpRefusal(): string {
  return rawErrorAnswer(400, Code.InvalidArgument, "MALFORMED_REQUEST", "this port serves HTTPS: the request was sent in plain HTTP; use https://");
}

/** An HTTP/2 server preface (an empty SETTINGS frame), then GOAWAY(last stream 0, `code`, `debug`). */
function h2Refusal(code: number, debug: string): Buffer {
  const frame = (type: number, payload: Buffer) => {
    const header = Buffer.alloc(9);
    header.writeUIntBE(payload.length, 0, 3);
    header[3] = type;
    return Buffer.concat([header, payload]);
  };
  const goaway = Buffer.alloc(8);
  goaway.writeUInt32BE(0, 0);
  goaway.writeUInt32BE(code, 4);
  return Buffer.concat([frame(0x4, Buffer.alloc(0)), frame(0x7, Buffer.concat([goaway, Buffer.from(debug)]))]);
}

/** What an h2c client (the HTTP/2 preface in cleartext) on the TLS port is sent (sniffTls). */
const cleartextH2Refusal = h2Refusal(
  http2.constants.NGHTTP2_INADEQUATE_SECURITY,
  "this port serves HTTP/2 over TLS only: connect with TLS (https://, a gRPC client's TLS credentials), not in cleartext (h2c)",
);

/** The limits a clientError answer names. */
export interface ClientErrorLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  maxHeaderBytes: number;
}

/**
 * The answer to an HTTP/1.1 header block over the bound: the parser's refusal (below) and one it
 * let through (listen's headerBlockFloor) alike.
 */
function headerBlockTooLarge(maxHeaderBytes: number): [number, Code, ServerReason, string] {
  return [431, Code.ResourceExhausted, "REQUEST_TOO_LARGE", `the request's header block is larger than ${maxHeaderBytes} bytes`];
}

/** The status, code, reason and message of the answer to `e` (below). */
function clientErrorAnswer(e: ClientError, limits: ClientErrorLimits): [number, Code, ServerReason, string] {
  switch (e.code) {
    case "HPE_HEADER_OVERFLOW":
      return headerBlockTooLarge(limits.maxHeaderBytes);
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return [413, Code.ResourceExhausted, "REQUEST_TOO_LARGE", "the chunk extensions in the request body are too large"];
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return [
        408,
        Code.DeadlineExceeded,
        "DEADLINE_EXCEEDED",
        `the request did not arrive in time: its headers are due within ${limits.headersTimeoutMs} ms, all of it within ${limits.requestTimeoutMs} ms`,
      ];
    default: {
      // llhttp's reason ("Invalid header token") and code (HPE_INVALID_HEADER_TOKEN): fixed
      // ASCII texts, kept to printable ones all the same.
      const printable = (t: unknown) => (typeof t === "string" ? t.replace(/[^\x20-\x7e]/g, "?").slice(0, 200) : "");
      const reason = printable(e.reason);
      const code = printable(e.code);
      const what = reason !== "" && code !== "" ? `${reason} (${code})` : reason || code || "unreadable bytes";
      return [400, Code.InvalidArgument, "MALFORMED_REQUEST", `the request is not valid HTTP/1.1: ${what}`];
    }
  }
}

/**
 * The "clientError" listener of an HTTP/1.1 server: what Node does without one (its
 * socketOnError), but the answer carries the JSON error naming the problem, where Node's is a
 * bare status line: 400 for bytes its parser refuses (request line, headers, chunked framing),
 * 431 for a header block over the limit, 413 for chunk extensions over Node's, 408 when the
 * request has not arrived by the headers or request timeout (Node's sweep reports those here,
 * and closing the socket is this listener's job). An RPC call the request timeout cuts off
 * before its answer has begun is answered on that answer instead, as over HTTP/2
 * (refuseNotArrived), its connection then closed as one whose body is left unread
 * (lingeringClose). As Node does: nothing is written to a socket that is no longer writable
 * or whose current answer has begun (that would corrupt it), nor for a request answered before
 * its body arrived (that would be a second answer to it), and the socket is destroyed either
 * way (once the answer written has been handed over); a connection
 * the client reset is just destroyed. Bytes after a request that asked for the connection to
 * close are dropped while its answer is under way. A client's bytes are no server failure:
 * nothing is logged.
 */
export function answerClientError(limits: ClientErrorLimits & Pick<ListenerOptions, "requestIds" | "rpcCall" | "hsts">): (e: ClientError, socket: Duplex) => void {
  return (e, socket) => {
    if (e.code === "HPE_PAUSED_H2_UPGRADE" && (socket as tls.TLSSocket).encrypted && (socket as Socket).bytesWritten === 0) {
      // The HTTP/2 preface as a connection's first bytes, on a TLS connection that did not
      // negotiate h2 (no ALPN, or http/1.1): an HTTP/2 client (a gRPC client whose TLS layer
      // sends no ALPN), which would not read an HTTP/1.1 answer. It is told in its own framing.
      if (socket.writable) answerAndClose(socket, noH2WithoutAlpn);
      else socket.destroy();
      return;
    }
    const current = (socket as { _httpMessage?: (http.ServerResponse & { _headerSent?: boolean }) | null })._httpMessage;
    if (e.code === "HPE_CLOSED_CONNECTION" && current) {
      // Bytes after a request that asked for the connection to close (Connection: close, or
      // HTTP/1.0 without keep-alive), whose answer is still to go out: that answer is the
      // client's, and Node closes the connection once it is sent. What came after is not
      // processed (RFC 9112 9.6): the parser refuses it, and each read of it comes here, dropped.
      return;
    }
    // A request still arriving while no answer is attached to the socket was answered already
    // (Node detaches an answer once written): one that need not read the body, such as a call
    // past its deadline or to an unknown method. Another answer would be read as the next one's.
    const incoming = (socket as { parser?: { incoming?: http.IncomingMessage | null } | null }).parser?.incoming;
    const answered = !current && incoming != null && !incoming.complete;
    if (e.code !== "ECONNRESET" && socket.writable && !current?._headerSent && !answered) {
      if (e.code === "ERR_HTTP_REQUEST_TIMEOUT" && incoming && current?.req === incoming && !current.headersSent && (errorFramingOf(incoming, mediaTypeOf(incoming)) !== undefined || limits.rpcCall?.(incoming) === true)) {
        // An RPC call being read, its answer Node's current one: answered on it, as over HTTP/2
        // (a 408 with the JSON error is no answer a gRPC-Web or Connect streaming client reads),
        // with the headers its handler has set (x-request-id, CORS). The connection closes after
        // it (lingeringClose: the rest of the body is not read). Node lets go of a request once
        // its answer has gone, and never tells its reader that the connection closed: told here,
        // as Node tells one whose client left (the body cut short: request-arrival.ts).
        current.setHeader("connection", "close");
        socket.once("close", () => incoming.destroy());
        refuseNotArrived(incoming, current, limits.requestTimeoutMs);
        return;
      }
      // The request being read, refused by the request timeout: its reader sees the connection
      // close, as when a client leaves, and is told it was this (request-arrival.ts).
      if (e.code === "ERR_HTTP_REQUEST_TIMEOUT" && incoming) markArrivalTimedOut(incoming);
      answerAndClose(socket, rawErrorAnswer(...clientErrorAnswer(e, limits), limits.requestIds !== undefined, limits.hsts));
      return;
    }
    // That answer still on its way: what the client sends meanwhile (refused by the parser
    // again) is dropped.
    if (e.code !== "ECONNRESET" && socket.writableEnded && !socket.writableFinished && !socket.destroyed) return;
    socket.destroy();
  };
}

/**
 * Writes `answer` to a connection whose bytes were refused, and destroys the socket once it has
 * been handed over, not at once: under TLS, an answer written while the TLS layer is still
 * handing over the read that brought the refused bytes is encrypted and sent after that read,
 * and a socket destroyed meanwhile never sent it (the client saw the connection close unanswered).
 */
function answerAndClose(socket: Duplex, answer: string | Uint8Array): void {
  socket.end(answer, () => socket.destroy());
}

export async function listen(handler: RequestHandler, o: ListenerOptions): Promise<Listener> {
  let active = 0;
  const sockets = new Set<Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let closing = false;
  // drain(): set for good; every connection from then on is drained as described there.
  let draining = false;

  // The headers of an answer made here: the request's id (requestIdOf, as the handler gives it),
  // if any, and Strict-Transport-Security under TLS.
  const hsts = o.hsts === undefined ? {} : { "strict-transport-security": o.hsts };
  const headersOf = (req: Parameters<RequestHandler>[0]): OwnHeaders =>
    o.requestIds === undefined ? hsts : { [requestIdHeader]: requestIdOf(req.headers[requestIdHeader], o.requestIds.holdsSecret), ...hsts };
  const unmet: RequestHandler = (req, res) => expectationFailed(req, res, headersOf(req), o.hidden ?? credentialShaped);
  const tunnelRefused: RequestHandler = (req, res) => noTunnel(req, res, o.allow ?? servedMethods, headersOf(req));

  // Each HTTP/1.1 connection: the requests it has in flight (their answers go out in order, a
  // pipelined one waiting behind those before it), and how far its output has got.
  const h1Connections = new Map<Socket, H1Connection>();

  // `serve`: the request listener, or the answer to an expectation not met (expectationFailed) or
  // to an HTTP/2 CONNECT (noTunnel).
  const counted = (req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1], serve: RequestHandler = handler): void => {
    // The connection's socket, kept: Node lets go of `req.socket` (null) once the answer has gone.
    const socket = req.socket as Socket;
    const h1c = req.httpVersionMajor === 2 ? undefined : h1Connections.get(socket);
    if (h1c) {
      // Node reads every request of what it has read of a connection at once, and calls the
      // handler for each while the answers wait their turn: one read of 64 KiB of small
      // pipelined requests would be some 1,700 calls in flight for one client. Past as many as
      // HTTP/2 lets a connection have (its concurrent streams), the connection is shed; the
      // requests read after that are not served.
      if (req.socket.destroyed) return;
      if (h1c.answers.size + h1c.dropped >= o.maxConcurrentStreams) {
        o.onShed?.("pipelining", req.socket.remoteAddress, "http/1.1");
        req.socket.destroy();
        return;
      }
      // Node's parser reads on past a request whose answer closes the connection (a 501 or 413
      // whose body is not read, an upgrade, a drain), and the requests after it would be carried
      // out with no answer ever sent: the connection closes first. They are not served (RFC 9112
      // 9.6); their bytes are read and dropped (unread, they would make the close a reset, which
      // may lose the answer) until the connection closes.
      if (h1c.closing || (h1c.answers.size > 0 && anyClosesConnection(h1c.answers))) {
        h1c.closing = true;
        h1c.dropped++;
        req.resume();
        return;
      }
    }
    active++;
    let done = false;
    // Whichever comes first: the answer handed to the kernel whole, or closed before that. An
    // HTTP/1.1 answer then leaves its connection's waiting answers (a finished one needs no
    // closing when its connection goes).
    const finish = () => {
      if (done) return;
      done = true;
      active--;
      if (h1c === undefined) return;
      h1c.answers.delete(res as http.ServerResponse);
      // Its headers are written by now (or its connection is going anyway): Node's _last alone
      // tells, set by a Connection: close written too, without reading the header again.
      if ((res as { _last?: boolean })._last === true) h1c.closing = true;
      // The next request's turn (the first not closed meanwhile), unless the connection is
      // going: its requests are not served.
      if (h1c.closing || socket.destroyed) return;
      let start = h1c.queued.shift();
      while (start !== undefined && !start()) start = h1c.queued.shift();
      if (h1c.answers.size === 0 && h1c.refused !== undefined) {
        const refused = h1c.refused;
        h1c.refused = undefined;
        refused();
      }
    };
    res.once("close", finish);
    res.once("finish", finish);
    if (h1c) {
      h1c.answers.add(res as http.ServerResponse);
      (res as AnswerH1).watched = true;
    }
    if (req.httpVersionMajor === 2) {
      const h2res = res as http2.Http2ServerResponse;
      const stream = h2res.stream;
      // An answer sent before the request has ended (a body over the limit, a bad frame, an
      // OPTIONS * or a 204 whose client has not sent END_STREAM): ask the client to stop sending
      // with RST_STREAM(NO_ERROR) once the answer is out (RFC 9113 8.1). Otherwise the stream
      // stays half-open, its flow-control window full, and the request counted in flight (a
      // graceful stop waiting for it), until the client gives up: a client waiting to finish
      // its write never sees the stream end. A request that has ended (every call read whole)
      // needs none: no immediate is scheduled.
      const resetIfUnended = () => {
        if (!stream.closed && !stream.destroyed && !stream.state.remoteClose) stream.close(http2.constants.NGHTTP2_NO_ERROR);
      };
      // An answer with a body: the compatibility layer always ends it with trailers (sent from
      // its own "wantTrailers" listener, which runs before this one), so the reset follows them.
      // A request read whole (every call's) has ended: told by the request's own state, before
      // asking nghttp2 for the stream's (a native call and an object each time).
      stream.once("wantTrailers", () => {
        if (req.readableEnded || stream.state.remoteClose) return;
        setImmediate(resetIfUnended);
      });
      // An answer without one (OPTIONS *, a CORS preflight, a HEAD answer, a 204 or 304, an
      // answer ended with no body) ends the stream with its HEADERS frame: no trailers are asked
      // for, and nothing tells when it is sent. Once that frame has gone (the stream closed on
      // this side) the answer is out whole. An answer whose body is still waiting to be sent has
      // not closed its side, and is left to the listener above.
      (h2res as AnswerH2).onEnded = () => {
        if (req.readableEnded || stream.state.remoteClose) return;
        setImmediate(() => {
          if (stream.state.localClose === 1) resetIfUnended();
        });
      };
      // The request timeout, per stream: what HTTP/1.1 gets from Node. A stream whose request
      // has not fully arrived by then gets 408 (then the reset above), or a reset if its answer
      // has begun (a bidirectional stream).
      const timer = setTimeout(() => {
        if (stream.closed || stream.destroyed || stream.state.remoteClose) return;
        if (h2res.headersSent) return resetStream(stream, http2.constants.NGHTTP2_CANCEL);
        // The JSON error, an RPC call's in its own framing. Its body then ends as the stream
        // closes: its reader is told it did not arrive whole.
        refuseNotArrived(req, h2res, o.requestTimeoutMs);
      }, o.requestTimeoutMs);
      timer.unref();
      stream.once("close", () => clearTimeout(timer));
    }
    if (req.httpVersionMajor === 1 && (((closing || draining) && !(res as http.ServerResponse).headersSent) || upgradeAsked(req) || faultyFraming(req))) {
      (res as http.ServerResponse).setHeader("connection", "close");
    }
    // HTTP/1.1 answers go out in order: one pipelined behind an answer still being made or sent
    // would wait in memory, whole, however long the one before it takes (a client that does not
    // read, or a quiet stream such as a Watch: for ever). So a pipelined request is served once
    // the answers before it have been handed to the kernel, as Go's server serves them: a
    // connection holds one answer at a time, and its waiting requests hold only what the client
    // sent. One whose connection closes meanwhile is never served.
    if (h1c && h1c.answers.size > 1) {
      h1c.queued.push(() => {
        if (done) return false;
        serve(req, res);
        return true;
      });
      return;
    }
    serve(req, res);
  };

  // Expect: 100-continue. Node sends the 100 before the request listener runs, whatever the
  // request: a client waiting for it then sent a body the answer was to refuse unread (a
  // Content-Length over the limit: 413). Such a request gets its final answer alone.
  const checkContinue = (req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1]): void => {
    if (o.refusesBody?.(req)) withheld.add(req);
    else res.writeContinue();
    counted(req, res);
  };

  // An HTTP/1.1 header block over the bound on the wire, which Node's parser let through (see
  // headerBlockFloor): answered as one the parser refuses is, 431, without being served.
  const headerBlockRefused: RequestHandler = (req, res) => {
    for (const [name, value] of Object.entries(headersOf(req))) res.setHeader(name, value);
    sendErrorBody(res, ...headerBlockTooLarge(o.maxHeaderBytes));
  };
  const withinHeaderBlock =
    (serve: (req: http.IncomingMessage, res: http.ServerResponse) => void) =>
    (req: http.IncomingMessage, res: http.ServerResponse): void => {
      if (headerBlockFloor(req) <= o.maxHeaderBytes) serve(req, res);
      else counted(req, res, headerBlockRefused);
    };

  // Every answer is made by a class that marks an error answer no-store (cache-control.ts).
  const h1 = http.createServer(
    {
      ServerResponse: AnswerH1,
      requestTimeout: o.requestTimeoutMs,
      headersTimeout: o.headersTimeoutMs,
      keepAliveTimeout: o.idleTimeoutMs,
      maxHeaderSize: o.maxHeaderBytes,
      // A request without Host is the handler's to refuse (with the JSON error, naming the
      // problem): Node's own answer to an HTTP/1.1 one is a bare 400.
      requireHostHeader: false,
      // Node enforces the two timeouts above only when it sweeps its connections, every 30 s by
      // default: a client dribbling its headers or never finishing its body would hold the
      // socket for up to 30 s more than configured. Sweep at a quarter of the shorter timeout.
      connectionsCheckingInterval: Math.max(250, Math.floor(Math.min(o.headersTimeoutMs, o.requestTimeoutMs) / 4)),
    },
    withinHeaderBlock((req, res) => (req.httpVersionMajor === 1 ? counted(req, res) : versionNotServed(req, res, headersOf(req)))),
  );
  // Node keeps the first 2000 header lines of a request and drops the rest unseen (a second Host,
  // a proxy's X-Forwarded-For appended last): the header block's size is the one bound, as it
  // is for HTTP/2 (0: no count).
  h1.maxHeadersCount = 0;
  // Bytes the parser refuses after requests it has read whose answers are still to go (pipelined
  // ahead of them in the same read): those requests are being carried out, and their answers go
  // out first, in order; the JSON error follows them, then the connection closes (Node wrote it
  // at once, in place of the answer due, or cut the answer being sent). Whatever arrives
  // meanwhile (refused again by the parser, or timed out) is dropped. Bytes refused within a
  // request's body (its chunked framing) and a request that has not arrived in time end the
  // connection at once, as before (a request still being read is told it did not arrive whole
  // as its connection closes); so does a failing connection (a reset, a TLS error), always.
  const answerRefused = answerClientError(o);
  h1.on("clientError", (e: ClientError, socket: Duplex) => {
    const c = h1Connections.get(socket as Socket);
    const reading = (socket as { parser?: { incoming?: { complete?: boolean } | null } | null }).parser?.incoming?.complete === false;
    const parser = e.code?.startsWith("HPE_") === true;
    const failing = !parser && e.code !== "ERR_HTTP_REQUEST_TIMEOUT";
    if (c !== undefined && !failing && !socket.destroyed && (c.refused !== undefined || (parser && c.answers.size > 0 && !reading))) {
      c.refused ??= () => answerRefused(e, socket);
      return;
    }
    answerRefused(e, socket);
  });
  h1.on("checkContinue", withinHeaderBlock(checkContinue));
  h1.on("checkExpectation", withinHeaderBlock((req: http.IncomingMessage, res: http.ServerResponse) => counted(req, res, unmet)));
  // This server never listens itself (the front server hands it connections), and Node starts
  // the sweep that enforces requestTimeout and headersTimeout on "listening": without this, a
  // client dribbling its headers or never finishing its body holds its socket forever.
  h1.emit("listening");
  // HTTP/1.1 CONNECT: the socket is handed over, off the parser; answered here, then closed.
  // What the client sends meanwhile is read and dropped (unread data would make the close a
  // reset, which may lose the answer), for a headers timeout at most. Node hands the socket over
  // as soon as the CONNECT is parsed, while the requests pipelined before it may still be
  // answered: the 405 then waits its turn, as a pipelined request does (never answered if one of
  // those answers closes the connection). The answer under way holds the socket until it has
  // gone: assigning it the 405 threw, uncaught.
  h1.on("connect", (req: http.IncomingMessage, socket: Socket) => {
    const answer = () => {
      const res = new NotStoredOnError(req);
      res.shouldKeepAlive = false;
      res.assignSocket(socket);
      res.once("finish", () => {
        res.detachSocket(socket);
        socket.end();
        socket.resume();
        const linger = setTimeout(() => socket.destroy(), o.headersTimeoutMs);
        linger.unref();
        socket.once("close", () => clearTimeout(linger));
      });
      tunnelRefused(req, res);
      return true;
    };
    const c = h1Connections.get(socket);
    if (c === undefined || c.answers.size === 0) return void answer();
    // Node no longer tells the answer that holds the socket when the socket drains (it has let go
    // of the socket): told here, or an answer larger than the socket's buffer would wait for ever.
    socket.on("drain", () => {
      const current = (socket as { _httpMessage?: http.ServerResponse | null })._httpMessage;
      if (current?.writableNeedDrain) current.emit("drain");
    });
    c.queued.push(answer);
  });
  h1.on("connection", (socket: Socket) => {
    const c: H1Connection = { answers: new Set(), sent: 0, since: undefined, closing: false, dropped: 0, queued: [], refused: undefined };
    h1Connections.set(socket, c);
    // Node closes a connection after an answer that closes it with destroySoon (its FIN, then the
    // socket destroyed): with the request's body still arriving, that would be a reset, and the
    // rest of the body would be parsed meanwhile. Such a connection lingers (lingeringClose).
    // Node's own "data" listener, the one the socket has as Node hands it over, feeds its parser.
    const parserFeed = socket.listeners("data") as Array<(...args: unknown[]) => void>;
    const closable = socket as Socket & { destroySoon(): void; parser?: { incoming?: http.IncomingMessage | null } | null };
    const destroySoon = closable.destroySoon;
    closable.destroySoon = () => {
      const incoming = closable.parser?.incoming;
      if (incoming != null && !incoming.complete) lingeringClose(socket, parserFeed);
      else destroySoon.call(socket);
    };
    socket.once("close", () => {
      h1Connections.delete(socket);
      // Node 20 closes the answer being sent when its connection goes, but not those queued
      // behind it (pipelined): they would count as in flight for ever, and their calls (a
      // Watch, which ends only when told its client left) would go on serving no one. They are
      // closed here, once Node has closed its own.
      if (c.answers.size === 0) return;
      setImmediate(() => {
        for (const res of c.answers) {
          res.destroy();
          res.emit("close");
        }
      });
    });
  });
  // A client that sends requests (or pipelines many) and never reads the answers: Node's server
  // stops reading such a connection once its output backs up, but keeps it, and the answers it
  // holds, for ever (the keep-alive timeout only runs between requests, and server.timeout would
  // also cut quiet streams whose client does read). So a connection with output waiting whose
  // sent bytes have not moved for the idle timeout is closed. Quiet is not stalled: a stream
  // with nothing to send (a Watch between changes) is never closed here.
  const sweepH1 = () => {
    const now = performance.now();
    for (const [socket, c] of h1Connections) {
      const waiting = socket.writableLength;
      if (waiting === 0 || socket.destroyed) {
        c.since = undefined;
        continue;
      }
      const sent = bytesTaken(socket);
      if (c.since === undefined || sent !== c.sent) {
        c.sent = sent;
        c.since = now;
      } else if (now - c.since >= o.idleTimeoutMs) socket.destroy();
    }
  };
  const h1Sweep = setInterval(sweepH1, Math.max(100, Math.floor(o.idleTimeoutMs / 4)));
  h1Sweep.unref();
  // The header list's size (SETTINGS_MAX_HEADER_LIST_SIZE, each field counting its name, value
  // and 32 bytes) is the one bound, as the header block's is for HTTP/1.1: Node's default of 128
  // fields would reset a stream with ENHANCE_YOUR_CALM for a gRPC call with ~120 metadata
  // entries, a few KiB. A field counts at least 33 bytes, so this many never bind first.
  // nghttp2 (Node) reads a header list up to twice the bound (advertised so), and a request over
  // the bound but within that is answered, on its own stream, as an HTTP/1.1 header block over it
  // is: 431 REQUEST_TOO_LARGE, 414 for a :path over the bound alone (gRPC, gRPC-Web and Connect
  // streams: RESOURCE_EXHAUSTED in their framing). Held to the bound itself, nghttp2 reset such a
  // stream (ENHANCE_YOUR_CALM) before any answer, and the client was told nothing of why (grpc-js:
  // RESOURCE_EXHAUSTED "Bandwidth exhausted or memory limit exceeded"; grpc-go's server, too,
  // resets it, FRAME_SIZE_ERROR, where Go's net/http answers 431). Beyond twice the bound nghttp2
  // still resets the stream, the list not read whole: such a request holds at most that much,
  // as many at once as normal ones (SETTINGS_MAX_CONCURRENT_STREAMS), and is answered and closed
  // at once. (One field whose encoding is over 64 KiB is a connection error to nghttp2's HPACK
  // decoder, GOAWAY(COMPRESSION_ERROR): the session ends, as Go's ends for a list far over its
  // bound.) The size is summed for every request anyway: a normal one costs nothing more.
  const headerListCap = 2 * o.maxHeaderBytes;
  const maxHeaderListPairs = Math.ceil(headerListCap / 32);
  const headerListRefused: RequestHandler = (req, res) => {
    for (const [name, value] of Object.entries(headersOf(req))) res.setHeader(name, value);
    // A :path over the bound alone is 414, as an HTTP/1.1 request target is (RFC 9110 15.5.15).
    const targetTooLong = (req.url ?? "").length > o.maxHeaderBytes;
    const message = targetTooLong ? `the request target is longer than ${o.maxHeaderBytes} bytes` : `the request's header list is larger than ${o.maxHeaderBytes} bytes`;
    sendRefusal(req, res, targetTooLong ? 414 : 431, Code.ResourceExhausted, "REQUEST_TOO_LARGE", message);
  };
  // Node holds a stream's header list to the SETTINGS_MAX_HEADER_LIST_SIZE advertised only once
  // the client has acknowledged that SETTINGS frame; before that, up to 64 KiB. A client with
  // prior knowledge (h2c) sends its first requests with its preface, before the server's
  // SETTINGS have even reached it: those are held to the same bounds here, a list over twice
  // the bound reset as nghttp2 resets a later one (ENHANCE_YOUR_CALM), before anything of it is
  // served.
  const withinHeaderList =
    <A extends unknown[]>(serve: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, ...rest: A) => void) =>
    (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, ...rest: A): void => {
      const size = headerListSize(req.rawHeaders);
      if (size <= o.maxHeaderBytes) serve(req, res, ...rest);
      else if (size <= headerListCap) counted(req, res, headerListRefused);
      else resetStream(req.stream, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    };
  const h2 = http2.createServer(
    {
      settings: { maxConcurrentStreams: o.maxConcurrentStreams, maxHeaderListSize: headerListCap },
      maxHeaderListPairs,
      maxSessionMemory: 20,
      Http2ServerResponse: AnswerH2,
    },
    withinHeaderList(counted),
  );
  // CONNECT comes to the "connect" listener, not the request listener: its 405 is counted in flight
  // all the same (a graceful stop waits for it to go out), and is timed and reset once it is out
  // as any answer to a request not ended (a CONNECT request never ends: its stream is the tunnel).
  h2.on("connect", withinHeaderList((req, res) => counted(req, res, tunnelRefused)));
  h2.on("checkContinue", withinHeaderList(checkContinue));
  // Node's HTTP/2 server takes only "100-continue" spelled so for the expectation it meets (its
  // HTTP/1.1 server, any case): another spelling of it is met the same.
  h2.on(
    "checkExpectation",
    withinHeaderList((req, res) => (hundredContinue.test(String(req.headers.expect)) ? checkContinue(req, res) : counted(req, res, unmet))),
  );

  // Draining an HTTP/2 session (drain()): a GOAWAY names the last stream the server has read,
  // and nghttp2 ignores every stream the client opens after it is sent (Node offers no
  // shutdown notice, a GOAWAY naming every stream, to send first), so a client that opened one
  // as the GOAWAY was on its way opens it again on a new connection (RFC 9113 6.8 says it may:
  // it was not processed). To narrow that race the GOAWAY waits one round trip: a PING first,
  // and once its ACK has arrived every stream the client sent before reading the PING has been
  // read too. It is sent after the read that carried the ACK (an immediate): a GOAWAY submitted
  // while nghttp2 is still reading names the last stream read so far, and would close unserved
  // the streams later in the same read. A client that does not ack within drainPingAckMs (a
  // broken or hostile peer, or an ACK stuck behind a stalled connection) is sent the GOAWAY
  // anyway: left to the stop, its session would meet the hard close the drain is there to
  // avoid. The bound is fixed, not a setting: a round trip takes milliseconds, a few hundred
  // over a poor link, so a client that acks is not cut short by it, and it stays well inside a
  // delay of a few seconds (the headers timeout, 10 s by default, could outlast the delay).
  // Each session is drained once: by drain() when its preface had arrived by then, else once
  // its first call has been answered (the "session" handler).
  const established = new WeakSet<http2.ServerHttp2Session>();
  const drainPingAckMs = 1000;
  const drainSession = (session: http2.ServerHttp2Session) => {
    if (session.closed || session.destroyed) return;
    // Whichever comes first: the ACK, the bound, the PING not sent, or the session destroyed
    // (the callback then gets an error); a later one finds the session closed.
    const goAway = () => {
      clearTimeout(unacked);
      setImmediate(() => {
        if (!session.closed && !session.destroyed) session.close();
      });
    };
    const unacked = setTimeout(goAway, drainPingAckMs).unref();
    session.once("close", () => clearTimeout(unacked));
    if (!session.ping(goAway)) goAway();
  };

  // The peer of the connection being handed to the HTTP/2 server: its "session" event follows
  // synchronously.
  let accepting: Socket | undefined;
  h2.on("session", (session: http2.ServerHttp2Session) => {
    const socket = accepting!;
    const peer = socket.remoteAddress;
    sessionPeers.set(session, peer);
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    // The client's connection preface ends with its SETTINGS frame: until that has arrived (a
    // preface dribbled or cut short, over TLS as in cleartext) the connection is still arriving,
    // and is closed at the headers timeout as an HTTP/1.1 header block would be, not left to
    // the session's idle timeout.
    const prefaceDeadline = setTimeout(() => session.destroy(), o.headersTimeoutMs);
    // A session is drained once its preface has arrived whole (before that a GOAWAY would precede
    // the streams its client is sending with the preface). One opened during a drain is drained
    // once its first call has been answered: drained at once, a client that opens its connection
    // ahead of its first call (a channel, a client still preparing its request) would meet the
    // GOAWAY before any call and dial again, and again, served by no connection.
    session.once("remoteSettings", () => {
      clearTimeout(prefaceDeadline);
      established.add(session);
      if (draining) session.once("stream", (stream: http2.ServerHttp2Stream) => stream.once("close", () => drainSession(session)));
    });
    session.once("close", () => clearTimeout(prefaceDeadline));
    guardSession(session, {
      socket,
      idleTimeoutMs: o.idleTimeoutMs,
      maxConcurrentStreams: o.maxConcurrentStreams,
      onShed: (reason) => o.onShed?.(reason, peer, "h2"),
    });
  });
  const toH2 = (socket: Socket, stream: Socket) => {
    accepting = socket;
    try {
      h2.emit("connection", stream);
    } finally {
      accepting = undefined;
    }
  };

  const track = (socket: Socket) => {
    // A client that vanished (its host gone, a NAT that forgot it) sends nothing, not even a
    // reset: during a quiet stream (a Watch) nothing would ever notice. The kernel's keepalive
    // probes do (libuv probes every second after the delay, and gives up after 10). Set on the
    // TCP socket itself (under TLS, the one under the TLS layer), in the worker that serves it:
    // a connection handed to another worker is the same socket there.
    if (o.keepAliveMs > 0) socket.setKeepAlive(true, o.keepAliveMs);
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };

  let front: net.Server;
  let ticketKeys: NodeJS.Timeout | undefined;
  if (o.tls) {
    front = tls.createServer(
      {
        cert: o.tls.cert,
        key: o.tls.key,
        ...tlsPolicy,
        // In the server's order of preference. http/1.0 (RFC 7301's registry) is served as it is
        // in cleartext: a client that offers it alone (curl --http1.0) was refused the handshake
        // (no_application_protocol).
        ALPNProtocols: ["h2", "http/1.1", "http/1.0"],
        // Node's default is 120 s: a connection that never sends a ClientHello would hold a
        // socket that long.
        handshakeTimeout: o.headersTimeoutMs,
      },
      (socket) => {
        const tcp = (socket as unknown as { _parent?: Socket })._parent;
        if (tcp) clearTimeout(handshakeDeadlines.get(tcp));
        if (socket.alpnProtocol === "h2") toH2(socket, socket);
        else h1.emit("connection", socket);
      },
    );
    // Node makes the key that seals session tickets once, and keeps it for the life of the
    // process: a TLS 1.2 ticket (sent in clear) holds its session's master secret, so that one
    // key read out of memory would open every recorded session resumable with it, for weeks,
    // whatever ECDHE gave them. It is replaced every hour; a ticket sealed with an older one
    // gets a full handshake (as one shown to another worker does: each has its own key).
    const tlsFront = front as tls.Server;
    ticketKeys = setInterval(() => tlsFront.setTicketKeys(randomBytes(48)), o.ticketKeyRotationMs ?? 3_600_000);
    ticketKeys.unref();
    // A failed or timed-out handshake (ERR_TLS_HANDSHAKE_TIMEOUT): nothing to report, and the
    // connection goes (with a listener here, Node leaves that to the listener).
    front.on("tlsClientError", (_error: Error, socket: tls.TLSSocket) => socket.destroy());
  } else {
    front = net.createServer({ noDelay: true }, (socket) => {
      track(socket);
      // A connection that has not told which protocol it speaks within the headers timeout (no
      // byte, or the start of the HTTP/2 preface dribbled), or whose HTTP/2 preface has not
      // arrived whole by then, is closed: a deadline, not the socket's idle timeout, which every
      // byte would start again (14 bytes, 14 timeouts), nor the HTTP/2 session's idle timeout.
      const undecided = setTimeout(() => socket.destroy(), o.headersTimeoutMs);
      socket.once("close", () => clearTimeout(undecided));
      let head: Buffer = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
        const n = Math.min(head.length, preface.length);
        const isH2 = head.subarray(0, n).equals(preface.subarray(0, n));
        if (isH2 && head.length < preface.length) return; // need more bytes to be sure
        const whole = Math.min(head.length, wholePreface.length);
        if (isH2 && head.length < wholePreface.length && head.subarray(0, whole).equals(wholePreface.subarray(0, whole))) return; // the rest of the preface, within the deadline
        socket.removeListener("data", onData);
        clearTimeout(undecided);
        if (isH2) {
          // The bytes read so far go back into the socket's buffer: Node's HTTP/2 session reads
          // that buffer first, then takes over the socket's native handle (no JS stream in the
          // data path, and the session sees the socket's own address).
          socket.pause();
          socket.unshift(head);
          toH2(socket, socket);
        } else {
          socket.pause();
          socket.unshift(head);
          h1.emit("connection", socket);
          socket.resume();
        }
      };
      socket.on("data", onData);
    });
  }

  // Under TLS: each connection's first bytes. A TLS record goes to `front` (the bytes read put
  // back: the TLS layer reads them first), with what is left of the headers timeout for its
  // handshake. A client that speaks in cleartext to this port is told so in its own protocol
  // rather than seeing the connection drop: an HTTP/1.x request line is answered 400 with the
  // JSON error (however few bytes at a time its method arrives), the HTTP/2 preface (a gRPC
  // client without TLS) GOAWAY(INADEQUATE_SECURITY) with a debug text; what it sends meanwhile
  // is read and dropped, and the connection closed once the client closes it or after the
  // headers timeout.
  const handshakeDeadlines = new WeakMap<Socket, NodeJS.Timeout>();
  const sniffTls = (socket: Socket) => {
    track(socket);
    const deadline = setTimeout(() => socket.destroy(), o.headersTimeoutMs);
    handshakeDeadlines.set(socket, deadline);
    socket.once("close", () => clearTimeout(deadline));
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const n = Math.min(head.length, preface.length);
      const isH2 = head.subarray(0, n).equals(preface.subarray(0, n));
      if (isH2 && head.length < preface.length) return; // need more bytes to be sure
      // A method not yet followed by its space (sent a byte at a time): more is awaited, within
      // the deadline above. A TLS record starts with 0x16, never a letter.
      const start = head.toString("latin1", 0, 16);
      if (plainMethodSoFar.test(start)) return;
      socket.removeListener("data", onData);
      if (head[0] === 0x16 || !(isH2 || plainRequestLine.test(start))) {
        // A handshake, or bytes OpenSSL is left to refuse.
        socket.pause();
        socket.unshift(head);
        front.emit("connection", socket);
        return;
      }
      socket.on("data", () => {}); // read and dropped: unread bytes would make the close a reset
      socket.end(isH2 ? cleartextH2Refusal : cleartextHttpRefusal());
    };
    socket.on("data", onData);
    socket.resume();
  };

  // Each connection, however it arrived, is served by `front`. Without TLS it is a net.Server
  // too, so a connection handed over is set up as one it accepted (no Nagle delay).
  // Under TLS a connection's first bytes are looked at first (sniffTls).
  const serve = (socket: Socket) => {
    if (o.tls) return sniffTls(socket);
    socket.setNoDelay(true);
    front.emit("connection", socket);
  };
  // TESSERA_MAX_CONNECTIONS counts the connections served here. A connection this process
  // accepts itself is refused by Node as it is accepted (maxConnections: its handle closed, no
  // socket made); one handed over (cluster.ts) is checked as it arrives.
  const max = o.maxConnections ?? 0;
  const full = () => max > 0 && sockets.size >= max;
  const refuse = (socket: Socket) => {
    socket.destroy();
    o.onRefused?.();
  };
  // What listens on the port: `front` itself (plain), an acceptor that hands each connection to
  // serve (TLS), or under TESSERA_WORKERS the first worker's acceptor; a follower has none.
  let acceptor: net.Server | undefined;
  let port: number;
  const sharing = o.sharing;
  if (sharing && !sharing.leads) {
    // A connection still on its way when this worker stops is refused: the leader serves it.
    // So is one that finds no room here (the leader serves it if it has room).
    port = await sharing.follow((socket) => {
      if (closing || full()) return false;
      serve(socket);
      return true;
    });
  } else {
    // Accepted paused, so that a connection handed to another worker has had nothing read
    // here; one kept here is served and read from now on.
    const serveHere = (socket: Socket) => {
      if (full()) return refuse(socket);
      serve(socket);
      if (!o.tls) socket.resume();
    };
    const server = sharing
      ? net.createServer({ pauseOnConnect: true }, (socket) => {
          if (!sharing.handOff(socket)) serveHere(socket);
        })
      : o.tls
        ? net.createServer({ pauseOnConnect: true }, serve)
        : front;
    acceptor = server;
    if (!sharing && max > 0) {
      server.maxConnections = max;
      server.on("drop", () => o.onRefused?.());
    }
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(o.port, o.host, () => {
        server.removeListener("error", reject);
        resolve();
      });
    });
    port = (server.address() as net.AddressInfo).port;
    sharing?.listening(port, serveHere);
  }

  return {
    port,
    secure: o.tls !== undefined,
    inFlight: () => active,
    connections: () => sockets.size,
    setCertificate(pair) {
      if (!o.tls) throw new Error("not serving TLS");
      // Options not given here are reset to the process's defaults: the policy goes again.
      (front as tls.Server).setSecureContext({ cert: pair.cert, key: pair.key, ...tlsPolicy });
    },
    drain() {
      if (draining || closing) return;
      draining = true;
      // The HTTP/1.1 answers under way that have not begun get Connection: close as well (the
      // later ones get it in counted); an answer that has begun keeps its connection, which the
      // answer after it closes. An idle connection is not closed here: a request its client
      // sends as it closes would be lost (the keep-alive race the drain is there to avoid).
      for (const c of h1Connections.values()) {
        for (const res of c.answers) if (!res.headersSent) res.setHeader("connection", "close");
      }
      for (const s of sessions) if (established.has(s)) drainSession(s);
    },
    async close(graceMs: number) {
      closing = true;
      // No new connection (a follower has none of its own: the leader stops handing them over).
      if (sharing && !sharing.leads) sharing.leave();
      const stopped = new Promise<void>((resolve) => {
        if (!acceptor) return resolve();
        acceptor.close(() => resolve());
        // The leader's acceptor reports itself closed only once every follower has answered that
        // the connections handed to it are closed (Node's bookkeeping of sent sockets), and a
        // follower that dies with one on its way never answers: its port is closed now, and the
        // leader waits for its followers themselves (stopFollowers).
        if (sharing?.leads) resolve();
      });
      for (const s of sessions) s.close();
      // On the monotonic clock: a wall clock stepped meanwhile must not cut the grace period
      // short, nor make the stop wait for the clock to catch up.
      const deadline = performance.now() + graceMs;
      while (active > 0 && performance.now() < deadline) {
        h1.closeIdleConnections();
        await new Promise((r) => setTimeout(r, 20));
      }
      h1.closeIdleConnections();
      h1.close(() => {}); // stops the timeout sweep (it is not listening: the callback gets an error)
      clearInterval(h1Sweep);
      clearInterval(ticketKeys);
      for (const s of sessions) s.destroy();
      for (const s of sockets) s.destroy();
      await stopped;
    },
  };
}
