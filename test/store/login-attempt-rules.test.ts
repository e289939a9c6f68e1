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
        const open: HeldSlot[] = [];
        const failed: HeldSlot[] = [];
        for (const o of ops) {
          now += o.dt;
          if (o.kind === "take") {
            const slot = c.take(now);
            if (typeof slot === "object") open.push(slot);
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
          const live = open.filter((slot) => inWindow(slot) && slot.takenAt.getTime() + LEASE > at(now).getTime()).length;
          assert.ok(counted >= s.failures + live, `counted ${counted} >= failures ${s.failures} + attempts within their lease ${live}`);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
