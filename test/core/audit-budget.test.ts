// The audit budget's bounds that no API test reaches: memory (addresses tracked per window) and
// the window's end without a further event. The API behaviour is test/audit/audit-budget.test.ts's.
import assert from "node:assert/strict";
import { AuditBudget, type SuppressedSummary } from "../../src/core/audit-budget.js";
import { ManualClock } from "../../src/core/clock.js";
import type { AuditEventRecord } from "../../src/store/ports/audit-events.js";

const refusal = (clientAddress: string): AuditEventRecord => ({ id: "x", time: new Date(0), type: "login", outcome: "failure", reason: "INVALID_CREDENTIALS", clientAddress });

describe("AuditBudget", () => {
  it("tracks at most maxAddresses addresses in a window, even without a total: the rest count towards the summary without an address", () => {
    const clock = new ManualClock(0);
    const emitted: SuppressedSummary[][] = [];
    const budget = new AuditBudget({ perAddress: 2, total: 0, windowMs: 60_000, maxAddresses: 3 }, clock, (s) => emitted.push(s));
    const admitted = Array.from({ length: 10 }, (_, i) => budget.admit(refusal(`192.0.2.${i}`)));
    assert.deepEqual(admitted, [true, true, true, false, false, false, false, false, false, false]);
    // A tracked address still has its own budget.
    assert.deepEqual([budget.admit(refusal("192.0.2.0")), budget.admit(refusal("192.0.2.0"))], [true, false]);
    budget.stop();
    assert.deepEqual(emitted, [
      [
        { clientAddress: "192.0.2.0", suppressed: { since: new Date(0), count: 1, events: [{ type: "login", outcome: "failure", reason: "INVALID_CREDENTIALS", count: 1 }] } },
        { suppressed: { since: new Date(0), count: 7, events: [{ type: "login", outcome: "failure", reason: "INVALID_CREDENTIALS", count: 7 }] } },
      ],
    ]);
    // Stopped: every later event is stored.
    assert.equal(budget.admit(refusal("192.0.2.0")), true);
  });

  it("a new window starts with a fresh budget, the last one summarised at its first event", () => {
    const clock = new ManualClock(0);
    const emitted: SuppressedSummary[][] = [];
    const budget = new AuditBudget({ perAddress: 1, total: 0, windowMs: 60_000 }, clock, (s) => emitted.push(s));
    assert.deepEqual([budget.admit(refusal("192.0.2.1")), budget.admit(refusal("192.0.2.1"))], [true, false]);
    clock.advance(60_000);
    assert.equal(budget.admit(refusal("192.0.2.1")), true);
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]![0]!.suppressed.count, 1);
    budget.stop();
  });

  it("ends the window by its timer (after windowMs, once the clock has passed its end) when no further event comes", async () => {
    const clock = new ManualClock(0);
    const emitted: SuppressedSummary[][] = [];
    const budget = new AuditBudget({ perAddress: 1, total: 0, windowMs: 50 }, clock, (s) => emitted.push(s));
    budget.admit(refusal("192.0.2.1"));
    budget.admit(refusal("192.0.2.1"));
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(emitted.length, 0, "the clock has not moved: the window is still open");
    clock.advance(50);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(emitted.length, 1);
    budget.stop();
  });

  it("a clock stepped back an hour ends the window at the next event: the budget is not held for the hour more", () => {
    const clock = new ManualClock(10 * 3_600_000);
    const emitted: SuppressedSummary[][] = [];
    const budget = new AuditBudget({ perAddress: 1, total: 0, windowMs: 60_000 }, clock, (s) => emitted.push(s));
    assert.deepEqual([budget.admit(refusal("192.0.2.1")), budget.admit(refusal("192.0.2.1"))], [true, false]);
    clock.advance(-3_600_000);
    assert.equal(budget.admit(refusal("192.0.2.1")), true, "a new window, with its own budget");
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]![0]!.suppressed.count, 1);
    budget.stop();
  });

  it("a clock stepped back 30 days (beyond what a timer holds) ends the window by its timer, once", async () => {
    const clock = new ManualClock(100 * 86_400_000);
    const emitted: SuppressedSummary[][] = [];
    const budget = new AuditBudget({ perAddress: 1, total: 0, windowMs: 50 }, clock, (s) => emitted.push(s));
    budget.admit(refusal("192.0.2.1"));
    budget.admit(refusal("192.0.2.1"));
    clock.advance(-30 * 86_400_000);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(emitted.length, 1);
    budget.stop();
  });

  it("0 and 0: no limit, everything is stored", () => {
    const budget = new AuditBudget({ perAddress: 0, total: 0, windowMs: 60_000 }, new ManualClock(0), () => assert.fail("nothing to summarise"));
    for (let i = 0; i < 1000; i++) assert.equal(budget.admit(refusal("192.0.2.1")), true);
  });
});
