// A password change or a deactivation ends everything derived from the old state, on every
// service: sessions (seed 000), user tokens (seed 002), cookie sessions and hand-off tokens
// (seed 003), refresh tokens (seed 004). An access JWT from before the change still verifies
// until it expires, but mints nothing: no refresh token, hand-off token, cookie session or
// further password change, and deactivates nothing. A login in flight during the change (held by a gate after it read
// the user) yields nothing that survives it, with the change made on another instance.
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { ManualClock } from "../../src/core/clock.js";
import { StoreUnavailableError } from "../../src/store/ports/errors.js";
import { expectCode, expectOk, protocols } from "../support/api.js";
import { basic, bearer, rest } from "../support/clients.js";
import { storesUnderTest, testClientId } from "../support/server.js";
import { admin, clientIdHeader, createAuthenticationToken, jwtRefreshToken, loginUserToken, otherPassword, password, sessionCookie, signUp, startSession, uniqueEmail } from "../support/users.js";
import { authenticationTokenApi, sessionCookieOf } from "../authentication-token/api.js";
import { jwtApi } from "../jwt/api.js";
import { sessionApi } from "../session/api.js";
import { userTokenApi } from "../user-token/api.js";
import { assertRefused as refused, gate, passwordLoginHolds, recordWrites, startServerPair, type ServerPair, type Written } from "./support.js";

const outdatedJwt = "the access token was issued before the user's last password change";
const outdatedCredential = "the credential was issued before the user's last password change or deactivation";

for (const store of storesUnderTest()) {
  describe(`Credentials end with a password change or deactivation on ${store}`, function () {
    this.timeout(60_000);
    let pair: ServerPair;
    before(async () => (pair = await startServerPair(store)));
    after(() => pair.close());

    for (const protocol of protocols) {
      it(`after PATCH /jwt/user an older access JWT verifies but mints nothing, and every other credential ends (${protocol})`, async () => {
        const { a, b } = pair;
        const jwt = jwtApi(protocol, a.url);
        const authTokens = authenticationTokenApi(protocol, a.url);
        const sessions = sessionApi(protocol, a.url);
        const userTokens = userTokenApi(protocol, a.url);
        try {
          const email = uniqueEmail("epoch");
          await signUp(a, email);
          const access = expectOk(await jwt.getToken({ user: email, pass: password })).text;
          assert.equal(decodeJwt(access).credential_epoch, 0);
          const session = expectOk(await sessions.createSession({ account_type: "traditional", email, password }, { clientId: testClientId }));
          const userToken = expectOk(await userTokens.login(undefined, basic(email, password))).token;
          const handOff = expectOk(await authTokens.createToken(bearer(userToken))).token;
          const exchanged = await authTokens.exchangeToken(expectOk(await authTokens.createToken(bearer(access))).token);
          expectOk(exchanged);
          const cookie = sessionCookieOf(exchanged.headers)!.value;
          const cookieHandOff = (await rest(a.url, "GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${cookie}` } })).body.token as string;

          // The change, on the other instance.
          expectOk(await jwtApi(protocol, b.url).changePassword({ pass: otherPassword }, bearer(access)));

          // The old access JWT still verifies (offline verifiers cannot be told either)...
          assert.equal(expectOk(await jwt.check({ access_token: access })).sub, decodeJwt(access).sub);
          // ...but mints nothing.
          expectCode(await jwt.getRefreshToken({}, bearer(access)), "unauthenticated", outdatedJwt, "TOKEN_REVOKED");
          expectCode(await jwt.changePassword({ pass: "a third long password" }, bearer(access)), "unauthenticated", outdatedJwt, "TOKEN_REVOKED");
          expectCode(await authTokens.createToken(bearer(access)), "unauthenticated", outdatedCredential, "TOKEN_REVOKED");
          // Nor does it deactivate the account the password change took back.
          expectCode(await jwt.deleteUser({}, bearer(access)), "unauthenticated", outdatedJwt, "TOKEN_REVOKED");
          // Everything issued before the change ends.
          expectCode(await sessions.getSession({ clientId: testClientId, access: session.access_token }), "unauthenticated", "the session has ended", "SESSION_ENDED");
          expectCode(await userTokens.bump(bearer(userToken)), "unauthenticated", "user token predates a password change", "TOKEN_REVOKED");
          expectCode(await authTokens.exchangeToken(handOff), "not_found", "authentication token not found (unknown, used or expired)", "TOKEN_NOT_FOUND");
          expectCode(await authTokens.exchangeToken(cookieHandOff), "not_found", "authentication token not found (unknown, used or expired)", "TOKEN_NOT_FOUND");
          // (The cookie is a credential on safe methods only: GET over REST.)
          const byCookie = await rest(a.url, "GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${cookie}` } });
          assert.equal(byCookie.status, 401, byCookie.text);
          assert.equal(byCookie.body.message, "session cookie predates a password change");

          // A fresh login mints again, under the new epoch.
          const fresh = expectOk(await jwt.getToken({ user: email, pass: otherPassword })).text;
          assert.equal(decodeJwt(fresh).credential_epoch, 1);
          expectOk(await jwt.getRefreshToken({}, bearer(fresh)));
          expectOk(await authTokens.createToken(bearer(fresh)));
        } finally {
          for (const api of [jwt, authTokens, sessions, userTokens]) api.close();
        }
      });
    }

    it("two PATCH /jwt/user at once with one access JWT: one changes the password, the other is 401 TOKEN_REVOKED", async () => {
      const { a } = pair;
      const email = uniqueEmail("twice");
      await signUp(a, email);
      const access = (await rest(a.url, "GET", `/jwt/token?${new URLSearchParams({ user: email, pass: password })}`)).text;
      // Both changes have passed the access check and hashed their password before either writes.
      const users = a.tessera.store.users;
      const update = users.updatePasswordHash;
      let arrivals = 0;
      const together = gate();
      let turn = Promise.resolve();
      users.updatePasswordHash = async (...args) => {
        if (++arrivals === 2) together.open();
        await together.pass();
        const mine = turn.then(() => update.apply(users, args));
        turn = mine.then(() => undefined, () => undefined);
        return mine;
      };
      try {
        const passwords = [otherPassword, "a third long password"];
        const results = await Promise.all(passwords.map((pass) => rest(a.url, "PATCH", "/jwt/user", { headers: bearer(access), json: { pass } })));
        assert.deepEqual(results.map((r) => r.status).sort(), [200, 401], results.map((r) => r.text).join("; "));
        const refused = results.find((r) => r.status === 401)!;
        assert.equal(refused.body.message, outdatedJwt);
        assert.equal(refused.body.details[0].debug.reason, "TOKEN_REVOKED");
        const winner = passwords[results.findIndex((r) => r.status === 200)]!;
        const login = async (pass: string) => (await rest(a.url, "GET", `/jwt/token?${new URLSearchParams({ user: email, pass })}`)).status;
        assert.equal(await login(winner), 200);
        assert.equal(await login(passwords.find((p) => p !== winner)!), 401);
      } finally {
        users.updatePasswordHash = update;
      }
    });

    it("two DELETE /jwt/user at once with one access JWT, one on each instance: one deactivates (204), the other is 401 USER_DEACTIVATED", async () => {
      const { a, b } = pair;
      const email = uniqueEmail("twice");
      await signUp(a, email);
      const access = (await rest(a.url, "GET", `/jwt/token?${new URLSearchParams({ user: email, pass: password })}`)).text;
      // Both have passed the access check before either writes.
      const together = gate();
      let arrivals = 0;
      const restores = [a, b].map((server) => {
        const users = server.tessera.store.users;
        const deactivate = users.deactivate;
        users.deactivate = async (...args) => {
          if (++arrivals === 2) together.open();
          await together.pass();
          return deactivate.apply(users, args);
        };
        return () => (users.deactivate = deactivate);
      });
      try {
        const results = await Promise.all([a, b].map((server) => rest(server.url, "DELETE", "/jwt/user", { headers: bearer(access) })));
        assert.deepEqual(results.map((r) => r.status).sort(), [204, 401], results.map((r) => r.text).join("; "));
        const refused = results.find((r) => r.status === 401)!;
        // The answer a DELETE after the deactivation gets.
        assert.equal(refused.body.message, "the token's user is deactivated");
        assert.equal(refused.body.details[0].debug.reason, "USER_DEACTIVATED");
        const deactivations = await rest(a.url, "GET", `/v1/admin/audit-events?${new URLSearchParams({ type: "user.deactivated" })}`, { headers: admin });
        assert.equal(deactivations.status, 200, deactivations.text);
        const outcomes = (deactivations.body.events as Array<{ outcome: string; user_id?: string }>).filter((e) => e.outcome === "success");
        assert.equal(outcomes.length, 1, deactivations.text);
      } finally {
        for (const restore of restores) restore();
        together.open();
      }
    });

    it("PATCH /jwt/user held before its write while DELETE /jwt/user deactivates the user on the other instance: 401 USER_DEACTIVATED, the password unchanged", async () => {
      const { a, b } = pair;
      const email = uniqueEmail("patchdelete");
      await signUp(a, email);
      const access = (await rest(a.url, "GET", `/jwt/token?${new URLSearchParams({ user: email, pass: password })}`)).text;
      const users = a.tessera.store.users;
      const update = users.updatePasswordHash;
      const held = gate();
      users.updatePasswordHash = async (...args) => {
        await held.pass();
        return update.apply(users, args);
      };
      try {
        const changing = rest(a.url, "PATCH", "/jwt/user", { headers: bearer(access), json: { pass: otherPassword } });
        await held.reached;
        const deleted = await rest(b.url, "DELETE", "/jwt/user", { headers: bearer(access) });
        assert.equal(deleted.status, 204, deleted.text);
        held.open();
        const changed = await changing;
        // The answer a PATCH after the deactivation gets.
        assert.equal(changed.status, 401, changed.text);
        assert.equal(changed.body.message, "the token's user is deactivated");
        assert.equal(changed.body.details[0].debug.reason, "USER_DEACTIVATED");
        const user = await a.tessera.store.users.findById((await a.tessera.store.users.findByLogin(email, email))!.id);
        assert.equal(user?.credentialEpoch, 1, "deactivated, the password unchanged");
      } finally {
        users.updatePasswordHash = update;
        held.open();
      }
    });

    describe("a call with an access JWT held after its credential check while DELETE /jwt/user deactivates the user on the other instance: the answer a call after it gets, 401 USER_DEACTIVATED", () => {
      const calls = [
        ["GET /jwt/refresh_token", (url: string, access: string) => rest(url, "GET", "/jwt/refresh_token", { headers: bearer(access) })],
        ["PATCH /jwt/user", (url: string, access: string) => rest(url, "PATCH", "/jwt/user", { headers: bearer(access), json: { pass: otherPassword } })],
        ["DELETE /jwt/user", (url: string, access: string) => rest(url, "DELETE", "/jwt/user", { headers: bearer(access) })],
      ] as const;
      for (const [name, call] of calls) {
        it(`${name} held before it reads the user again`, async () => {
          const { a, b } = pair;
          const email = uniqueEmail("heldjwt");
          await signUp(a, email);
          const access = (await rest(a.url, "GET", `/jwt/token?${new URLSearchParams({ user: email, pass: password })}`)).text;
          const users = a.tessera.store.users;
          const findById = users.findById;
          const held = gate();
          let reads = 0;
          // The first read is the access token's check; the call is held before the next.
          users.findById = async (...args) => {
            if (++reads === 2) await held.pass();
            return findById.apply(users, args);
          };
          try {
            const calling = call(a.url, access);
            await held.reached;
            const deleted = await rest(b.url, "DELETE", "/jwt/user", { headers: bearer(access) });
            assert.equal(deleted.status, 204, deleted.text);
            held.open();
            const res = await calling;
            assert.equal(res.status, 401, res.text);
            assert.equal(res.body.message, "the token's user is deactivated");
            assert.equal(res.body.details[0].debug.reason, "USER_DEACTIVATED");
            const after = await call(a.url, access);
            assert.equal(after.body.message, res.body.message, "a call after the deactivation");
          } finally {
            users.findById = findById;
            held.open();
          }
        });
      }

      it("GET /jwt/refresh_token held after it stored the refresh token: withdrawn", async () => {
        const { a, b } = pair;
        const email = uniqueEmail("heldjwt");
        await signUp(a, email);
        const access = (await rest(a.url, "GET", `/jwt/token?${new URLSearchParams({ user: email, pass: password })}`)).text;
        const tokens = a.tessera.store.jwtRefreshTokens;
        const create = tokens.create;
        const held = gate();
        tokens.create = async (...args) => {
          const made = await create.apply(tokens, args);
          await held.pass();
          return made;
        };
        try {
          const calling = rest(a.url, "GET", "/jwt/refresh_token", { headers: bearer(access) });
          await held.reached;
          const deleted = await rest(b.url, "DELETE", "/jwt/user", { headers: bearer(access) });
          assert.equal(deleted.status, 204, deleted.text);
          held.open();
          const res = await calling;
          assert.equal(res.status, 401, res.text);
          assert.equal(res.body.message, "the token's user is deactivated");
          assert.equal(res.body.details[0].debug.reason, "USER_DEACTIVATED");
        } finally {
          tokens.create = create;
          held.open();
        }
      });
    });

    it("GET /user held after its session's check while DELETE /jwt/user deactivates the user on the other instance: 401 SESSION_ENDED, as GET /session and GET /user after it", async () => {
      const { a, b } = pair;
      const email = uniqueEmail("heldgetuser");
      await signUp(a, email);
      const access = (await rest(a.url, "GET", `/jwt/token?${new URLSearchParams({ user: email, pass: password })}`)).text;
      const session = await rest(a.url, "POST", "/session", { headers: clientIdHeader, json: { account_type: "traditional", email, password } });
      assert.equal(session.status, 200, session.text);
      const headers = { ...clientIdHeader, ...bearer(session.body.access_token as string) };
      const users = a.tessera.store.users;
      const findById = users.findById;
      const held = gate();
      users.findById = async (...args) => {
        users.findById = findById;
        await held.pass();
        return findById.apply(users, args);
      };
      try {
        const getting = rest(a.url, "GET", "/user", { headers });
        await held.reached;
        const deleted = await rest(b.url, "DELETE", "/jwt/user", { headers: bearer(access) });
        assert.equal(deleted.status, 204, deleted.text);
        held.open();
        const res = await getting;
        assert.equal(res.status, 401, res.text);
        assert.equal(res.body.message, "the session has ended");
        assert.equal(res.body.details[0].debug.reason, "SESSION_ENDED");
        for (const path of ["/session", "/user"]) assert.deepEqual((await rest(a.url, "GET", path, { headers })).body, res.body, path);
      } finally {
        users.findById = findById;
        held.open();
      }
    });

    /**
     * PUT /session of a new session on b, held once (at the first call of `method` of b's store
     * `part`, before it is made) while `change` runs on a with an access JWT of the session's
     * user: the refresh is 401 SESSION_ENDED, and nothing of the session works on either instance.
     */
    async function refreshHeldWhile(part: "refreshTokens" | "sessions", method: string, change: (access: string) => Promise<void>): Promise<void> {
      const { a, b } = pair;
      const email = uniqueEmail("refreshchange");
      await signUp(a, email);
      const access = (await rest(a.url, "GET", `/jwt/token?${new URLSearchParams({ user: email, pass: password })}`)).text;
      const session = await rest(b.url, "POST", "/session", { headers: clientIdHeader, json: { account_type: "traditional", email, password } });
      assert.equal(session.status, 200, session.text);
      const target = b.tessera.store[part] as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      const original = target[method]!;
      const held = gate();
      target[method] = async (...args) => {
        target[method] = original;
        await held.pass();
        return original.apply(target, args);
      };
      const headers = { ...clientIdHeader, ...bearer(session.body.access_token as string) };
      try {
        const refreshing = rest(b.url, "PUT", "/session", { headers, json: { refresh_token: session.body.refresh_token } });
        await held.reached;
        await change(access);
        held.open();
        const refreshed = await refreshing;
        assert.equal(refreshed.status, 401, refreshed.text);
        assert.equal(refreshed.body.message, "the session has ended");
        assert.equal(refreshed.body.details[0].debug.reason, "SESSION_ENDED");
        for (const server of [a, b]) {
          assert.equal((await rest(server.url, "GET", "/session", { headers })).status, 401);
          assert.equal((await rest(server.url, "PUT", "/session", { headers, json: { refresh_token: session.body.refresh_token } })).status, 401);
        }
      } finally {
        target[method] = original;
        held.open();
      }
    }

    it("PUT /session held after its access token's check while the password changes on the other instance: 401 SESSION_ENDED, and nothing of the session works", () =>
      refreshHeldWhile("refreshTokens", "findByHash", async (access) => {
        const changed = await rest(pair.a.url, "PATCH", "/jwt/user", { headers: bearer(access), json: { pass: otherPassword } });
        assert.equal(changed.status, 200, changed.text);
      }));

    for (const [change, method, path, status] of [
      ["the password changes", "PATCH", "/jwt/user", 200],
      ["the user is deactivated", "DELETE", "/jwt/user", 204],
    ] as const) {
      it(`PUT /session held before it moves the session to its new access token while ${change} (${method} ${path}) on the other instance, whose ending of the user's sessions fails: 401 SESSION_ENDED, and nothing of the session works`, () =>
        refreshHeldWhile("sessions", "setAccessJti", async (access) => {
          // The change's end of the user's sessions fails (the change is answered as made all the
          // same): the session is left unended, refused by its epoch.
          const sessions = pair.a.tessera.store.sessions;
          const endAll = sessions.endAllForUser;
          sessions.endAllForUser = () => Promise.reject(new StoreUnavailableError("store unavailable"));
          try {
            const changed = await rest(pair.a.url, method, path, { headers: bearer(access), ...(method === "PATCH" && { json: { pass: otherPassword } }) });
            assert.equal(changed.status, status, changed.text);
          } finally {
            sessions.endAllForUser = endAll;
          }
        }));
    }

    describe("a login in flight while another instance changes the user", () => {
      const sessionLogin = (url: string, email: string) =>
        rest(url, "POST", "/session", { headers: clientIdHeader, json: { account_type: "traditional", email, password } });
      const userTokenLogin = (url: string, email: string) => rest(url, "POST", "/auth/login", { headers: basic(email, password) });

      /** Each login, and the audit event of the credential it writes (which records the refusal). */
      const logins = [
        ["POST /session", sessionLogin, "session.started"],
        ["POST /auth/login", userTokenLogin, "user_token.login"],
      ] as const;
      for (const [name, login, event] of logins) {
        /** What changes the user on the other instance, its status, and the refusal the login then gets (status, message, reason). */
        const changes = [
          ["the user is deactivated", (access: string) => rest(pair.b.url, "DELETE", "/jwt/user", { headers: bearer(access) }), 204, 403, "user is deactivated", "USER_DEACTIVATED"],
          ["the password changes", (access: string) => rest(pair.b.url, "PATCH", "/jwt/user", { headers: bearer(access), json: { pass: otherPassword } }), 200, 401, "invalid login or password", "INVALID_CREDENTIALS"],
        ] as const;
        for (const [change, make, status, code, message, reason] of changes) {
          for (const [where, hold] of passwordLoginHolds) {
            it(`${name} held ${where} while ${change}: ${code}, ${event} recorded as refused, and no credential survives`, async () => {
              const { a, b } = pair;
              const email = uniqueEmail("race");
              await signUp(a, email);
              const access = (await rest(b.url, "GET", `/jwt/token?${new URLSearchParams({ user: email, pass: password })}`)).text;
              const written = recordWrites(a);
              const gate = hold(a);
              const inFlight = login(a.url, email);
              await gate.reached;
              const made = await make(access);
              assert.equal(made.status, status, made.text);
              gate.release();
              const res = await inFlight;
              assert.equal(res.status, code, res.text);
              assert.equal(res.body.message, message);
              const events = await rest(a.url, "GET", `/v1/admin/audit-events?${new URLSearchParams({ user_id: decodeJwt(access).sub!, type: event })}`, { headers: admin });
              assert.equal(events.status, 200, events.text);
              assert.deepEqual(
                (events.body.events as Array<{ outcome: string; reason?: string }>).map(({ outcome, reason }) => ({ outcome, reason })),
                [{ outcome: "failure", reason }],
              );
              await assertNoLiveCredential(pair, written);
            });
          }
        }
      }

      it("PATCH /jwt/user whose ending of the old sessions and refresh tokens fails after the password is stored: 200, recorded a success, and no old credential works", async () => {
        const { a, b } = pair;
        const email = uniqueEmail("cascade");
        await signUp(a, email);
        const jwt = jwtApi("rest", a.url);
        const userTokens = userTokenApi("rest", a.url);
        try {
          const access = expectOk(await jwt.getToken({ user: email, pass: password })).text;
          const refresh = expectOk(await jwt.getRefreshToken({}, bearer(access))).text;
          const session = await rest(a.url, "POST", "/session", { headers: clientIdHeader, json: { account_type: "traditional", email, password } });
          assert.equal(session.status, 200, session.text);
          const userToken = expectOk(await userTokens.login(undefined, basic(email, password))).token;
          // The store fails every write of b's cascade: the password is stored, the old
          // sessions and refresh tokens are not ended.
          const { sessions, jwtRefreshTokens } = b.tessera.store;
          const endAll = sessions.endAllForUser;
          const revokeAll = jwtRefreshTokens.revokeAllForUser;
          sessions.endAllForUser = () => Promise.reject(new StoreUnavailableError("store unavailable"));
          jwtRefreshTokens.revokeAllForUser = () => Promise.reject(new StoreUnavailableError("store unavailable"));
          let changed;
          try {
            changed = await rest(b.url, "PATCH", "/jwt/user", { headers: bearer(access), json: { pass: otherPassword } });
          } finally {
            sessions.endAllForUser = endAll;
            jwtRefreshTokens.revokeAllForUser = revokeAll;
          }
          // The password changed: that is the answer, and what the trail records.
          assert.equal(changed.status, 200, changed.text);
          const events = await rest(a.url, "GET", `/v1/admin/audit-events?${new URLSearchParams({ user_id: decodeJwt(access).sub!, type: "password.changed" })}`, { headers: admin });
          assert.deepEqual((events.body.events as Array<{ outcome: string }>).map((e) => e.outcome), ["success"]);
          // Nothing from before the change works, ended or not.
          expectCode(await jwt.getToken({ user: refresh }), "unauthenticated", "refresh token issued before the last password change", "TOKEN_REVOKED");
          const check = await rest(a.url, "GET", "/session", { headers: { ...clientIdHeader, ...bearer(session.body.access_token as string) } });
          assert.equal(check.status, 401, check.text);
          const refreshed = await rest(a.url, "PUT", "/session", {
            headers: { ...clientIdHeader, ...bearer(session.body.access_token as string) },
            json: { refresh_token: session.body.refresh_token },
          });
          assert.equal(refreshed.status, 401, refreshed.text);
          expectCode(await userTokens.bump(bearer(userToken)), "unauthenticated", "user token predates a password change", "TOKEN_REVOKED");
          expectCode(await jwt.getToken({ user: email, pass: password }), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
          expectOk(await jwt.getToken({ user: email, pass: otherPassword }));
        } finally {
          jwt.close();
          userTokens.close();
        }
      });

      it("DELETE /jwt/user whose ending of the user's sessions, user tokens and refresh tokens fails after the deactivation is stored: 204, recorded a success, and no credential of the user works", async () => {
        const { a, b } = pair;
        const email = uniqueEmail("cascade");
        await signUp(a, email);
        const login = `/jwt/token?${new URLSearchParams({ user: email, pass: password })}`;
        const access = (await rest(a.url, "GET", login)).text;
        const refresh = await jwtRefreshToken(a, access);
        const session = await startSession(a, email);
        const userToken = await loginUserToken(a, email);
        const cookie = await sessionCookie(a, userToken);
        const handOff = await createAuthenticationToken(a, bearer(userToken));
        // The store fails every write of b's cascade: the deactivation is stored, the user's
        // sessions, user tokens, cookie sessions and refresh tokens are not ended.
        const { sessions, userTokens, jwtRefreshTokens } = b.tessera.store;
        const endAll = sessions.endAllForUser;
        const disableAll = userTokens.disableAllForUser;
        const revokeAll = jwtRefreshTokens.revokeAllForUser;
        const unavailable = () => Promise.reject(new StoreUnavailableError("store unavailable"));
        sessions.endAllForUser = unavailable;
        userTokens.disableAllForUser = unavailable;
        jwtRefreshTokens.revokeAllForUser = unavailable;
        let deleted;
        try {
          deleted = await rest(b.url, "DELETE", "/jwt/user", { headers: bearer(access) });
        } finally {
          sessions.endAllForUser = endAll;
          userTokens.disableAllForUser = disableAll;
          jwtRefreshTokens.revokeAllForUser = revokeAll;
        }
        // The user is deactivated: that is the answer, and what the trail records.
        assert.equal(deleted.status, 204, deleted.text);
        const events = await rest(a.url, "GET", `/v1/admin/audit-events?${new URLSearchParams({ user_id: decodeJwt(access).sub!, type: "user.deactivated" })}`, { headers: admin });
        assert.deepEqual((events.body.events as Array<{ outcome: string }>).map((e) => e.outcome), ["success"]);
        // No credential of the user works, ended or not, on either instance.
        for (const server of [a, b]) {
          refused(await rest(server.url, "DELETE", "/jwt/user", { headers: bearer(access) }), 401, "the token's user is deactivated", "USER_DEACTIVATED");
          refused(await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: refresh })}`), 403, "user is deactivated", "USER_DEACTIVATED");
          refused(await rest(server.url, "GET", login), 403, "user is deactivated", "USER_DEACTIVATED");
          const sessionHeaders = { ...clientIdHeader, ...bearer(session.access_token) };
          refused(await rest(server.url, "GET", "/session", { headers: sessionHeaders }), 401, "the session has ended", "SESSION_ENDED");
          refused(await rest(server.url, "PUT", "/session", { headers: sessionHeaders, json: { refresh_token: session.refresh_token } }), 401, "the session has ended", "SESSION_ENDED");
          refused(await rest(server.url, "POST", "/auth/bump", { headers: bearer(userToken) }), 401, "the user token's user does not exist or is deactivated", "USER_DEACTIVATED");
          refused(await rest(server.url, "GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${cookie}` } }), 401, "the session cookie's user does not exist or is deactivated", "USER_DEACTIVATED");
          const exchanged = await rest(server.url, "GET", `/api/authenticationtoken/${handOff}/user`);
          assert.equal(exchanged.status, 404, exchanged.text);
        }
      });

      it("POST /session with the new password while the change is still ending the old sessions: the new session lives on", async () => {
        const { a, b } = pair;
        const email = uniqueEmail("race");
        await signUp(a, email);
        const access = (await rest(b.url, "GET", `/jwt/token?${new URLSearchParams({ user: email, pass: password })}`)).text;
        const old = await rest(a.url, "POST", "/session", { headers: clientIdHeader, json: { account_type: "traditional", email, password } });
        assert.equal(old.status, 200, old.text);
        // Hold the change's cascade on b: the password is changed, its sessions not yet ended.
        const sessions = b.tessera.store.sessions;
        const endAll = sessions.endAllForUser;
        const cascade = gate();
        sessions.endAllForUser = async (...args) => {
          await cascade.pass();
          return endAll.apply(sessions, args);
        };
        try {
          const changing = rest(b.url, "PATCH", "/jwt/user", { headers: bearer(access), json: { pass: otherPassword } });
          await cascade.reached;
          const fresh = await rest(a.url, "POST", "/session", { headers: clientIdHeader, json: { account_type: "traditional", email, password: otherPassword } });
          assert.equal(fresh.status, 200, fresh.text);
          cascade.open();
          const changed = await changing;
          assert.equal(changed.status, 200, changed.text);
          const check = (token: string) => rest(a.url, "GET", "/session", { headers: { ...clientIdHeader, ...bearer(token) } });
          const oldCheck = await check(old.body.access_token as string);
          assert.equal(oldCheck.status, 401, oldCheck.text);
          const freshCheck = await check(fresh.body.access_token as string);
          assert.equal(freshCheck.status, 200, freshCheck.text);
        } finally {
          sessions.endAllForUser = endAll;
          cascade.open();
        }
      });
    });

    describe("instances whose clocks are 2 s apart (within what README, Clocks, allows)", () => {
      const behind = new ManualClock(Date.now());
      const ahead = new ManualClock(behind.now().getTime() + 2_000);
      let skewed: ServerPair;
      before(async () => (skewed = await startServerPair(store, {}, [ahead, behind])));
      after(() => skewed.close());

      for (const protocol of ["rest", "grpc"] as const) {
        it(`logins with the new password on the instance behind, while the change on the instance ahead is still ending the old credentials, live on: the session and the refresh token (${protocol})`, async () => {
          const { a, b } = skewed;
          const jwtOnA = jwtApi(protocol, a.url);
          const jwtOnB = jwtApi(protocol, b.url);
          const sessionsOnB = sessionApi(protocol, b.url);
          // Hold the change's cascade on a: the password is changed (its epoch moved), the old
          // sessions and refresh tokens not yet ended.
          const { sessions, jwtRefreshTokens } = a.tessera.store;
          const endAll = sessions.endAllForUser;
          const revokeAll = jwtRefreshTokens.revokeAllForUser;
          const cascade = gate();
          sessions.endAllForUser = async (...args) => {
            await cascade.pass();
            return endAll.apply(sessions, args);
          };
          jwtRefreshTokens.revokeAllForUser = async (...args) => {
            await cascade.pass();
            return revokeAll.apply(jwtRefreshTokens, args);
          };
          try {
            const email = uniqueEmail("skew");
            await signUp(b, email);
            const access = expectOk(await jwtOnA.getToken({ user: email, pass: password })).text;
            const oldRefresh = expectOk(await jwtOnA.getRefreshToken({}, bearer(access))).text;
            const old = expectOk(await sessionsOnB.createSession({ account_type: "traditional", email, password }, { clientId: testClientId }));
            const changing = jwtOnA.changePassword({ pass: otherPassword }, bearer(access));
            await cascade.reached;
            // Made with the new password, under the new epoch, on b's clock: 2 s before the change by a's.
            const session = expectOk(await sessionsOnB.createSession({ account_type: "traditional", email, password: otherPassword }, { clientId: testClientId }));
            const fresh = expectOk(await jwtOnB.getToken({ user: email, pass: otherPassword })).text;
            assert.equal(decodeJwt(fresh).credential_epoch, 1);
            const refresh = expectOk(await jwtOnB.getRefreshToken({}, bearer(fresh))).text;
            cascade.open();
            expectOk(await changing);
            expectOk(await sessionsOnB.getSession({ clientId: testClientId, access: session.access_token }));
            expectOk(await jwtOnB.getToken({ user: refresh }));
            // What the change outdated is ended all the same.
            expectCode(await sessionsOnB.getSession({ clientId: testClientId, access: old.access_token }), "unauthenticated", "the session has ended", "SESSION_ENDED");
            expectCode(await jwtOnB.getToken({ user: oldRefresh }), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
          } finally {
            sessions.endAllForUser = endAll;
            jwtRefreshTokens.revokeAllForUser = revokeAll;
            cascade.open();
            for (const api of [jwtOnA, jwtOnB, sessionsOnB]) api.close();
          }
        });
      }
    });
  });
}

/** Every session and user token written during the test was withdrawn: seen so from both instances. */
async function assertNoLiveCredential(pair: ServerPair, written: Written): Promise<void> {
  assert.equal(written.sessions.length + written.userTokens.length, 1, "the held login wrote its credential");
  for (const server of [pair.a, pair.b]) {
    for (const id of written.sessions) assert.ok((await server.tessera.store.sessions.findById(id))?.endedAt, "the session was ended");
    for (const hash of written.userTokens) assert.equal((await server.tessera.store.userTokens.findByHashWithUser(hash).then((f) => f?.token ?? null))?.enabled, false, "the user token was disabled");
  }
}
