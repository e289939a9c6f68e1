// The README's configuration table is generated from src/config.ts; keep them equal.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { withTable } from "../../scripts/docs-config.js";

describe("README", () => {
  it("documents every configuration variable exactly as src/config.ts declares it (npm run docs:config)", () => {
    const readme = readFileSync("README.md", "utf8");
    assert.equal(readme, withTable(readme));
  });

  it("gives the two commands: run and test", () => {
    const readme = readFileSync("README.md", "utf8");
    assert.ok(readme.includes("npm ci && npm start"));
    assert.ok(readme.includes("npm test"));
  });
});
