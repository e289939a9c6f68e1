// Every core failure carries a stable reason besides its code and message: what a client will
// read from google.rpc.ErrorInfo. An unknown login and a wrong password share one reason.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.js";
import { ManualClock } from "../../src/core/clock.js";
import { AuthError, Reasons, type AuthErrorCode, type FieldViolation, type Reason } from "../../src/core/errors.js";
import { createCore, type Core } from "../../src/core/index.js";
import { silentLogger } from "../../src/logger.js";
import { openStore } from "../../src/store/index.js";
import type { Store } from "../../src/store/ports.js";
import { password } from "../support/users.js";


async function failsWith(
  p: Promise<unknown>,
  code: AuthErrorCode,
  reason: Reason,
  message: string | RegExp,
  fieldViolations?: FieldViolation[],
): Promise<AuthError> {
  let caught: unknown;
  await assert.rejects(p, (e: unknown) => ((caught = e), true));
  assert.ok(caught instanceof AuthError, String(caught));
  assert.deepEqual({ code: caught.code, reason: caught.reason }, { code, reason }, caught.message);
  if (typeof message === "string") assert.equal(caught.message, message);
  else assert.match(caught.message, message);
  if (fieldViolations) assert.deepEqual(caught.fieldViolations, fieldViolations);
  return caught;
}

describe("core: reasons", () => {
  let dir: string;
  let store: Store;
  let core: Core;
  const clock = new ManualClock(Date.parse("2031-05-01T10:00:00Z"));

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "tessera-reasons-"));
    store = await openStore({ dataDir: dir });
    const config = loadConfig({
      TESSERA_ARGON2_MEMORY_KIB: "1024",
      TESSERA_ARGON2_ITERATIONS: "1",
      TESSERA_CLIENT_IDS: "web,app",
      TESSERA_LOGIN_MAX_FAILURES: "2",
      TESSERA_ACCESS_TOKEN_TTL_SECONDS: "60",
      TESSERA_HOUSEKEEPING_INTERVAL_SECONDS: "0",
    });
    core = await createCore({ config, store, clock, logger: silentLogger });
  });
  afterEach(async () => {
    await core.housekeeping.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("every reason is UPPER_SNAKE and spelled as its key", () => {
    for (const [key, value] of Object.entries(Reasons)) {
      assert.equal(value, key);
      assert.match(value, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
    }
  });

  it("password logins: one reason for an unknown login and a wrong password; LOGIN_LOCKED with a retry time", async () => {
    await core.users.create({ login: "ada@example.com", kind: "email", password, clientAddress: "a1" });
    const wrong = await failsWith(core.users.authenticate("ada@example.com", "not-the-password", "email", "a1"), "unauthenticated", "INVALID_CREDENTIALS", "invalid login or password");
    const unknown = await failsWith(core.users.authenticate("nobody@example.com", "not-the-password", "email", "a2"), "unauthenticated", "INVALID_CREDENTIALS", "invalid login or password");
    const seen = (e: AuthError) => ({ code: e.code, reason: e.reason, message: e.message, retry: e.retryAfterSeconds, fields: e.fieldViolations });
    assert.deepEqual(seen(wrong), seen(unknown));
    await failsWith(core.users.authenticate("ada@example.com", "not-the-password", "email", "a1"), "unauthenticated", "INVALID_CREDENTIALS", "invalid login or password");
    const locked = await failsWith(core.users.authenticate("ada@example.com", password, "email", "a1"), "resource_exhausted", "LOGIN_LOCKED", "too many failed logins; try again later");
    assert.equal(locked.retryAfterSeconds, 60);
  });

  it("sign-up: USER_EXISTS, WEAK_PASSWORD and INVALID_FIELD name the field", async () => {
    await core.users.create({ login: "bob@example.com", kind: "email", password, clientAddress: "a1" });
    await failsWith(core.users.create({ login: "Bob@example.com", kind: "email", password, clientAddress: "a1" }), "already_exists", "USER_EXISTS", "a user with this email already exists");
    await failsWith(core.users.create({ login: "carl@example.com", kind: "email", password: "short", clientAddress: "a1" }), "invalid_argument", "WEAK_PASSWORD", /password too short/, [
      { field: "password", description: "password too short: at least 8 characters required" },
    ]);
    await failsWith(core.users.create({ login: "carl", kind: "email", password, clientAddress: "a1" }), "invalid_argument", "INVALID_FIELD", "email is not a valid email address", [
      { field: "email", description: "email is not a valid email address" },
    ]);
  });

  it("sign-ups: TOO_MANY_SIGNUPS with a retry time once an address has made its 20; a login that is not text INVALID_FIELD", async () => {
    for (let i = 0; i < 20; i++) await core.users.create({ login: `signup-${i}@example.com`, kind: "email", password, clientAddress: "a9" });
    const limited = await failsWith(core.users.create({ login: "signup-20@example.com", kind: "email", password, clientAddress: "a9" }), "resource_exhausted", "TOO_MANY_SIGNUPS", "too many sign-ups from this address; try again later");
    assert.equal(limited.retryAfterSeconds, 60);
    await core.users.create({ login: "signup-20@example.com", kind: "email", password, clientAddress: "a10" });
    const notText = "email must not contain control characters or bidirectional formatting characters";
    await failsWith(core.users.authenticate("a\u0000b@example.com", password, "email", "a1"), "invalid_argument", "INVALID_FIELD", notText, [{ field: "email", description: notText }]);
  });

  it("sessions: WRONG_CLIENT, NOT_MOST_RECENT_TOKEN, REFRESH_TOKEN_ALREADY_USED, REFRESH_TOKEN_REUSED, SESSION_ENDED", async () => {
    const user = await core.users.create({ login: "dora@example.com", kind: "email", password, clientAddress: "a1" });
    const first = await core.sessions.start(user, "web");
    await failsWith(core.sessions.verifyAccess(first.accessToken, "app", false), "unauthenticated", "WRONG_CLIENT", "token issued for another audience");
    const access = await core.sessions.verifyAccess(first.accessToken, "web", false);
    const second = await core.sessions.refresh(access, first.refreshToken);
    await failsWith(core.sessions.verifyAccess(first.accessToken, "web", false), "unauthenticated", "NOT_MOST_RECENT_TOKEN", "not the most recent access token of the session");
    const stale = await core.sessions.verifyAccess(first.accessToken, "web", true);
    // The same refresh again answers the same pair; the spent token with another access token does not.
    assert.deepEqual(await core.sessions.refresh(stale, first.refreshToken), second);
    const current = await core.sessions.verifyAccess(second.accessToken, "web", true);
    await failsWith(core.sessions.refresh(current, first.refreshToken), "unauthenticated", "REFRESH_TOKEN_ALREADY_USED", "refresh token already used");
    clock.advance(11_000);
    await failsWith(core.sessions.refresh(stale, first.refreshToken), "unauthenticated", "REFRESH_TOKEN_REUSED", "refresh token reuse detected: the session has ended");
    await failsWith(core.sessions.verifyAccess(second.accessToken, "web", false), "unauthenticated", "SESSION_ENDED", "the session has ended");
  });

  it("sessions: a seed 004 JWT (access or refresh) where a session access token is expected is WRONG_TOKEN_TYPE, not another client's token", async () => {
    const user = await core.users.create({ login: "fay", kind: "name", password, clientAddress: "a1" });
    const access = await core.jwt.loginWithPassword("fay", password, "a");
    const refresh = await core.jwt.issueRefreshToken(user.id, user.credentialEpoch);
    for (const token of [access, refresh]) {
      await failsWith(core.sessions.verifyAccess(token, "web", false), "unauthenticated", "WRONG_TOKEN_TYPE", "not a session access token");
      await failsWith(core.sessions.verifyAccess(token, "web", true), "unauthenticated", "WRONG_TOKEN_TYPE", "not a session access token");
    }
  });

  it("JWTs: TOKEN_EXPIRED and TOKEN_NOT_YET_VALID; GET /check's 400 keeps the reason and the 401 as its cause", async () => {
    await core.users.create({ login: "eve", kind: "name", password, clientAddress: "a1" });
    const token = await core.jwt.loginWithPassword("eve", password, "a");
    clock.advance(-6_000); // past the 5 s nbf leeway
    await failsWith(core.jwt.verifyAccessToken(token), "unauthenticated", "TOKEN_NOT_YET_VALID", "token not yet valid");
    clock.advance(66_000);
    await failsWith(core.jwt.verifyAccessToken(token), "unauthenticated", "TOKEN_EXPIRED", "token expired");
    const checked = await failsWith(core.jwt.check(token), "invalid_argument", "TOKEN_EXPIRED", "token expired");
    assert.ok(checked.cause instanceof AuthError);
    assert.equal(checked.cause.code, "unauthenticated");
  });

  it("request checks live in the core: seed 000 and seed 004 messages in their order, with reasons and fields", async () => {
    const login = { accountType: "", email: "", password: "", clientId: "web", clientAddress: "a" };
    await failsWith(core.sessions.logIn(login), "invalid_argument", "MISSING_FIELDS", "account_type is required", [{ field: "account_type", description: "account_type is required" }]);
    await failsWith(core.sessions.logIn({ ...login, accountType: "social" }), "invalid_argument", "INVALID_FIELD", 'account_type must be "traditional"');
    await failsWith(core.sessions.logIn({ ...login, accountType: "traditional" }), "invalid_argument", "MISSING_FIELDS", "email is required");
    await failsWith(core.sessions.logIn({ ...login, accountType: "traditional", email: "not an email" }), "invalid_argument", "MISSING_FIELDS", "password is required");
    await failsWith(core.users.signUp("not an email", "", "a1"), "invalid_argument", "MISSING_FIELDS", "password is required");
    await failsWith(core.jwt.createUser("", "", "a1"), "invalid_argument", "MISSING_FIELDS", "user is required", [{ field: "user", description: "user is required" }]);
    await failsWith(core.jwt.createUser("frank", "", "a1"), "invalid_argument", "MISSING_FIELDS", "pass is required");
    await failsWith(core.jwt.createUser("frank", "short", "a1"), "invalid_argument", "WEAK_PASSWORD", /password too short/, [
      { field: "pass", description: "password too short: at least 8 characters required" },
    ]);
    await failsWith(core.jwt.getToken("frank", "", "a"), "invalid_argument", "MISSING_FIELDS", "pass is required (or user must be a refresh token)");
    await failsWith(core.jwt.check(""), "invalid_argument", "MISSING_FIELDS", "access_token is required");
    await failsWith(core.jwt.revokeRefreshToken("some-user", ""), "invalid_argument", "MISSING_FIELDS", "refresh_token is required");
  });

  it("API tokens: MISSING_FIELDS names every missing field; INVALID_TOKEN alike for unknown and malformed", async () => {
    await failsWith(core.apiTokens.create({ accountId: "", description: " " }), "invalid_argument", "MISSING_FIELDS", "Missing fields: [account_id, description]", [
      { field: "account_id", description: "account_id is required" },
      { field: "description", description: "description is required" },
    ]);
    await failsWith(core.apiTokens.authenticate("tsr_nope"), "unauthenticated", "INVALID_TOKEN", "invalid API token");
    await failsWith(core.apiTokens.revoke("acct", "not-a-link"), "not_found", "TOKEN_NOT_FOUND", "Could not revoke token");
  });
});
