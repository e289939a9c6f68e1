// A call's deadline as the server is told it: grpc-timeout (gRPC, gRPC-Web) or
// connect-timeout-ms (Connect). connect-es writes the header once, as the call begins, with the
// whole timeout, and starts its own timer then; what runs before the request leaves (the
// credentials, asked on every call; the caller's interceptors; a refused stream's second
// attempt) spends part of it. Sent as written, the header would let the server work on past the
// caller's deadline, for nobody. The first interceptor notes when the call's deadline passes;
// the last, as each attempt leaves, writes what is left of the deadline in force then (the
// call's, or a nearer one an interceptor announced), or sends nothing when nothing is.
// connect-es's deadline is also the call's signal (its timer aborts it, as the caller's
// cancellation does, and the call's end): the last interceptor sends the request with a signal
// that follows the call's, whatever signal an interceptor gave it.
import { Code, ConnectError, type ContextValues, type Interceptor } from "@connectrpc/connect";

export type DeadlineHeader = "grpc-timeout" | "connect-timeout-ms";

interface Deadline {
  /** When the call's deadline passes, on performance.now()'s clock; undefined: none. */
  at: number | undefined;
  /** The header's value as connect-es wrote it: another was written by an interceptor. */
  written: string | null;
  /** The call's signal: aborted at its deadline, by its caller's cancellation, and as it ends. */
  signal: AbortSignal;
}

/**
 * Each call's deadline, by the call's request headers, by its signal and by its context values
 * (connect-es makes one of each for every call, unless the caller gives its own context values).
 * An interceptor may replace the request's signal (connect-es's way to cancel or time out a
 * call: `next({ ...req, signal })`), and its headers (`header: new Headers(req.header)`), or
 * both: the call is found by what it kept. Context values a caller gave several calls at once
 * name none of them.
 */
const byHeaders = new WeakMap<Headers, Deadline>();
const bySignal = new WeakMap<AbortSignal, Deadline>();
const byContext = new WeakMap<ContextValues, Set<Deadline>>();

function deadlineOf(req: { header: Headers; signal: AbortSignal; contextValues: ContextValues }): Deadline | undefined {
  const found = byHeaders.get(req.header) ?? bySignal.get(req.signal);
  if (found !== undefined) return found;
  const calls = byContext.get(req.contextValues);
  return calls?.size === 1 ? calls.values().next().value : undefined;
}

/**
 * A signal aborted, with its reason, when the first of `a` and `b` is; once it is, it listens to
 * neither (the call's signal is always aborted as the call ends: nothing is left on a long-lived
 * signal of an interceptor's).
 */
export function either(a: AbortSignal, b: AbortSignal): AbortSignal {
  if (a.aborted) return a;
  if (b.aborted) return b;
  const controller = new AbortController();
  const onAbort = function (this: AbortSignal) {
    a.removeEventListener("abort", onAbort);
    b.removeEventListener("abort", onAbort);
    controller.abort(this.reason);
  };
  a.addEventListener("abort", onAbort);
  b.addEventListener("abort", onAbort);
  return controller.signal;
}

/** The longest timeout the header carries: what grpc-timeout holds in milliseconds (8 digits). */
const maxHeaderMs = 99_999_999;

const grpcUnitsMs: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** A timeout header's value in milliseconds ("300m", in any of gRPC's units, or "300"); undefined when it is none. */
function timeoutMs(value: string | null): number | undefined {
  if (value === null) return undefined;
  const grpc = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (grpc !== null) return Number(grpc[1]) * grpcUnitsMs[grpc[2]!]!;
  return /^\d{1,10}$/.test(value) ? Number(value) : undefined;
}

/**
 * The interceptors that announce a call's deadline in `header`: `start` goes first (connect-es
 * calls it as soon as it has started the call's timer, so the deadline noted is the timer's),
 * `send` last, as each attempt is sent.
 */
export function deadlineInterceptors(header: DeadlineHeader): { start: Interceptor; send: Interceptor } {
  const start: Interceptor = (next) => async (req) => {
    const written = req.header.get(header);
    const ms = timeoutMs(written);
    const deadline: Deadline = { at: ms === undefined ? undefined : performance.now() + ms, written, signal: req.signal };
    byHeaders.set(req.header, deadline);
    bySignal.set(req.signal, deadline);
    if (!req.signal.aborted) {
      let calls = byContext.get(req.contextValues);
      if (calls === undefined) byContext.set(req.contextValues, (calls = new Set()));
      calls.add(deadline);
      req.signal.addEventListener("abort", () => calls.delete(deadline), { once: true });
    }
    return next(req);
  };

  /**
   * A call cancelled, or past its deadline, before it is sent fails without being sent: over
   * HTTP/2 connect-node would still open the stream, sending its headers (the credentials) before
   * resetting it, and a Connect server may take the empty body for the request and run it. The
   * signal looked at is the one the request goes with, which follows the call's too (an
   * interceptor's own signal would leave the request running past the call's deadline and its
   * cancellation). Otherwise the header carries what is left
   * of the deadline in force, rounded up to whole milliseconds as the first one was: the call's,
   * or the nearer one an interceptor wrote into the header (its own, counted from now).
   */
  const send: Interceptor = (next) => async (request) => {
    const deadline = deadlineOf(request);
    const req = deadline === undefined || deadline.signal === request.signal ? request : { ...request, signal: either(request.signal, deadline.signal) };
    // connect-es fails the call with the signal's reason: CANCELED, or its DEADLINE_EXCEEDED.
    req.signal.throwIfAborted();
    const written = req.header.get(header);
    const own = written !== (deadline?.written ?? null) ? timeoutMs(written) : undefined;
    const callLeft = deadline?.at === undefined ? undefined : deadline.at - performance.now();
    if (callLeft === undefined && own === undefined) return next(req);
    const left = Math.min(Math.ceil(Math.min(callLeft ?? Infinity, own ?? Infinity)), maxHeaderMs);
    // connect-es's own deadline error, its timer not having fired yet.
    if (left <= 0) throw new ConnectError("the operation timed out", Code.DeadlineExceeded);
    req.header.set(header, header === "grpc-timeout" ? `${left}m` : String(left));
    try {
      return await next(req);
    } finally {
      // Sent: the headers are as the interceptors left them, for another attempt to read.
      if (written === null) req.header.delete(header);
      else req.header.set(header, written);
    }
  };
  return { start, send };
}
