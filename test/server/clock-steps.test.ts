// The server's durations against a wall clock that steps (an NTP step, an operator setting the
// time): a call's deadline is a duration from its arrival, whatever the calendar says meanwhile.
import assert from "node:assert/strict";
import { callEnded, runInCall, timeLeftMs, type CallScope } from "../../src/call-scope.js";
import { createDeadlineInterceptor } from "../../src/server/deadline-interceptor.js";

/** Runs `fn` with Date.now reading `ms` later (or earlier) than it does. */
function withClockStepped<T>(ms: number, fn: () => T): T {
  const real = Date.now;
  Date.now = () => real() + ms;
  try {
    return fn();
  } finally {
    Date.now = real;
  }
}

const hour = 60 * 60_000;

describe("clock steps: a call's deadline", () => {
  /** What the store and the hash pool see inside a call with a 5 s deadline, the clock stepped by `step` after it arrived. */
  async function seenAfterStep(step: number): Promise<{ ended: boolean; left: number | undefined }> {
    const scope: CallScope = { requestId: "r" };
    const interceptor = createDeadlineInterceptor();
    let seen: { ended: boolean; left: number | undefined } | undefined;
    const next = (async () => {
      seen = withClockStepped(step, () => ({ ended: callEnded(), left: timeLeftMs() }));
      return { stream: false, message: {} };
    }) as never;
    const req = { header: new Headers({ "content-type": "application/json", "connect-timeout-ms": "5000", "grpc-timeout": "5S" }), signal: new AbortController().signal, stream: false };
    await runInCall(scope, () => interceptor(next)(req as never));
    return seen!;
  }

  it("a clock stepped forward an hour mid-call does not end the call: its store calls still get what is left of the 5 s", async () => {
    const { ended, left } = await seenAfterStep(hour);
    assert.equal(ended, false);
    assert.ok(left !== undefined && left > 0 && left <= 5000, `time left ${left} ms`);
  });

  it("a clock stepped back an hour mid-call does not give its store calls an hour more", async () => {
    const { ended, left } = await seenAfterStep(-hour);
    assert.equal(ended, false);
    assert.ok(left !== undefined && left > 0 && left <= 5000, `time left ${left} ms`);
  });
});
