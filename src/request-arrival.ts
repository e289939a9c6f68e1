// A request that the server's own request timeout (TESSERA_REQUEST_TIMEOUT_MS) refused before
// it arrived whole: answered 408 DEADLINE_EXCEEDED by the listener (server/listener.ts), which
// marks it here. Whatever reads its body reads this rather than what its end looks like (over
// HTTP/1.1 the connection closed after the 408, as when a client leaves; over HTTP/2 its stream
// closed after the 408, which ends the body as if it were whole): such a body is cut short,
// never served, and the call is counted with the code its client got.
const timedOut = new WeakSet<object>();

/** Marks `req` as answered 408 by the request timeout before it arrived whole. */
export function markArrivalTimedOut(req: object): void {
  timedOut.add(req);
}

/** Whether `req` was answered 408 by the request timeout before it arrived whole. */
export function arrivalTimedOut(req: object): boolean {
  return timedOut.has(req);
}

/**
 * The code a call whose request never arrived whole is counted with: `deadline_exceeded` when
 * the request timeout answered it 408, else `canceled` (its client left: nobody was answered).
 */
export function unarrivedCode(req: object): "deadline_exceeded" | "canceled" {
  return timedOut.has(req) ? "deadline_exceeded" : "canceled";
}
