// A call's deadline as the server is told it: grpc-timeout (gRPC, gRPC-Web) or
// connect-timeout-ms (Connect). connect-es writes the header once, as the call begins, with the
// whole timeout, and starts its own timer then; what runs before the request leaves (the
// credentials, asked on every call; a refused stream's second attempt) spends part of it. Sent
// as written, the header would let the server work on past the caller's deadline, for nobody.
// startDeadline (the first interceptor) notes when the deadline passes; sendWithDeadline (the
// last) writes what is left of it into the header, or sends nothing when nothing is.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

interface Deadline {
  /** The header that announces it. */
  header: "grpc-timeout" | "connect-timeout-ms";
  /** When it passes, on performance.now()'s clock. */
  at: number;
}

/** Each call's deadline, by the call's own signal (connect-es makes one for every call). */
const deadlines = new WeakMap<AbortSignal, Deadline>();

/** The timeout connect-es wrote for the call: whole milliseconds (see timerMs), as "<n>m" or "<n>". */
function announced(header: Headers): { header: Deadline["header"]; ms: number } | undefined {
  const grpc = /^(\d{1,8})m$/.exec(header.get("grpc-timeout") ?? "");
  if (grpc !== null) return { header: "grpc-timeout", ms: Number(grpc[1]) };
  const connect = /^\d{1,10}$/.exec(header.get("connect-timeout-ms") ?? "");
  if (connect !== null) return { header: "connect-timeout-ms", ms: Number(connect[0]) };
  return undefined;
}

/**
 * The first interceptor: connect-es calls it as soon as it has started the call's timer, so the
 * deadline noted here is the timer's.
 */
export const startDeadline: Interceptor = (next) => async (req) => {
  const timeout = announced(req.header);
  if (timeout !== undefined) deadlines.set(req.signal, { header: timeout.header, at: performance.now() + timeout.ms });
  return next(req);
};

/**
 * The last interceptor, run as each attempt is sent. A call cancelled, or past its deadline,
 * before it is sent fails without being sent: over HTTP/2 connect-node would still open the
 * stream, sending its headers (the credentials) before resetting it, and a Connect server may
 * take the empty body for the request and run it. Otherwise the header carries what is left of the
 * deadline, rounded up to whole milliseconds, as the first one was.
 */
export const sendWithDeadline: Interceptor = (next) => async (req) => {
  // connect-es fails the call with the signal's reason: CANCELED, or its DEADLINE_EXCEEDED.
  req.signal.throwIfAborted();
  const deadline = deadlines.get(req.signal);
  if (deadline !== undefined) {
    const left = Math.ceil(deadline.at - performance.now());
    // connect-es's own deadline error, its timer not having fired yet.
    if (left <= 0) throw new ConnectError("the operation timed out", Code.DeadlineExceeded);
    req.header.set(deadline.header, deadline.header === "grpc-timeout" ? `${left}m` : String(left));
  }
  return next(req);
};
