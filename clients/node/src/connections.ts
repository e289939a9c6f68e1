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
import { causeChain } from "./causes.js";
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
  for (const c of causeChain(e)) if (unanswered.has(c)) return true;
  return false;
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
      // caller gave one: that one is its owner's to close.
      const given = (node.nodeOptions as { agent?: unknown } | undefined)?.agent;
      if (given === undefined) this.agent = new (baseUrl.startsWith("https:") ? https.Agent : http.Agent)({ keepAlive: true, scheduling: "lifo", timeout: 5000 });
      const nodeOptions = { ...node.nodeOptions, ...(this.agent !== undefined && { agent: this.agent }) };
      client = createNodeHttpClient({ httpVersion: "1.1", nodeOptions });
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
 * node:http2's `createConnection` for `authority`: the TCP connection (and for https the TLS
 * one, ALPN h2, the server name unless the host is an IP address), as http2.connect() opens it
 * with the same options; or the caller's own createConnection, left as it is. A socket of ours
 * not connected (TCP, and TLS's handshake for https) within `timeoutMs` is given up: the server
 * took the connection and answers nothing (a Tessera whose event loop hung, a proxy holding it),
 * or never accepts it. Node bounds neither, and connect-node's manager awaited the attempt for
 * every call of the transport (each failing at its deadline, or never, though a new connection
 * would be answered) and close() for ever. The socket is destroyed with a ConnectError, which the
 * session emits: the calls waiting for it fail UNAVAILABLE, unsent, and the next call opens a new
 * connection. As a PING not answered within pingTimeoutMs closes a connection, a handshake not
 * answered within it does. Each socket of ours is kept in `sockets` until it closes.
 */
function boundedConnection(
  given: http2.SecureClientSessionOptions["createConnection"],
  timeoutMs: number,
  sockets: Set<Socket>,
): (authority: URL, options: http2.SecureClientSessionOptions) => Duplex {
  return (authority, options) => {
    if (given !== undefined) return given(authority, options);
    const host = authority.hostname.startsWith("[") ? authority.hostname.slice(1, -1) : authority.hostname || "localhost";
    const port = Number(authority.port || (authority.protocol === "http:" ? 80 : 443));
    const secure = authority.protocol !== "http:";
    const socket = secure
      ? tls.connect({ host, port, ...options, ALPNProtocols: ["h2"], servername: options.servername || (net.isIP(host) ? undefined : host) })
      : net.connect({ host, port, ...(options as net.NetConnectOpts) });
    sockets.add(socket.once("close", () => sockets.delete(socket)));
    const giveUp = () => socket.destroy(new ConnectError(`the connection to the server was not established within pingTimeoutMs (${timeoutMs} ms)`, Code.Unavailable));
    const timer = setTimeout(giveUp, timeoutMs).unref();
    const done = () => clearTimeout(timer);
    socket.once(secure ? "secureConnect" : "connect", done).once("close", done);
    return socket;
  };
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
  /** The sockets opened for its sessions (boundedConnection), until each closes. */
  private readonly sockets: Set<Socket>;

  constructor(url: string, ping: Http2SessionOptions, nodeOptions: http2.SecureClientSessionOptions | undefined) {
    const sockets = new Set<Socket>();
    super(url, ping, { ...nodeOptions, createConnection: boundedConnection(nodeOptions?.createConnection, ping.pingTimeoutMs!, sockets) });
    this.sockets = sockets;
    this.answerWithinMs = ping.pingTimeoutMs!;
  }

  override request(...args: Parameters<Http2SessionManager["request"]>): Promise<http2.ClientHttp2Stream> {
    if (this.closing) return Promise.reject(transportClosed());
    const requested = super.request(...args).then((stream) => {
      const session = stream.session;
      if (session !== undefined) {
        keptSafe(session);
        let open = this.open.get(session);
        if (open === undefined) {
          this.open.set(session.once("close", () => this.open.delete(session)), (open = { streams: 0, cut: socketCut(session, this.sockets) }));
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
 * Destroys `session`'s socket, one of `sockets` (boundedConnection's). node:http2 gives the
 * session's socket as a proxy that refuses destroy() and routes the other interactions to the
 * socket: its addresses and ports find it among ours (taken while the session has it). Nothing
 * for a socket the caller's createConnection opened.
 */
function socketCut(session: http2.Http2Session, sockets: ReadonlySet<Socket>): () => void {
  const ends = (s: Socket) => [s.localAddress, s.localPort, s.remoteAddress, s.remotePort].join(" ");
  let socket: Socket | undefined;
  try {
    const proxied = ends(session.socket);
    socket = [...sockets].find((s) => ends(s) === proxied);
  } catch {
    // The session has no socket already.
  }
  return () => socket?.destroy();
}
