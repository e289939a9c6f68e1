// Seed 002 over REST: POST /auth/login, /auth/bump and /auth/logout as the document shows them,
// every error of issue 6, expiry and lastUsageTime with an injected clock, and cross-use with
// the other services' credentials.
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import {
  UUID,
  apiToken,
  assertError,
  basic,
  bearer,
  createUser,
  jwtAccessToken,
  loginToken,
  password,
  sessionAccessToken,
  storedToken,
  uniqueEmail,
} from "./support.js";

const rfc3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

for (const store of storesUnderTest()) {
  describe(`UserTokenService over REST (${store})`, function () {
    let server: TestServer;
    const clock = new ManualClock(Date.parse("2026-03-01T12:00:00.000Z"));
    before(async () => {
      server = await startTestServer({ store, clock });
    });
    after(async () => {
      await server?.close();
    });

    const post = (path: string, headers: Record<string, string>, json?: unknown) =>
      rest(server.url, "POST", path, { headers, ...(json !== undefined && { json }) });

    describe("POST /auth/login", () => {
      it("answers a UserToken {creationTime, enabled, token, version} for Basic credentials and no body", async () => {
        const user = await createUser(server);
        const res = await post("/auth/login", basic(user.login, password));
        assert.equal(res.status, 200, res.text);
        assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
        assert.equal(res.headers.get("cache-control"), "no-store");
        assert.deepEqual(Object.keys(res.body).sort(), ["creationTime", "enabled", "token", "version"]);
        assert.match(res.body.token, UUID);
        assert.equal(res.body.enabled, true);
        assert.equal(res.body.version, 0);
        assert.match(res.body.creationTime, rfc3339);
        assert.equal(Date.parse(res.body.creationTime), clock.now().getTime());
        const stored = await storedToken(server, res.body.token);
        assert.equal(stored.userId, user.id);
        assert.notEqual(stored.hash, res.body.token, "only a hash is stored");
      });

      it("echoes note and expirationTime (RFC 3339, any offset) when given", async () => {
        const user = await createUser(server);
        const res = await post("/auth/login", basic(user.login, password), { note: "Client API Access", expirationTime: "2099-07-29T23:59:59-05:00" });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(Object.keys(res.body).sort(), ["creationTime", "enabled", "expirationTime", "note", "token", "version"]);
        assert.equal(res.body.note, "Client API Access");
        assert.equal(Date.parse(res.body.expirationTime), Date.parse("2099-07-29T23:59:59-05:00"));
        assert.match(res.body.expirationTime, rfc3339);
        assert.equal(res.body.version, 0);
      });

      it("accepts an email login in any case and with surrounding spaces (the same users as seed 000)", async () => {
        const email = uniqueEmail("Case");
        await createUser(server, email);
        const res = await post("/auth/login", basic(`  ${email.toUpperCase()} `, password));
        assert.equal(res.status, 200, res.text);
      });

      it("gives 401 with the same message for a wrong password and an unknown login", async () => {
        const user = await createUser(server);
        const wrong = await post("/auth/login", basic(user.login, "not the password at all"));
        assertError(wrong, 401, "unauthenticated", /invalid login or password/);
        const unknown = await post("/auth/login", basic(uniqueEmail("nobody"), password));
        assertError(unknown, 401, "unauthenticated");
        assert.equal(unknown.body.message, wrong.body.message);
      });

      it("gives 401 with a Basic challenge without credentials, and 401 for a Bearer credential", async () => {
        const none = await post("/auth/login", {});
        assertError(none, 401, "unauthenticated");
        assert.match(none.headers.get("www-authenticate") ?? "", /^Basic /);
        const token = await loginToken(server, (await createUser(server)).login);
        assertError(await post("/auth/login", bearer(token)), 401, "unauthenticated");
      });

      it("gives 400 naming the problem for a malformed Basic header or an empty password", async () => {
        assertError(await post("/auth/login", { authorization: "Basic !!!not-base64" }), 400, "invalid_argument", /malformed Basic/);
        const noColon = { authorization: `Basic ${Buffer.from("just-a-login").toString("base64")}` };
        assertError(await post("/auth/login", noColon), 400, "invalid_argument", /':'/);
        const user = await createUser(server);
        assertError(await post("/auth/login", basic(user.login, "")), 400, "invalid_argument", /empty password/);
        assertError(await post("/auth/login", basic("", password)), 400, "invalid_argument", /empty login/);
        const notUtf8 = { authorization: `Basic ${Buffer.from([0x61, 0x3a, 0xff, 0xfe]).toString("base64")}` };
        assertError(await post("/auth/login", notUtf8), 400, "invalid_argument", /UTF-8/);
      });

      it("decodes Basic credentials as UTF-8 (RFC 7617)", async () => {
        const email = uniqueEmail("utf8");
        const pass = "pässwörd with ünïcode ✓";
        const res = await rest(server.url, "POST", "/user", { json: { email, password: pass }, headers: { "x-koms-clientid": testClientId } });
        assert.equal(res.status, 201, res.text);
        assert.equal((await post("/auth/login", basic(email, pass))).status, 200);
      });

      it("gives 400 for an expirationTime in the past, at now, or not in RFC 3339 form", async () => {
        const user = await createUser(server);
        const past = await post("/auth/login", basic(user.login, password), { expirationTime: "2019-07-29T23:59:59-05:00" });
        assertError(past, 400, "invalid_argument", /expirationTime must be in the future/);
        const atNow = await post("/auth/login", basic(user.login, password), { expirationTime: clock.now().toISOString() });
        assertError(atNow, 400, "invalid_argument", /expirationTime/);
        const notRfc3339 = await post("/auth/login", basic(user.login, password), { expirationTime: "tomorrow" });
        assertError(notRfc3339, 400, "invalid_argument", /field "expirationTime": .*RFC 3339/);
        const noZone = await post("/auth/login", basic(user.login, password), { expirationTime: "2099-07-29 23:59:59" });
        assertError(noZone, 400, "invalid_argument", /field "expirationTime": .*RFC 3339/);
      });

      it("gives 400 for a note longer than 1024 characters", async () => {
        const user = await createUser(server);
        const res = await post("/auth/login", basic(user.login, password), { note: "n".repeat(1025) });
        assertError(res, 400, "invalid_argument", /note is too long/);
        assert.equal((await post("/auth/login", basic(user.login, password), { note: "n".repeat(1024) })).status, 200);
      });

      it("gives each login a new token", async () => {
        const user = await createUser(server);
        const a = await loginToken(server, user.login);
        const b = await loginToken(server, user.login);
        assert.notEqual(a, b);
      });
    });

    describe("POST /auth/bump", () => {
      it("sets and returns the user's lastLoginTime", async () => {
        const user = await createUser(server);
        const token = await loginToken(server, user.login);
        clock.advance(5_000);
        const res = await post("/auth/bump", bearer(token));
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(Object.keys(res.body), ["lastLoginTime"]);
        assert.match(res.body.lastLoginTime, rfc3339);
        assert.equal(Date.parse(res.body.lastLoginTime), clock.now().getTime());
        const stored = await server.tessera.store.users.findById(user.id);
        assert.equal(stored?.lastLoginAt?.toISOString(), clock.now().toISOString());
        assert.equal((await storedToken(server, token)).version, 0, "bump does not change the token");
      });

      it("gives 401 for a missing, malformed, unknown or non-Bearer credential", async () => {
        const none = await post("/auth/bump", {});
        assertError(none, 401, "unauthenticated");
        assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
        assertError(await post("/auth/bump", bearer("b94cf5c7-cddc-4610-9d4c-6b8e04088ae8")), 401, "unauthenticated", /invalid user token/);
        assertError(await post("/auth/bump", bearer("not-a-token")), 401, "unauthenticated");
        assertError(await post("/auth/bump", { authorization: "Token abc" }), 401, "unauthenticated");
        const user = await createUser(server);
        assertError(await post("/auth/bump", basic(user.login, password)), 401, "unauthenticated");
      });
    });

    describe("POST /auth/logout", () => {
      it("answers {success: true}; the token stops working at once; other tokens keep working", async () => {
        const user = await createUser(server);
        const token = await loginToken(server, user.login);
        const other = await loginToken(server, user.login);
        const res = await post("/auth/logout", bearer(token));
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body, { success: true });
        assertError(await post("/auth/bump", bearer(token)), 401, "unauthenticated", /disabled/);
        assertError(await post("/auth/logout", bearer(token)), 401, "unauthenticated", /disabled/);
        const stored = await storedToken(server, token);
        assert.equal(stored.enabled, false);
        assert.equal(stored.version, 1, "version grows on the change");
        assert.equal((await post("/auth/bump", bearer(other))).status, 200);
      });

      it("gives 401 without a user token", async () => {
        assertError(await post("/auth/logout", {}), 401, "unauthenticated");
      });
    });

    describe("token lifetime and use", () => {
      it("an expired token is 401 from its expirationTime on, exact to the millisecond", async () => {
        const user = await createUser(server);
        const expiresAt = new Date(clock.now().getTime() + 10_000);
        const token = await loginToken(server, user.login, { expirationTime: expiresAt.toISOString() });
        clock.advance(9_999);
        assert.equal((await post("/auth/bump", bearer(token))).status, 200);
        clock.advance(1);
        assertError(await post("/auth/bump", bearer(token)), 401, "unauthenticated", /expired/);
        assertError(await post("/auth/logout", bearer(token)), 401, "unauthenticated", /expired/);
      });

      it("records lastUsageTime on use, at most once per TESSERA_LAST_USED_INTERVAL_SECONDS (60)", async () => {
        const user = await createUser(server);
        const token = await loginToken(server, user.login);
        assert.equal((await storedToken(server, token)).lastUsedAt, undefined, "never used yet");
        clock.advance(1_000);
        const firstUse = clock.now();
        assert.equal((await post("/auth/bump", bearer(token))).status, 200);
        assert.equal((await storedToken(server, token)).lastUsedAt?.toISOString(), firstUse.toISOString());
        clock.advance(30_000);
        assert.equal((await post("/auth/bump", bearer(token))).status, 200);
        assert.equal((await storedToken(server, token)).lastUsedAt?.toISOString(), firstUse.toISOString(), "coalesced");
        clock.advance(31_000);
        assert.equal((await post("/auth/bump", bearer(token))).status, 200);
        const stored = await storedToken(server, token);
        assert.equal(stored.lastUsedAt?.toISOString(), clock.now().toISOString());
        assert.equal(stored.version, 0, "usage is not a change of the token");
      });

      it("a deactivated user's tokens are 401, even one the store still shows enabled", async () => {
        const user = await createUser(server);
        const token = await loginToken(server, user.login);
        await server.tessera.store.users.deactivate(user.id, clock.now());
        assertError(await post("/auth/bump", bearer(token)), 401, "unauthenticated", /deactivated/);
        assertError(await post("/auth/login", basic(user.login, password)), 403, "permission_denied");
      });

      it("a password change ends the tokens created before it", async () => {
        const user = await createUser(server);
        const token = await loginToken(server, user.login);
        clock.advance(1);
        const record = await server.tessera.store.users.findById(user.id);
        await server.tessera.store.users.updatePasswordHash(user.id, record!.passwordHash, clock.now());
        assertError(await post("/auth/bump", bearer(token)), 401, "unauthenticated", /password change/);
        const fresh = await loginToken(server, user.login);
        assert.equal((await post("/auth/bump", bearer(fresh))).status, 200);
      });
    });

    describe("cross-use", () => {
      it("a user token is refused where an API token, a session access token or a JWT is required", async () => {
        const user = await createUser(server);
        const token = await loginToken(server, user.login);
        assertError(await rest(server.url, "GET", "/v1/api/auth", { headers: bearer(token) }), 401, "unauthenticated");
        const session = await rest(server.url, "GET", "/session", { headers: { ...bearer(token), "x-koms-clientid": testClientId } });
        assertError(session, 401, "unauthenticated");
        assertError(await rest(server.url, "GET", "/user", { headers: { ...bearer(token), "x-koms-clientid": testClientId } }), 401, "unauthenticated");
        assertError(await rest(server.url, "GET", "/jwt/refresh_token", { headers: bearer(token) }), 401, "unauthenticated");
        assert.equal((await post("/auth/bump", bearer(token))).status, 200, "and it still works as a user token");
      });

      it("an API token, a session access token and a JWT are refused as a user token", async () => {
        const user = await createUser(server);
        assertError(await post("/auth/bump", bearer(await apiToken(server))), 401, "unauthenticated");
        const access = await sessionAccessToken(server, user.login);
        assertError(await post("/auth/bump", { ...bearer(access), "x-koms-clientid": testClientId }), 401, "unauthenticated");
        assertError(await post("/auth/logout", { ...bearer(access), "x-koms-clientid": testClientId }), 401, "unauthenticated");
        const jwt = await jwtAccessToken(server);
        assertError(await post("/auth/bump", bearer(jwt.token)), 401, "unauthenticated");
      });
    });

    describe("abuse protection (as session login)", () => {
      let limited: TestServer;
      before(async () => {
        limited = await startTestServer({ store, env: { TESSERA_LOGIN_MAX_FAILURES: "3" } });
      });
      after(async () => {
        await limited?.close();
      });

      it("answers 429 with Retry-After after repeated failures for one login, even with the right password", async () => {
        const user = await createUser(limited);
        for (let i = 0; i < 3; i++) {
          const res = await rest(limited.url, "POST", "/auth/login", { headers: basic(user.login, `wrong password ${i}`) });
          assertError(res, 401, "unauthenticated");
        }
        const locked = await rest(limited.url, "POST", "/auth/login", { headers: basic(user.login, password) });
        assertError(locked, 429, "resource_exhausted");
        assert.match(locked.headers.get("retry-after") ?? "", /^\d+$/);
      });
    });

    it("never writes a token or password to the logs", async () => {
      const user = await createUser(server);
      const token = await loginToken(server, user.login, { note: "log check" });
      await post("/auth/bump", bearer(token));
      await post("/auth/logout", bearer(token));
      const logs = server.logs.join("\n");
      assert.ok(logs.length > 0);
      assert.ok(!logs.includes(token), "token in logs");
      assert.ok(!logs.includes(password), "password in logs");
    });
  });
}
