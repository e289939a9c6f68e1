// The caller's deadline (`grpc-timeout` for gRPC and gRPC-Web, `connect-timeout-ms` for Connect)
// holds for every call, whatever the handler does. connect-es turns the header into a signal
// that aborts at the deadline, but nothing makes a handler stop: a unary call answered later
// answers OK, and a server stream that ends its loop when the signal aborts ends with OK too.
// So here:
// - the deadline is put in the call's scope, where the store adapters bound their waits by it,
//   and so is the call's signal, which the hash pool reads before it hashes for a call;
// - a unary call answers DEADLINE_EXCEEDED when the deadline passes before the handler returns;
// - a stream ends with DEADLINE_EXCEEDED at the deadline, and the handler's own iterator is
//   closed (its `finally` blocks run), so nothing it started waits on.
// A call the client abandoned ends the same way, as CANCELED (nobody is there to read it).
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";
import { callClock, callEndOf, currentCall, signalAborted } from "../call-scope.js";
import { protocolOf } from "./logging-interceptor.js";

/**
 * The longest delay a Node timer takes: one set for longer fires after 1 ms (with a
 * TimeoutOverflowWarning), so a deadline further away than this would end the call at once.
 */
const maxTimerMs = 2 ** 31 - 1;

/**
 * Removes a timeout header whose deadline is further away than a timer holds (24.8 days;
 * `grpc-timeout` goes up to 99999999 hours, `connect-timeout-ms` up to 10 digits, and a
 * grpc-js client with a 30-day deadline sends "2592000S"): such a deadline is no deadline, as
 * grpc-go and connect-go treat a timeout they cannot represent. Otherwise connect-es's deadline
 * timer, and ours (grpc-unary.ts), would fire at once: DEADLINE_EXCEEDED, while the handler's
 * store writes, bounded by the far deadline, still went ahead.
 *
 * And rounds a `grpc-timeout` in micro- or nanoseconds down to whole ms, the unit deadlines are
 * kept in (timers, performance.now()): never later than the caller's deadline. One under a millisecond
 * ("1n", "999u") has passed on arrival and ends the call with DEADLINE_EXCEEDED, as "0m" does;
 * left as it was, a timer of less than 1 ms runs after 1 ms, and a call that never waits was
 * served. A malformed value is left for connect-es to refuse.
 */
export function normalizeTimeouts(header: Headers): void {
  const grpc = header.get("grpc-timeout");
  if (grpc !== null) {
    const fine = /^(\d{1,8})([un])$/.exec(grpc);
    if (fine) header.set("grpc-timeout", `${Math.floor(Number(fine[1]) / (fine[2] === "u" ? 1e3 : 1e6))}m`);
    else if ((parseGrpcTimeout(grpc, Number.MAX_SAFE_INTEGER).timeoutMs ?? 0) > maxTimerMs) header.delete("grpc-timeout");
  }
  const connect = header.get("connect-timeout-ms");
  if (connect !== null && (parseConnectTimeout(connect, Number.MAX_SAFE_INTEGER).timeoutMs ?? 0) > maxTimerMs) header.delete("connect-timeout-ms");
}

/** The timeout the caller asked for, in ms (undefined: none, or a header connect-es refuses itself). */
export function requestedTimeoutMs(header: Headers): number | undefined {
  const grpc = header.get("grpc-timeout");
  const connect = header.get("connect-timeout-ms");
  const parsed = protocolOf(header.get("content-type"), "") !== "connect"
    ? parseGrpcTimeout(grpc, Number.MAX_SAFE_INTEGER)
    : parseConnectTimeout(connect, Number.MAX_SAFE_INTEGER);
  return parsed.error ? undefined : parsed.timeoutMs;
}

function abortError(signal: AbortSignal): ConnectError {
  const reason: unknown = signal.reason;
  if (reason instanceof ConnectError) return reason;
  return new ConnectError("the call was cancelled", Code.Canceled);
}

/** `p`, unless `signal` aborts first. The one listener it adds is removed when either settles. */
export function unlessAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

async function* untilAborted<T>(messages: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const it = messages[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      const r = await unlessAborted(it.next(), signal);
      if (r.done) {
        done = true;
        return;
      }
      yield r.value;
    }
  } finally {
    // Ends the handler's generator (queued behind a pending next(), which an aborted signal ends).
    if (!done) Promise.resolve(it.return?.()).catch(() => {});
  }
}

export function createDeadlineInterceptor(): Interceptor {
  return (next) => async (req) => {
    const timeoutMs = requestedTimeoutMs(req.header);
    const scope = currentCall();
    if (scope && timeoutMs !== undefined) scope.deadline = callClock() + timeoutMs;
    // Work that would start after the call ended (a queued password hash) looks here first.
    if (scope) scope.signal = callEndOf(req) ?? req.signal;
    // A deadline passed on arrival (a timeout of 0): the handler is not started at all, so
    // nothing it would do (a store call, a Cache-Control on the answer) follows the error.
    if (signalAborted(req)) throw abortError(req.signal);
    // A unary call without a deadline is not raced against the signal: the only abort left is
    // a client that went away, and an answer to nobody needs no early end (this saves every
    // such call a listener and two promises).
    const res = await (timeoutMs === undefined && !req.stream ? next(req) : unlessAborted(next(req), req.signal));
    return res.stream ? { ...res, message: untilAborted(res.message, req.signal) } : res;
  };
}
