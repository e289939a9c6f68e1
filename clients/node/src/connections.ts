// A transport's connections: one HTTP/2 session manager (connect-node's), or one HTTP/1.1
// agent, that close() ends once the calls under way have finished.
import { Code, ConnectError } from "@connectrpc/connect";
import { createNodeHttpClient, Http2SessionManager, type Http2SessionOptions } from "@connectrpc/connect-node";
import type { UniversalClientFn } from "@connectrpc/connect/protocol";
import http from "node:http";
import type * as http2 from "node:http2";
import https from "node:https";
import net, { type Socket } from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { causeChain, causedBy } from "./causes.js";
import { keptSafe } from "./kept-safe.js";
import { closedStreamsReported } from "./transport-failures.js";

/**
 * What a call made after close() fails with: CANCELED, as grpc-go fails a call on a closed
 * ClientConn ("grpc: the client connection is closing"). The caller ended the transport, the
 * server is not unavailable: a policy that retries UNAVAILABLE must not retry it.
 */
export function transportClosed(): ConnectError {
  return new ConnectError("the transport was closed (close()): it makes no more calls", Code.Canceled);
}

/**
 * Failures of a call's HTTP request that came before any byte of its answer (its status and
 * headers): the connection refused, reset or lost, a GOAWAY, a refused stream. The error itself
 * or one of its causes is here.
 */
const unanswered = new WeakSet<object>();

/** Whether `e` (or one of its causes) failed its request before any byte of the answer came. */
export function failedUnanswered(e: unknown): boolean {
  return causedBy(e, unanswered);
}

/** The errors of boundedConnection's bound: a connection not established within pingTimeoutMs. */
const notEstablished = new WeakSet<object>();

/** Whether `e` (or one of its causes) is a connection not established within pingTimeoutMs (boundedConnection). */
export function connectionNotEstablished(e: unknown): boolean {
  return causedBy(e, notEstablished);
}

/**
 * The failures of requests whose connection was refused (connectionRefused), or that were given
 * up with their connection (connectionNotEstablished) before their stream was opened: nothing of
 * them was written to it. connect-node opens a request's
 * stream once the connection is made (TCP, and for https TLS's handshake), and from then on
 * node:http2 writes the request at once, before the server's SETTINGS have come: a request whose
 * stream was opened has reached the server's socket, and a server that reads it late processes
 * it.
 */
const unsent = new WeakSet<object>();

/**
 * `e`, the connection's failure, as this request's own (the connection's error is every waiting
 * request's), marked as never sent.
 */
function unsentFailure(e: unknown): unknown {
  const own = e instanceof ConnectError ? new ConnectError(e.rawMessage, e.code, e.metadata, undefined, e) : e;
  if (typeof own === "object" && own !== null) unsent.add(own);
  return own;
}

/**
 * `e`, a connection's failure as connect-node gives it, as this request's own: said in words when
 * it was silent (described), and marked as never sent when nothing of the request was written
 * (its connection refused, or not established within pingTimeoutMs before its stream was opened).
 */
function connectionFailure(e: unknown): unknown {
  const failure = unavailableUnmade(described(e));
  return connectionNotEstablished(failure) || connectionRefused(failure) ? unsentFailure(failure) : failure;
}

/**
 * `e`, a connection that was never made (Node's socket failed to bind its local address or to
 * connect: EHOSTUNREACH, ENETUNREACH, EADDRNOTAVAIL...; with autoSelectFamily, an AggregateError
 * of such failures), as UNAVAILABLE, as gRPC clients report any connection failure: connect-node
 * makes only ECONNREFUSED, ETIMEDOUT and the resolver's codes so, and the rest INTERNAL, as a
 * fault of the server's. Its message, metadata and cause are kept.
 */
function unavailableUnmade(e: unknown): unknown {
  if (!(e instanceof ConnectError) || e.code === Code.Unavailable || !unmade(e)) return e;
  return new ConnectError(e.rawMessage, Code.Unavailable, e.metadata, undefined, e.cause);
}

/** Whether `e` (or one of its causes) is a socket's failure to bind or connect (see unavailableUnmade). */
function unmade(e: unknown): boolean {
  return failedSo(e, (c) => ["bind", "connect"].includes((c as NodeJS.ErrnoException | undefined)?.syscall ?? ""));
}

/**
 * Whether `e` or one of its causes is a failure `so` says it is, or an AggregateError (Node's
 * autoSelectFamily trying each address of a host) every member of which is: its own code is
 * its first member's alone.
 */
function failedSo(e: unknown, so: (c: unknown) => boolean): boolean {
  for (const c of causeChain(e)) {
    if (so(c)) return true;
    if (c instanceof AggregateError && c.errors.length > 0 && c.errors.every(so)) return true;
  }
  return false;
}

/**
 * `e`, or when it says nothing (a ConnectError with an empty message, connect-node's copy of
 * Node's), the same failure saying what its cause's members said. A host name with several
 * addresses is connected to by trying each (autoSelectFamily, Node's default): when every one
 * fails, Node's error is an AggregateError with no message, its members the failures of each
 * address (`connect ECONNREFUSED ::1:8080`, ETIMEDOUT, EHOSTUNREACH...), and the call failed
 * UNAVAILABLE with the message "". Its message is theirs, joined by "; ", as a single address's
 * failure's is its own; its code, metadata and cause (the AggregateError) are kept. (A transport
 * failure has no details.)
 */
function described(e: unknown): unknown {
  if (!(e instanceof ConnectError) || e.rawMessage !== "") return e;
  for (const c of causeChain(e)) {
    if (!(c instanceof AggregateError)) continue;
    const said = (c.errors as unknown[]).map((m) => (m instanceof Error ? m.message : "")).filter((m) => m !== "");
    if (said.length > 0) return new ConnectError(said.join("; "), e.code, e.metadata, undefined, e.cause);
  }
  return e;
}

/**
 * Whether `e` (or one of its causes) is the failure of a request that never left: given up with
 * a connection not established within pingTimeoutMs (its TCP connection or TLS handshake never
 * completed) before its stream was opened, or whose connection was refused (connectionRefused).
 * It may be sent once more, whatever its method.
 */
export function neverSent(e: unknown): boolean {
  return causedBy(e, unsent);
}

/**
 * Whether `e` (or one of its causes) is a TCP connection refused: ECONNREFUSED from Node's
 * connect (syscall "connect"; with autoSelectFamily, an AggregateError of such, every address
 * tried refusing: the AggregateError's own code is its first member's alone, and a host one of
 * whose addresses refused and another was unreachable is not refusing, whichever came first).
 * The kernel reports it only for a connection still being made (Linux tcp_reset: a RST
 * answering the SYN, SYN_SENT; or an ICMP error then); an established one reset is ECONNRESET,
 * and an ICMP error on one that later times out gives ECONNREFUSED from a read or write, not
 * from connect. So nothing of the request went out: node:http2's session
 * emits "connect", and connect-node opens the request's stream, only once TCP is through; over
 * HTTP/1.1 what the request writes waits in its new socket (net.Socket holds writes until
 * "connect"), which Node's agent gives no other request.
 */
function connectionRefused(e: unknown): boolean {
  return failedSo(e, (c) => (c as NodeJS.ErrnoException | undefined)?.code === "ECONNREFUSED" && (c as NodeJS.ErrnoException).syscall === "connect");
}

export type NodeConnection =
  | { httpVersion: "2"; ping: Http2SessionOptions; nodeOptions?: http2.SecureClientSessionOptions | undefined }
  | { httpVersion: "1.1"; nodeOptions?: https.RequestOptions | undefined };

/**
 * The connections of one transport, and the HTTP client its calls go through. After close(), a
 * request is refused (transportClosed) before anything is sent; requests under way finish.
 */
export class Connections {
  readonly httpClient: UniversalClientFn;
  private closed: Promise<void> | undefined;
  private readonly sessions: ClosingSessionManager | undefined;
  private readonly agent: http.Agent | undefined;

  constructor(baseUrl: string, node: NodeConnection) {
    let client: UniversalClientFn;
    if (node.httpVersion === "2") {
      const sessions = (this.sessions = new ClosingSessionManager(baseUrl, node.ping, node.nodeOptions));
      client = createNodeHttpClient({ httpVersion: "2", sessionProvider: () => sessions });
    } else {
      // An agent of the transport's own (as Node's global one: keep-alive, 5 s idle), unless the
      // caller gave one: that one is its owner's to close. Of the URL's scheme as parsed, which
      // connect-node goes by ("HTTPS://" is https: an http.Agent would fail every call).
      const given = (node.nodeOptions as { agent?: unknown } | undefined)?.agent;
      const secure = new URL(baseUrl).protocol === "https:";
      if (given === undefined) this.agent = new (secure ? https.Agent : http.Agent)({ keepAlive: true, scheduling: "lifo", timeout: 5000 });
      const nodeOptions = { ...node.nodeOptions, ...(this.agent !== undefined && { agent: this.agent }) };
      const http1 = createNodeHttpClient({ httpVersion: "1.1", nodeOptions });
      client = (req) => http1(req).catch((e: unknown) => {
        throw connectionFailure(e);
      });
    }
    this.httpClient = async (req) => {
      if (this.closed !== undefined) throw transportClosed();
      try {
        return await client(req);
      } catch (e) {
        if (typeof e === "object" && e !== null) unanswered.add(e);
        throw e;
      }
    };
  }

  /**
   * Refuses new calls, lets those under way finish, then ends the connections (HTTP/2: each
   * session closed once its streams have; HTTP/1.1: each socket once its request is done, idle
   * ones at once). Resolves when they are closed; calling it again gives the same promise.
   */
  close(): Promise<void> {
    this.closed ??= this.sessions !== undefined ? this.sessions.close() : closeAgent(this.agent);
    return this.closed;
  }
}

/** Ends `agent`'s idle sockets now and the others once their request is done; resolves when all are closed. */
async function closeAgent(agent: http.Agent | undefined): Promise<void> {
  if (agent === undefined) return;
  // Node's agent destroys a socket freed while keepAlive is off, rather than keeping it.
  (agent as unknown as { keepAlive: boolean }).keepAlive = false;
  const all = (pool: NodeJS.ReadOnlyDict<Socket[]>) => Object.values(pool).flatMap((sockets) => sockets ?? []);
  for (const socket of all(agent.freeSockets)) socket.destroy();
  await Promise.all(all(agent.sockets).map((socket) => (socket.destroyed ? undefined : new Promise((r) => socket.once("close", r)))));
}

/**
 * A connection boundedConnection watches until the server's HTTP/2 SETTINGS arrive: its socket,
 * and `established`, which ends the watch. It is kept on the socket (attemptKey), where the
 * session's `socket` (node:http2's proxy, which routes the reads of other properties to the
 * socket) finds it.
 */
interface Attempt {
  readonly socket: Socket;
  readonly established: () => void;
  /** The session over the socket, once a call has used it (ClosingSessionManager.request). */
  session?: http2.Http2Session;
}

const attemptKey = Symbol("tessera.connectionAttempt");

/**
 * node:http2's `createConnection` for `authority`: the TCP connection (and for https the TLS
 * one, ALPN h2, the server name unless the host is an IP address), as http2.connect() opens it
 * with the same options; or the caller's own createConnection. A connection not established
 * within `timeoutMs` is given up: established is when the server's SETTINGS (the first frame an
 * HTTP/2 server sends, RFC 9113 3.4) arrive, or its acknowledgement of the client's. A server
 * that takes the TCP connection and answers nothing (a Tessera whose event loop hung, a proxy
 * holding it, another service on the port; over TLS, before or after the handshake) is bounded
 * so: Node bounds none of it, and the session counts as connected once TCP (or TLS) has. Calls
 * then waited for their deadlines (or for ever, as close() did), and connect-node's manager
 * awaited a connection that never finished for every call of the transport, though a new one
 * would be answered. The socket is destroyed with a ConnectError, which the session emits: the
 * calls waiting for it fail UNAVAILABLE, and the next call opens a new connection. As a PING not
 * answered within pingTimeoutMs closes a connection, a connection not answered within it does.
 * The caller's own connection is bounded as ours when it is a net.Socket (TCP or TLS, a tunnel's
 * too); any other stream Node wraps in a socket of its own, from which its session cannot be
 * found: it is left as given.
 */
function boundedConnection(
  given: http2.SecureClientSessionOptions["createConnection"],
  timeoutMs: number,
): (authority: URL, options: http2.SecureClientSessionOptions) => Duplex {
  return (authority, options) => {
    const socket = given !== undefined ? given(authority, options) : connection(authority, options);
    // A socket given twice is Node's to refuse (ERR_HTTP2_SOCKET_BOUND).
    if (!(socket instanceof net.Socket) || Object.hasOwn(socket, attemptKey)) return socket;
    const giveUp = () => {
      // The acknowledgement of the client's SETTINGS follows the server's own.
      if (attempt.session?.pendingSettingsAck === false) return;
      const error = new ConnectError(`the connection to the server was not established within pingTimeoutMs (${timeoutMs} ms)`, Code.Unavailable);
      notEstablished.add(error);
      socket.destroy(error);
    };
    const timer = setTimeout(giveUp, timeoutMs).unref();
    const attempt: Attempt = { socket, established: () => clearTimeout(timer) };
    Object.defineProperty(socket, attemptKey, { value: attempt });
    socket.once("close", attempt.established);
    return socket;
  };
}

/** The TCP connection to `authority` (and for https the TLS one), as http2.connect() opens it. */
function connection(authority: URL, options: http2.SecureClientSessionOptions): Socket {
  const host = authority.hostname.startsWith("[") ? authority.hostname.slice(1, -1) : authority.hostname || "localhost";
  const port = Number(authority.port || (authority.protocol === "http:" ? 80 : 443));
  if (authority.protocol === "http:") return net.connect({ host, port, ...(options as net.NetConnectOpts) });
  return tls.connect({ host, port, ...options, ALPNProtocols: ["h2"], servername: options.servername || (net.isIP(host) ? undefined : host) });
}

/**
 * The attempt of `session`'s socket (boundedConnection's), now linked to the session: its watch
 * ends when the server's SETTINGS arrive. Called when a call first uses the session, in the
 * same turn of the event loop as its "connect": nothing has been read from the server since,
 * unless the socket came connected with the server's bytes already buffered (a caller's tunnel),
 * which Node reads then; for those, the server's acknowledgement of the client's SETTINGS, which
 * follows its own, ends the watch (pendingSettingsAck, looked at when the time is up).
 * Undefined for a socket it does not watch, or a session that has lost its socket.
 */
function linkedAttempt(session: http2.Http2Session): Attempt | undefined {
  let attempt: Attempt | undefined;
  try {
    attempt = (session.socket as unknown as { [attemptKey]?: Attempt })[attemptKey];
  } catch {
    // The session has no socket already.
  }
  if (attempt === undefined || attempt.session !== undefined) return attempt;
  attempt.session = session;
  if (!session.pendingSettingsAck) attempt.established();
  else session.once("remoteSettings", attempt.established);
  return attempt;
}

/**
 * connect-node's session manager, each of whose sessions is kept safe to ping and to fail
 * (keptSafe) once a request has used it, and whose streams report how they closed
 * (closedStreamsReported), and whose connection attempts are given up after pingTimeoutMs
 * (boundedConnection). close() closes its sessions gracefully (node:http2's close(): the streams
 * open finish, none is opened); connect-node's own abort() would cut them.
 */
class ClosingSessionManager extends Http2SessionManager {
  /** The sessions not closed yet, with their streams open and how to cut their socket. */
  private readonly open = new Map<http2.Http2Session, OpenSession>();
  private readonly pending = new Set<Promise<unknown>>();
  private closing = false;
  /** pingTimeoutMs: how long the server is given to connect, and to close its side at close(). */
  private readonly answerWithinMs: number;

  constructor(url: string, ping: Http2SessionOptions, nodeOptions: http2.SecureClientSessionOptions | undefined) {
    super(url, ping, { ...nodeOptions, createConnection: boundedConnection(nodeOptions?.createConnection, ping.pingTimeoutMs!) });
    this.answerWithinMs = ping.pingTimeoutMs!;
  }

  override request(...args: Parameters<Http2SessionManager["request"]>): Promise<http2.ClientHttp2Stream> {
    if (this.closing) return Promise.reject(transportClosed());
    const requested = super.request(...args).catch((e: unknown) => {
      throw connectionFailure(e);
    }).then((stream) => {
      const session = stream.session;
      if (session !== undefined) {
        keptSafe(session);
        let open = this.open.get(session);
        if (open === undefined) {
          this.open.set(session.once("close", () => this.open.delete(session)), (open = { streams: 0, cut: socketCut(linkedAttempt(session)) }));
        }
        const counted = open;
        counted.streams++;
        stream.once("close", () => --counted.streams === 0 && counted.idle?.());
        // A request begun before close() goes on; its session closes after it.
        if (this.closing) session.close();
      }
      closedStreamsReported(stream);
      return stream;
    });
    this.pending.add(requested);
    void requested.then(
      () => this.pending.delete(requested),
      () => this.pending.delete(requested),
    );
    return requested;
  }

  /**
   * Closes each session once its streams have (node:http2's close(): GOAWAY, then its socket
   * ended). Node then waits for the server to end its side of the connection: a server that
   * does not within pingTimeoutMs (its process hung, or the connection died silently while idle)
   * has the socket cut, rather than close() waiting for ever, or until TCP gives up.
   */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([...this.pending]);
    await Promise.all(
      [...this.open].map(
        ([session, open]) =>
          new Promise<void>((resolve) => {
            session.once("close", () => resolve());
            session.close();
            open.idle = () => {
              const timer = setTimeout(open.cut, this.answerWithinMs).unref();
              session.once("close", () => clearTimeout(timer));
            };
            if (open.streams === 0) open.idle();
          }),
      ),
    );
  }
}

/** A session of the manager: its streams open; once at close() they are done, `idle` runs. */
interface OpenSession {
  streams: number;
  cut: () => void;
  idle?: () => void;
}

/**
 * Destroys the socket of `attempt` (boundedConnection's), the session's. node:http2 gives the
 * session's socket as a proxy that refuses destroy(). Nothing for a socket boundedConnection does
 * not watch.
 */
function socketCut(attempt: Attempt | undefined): () => void {
  return () => attempt?.socket.destroy();
}
