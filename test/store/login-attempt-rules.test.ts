// The rule both stores apply to a login attempt counter (ports/login-attempts.ts), run here on a
// counter kept in memory: slots still being checked are held on a lease, failures are not.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  failSlot,
  giveBackSlot,
  heldSlot,
  takeSlot,
  type AttemptRule,
  type AttemptState,
  type HeldSlot,
} from "../../src/store/ports/login-attempts.js";

const LEASE = 60_000;
const rule: AttemptRule = { windowMs: 15 * 60_000, lockMs: 60_000, maxLockMs: 15 * 60_000, leaseMs: LEASE };
const KEY = "login:k";
const at = (ms: number) => new Date(1_700_000_000_000 + ms);

/** A counter in memory, written by the rule as a store would (one step at a time). */
class Counter {
  state: AttemptState | null = null;
  constructor(readonly limit: number) {}
  take(ms: number): HeldSlot | "full" | "locked" {
    const step = takeSlot(this.state, this.limit, at(ms), rule);
    if ("refused" in step) return step.lockedUntil ? "locked" : "full";
    this.state = step.state;
    return heldSlot(KEY, this.limit, step.state, at(ms));
  }
  fail(slot: HeldSlot, ms: number): void {
    this.state = failSlot(this.state, slot, at(ms), rule) ?? this.state;
  }
  release(slot: HeldSlot): void {
    this.state = giveBackSlot(this.state, slot) ?? this.state;
  }
}

function taken(slot: HeldSlot | "full" | "locked"): HeldSlot {
  assert.equal(typeof slot, "object", `expected a slot, got ${String(slot)}`);
  return slot as HeldSlot;
}

describe("login attempt rules: slots still being checked are held on a lease", () => {
  it("a slot never ended counts until the lease of the newest pending one passes, then none of them does; failures stay", () => {
    const c = new Counter(3);
    c.fail(taken(c.take(0)), 1);
    taken(c.take(10)); // never ended
    taken(c.take(20)); // never ended
    assert.equal(c.take(30), "full");
    assert.equal(c.take(20 + LEASE - 1), "full");
    // The newest pending slot's lease has passed: only the failure still counts.
    const a = taken(c.take(20 + LEASE));
    assert.deepEqual(a.takenAt, at(20 + LEASE));
    taken(c.take(20 + LEASE));
    assert.equal(c.take(20 + LEASE), "full");
    assert.equal(c.state!.failures, 1);
  });

  it("failures are not leased: they count until the window passes", () => {
    const c = new Counter(2);
    c.fail(taken(c.take(0)), 0);
    taken(c.take(1)); // never ended
    assert.equal(c.take(LEASE), "full");
    // Past the lease the dead slot is free, the failure is not: the next failure locks.
    c.fail(taken(c.take(1 + LEASE)), 2 + LEASE);
    assert.equal(c.take(3 + LEASE), "locked");
  });

  it("a late release of a slot whose lease passed gives nothing back; its late failure counts once, taking a slot again", () => {
    const c = new Counter(3);
    const old = taken(c.take(0));
    const x = taken(c.take(LEASE));
    assert.ok(c.state!.pendingFrom!.getTime() > old.takenAt.getTime(), "a new group started");
    c.release(old);
    taken(c.take(LEASE + 1));
    taken(c.take(LEASE + 2));
    assert.equal(c.take(LEASE + 3), "full", "the late release freed nothing");
    c.fail(old, LEASE + 4);
    assert.deepEqual({ held: c.state!.held, failures: c.state!.failures }, { held: 4, failures: 1 });
    // x ends: one slot back, the late failure still holds its own: held 3 of 3.
    c.release(x);
    assert.equal(c.take(LEASE + 5), "full");
  });

  it("a state stored before leases (no pendingFrom, pendingUntil): its pending slots last the lease from its last attempt", () => {
    const c = new Counter(2);
    c.state = { held: 2, failures: 0, windowStart: at(0), lastAttemptAt: at(5) };
    const before = { key: KEY, limit: 2, windowStart: at(0), takenAt: at(5) };
    assert.equal(c.take(4 + LEASE), "full");
    taken(c.take(5 + LEASE));
    // A slot of the old state, released late, gives nothing back from the new group.
    c.release(before);
    assert.equal(c.state!.held, 1);
  });

  it("a slot taken by an instance whose clock is behind joins the group it found", () => {
    const c = new Counter(3);
    taken(c.take(0));
    const fresh = taken(c.take(LEASE + 100));
    const behind = taken(c.take(LEASE + 50));
    assert.deepEqual(behind.takenAt, fresh.takenAt);
    c.release(behind);
    assert.equal(c.state!.held, 1);
  });

  it("once every slot of a group has ended, the next slot starts a new group: successful logins one after another each hold a group of their own", () => {
    const c = new Counter(3);
    for (let i = 0; i < 100; i++) c.release(taken(c.take(i)));
    const last = taken(c.take(100));
    assert.deepEqual(c.state, {
      held: 1,
      failures: 0,
      windowStart: at(0),
      lastAttemptAt: at(100),
      lockedUntil: undefined,
      pendingFrom: at(100),
      pendingUntil: at(100 + LEASE),
    });
    assert.deepEqual(last.takenAt, at(100));
  });

  it("a slot still pending keeps its group going; a failure ends its slot as a release does", () => {
    const c = new Counter(3);
    const a = taken(c.take(0));
    const b = taken(c.take(1));
    c.release(a);
    const d = taken(c.take(2));
    assert.deepEqual([c.state!.pendingFrom, d.takenAt], [at(0), at(2)]);
    c.release(d);
    c.fail(b, 3);
    // All three ended (b a failure): the next slot starts a group, the failure still counted.
    const e = taken(c.take(4));
    assert.deepEqual([c.state!.held, c.state!.failures, c.state!.pendingFrom, e.takenAt], [2, 1, at(4), at(4)]);
  });

  it("the group after one whose slots all ended starts after every slot that group took, even one taken by an instance whose clock is ahead", () => {
    const c = new Counter(3);
    const ahead = taken(c.take(5_000));
    c.release(ahead);
    const next = taken(c.take(1_000));
    assert.deepEqual(next.takenAt, at(5_001));
    assert.deepEqual(c.state!.pendingFrom, at(5_001));
    // A release of the ended group's slot (its duplicate, or MongoDB's count of the releases
    // taken since the group started) is not of the new group.
    assert.equal(giveBackSlot(c.state, ahead), null);
    c.release(next);
    assert.equal(c.state!.held, 0);
  });

  // Any interleaving of reservations, failures, releases (each attempt ends at most once, or
  // never: its process died) and time passing, leases included.
  type Op = { kind: "take"; dt: number } | { kind: "fail" | "release"; which: number; dt: number };
  const dt = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: LEASE / 4 }), fc.integer({ min: LEASE - 10, max: LEASE + 10 }), fc.integer({ min: 1, max: 20 * 60_000 }));
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant("take" as const), dt }),
    fc.record({ kind: fc.constantFrom("fail" as const, "release" as const), which: fc.nat(), dt }),
  );

  it("for any interleaving: failures counted are exactly the failures of the window, held never falls below them, and every attempt within its lease is counted", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 60 }), (limit, ops) => {
        const c = new Counter(limit);
        let now = 0;
        // Each slot with the time it was granted, from which its lease runs (its takenAt names
        // its group, and may be later: a group that follows one whose slots all ended starts
        // after every slot that one took).
        const open: Array<HeldSlot & { grantedAt: number }> = [];
        const failed: HeldSlot[] = [];
        for (const o of ops) {
          now += o.dt;
          if (o.kind === "take") {
            const slot = c.take(now);
            if (typeof slot === "object") open.push({ ...slot, grantedAt: now });
          } else if (open.length > 0) {
            const [slot] = open.splice(o.which % open.length, 1);
            if (o.kind === "fail") {
              c.fail(slot!, now);
              failed.push(slot!);
            } else {
              c.release(slot!);
            }
          }
          const s = c.state;
          if (!s) continue;
          const inWindow = (slot: HeldSlot) => slot.windowStart.getTime() === s.windowStart.getTime();
          assert.equal(s.failures, failed.filter(inWindow).length, "failures counted = failures that happened in the window");
          assert.ok(s.held >= s.failures, `held ${s.held} >= failures ${s.failures}`);
          // What a reservation now would count as held (takeSlot's reading of the state).
          const leased = s.pendingUntil !== undefined && s.pendingUntil.getTime() > at(now).getTime();
          const counted = leased ? s.held : s.failures;
          const live = open.filter((slot) => inWindow(slot) && slot.grantedAt + LEASE > now).length;
          assert.ok(counted >= s.failures + live, `counted ${counted} >= failures ${s.failures} + attempts within their lease ${live}`);
        }
      }),
      {
        numRuns: 2000,
        // A slot granted at 1 ms into a group that starts at 2 (the one before it ended at 1): its
        // lease ends at 60,001, from its grant.
        examples: [[1, [{ kind: "take", dt: 1 }, { kind: "release", which: 0, dt: 0 }, { kind: "take", dt: 0 }, { kind: "take", dt: LEASE }]]],
      },
    );
  });

  // MongoDB counts a window's releases by when their slots were taken (those at or after the
  // group's start: mongo-login-attempts.ts). Instances' clocks up to 5 s apart (README,
  // "Clocks"), any interleaving: a release counted is always of a slot of the current group.
  it("for any interleaving across clocks 5 s apart: the releases a group counts by takenAt are its own slots' only", () => {
    const skew = fc.integer({ min: -5_000, max: 5_000 });
    const step: fc.Arbitrary<{ kind: "take" | "fail" | "release"; which: number; dt: number; skew: number }> = fc.record({
      kind: fc.constantFrom("take" as const, "take" as const, "fail" as const, "release" as const),
      which: fc.nat(),
      dt: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3_000 }), fc.integer({ min: LEASE - 10, max: LEASE + 10 })),
      skew,
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(step, { maxLength: 60 }), (limit, ops) => {
        // The stored state, `held` being the slots granted (MongoDB's `grants`), and the releases.
        let stored: AttemptState | null = null;
        const released: Array<{ slot: HeldSlot; group: string }> = [];
        const open: Array<{ slot: HeldSlot; group: string }> = [];
        const groupOf = (s: AttemptState) => `${s.windowStart.getTime()}/${s.pendingFrom?.getTime()}`;
        const counted = (s: AttemptState) =>
          released.filter(({ slot }) => slot.windowStart.getTime() === s.windowStart.getTime() && slot.takenAt.getTime() >= s.pendingFrom!.getTime());
        /** The state as a reservation reads it, and what it writes back for `next`. */
        const read = (s: AttemptState) => ({ ...s, held: s.held - counted(s).length });
        const write = (before: AttemptState, next: AttemptState): AttemptState =>
          groupOf(before) === groupOf(next) ? { ...next, held: next.held + counted(before).length } : next;
        let now = 0;
        for (const o of ops) {
          now += o.dt;
          const when = at(now + o.skew);
          if (o.kind === "take") {
            const current = stored && read(stored);
            const taken = takeSlot(current, limit, when, rule);
            if ("refused" in taken) continue;
            stored = stored ? write(stored, taken.state) : taken.state;
            open.push({ slot: heldSlot(KEY, limit, taken.state, when), group: groupOf(taken.state) });
          } else if (open.length > 0) {
            const [ended] = open.splice(o.which % open.length, 1);
            if (o.kind === "release") {
              released.push(ended!);
            } else {
              const next = failSlot(read(stored!), ended!.slot, when, rule);
              if (next) stored = write(stored!, next);
            }
          }
          if (stored) for (const r of counted(stored)) assert.equal(r.group, groupOf(stored), "a release counted is of the current group");
        }
      }),
      { numRuns: 3000 },
    );
  });
});
