// A login's lock and what passes it, through real clients (README "Login protection"): once a
// lock has passed, one attempt is let through and checked, and it locks at once, whatever its
// outcome, for twice as long as the window's last failure locked it (up to the window): a failure
// let through doubles the next lock, a right password does not. So a window checks the limit's
// guesses and one more each time a lock in it passes.
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { expectCode, expectOk } from "../support/api.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { password, uniqueEmail } from "../support/users.js";
import { expectRetryLater, loginApi, wrongPassword, type LoginApi } from "./api.js";

const locked = "too many failed logins; try again later";
const wrong = "invalid login or password";

for (const store of storesUnderTest()) {
  for (const transport of ["rest-h1", "grpc"] as const) {
    describe(`login protection: a lock that passes lets one attempt through, which locks twice as long as the window's last failure did (${store}, ${transport})`, function () {
      this.timeout(60_000);
      const clock = new ManualClock(Date.now());
      let server: TestServer;
      let api: LoginApi;
      before(async () => {
        server = await startTestServer({
          store,
          clock,
          env: { TESSERA_LOGIN_MAX_FAILURES: "2", TESSERA_LOGIN_LOCKOUT_SECONDS: "60", TESSERA_LOGIN_WINDOW_SECONDS: "900" },
        });
        api = loginApi(transport, server.url);
      });
      after(async () => {
        api?.close();
        await server?.close();
      });

      it("2 failures lock 60 s; a right password let through (200) locks 120 s, and so does the wrong one let through next (401); the next wrong one 240 s: five guesses checked in one window", async () => {
        const email = uniqueEmail("growth");
        expectOk(await api.signUp(email, password), 201);
        for (let i = 0; i < 2; i++) expectCode(await api.logIn(email, wrongPassword), "unauthenticated", wrong, "INVALID_CREDENTIALS");
        assert.equal(expectRetryLater(await api.logIn(email, password), "resource_exhausted", locked, "LOGIN_LOCKED"), 60);
        clock.advance(60_000);
        expectOk(await api.logIn(email, password));
        assert.equal(expectRetryLater(await api.logIn(email, wrongPassword), "resource_exhausted", locked, "LOGIN_LOCKED"), 120);
        clock.advance(120_000);
        // The window's last failure still locked for 60 s: twice that.
        expectCode(await api.logIn(email, wrongPassword), "unauthenticated", wrong, "INVALID_CREDENTIALS");
        assert.equal(expectRetryLater(await api.logIn(email, password), "resource_exhausted", locked, "LOGIN_LOCKED"), 120);
        clock.advance(120_000);
        expectCode(await api.logIn(email, wrongPassword), "unauthenticated", wrong, "INVALID_CREDENTIALS");
        assert.equal(expectRetryLater(await api.logIn(email, password), "resource_exhausted", locked, "LOGIN_LOCKED"), 240);
      });
    });
  }
}
