// The readiness probe of a stop's lame-duck period (TESSERA_SHUTDOWN_DELAY_SECONDS): once the
// stop has begun, no probe answers SERVING, not even one whose store check was already under way
// when it began (GET /readyz and grpc.health.v1 ask the same probe).
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { HealthCheckRequestSchema, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { createHealthImpl, unlessDraining } from "../../src/server/health.js";

describe("server: readiness while a stop drains (unlessDraining)", () => {
  it("passes while not draining, as the store check answers", async () => {
    const draining = new AbortController();
    assert.equal(await unlessDraining(() => Promise.resolve(true), draining.signal)(), true);
    assert.equal(await unlessDraining(() => Promise.resolve(false), draining.signal)(), false);
  });

  it("fails without asking the store once the stop has begun", async () => {
    const draining = new AbortController();
    draining.abort();
    let asked = 0;
    const probe = unlessDraining(() => {
      asked++;
      return Promise.resolve(true);
    }, draining.signal);
    assert.equal(await probe(), false);
    assert.equal(asked, 0);
  });

  it("fails when the stop begins while the store check is under way, though the store then answers", async () => {
    const draining = new AbortController();
    let answer!: (ok: boolean) => void;
    const probe = unlessDraining(() => new Promise<boolean>((resolve) => (answer = resolve)), draining.signal);
    const pending = probe();
    draining.abort();
    answer(true);
    assert.equal(await pending, false);
  });
});

describe("server: grpc.health.v1 Watch streams while a stop drains (createHealthImpl)", () => {
  it("many Watch streams pausing at once: told NOT_SERVING as it begins, and no listener-leak warning", async () => {
    const draining = new AbortController();
    const impl = createHealthImpl([], () => Promise.resolve(true), 60_000, draining.signal);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on("warning", onWarning);
    const calls = Array.from({ length: 50 }, () => new AbortController());
    try {
      const streams = calls.map((call) => impl.watch!(create(HealthCheckRequestSchema, { service: "" }), { signal: call.signal } as never)[Symbol.asyncIterator]());
      for (const s of streams) assert.equal((await s.next()).value?.status, Status.SERVING);
      // Each stream is now in its pause, waiting for the interval or the stop.
      const next = streams.map((s) => s.next());
      // (a warning is emitted on the next tick)
      await new Promise((r) => setImmediate(r));
      draining.abort();
      for (const n of next) assert.equal((await n).value?.status, Status.NOT_SERVING);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings, []);
    } finally {
      process.off("warning", onWarning);
      for (const call of calls) call.abort();
    }
  });
});
