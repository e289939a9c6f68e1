// Seed 000 behaviour that needs a clock, concurrency or many attempts: expiry, reuse detection
// after the grace window, concurrent refreshes and sign-ups, lockout with 429, the cost of a
// failed login (the JWKS and key rotation: test/key). Run on each store; the protocol varies
// per case.
import assert from "node:assert/strict";
import argon2 from "argon2";
import { decodeJwt } from "jose";
import { ManualClock } from "../../src/core/clock.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { freshDatabases } from "../support/store.js";
import { spyOn } from "../support/spy.js";
import { expectCode, expectOk, protocols } from "../support/api.js";
import { password as goodPassword, uniqueEmail } from "../support/users.js";
import { sessionApi, type SessionApi, type TokenPair } from "./api.js";

const invalidLogin = "invalid login or password";
const locked = "too many failed logins; try again later";

/** Each store's databases for the file's servers, one after another: emptied between them. */
const databases = freshDatabases();

const client = { clientId: testClientId };

async function signUpAndLogin(api: SessionApi): Promise<{ email: string; pair: TokenPair }> {
  const email = uniqueEmail();
  expectOk(await api.createUser({ email, password: goodPassword }, client), 201);
  const res = await api.createSession({ account_type: "traditional", email, password: goodPassword }, client);
  expectOk(res);
  return { email, pair: res.data! };
}

for (const store of storesUnderTest()) {
  describe(`Session lifecycle on ${store}`, function () {
    const clock = new ManualClock(Date.now());
    let server: TestServer;
    before(async () => {
      server = await startTestServer({
        store,
        databases: databases[store],
        clock,
        env: { TESSERA_ACCESS_TOKEN_TTL_SECONDS: "60", TESSERA_REFRESH_GRACE_SECONDS: "10", TESSERA_LOGIN_MAX_FAILURES: "3", TESSERA_LOGIN_LOCKOUT_SECONDS: "30" },
      });
    });
    after(async () => {
      await server?.close();
    });

    for (const protocol of protocols) {
      it(`an access token never outlives its session: access_token_expires_in counts down to the session's end (${protocol})`, async () => {
        // The session (TESSERA_REFRESH_TOKEN_TTL_SECONDS) lives 120 s; an access token would live 900.
        const short = await startTestServer({ store, databases: databases[store], clock, env: { TESSERA_REFRESH_TOKEN_TTL_SECONDS: "120" } });
        const api = sessionApi(protocol, short.url);
        try {
          const { pair } = await signUpAndLogin(api);
          assert.equal(pair.access_token_expires_in, 120);
          const claims = decodeJwt(pair.access_token);
          assert.equal(claims.exp! - claims.iat!, 120);
          clock.advance(100_000);
          const creds = { ...client, access: pair.access_token };
          assert.equal(expectOk(await api.getSession(creds)).access_token_expires_in, 20);
          const refreshed = expectOk(await api.refreshSession({ refresh_token: pair.refresh_token }, creds));
          assert.equal(refreshed.access_token_expires_in, 20);
          assert.equal(decodeJwt(refreshed.access_token).exp, claims.exp);
          assert.equal(expectOk(await api.getSession({ ...client, access: refreshed.access_token })).access_token_expires_in, 20);
        } finally {
          api.close();
          await short.close();
        }
      });

      it(`an expired access token is accepted only by PUT /session (${protocol})`, async () => {
        const api = sessionApi(protocol, server.url);
        try {
          const { pair } = await signUpAndLogin(api);
          clock.advance(61_000);
          const creds = { ...client, access: pair.access_token };
          expectCode(await api.getSession(creds), "unauthenticated", "token expired", "TOKEN_EXPIRED");
          expectCode(await api.getUser(creds), "unauthenticated", "token expired", "TOKEN_EXPIRED");
          expectCode(await api.deleteSession(creds), "unauthenticated", "token expired", "TOKEN_EXPIRED");
          const refreshed = await api.refreshSession({ refresh_token: pair.refresh_token }, creds);
          expectOk(refreshed);
          const fresh = { ...client, access: refreshed.data!.access_token };
          const left = await api.getSession(fresh);
          expectOk(left);
          assert.equal(left.data!.access_token_expires_in, 60);
          clock.advance(20_000);
          assert.equal((await api.getSession(fresh)).data!.access_token_expires_in, 40);
        } finally {
          api.close();
        }
      });

      it(`an access token issued more than 60 s after the verifying clock's now (its iat ahead; it carries no nbf) is not yet valid, up to 60 s it is (${protocol})`, async () => {
        const api = sessionApi(protocol, server.url);
        const at = clock.now().getTime();
        try {
          const { pair } = await signUpAndLogin(api);
          const creds = { ...client, access: pair.access_token };
          assert.equal(decodeJwt(pair.access_token).nbf, undefined);
          // Another instance, its clock ahead, issued it: this one's clock is behind its iat.
          clock.set(at - 61_000);
          expectCode(await api.getSession(creds), "unauthenticated", "token issued in the future", "TOKEN_NOT_YET_VALID");
          expectCode(await api.getUser(creds), "unauthenticated", "token issued in the future", "TOKEN_NOT_YET_VALID");
          expectCode(await api.refreshSession({ refresh_token: pair.refresh_token }, creds), "unauthenticated", "token issued in the future", "TOKEN_NOT_YET_VALID");
          clock.set(at - 60_000);
          expectOk(await api.getSession(creds));
        } finally {
          clock.set(at);
          api.close();
        }
      });

      it(`a refresh retried within the grace window answers the same pair, access_token_expires_in what is left of its access token (${protocol})`, async () => {
        const api = sessionApi(protocol, server.url);
        try {
          const { pair } = await signUpAndLogin(api);
          const creds = { ...client, access: pair.access_token };
          const refreshed = expectOk(await api.refreshSession({ refresh_token: pair.refresh_token }, creds));
          assert.equal(refreshed.access_token_expires_in, 60);
          clock.advance(7_000);
          const retried = expectOk(await api.refreshSession({ refresh_token: pair.refresh_token }, creds));
          assert.equal(retried.access_token, refreshed.access_token);
          assert.equal(retried.access_token_expires_in, 53);
          assert.equal(expectOk(await api.getSession({ ...client, access: retried.access_token })).access_token_expires_in, 53);
        } finally {
          api.close();
        }
      });

      it(`reuse of a rotated refresh token after the grace window ends the whole session (${protocol})`, async () => {
        const api = sessionApi(protocol, server.url);
        try {
          const { pair: first } = await signUpAndLogin(api);
          const second = (await api.refreshSession({ refresh_token: first.refresh_token }, { ...client, access: first.access_token })).data!;
          clock.advance(11_000);
          // The thief replays the stolen, already rotated pair.
          expectCode(await api.refreshSession({ refresh_token: first.refresh_token }, { ...client, access: first.access_token }), "unauthenticated", "refresh token reuse detected: the session has ended", "REFRESH_TOKEN_REUSED");
          // The legitimate holder is logged out too: every token of the session is dead.
          expectCode(await api.getSession({ ...client, access: second.access_token }), "unauthenticated", "the session has ended", "SESSION_ENDED");
          expectCode(await api.refreshSession({ refresh_token: second.refresh_token }, { ...client, access: second.access_token }), "unauthenticated", "the session has ended", "SESSION_ENDED");
        } finally {
          api.close();
        }
      });
    }

    it("20 concurrent refreshes with one token: every one answers the same new pair; the session lives on with it (gRPC)", async () => {
      const api = sessionApi("grpc", server.url);
      try {
        const { pair } = await signUpAndLogin(api);
        const creds = { ...client, access: pair.access_token };
        const results = await Promise.all(Array.from({ length: 20 }, () => api.refreshSession({ refresh_token: pair.refresh_token }, creds)));
        const winner = expectOk(results[0]!);
        for (const r of results) assert.deepEqual(expectOk(r), winner);
        expectOk(await api.getSession({ ...client, access: winner.access_token }));
        expectOk(await api.refreshSession({ refresh_token: winner.refresh_token }, { ...client, access: winner.access_token }));
      } finally {
        api.close();
      }
    });

    it("20 concurrent refreshes over REST: every one answers the same new pair", async () => {
      const api = sessionApi("rest", server.url);
      const { pair } = await signUpAndLogin(api);
      const creds = { ...client, access: pair.access_token };
      const results = await Promise.all(Array.from({ length: 20 }, () => api.refreshSession({ refresh_token: pair.refresh_token }, creds)));
      const first = expectOk(results[0]!);
      for (const r of results) assert.deepEqual(expectOk(r), first);
    });

    it("20 concurrent sign-ups of one email: exactly one user (201), the rest 409", async () => {
      const api = sessionApi("connect", server.url);
      const email = uniqueEmail();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => api.createUser({ email: i % 2 ? email.toUpperCase() : email, password: goodPassword }, client)));
      assert.equal(results.filter((r) => r.code === "ok").length, 1);
      assert.equal(results.filter((r) => r.code === "already_exists").length, 19);
    });

    it("repeated failed logins lock the login: 429 with Retry-After, even for the right password, until the lockout ends", async () => {
      const rest = sessionApi("rest", server.url);
      const grpc = sessionApi("grpc", server.url);
      try {
        const email = uniqueEmail();
        expectOk(await rest.createUser({ email, password: goodPassword }, client), 201);
        const attempt = (api: SessionApi, password: string) => api.createSession({ account_type: "traditional", email, password }, client);
        for (let i = 0; i < 3; i++) expectCode(await attempt(rest, "wrong-password-xyz"), "unauthenticated", invalidLogin, "INVALID_CREDENTIALS");
        const limited = await attempt(rest, goodPassword);
        expectCode(limited, "resource_exhausted", locked, "LOGIN_LOCKED");
        // The clock stood still since the third failure: the whole first lockout is left.
        assert.equal(limited.headers.get("retry-after"), "30");
        const overGrpc = await attempt(grpc, goodPassword);
        expectCode(overGrpc, "resource_exhausted", locked, "LOGIN_LOCKED");
        assert.equal(overGrpc.headers.get("retry-after"), "30");
        clock.advance(31_000);
        expectOk(await attempt(rest, goodPassword));
        // Once the lockout has passed, one more attempt is let through, and it locks the login
        // for twice as long (60 s) before its password is checked. A success gives back only its
        // own attempt: the failures before it still count until the window passes, and the lock
        // stays (a lock only grows until it has passed).
        const after = await attempt(rest, goodPassword);
        expectCode(after, "resource_exhausted", locked, "LOGIN_LOCKED");
        assert.equal(after.headers.get("retry-after"), "60");
        clock.advance(60_000);
        expectOk(await attempt(rest, goodPassword));
      } finally {
        grpc.close();
      }
    });

    it("a further failure after a lockout doubles it", async () => {
      const api = sessionApi("connect", server.url);
      const email = uniqueEmail();
      expectOk(await api.createUser({ email, password: goodPassword }, client), 201);
      const attempt = (password: string) => api.createSession({ account_type: "traditional", email, password }, client);
      for (let i = 0; i < 3; i++) expectCode(await attempt("wrong-password-xyz"), "unauthenticated", invalidLogin, "INVALID_CREDENTIALS");
      clock.advance(31_000);
      expectCode(await attempt("wrong-password-xyz"), "unauthenticated", invalidLogin, "INVALID_CREDENTIALS");
      const limited = await attempt(goodPassword);
      expectCode(limited, "resource_exhausted", locked, "LOGIN_LOCKED");
      assert.equal(limited.headers.get("retry-after"), "60");
    });
  });

  describe(`A session's access tokens end with it on ${store}`, function () {
    // A session of 600 s, access tokens of 900 s.
    const clock = new ManualClock(Date.parse("2030-01-01T00:00:00.400Z"));
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store, databases: databases[store], clock, env: { TESSERA_ACCESS_TOKEN_TTL_SECONDS: "900", TESSERA_REFRESH_TOKEN_TTL_SECONDS: "600" } });
    });
    after(async () => {
      await server?.close();
    });

    for (const protocol of protocols) {
      it(`no access token expires after its session, from the login or a refresh (${protocol})`, async () => {
        const api = sessionApi(protocol, server.url);
        try {
          const start = clock.now().getTime();
          const sessionEnd = Math.floor((start + 600_000) / 1000);
          const { pair } = await signUpAndLogin(api);
          assert.equal(decodeJwt(pair.access_token).exp, sessionEnd);
          assert.equal(pair.access_token_expires_in, 600);
          clock.advance(300_000);
          const refreshed = expectOk(await api.refreshSession({ refresh_token: pair.refresh_token }, { ...client, access: pair.access_token }));
          assert.equal(decodeJwt(refreshed.access_token).exp, sessionEnd);
          assert.equal(refreshed.access_token_expires_in, 300);
          assert.equal(expectOk(await api.getSession({ ...client, access: refreshed.access_token })).access_token_expires_in, 300);
        } finally {
          api.close();
        }
      });
    }
  });

  describe(`Login cost on ${store}`, function () {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store, databases: databases[store] });
    });
    after(async () => {
      await server?.close();
    });

    // The same work whatever the login: timing cannot tell which emails exist. (The timings
    // themselves are a figure of bench/login-timing.ts, not an assertion.)
    it("an unknown email and a wrong password cost one argon2id verification each, at the configured parameters", async () => {
      const api = sessionApi("connect", server.url);
      const email = uniqueEmail();
      expectOk(await api.createUser({ email, password: goodPassword }, client), 201);
      const expected = { m: String(server.config.argon2MemoryKib), t: String(server.config.argon2Iterations), p: String(server.config.argon2Parallelism) };
      /** `$argon2id$v=19$m=..,t=..,p=..$salt$hash` -> its algorithm and cost parameters. */
      const costOf = (hash: string) => {
        const [, alg, , params] = hash.split("$");
        return { alg, ...Object.fromEntries(params!.split(",").map((kv) => kv.split("="))) };
      };
      for (const login of [email, uniqueEmail()]) {
        const verifies = spyOn(argon2, "verify");
        try {
          expectCode(await api.createSession({ account_type: "traditional", email: login, password: "wrong-password-xyz" }, client), "unauthenticated", invalidLogin, "INVALID_CREDENTIALS");
          assert.equal(verifies.calls.length, 1, login === email ? "wrong password" : "unknown email");
          const [hash, tried] = verifies.calls[0] as [string, string];
          assert.deepEqual(costOf(hash), { alg: "argon2id", ...expected });
          assert.equal(tried, "wrong-password-xyz");
        } finally {
          verifies.restore();
        }
      }
    });
  });
}
