// A password login whose deadline passes once its credential is stored, before its answer: the
// caller is answered DEADLINE_EXCEEDED, and the login's next store call (the user's credential
// epoch read again) is refused at the deadline. No token of the credential went out, so it is
// withdrawn, as one refused there is (README "Audit trail"): the session ended, the user token
// disabled, beyond the call's deadline; the credential's event records the login canceled, and
// no session.ended or user_token.logout names a credential never handed out. So is the cookie
// session of a seed 003 exchange (disabled; its hand-off token left unused) and the refresh token
// of a seed 004 GET /jwt/refresh_token (revoked, no jwt_refresh_token.revoked).
import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { decodeJwt } from "jose";
import { basic, bearer, rest } from "../support/clients.js";
import { storesUnderTest, type TestServer, startTestServer } from "../support/server.js";
import { clientIdHeader, createAuthenticationToken, createJwtUser, jwtLogin, loginUserToken, password, signUp, uniqueEmail } from "../support/users.js";
import { holdAfter, recordWrites, story, until, withdrawn } from "./support.js";

const deadlineMs = 1500;

/** The seed 000 login, over REST or gRPC, with the deadline: the code its caller got. */
const sessionLogins: Array<[string, (server: TestServer, email: string) => Promise<string>]> = [
  [
    "POST /session",
    async (server, email) => {
      const res = await rest(server.url, "POST", "/session", { headers: { ...clientIdHeader, "connect-timeout-ms": String(deadlineMs) }, json: { account_type: "traditional", email, password } });
      return `${res.status} ${res.body.code ?? "ok"}`;
    },
  ],
  [
    "gRPC SessionService/CreateSession",
    async (server, email) => {
      try {
        await createClient(SessionService, createGrpcTransport({ baseUrl: server.url })).createSession({ accountType: "traditional", email, password }, { headers: clientIdHeader, timeoutMs: deadlineMs });
        return "ok";
      } catch (e) {
        return Code[ConnectError.from(e).code];
      }
    },
  ],
];

/**
 * A REST call made with the deadline, the next call of `target[method]` (its credential's write)
 * held once it has answered until the caller was answered: 504 DEADLINE_EXCEEDED.
 */
async function answeredPastDeadline<T extends object>(target: T, method: keyof T & string, call: () => ReturnType<typeof rest>): Promise<void> {
  const held = holdAfter(target, method);
  let res;
  try {
    res = await call();
  } finally {
    held.open();
    held.restore();
  }
  assert.equal(res.status, 504, res.text);
  assert.equal(res.body.code, "deadline_exceeded");
}

const deadlineExceeded: Record<string, string> = { "POST /session": "504 deadline_exceeded", "gRPC SessionService/CreateSession": "DeadlineExceeded" };

for (const store of storesUnderTest()) {
  describe(`a login, exchange or refresh token issue whose deadline passes once its credential is stored (${store})`, function () {
    this.timeout(60_000);
    let server: TestServer;
    before(async () => (server = await startTestServer({ store })));
    after(() => server?.close());

    for (const [name, login] of sessionLogins) {
      it(`${name}: answered DEADLINE_EXCEEDED; the session is withdrawn (ended) and session.started recorded canceled, no session.ended`, async () => {
        const email = uniqueEmail("late-session");
        const user = await signUp(server, email);
        const written = recordWrites(server);
        const held = holdAfter(server.tessera.store.sessions, "createThenSync");
        let answer: string;
        try {
          // Held once the session is stored until its caller has been answered at the deadline
          // (a gRPC client gives up at its own, a little before the server's: waited for too).
          answer = await login(server, email);
          await new Promise((r) => setTimeout(r, 200));
        } finally {
          held.open();
          held.restore();
        }
        assert.equal(answer, deadlineExceeded[name]);
        assert.equal(written.sessions.length, 1, "the login stored its session");
        const [id] = written.sessions;
        await until("the session is ended", () => withdrawn.session(server, id!));
        assert.deepEqual(await story(server, user.id, 3), ["signup success", "login success", "session.started canceled"]);
      });
    }

    it("POST /auth/login (seed 002): answered DEADLINE_EXCEEDED; the user token is withdrawn (disabled) and user_token.login recorded canceled, no user_token.logout", async () => {
      const email = uniqueEmail("late-token");
      const user = await signUp(server, email);
      const written = recordWrites(server);
      await answeredPastDeadline(server.tessera.store.userTokens, "createThenSync", () => rest(server.url, "POST", "/auth/login", { headers: { ...basic(email, password), "connect-timeout-ms": String(deadlineMs) } }));
      assert.equal(written.userTokens.length, 1, "the login stored its user token");
      const [hash] = written.userTokens;
      await until("the user token is disabled", () => withdrawn.userToken(server, hash!));
      assert.deepEqual(await story(server, user.id, 3), ["signup success", "login success", "user_token.login canceled"]);
    });

    it("GET /api/authenticationtoken/{token}/user (seed 003): answered DEADLINE_EXCEEDED; the cookie session is withdrawn (disabled) and cookie_session.started recorded canceled; the token is left unused, and exchanges once", async () => {
      const email = uniqueEmail("late-cookie");
      const user = await signUp(server, email);
      const userToken = await loginUserToken(server, email);
      const token = await createAuthenticationToken(server, bearer(userToken));
      const written = recordWrites(server);
      await answeredPastDeadline(server.tessera.store.userTokens, "create", () => rest(server.url, "GET", `/api/authenticationtoken/${token}/user`, { headers: { "connect-timeout-ms": String(deadlineMs) } }));
      assert.equal(written.userTokens.length, 1, "the exchange stored its cookie session");
      const [hash] = written.userTokens;
      await until("the cookie session is disabled", () => withdrawn.userToken(server, hash!));
      assert.deepEqual(await story(server, user.id, 1, ["cookie_session.started", "cookie_session.ended"]), ["cookie_session.started canceled"]);
      const unused = await rest(server.url, "GET", `/api/authenticationtoken/${token}`, { headers: bearer(userToken) });
      assert.equal(unused.status, 200, unused.text);
      const retried = await rest(server.url, "GET", `/api/authenticationtoken/${token}/user`);
      assert.equal(retried.status, 200, retried.text);
      assert.equal(retried.body._id, user.id);
    });

    it("GET /jwt/refresh_token (seed 004): answered DEADLINE_EXCEEDED; the refresh token is withdrawn (revoked) and jwt_refresh_token.issued recorded canceled, no jwt_refresh_token.revoked", async () => {
      const access = await jwtLogin(server, await createJwtUser(server));
      const userId = decodeJwt(access).sub!;
      const written = recordWrites(server);
      await answeredPastDeadline(server.tessera.store.jwtRefreshTokens, "create", () => rest(server.url, "GET", "/jwt/refresh_token", { headers: { ...bearer(access), "connect-timeout-ms": String(deadlineMs) } }));
      assert.equal(written.jwtRefreshTokens.length, 1, "the call stored its refresh token");
      const [jti] = written.jwtRefreshTokens;
      await until("the refresh token is revoked", () => withdrawn.jwtRefreshToken(server, jti!));
      assert.deepEqual(await story(server, userId, 1, ["jwt_refresh_token.issued", "jwt_refresh_token.revoked"]), ["jwt_refresh_token.issued canceled"]);
    });
  });
}
