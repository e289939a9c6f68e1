// Token lifetimes, with an injected clock: expired and not-yet-valid tokens get 400 from
// GET /check with the reason, and stop working as credentials.
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { bearer, call, goodPassword, uniqueUser } from "./support.js";

for (const store of storesUnderTest()) {
  describe(`JWT lifetimes (${store})`, function () {
    const clock = new ManualClock(Date.parse("2030-01-01T00:00:00Z"));
    let server: TestServer;
    let user: string;
    before(async () => {
      server = await startTestServer({ store, clock, env: { TESSERA_ACCESS_TOKEN_TTL_SECONDS: "60", TESSERA_REFRESH_TOKEN_TTL_SECONDS: "3600" } });
      user = uniqueUser();
      assert.equal((await call(server.url, "POST", "/jwt/user", { user, pass: goodPassword })).status, 201);
    });
    after(async () => {
      await server?.close();
    });

    const login = async () => (await call(server.url, "GET", "/jwt/token", { user, pass: goodPassword })).text;
    const check = (token: string) => call(server.url, "GET", "/jwt/check", { access_token: token }, { style: "query" });

    it("an access token works until exp, then GET /check says it expired (400) and it is no credential", async () => {
      const start = clock.now().getTime();
      const token = await login();
      clock.set(start + 59_000);
      assert.equal((await check(token)).status, 200);
      clock.set(start + 60_000);
      const res = await check(token);
      assert.equal(res.status, 400);
      assert.match(res.body.message, /expired/);
      assert.equal((await call(server.url, "GET", "/jwt/user", {}, { headers: bearer(token) })).status, 204);
      assert.equal((await call(server.url, "GET", "/jwt/refresh_token", {}, { headers: bearer(token) })).status, 401);
      clock.set(start);
    });

    it("a token whose nbf is ahead of the clock is not yet valid (400)", async () => {
      const start = clock.now().getTime();
      const token = await login();
      clock.set(start - 5_000);
      const res = await check(token);
      assert.equal(res.status, 400);
      assert.match(res.body.message, /not yet valid/);
      clock.set(start);
      assert.equal((await check(token)).status, 200);
      // Once verified (and remembered), the time checks still apply.
      clock.set(start - 5_000);
      assert.equal((await check(token)).status, 400);
      clock.set(start);
    });

    it("a refresh token works until its own exp; an expired one is 401, but its owner may still delete it", async () => {
      const start = clock.now().getTime();
      const access = await login();
      const refresh = (await call(server.url, "GET", "/jwt/refresh_token", {}, { headers: bearer(access) })).text;
      clock.set(start + 3_599_000);
      assert.equal((await call(server.url, "GET", "/jwt/token", { user: refresh })).status, 200);
      clock.set(start + 3_600_000);
      const res = await call(server.url, "GET", "/jwt/token", { user: refresh });
      assert.equal(res.status, 401);
      assert.match(res.body.message, /expired/);
      const fresh = await login();
      assert.equal((await call(server.url, "DELETE", "/jwt/refresh_token", { refresh_token: refresh }, { headers: bearer(fresh) })).status, 204);
      clock.set(start);
    });
  });
}
