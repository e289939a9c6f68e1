// The unary path of grpc-unary.ts (invokeUnary) hands the router's interceptors a request whose
// signal is made only when asked for (call-scope.ts CallEnd). An interceptor may pass on a copy
// of it, spread as connect-es's Interceptor type allows (`next({ ...req, message })`): the copy
// carries the call's signal, the one the implementation's context then has, as connect-es's own
// invokeUnaryImplementation gives it.
import { strict as assert } from "node:assert";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type Interceptor } from "@connectrpc/connect";
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus } from "../../gen/health/v1/health_pb.js";
import { CallEnd, callEndKey, signalAborted } from "../../src/call-scope.js";
import { invokeUnary, type UnarySpec } from "../../src/server/grpc-unary.js";

describe("unary calls: an interceptor that passes on a spread copy of the request", () => {
  /** A call as the dispatcher makes it (dispatch.ts RoutedRequest): its signal a CallEnd's getter. */
  const callOf = (end: CallEnd, timeoutMs?: number) => ({
    header: new Headers(),
    url: "http://localhost/grpc.health.v1.Health/Check",
    contextValues: createContextValues(),
    timeoutMs,
    [callEndKey]: end,
    get signal(): AbortSignal {
      return end.signal;
    },
  });
  const spreading: Interceptor = (next) => (req) => next({ ...req });
  // What the admin audit interceptor asks after the call (audit-interceptor.ts).
  const askingAborted: Interceptor = (next) => async (req) => {
    const res = await next(req);
    if (signalAborted(req)) throw new ConnectError("ended", Code.Canceled);
    return res;
  };

  for (const timeoutMs of [undefined, 60_000]) {
    const which = timeoutMs === undefined ? "without a deadline" : "with a deadline";
    it(`${which}: the implementation's context and the interceptors after the copy have the call's signal, which aborts when the client leaves`, async () => {
      const end = new CallEnd();
      let seen: AbortSignal | undefined;
      let copied: AbortSignal | undefined;
      const spec = {
        kind: "unary",
        method: Health.method.check,
        impl: (_req: unknown, ctx: { signal: AbortSignal }) => {
          seen = ctx.signal;
          return { status: HealthCheckResponse_ServingStatus.SERVING };
        },
      } as unknown as UnarySpec;
      const reading: Interceptor = (next) => (req) => {
        copied = req.signal;
        return next(req);
      };
      const outcome = await invokeUnary(spec, [spreading, reading, askingAborted], "grpc", callOf(end, timeoutMs), "application/grpc", () => create(HealthCheckRequestSchema));
      assert.equal(outcome.error, undefined, outcome.error?.message);
      assert.ok(copied instanceof AbortSignal, `the copy's signal: ${String(copied)}`);
      assert.ok(seen instanceof AbortSignal, `the implementation's context's signal: ${String(seen)}`);
      if (timeoutMs === undefined) {
        assert.equal(seen.aborted, false);
        const reason = new ConnectError("the client closed the request", Code.Canceled);
        end.abort(reason);
        assert.equal(seen.aborted, true);
        assert.equal(seen.reason, reason);
      }
    });
  }
});
