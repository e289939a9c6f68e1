// The hash pool: at most `concurrency` jobs run, at most `queueLimit` wait (first come, first
// served), and beyond that a job is refused at once with UNAVAILABLE HASHER_BUSY, Retry-After 1, 2
// or 3 seconds at random (fixed at 1 here where the pool is made with retryAfterSeconds).
import assert from "node:assert/strict";
import { CallEndedError, runInCall } from "../../src/call-scope.js";
import { AuthError } from "../../src/core/errors.js";
import { HashPool } from "../../src/core/hash-pool.js";

/** A job that runs until released; `started` tells whether it began. */
function gate() {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  const job = { started: false, release, run: async () => ((job.started = true), await done) };
  return job;
}

const isBusy = (e: unknown) =>
  e instanceof AuthError && e.code === "unavailable" && e.reason === "HASHER_BUSY" && e.retryAfterSeconds === 1 && e.message === "too many password checks in progress; retry shortly";

const tick = () => new Promise((r) => setImmediate(r));

describe("core: hash pool", () => {
  it("runs `concurrency` jobs, queues `queueLimit` more in order, and refuses the next at once", async () => {
    const pool = new HashPool({ concurrency: 2, queueLimit: 2, retryAfterSeconds: () => 1 });
    const jobs = Array.from({ length: 4 }, gate);
    const running = jobs.map((j) => pool.run(j.run));
    await tick();
    assert.deepEqual(jobs.map((j) => j.started), [true, true, false, false]);
    assert.throws(() => pool.admit(), isBusy);
    await assert.rejects(pool.run(async () => assert.fail("a refused job must not run")), isBusy);
    jobs[1]!.release();
    await tick();
    assert.deepEqual(jobs.map((j) => j.started), [true, true, true, false], "the first waiting job takes the freed place");
    pool.admit(); // one place in the queue again
    for (const j of jobs) j.release();
    await Promise.all(running);
    await tick();
    // Everything finished: all places free.
    const again = Array.from({ length: 4 }, gate);
    const next = again.map((j) => pool.run(j.run));
    await tick();
    assert.deepEqual(again.map((j) => j.started), [true, true, false, false]);
    for (const j of again) j.release();
    await Promise.all(next);
  });

  it("frees a place when a job fails, and passes the failure on", async () => {
    const pool = new HashPool({ concurrency: 1, queueLimit: 0, retryAfterSeconds: () => 1 });
    await assert.rejects(pool.run(async () => Promise.reject(new Error("argon2 failed"))), /argon2 failed/);
    assert.equal(await pool.run(async () => 42), 42);
  });

  it("with no queue, refuses whatever finds every hasher busy", async () => {
    const pool = new HashPool({ concurrency: 1, queueLimit: 0, retryAfterSeconds: () => 1 });
    const job = gate();
    const first = pool.run(job.run);
    await assert.rejects(pool.run(async () => 0), isBusy);
    job.release();
    await first;
    assert.equal(await pool.run(async () => 1), 1);
  });

  it("by default, spreads the Retry-After of refusals over 1, 2 and 3 seconds, so that a refused burst does not come back as one", async () => {
    const pool = new HashPool({ concurrency: 1, queueLimit: 0 });
    const job = gate();
    const first = pool.run(job.run);
    const seen = new Map<number, number>();
    for (let i = 0; i < 600; i++) {
      try {
        pool.admit();
        assert.fail("admitted while the hasher is busy");
      } catch (e) {
        assert.ok(e instanceof AuthError && e.reason === "HASHER_BUSY", String(e));
        seen.set(e.retryAfterSeconds!, (seen.get(e.retryAfterSeconds!) ?? 0) + 1);
      }
    }
    // Each value has probability 1/3: each appears well over 100 times in 600 (fewer than 100
    // has a probability below 1e-12).
    assert.deepEqual([...seen.keys()].sort(), [1, 2, 3]);
    for (const [, n] of seen) assert.ok(n > 100, JSON.stringify([...seen]));
    job.release();
    await first;
  });
  it("does not run a job of a call that has ended: one whose signal aborts leaves the queue at once, one whose deadline passed at its turn hands the hasher on", async () => {
    const pool = new HashPool({ concurrency: 1, queueLimit: 3, retryAfterSeconds: () => 1 });
    const first = gate();
    const running = pool.run(first.run);
    await tick();
    // Queued behind it: a call whose client leaves, a call whose deadline passes, a live one.
    const leaving = new AbortController();
    const cancelled = runInCall({ requestId: "cancelled", signal: leaving.signal }, () => pool.run(async () => assert.fail("a cancelled call's job must not run")));
    const late = runInCall({ requestId: "late", deadline: performance.now() + 50 }, () => pool.run(async () => assert.fail("a job past its call's deadline must not run")));
    const live = gate();
    const served = runInCall({ requestId: "live" }, () => pool.run(live.run));
    await tick();
    assert.equal(pool.queued, 3);
    leaving.abort();
    await assert.rejects(cancelled, CallEndedError);
    assert.equal(pool.queued, 2, "the cancelled job left the queue as its call ended");
    await new Promise((r) => setTimeout(r, 60)); // the late call's deadline passes while it waits
    first.release();
    await running;
    await assert.rejects(late, CallEndedError);
    await tick();
    assert.equal(live.started, true, "the live job got the hasher the late one handed on");
    assert.equal(pool.inUse, 1);
    live.release();
    await served;
    assert.equal(pool.inUse, 0);
    // A call already ended is refused before it takes a hasher.
    await assert.rejects(
      runInCall({ requestId: "gone", signal: AbortSignal.abort() }, () => pool.run(async () => assert.fail("must not run"))),
      CallEndedError,
    );
    assert.equal(pool.inUse, 0);
  });
});
