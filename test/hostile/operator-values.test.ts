/**
 * Values an operator or a contributor gives (environment variables, the protos' comments) that
 * cost far more CPU than their size: expressions that took time quadratic in a run of "/" (a URL
 * or path's trailing slashes, 64 Ki of them then a NUL: 4.6 s) or of ":" (MONGODB_URI's password,
 * 64 Ki: 5.8 s) held a start that long before it said anything, one in a run of tabs (a comment's
 * summary in the OpenAPI document, 64 Ki: 6.8 s) `npm run generate`. Each is read as before,
 * within a second.
 */
import { strict as assert } from "node:assert";
import { ConfigError, loadConfig } from "../../src/config.js";
import { withoutTrailingSlashes } from "../../src/core/text.js";
import { failureLine } from "../../src/failure-line.js";
import { summaryOf } from "../../src/openapi/document.js";
import { createTracing } from "../../src/server/tracing.js";
import { openMongoStore } from "../../src/store/mongo/mongo-store.js";
import { passwordsInUri } from "../../src/store/mongo/mongo-uri.js";
import { StoreSettingError } from "../../src/store/ports/errors.js";
import { joinBasePath } from "../../src/transcode/path-template.js";
import { within } from "../support/within.js";

/** Far above what each takes now (a few ms), a quarter of what the quickest of them took. */
const limitMs = 1000;
const run = 64 * 1024;

/** The message loadConfig throws for `env`, read within `limitMs`, or "" when it accepts it. */
function refusal(env: Record<string, string>): string {
  try {
    within(limitMs, "reading the configuration", () => loadConfig(env));
    return "";
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.message;
  }
}

describe("values an operator gives, read in time linear in their length", () => {
  it("trailing slashes are dropped as before, 64 Ki of them before a NUL at once", () => {
    const cases: Array<[string, string]> = [
      ["", ""],
      ["/", ""],
      ["///", ""],
      ["/jwt/", "/jwt"],
      ["https://app.example//", "https://app.example"],
      ["/a//b", "/a//b"],
      ["a/\u0000", "a/\u0000"],
    ];
    for (const [value, result] of cases) assert.equal(withoutTrailingSlashes(value), result, JSON.stringify(value));
    const value = `${"/".repeat(run)}\u0000`;
    assert.equal(within(limitMs, "dropping the trailing slashes", () => withoutTrailingSlashes(value)), value);
    assert.equal(within(limitMs, "joining the base path", () => joinBasePath(`/api${"/".repeat(run)}`, "/token")), "/api/token");
  });

  it("TESSERA_JWT_BASE_PATH of 64 Ki slashes and a letter: refused at once, the empty segment said", () => {
    assert.equal(
      refusal({ TESSERA_JWT_BASE_PATH: `${"/".repeat(run)}a` }),
      `TESSERA_JWT_BASE_PATH: must be "/" or a path of segments, none of them empty, "." or "..", got "${"/".repeat(64)}"... (${run + 1} characters)`,
    );
  });

  it("TESSERA_PUBLIC_URL with 64 Ki slashes before its last segment: taken at once, as written", () => {
    const url = `https://idp.example${"/".repeat(run)}a`;
    assert.equal(refusal({ TESSERA_PUBLIC_URL: url }), "");
    assert.equal(within(limitMs, "reading the configuration", () => loadConfig({ TESSERA_PUBLIC_URL: url })).jwtIssuer, url);
  });

  it("OTEL_EXPORTER_OTLP_ENDPOINT of 64 Ki slashes then a NUL: the exporter set up at once", async () => {
    // The SDK loaded first (0.1 to 1.5 s, whatever the endpoint).
    await (await createTracing("http://127.0.0.1:4318/", "0.0.0")).shutdown();
    const endpoint = `http://127.0.0.1:4318${"/".repeat(run)}\u0000`;
    const started = performance.now();
    const tracing = await createTracing(endpoint, "0.0.0");
    const ms = Math.round(performance.now() - started);
    await tracing.shutdown();
    assert.equal(tracing.exporting, true);
    assert.ok(ms < limitMs, `setting up the exporter took ${ms} ms`);
  });

  it("MONGODB_URI's password is found as before; 64 Ki colons and no @: none, at once", () => {
    const cases: Array<[string, string[]]> = [
      ["mongodb://u:pw@h/db", ["pw"]],
      ["mongodb+srv://u:p%40w@h", ["p%40w", "p@w"]],
      ["mongodb://u:p:w@x@h?a=b@c", ["p:w@x"]],
      ["mongodb://u@h:1/db", []],
      ["mongodb://u:@h", []],
      ["mongodb://u:%zz@h", ["%zz"]],
      ["mongodb://h/u:pw@x", []],
      ["mongodb:/u:pw@h", []],
    ];
    for (const [uri, passwords] of cases) assert.deepEqual(passwordsInUri(uri), passwords, uri);
    const uri = `mongodb://${":".repeat(run)}`;
    assert.deepEqual(within(limitMs, "finding the password", () => passwordsInUri(uri)), []);
    assert.deepEqual(within(limitMs, "finding the password", () => passwordsInUri(`${uri}@h`)), [":".repeat(run - 1)]);
  });

  it("a start with MONGODB_URI of 64 Ki colons: the store refused at once, the driver's reason said", async () => {
    // The driver's first parse (up to 1.5 s, whatever the URI).
    await assert.rejects(openMongoStore("mongodb://h:x"), StoreSettingError);
    const started = performance.now();
    await assert.rejects(openMongoStore(`mongodb://${":".repeat(run)}`), (e) => {
      assert.ok(e instanceof StoreSettingError, String(e));
      assert.equal(e.message, "MONGODB_URI: not a usable connection string: Invalid connection string");
      return true;
    });
    const ms = Math.round(performance.now() - started);
    assert.ok(ms < limitMs, `opening the store took ${ms} ms`);
  });

  it("a start's failure line with MONGODB_URI of 64 Ki colons: written at once", () => {
    const uri = `mongodb://${":".repeat(run)}`;
    const line = within(limitMs, "the failure line", () => failureLine(new Error("MONGODB_URI: not a usable connection string: why"), { MONGODB_URI: uri }));
    assert.equal(line, "MONGODB_URI: not a usable connection string: why");
  });

  it("a comment's summary joins its lines as before; a line of 64 Ki tabs between two words at once", () => {
    assert.equal(summaryOf("Creates a token\n  for `account`.  More.\n\nDetails."), "Creates a token for account.");
    assert.equal(summaryOf("No\t\tbreak \r\n here"), "No\t\tbreak here");
    const text = `a${"\t".repeat(run)}b`;
    assert.equal(within(limitMs, "the summary", () => summaryOf(text)), text);
  });
});
