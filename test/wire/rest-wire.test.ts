/**
 * The REST wire of every seed, byte for byte: test/wire/scenario.ts sends a fixed sequence of
 * requests (every documented route, successes and documented errors) and each answer is
 * compared with test/wire/golden.json: status, wire headers, body bytes, and the decoded
 * header and payload of every JWT. Random values are placeholders (`<jwt#3>`, `<uuid#2>`),
 * numbered by first appearance; the clock is frozen, so times are compared as they are.
 * Response headers are compared by name (their order is not), without Date, Connection and
 * Keep-Alive; a Content-Length is compared as is when the body holds no placeholder, otherwise
 * as "<length of body>" (it must equal the real body's length).
 * The golden file does not depend on the store: the same file is checked on SQLite and MongoDB.
 *
 * A difference is a change of the wire. When the change is intended, rewrite the golden file
 * and review its diff like code:
 *
 *   WIRE_RECORD=1 npx mocha test/wire/rest-wire.test.ts
 *
 * (records on SQLite, then checks every store against the new file).
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { storesUnderTest } from "../support/server.js";
import type { Recording } from "./recorder.js";
import { recordScenario } from "./scenario.js";

const goldenPath = fileURLToPath(new URL("./golden.json", import.meta.url));
const recordMode = process.env.WIRE_RECORD === "1";

function serialise(r: Recording): string {
  return JSON.stringify(r, null, 2) + "\n";
}

/** Every leaf that differs, as `path: expected -> actual` lines. */
function differences(expected: unknown, actual: unknown, path: string, out: string[]): void {
  if (typeof expected === "object" && expected !== null && typeof actual === "object" && actual !== null && Array.isArray(expected) === Array.isArray(actual)) {
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])];
    const eKeys = Object.keys(expected).join(",");
    const aKeys = Object.keys(actual).join(",");
    if (!Array.isArray(expected) && eKeys !== aKeys && [...eKeys.split(",")].sort().join(",") === [...aKeys.split(",")].sort().join(",")) {
      out.push(`${path}: key order ${eKeys} -> ${aKeys}`);
    }
    for (const k of keys) differences((expected as any)[k], (actual as any)[k], `${path}.${k}`, out);
    return;
  }
  if (expected === actual) return;
  // A JSON text (a body, a JWT's header or payload): point at the field that differs.
  const e = typeof expected === "string" ? parseObject(expected) : undefined;
  const a = typeof actual === "string" ? parseObject(actual) : undefined;
  if (e !== undefined && a !== undefined) {
    const inner: string[] = [];
    differences(e, a, `${path} JSON`, inner);
    if (inner.length > 0) {
      out.push(...inner);
      return;
    }
  }
  out.push(`${path}:\n      expected ${JSON.stringify(expected)}\n      actual   ${JSON.stringify(actual)}`);
}

function parseObject(text: string): object | undefined {
  if (!text.startsWith("{") && !text.startsWith("[")) return undefined;
  try {
    return JSON.parse(text) as object;
  } catch {
    return undefined;
  }
}

/** A readable report of every exchange that differs from the golden one. */
function compare(golden: Recording, actual: Recording): string[] {
  const report: string[] = [];
  if (actual.aborted !== undefined) report.push(`the scenario stopped after ${actual.exchanges.length} exchanges: ${actual.aborted}`);
  const n = Math.min(golden.exchanges.length, actual.exchanges.length);
  for (let i = 0; i < n; i++) {
    const e = golden.exchanges[i]!;
    const a = actual.exchanges[i]!;
    const diffs: string[] = [];
    differences(e, a, "", diffs);
    if (diffs.length > 0) {
      report.push(`#${i} [${e.server}] ${e.step}\n  ${e.request.method} ${e.request.path}\n` + diffs.map((d) => `    ${d}`).join("\n"));
    }
  }
  if (golden.exchanges.length !== actual.exchanges.length) {
    const longer = golden.exchanges.length > actual.exchanges.length ? golden : actual;
    report.push(
      `${golden.exchanges.length} exchanges in the golden file, ${actual.exchanges.length} recorded; the first ${longer === golden ? "missing" : "extra"} one: #${n} ${longer.exchanges[n]!.step}`,
    );
  }
  const other: string[] = [];
  differences(golden.servers, actual.servers, "servers", other);
  differences(golden.jwts, actual.jwts, "jwts", other);
  if (other.length > 0) {
    const shown = other.slice(0, 12).map((d) => `  ${d}`);
    if (other.length > shown.length) shown.push(`  ... and ${other.length - shown.length} more`);
    report.push(shown.join("\n"));
  }
  return report;
}

describe("the REST wire of the seeds (recorded exchanges)", function () {
  this.timeout(60_000);

  let golden: Recording | undefined;
  before(() => {
    if (!recordMode) {
      assert.ok(existsSync(goldenPath), `${goldenPath} is missing: record it with WIRE_RECORD=1`);
      golden = JSON.parse(readFileSync(goldenPath, "utf8")) as Recording;
    }
  });

  for (const store of storesUnderTest()) {
    it(`answers every request of the scenario exactly as recorded (${store})`, async () => {
      const actual = await recordScenario(store);
      if (golden === undefined) {
        assert.equal(actual.aborted, undefined, "not recording a scenario that stopped early");
        writeFileSync(goldenPath, serialise(actual));
        golden = actual;
        return;
      }
      const report = compare(golden, actual);
      assert.equal(report.length, 0, `${report.length} difference(s) from ${goldenPath} (an intended change: WIRE_RECORD=1):\n\n${report.join("\n\n")}`);
      // The comparison above is the readable one; this one guarantees nothing slipped through.
      assert.equal(serialise(actual), serialise(golden));
    });
  }
});
