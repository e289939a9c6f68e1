// The polling helpers' time limit (support/poll.ts): judged by when a probe started, so a probe
// that was answered past the limit, having read what it found before, is not the last.
import assert from "node:assert/strict";
import { pollLast, pollUntil } from "./poll.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("test support: polling", () => {
  it("a probe that started before the limit and was answered after it is followed by one more", async () => {
    let probes = 0;
    // The first probe finds nothing and answers 300 ms later, past the 100 ms limit; meanwhile
    // what it looks for appears.
    const found = await pollLast(
      async () => {
        if (++probes > 1) return ["found"];
        await sleep(300);
        return [];
      },
      (values) => values.length > 0,
      { limitMs: 100, intervalMs: 10 },
    );
    assert.deepEqual(found, ["found"]);
    assert.equal(probes, 2);
  });

  it("fails naming what it waited for once a probe that started past the limit found nothing", async () => {
    const t0 = performance.now();
    let lastStarted = 0;
    await assert.rejects(
      pollUntil("the answer", () => ((lastStarted = performance.now() - t0), false), { limitMs: 50, intervalMs: 10 }),
      { name: "AssertionError", message: "timed out after 50 ms waiting for: the answer" },
    );
    assert.ok(lastStarted > 50, `the last probe started ${lastStarted} ms in`);
  });
});
