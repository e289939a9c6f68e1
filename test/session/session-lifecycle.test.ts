// Seed 000 behaviour that needs a clock, concurrency or many attempts: expiry, reuse detection
// after the grace window, concurrent refreshes and sign-ups, lockout with 429, login timing,
// and the JWKS / key rotation. Run on each store; the protocol varies per case.
import assert from "node:assert/strict";
import { createLocalJWKSet, jwtVerify } from "jose";
import { ManualClock } from "../../src/core/clock.js";
import { startTestServer, storesUnderTest, testAdminToken, testClientId, type TestServer } from "../support/server.js";
import { rest } from "../support/clients.js";
import { expectCode, protocols } from "../support/api.js";
import { password as goodPassword, uniqueEmail } from "../support/users.js";
import { sessionApi, type SessionApi, type TokenPair } from "./api.js";

const client = { clientId: testClientId };

async function signUpAndLogin(api: SessionApi): Promise<{ email: string; pair: TokenPair }> {
  const email = uniqueEmail();
  expectCode(await api.createUser({ email, password: goodPassword }, client), "ok");
  const res = await api.createSession({ account_type: "traditional", email, password: goodPassword }, client);
  expectCode(res, "ok");
  return { email, pair: res.data! };
}

for (const store of storesUnderTest()) {
  describe(`Session lifecycle on ${store}`, function () {
    const clock = new ManualClock(Date.now());
    let server: TestServer;
    before(async () => {
      server = await startTestServer({
        store,
        clock,
        env: { TESSERA_ACCESS_TOKEN_TTL_SECONDS: "60", TESSERA_REFRESH_GRACE_SECONDS: "10", TESSERA_LOGIN_MAX_FAILURES: "3", TESSERA_LOGIN_LOCKOUT_SECONDS: "30" },
      });
    });
    after(async () => {
      await server?.close();
    });

    for (const protocol of protocols) {
      it(`an expired access token is accepted only by PUT /session (${protocol})`, async () => {
        const api = sessionApi(protocol, server.url);
        try {
          const { pair } = await signUpAndLogin(api);
          clock.advance(61_000);
          const creds = { ...client, access: pair.access_token };
          expectCode(await api.getSession(creds), "unauthenticated", /expired/);
          expectCode(await api.getUser(creds), "unauthenticated", /expired/);
          expectCode(await api.deleteSession(creds), "unauthenticated", /expired/);
          const refreshed = await api.refreshSession({ refresh_token: pair.refresh_token }, creds);
          expectCode(refreshed, "ok");
          const fresh = { ...client, access: refreshed.data!.access_token };
          const left = await api.getSession(fresh);
          expectCode(left, "ok");
          assert.equal(left.data!.access_token_expires_in, 60);
          clock.advance(20_000);
          assert.equal((await api.getSession(fresh)).data!.access_token_expires_in, 40);
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
          expectCode(await api.refreshSession({ refresh_token: first.refresh_token }, { ...client, access: first.access_token }), "unauthenticated", /reuse/);
          // The legitimate holder is logged out too: every token of the session is dead.
          expectCode(await api.getSession({ ...client, access: second.access_token }), "unauthenticated");
          expectCode(await api.refreshSession({ refresh_token: second.refresh_token }, { ...client, access: second.access_token }), "unauthenticated");
        } finally {
          api.close();
        }
      });
    }

    it("20 concurrent refreshes with one token: exactly one succeeds; the session lives on with the winner's tokens (gRPC)", async () => {
      const api = sessionApi("grpc", server.url);
      try {
        const { pair } = await signUpAndLogin(api);
        const creds = { ...client, access: pair.access_token };
        const results = await Promise.all(Array.from({ length: 20 }, () => api.refreshSession({ refresh_token: pair.refresh_token }, creds)));
        const wins = results.filter((r) => r.code === "ok");
        assert.equal(wins.length, 1, results.map((r) => `${r.code} ${r.message ?? ""}`).join("\n"));
        for (const r of results) if (r.code !== "ok") expectCode(r, "unauthenticated");
        const winner = wins[0].data!;
        expectCode(await api.getSession({ ...client, access: winner.access_token }), "ok");
        expectCode(await api.refreshSession({ refresh_token: winner.refresh_token }, { ...client, access: winner.access_token }), "ok");
      } finally {
        api.close();
      }
    });

    it("20 concurrent refreshes over REST: exactly one succeeds", async () => {
      const api = sessionApi("rest", server.url);
      const { pair } = await signUpAndLogin(api);
      const creds = { ...client, access: pair.access_token };
      const results = await Promise.all(Array.from({ length: 20 }, () => api.refreshSession({ refresh_token: pair.refresh_token }, creds)));
      assert.equal(results.filter((r) => r.code === "ok").length, 1);
      assert.equal(results.filter((r) => r.status === 401).length, 19);
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
        expectCode(await rest.createUser({ email, password: goodPassword }, client), "ok");
        const attempt = (api: SessionApi, password: string) => api.createSession({ account_type: "traditional", email, password }, client);
        for (let i = 0; i < 3; i++) expectCode(await attempt(rest, "wrong-password-xyz"), "unauthenticated");
        const limited = await attempt(rest, goodPassword);
        expectCode(limited, "resource_exhausted");
        const retryAfter = Number(limited.headers.get("retry-after"));
        assert.ok(retryAfter > 0 && retryAfter <= 30, `Retry-After ${retryAfter}`);
        const overGrpc = await attempt(grpc, goodPassword);
        expectCode(overGrpc, "resource_exhausted");
        assert.ok(Number(overGrpc.headers.get("retry-after")) > 0);
        clock.advance(31_000);
        expectCode(await attempt(rest, goodPassword), "ok");
        // A success clears the counter: the next single failure is a plain 401 again.
        expectCode(await attempt(rest, "wrong-password-xyz"), "unauthenticated");
      } finally {
        grpc.close();
      }
    });

    it("a further failure after a lockout doubles it", async () => {
      const api = sessionApi("connect", server.url);
      const email = uniqueEmail();
      expectCode(await api.createUser({ email, password: goodPassword }, client), "ok");
      const attempt = (password: string) => api.createSession({ account_type: "traditional", email, password }, client);
      for (let i = 0; i < 3; i++) await attempt("wrong-password-xyz");
      clock.advance(31_000);
      expectCode(await attempt("wrong-password-xyz"), "unauthenticated");
      const limited = await attempt(goodPassword);
      expectCode(limited, "resource_exhausted");
      const retryAfter = Number(limited.headers.get("retry-after"));
      assert.ok(retryAfter > 30 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      clock.advance(61_000);
    });

    it("GET /.well-known/jwks.json verifies access tokens offline; rotation keeps the old key", async () => {
      const api = sessionApi("rest", server.url);
      const { pair } = await signUpAndLogin(api);
      const jwks1 = await rest(server.url, "GET", "/.well-known/jwks.json");
      assert.equal(jwks1.status, 200);
      assert.equal(jwks1.headers.get("cache-control"), "public, max-age=300");
      for (const k of jwks1.body.keys) {
        assert.equal(k.use, "sig");
        assert.equal(k.alg, "EdDSA");
        assert.ok(typeof k.kid === "string");
        assert.equal(k.d, undefined, "no private key material");
      }
      const opts = { audience: testClientId, currentDate: clock.now() };
      await jwtVerify(pair.access_token, createLocalJWKSet(jwks1.body), opts);

      assert.equal((await rest(server.url, "POST", "/v1/admin/keys:rotate", { json: {} })).status, 401);
      const rotated = await rest(server.url, "POST", "/v1/admin/keys:rotate", { json: {}, headers: { authorization: `Bearer ${testAdminToken}` } });
      assert.equal(rotated.status, 200, rotated.text);
      const jwks2 = await rest(server.url, "GET", "/.well-known/jwks.json");
      assert.equal(jwks2.body.keys[0].kid, rotated.body.kid);
      assert.equal(jwks2.body.keys.length, jwks1.body.keys.length + 1);
      // The old token still verifies (offline and on the server); new tokens use the new key.
      await jwtVerify(pair.access_token, createLocalJWKSet(jwks2.body), opts);
      expectCode(await api.getSession({ ...client, access: pair.access_token }), "ok");
      const again = await api.createSession({ account_type: "traditional", email: (await signUpAndLogin(api)).email, password: goodPassword }, client);
      const { protectedHeader } = await jwtVerify(again.data!.access_token, createLocalJWKSet(jwks2.body), opts);
      assert.equal(protectedHeader.kid, rotated.body.kid);
    });
  });

  describe(`Login timing on ${store}`, function () {
    this.timeout(60_000);
    let server: TestServer;
    before(async () => {
      // Realistic-ish cost so argon2 dominates; no lockout so every attempt runs the hash.
      server = await startTestServer({ store, env: { TESSERA_LOGIN_PROTECTION: "false", TESSERA_ARGON2_MEMORY_KIB: "8192", TESSERA_ARGON2_ITERATIONS: "2" } });
    });
    after(async () => {
      await server?.close();
    });

    it("an unknown email and a wrong password take about the same time (medians within 20%)", async () => {
      const api = sessionApi("connect", server.url);
      const email = uniqueEmail();
      expectCode(await api.createUser({ email, password: goodPassword }, client), "ok");
      const time = async (login: string) => {
        const t = process.hrtime.bigint();
        const res = await api.createSession({ account_type: "traditional", email: login, password: "wrong-password-xyz" }, client);
        expectCode(res, "unauthenticated");
        return Number(process.hrtime.bigint() - t) / 1e6;
      };
      for (let i = 0; i < 3; i++) await time(uniqueEmail()); // warm-up
      const known: number[] = [];
      const unknown: number[] = [];
      for (let i = 0; i < 15; i++) {
        known.push(await time(email));
        unknown.push(await time(uniqueEmail()));
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      const ratio = median(unknown) / median(known);
      assert.ok(ratio > 0.8 && ratio < 1.25, `unknown/known median ratio ${ratio.toFixed(2)} (${median(unknown).toFixed(1)} ms vs ${median(known).toFixed(1)} ms)`);
    });
  });
}
