// How many streams (grpc.health.v1.Health/Watch, server reflection's bidirectional stream: the
// only streaming methods, and both served without a credential) a worker holds open at once.
// A stream stays open as long as its client wants, and holds some 45 KB of heap while it does
// (connect-es's streaming pipeline): bounded before only by 100 streams per HTTP/2 connection
// and TESSERA_MAX_CONNECTIONS (no limit by default), one client opening connections could make
// a worker hold gigabytes. Past TESSERA_MAX_OPEN_STREAMS a stream is refused at once, never
// queued (a queued stream holds what a served one does). Real clients stay far below it: a gRPC
// client's health checking holds one Watch per connection, grpcurl and buf curl one reflection
// stream while they run.
import { Code, type Interceptor } from "@connectrpc/connect";
import { serverError } from "./error-details.js";

/** The interceptor that bounds the streams, and the number open now (tessera_streams_open). */
export function createStreamBound(max: number): { interceptor: Interceptor; open(): number } {
  let open = 0;
  const interceptor: Interceptor = (next) => async (req) => {
    if (req.method.methodKind === "unary") return next(req);
    if (open >= max) {
      throw serverError(Code.ResourceExhausted, "TOO_MANY_STREAMS", `this server already has ${max} streams open (TESSERA_MAX_OPEN_STREAMS): close one, or retry later`);
    }
    // The call's signal aborts however the call ends (completed, failed, canceled by its client,
    // its stream reset or connection closed, its deadline, the stop), and only once.
    open++;
    const release = () => open--;
    if (req.signal.aborted) release();
    else req.signal.addEventListener("abort", release, { once: true });
    return next(req);
  };
  return { interceptor, open: () => open };
}
