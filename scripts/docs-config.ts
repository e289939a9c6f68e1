// Rewrites the configuration table in README.md from src/config.ts (test/server/readme.test.ts
// fails when they differ).
import { readFileSync, writeFileSync } from "node:fs";
import { configTable } from "../src/config.js";

export const start = "<!-- config-table:start (generated from src/config.ts by `npm run docs:config`) -->";
export const end = "<!-- config-table:end -->";

export function withTable(readme: string): string {
  const a = readme.indexOf(start);
  const b = readme.indexOf(end);
  if (a < 0 || b < a) throw new Error("README.md has no config-table markers");
  return readme.slice(0, a + start.length) + "\n" + configTable() + "\n" + readme.slice(b);
}

if (process.argv[1]?.endsWith("docs-config.ts")) {
  writeFileSync("README.md", withTable(readFileSync("README.md", "utf8")));
}
