// A refused login takes as long whichever way it is refused. An unknown login is verified against
// a dummy hash at the current argon2 parameters; a user whose stored hash has older, cheaper
// parameters (until their next login upgrades it) would answer a wrong password faster than an
// unknown login, telling that the account exists. Such a refusal waits, by a timer (no hashing),
// until a verification at the current parameters would have ended: as long as one of the recent
// ones took (the dummy's making time before there is any). Times here come from an injected
// source, so nothing depends on how fast this machine is.
import assert from "node:assert/strict";
import argon2 from "argon2";
import { HashPool } from "../../src/core/hash-pool.js";
import { Passwords, type VerifyTiming } from "../../src/core/passwords.js";

const current = { memoryKib: 2048, iterations: 2, parallelism: 1 };
const cheaper = { memoryKib: 1024, iterations: 1, parallelism: 1 };
const dearer = { memoryKib: 4096, iterations: 3, parallelism: 1 };
const password = "correct horse battery";
const wrong = "not the password";

/** A scripted clock (each now() takes the next reading) and a timer that only records. */
class ScriptedTiming implements VerifyTiming {
  readonly sleeps: number[] = [];
  private readonly pending: Array<() => void> = [];
  constructor(private readonly readings: number[], private readonly pick = 0) {}
  now(): number {
    const t = this.readings.shift();
    if (t === undefined) throw new Error("no more clock readings scripted");
    return t;
  }
  sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    return new Promise((resolve) => this.pending.push(resolve));
  }
  random(): number {
    return this.pick;
  }
  /** Resolves once a timer has been started (argon2 runs on a thread: its end is not a tick away). */
  async slept(): Promise<void> {
    while (this.sleeps.length === 0) await new Promise((r) => setTimeout(r, 2));
  }
  /** Ends every timer started so far. */
  fire(): void {
    for (const r of this.pending.splice(0)) r();
  }
}

const hashAt = (p: typeof current) => argon2.hash(password, { type: argon2.argon2id, memoryCost: p.memoryKib, timeCost: p.iterations, parallelism: p.parallelism });

describe("login refusals take as long whatever the stored hash's parameters", function () {
  this.timeout(30_000);
  let currentHash: string;
  let cheaperHash: string;
  let dearerHash: string;
  before(async () => {
    [currentHash, cheaperHash, dearerHash] = await Promise.all([hashAt(current), hashAt(cheaper), hashAt(dearer)]);
  });

  it("a wrong password for a cheaper hash waits until a current verification's time; the right one and current hashes do not wait", async () => {
    // Current verify 0 -> 50 (a sample of 50 ms); cheaper verify 100 -> 110 (10 ms): waits 40 ms.
    const timing = new ScriptedTiming([0, 50, 100, 110, 200, 212, 300, 340]);
    const passwords = new Passwords(current, undefined, timing);
    assert.equal(await passwords.verify(currentHash, wrong), false);
    assert.deepEqual(timing.sleeps, []);
    const refused = passwords.verify(cheaperHash, wrong);
    await timing.slept();
    assert.deepEqual(timing.sleeps, [40]);
    timing.fire();
    assert.equal(await refused, false);
    // The right password for the cheaper hash: no wait (the login then upgrades the hash).
    assert.equal(await passwords.verify(cheaperHash, password), true);
    // A wrong password for a current hash: no wait.
    assert.equal(await passwords.verify(currentHash, wrong), false);
    assert.deepEqual(timing.sleeps, [40]);
  });

  it("waits as long as one of the recent current verifications took, picked at random", async () => {
    // Three current verifies: 30, 60 and 90 ms; then a cheaper one of 5 ms.
    const timing = new ScriptedTiming([0, 30, 0, 60, 0, 90, 0, 5], 0.5);
    const passwords = new Passwords(current, undefined, timing);
    for (let i = 0; i < 3; i++) await passwords.verify(currentHash, wrong);
    const refused = passwords.verify(cheaperHash, wrong);
    await timing.slept();
    assert.deepEqual(timing.sleeps, [55]); // the sample at index floor(0.5 * 3) = 1: 60 ms
    timing.fire();
    assert.equal(await refused, false);
  });

  it("a wrong password not in its prepared form, verified in both forms, waits as long as two current verifications", async () => {
    // Current verify 0 -> 50 (a sample of 50 ms); the cheaper hash verified decomposed (NFD), its
    // prepared form (NFC) 100 -> 110, then as typed 120 -> 130: waits 2 * 50 - 20 = 80 ms.
    const timing = new ScriptedTiming([0, 50, 100, 110, 120, 130]);
    const passwords = new Passwords(current, undefined, timing);
    await passwords.verify(currentHash, wrong);
    const refused = passwords.verify(cheaperHash, "not the caf\u00e9".normalize("NFD"));
    await timing.slept();
    assert.deepEqual(timing.sleeps, [80]);
    timing.fire();
    assert.equal(await refused, false);
  });

  it("a stored hash that is no argon2id hash at all is refused after the same wait", async () => {
    const timing = new ScriptedTiming([0, 50, 100, 101]);
    const passwords = new Passwords(current, undefined, timing);
    await passwords.verify(currentHash, wrong);
    const refused = passwords.verify("$2b$10$notanargon2hashatall", wrong);
    await timing.slept();
    assert.deepEqual(timing.sleeps, [49]);
    timing.fire();
    assert.equal(await refused, false);
  });

  it("before any current verification, the dummy hash's making time is the reference", async () => {
    // The cheaper verify 0 -> 10, then the dummy is made 20 -> 80 (60 ms): waits 50 ms.
    const timing = new ScriptedTiming([0, 10, 20, 80]);
    const passwords = new Passwords(current, undefined, timing);
    const refused = passwords.verify(cheaperHash, wrong);
    await timing.slept();
    assert.deepEqual(timing.sleeps, [50]);
    timing.fire();
    assert.equal(await refused, false);
  });

  it("the wait holds no hasher: another verification runs meanwhile", async () => {
    const timing = new ScriptedTiming([0, 50, 100, 110, 200, 250]);
    const passwords = new Passwords(current, new HashPool({ concurrency: 1, queueLimit: 0 }), timing);
    await passwords.verify(currentHash, wrong);
    const refused = passwords.verify(cheaperHash, wrong);
    await timing.slept();
    assert.deepEqual(timing.sleeps, [40]);
    // With one hasher and no queue, this would be HASHER_BUSY if the wait held the hasher.
    assert.equal(await passwords.verify(currentHash, password), true);
    timing.fire();
    assert.equal(await refused, false);
  });

  it("a dearer (older) hash is not made faster: no wait is added (see README, argon2 cost)", async () => {
    const timing = new ScriptedTiming([0, 50, 100, 180]);
    const passwords = new Passwords(current, undefined, timing);
    await passwords.verify(currentHash, wrong);
    assert.equal(await passwords.verify(dearerHash, wrong), false);
    assert.deepEqual(timing.sleeps, []);
  });
});
