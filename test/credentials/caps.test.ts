// The caps on a user's live credentials (README "Caps"), through real clients on each store: a
// login past TESSERA_MAX_SESSIONS_PER_USER, TESSERA_MAX_JWT_REFRESH_TOKENS_PER_USER or
// TESSERA_MAX_USER_TOKENS_PER_USER ends the user's oldest credential, whose use then answers
// what an ended one answers, and the audit trail records it with reason CAP.
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { hashSecret } from "../../src/core/secrets.js";
import { auditApi, type AuditEventJson } from "../audit/api.js";
import { jwtApi } from "../jwt/api.js";
import { sessionApi } from "../session/api.js";
import { bearer, rest } from "../support/clients.js";
import { expectCode, expectOk, protocols } from "../support/api.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { admin, createAuthenticationToken, createJwtUser, jwtLogin, loginUserToken, password, sessionCookie, sessionCookieFrom, signUp, uniqueEmail } from "../support/users.js";
import { userTokenApi } from "../user-token/api.js";

const CAP = 2;
const client = { clientId: testClientId };

/** A seed 002 login (POST /auth/login with Basic credentials): the new user token. */
async function userTokenLogin(api: ReturnType<typeof userTokenApi>, login: string): Promise<string> {
  return expectOk(await api.login(undefined, { authorization: `Basic ${Buffer.from(`${login}:${password}`).toString("base64")}` })).token;
}

for (const store of storesUnderTest()) {
  describe(`caps on a user's live credentials on ${store}`, function () {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({
        store,
        // Without login protection: a burst of logins of one user would wait for attempt slots.
        env: {
          TESSERA_LOGIN_PROTECTION: "false",
          TESSERA_MAX_SESSIONS_PER_USER: `${CAP}`,
          TESSERA_MAX_JWT_REFRESH_TOKENS_PER_USER: `${CAP}`,
          TESSERA_MAX_USER_TOKENS_PER_USER: `${CAP}`,
          // MongoDB calls bounded by 10 s rather than 2 s: under load a burst of 20 logins on
          // FerretDB can outlast 2 s (STORE_UNAVAILABLE), which says nothing of which sessions end.
          ...(store === "mongo" && { TESSERA_STORE_TIMEOUT_MS: "10000" }),
        },
      });
    });
    after(async () => {
      await server?.close();
    });

    /** The user's events of `type` with reason CAP, as GET /v1/admin/audit-events lists them. */
    async function capEvents(userId: string, type: string): Promise<Array<Pick<AuditEventJson, "type" | "outcome" | "subject" | "reason" | "user_id">>> {
      const page = expectOk(await auditApi("rest", server.url).listAuditEvents({ user_id: userId, type }, admin));
      return page.events.filter((e) => e.reason === "CAP").map(({ type, outcome, subject, reason, user_id }) => ({ type, outcome, subject, reason, user_id }));
    }

    for (const protocol of protocols) {
      describe(`over ${protocol}`, () => {
        it(`a login past TESSERA_MAX_SESSIONS_PER_USER ends (deletes) the oldest session: its access and refresh tokens answer 401 SESSION_ENDED; session.ended, reason CAP`, async () => {
          const api = sessionApi(protocol, server.url);
          try {
            const email = uniqueEmail("cap");
            const user = await signUp(server, email);
            const login = async () => expectOk(await api.createSession({ account_type: "traditional", email, password }, client));
            const pairs = [await login(), await login(), await login()];
            const [first, ...kept] = pairs;
            expectCode(await api.getSession({ ...client, access: first!.access_token }), "unauthenticated", "the session has ended", "SESSION_ENDED");
            expectCode(await api.refreshSession({ refresh_token: first!.refresh_token }, { ...client, access: first!.access_token }), "unauthenticated", "the session has ended", "SESSION_ENDED");
            for (const pair of kept) expectOk(await api.getSession({ ...client, access: pair.access_token }));
            assert.deepEqual(await capEvents(user.id, "session.ended"), [
              { type: "session.ended", outcome: "success", subject: decodeJwt(first!.access_token).sid as string, reason: "CAP", user_id: user.id },
            ]);
          } finally {
            api.close();
          }
        });

        it("a login past TESSERA_MAX_SESSIONS_PER_USER deletes a logged-out session before any live one: the older live session still answers GET /session 200", async () => {
          const api = sessionApi(protocol, server.url);
          try {
            const email = uniqueEmail("cap");
            const user = await signUp(server, email);
            const login = async () => expectOk(await api.createSession({ account_type: "traditional", email, password }, client));
            const a = await login();
            const b = await login();
            expectOk(await api.deleteSession({ ...client, access: b.access_token }));
            const c = await login();
            for (const pair of [a, c]) expectOk(await api.getSession({ ...client, access: pair.access_token }));
            expectCode(await api.getSession({ ...client, access: b.access_token }), "unauthenticated", "the session has ended", "SESSION_ENDED");
            // The logged-out one was not live: its deletion ends nothing, and records nothing.
            assert.deepEqual(await capEvents(user.id, "session.ended"), []);
          } finally {
            api.close();
          }
        });

        it("a refresh token past TESSERA_MAX_JWT_REFRESH_TOKENS_PER_USER revokes the oldest: a refresh login with it answers 401 TOKEN_REVOKED, DELETE /jwt/refresh_token of it succeeds as of any revoked one; jwt_refresh_token.revoked, reason CAP", async () => {
          const api = jwtApi(protocol, server.url);
          try {
            const access = await jwtLogin(server, await createJwtUser(server));
            const userId = decodeJwt(access).sub!;
            const issue = async () => expectOk(await api.getRefreshToken({}, bearer(access))).text;
            const [first, ...kept] = [await issue(), await issue(), await issue()];
            expectCode(await api.getToken({ user: first! }), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
            for (const token of kept) expectOk(await api.getToken({ user: token }));
            expectOk(await api.deleteRefreshToken({ refresh_token: first! }, bearer(access)), 204);
            assert.deepEqual(await capEvents(userId, "jwt_refresh_token.revoked"), [
              { type: "jwt_refresh_token.revoked", outcome: "success", subject: decodeJwt(first!).jti!, reason: "CAP", user_id: userId },
            ]);
          } finally {
            api.close();
          }
        });

        it("user tokens and cookie sessions share TESSERA_MAX_USER_TOKENS_PER_USER: one past it logs out the oldest, which answers 401 TOKEN_REVOKED as a logged-out token; user_token.logout, reason CAP", async () => {
          const api = userTokenApi(protocol, server.url);
          try {
            const user = await signUp(server);
            const login = () => userTokenLogin(api, user.login);
            const first = await login();
            const second = await login();
            // A cookie session of the second: the first is logged out, and stays so.
            const cookie = await sessionCookie(server, second);
            expectCode(await api.bump(bearer(first)), "unauthenticated", "user token is disabled", "TOKEN_REVOKED");
            expectOk(await api.bump(bearer(second)));
            // One more login: the second (older than the cookie session) is logged out.
            const third = await login();
            expectCode(await api.logout(bearer(second)), "unauthenticated", "user token is disabled", "TOKEN_REVOKED");
            expectOk(await api.bump(bearer(third)));
            // The cookie session, made from the second, ended with it (as after its logout).
            const res = await rest(server.url, "GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${cookie}` } });
            assert.equal(res.status, 401, res.text);
            assert.equal((JSON.parse(res.text) as { message: string }).message, "session cookie is disabled");
            const ids = await Promise.all([first, second].map(async (secret) => (await server.tessera.store.userTokens.findByHashWithUser(hashSecret(secret)))!.token.id));
            assert.deepEqual(
              (await capEvents(user.id, "user_token.logout")).reverse(),
              ids.map((id) => ({ type: "user_token.logout", outcome: "success", subject: id, reason: "CAP", user_id: user.id })),
            );
          } finally {
            api.close();
          }
        });
      });
    }

    it("a cookie session made from the user's oldest token past TESSERA_MAX_USER_TOKENS_PER_USER logs out the oldest other one, never its own source: the cookie answers 200, the source 200, the other 401 TOKEN_REVOKED", async () => {
      const api = userTokenApi("rest", server.url);
      try {
        const user = await signUp(server);
        const first = await userTokenLogin(api, user.login);
        const second = await userTokenLogin(api, user.login);
        // The oldest, first, is the one the cookie session descends from: the cap takes the second.
        const cookie = await sessionCookie(server, first);
        const res = await rest(server.url, "GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${cookie}` } });
        assert.equal(res.status, 200, res.text);
        expectOk(await api.bump(bearer(first)));
        expectCode(await api.bump(bearer(second)), "unauthenticated", "user token is disabled", "TOKEN_REVOKED");
        const secondId = (await server.tessera.store.userTokens.findByHashWithUser(hashSecret(second)))!.token.id;
        assert.deepEqual(await capEvents(user.id, "user_token.logout"), [{ type: "user_token.logout", outcome: "success", subject: secondId, reason: "CAP", user_id: user.id }]);
      } finally {
        api.close();
      }
    });

    it(`a line of descent longer than TESSERA_MAX_USER_TOKENS_PER_USER lives whole: a user token and ${CAP + 1} cookie sessions, each made from the one before, all answer 200`, async () => {
      const api = userTokenApi("rest", server.url);
      try {
        const user = await signUp(server);
        const userToken = await userTokenLogin(api, user.login);
        const cookies: string[] = [];
        for (let i = 0; i <= CAP; i++) cookies.push(await sessionCookieFrom(server, i === 0 ? bearer(userToken) : { cookie: `tessera_session=${cookies[i - 1]}` }));
        for (const cookie of cookies) {
          const res = await rest(server.url, "GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${cookie}` } });
          assert.equal(res.status, 200, res.text);
        }
        expectOk(await api.bump(bearer(userToken)));
      } finally {
        api.close();
      }
    });

    it(`seed 003 authentication tokens count under no cap: ${2 * CAP + 1} made from one user token past TESSERA_MAX_USER_TOKENS_PER_USER all live, the oldest exchanged (200) as the newest`, async () => {
      const user = await signUp(server);
      const userToken = await loginUserToken(server, user.login);
      const tokens: string[] = [];
      for (let i = 0; i < 2 * CAP + 1; i++) tokens.push(await createAuthenticationToken(server, bearer(userToken)));
      for (const token of [tokens[0]!, tokens.at(-1)!]) {
        const res = await rest(server.url, "GET", `/api/authenticationtoken/${token}/user`);
        assert.equal(res.status, 200, res.text);
      }
    });

    it(`20 logins at once for one user leave ${store === "sqlite" ? "exactly" : "at least"} ${CAP} live sessions (MongoDB: perhaps one more, until the next login), every other one answering SESSION_ENDED`, async () => {
      const api = sessionApi("rest", server.url);
      const email = uniqueEmail("burst");
      await signUp(server, email);
      const pairs = await Promise.all(Array.from({ length: 20 }, async () => expectOk(await api.createSession({ account_type: "traditional", email, password }, client))));
      const answers = await Promise.all(pairs.map((p) => api.getSession({ ...client, access: p.access_token })));
      const live = answers.filter((a) => a.code === "ok").length;
      for (const a of answers.filter((x) => x.code !== "ok")) expectCode(a, "unauthenticated", "the session has ended", "SESSION_ENDED");
      if (store === "sqlite") assert.equal(live, CAP);
      else assert.ok(live === CAP || live === CAP + 1, `${live} live`);
      // The next login leaves exactly the cap: it reads all of them, and ends all but the newest.
      const next = expectOk(await api.createSession({ account_type: "traditional", email, password }, client));
      const after = await Promise.all([...pairs, next].map((p) => api.getSession({ ...client, access: p.access_token })));
      assert.equal(after.filter((a) => a.code === "ok").length, CAP);
      expectOk(after.at(-1)!);
    });
  });
}
