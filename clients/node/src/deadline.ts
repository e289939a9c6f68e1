// A call's deadline as the server is told it: grpc-timeout (gRPC, gRPC-Web) or
// connect-timeout-ms (Connect). connect-es writes the header once, as the call begins, with the
// whole timeout, and starts its own timer then; what runs before the request leaves (the
// credentials, asked on every call; the caller's interceptors; a refused stream's second
// attempt) spends part of it. Sent as written, the header would let the server work on past the
// caller's deadline, for nobody. The first interceptor notes when the call's deadline passes;
// the last, as each attempt leaves, writes what is left of the deadline in force then (the
// call's, or a nearer one an interceptor announced), or sends nothing when nothing is.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

export type DeadlineHeader = "grpc-timeout" | "connect-timeout-ms";

interface Deadline {
  /** When the call's deadline passes, on performance.now()'s clock; undefined: none. */
  at: number | undefined;
  /** The header's value as connect-es wrote it: another was written by an interceptor. */
  written: string | null;
}

/**
 * Each call's deadline, by the call's request headers and by its signal (connect-es makes one of
 * each for every call). An interceptor may replace the request's signal (connect-es's way to
 * cancel or time out a call: `next({ ...req, signal })`), and one may give it other headers:
 * the call is found by the one it kept.
 */
const byHeaders = new WeakMap<Headers, Deadline>();
const bySignal = new WeakMap<AbortSignal, Deadline>();

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
    const deadline: Deadline = { at: ms === undefined ? undefined : performance.now() + ms, written };
    byHeaders.set(req.header, deadline);
    bySignal.set(req.signal, deadline);
    return next(req);
  };

  /**
   * A call cancelled, or past its deadline, before it is sent fails without being sent: over
   * HTTP/2 connect-node would still open the stream, sending its headers (the credentials) before
   * resetting it, and a Connect server may take the empty body for the request and run it. The
   * signal looked at is the one the request goes with. Otherwise the header carries what is left
   * of the deadline in force, rounded up to whole milliseconds as the first one was: the call's,
   * or the nearer one an interceptor wrote into the header (its own, counted from now).
   */
  const send: Interceptor = (next) => async (req) => {
    // connect-es fails the call with the signal's reason: CANCELED, or its DEADLINE_EXCEEDED.
    req.signal.throwIfAborted();
    const deadline = byHeaders.get(req.header) ?? bySignal.get(req.signal);
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
