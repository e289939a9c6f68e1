// A login (seed 000 POST /session, seed 002 POST /auth/login), a seed 003 exchange or a seed 004
// GET /jwt/refresh_token whose store fails once its credential is written, or as it is written
// (the write made, its answer lost: test/support/doubtful-writes.ts), before any token of it went
// out: the caller is answered 503 STORE_UNAVAILABLE, and the credential is withdrawn before that
// answer, as one whose deadline passed there is (login-deadline.test.ts): the session ended, the
// user token or cookie session disabled, the refresh token revoked. None is left live that nobody
// received, to count against its user's cap, be listed, or be used by whoever reads the store. Its
// event records the `error` (reason STORE_UNAVAILABLE, as its answer), and no end event names a
// credential never handed out. A withdrawal that fails too is logged, without secrets, and the
// store's error still answers.
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { basic, bearer, rest } from "../support/clients.js";
import { assertStoreUnavailable } from "../support/error-details.js";
import { landsThenFails, landsThenFailsAfter } from "../support/doubtful-writes.js";
import { storesUnderTest, type TestServer, startTestServer } from "../support/server.js";
import { clientIdHeader, createAuthenticationToken, createJwtUser, jwtLogin, loginUserToken, password, signUp, uniqueEmail } from "../support/users.js";
import { recordWrites, story, withdrawn } from "./support.js";

/** A store failure a test makes on `server`: how it is named, and how it is set up. */
type Failure = [string, (server: TestServer) => void];

/** The user's read again (its credential epoch), once `method` of `target` has stored the credential, answered 503. */
const userReadAgainFails = <T extends object>(target: (server: TestServer) => T, method: keyof T & string): Failure => [
  "the user's read again once it is stored answered 503",
  (server) => landsThenFailsAfter(target(server), method, server.tessera.store.users, "findById"),
];

const logIn = (server: TestServer, email: string) =>
  rest(server.url, "POST", "/session", { headers: clientIdHeader, json: { account_type: "traditional", email, password } });

for (const store of storesUnderTest()) {
  describe(`a login, exchange or refresh token issue whose store fails once its credential is written (${store})`, function () {
    this.timeout(60_000);
    let server: TestServer;
    before(async () => (server = await startTestServer({ store })));
    after(() => server?.close());

    const sessionFailures: Failure[] = [
      ["its session's write made, then answered 503", (s) => landsThenFails(s.tessera.store.sessions, "createThenSync")],
      ["its lastLoginAt written, then answered 503", (s) => landsThenFails(s.tessera.store.users, "setLastLogin")],
      userReadAgainFails((s) => s.tessera.store.sessions, "createThenSync"),
    ];
    for (const [name, fail] of sessionFailures) {
      it(`POST /session (seed 000), ${name}: 503 STORE_UNAVAILABLE; the session is withdrawn (ended) and session.started recorded error, no session.ended`, async () => {
        const email = uniqueEmail("failed-session");
        const user = await signUp(server, email);
        const written = recordWrites(server);
        fail(server);
        assertStoreUnavailable(await logIn(server, email));
        assert.equal(written.sessions.length, 1, "the login stored its session");
        assert.equal(await withdrawn.session(server, written.sessions[0]!), true, "the session is ended");
        assert.deepEqual(await story(server, user.id, 3), ["signup success", "login success", "session.started error STORE_UNAVAILABLE"]);
      });
    }

    it("POST /session (seed 000), its session's write made, then answered 503, and its withdrawal refused too: 503 STORE_UNAVAILABLE all the same, the withdrawal's failure logged without a secret", async () => {
      const email = uniqueEmail("failed-withdrawal");
      await signUp(server, email);
      const written = recordWrites(server);
      const sessions = server.tessera.store.sessions;
      const endThenSync = sessions.endThenSync;
      sessions.endThenSync = async () => {
        sessions.endThenSync = endThenSync;
        throw new Error("withdrawal refused");
      };
      landsThenFails(sessions, "createThenSync");
      const logged = server.logs.length;
      try {
        assertStoreUnavailable(await logIn(server, email));
      } finally {
        sessions.endThenSync = endThenSync;
      }
      assert.equal(written.sessions.length, 1, "the login stored its session");
      const warned = server.logs.slice(logged).map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === "a credential no answer handed out was not withdrawn");
      assert.deepEqual(warned.map((line) => [line.level, line.error]), [["warn", "withdrawal refused"]]);
      // The failure's message and the call's ids only: no token, hash or password.
      assert.deepEqual(Object.keys(warned[0]!).sort(), ["error", "level", "msg", "requestId", "span_id", "time", "trace_id"]);
    });

    for (const [name, fail] of [
      ["its user token's write made, then answered 503", (s) => landsThenFails(s.tessera.store.userTokens, "createThenSync")],
      userReadAgainFails((s) => s.tessera.store.userTokens, "createThenSync"),
    ] satisfies Failure[]) {
      it(`POST /auth/login (seed 002), ${name}: 503 STORE_UNAVAILABLE; the user token is withdrawn (disabled) and user_token.login recorded error, no user_token.logout`, async () => {
        const email = uniqueEmail("failed-token");
        const user = await signUp(server, email);
        const written = recordWrites(server);
        fail(server);
        assertStoreUnavailable(await rest(server.url, "POST", "/auth/login", { headers: basic(email, password) }));
        assert.equal(written.userTokens.length, 1, "the login stored its user token");
        assert.equal(await withdrawn.userToken(server, written.userTokens[0]!), true, "the user token is disabled");
        assert.deepEqual(await story(server, user.id, 3), ["signup success", "login success", "user_token.login error STORE_UNAVAILABLE"]);
      });
    }

    it("GET /api/authenticationtoken/{token}/user (seed 003), its cookie session's write made, then answered 503: 503 STORE_UNAVAILABLE; the cookie session is withdrawn (disabled) and cookie_session.started recorded error, no cookie_session.ended; the token is unused", async () => {
      const email = uniqueEmail("failed-cookie");
      const user = await signUp(server, email);
      const userToken = await loginUserToken(server, email);
      const token = await createAuthenticationToken(server, bearer(userToken));
      const written = recordWrites(server);
      landsThenFails(server.tessera.store.userTokens, "create");
      assertStoreUnavailable(await rest(server.url, "GET", `/api/authenticationtoken/${token}/user`));
      assert.equal(written.userTokens.length, 1, "the exchange stored its cookie session");
      assert.equal(await withdrawn.userToken(server, written.userTokens[0]!), true, "the cookie session is disabled");
      assert.deepEqual(await story(server, user.id, 1, ["cookie_session.started", "cookie_session.ended"]), ["cookie_session.started error STORE_UNAVAILABLE"]);
      const unused = await rest(server.url, "GET", `/api/authenticationtoken/${token}`, { headers: bearer(userToken) });
      assert.equal(unused.status, 200, unused.text);
    });

    it("GET /api/authenticationtoken/{token}/user (seed 003), its consume of the token made, then answered 503: 503 STORE_UNAVAILABLE, and no cookie session stored", async () => {
      const email = uniqueEmail("failed-cookie");
      await signUp(server, email);
      const token = await createAuthenticationToken(server, bearer(await loginUserToken(server, email)));
      const written = recordWrites(server);
      landsThenFails(server.tessera.store.authTokens, "consume");
      assertStoreUnavailable(await rest(server.url, "GET", `/api/authenticationtoken/${token}/user`));
      assert.equal(written.userTokens.length, 0, "the exchange stored no cookie session");
    });

    for (const [name, fail] of [
      ["its write made, then answered 503", (s) => landsThenFails(s.tessera.store.jwtRefreshTokens, "create")],
      userReadAgainFails((s) => s.tessera.store.jwtRefreshTokens, "create"),
    ] satisfies Failure[]) {
      it(`GET /jwt/refresh_token (seed 004), ${name}: 503 STORE_UNAVAILABLE; the refresh token is withdrawn (revoked) and jwt_refresh_token.issued recorded error, no jwt_refresh_token.revoked`, async () => {
        const access = await jwtLogin(server, await createJwtUser(server));
        const written = recordWrites(server);
        fail(server);
        assertStoreUnavailable(await rest(server.url, "GET", "/jwt/refresh_token", { headers: bearer(access) }));
        assert.equal(written.jwtRefreshTokens.length, 1, "the call stored its refresh token");
        assert.equal(await withdrawn.jwtRefreshToken(server, written.jwtRefreshTokens[0]!), true, "the refresh token is revoked");
        const types = ["jwt_refresh_token.issued", "jwt_refresh_token.revoked"];
        assert.deepEqual(await story(server, decodeJwt(access).sub!, 1, types), ["jwt_refresh_token.issued error STORE_UNAVAILABLE"]);
      });
    }
  });
}
