// The readiness probe of a stop's lame-duck period (TESSERA_SHUTDOWN_DELAY_SECONDS): once the
// stop has begun, no probe answers SERVING, not even one whose store check was already under way
// when it began (GET /readyz and grpc.health.v1 ask the same probe).
import assert from "node:assert/strict";
import { unlessDraining } from "../../src/server/health.js";

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
