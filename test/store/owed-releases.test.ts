// The give-backs a store failed, tried again in rounds (store/ports/owed-releases.ts). A round
// sends at most ROUND_CONCURRENCY of them at a time: after a long outage thousands may be owed,
// and sent at once they would flood the store just as it answers again. Every owed give-back is
// still tried in each round, and given back once the store answers. A round runs outside the
// scope of any call, also one begun for a login that waits for it (settle()): its store calls
// are no part of that login (its request id, its trace).
import assert from "node:assert/strict";
import { currentCall, runInCall, type CallScope } from "../../src/call-scope.js";
import { OwedReleases, ROUND_CONCURRENCY } from "../../src/store/ports/owed-releases.js";
import type { HeldSlot } from "../../src/store/ports/login-attempts.js";
import { gate } from "../credentials/support.js";

const WINDOW_MS = 15 * 60_000;
const now = Date.now();
const slotsOf = (i: number): readonly HeldSlot[] => [{ key: `login:${i}`, limit: 5, windowStart: new Date(now), takenAt: new Date(now), id: `slot-${i}` }];
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("owed releases", () => {
  const owedReleases: OwedReleases[] = [];
  afterEach(async () => {
    for (const owed of owedReleases.splice(0)) await owed.close();
  });
  const owedTo = (giveBack: (slots: readonly HeldSlot[]) => Promise<void>) => {
    const owed = new OwedReleases(giveBack, () => now);
    owedReleases.push(owed);
    return owed;
  };

  it(`a round of 100 give-backs owed has at most ${ROUND_CONCURRENCY} in flight, fails each while the store is away, and gives back all once it answers`, async () => {
    let away = true;
    let inFlight = 0;
    let maxInFlight = 0;
    let tried = 0;
    const given = new Set<string>();
    const owed = owedTo(async (slots) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      tried++;
      try {
        await turn();
        if (away) throw new Error("the store went away");
        given.add(slots[0]!.id!);
      } finally {
        inFlight--;
      }
    });
    for (let i = 0; i < 100; i++) owed.owe(slotsOf(i), WINDOW_MS);

    // The store away, a round ends with its first failures: the rest wait for the next round.
    await owed.settle();
    assert.deepEqual({ maxInFlight, tried, given: given.size }, { maxInFlight: ROUND_CONCURRENCY, tried: ROUND_CONCURRENCY, given: 0 });

    away = false;
    maxInFlight = 0;
    await owed.settle();
    assert.deepEqual({ maxInFlight, tried, given: given.size }, { maxInFlight: ROUND_CONCURRENCY, tried: ROUND_CONCURRENCY + 100, given: 100 });
    // Nothing is owed any more: the next settle asks nothing of the store.
    await owed.settle();
    assert.equal(tried, ROUND_CONCURRENCY + 100);
  });

  it("a login waiting for a round while the store hangs waits one time bound, not one for each sixteen owed: the round ends at its first failures", async () => {
    const held: Array<() => void> = [];
    let hanging = true;
    // A store that hangs: each give-back waits to be failed by the test (its time bound); then
    // fails at once (the stop after the test).
    const owed = owedTo(async () => {
      if (hanging) await new Promise<void>((resolve) => held.push(resolve));
      throw new Error("the store's time bound passed");
    });
    for (let i = 0; i < 100; i++) owed.owe(slotsOf(i), WINDOW_MS);
    let done = false;
    const waiting = owed.settle().then(() => (done = true));
    await turn();
    const sent = held.length;
    for (const fail of held.splice(0)) fail();
    for (let i = 0; i < 3; i++) await turn();
    const [sentAfter, doneThen] = [held.length, done];
    hanging = false;
    for (const fail of held.splice(0)) fail();
    await waiting;
    assert.deepEqual({ sent, done: doneThen, sentAfter }, { sent: ROUND_CONCURRENCY, done: true, sentAfter: 0 });
  });

  it("a stop sends what the round under way has not tried in one last round, all at once, so that a store that hangs holds it up one time bound, not one for each sixteen", async () => {
    const held: Array<() => void> = [];
    let inFlight = 0;
    const batches: number[] = [];
    // A store that hangs: each give-back waits to be failed by the test (its time bound).
    const owed = owedTo(async () => {
      inFlight++;
      await new Promise<void>((resolve) => held.push(resolve));
      inFlight--;
      throw new Error("the store's time bound passed");
    });
    const failHeld = async () => {
      batches.push(held.length);
      for (const fail of held.splice(0)) fail();
      for (let i = 0; i < 3; i++) await turn();
    };
    for (let i = 0; i < 100; i++) owed.owe(slotsOf(i), WINDOW_MS);
    void owed.settle();
    await turn();
    assert.equal(inFlight, ROUND_CONCURRENCY);
    let stopped = false;
    const stopping = owed.close().then(() => (stopped = true));
    // The round under way: its sixteen fail, and it sends none of the other 84; then the stop's
    // last round: all 100, at once.
    while (!stopped && batches.length < 20) await failHeld();
    assert.deepEqual({ batches, stopped, inFlight, left: held.length }, { batches: [ROUND_CONCURRENCY, 100], stopped: true, inFlight: 0, left: 0 });
    // Nothing is kept after the stop: no round asks the store again.
    await owed.settle();
    assert.equal(held.length, 0);
  });

  it("a login that comes while a round is under way waits for one more after it, also when that round began as the one before it ended", async () => {
    // Each give-back waits for the test to fail it (the store away) or to make it.
    const asked: Array<{ make(): void; fail(): void }> = [];
    let ended = false;
    const owed = owedTo(
      () =>
        new Promise<void>((make, fail) => {
          if (ended) return make();
          asked.push({ make, fail: () => fail(new Error("the store went away")) });
        }),
    );
    try {
      owed.owe(slotsOf(0), WINDOW_MS);
      void owed.settle();
      const afterFirst = owed.settle();
      asked[0]!.fail();
      // Logins that call settle() as the first round ends, turn after turn, until a second round
      // is under way (begun by one of them, or for the caller waiting for one after the first).
      for (let i = 0; i < 50 && asked.length < 2; i++) {
        void owed.settle();
        await Promise.resolve();
      }
      assert.equal(asked.length, 2);
      // A login that comes while that round is under way, which then fails (sent while the store
      // was away): it waits for a third round, which gives the slot back.
      let done = false;
      const waiting = owed.settle().then(() => (done = true));
      asked[1]!.fail();
      await turn();
      assert.deepEqual({ done, asked: asked.length }, { done: false, asked: 3 });
      asked[2]!.make();
      await Promise.all([waiting, afterFirst]);
      assert.equal(done, true);
    } finally {
      ended = true;
      for (const give of asked) give.make();
    }
  });

  it("a round begun by a login's settle() asks the store outside that login's call", async () => {
    const scopes: Array<CallScope | undefined> = [];
    const owed = owedTo(async () => void scopes.push(currentCall()));
    owed.owe(slotsOf(0), WINDOW_MS);
    await runInCall({ requestId: "later-login" }, () => owed.settle());
    assert.deepEqual(scopes, [undefined]);
  });

  it("the round a login waits for after the one under way asks the store outside that login's call", async () => {
    const scopes: Array<CallScope | undefined> = [];
    const held = gate();
    let first = true;
    const owed = owedTo(async () => {
      scopes.push(currentCall());
      if (!first) return;
      first = false;
      // The round under way was sent while the store was away: it fails once the login came.
      await held.pass();
      throw new Error("the store went away");
    });
    owed.owe(slotsOf(0), WINDOW_MS);
    const underWay = owed.settle();
    await held.reached;
    const waiting = runInCall({ requestId: "later-login" }, () => owed.settle());
    held.open();
    await Promise.all([underWay, waiting]);
    assert.deepEqual(scopes, [undefined, undefined]);
  });
});
