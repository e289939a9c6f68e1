// The hash pool: at most `concurrency` jobs run, at most `queueLimit` wait (first come, first
// served), and beyond that a job is refused at once with UNAVAILABLE HASHER_BUSY, Retry-After 1, 2
// or 3 seconds at random (fixed at 1 here where the pool is made with retryAfterSeconds). A place
// taken by admit() (a ticket) counts as taken until its job runs in it or it is given back; its
// job is never refused.
import assert from "node:assert/strict";
import fc from "fast-check";
import { CallEndedError, runInCall } from "../../src/call-scope.js";
import { AuthError } from "../../src/core/errors.js";
import { HashPool, type HashTicket } from "../../src/core/hash-pool.js";

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
    pool.admit().release(); // one place in the queue again
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
        pool.admit().release();
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

  describe("admission: a ticket holds its place until its job runs in it or it is given back", () => {
    /** Places taken now: hashing, waiting, held. */
    const taken = (pool: HashPool) => ({ inUse: pool.inUse, queued: pool.queued, reserved: pool.reserved });

    it("a ticket's place counts against the bound: admit() and run() are refused while tickets and jobs fill it, and admit again once one is given back", async () => {
      const pool = new HashPool({ concurrency: 1, queueLimit: 1, retryAfterSeconds: () => 1 });
      const a = pool.admit();
      const b = pool.admit();
      assert.deepEqual(taken(pool), { inUse: 0, queued: 0, reserved: 2 });
      assert.throws(() => pool.admit(), isBusy, "two places, both held: the hasher sits idle, yet nothing else is let in");
      await assert.rejects(pool.run(async () => assert.fail("must not run")), isBusy);
      a.release();
      a.release(); // again: nothing more given back
      assert.deepEqual(taken(pool), { inUse: 0, queued: 0, reserved: 1 });
      const c = pool.admit();
      assert.throws(() => pool.admit(), isBusy);
      b.release();
      c.release();
      assert.deepEqual(taken(pool), { inUse: 0, queued: 0, reserved: 0 });
      // All places free: two jobs at once, a third refused.
      const jobs = [gate(), gate()];
      const running = jobs.map((j) => pool.run(j.run));
      await assert.rejects(pool.run(async () => 0), isBusy);
      for (const j of jobs) j.release();
      await Promise.all(running);
    });

    it("a ticket's job is not refused however full the pool got after its admission: it waits its turn in the place it holds", async () => {
      const pool = new HashPool({ concurrency: 1, queueLimit: 1, retryAfterSeconds: () => 1 });
      const ticket = pool.admit(); // the sign-up, looking its login up
      const filler = gate();
      const filling = pool.run(filler.run); // the hasher, taken meanwhile
      await tick();
      assert.equal(filler.started, true, "a free hasher is not kept idle for a ticket");
      assert.deepEqual(taken(pool), { inUse: 1, queued: 0, reserved: 1 });
      assert.throws(() => pool.admit(), isBusy, "the bound is full: the hasher's job and the ticket's place");
      const mine = gate();
      const served = ticket.run(mine.run);
      await tick();
      assert.deepEqual(taken(pool), { inUse: 1, queued: 1, reserved: 0 }, "the ticket's place became its place in the queue");
      assert.throws(() => pool.admit(), isBusy);
      filler.release();
      await filling;
      await tick();
      assert.equal(mine.started, true);
      mine.release();
      await served;
      assert.deepEqual(taken(pool), { inUse: 0, queued: 0, reserved: 0 });
    });

    it("with one hasher and no queue, the admitted caller alone hashes", async () => {
      const pool = new HashPool({ concurrency: 1, queueLimit: 0, retryAfterSeconds: () => 1 });
      const ticket = pool.admit();
      await assert.rejects(pool.run(async () => assert.fail("the place is the ticket's")), isBusy);
      assert.equal(await ticket.run(async () => 7), 7);
      assert.deepEqual(taken(pool), { inUse: 0, queued: 0, reserved: 0 });
      pool.admit().release();
    });

    it("gives the place back on every path: the job done or failed, released unused, the call ended before or while it waits", async () => {
      const pool = new HashPool({ concurrency: 1, queueLimit: 1, retryAfterSeconds: () => 1 });
      const free = () => assert.deepEqual(taken(pool), { inUse: 0, queued: 0, reserved: 0 });
      // Used: the job's result, or its failure, passed on.
      assert.equal(await pool.admit().run(async () => "hashed"), "hashed");
      free();
      await assert.rejects(pool.admit().run(async () => Promise.reject(new Error("argon2 failed"))), /argon2 failed/);
      free();
      // A ticket runs one job, and none once given back (a caller's bug, said so), holding nothing then.
      const once = pool.admit();
      await once.run(async () => 1);
      await assert.rejects(once.run(async () => assert.fail("must not run")), /a hash ticket runs one job/);
      const dropped = pool.admit();
      dropped.release();
      await assert.rejects(dropped.run(async () => assert.fail("must not run")), /a hash ticket runs one job/);
      free();
      // The call ends (its client leaves) while the ticket is held: the place comes back at once,
      // and the job is not run.
      const leaving = new AbortController();
      await runInCall({ requestId: "left during its lookup", signal: leaving.signal }, async () => {
        const ticket = pool.admit();
        assert.equal(pool.reserved, 1);
        leaving.abort();
        free();
        await assert.rejects(ticket.run(async () => assert.fail("a cancelled call's job must not run")), CallEndedError);
        ticket.release();
      });
      free();
      // The call's deadline passes while the ticket is held (no signal): seen at run().
      await runInCall({ requestId: "late", deadline: performance.now() + 20 }, async () => {
        const ticket = pool.admit();
        await new Promise((r) => setTimeout(r, 40));
        await assert.rejects(ticket.run(async () => assert.fail("a job past its call's deadline must not run")), CallEndedError);
      });
      free();
      // The call ends while the ticket's job waits for the hasher: it leaves the queue.
      const first = gate();
      const running = pool.run(first.run);
      const waiting = new AbortController();
      const cancelled = runInCall({ requestId: "left while queued", signal: waiting.signal }, () => {
        const ticket = pool.admit();
        return ticket.run(async () => assert.fail("must not run"));
      });
      await tick();
      assert.deepEqual(taken(pool), { inUse: 1, queued: 1, reserved: 0 });
      waiting.abort();
      await assert.rejects(cancelled, CallEndedError);
      assert.deepEqual(taken(pool), { inUse: 1, queued: 0, reserved: 0 });
      first.release();
      await running;
      free();
    });

    it("keeps the bound exact under any mix of admissions, runs, releases and finished jobs (property)", async () => {
      const op = fc.oneof(
        fc.constant({ kind: "admit" as const }),
        fc.constant({ kind: "run" as const }),
        fc.record({ kind: fc.constant("use" as const), i: fc.nat() }),
        fc.record({ kind: fc.constant("release" as const), i: fc.nat() }),
        fc.record({ kind: fc.constant("finish" as const), i: fc.nat() }),
      );
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 3 }), fc.array(op, { maxLength: 40 }), async (concurrency, queueLimit, ops) => {
          const pool = new HashPool({ concurrency, queueLimit, retryAfterSeconds: () => 1 });
          const bound = concurrency + queueLimit;
          const tickets: HashTicket[] = [];
          const jobs: Array<{ job: ReturnType<typeof gate>; done: Promise<unknown> }> = [];
          const occupied = () => pool.inUse + pool.queued + pool.reserved;
          const submit = (start: (job: () => Promise<void>) => Promise<unknown>) => {
            const job = gate();
            jobs.push({ job, done: start(job.run) });
          };
          for (const o of ops) {
            const before = occupied();
            if (o.kind === "admit" || o.kind === "run") {
              if (before >= bound) {
                if (o.kind === "admit") assert.throws(() => pool.admit(), isBusy);
                else await assert.rejects(pool.run(async () => assert.fail("must not run")), isBusy);
              } else if (o.kind === "admit") tickets.push(pool.admit());
              else submit((job) => pool.run(job));
            } else if (o.kind === "use" && tickets.length > 0) {
              const [ticket] = tickets.splice(o.i % tickets.length, 1);
              submit((job) => ticket!.run(job)); // never refused
            } else if (o.kind === "release" && tickets.length > 0) {
              tickets.splice(o.i % tickets.length, 1)[0]!.release();
            } else if (o.kind === "finish") {
              const started = jobs.filter((j) => j.job.started);
              if (started.length > 0) {
                const [j] = started.splice(o.i % started.length, 1);
                jobs.splice(jobs.indexOf(j!), 1);
                j!.job.release();
                await j!.done;
              }
            }
            await tick();
            assert.ok(occupied() <= bound, `${occupied()} places taken, bound ${bound}`);
            assert.equal(pool.reserved, tickets.length);
            assert.equal(pool.inUse + pool.queued, jobs.length);
            assert.equal(pool.inUse, Math.min(concurrency, jobs.length), "no hasher idle while a job waits");
          }
          for (const t of tickets) t.release();
          while (jobs.length > 0) {
            const j = jobs.find((x) => x.job.started);
            assert.ok(j, "a job waits while no hasher runs");
            jobs.splice(jobs.indexOf(j), 1);
            j.job.release();
            await j.done;
            await tick();
          }
          assert.deepEqual(taken(pool), { inUse: 0, queued: 0, reserved: 0 });
        }),
        { numRuns: 200 },
      );
    });
  });
});
