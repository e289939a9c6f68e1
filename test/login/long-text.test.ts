// Logins and passwords far longer than any account's: Unicode normalization (NFC, NFKC) takes
// time quadratic in the length of a run of combining marks, which it reorders one at a time, and
// a login or password was normalized before its length was looked at. 64 Ki marks (a 128 KiB
// body) held the event loop for 2 s (a sign-up) to 4 s (a login), every other call waiting; a
// 1 MiB body, minutes. Such text is answered as before (too long, not an email, an invalid
// login), without being normalized.
import assert from "node:assert/strict";
import { expectCode, expectFieldRefused, expectOk, type Outcome } from "../support/api.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { password, uniqueEmail } from "../support/users.js";
import { loginApi, type LoginApi } from "./api.js";

/** 64 Ki combining marks of two classes, alternating: normalizing them moves each past those before it. */
const marks = "\u0301\u0316".repeat(32 * 1024);
/** Four times what the slowest of these calls takes without normalizing the marks, half what the quickest took with it. */
const limitMs = 1000;
const invalidLogin = "invalid login or password";

describe("logins and passwords of 64 Ki combining marks", function () {
  this.timeout(60_000);
  let server: TestServer;
  let api: LoginApi;
  let email: string;
  before(async () => {
    server = await startTestServer({ env: { TESSERA_BODY_LIMIT_BYTES: String(1024 * 1024) } });
    api = loginApi("rest-h1", server.url);
    email = uniqueEmail("long-text");
    // Also the first calls of the server, which are slower.
    expectOk(await api.signUp(email, password), 201);
    expectOk(await api.logIn(email, password));
  });
  after(async () => {
    api?.close();
    await server?.close();
  });

  /** The call's outcome, failing the test when it took `limitMs` or more. */
  async function timed<T>(what: string, call: () => Promise<Outcome<T>>): Promise<Outcome<T>> {
    const started = performance.now();
    const outcome = await call();
    const ms = Math.round(performance.now() - started);
    assert.ok(ms < limitMs, `${what} took ${ms} ms`);
    return outcome;
  }

  it("a sign-up's user name: 400 too long, at once", async () => {
    expectFieldRefused(await timed("POST /jwt/user", () => api.createJwtUser(`a${marks}`, password)), "user", "user name too long: at most 256 characters");
  });

  it("a sign-up's email: 400 not an email address, at once", async () => {
    expectFieldRefused(await timed("POST /user", () => api.signUp(`a${marks}@example.com`, password)), "email", "email is not a valid email address");
  });

  it("a login's email: 401 invalid login, at once", async () => {
    expectCode(await timed("POST /session, the email", () => api.logIn(`a${marks}@example.com`, password)), "unauthenticated", invalidLogin, "INVALID_CREDENTIALS");
  });

  it("a login's password: 401 invalid login, at once; the account logs in as before", async () => {
    expectCode(await timed("POST /session, the password", () => api.logIn(email, `a${marks}`)), "unauthenticated", invalidLogin, "INVALID_CREDENTIALS");
    expectOk(await api.logIn(email, password));
  });
});
