// V8's interrupt budget, lowered once the service listens (src/tier-up.ts), unless node's own
// command line sets one: the compiled start's test sees the service log the lowered one.
import assert from "node:assert/strict";
import { lowerTierUpBudget, serviceInterruptBudget } from "../../src/tier-up.js";

describe("server: V8's tier-up budget", () => {
  it("is lowered to 8192 when node's command line sets none", () => {
    assert.equal(serviceInterruptBudget, 8192);
    assert.equal(lowerTierUpBudget(["--require", "probe.cjs"]), 8192);
  });

  it("is left as node's command line gives it, in either spelling, with '=' or as the next argument", () => {
    assert.equal(lowerTierUpBudget(["--interrupt-budget=20000"]), "20000");
    assert.equal(lowerTierUpBudget(["--require", "x.cjs", "--interrupt_budget=4096"]), "4096");
    assert.equal(lowerTierUpBudget(["--interrupt-budget", "65536"]), "65536");
  });

  it("is not mistaken for another flag that begins alike", () => {
    assert.equal(lowerTierUpBudget(["--interrupt-budget-for-feedback-allocation=100"]), 8192);
  });
});
