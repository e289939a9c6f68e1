// V8's interrupt budget, lowered once the service listens (src/tier-up.ts), unless node's own
// command line sets one: the flag V8 is given, or that none is; the compiled start's test sees
// the service log the lowered one.
import assert from "node:assert/strict";
import { lowerTierUpBudget, serviceInterruptBudget } from "../../src/tier-up.js";

/** lowerTierUpBudget's answer for `execArgv`, and the flags it gave V8 (none set in this process). */
function lowered(execArgv: string[]): { budget: number | string; set: string[] } {
  const set: string[] = [];
  return { budget: lowerTierUpBudget(execArgv, (flags) => set.push(flags)), set };
}

describe("server: V8's tier-up budget", () => {
  it("is lowered to 8192 when node's command line sets none: V8 is given --interrupt-budget=8192", () => {
    assert.equal(serviceInterruptBudget, 8192);
    assert.deepEqual(lowered(["--require", "probe.cjs"]), { budget: 8192, set: ["--interrupt-budget=8192"] });
  });

  it("is left as node's command line gives it, in either spelling, with '=' or as the next argument: V8 is given nothing", () => {
    assert.deepEqual(lowered(["--interrupt-budget=20000"]), { budget: "20000", set: [] });
    assert.deepEqual(lowered(["--require", "x.cjs", "--interrupt_budget=4096"]), { budget: "4096", set: [] });
    assert.deepEqual(lowered(["--interrupt-budget", "65536"]), { budget: "65536", set: [] });
  });

  it("is not mistaken for another flag that begins alike", () => {
    assert.deepEqual(lowered(["--interrupt-budget-for-feedback-allocation=100"]), { budget: 8192, set: ["--interrupt-budget=8192"] });
  });
});
