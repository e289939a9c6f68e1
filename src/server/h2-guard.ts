// Bounds on one HTTP/2 session, beyond what Node (nghttp2 1.61) enforces by itself.
//
// What Node 20 already does, and is left to it: a header block cut into more CONTINUATION
// frames than nghttp2 allows (8) ends the connection (GOAWAY); PINGs or SETTINGS sent faster
// than the client reads their ACKs overflow nghttp2's queue of outbound ACKs (1000) and end the
// connection; a SETTINGS frame with more than 32 entries, more invalid frames than
// maxSessionInvalidFrames (1000) or refused streams than maxSessionRejectedStreams (100) do too.
// Most of the frames MadeYouReset (CVE-2025-8671) sends to make the server reset a stream that
// has reached its handler are connection errors here, not stream errors, so one stream per
// connection at most is served: Node destroys the session on a WINDOW_UPDATE of 0 or one that
// takes a stream's window past 2^31-1, and on HEADERS after the request's END_STREAM (an
// invalid frame that nghttp2 reports as a protocol, flow-control or closed-stream error);
// nghttp2 sends GOAWAY and reads nothing more after DATA past END_STREAM or a PRIORITY naming
// its own stream or not 5 bytes long (test/hostile/h2-abuse.test.ts, "MadeYouReset by ..."),
// and the connection is then closed here (a session nghttp2 has ended, below).
// What it does not do, and is done here:
// - Rapid reset (CVE-2023-44487): nghttp2 only rate-limits incoming RST_STREAM at 1000 at once
//   then 33/s, and every one of those streams still reaches the request handler. A client may
//   abandon streams before their answer as a real client does (a deadline, a navigation), but
//   not by the hundreds: past `2 x maxConcurrentStreams` at once, refilled at a tenth of that
//   per second, the session is shed.
//   The same budget takes the streams the server resets because of the client's frames, the
//   stream errors MadeYouReset still has: a request body past its content-length or short of
//   it, trailers without END_STREAM or with a pseudo-header (PROTOCOL_ERROR), DATA past the
//   stream's window while its handler has not read what came before (FLOW_CONTROL_ERROR).
//   nghttp2 resets those, counting them nowhere (not as invalid frames), after the request has
//   reached its handler: its slot is free at once, whatever the handler still has to do. So a
//   stream counts when it closes other than whole: reset (by either side, with any code but
//   NO_ERROR), closed before its answer was ended (Node's `aborted`), or before any answer at
//   all (a HEAD stream: Node ends its writable side as it opens, so it is never `aborted`).
//   Streams reset here (resetStream: a stall, a header list too large) do not count. Nor does a
//   client's reset once its answer has come whole, as RFC 9113 8.1 lets a client still sending
//   a request the answer made moot (a 413 to an upload) reset it: the server has closed such a
//   stream itself by then, RST_STREAM(NO_ERROR), in the turn of the event loop that submits the
//   answer's END_STREAM (listener.ts, resetIfUnended; Node does too for a request never read),
//   before any later frame of the client's is read, and its rstCode is NO_ERROR. A reset read
//   before that, the answer not yet whole, counts.
// - PING and SETTINGS floods from a client that does read the ACKs: each costs the server a
//   frame to write, without end. A client needs a few (keepalive, one SETTINGS per change):
//   past 100 at once, refilled at 10 per second, the session is shed.
// - A window that never opens (a client that sends no WINDOW_UPDATE, or announces a window of 0)
//   stalls the answer with its data held in memory, while PINGs keep the connection "active"
//   for Node's idle timer. A stream whose output has been waiting to be sent, without a break,
//   for the idle timeout is reset (CANCEL), progress or not: a trickle of WINDOW_UPDATEs would
//   otherwise keep up to 100 answers per connection for as long as the client likes. When it is the connection's window that is closed, no stream can move:
//   the session is closed (GOAWAY(NO_ERROR)), rather than each new stream stalling in turn.
// - A client that does not read its socket at all: the server's writes stop, and with them
//   every frame, the resets of stalled streams included, so those streams never close and the
//   session would be kept for ever. A stream reset here that has still not closed an idle
//   timeout later means the connection is not being read: it is closed.
// - Idle sessions: Node's session timeout closes a session gracefully, and a graceful close
//   waits for the open streams (a stalled one never ends) and then for the client to close the
//   connection (one that ignores GOAWAY never does). Here a session is idle when it has no open
//   stream: after the idle timeout it gets GOAWAY(NO_ERROR), and its connection is closed one
//   idle timeout later if the client has not closed it.
// - A session nghttp2 has ended by itself: on some connection errors (a bad HPACK dynamic
//   table size update: COMPRESSION_ERROR; DATA on stream 0, DATA past END_STREAM, a bad
//   PRIORITY) nghttp2 sends GOAWAY with the error and wants to read and write nothing more, but
//   Node neither destroys the session nor tells JS: it stops reading the socket, so it never
//   sees the client's close either, and the connection would stay open (and counted toward
//   TESSERA_MAX_CONNECTIONS) until the idle timeout. It is closed once the GOAWAY has been
//   written (watchEnded).
// Shedding sends GOAWAY(ENHANCE_YOUR_CALM) and closes the socket. The session's other streams
// go with it: the client misbehaved on that connection.
import http2 from "node:http2";

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } = http2.constants;

export interface SessionGuardOptions {
  idleTimeoutMs: number;
  /** The connection under the session: closed when a client ignores GOAWAY. */
  socket: { destroy(): void; destroyed: boolean };
  maxConcurrentStreams: number;
  /** Told when a session is shed (for the log). */
  onShed?(reason: string): void;
}

/** A token bucket: `burst` events at once, then `perSecond`. */
class Budget {
  private tokens: number;
  private last = performance.now();
  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
  ) {
    this.tokens = burst;
  }

  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * Streams the server itself reset (timeouts), and when: not counted as the client's resets, and
 * expected to close once the reset has been sent.
 */
const resetHere = new WeakMap<http2.Http2Stream, number>();

/** Resets `stream` from this side (RST_STREAM with `code`). */
export function resetStream(stream: http2.Http2Stream, code: number): void {
  if (stream.closed || stream.destroyed) return;
  resetHere.set(stream, performance.now());
  stream.close(code);
}

/**
 * Whether a closed stream ended as a request served ends: its answer ended, sent (its headers
 * at least: HEAD) and not cut by a reset. Otherwise it was reset by its client, or by the server
 * for its client's frames (or by this server's own code: see resetHere).
 */
function endedWhole(stream: http2.ServerHttp2Stream): boolean {
  return !stream.aborted && stream.rstCode === NGHTTP2_NO_ERROR && stream.headersSent;
}

/** What Node 20's native HTTP/2 session (`session[kHandle]`) has that is used here. */
interface NativeSession {
  setGracefulClose?: () => void;
  hasPendingData?: () => boolean;
  ongracefulclosecomplete?: () => void;
}

function nativeSession(session: http2.Http2Session): NativeSession | undefined {
  const key = Object.getOwnPropertySymbols(session).find((s) => s.description === "kHandle");
  const handle = key === undefined ? undefined : (session as unknown as Record<symbol, unknown>)[key];
  return typeof handle === "object" && handle !== null ? (handle as NativeSession) : undefined;
}

/**
 * Calls `ended` once nghttp2 has ended `session` by itself (a connection error it answered with
 * GOAWAY) and that GOAWAY has been written: nghttp2 then wants neither to read nor to write.
 * Node 20 asks nghttp2 exactly that after each write of a session being closed gracefully, and
 * calls the handle's `ongracefulclosecomplete` when both are no (session.close() sets that mode,
 * and the callback destroys a closed session with no stream left). The mode is set here from the
 * start, so that the question is asked after every write (two flag reads in nghttp2, no frame,
 * nothing per request); the callback, kept, still does nothing to a session not closed. A session
 * not closed that nghttp2 no longer wants to read or write is one it ended (nghttp2 wants to read
 * as long as it has sent no GOAWAY; one the client sends has Node close the session first).
 * Without those internals (another Node), nothing is watched: the idle timeout closes it.
 */
function watchEnded(session: http2.ServerHttp2Session, ended: () => void): void {
  const handle = nativeSession(session);
  if (typeof handle?.setGracefulClose !== "function" || typeof handle.hasPendingData !== "function") return;
  const complete = handle.ongracefulclosecomplete;
  handle.ongracefulclosecomplete = () => {
    complete?.call(handle);
    // Closed on the next turn of the event loop, not inside the native write's callback.
    if (!session.closed && !session.destroyed && handle.hasPendingData?.() === false) setImmediate(ended);
  };
  handle.setGracefulClose();
}

export function guardSession(session: http2.ServerHttp2Session, o: SessionGuardOptions): void {
  const resets = new Budget(2 * o.maxConcurrentStreams, o.maxConcurrentStreams / 10);
  const control = new Budget(100, 10);
  const streams = new Set<http2.ServerHttp2Stream>();
  // Since when each stream has had output waiting to be sent, without a break.
  const pendingSince = new Map<http2.ServerHttp2Stream, number>();
  let idle: NodeJS.Timeout | undefined;
  let sweep: NodeJS.Timeout | undefined;

  const shed = (reason: string) => {
    if (session.destroyed || session.closed) return;
    o.onShed?.(reason);
    session.destroy(new Error(`HTTP/2 session shed: ${reason}`), NGHTTP2_ENHANCE_YOUR_CALM);
  };
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      if (streams.size > 0 || session.destroyed) return;
      // Graceful: GOAWAY(NO_ERROR); a stream the client opened meanwhile may still finish.
      // Node then waits for the client to close the connection; one that ignores the GOAWAY
      // (and keeps sending PINGs) loses it after another idle timeout.
      session.close();
      setTimeout(() => o.socket.destroy(), o.idleTimeoutMs).unref();
    }, o.idleTimeoutMs);
    idle.unref();
  };
  // Node's own stream timeout cannot see a stall: it counts any frame the session sends (a
  // PING ACK) as progress. So: a stream whose answer has been waiting to be sent, without a
  // break, for the idle timeout is reset. Tessera's answers are small; under any client that
  // reads, they leave within milliseconds.
  const sweepStalled = () => {
    const now = performance.now();
    for (const stream of streams) {
      const resetAt = resetHere.get(stream);
      if (resetAt !== undefined) {
        // Its reset has not gone out: nothing the session writes reaches the client.
        if (now - resetAt >= o.idleTimeoutMs) return close(true);
        continue;
      }
      if (stream.writableLength === 0) {
        pendingSince.delete(stream);
        continue;
      }
      const since = pendingSince.get(stream) ?? now;
      pendingSince.set(stream, since);
      if (now - since < o.idleTimeoutMs) continue;
      // The connection's window is closed: every stream is stuck behind it.
      if (session.state.remoteWindowSize === 0) return close(false);
      resetStream(stream, NGHTTP2_CANCEL);
    }
  };
  /**
   * Closes a session that cannot send answers: one whose connection takes no bytes at all
   * (`blocked`) at once; else with GOAWAY(NO_ERROR) and its streams reset (CANCEL), its
   * connection closed once they are gone, or an idle timeout later if the client keeps it.
   */
  const close = (blocked: boolean) => {
    if (blocked) {
      session.destroy();
      o.socket.destroy();
      return;
    }
    if (!session.closed) {
      session.close();
      setTimeout(() => o.socket.destroy(), o.idleTimeoutMs).unref();
    }
    for (const stream of streams) resetStream(stream, NGHTTP2_CANCEL);
  };

  session.on("ping", () => {
    if (!control.take()) shed("ping flood");
  });
  session.on("remoteSettings", () => {
    if (!control.take()) shed("settings flood");
  });
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    streams.add(stream);
    clearTimeout(idle);
    if (sweep === undefined) {
      sweep = setInterval(sweepStalled, Math.max(100, Math.floor(o.idleTimeoutMs / 4)));
      sweep.unref();
    }
    stream.once("close", () => {
      streams.delete(stream);
      pendingSince.delete(stream);
      if (!endedWhole(stream) && !resetHere.has(stream) && !session.destroyed && !resets.take()) shed("rapid reset");
      if (streams.size > 0 || session.destroyed) return;
      clearInterval(sweep);
      sweep = undefined;
      armIdle();
    });
  });
  // Ended by nghttp2, its GOAWAY written: nothing more will be read or sent on the connection.
  watchEnded(session, () => close(true));
  session.once("close", () => {
    clearTimeout(idle);
    clearInterval(sweep);
  });
  armIdle();
}
