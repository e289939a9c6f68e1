// What connect-node's HTTP/2 keep-alive leaves to the session's owner, so that neither a PING
// that timed out nor one sent as the session ends can end the process.
import type * as http2 from "node:http2";

const kept = new WeakSet<http2.Http2Session>();

/**
 * Gives `session` (once) an "error" listener of its own and a `ping` that does not throw once
 * the session is destroyed or closed.
 *
 * - A PING that times out destroys the session with an error, which Node emits once its socket
 *   has closed; a call made meanwhile replaces the session, and connect-node removes its listener
 *   from the old one: the error, emitted with no listener, would be thrown (an uncaught
 *   exception). The calls on the session have failed with it already (UNAVAILABLE, "PING timed
 *   out").
 * - connect-node's PING timer can fire after the session was destroyed (a GOAWAY, a transport
 *   error, an idle close) and before its close handlers stop the timer, a tick later: Node's
 *   `ping` then throws ERR_HTTP2_INVALID_SESSION synchronously, from a timer (connect-es issue
 *   1795). Here it answers its callback with that error instead, on the next tick, as a PING
 *   cancelled by the session's end is answered; connect-node ignores a PING's error (the
 *   session's own "close" does the rest).
 */
export function keptSafe(session: http2.Http2Session): void {
  if (kept.has(session)) return;
  kept.add(session);
  session.on("error", () => {});
  const ping = session.ping;
  session.ping = function (this: http2.Http2Session, ...args: unknown[]): boolean {
    if (this.destroyed || this.closed) {
      const callback = args.find((a): a is (err: Error | null, duration: number, payload: Buffer) => void => typeof a === "function");
      const ended = Object.assign(new Error("The session has been destroyed"), { code: "ERR_HTTP2_INVALID_SESSION" });
      if (callback !== undefined) process.nextTick(callback, ended, 0, Buffer.alloc(8));
      return false;
    }
    return (ping as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof session.ping;
}
