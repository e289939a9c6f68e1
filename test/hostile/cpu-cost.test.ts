/**
 * Requests that cost a server far more CPU than their size: input whose reading took time
 * quadratic (or worse) in its length held the event loop for seconds, every other call waiting,
 * without any credential. Each is answered as before, within a second.
 */
import { strict as assert } from "node:assert";
import { decodedBody, tesseraDetails } from "../support/error-details.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { raw, type RawAnswer } from "./support.js";

/** Some ten times what the slowest of these requests takes now, a third of what the quickest took. */
const limitMs = 1000;

describe("requests that cost more CPU than their size", function () {
  this.timeout(120_000);
  let server: TestServer;
  before(async () => {
    // A body limit above the default's 64 KiB, as an operator may set one: the cost of what grew
    // faster than its length shows the sooner.
    server = await startTestServer({ env: { TESSERA_BODY_LIMIT_BYTES: String(256 * 1024) } });
  });
  after(() => server?.close());

  /** The answer, failing the test when it took `limitMs` or more. */
  async function timed(what: string, request: () => Promise<RawAnswer>): Promise<RawAnswer> {
    const started = performance.now();
    const answer = await request();
    const ms = Math.round(performance.now() - started);
    assert.ok(ms < limitMs, `${what} took ${ms} ms`);
    return answer;
  }

  function assertError(answer: RawAnswer, status: number, code: string, message: string, reason: string, fields?: Record<string, string>): void {
    assert.equal(answer.status, status, answer.text);
    assert.deepEqual(decodedBody(JSON.parse(answer.text)), { code, message, details: tesseraDetails(reason, fields) });
  }

  it("GET /jwt/token, a multipart part whose Content-Transfer-Encoding line holds 3000 spaces before a lone LF (7 s): no such header, the form read", async () => {
    const body = `--x\r\nContent-Disposition: form-data; name="user"\r\nContent-Transfer-Encoding:${" ".repeat(3000)}x\n\r\n\r\nada\r\n--x--\r\n`;
    const answer = await timed("the request", () => raw(server.url, "GET", "/jwt/token", { host: "localhost", "content-type": "multipart/form-data; boundary=x" }, body));
    const missing = "pass is required (or user must be a refresh token)";
    assertError(answer, 400, "invalid_argument", missing, "MISSING_FIELDS", { pass: missing });
  });

  it("POST /session, a refused login of a letter, 80 Ki dots and a letter (its audit event looked through for a credential: 9 s): 401", async () => {
    const body = JSON.stringify({ account_type: "traditional", email: `a${".".repeat(80 * 1024)}a`, password: "not the password" });
    const answer = await timed("the login", () => raw(server.url, "POST", "/session", { host: "localhost", "x-koms-clientid": testClientId, "content-type": "application/json" }, body));
    assertError(answer, 401, "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
  });
});
