// The audit trail: security events recorded durably in the store and as `"type":"audit"` log
// lines, read back with AuditService.ListAuditEvents (GET /v1/admin/audit-events, admin
// credential) over gRPC, Connect and REST: per event type, newest first, in pages, filtered.
// No event and no log line ever holds a password or token the calls carried.
import assert from "node:assert/strict";
import { join } from "node:path";
import Database from "better-sqlite3";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { ManualClock } from "../../src/core/clock.js";
import { StoreUnavailableError } from "../../src/store/ports/errors.js";
import { expectCode, expectOk, protocols, type Outcome } from "../support/api.js";
import { sessionApi } from "../session/api.js";
import { userTokenApi } from "../user-token/api.js";
import { jwtApi } from "../jwt/api.js";
import { basic, bearer, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, testAdminToken, testClientId, type TestServer } from "../support/server.js";
import { freshDatabases } from "../support/store.js";
import { admin, clientIdHeader, createApiToken, createJwtUser, jwtLogin, jwtRefreshToken, loginUserToken, otherPassword, password, signUp, startSession, uniqueEmail, uniqueName, UUID } from "../support/users.js";
import { value, scrape } from "../support/metrics.js";
import { allEvents, auditApi, type AuditEventJson } from "./api.js";
import { keyApi } from "../key/api.js";
import { gate, holdAfter } from "../credentials/support.js";

/** Each store's databases for the file's servers, one after another: emptied between them. */
const databases = freshDatabases();

/** The events of a user, oldest first, as [type, outcome] pairs. */
async function story(server: TestServer, userId: string): Promise<string[]> {
  return (await allEvents(server, { user_id: userId })).reverse().map((e) => `${e.type} ${e.outcome}`);
}

/** The one event of `type` matching `pick`. */
async function one(server: TestServer, type: string, pick: (e: AuditEventJson) => boolean): Promise<AuditEventJson> {
  const found = (await allEvents(server, { type })).filter(pick);
  assert.equal(found.length, 1, `${type}: ${JSON.stringify(found)}`);
  return found[0]!;
}

/** Each call, named by its request id, is a login refused 401 whose event and log line record its login as [redacted]. */
async function expectRedactedLogins(server: TestServer, tries: Array<[requestId: string, call: () => Promise<{ status: number }>]>): Promise<void> {
  for (const [requestId, call] of tries) {
    assert.equal((await call()).status, 401, requestId);
    const event = await one(server, "login", (e) => e.request_id === requestId);
    assert.deepEqual([event.outcome, event.login], ["failure", "[redacted]"], requestId);
    const line = server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "audit" && l.auditId === event.id);
    assert.equal(line?.login, "[redacted]", requestId);
  }
}

const sessionHeaders = (access: string) => ({ ...clientIdHeader, ...bearer(access) });

for (const store of storesUnderTest()) {
  describe(`audit trail on ${store}`, function () {
    this.timeout(60_000);
    let server: TestServer;
    /** Every password and token the calls below carried: none may reach an event or a log line. */
    const secrets = new Set<string>([password, otherPassword, testAdminToken, "wrong password 1"]);
    before(async () => {
      server = await startTestServer({ store, databases: databases[store], env: { TESSERA_REFRESH_GRACE_SECONDS: "0", TESSERA_LOGIN_MAX_FAILURES: "3" } });
    });
    after(() => server?.close());

    it("session API: sign-up, login, session start, refresh, reuse detected (and the session it ended), end — each naming the caller", async () => {
      const email = uniqueEmail("audit");
      const user = await signUp(server, email);
      const login = await rest(server.url, "POST", "/session", {
        json: { account_type: "traditional", email, password },
        headers: { ...clientIdHeader, "x-request-id": "audit-login-1", "user-agent": "audit-test/1.0" },
      });
      assert.equal(login.status, 200);
      const first = login.body as { access_token: string; refresh_token: string };
      secrets.add(first.access_token).add(first.refresh_token);
      const sid = decodeJwt(first.access_token).sid as string;
      const refreshed = await rest(server.url, "PUT", "/session", { json: { refresh_token: first.refresh_token }, headers: sessionHeaders(first.access_token) });
      assert.equal(refreshed.status, 200);
      secrets.add(refreshed.body.access_token).add(refreshed.body.refresh_token);
      // The spent pair presented again: reuse, and the session ends.
      const reused = await rest(server.url, "PUT", "/session", { json: { refresh_token: first.refresh_token }, headers: sessionHeaders(first.access_token) });
      assert.equal(reused.status, 401);
      const again = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: clientIdHeader });
      secrets.add(again.body.access_token).add(again.body.refresh_token);
      assert.equal((await rest(server.url, "DELETE", "/session", { headers: sessionHeaders(again.body.access_token) })).status, 200);

      assert.deepEqual(await story(server, user.id), [
        "signup success",
        "login success",
        "session.started success",
        "session.refreshed success",
        "session.ended success",
        "session.refreshed failure",
        "session.reuse_detected success",
        "login success",
        "session.started success",
        "session.ended success",
      ]);
      const loginEvent = (await allEvents(server, { user_id: user.id, type: "login" })).at(-1)!;
      const traceparent = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(login.headers.get("traceparent") ?? "") ?? [];
      assert.deepEqual(
        { ...loginEvent, id: "", time: "" },
        { id: "", time: "", type: "login", outcome: "success", user_id: user.id, login: email, api: "session", client_id: testClientId, client_address: "127.0.0.1", user_agent: "audit-test/1.0", request_id: "audit-login-1", trace_id: traceparent[1], span_id: traceparent[2] },
      );
      assert.ok(Math.abs(Date.parse(loginEvent.time) - Date.now()) < 60_000);
      // Each session event names its session (README, "Audit trail"): the start too.
      assert.equal((await one(server, "session.started", (e) => e.subject === sid)).user_id, user.id);
      assert.equal((await one(server, "session.started", (e) => e.subject === decodeJwt(again.body.access_token).sid)).user_id, user.id);
      const reuse = await one(server, "session.reuse_detected", (e) => e.user_id === user.id);
      assert.equal(reuse.subject, sid);
      assert.equal(reuse.reason, "REFRESH_TOKEN_REUSED");
      // The session reuse ended, and the one ended by DELETE /session: each naming its user.
      assert.equal((await one(server, "session.ended", (e) => e.subject === sid)).user_id, user.id);
      assert.equal((await one(server, "session.ended", (e) => e.subject === decodeJwt(again.body.access_token).sid)).user_id, user.id);
    });

    it("a refresh token reused while its session is logged out: session.ended once, for the logout; the reuse records session.refreshed and session.reuse_detected, not an end it did not make", async () => {
      const email = uniqueEmail("audit-reuse-race");
      const user = await signUp(server, email);
      const first = await startSession(server, email);
      secrets.add(first.access_token).add(first.refresh_token);
      const refreshed = await rest(server.url, "PUT", "/session", { json: { refresh_token: first.refresh_token }, headers: sessionHeaders(first.access_token) });
      assert.equal(refreshed.status, 200, refreshed.text);
      secrets.add(refreshed.body.access_token).add(refreshed.body.refresh_token);
      // The reuse's end of the session is held before it is made; the logout ends it meanwhile.
      const sessions = server.tessera.store.sessions;
      const endThenSync = sessions.endThenSync;
      const held = gate();
      sessions.endThenSync = async (...args) => {
        sessions.endThenSync = endThenSync;
        await held.pass();
        return endThenSync.apply(sessions, args);
      };
      let reused;
      try {
        const inFlight = rest(server.url, "PUT", "/session", { json: { refresh_token: first.refresh_token }, headers: sessionHeaders(first.access_token) });
        await held.reached;
        assert.equal((await rest(server.url, "DELETE", "/session", { headers: sessionHeaders(refreshed.body.access_token) })).status, 200);
        held.open();
        reused = await inFlight;
      } finally {
        held.open();
        sessions.endThenSync = endThenSync;
      }
      assert.equal(reused.status, 401, reused.text);
      assert.equal(reused.body.details[0].debug.reason, "REFRESH_TOKEN_REUSED");
      // After sign-up, login and session.started:
      assert.deepEqual((await story(server, user.id)).slice(3), ["session.refreshed success", "session.ended success", "session.refreshed failure", "session.reuse_detected success"]);
    });

    it("POST /session whose lastLoginAt the store refuses: 503, and session.started is recorded as the error the caller got, not a success", async () => {
      const email = uniqueEmail("audit-note");
      const user = await signUp(server, email);
      const users = server.tessera.store.users;
      const setLastLogin = users.setLastLogin;
      users.setLastLogin = () => Promise.reject(new StoreUnavailableError("store unavailable (test)"));
      try {
        const login = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: clientIdHeader });
        assert.equal(login.status, 503, login.text);
        assert.equal(login.body.details[0].debug.reason, "STORE_UNAVAILABLE");
      } finally {
        users.setLastLogin = setLastLogin;
      }
      // An error's event is stored without the call waiting for it.
      const expected = ["signup success", "login success", "session.started error"];
      let told: string[] = [];
      for (let i = 0; i < 50 && (told = await story(server, user.id)).length < expected.length; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(told, expected);
    });

    it("POST /session whose user is deactivated once its session is stored: 403, session.started recorded as refused, and no session.ended for the session never handed out", async () => {
      const email = uniqueEmail("audit-withdrawn");
      const user = await signUp(server, email);
      const access = (await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: email, pass: password })}`)).text;
      secrets.add(access);
      const held = holdAfter(server.tessera.store.sessions, "createThenSync");
      let login;
      try {
        const inFlight = rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: clientIdHeader });
        await held.reached;
        assert.equal((await rest(server.url, "DELETE", "/jwt/user", { headers: bearer(access) })).status, 204);
        held.open();
        login = await inFlight;
      } finally {
        held.open();
        held.restore();
      }
      assert.equal(login.status, 403, login.text);
      assert.equal(login.body.details[0].debug.reason, "USER_DEACTIVATED");
      assert.deepEqual(await story(server, user.id), ["signup success", "login success", "login success", "user.deactivated success", "session.started failure"]);
    });

    it("DELETE /session whose refresh tokens' delete the store refuses: the session is ended, 200 as documented, and session.ended is recorded a success, as answered", async () => {
      const email = uniqueEmail("audit-logout");
      const user = await signUp(server, email);
      const pair = await startSession(server, email);
      secrets.add(pair.access_token).add(pair.refresh_token);
      const refreshTokens = server.tessera.store.refreshTokens;
      const deleteBySession = refreshTokens.deleteBySessionThenSync;
      refreshTokens.deleteBySessionThenSync = () => Promise.reject(new StoreUnavailableError("store unavailable (test)"));
      let logout;
      try {
        logout = await rest(server.url, "DELETE", "/session", { headers: sessionHeaders(pair.access_token) });
      } finally {
        refreshTokens.deleteBySessionThenSync = deleteBySession;
      }
      assert.equal(logout.status, 200, logout.text);
      // Ended: its access token and its refresh token are refused from now on (seed 000: 401).
      assert.equal((await rest(server.url, "GET", "/session", { headers: sessionHeaders(pair.access_token) })).status, 401);
      assert.equal((await rest(server.url, "PUT", "/session", { json: { refresh_token: pair.refresh_token }, headers: sessionHeaders(pair.access_token) })).status, 401);
      assert.deepEqual(await story(server, user.id), ["signup success", "login success", "session.started success", "session.ended success"]);
    });

    it("an admin call whose deadline passes while its method runs, the method succeeding after it: 504, and admin.call is recorded canceled, not a success", async () => {
      const requestId = uniqueName("audit-deadline");
      const held = holdAfter(server.tessera.store.apiTokens, "create");
      try {
        const res = await rest(server.url, "POST", "/v1/frontend/auth", {
          json: { account_id: uniqueName("acct"), description: "late" },
          headers: { ...admin, "connect-timeout-ms": "300", "x-request-id": requestId },
        });
        assert.equal(res.status, 504, res.text);
        await held.reached;
      } finally {
        held.open();
        held.restore();
      }
      // The token was created, and its event says so; the call was answered DEADLINE_EXCEEDED.
      const outcomes = async () => [
        ...(await allEvents(server, { type: "api_token.created" })),
        ...(await allEvents(server, { type: "admin.call" })),
      ].filter((e) => e.request_id === requestId).map((e) => `${e.type} ${e.outcome}`);
      let told: string[] = [];
      for (let i = 0; i < 50 && (told = await outcomes()).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(told, ["api_token.created success", "admin.call canceled"]);
    });

    it("logins refused: failure (an unknown login and a wrong password alike), then locked", async () => {
      const email = uniqueEmail("locked");
      await signUp(server, email);
      for (let i = 0; i < 3; i++) {
        const r = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password: "wrong password 1" }, headers: clientIdHeader });
        assert.equal(r.status, 401);
      }
      const locked = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: clientIdHeader });
      assert.equal(locked.status, 429);
      const mine = (await allEvents(server, { type: "login" })).filter((e) => e.login === email).reverse();
      assert.deepEqual(
        mine.map((e) => [e.outcome, e.reason, e.user_id]),
        [...Array(3).fill(["failure", "INVALID_CREDENTIALS", undefined]), ["locked", "LOGIN_LOCKED", undefined]],
      );
    });

    it("a refused login's text is kept without what would change how the event or its log line reads: control and bidirectional formatting characters", async () => {
      // U+202E (right-to-left override) would show the rest of a log line reversed.
      const tried = `spoof-${Date.now()}\u202egro.elpmaxe@\u001b[31mx`;
      const r = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email: tried, password }, headers: clientIdHeader });
      assert.equal(r.status, 400);
      const kept = tried.replace("\u202e", "\ufffd").replace("\u001b", "\ufffd");
      const event = await one(server, "login", (e) => e.login?.startsWith(tried.slice(0, 19)) === true);
      assert.deepEqual([event.outcome, event.reason, event.login], ["failure", "INVALID_FIELD", kept]);
      const line = server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "audit" && l.auditId === event.id);
      assert.equal(line?.login, kept);
    });

    it("a refused login's line and paragraph separators (U+2028, U+2029) are replaced too: readers that break lines at them would split its log line in two", async () => {
      const tried = `split-${Date.now()}\u2028{"msg":"audit"}\u2029@example.com`;
      const r = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email: tried, password }, headers: clientIdHeader });
      assert.equal(r.status, 401);
      const kept = tried.replace("\u2028", "\ufffd").replace("\u2029", "\ufffd");
      const event = await one(server, "login", (e) => e.login?.startsWith(tried.slice(0, 19)) === true);
      assert.deepEqual([event.outcome, event.reason, event.login], ["failure", "INVALID_CREDENTIALS", kept]);
      const line = server.logs.find((l) => l.includes(`"auditId":"${event.id}"`));
      assert.equal((JSON.parse(line!) as Record<string, unknown>).login, kept);
      assert.doesNotMatch(line!, /[\u2028\u2029]/);
    });

    it("a refused login whose name is a credential (a token sent as the user name, as git and npm send theirs, or the admin token) records [redacted], in the event and its log line", async () => {
      const email = uniqueEmail("redact");
      await signUp(server, email);
      const userToken = await loginUserToken(server, email);
      const pair = await startSession(server, email);
      const apiToken = await createApiToken(server);
      const jwt = await jwtLogin(server, await createJwtUser(server));
      for (const t of [userToken, pair.access_token, pair.refresh_token, apiToken, jwt]) secrets.add(t);
      await expectRedactedLogins(server, [
        ["redact-user-token", () => rest(server.url, "POST", "/auth/login", { headers: { ...basic(userToken, "x-oauth-basic"), "x-request-id": "redact-user-token" } })],
        ["redact-api-token", () => rest(server.url, "POST", "/auth/login", { headers: { ...basic(apiToken, "x"), "x-request-id": "redact-api-token" } })],
        ["redact-refresh", () => rest(server.url, "POST", "/auth/login", { headers: { ...basic(pair.refresh_token, "x"), "x-request-id": "redact-refresh" } })],
        ["redact-access-jwt", () => rest(server.url, "GET", `/jwt/token?user=${encodeURIComponent(pair.access_token)}&pass=x`, { headers: { "x-request-id": "redact-access-jwt" } })],
        ["redact-jwt", () => rest(server.url, "GET", `/jwt/token?user=${encodeURIComponent(jwt)}&pass=x`, { headers: { "x-request-id": "redact-jwt" } })],
        // The admin token, of no shape Tessera hands out: an admin's tool sending it as the user name.
        ["redact-admin-token", () => rest(server.url, "POST", "/auth/login", { headers: { ...basic(testAdminToken, "x"), "x-request-id": "redact-admin-token" } })],
      ]);
      // A name that is no credential's shape is still recorded as given, as is a successful login's.
      const other = `not-a-token-${Date.now()}@example.com`;
      assert.equal((await rest(server.url, "POST", "/auth/login", { headers: { ...basic(other, "x"), "x-request-id": "redact-none" } })).status, 401);
      assert.equal((await one(server, "login", (e) => e.request_id === "redact-none")).login, other);
    });

    it("user tokens and hand-off tokens: user_token.login, bump, logout; auth_token.created, exchanged; cookie_session.started, ended", async () => {
      const email = uniqueEmail("usertoken");
      const user = await signUp(server, email);
      const token = await loginUserToken(server, email);
      secrets.add(token);
      assert.equal((await rest(server.url, "POST", "/auth/bump", { headers: bearer(token) })).status, 200);
      const handOff = await rest(server.url, "GET", "/api/authenticationtoken", { headers: bearer(token) });
      secrets.add(handOff.body.token);
      const exchanged = await rest(server.url, "GET", `/api/authenticationtoken/${handOff.body.token}/user`);
      assert.equal(exchanged.status, 200);
      let cookie = "";
      for (const c of exchanged.headers.getSetCookie()) cookie = /^tessera_session=([^;]+)/.exec(c)?.[1] ?? cookie;
      secrets.add(cookie);
      // The cookie session first: the user token's logout ends it too (it came from that token).
      assert.equal((await rest(server.url, "POST", "/auth/logout", { headers: { cookie: `tessera_session=${cookie}` } })).status, 200);
      assert.equal((await rest(server.url, "POST", "/auth/logout", { headers: bearer(token) })).status, 200);
      assert.deepEqual(await story(server, user.id), [
        "signup success",
        "login success",
        "user_token.login success",
        "user_token.bump success",
        "auth_token.created success",
        "cookie_session.started success",
        "auth_token.exchanged success",
        "cookie_session.ended success",
        "user_token.logout success",
      ]);
      const started = await one(server, "cookie_session.started", (e) => e.user_id === user.id);
      assert.equal((await one(server, "cookie_session.ended", (e) => e.subject === started.subject)).user_id, user.id);
      const stored = (await allEvents(server, { user_id: user.id, type: "user_token.login" }))[0]!;
      assert.equal(stored.api, "usertoken");
      assert.equal((await one(server, "user_token.logout", (e) => e.subject === stored.subject)).user_id, user.id);
    });

    it("a hand-off token's exchange refused or failed once its token was found (the store failing, a replay of the used token) names the token's user, as its success does; an unknown token names none", async () => {
      const email = uniqueEmail("handoff-replay");
      const user = await signUp(server, email);
      const token = await loginUserToken(server, email);
      secrets.add(token);
      const handOff = (await rest(server.url, "GET", "/api/authenticationtoken", { headers: bearer(token) })).body.token as string;
      secrets.add(handOff);
      const exchange = (requestId: string, link = handOff) => rest(server.url, "GET", `/api/authenticationtoken/${link}/user`, { headers: { "x-request-id": requestId } });
      const userTokens = server.tessera.store.userTokens;
      const create = userTokens.create;
      userTokens.create = () => Promise.reject(new StoreUnavailableError("store unavailable (test)"));
      try {
        assert.equal((await exchange("handoff-failed")).status, 503);
      } finally {
        userTokens.create = create;
      }
      const exchanged = await exchange("handoff-retried");
      assert.equal(exchanged.status, 200, exchanged.text);
      for (const c of exchanged.headers.getSetCookie()) secrets.add(/^tessera_session=([^;]+)/.exec(c)?.[1] ?? "");
      assert.equal((await exchange("handoff-replayed")).status, 404);
      assert.equal((await exchange("handoff-unknown", "n0-such-hand-off-token")).status, 404);
      const events = async () =>
        (await allEvents(server, { type: "auth_token.exchanged" }))
          .filter((e) => e.request_id?.startsWith("handoff-"))
          .reverse()
          .map((e) => [e.request_id, e.outcome, e.reason, e.user_id]);
      let told: unknown[] = [];
      // An error's event is stored without the call waiting for it.
      for (let i = 0; i < 50 && (told = await events()).length < 4; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(told, [
        ["handoff-failed", "error", "STORE_UNAVAILABLE", user.id],
        ["handoff-retried", "success", undefined, user.id],
        ["handoff-replayed", "failure", "TOKEN_NOT_FOUND", user.id],
        ["handoff-unknown", "failure", "TOKEN_NOT_FOUND", undefined],
      ]);
      // The cookie session the failed exchange did not start: the error with the reason its answer carried.
      const started = await one(server, "cookie_session.started", (e) => e.request_id === "handoff-failed");
      assert.deepEqual([started.outcome, started.reason, started.user_id], ["error", "STORE_UNAVAILABLE", user.id]);
    });

    /** A JWT API user named `name`, signed up and logged in: its access token and id. */
    const signedUpJwtUser = async (name: string) => {
      assert.equal((await rest(server.url, "POST", "/jwt/user", { json: { user: name, pass: password } })).status, 201);
      const access = await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: name, pass: password })}`);
      secrets.add(access.text);
      return { access, userId: decodeJwt(access.text).sub as string };
    };

    it("JWT API: sign-up, login, password change, deactivation", async () => {
      const name = uniqueName("auditjwt");
      const { access, userId } = await signedUpJwtUser(name);
      assert.equal((await rest(server.url, "PATCH", "/jwt/user", { json: { pass: otherPassword }, headers: bearer(access.text) })).status, 200);
      const fresh = await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: name, pass: otherPassword })}`);
      secrets.add(fresh.text);
      assert.equal((await rest(server.url, "DELETE", "/jwt/user", { headers: bearer(fresh.text) })).status, 204);
      assert.deepEqual(await story(server, userId), ["signup success", "login success", "password.changed success", "login success", "user.deactivated success"]);
      assert.deepEqual([...new Set((await allEvents(server, { user_id: userId })).map((e) => e.api))], ["jwt"]);
    });

    it("a login of a deactivated user with its password records its user_id (the account is known once the password checked out); with a wrong one, none", async () => {
      const name = uniqueName("auditgone");
      const { access, userId } = await signedUpJwtUser(name);
      assert.equal((await rest(server.url, "DELETE", "/jwt/user", { headers: bearer(access.text) })).status, 204);
      const gone = await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: name, pass: password })}`, { headers: { "x-request-id": "deactivated-right-pass" } });
      assert.equal(gone.status, 403, gone.text);
      const event = await one(server, "login", (e) => e.request_id === "deactivated-right-pass");
      assert.deepEqual([event.outcome, event.reason, event.user_id, event.login], ["failure", "USER_DEACTIVATED", userId, name]);
      assert.deepEqual(await story(server, userId), ["signup success", "login success", "user.deactivated success", "login failure"]);
      const wrong = await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: name, pass: otherPassword })}`, { headers: { "x-request-id": "deactivated-wrong-pass" } });
      assert.equal(wrong.status, 401, wrong.text);
      const refused = await one(server, "login", (e) => e.request_id === "deactivated-wrong-pass");
      assert.deepEqual([refused.reason, refused.user_id], ["INVALID_CREDENTIALS", undefined]);
    });

    it("JWT API: a password change or deactivation refused by the token check (none, a tampered one) records password.changed / user.deactivated with the refusal", async () => {
      const name = uniqueName("auditjwtrefused");
      assert.equal((await rest(server.url, "POST", "/jwt/user", { json: { user: name, pass: password } })).status, 201);
      const access = await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: name, pass: password })}`);
      secrets.add(access.text);
      const [header, payload] = access.text.split(".");
      const tampered = `${header}.${payload}.${Buffer.alloc(64).toString("base64url")}`;
      secrets.add(tampered);
      const tries: Array<[string, "PATCH" | "DELETE", Record<string, string>, string]> = [
        ["patch-no-token", "PATCH", {}, "MISSING_CREDENTIAL"],
        ["patch-tampered", "PATCH", bearer(tampered), "INVALID_TOKEN"],
        ["delete-no-token", "DELETE", {}, "MISSING_CREDENTIAL"],
        ["delete-tampered", "DELETE", bearer(tampered), "INVALID_TOKEN"],
      ];
      for (const [requestId, method, headers, reason] of tries) {
        const res = await rest(server.url, method, "/jwt/user", { ...(method === "PATCH" && { json: { pass: otherPassword } }), headers: { ...headers, "x-request-id": requestId } });
        assert.equal(res.status, 401, `${requestId}: ${res.text}`);
        const type = method === "PATCH" ? "password.changed" : "user.deactivated";
        const event = await one(server, type, (e) => e.request_id === requestId);
        assert.deepEqual([event.outcome, event.reason, event.user_id, event.api], ["failure", reason, undefined, "jwt"], requestId);
      }
      // The account is untouched: its password still logs in.
      assert.equal((await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: name, pass: password })}`)).status, 200);
    });

    it("JWT API: a password change or deactivation whose token verifies but is refused after (issued before the last password change, no pass) records password.changed / user.deactivated with the refusal and the user", async () => {
      const name = uniqueName("auditjwtstale");
      assert.equal((await rest(server.url, "POST", "/jwt/user", { json: { user: name, pass: password } })).status, 201);
      const stale = (await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: name, pass: password })}`)).text;
      secrets.add(stale);
      const userId = decodeJwt(stale).sub as string;
      assert.equal((await rest(server.url, "PATCH", "/jwt/user", { json: { pass: otherPassword }, headers: bearer(stale) })).status, 200);
      const fresh = (await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: name, pass: otherPassword })}`)).text;
      secrets.add(fresh);
      const tries: Array<[string, "PATCH" | "DELETE", string, Record<string, unknown> | undefined, number, string]> = [
        // A token stolen before the change, used to take the account back or to close it.
        ["stale-patch", "PATCH", stale, { pass: password }, 401, "TOKEN_REVOKED"],
        ["stale-delete", "DELETE", stale, undefined, 401, "TOKEN_REVOKED"],
        ["fresh-patch-no-pass", "PATCH", fresh, {}, 400, "MISSING_FIELDS"],
      ];
      for (const [requestId, method, token, json, status, reason] of tries) {
        const res = await rest(server.url, method, "/jwt/user", { ...(json && { json }), headers: { ...bearer(token), "x-request-id": requestId } });
        assert.equal(res.status, status, `${requestId}: ${res.text}`);
        assert.equal(res.body.details[0].debug.reason, reason, requestId);
        const type = method === "PATCH" ? "password.changed" : "user.deactivated";
        const event = await one(server, type, (e) => e.request_id === requestId);
        assert.deepEqual([event.outcome, event.reason, event.user_id], ["failure", reason, userId], requestId);
      }
      assert.deepEqual(await story(server, userId), [
        "signup success",
        "login success",
        "password.changed success",
        "login success",
        "password.changed failure",
        "user.deactivated failure",
        "password.changed failure",
      ]);
    });

    it("JWT API refresh tokens: issued, used, revoked, and refused once revoked, each naming its user and the token's jti", async () => {
      const name = uniqueName("auditrefresh");
      assert.equal((await rest(server.url, "POST", "/jwt/user", { json: { user: name, pass: password } })).status, 201);
      const access = await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: name, pass: password })}`);
      secrets.add(access.text);
      const userId = decodeJwt(access.text).sub as string;
      const refresh = await rest(server.url, "GET", "/jwt/refresh_token", { headers: bearer(access.text) });
      assert.equal(refresh.status, 200, refresh.text);
      secrets.add(refresh.text);
      const jti = decodeJwt(refresh.text).jti as string;
      const refreshed = await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: refresh.text })}`);
      assert.equal(refreshed.status, 200, refreshed.text);
      secrets.add(refreshed.text);
      assert.equal((await rest(server.url, "DELETE", "/jwt/refresh_token", { json: { refresh_token: refresh.text }, headers: bearer(access.text) })).status, 204);
      assert.equal((await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: refresh.text })}`)).status, 401);
      assert.deepEqual(await story(server, userId), [
        "signup success",
        "login success",
        "jwt_refresh_token.issued success",
        "jwt_refresh_token.used success",
        "jwt_refresh_token.revoked success",
        "jwt_refresh_token.used failure",
      ]);
      const events = (await allEvents(server, { user_id: userId })).filter((e) => e.type.startsWith("jwt_refresh_token."));
      assert.deepEqual([...new Set(events.map((e) => `${e.api} ${e.subject}`))], [`jwt ${jti}`]);
      assert.equal(events[0]!.reason, "TOKEN_REVOKED");
    });

    for (const protocol of ["rest", "grpc"] as const) {
      it(`JWT API over ${protocol}: a refresh token revoked again (answered as before) records its revocation once: one jwt_refresh_token.revoked, the first call's`, async () => {
        const api = jwtApi(protocol, server.url);
        try {
          const user = await createJwtUser(server);
          const access = await jwtLogin(server, user);
          const refresh = expectOk(await api.getRefreshToken({}, bearer(access))).text;
          secrets.add(access).add(refresh);
          const jti = decodeJwt(refresh).jti as string;
          const ids = [`revoke-again-${protocol}-1`, `revoke-again-${protocol}-2`];
          for (const id of ids) assert.deepEqual(expectOk(await api.deleteRefreshToken({ refresh_token: refresh }, { ...bearer(access), "x-request-id": id }), 204), {});
          const revoked = (await allEvents(server, { type: "jwt_refresh_token.revoked" })).filter((e) => e.subject === jti);
          assert.deepEqual(
            revoked.map((e) => [e.outcome, e.request_id, e.user_id, e.reason]),
            [["success", ids[0], decodeJwt(access).sub, undefined]],
          );
        } finally {
          api.close();
        }
      });
    }

    it("JWT API: two revocations of one refresh token at once, both answered 204, record one jwt_refresh_token.revoked", async () => {
      const access = await jwtLogin(server, await createJwtUser(server));
      const refresh = await jwtRefreshToken(server, access);
      secrets.add(access).add(refresh);
      const both = await Promise.all([1, 2].map(() => rest(server.url, "DELETE", "/jwt/refresh_token", { json: { refresh_token: refresh }, headers: bearer(access) })));
      assert.deepEqual(both.map((r) => r.status), [204, 204]);
      const revoked = (await allEvents(server, { type: "jwt_refresh_token.revoked" })).filter((e) => e.subject === decodeJwt(refresh).jti);
      assert.deepEqual(revoked.map((e) => e.outcome), ["success"]);
    });

    it("API tokens and keys: created, described, revoked; key rotated, revoked; every admin call, refused ones included", async () => {
      const account = uniqueName("acct");
      const secret = await createApiToken(server, account);
      secrets.add(secret);
      const listed = await rest(server.url, "GET", `/v1/frontend/auth/${account}`, { headers: admin });
      const link = listed.body.tokens[0].token_link as string;
      assert.equal((await rest(server.url, "PUT", "/v1/frontend/auth", { json: { token_link: link, description: "renamed" }, headers: admin })).status, 200);
      assert.equal((await rest(server.url, "DELETE", `/v1/frontend/auth/${account}`, { json: { token_link: link }, headers: admin })).status, 200);
      const rotated = await rest(server.url, "POST", "/v1/admin/keys:rotate", { json: {}, headers: admin });
      assert.equal(rotated.status, 200);
      const refused = await rest(server.url, "POST", "/v1/admin/keys:rotate", { json: {}, headers: { ...bearer("not-the-admin-token"), "x-request-id": "refused-admin" } });
      assert.equal(refused.status, 401);
      for (const type of ["api_token.created", "api_token.described", "api_token.revoked"]) await one(server, type, (e) => e.subject === link);
      await one(server, "key.rotated", (e) => e.subject === rotated.body.kid);
      const jwks = await rest(server.url, "GET", "/.well-known/jwks.json");
      const unused = (jwks.body.keys as Array<{ kid: string }>).map((k) => k.kid).find((kid) => kid !== rotated.body.kid)!;
      const revoked = await rest(server.url, "POST", `/v1/admin/keys/${unused}:revoke`, { json: {}, headers: admin });
      assert.equal(revoked.status, 200);
      await one(server, "key.revoked", (e) => e.subject === unused);
      const failed = await one(server, "admin.call", (e) => e.request_id === "refused-admin");
      assert.deepEqual([failed.outcome, failed.subject, failed.reason, failed.api], ["failure", "tessera.key.v1.KeyService/RotateKey", "INVALID_TOKEN", "key"]);
      const calls = (await allEvents(server, { type: "admin.call" })).filter((e) => e.outcome === "success").map((e) => e.subject);
      for (const rpc of ["CreateToken", "ListTokens", "UpdateToken", "RevokeToken"]) assert.ok(calls.includes(`tessera.apitoken.v1.ApiTokenService/${rpc}`), rpc);
    });

    it("an admin call with the admin credential whose request does not parse records admin.call naming its API, as every other admin.call does", async () => {
      const tries: Array<[string, () => Promise<{ status: number }>, string, string]> = [
        ["malformed-rest-query", () => rest(server.url, "GET", "/v1/admin/audit-events?page_size=x", { headers: { ...admin, "x-request-id": "malformed-rest-query" } }), "audit", "INVALID_QUERY_PARAMETER"],
        ["malformed-rest-body", () => rest(server.url, "POST", "/v1/admin/keys:rotate", { body: '{"x":', headers: { ...admin, "content-type": "application/json", "x-request-id": "malformed-rest-body" } }), "key", "MALFORMED_BODY"],
        [
          "malformed-connect",
          () => fetch(`${server.url}/tessera.apitoken.v1.ApiTokenService/CreateToken`, { method: "POST", headers: { ...admin, "content-type": "application/json", "x-request-id": "malformed-connect" }, body: "{" }),
          "apitoken",
          "MALFORMED_REQUEST",
        ],
      ];
      for (const [requestId, call, api, reason] of tries) {
        assert.equal((await call()).status, 400, requestId);
        const event = await one(server, "admin.call", (e) => e.request_id === requestId);
        assert.deepEqual([event.outcome, event.reason, event.api], ["failure", reason, api], requestId);
      }
    });

    it("an x-request-id that is the admin token or an API token is replaced by a new UUID: not in the answer, the admin.call event or any log line; a UUID is kept", async () => {
      const apiToken = await createApiToken(server, uniqueName("acct"));
      secrets.add(apiToken);
      // (A JWT, over 128 characters, is no sane request id anyway.)
      for (const [name, sent] of [["the admin token", testAdminToken], ["an API token", apiToken]] as const) {
        const before = server.logs.length;
        const res = await rest(server.url, "GET", "/v1/admin/audit-events?page_size=1", { headers: { ...admin, "x-request-id": sent } });
        assert.equal(res.status, 200, res.text);
        const id = res.headers.get("x-request-id") ?? "";
        assert.match(id, UUID, name);
        const event = await one(server, "admin.call", (e) => e.request_id === id);
        assert.deepEqual([event.outcome, event.subject], ["success", "tessera.audit.v1.AuditService/ListAuditEvents"], name);
        assert.deepEqual(server.logs.slice(before).filter((l) => l.includes(sent)), [], `a log line holds ${name}`);
        assert.deepEqual((await allEvents(server, {})).filter((e) => e.request_id === sent), [], name);
      }
      // A UUID is what request ids usually are: kept.
      const uuid = "5ec7e7aa-0000-4000-8000-00000000cafe";
      const res = await rest(server.url, "GET", "/v1/admin/audit-events?page_size=1", { headers: { ...admin, "x-request-id": uuid } });
      assert.equal(res.headers.get("x-request-id"), uuid);
    });

    it("a User-Agent holding the admin token or an API token (the header mistaken for Authorization) is recorded as [redacted], in the event and its log line; another as given", async () => {
      const apiToken = await createApiToken(server, uniqueName("acct"));
      secrets.add(apiToken);
      for (const [name, sent] of [
        ["the admin token", testAdminToken],
        ["an API token after a tool's name", `curl/8.5.0 ${apiToken}`],
        ["an Authorization value", `Bearer ${testAdminToken}`],
      ] as const) {
        const before = server.logs.length;
        const res = await rest(server.url, "GET", "/v1/admin/audit-events?page_size=1", { headers: { ...admin, "user-agent": sent } });
        assert.equal(res.status, 200, res.text);
        const id = res.headers.get("x-request-id") ?? "";
        const event = await one(server, "admin.call", (e) => e.request_id === id);
        assert.equal(event.user_agent, "[redacted]", name);
        const line = server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "audit" && l.auditId === event.id);
        assert.equal(line?.userAgent, "[redacted]", name);
        assert.deepEqual(server.logs.slice(before).filter((l) => l.includes(apiToken) || l.includes(testAdminToken)), [], `a log line holds ${name}`);
      }
      // A browser's, a tool's: kept. One over 256 characters: its first 256, without the word the
      // cut would leave the start of (here the admin token's first six characters).
      const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
      const long = `tool/1.0 ${"x".repeat(240)} `;
      for (const [sent, recorded] of [
        [firefox, firefox],
        [`${long}${testAdminToken}`, long],
      ]) {
        const res = await rest(server.url, "GET", "/v1/admin/audit-events?page_size=1", { headers: { ...admin, "user-agent": sent } });
        const event = await one(server, "admin.call", (e) => e.request_id === res.headers.get("x-request-id"));
        assert.equal(event.user_agent, recorded);
      }
    });

    it("an API token sent where its token_link goes (to revoke or describe it) is recorded as [redacted], in the event and its log line; a link as given", async () => {
      const account = uniqueName("acct");
      const secret = await createApiToken(server, account);
      secrets.add(secret);
      const unknownLink = "00000000-0000-4000-8000-000000000000";
      const tries: Array<[string, string, "PUT" | "DELETE", string, string]> = [
        ["revoke-by-secret", "api_token.revoked", "DELETE", secret, "[redacted]"],
        ["describe-by-secret", "api_token.described", "PUT", secret, "[redacted]"],
        // The admin token pasted in its place: a secret too, whatever its shape.
        ["revoke-by-admin-token", "api_token.revoked", "DELETE", testAdminToken, "[redacted]"],
        ["revoke-unknown-link", "api_token.revoked", "DELETE", unknownLink, unknownLink],
      ];
      for (const [requestId, type, method, tokenLink, subject] of tries) {
        const res = await rest(server.url, method, method === "PUT" ? "/v1/frontend/auth" : `/v1/frontend/auth/${account}`, {
          json: { token_link: tokenLink, ...(method === "PUT" && { description: "renamed" }) },
          headers: { ...admin, "x-request-id": requestId },
        });
        assert.equal(res.status, 404, `${requestId}: ${res.text}`);
        const event = await one(server, type, (e) => e.request_id === requestId);
        assert.deepEqual([event.outcome, event.reason, event.subject], ["failure", "TOKEN_NOT_FOUND", subject], requestId);
        const line = server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "audit" && l.auditId === event.id);
        assert.equal(line?.subject, subject, requestId);
      }
      // The token still works: nothing was revoked.
      assert.equal((await rest(server.url, "GET", "/v1/api/auth", { headers: bearer(secret) })).status, 200);
    });

    for (const protocol of protocols) {
      it(`lists over ${protocol}: newest first, in pages of page_size with next_page_token, filtered by user, type and time`, async () => {
        const email = uniqueEmail("pages");
        const user = await signUp(server, email);
        const token = await loginUserToken(server, email);
        secrets.add(token);
        for (let i = 0; i < 5; i++) assert.equal((await rest(server.url, "POST", "/auth/bump", { headers: bearer(token) })).status, 200);
        const expected = await allEvents(server, { user_id: user.id });
        assert.equal(expected.length, 8); // signup, login, user_token.login, 5 bumps
        // As instants: proto3 JSON writes no fraction for a whole second ("…:05Z" sorts after "…:05.300Z" as text).
        for (let i = 1; i < expected.length; i++) assert.ok(Date.parse(expected[i - 1]!.time) >= Date.parse(expected[i]!.time), "newest first");
        const api = auditApi(protocol, server.url);
        try {
          const pages: AuditEventJson[][] = [];
          let token2 = "";
          do {
            const page = expectOk(await api.listAuditEvents({ user_id: user.id, page_size: 3, ...(token2 && { page_token: token2 }) }, admin));
            pages.push(page.events);
            token2 = page.next_page_token;
          } while (token2);
          assert.deepEqual(pages.map((p) => p.length), [3, 3, 2]);
          assert.deepEqual(pages.flat(), expected);
          const bumps = expectOk(await api.listAuditEvents({ user_id: user.id, type: "user_token.bump" }, admin));
          assert.deepEqual(bumps.events, expected.filter((e) => e.type === "user_token.bump"));
          assert.equal(bumps.next_page_token, "");
          const oldest = expected.at(-1)!;
          const window = expectOk(await api.listAuditEvents({ user_id: user.id, since: oldest.time, until: new Date(Date.parse(oldest.time) + 1).toISOString() }, admin));
          assert.deepEqual(window.events, expected.filter((e) => e.time === oldest.time));
          // Bounds finer than the ms events are kept in: since (at or after) and until (before)
          // keep exactly the events they name (rounded to the nearest ms, since 0.4 ms past an
          // event took it in, and until 0.4 ms past it left it out).
          const t = Date.parse(oldest.time);
          const fine = (ms: number, digits: string) => new Date(ms).toISOString().replace("Z", `${digits}Z`);
          const atOldest = (events: AuditEventJson[]) => events.filter((e) => Date.parse(e.time) === t);
          assert.deepEqual(atOldest(expectOk(await api.listAuditEvents({ user_id: user.id, since: fine(t, "400000"), until: fine(t + 1, "000000") }, admin)).events), [], "since 0.4 ms after");
          assert.deepEqual(expectOk(await api.listAuditEvents({ user_id: user.id, since: fine(t - 1, "600000"), until: fine(t, "400000") }, admin)).events, window.events, "until 0.4 ms after");
          // More than 500 is read as 500.
          assert.equal(expectOk(await api.listAuditEvents({ user_id: user.id, page_size: 100_000 }, admin)).events.length, 8);
        } finally {
          api.close();
        }
      });

      it(`refuses over ${protocol}: no admin credential, a bad page_token, a negative page_size, an unknown type, a user_id no user has, until before since`, async () => {
        const api = auditApi(protocol, server.url);
        try {
          expectCode(await api.listAuditEvents({}, {}), "unauthenticated", undefined, "MISSING_CREDENTIAL");
          expectCode(await api.listAuditEvents({}, bearer("not-the-admin-token")), "unauthenticated", undefined, "INVALID_TOKEN");
          expectCode(await api.listAuditEvents({ page_token: "bm90IGEgdG9rZW4" }, admin), "invalid_argument", "page_token is not a page token this method returned", "INVALID_FIELD");
          expectCode(await api.listAuditEvents({ page_size: -1 }, admin), "invalid_argument", "page_size must not be negative", "INVALID_FIELD");
          expectCode(await api.listAuditEvents({ type: "nonsense" }, admin), "invalid_argument", /^type must be one of login, signup, /, "INVALID_FIELD");
          // A user id holding NUL (no user has one; a PostgreSQL-backed store cannot even compare it) or of a length no user id has.
          expectCode(await api.listAuditEvents({ user_id: "a\u0000b" }, admin), "invalid_argument", "user_id must not contain control characters", "INVALID_FIELD");
          expectCode(await api.listAuditEvents({ user_id: "u".repeat(257) }, admin), "invalid_argument", "user_id is too long (at most 256 characters)", "INVALID_FIELD");
          // A reversed time range matches nothing, and says so rather than answering an empty page.
          expectCode(
            await api.listAuditEvents({ since: "2030-01-01T00:00:00Z", until: "2020-01-01T00:00:00Z" }, admin),
            "invalid_argument",
            "until must not be before since",
            "INVALID_FIELD",
          );
        } finally {
          api.close();
        }
      });

      it(`refuses over ${protocol}: a page_token in the form of this method's tokens that it never returns`, async () => {
        const api = auditApi(protocol, server.url);
        try {
          // Each call is an admin.call event: two of them make two pages of one.
          for (let i = 0; i < 2; i++) expectOk(await api.listAuditEvents({ page_size: 1 }, admin));
          const first = expectOk(await api.listAuditEvents({ page_size: 1 }, admin));
          const real = first.next_page_token;
          assert.match(real, /^[A-Za-z0-9_-]+$/);
          const [ms, id, filters] = Buffer.from(real, "base64url").toString().split(":") as [string, string, string];
          // The token as returned is taken.
          expectOk(await api.listAuditEvents({ page_size: 1, page_token: real }, admin));
          const b64 = (text: string) => Buffer.from(text).toString("base64url");
          // Its last character carries bits the decoding drops: another spelling of the same bytes.
          const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
          const respelled = real.slice(0, -1) + alphabet[alphabet.indexOf(real.at(-1)!) ^ 1];
          assert.equal(Buffer.from(respelled, "base64url").toString(), Buffer.from(real, "base64url").toString());
          for (const token of [
            respelled,
            b64(`0${ms}:${id}:${filters}`), // a leading zero
            b64(`${ms}:------------------------------------:${filters}`), // not an event id
            b64(`${ms}:${id.toUpperCase()}:${filters}`),
            b64(`999999999999999:${id}:${filters}`), // after the year 9999, which no event time is
            b64(`${ms}:${id}`), // no filters
            b64(`${ms}:${id}:${filters.toUpperCase()}`),
            b64(`${ms}:${id}:${filters}0`),
            `${real}==`,
          ]) {
            expectCode(await api.listAuditEvents({ page_token: token }, admin), "invalid_argument", "page_token is not a page token this method returned", "INVALID_FIELD");
          }
        } finally {
          api.close();
        }
      });

      it(`refuses over ${protocol}: a page_token replayed with filters other than those it was returned for`, async () => {
        const api = auditApi(protocol, server.url);
        try {
          // Two users with events of their own: a signup, a login and user_token.login, and a bump.
          const users = [];
          for (const name of ["alice", "bob"]) {
            const email = uniqueEmail(`filters-${name}`);
            const user = await signUp(server, email);
            const token = await loginUserToken(server, email);
            secrets.add(token);
            assert.equal((await rest(server.url, "POST", "/auth/bump", { headers: bearer(token) })).status, 200);
            users.push(user.id);
          }
          const [a, b] = users as [string, string];
          const since = "2020-01-01T00:00:00.000000001Z";
          const until = "2100-01-01T00:00:00Z";
          const first = expectOk(await api.listAuditEvents({ user_id: a, since, until, page_size: 1 }, admin));
          const token = first.next_page_token;
          assert.notEqual(token, "");
          const refused = "page_token was returned for other filters: user_id, type, since and until must be those of the call that returned it";
          for (const other of [
            { user_id: b, since, until }, // another user: bob's events after alice's cursor
            { since, until }, // no user filter
            { user_id: a, type: "login", since, until },
            { user_id: a, until },
            { user_id: a, since: "2020-01-01T00:00:01Z", until },
            { user_id: a, since },
            { user_id: a, since, until: "2099-01-01T00:00:00Z" },
          ]) {
            expectCode(await api.listAuditEvents({ ...other, page_size: 1, page_token: token }, admin), "invalid_argument", refused, "INVALID_FIELD");
          }
          // The same filters take it, whatever the page size, and so do the same bounds spelled
          // otherwise (since names the same whole ms): alice's events only, where the first page left off.
          const rest1 = expectOk(await api.listAuditEvents({ user_id: a, since, until, page_size: 500, page_token: token }, admin));
          const rest2 = expectOk(await api.listAuditEvents({ user_id: a, since: "2020-01-01T00:00:00.001Z", until, page_size: 500, page_token: token }, admin));
          assert.deepEqual(rest2, rest1);
          assert.ok(rest1.events.length >= 3);
          assert.ok(rest1.events.every((e) => e.user_id === a));
          assert.deepEqual([...first.events, ...rest1.events], await allEvents(server, { user_id: a, since, until }));
        } finally {
          api.close();
        }
      });

      it(`refuses over ${protocol}: an until before since by less than a millisecond`, async () => {
        const api = auditApi(protocol, server.url);
        try {
          // Both bounds within one ms (or until in the ms before since's): until is still before since.
          for (const [since, until] of [
            ["2030-01-01T00:00:00.000700Z", "2030-01-01T00:00:00.000500Z"],
            ["2030-01-01T00:00:00.001Z", "2030-01-01T00:00:00.000500Z"],
          ]) {
            expectCode(await api.listAuditEvents({ since, until }, admin), "invalid_argument", "until must not be before since", "INVALID_FIELD");
          }
          // Equal bounds are no error: the empty range they name.
          const same = "2030-01-01T00:00:00.000500Z";
          assert.deepEqual(expectOk(await api.listAuditEvents({ since: same, until: same }, admin)), { events: [], next_page_token: "" });
        } finally {
          api.close();
        }
      });

      it(`refuses over ${protocol}: a user_id holding any control character (tab and line breaks, C1 controls)`, async () => {
        const api = auditApi(protocol, server.url);
        try {
          // No user id holds one; free text (a note) may hold tab and line breaks, a user id not.
          for (const c of ["\t", "\n", "\r", "\u0085", "\u009f"]) {
            expectCode(await api.listAuditEvents({ user_id: `a${c}b` }, admin), "invalid_argument", "user_id must not contain control characters", "INVALID_FIELD");
          }
        } finally {
          api.close();
        }
      });
    }

    it("writes every event as a JSON log line with \"type\":\"audit\"", async () => {
      const stored = await allEvents(server, {});
      const logged = new Map(
        server.logs
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((l) => l.type === "audit" && l.msg === "audit")
          .map((l) => [l.auditId as string, l]),
      );
      for (const e of stored) {
        const line = logged.get(e.id);
        assert.ok(line, `no log line for ${e.type} ${e.id}`);
        assert.equal(line.event, e.type);
        assert.equal(line.outcome, e.outcome);
        assert.equal(Date.parse(line.eventTime as string), Date.parse(e.time));
      }
    });

    it("no event and no log line holds a password or token any call above carried", async () => {
      secrets.delete("");
      const events = JSON.stringify(await allEvents(server, {}));
      const logs = server.logs.join("\n");
      for (const secret of secrets) {
        assert.ok(!events.includes(secret), `an audit event holds ${secret.slice(0, 8)}...`);
        assert.ok(!logs.includes(secret), `a log line holds ${secret.slice(0, 8)}...`);
      }
      assert.ok(secrets.size >= 15, `only ${secrets.size} secrets were checked`);
    });
  });
}

for (const store of storesUnderTest()) {
  describe(`audit trail on ${store}: a credential as a word of a refused login`, function () {
    this.timeout(60_000);
    let server: TestServer;
    // A user's email, its session's refresh token, an API token and a seed 004 access token.
    let email: string, refreshToken: string, apiToken: string, jwt: string;
    before(async () => {
      server = await startTestServer({ store, databases: databases[store] });
      email = uniqueEmail("redact-word");
      await signUp(server, email);
      refreshToken = (await startSession(server, email)).refresh_token;
      apiToken = await createApiToken(server);
      jwt = await jwtLogin(server, await createJwtUser(server));
    });
    after(() => server?.close());

    it("a refused login whose name holds a credential as one of its words (an Authorization value pasted, a token after the name) records [redacted], in the event and its log line", async () => {
      await expectRedactedLogins(server, [
        ["word-bearer-api-token", () => rest(server.url, "POST", "/auth/login", { headers: { ...basic(`Bearer ${apiToken}`, "x"), "x-request-id": "word-bearer-api-token" } })],
        ["word-bearer-jwt", () => rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: `Bearer ${jwt}`, pass: "x" })}`, { headers: { "x-request-id": "word-bearer-jwt" } })],
        ["word-refresh", () => rest(server.url, "POST", "/session", { json: { account_type: "traditional", email: `${email} ${refreshToken}`, password }, headers: { ...clientIdHeader, "x-request-id": "word-refresh" } })],
      ]);
      const logs = server.logs.join("\n");
      for (const secret of [apiToken, jwt, refreshToken]) assert.ok(!logs.includes(secret), `a log line holds ${secret.slice(0, 8)}...`);
      // Words of no credential's shape: recorded as given.
      const other = `Bearer not-a-token-${Date.now()}`;
      assert.equal((await rest(server.url, "POST", "/auth/login", { headers: { ...basic(other, "x"), "x-request-id": "word-none" } })).status, 401);
      assert.equal((await one(server, "login", (e) => e.request_id === "word-none")).login, other);
    });

    it("a refused login holding a credential joined by a character no token holds (quoted, in brackets, after a colon, a slash or an @, before a full stop) records [redacted]; an ordinary name as given", async () => {
      const jwtLogin401 = (user: string, requestId: string) => () => rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user, pass: "x" })}`, { headers: { "x-request-id": requestId } });
      const joined: Array<[string, string]> = [
        ["joined-colon", `token:${apiToken}`],
        ["joined-quoted", `"${apiToken}"`],
        ["joined-brackets", `(Bearer ${jwt})`],
        ["joined-slash", `x/${apiToken}`],
        ["joined-url", `https://${refreshToken}@example.com`],
        ["joined-full-stop", `${jwt}.`],
        ["joined-dotted", `${email}.${apiToken}`],
      ];
      await expectRedactedLogins(server, joined.map(([requestId, user]) => [requestId, jwtLogin401(user, requestId)]));
      const logs = server.logs.join("\n");
      for (const secret of [apiToken, jwt, refreshToken]) assert.ok(!logs.includes(secret), `a log line holds ${secret.slice(0, 8)}...`);
      // Ordinary names, punctuation and all: recorded as given.
      for (const [requestId, user] of [
        ["joined-none-email", `first.last+tag-${Date.now()}@mail.example.com`],
        ["joined-none-name", `Ann Lee-Smith (${Date.now()})`],
      ]) {
        assert.equal((await jwtLogin401(user!, requestId!)()).status, 401, requestId);
        assert.equal((await one(server, "login", (e) => e.request_id === requestId)).login, user, requestId);
      }
    });
  });
}

/** Reads the events `read` finds until there are `count` (an error's event is stored without the call waiting for it). */
async function settled<T>(read: () => Promise<T[]>, count: number): Promise<T[]> {
  let found: T[] = [];
  for (let i = 0; i < 50 && (found = await read()).length < count; i++) await new Promise((r) => setTimeout(r, 20));
  return found;
}

for (const store of storesUnderTest()) {
  describe(`audit trail on ${store}: signing keys`, function () {
    this.timeout(60_000);
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store, databases: databases[store] });
    });
    after(() => server?.close());

    /** POST /v1/admin/keys/{kid}:revoke, its request named `requestId`. */
    const revoke = (kid: string, requestId: string) => rest(server.url, "POST", `/v1/admin/keys/${kid}:revoke`, { json: {}, headers: { ...admin, "x-request-id": requestId } });
    /** The kid of the key that signs now (a seed 004 access token's header names it). */
    const signingKid = async () => decodeProtectedHeader(await jwtLogin(server, await createJwtUser(server))).kid!;
    /** The key events of the calls named `requestIds`, oldest first, as [type, outcome, subject]. */
    const keyEvents = async (...requestIds: string[]) =>
      [...(await allEvents(server, { type: "key.rotated" })), ...(await allEvents(server, { type: "key.revoked" }))]
        .filter((e) => requestIds.includes(e.request_id ?? ""))
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .map((e) => [e.type, e.outcome, e.subject]);
    /** Makes the store refuse `method` of the signing keys until the returned function is called. */
    const refuse = (method: "revoke" | "rotate") => {
      const keys = server.tessera.store.keys;
      const kept = keys[method];
      keys[method] = () => Promise.reject(new StoreUnavailableError("store unavailable (test)"));
      return () => void (keys[method] = kept as never);
    };

    it("revoking the signing key records key.rotated for the key it promoted, then key.revoked; revoking it again answers as before and records key.revoked again", async () => {
      const signing = await signingKid();
      const first = await revoke(signing, "revoke-signing-1");
      assert.equal(first.status, 200, first.text);
      const promoted = first.body.signing_kid as string;
      assert.equal(first.body.kid, signing);
      assert.notEqual(promoted, signing);
      const again = await revoke(signing, "revoke-signing-2");
      assert.equal(again.status, 200, again.text);
      assert.deepEqual(again.body, { kid: signing, signing_kid: promoted });
      assert.deepEqual(await keyEvents("revoke-signing-1", "revoke-signing-2"), [
        ["key.rotated", "success", promoted],
        ["key.revoked", "success", signing],
        ["key.revoked", "success", signing],
      ]);
    });

    it("a revocation of the signing key whose revoke write the store refuses: 503, key.rotated for the promotion it stored, key.revoked as the error answered", async () => {
      const signing = await signingKid();
      // The published next key: the one a revocation of the signing key promotes.
      const next = (await server.tessera.store.keys.list()).at(-1)!.kid;
      const restore = refuse("revoke");
      let res;
      try {
        res = await revoke(signing, "revoke-refused");
      } finally {
        restore();
      }
      assert.equal(res.status, 503, res.text);
      assert.equal(res.body.details[0].debug.reason, "STORE_UNAVAILABLE");
      const stored = await server.tessera.store.keys.list();
      assert.equal(stored.find((k) => k.kid === signing)?.revokedAt, undefined);
      assert.ok(stored.find((k) => k.kid === next)!.activatedAt.getTime() <= Date.now(), "the next key was not promoted");
      assert.deepEqual(await settled(() => keyEvents("revoke-refused"), 2), [["key.rotated", "success", next], ["key.revoked", "error", signing]]);
      const revoked = await one(server, "key.revoked", (e) => e.request_id === "revoke-refused");
      assert.equal(revoked.reason, "STORE_UNAVAILABLE");
    });

    it("a revocation of a kid that names no key (a secret sent in its place: the admin token, an API token) records [redacted], in the event and its log line, over every protocol", async () => {
      const apiToken = await createApiToken(server, uniqueName("acct"));
      for (const protocol of protocols) {
        const api = keyApi(protocol, server.url);
        try {
          for (const [name, kid] of [
            ["admin-token", testAdminToken],
            ["api-token", apiToken],
            ["unknown-kid", "no-such-kid"],
          ]) {
            const requestId = `revoke-${name}-${protocol}`;
            expectCode(await api.revokeKey(kid!, { ...admin, "x-request-id": requestId }), "not_found", "no signing key with this kid", "KEY_NOT_FOUND");
            const event = await one(server, "key.revoked", (e) => e.request_id === requestId);
            assert.deepEqual([event.outcome, event.reason, event.subject], ["failure", "KEY_NOT_FOUND", "[redacted]"], requestId);
            const line = server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "audit" && l.auditId === event.id);
            assert.equal(line?.subject, "[redacted]", requestId);
          }
        } finally {
          api.close();
        }
      }
      for (const secret of [testAdminToken, apiToken]) {
        assert.deepEqual(server.logs.filter((l) => l.includes(secret)), [], "a log line holds a secret sent as a kid");
      }
    });

    it("a rotation whose write the store refuses: 503, key.rotated recorded as the error answered, never a success", async () => {
      const signing = await signingKid();
      const restore = refuse("rotate");
      let res;
      try {
        res = await rest(server.url, "POST", "/v1/admin/keys:rotate", { json: {}, headers: { ...admin, "x-request-id": "rotate-refused" } });
      } finally {
        restore();
      }
      assert.equal(res.status, 503, res.text);
      assert.equal(res.body.details[0].debug.reason, "STORE_UNAVAILABLE");
      assert.equal(await signingKid(), signing);
      assert.deepEqual(await settled(() => keyEvents("rotate-refused"), 1), [["key.rotated", "error", undefined]]);
      const rotated = await one(server, "key.rotated", (e) => e.request_id === "rotate-refused");
      assert.equal(rotated.reason, "STORE_UNAVAILABLE");
    });
  });
}

for (const store of storesUnderTest()) {
  describe(`audit trail on ${store}: credentials a cap ended`, function () {
    this.timeout(60_000);
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store, databases: databases[store], env: { TESSERA_MAX_JWT_REFRESH_TOKENS_PER_USER: "1" } });
    });
    after(() => server?.close());

    it("a refresh token the cap revoked, then revoked by DELETE /jwt/refresh_token (204): its revocation is recorded once, the cap's", async () => {
      const access = await jwtLogin(server, await createJwtUser(server));
      const userId = decodeJwt(access).sub as string;
      const first = await jwtRefreshToken(server, access);
      await jwtRefreshToken(server, access);
      const deleted = await rest(server.url, "DELETE", "/jwt/refresh_token", { json: { refresh_token: first }, headers: bearer(access) });
      assert.equal(deleted.status, 204, deleted.text);
      const revoked = (await allEvents(server, { user_id: userId, type: "jwt_refresh_token.revoked" })).map((e) => [e.outcome, e.subject, e.reason]);
      assert.deepEqual(revoked, [["success", decodeJwt(first).jti, "CAP"]]);
    });
  });
}

describe("audit trail: when the store refuses an event", function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
    // The table is gone: every append fails.
    const db = new Database(join(server.config.dataDir, "tessera.db"));
    db.exec("DROP TABLE audit_events");
    db.close();
  });
  after(() => server?.close());

  it("the call succeeds, the audit log line still goes out, a warning is logged and a metric counts it", async () => {
    const email = uniqueEmail("unstored");
    const scraped = await scrape(`${server.url}/metrics`);
    const before = value(scraped, "tessera_audit_write_failures_total");
    const append = { operation: "auditEvents.append", store: "sqlite" };
    const storeErrorsBefore = value(scraped, "tessera_store_errors_total", append);
    await signUp(server, email);
    const lines = server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.login === email || l.type === "audit");
    const audit = lines.find((l) => l.msg === "audit" && l.event === "signup" && l.login === email);
    assert.ok(audit, "no audit line");
    const failed = lines.filter((l) => l.msg === "audit event not stored" && l.auditId === audit.auditId);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.level, "warn");
    const after = await scrape(`${server.url}/metrics`);
    assert.equal(value(after, "tessera_audit_write_failures_total") - before, 1);
    // The store's own metrics saw the failed operation (an error, not an unavailable database).
    assert.equal(value(after, "tessera_store_errors_total", append) - storeErrorsBefore, 1);
    assert.equal(value(after, "tessera_store_unavailable_total", append), 0);
  });
});

for (const store of storesUnderTest()) {
  describe(`audit trail on ${store}: logins and sign-ups refused before the core checks a password`, function () {
    this.timeout(60_000);
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store, databases: databases[store] });
    });
    after(() => server?.close());

    /** The events of `type`, newest first. */
    const ofType = (type: string) => allEvents(server, { type });

    /** `call` is refused with `code` and `reason`, and records one more `type` event: [type, outcome, reason, user_id, login] of it. */
    async function refusedOnce(type: string, call: () => Promise<Outcome<unknown>>, code: string, reason: string): Promise<unknown[]> {
      const before = (await ofType(type)).length;
      const outcome = await call();
      assert.deepEqual([outcome.code, outcome.details?.reason], [code, reason]);
      const after = await ofType(type);
      assert.equal(after.length, before + 1, JSON.stringify(after.slice(0, 2)));
      const e = after[0]!;
      return [e.type, e.outcome, e.reason, e.user_id, e.login];
    }

    it("each records one login or signup failure with the answer's reason, no login, and counts it as a malformed email is counted, over every protocol", async () => {
      const basicOf = (bytes: Buffer) => ({ authorization: `Basic ${bytes.toString("base64")}` });
      for (const protocol of protocols) {
        const sessions = sessionApi(protocol, server.url);
        const userTokens = userTokenApi(protocol, server.url);
        const jwt = jwtApi(protocol, server.url);
        try {
          const email = uniqueEmail(`refused-${protocol}`);
          const creds = { clientId: testClientId };
          const failure = (type: string, reason: string) => [type, "failure", reason, undefined, undefined];
          for (const body of [
            { account_type: "", email, password },
            { account_type: "traditional", email: "", password },
            { account_type: "traditional", email, password: "" },
          ]) {
            assert.deepEqual(await refusedOnce("login", () => sessions.createSession(body, creds), "invalid_argument", "MISSING_FIELDS"), failure("login", "MISSING_FIELDS"), JSON.stringify(body));
          }
          assert.deepEqual(
            await refusedOnce("login", () => sessions.createSession({ account_type: "traditional", email: "spoof\u202egro.elpmaxe@x", password }, creds), "invalid_argument", "INVALID_FIELD"),
            ["login", "failure", "INVALID_FIELD", undefined, "spoof\ufffdgro.elpmaxe@x"],
          );
          assert.deepEqual(
            await refusedOnce("login", () => sessions.createSession({ account_type: "traditional", email, password }, {}), "unauthenticated", "MISSING_CLIENT_ID"),
            failure("login", "MISSING_CLIENT_ID"),
          );
          assert.deepEqual(await refusedOnce("login", () => userTokens.login(undefined, {}), "unauthenticated", "MISSING_CREDENTIAL"), failure("login", "MISSING_CREDENTIAL"));
          // A password in a header that does not decode: neither it nor what precedes it is recorded.
          for (const header of [basicOf(Buffer.from(`${email}${password}`)), basicOf(Buffer.concat([Buffer.from(email), Buffer.from([0xff]), Buffer.from(`:${password}`)]))]) {
            assert.deepEqual(await refusedOnce("login", () => userTokens.login(undefined, header), "invalid_argument", "MALFORMED_CREDENTIAL"), failure("login", "MALFORMED_CREDENTIAL"));
          }
          assert.deepEqual(await refusedOnce("login", () => jwt.getToken({ pass: password }), "invalid_argument", "MISSING_FIELDS"), failure("login", "MISSING_FIELDS"));
          assert.deepEqual(await refusedOnce("login", () => jwt.getToken({ user: "no-refresh-token" }), "invalid_argument", "MISSING_FIELDS"), failure("login", "MISSING_FIELDS"));
          assert.deepEqual(await refusedOnce("signup", () => sessions.createUser({ email: "", password }, creds), "invalid_argument", "MISSING_FIELDS"), failure("signup", "MISSING_FIELDS"));
          assert.deepEqual(await refusedOnce("signup", () => jwt.createUser({ pass: password }), "invalid_argument", "MISSING_FIELDS"), failure("signup", "MISSING_FIELDS"));
        } finally {
          sessions.close();
          userTokens.close();
          jwt.close();
        }
      }
      const scraped = await scrape(`${server.url}/metrics`);
      assert.deepEqual(
        [
          value(scraped, "tessera_logins_total", { api: "session", outcome: "failure" }),
          value(scraped, "tessera_logins_total", { api: "usertoken", outcome: "failure" }),
          value(scraped, "tessera_logins_total", { api: "jwt", outcome: "failure" }),
          value(scraped, "tessera_signups_total", { api: "session", outcome: "failure" }),
          value(scraped, "tessera_signups_total", { api: "jwt", outcome: "failure" }),
        ],
        [5 * protocols.length, 3 * protocols.length, 2 * protocols.length, protocols.length, protocols.length],
      );
      assert.deepEqual(server.logs.filter((l) => l.includes(password)), [], "a log line holds the password");
    });
  });
}

describe("audit trail: TESSERA_AUDIT=off", function () {
  this.timeout(30_000);
  it("records nothing: no stored event, no audit log line, no tessera_audit_events_total; logins are still counted", async () => {
    const server = await startTestServer({ env: { TESSERA_AUDIT: "off" } });
    try {
      const email = uniqueEmail("off");
      await signUp(server, email);
      assert.equal((await rest(server.url, "POST", "/auth/login", { headers: basic(email, password) })).status, 200);
      assert.deepEqual(expectOk(await auditApi("rest", server.url).listAuditEvents({}, admin)).events, []);
      assert.equal(server.logs.filter((l) => l.includes('"type":"audit"')).length, 0);
      const scraped = await scrape(`${server.url}/metrics`);
      assert.equal(value(scraped, "tessera_logins_total", { api: "usertoken", outcome: "success" }), 1);
      // Nothing recorded, nothing counted as recorded.
      assert.equal(value(scraped, "tessera_audit_events_total"), 0);
    } finally {
      await server.close();
    }
  });
});

for (const store of storesUnderTest()) {
  describe(`audit trail on ${store}: paging while events are written`, function () {
    this.timeout(30_000);
    it("no event is skipped or repeated when events of the same millisecond are written between page reads", async () => {
      // A clock that stands still: every event has the same time, ordered by its id alone.
      const clock = new ManualClock(Date.parse("2026-06-01T12:00:00Z"));
      const server = await startTestServer({ store, databases: databases[store], clock });
      try {
        const api = auditApi("rest", server.url);
        // Each listing is an admin.call event: 12 at one ms, then 3 at the next.
        for (let i = 0; i < 12; i++) expectOk(await api.listAuditEvents({ page_size: 1 }, admin));
        clock.advance(1);
        for (let i = 0; i < 3; i++) expectOk(await api.listAuditEvents({ page_size: 1 }, admin));
        const before = expectOk(await api.listAuditEvents({ page_size: 500 }, admin)).events.map((e) => e.id);
        // And, first of all, the start's key.rotated (the key it made sign), at the first ms.
        assert.equal(before.length, 16);
        const seen: string[] = [];
        let token = "";
        do {
          const page = expectOk(await api.listAuditEvents({ page_size: 4, ...(token && { page_token: token }) }, admin));
          seen.push(...page.events.map((e) => e.id));
          token = page.next_page_token;
          // Written between two page reads, in the millisecond of the events being paged.
          await rest(server.url, "POST", "/v1/admin/keys:rotate", { json: {}, headers: bearer("not-the-admin-token") });
        } while (token);
        // The first page also shows the listing that read `before` (written after it); then every
        // event of `before`, each once, in order.
        assert.equal(new Set(seen).size, seen.length, "an event was repeated");
        assert.deepEqual(seen.slice(1), before);
      } finally {
        await server.close();
      }
    });
  });
}
