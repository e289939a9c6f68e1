// A refused login's Retry-After is the time its lock has left when the refusal is answered, not
// when the attempt began: a store slow to answer (MongoDB under load, its connection pool busy)
// does not make it longer. Shown behind a TCP proxy (support/holding-proxy.ts) that holds the
// reservation's read of the login counters while the test's clock moves on.
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { expectCode, expectOk, restOutcome } from "../support/api.js";
import { rest } from "../support/clients.js";
import { behindHoldingProxy, type HoldingProxy } from "../support/holding-proxy.js";
import { storesUnderTest, type TestServer } from "../support/server.js";
import { clientIdHeader, password, uniqueEmail } from "../support/users.js";
import { expectRetryLater, wrongPassword } from "./api.js";

const locked = "too many failed logins; try again later";

for (const store of storesUnderTest().filter((s) => s === "mongo")) {
  describe(`login protection: Retry-After is measured when the refusal is answered (${store})`, function () {
    this.timeout(60_000);
    const clock = new ManualClock(Date.now());
    let proxy: HoldingProxy;
    let server: TestServer;
    behindHoldingProxy(
      { clock, env: { TESSERA_STORE_TIMEOUT_MS: "15000", TESSERA_LOGIN_MAX_FAILURES: "2", TESSERA_LOGIN_LOCKOUT_SECONDS: "60" } },
      (p, s) => ([proxy, server] = [p, s]),
    );

    const logIn = async (email: string, pass: string) =>
      restOutcome(await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password: pass }, headers: clientIdHeader }));

    it("a login locked 60 s whose refusal the store answers 5 s after the attempt began: Retry-After 55", async () => {
      const email = uniqueEmail("slow-store");
      expectOk(await rest(server.url, "POST", "/user", { json: { email, password }, headers: clientIdHeader }).then(restOutcome), 201);
      for (let i = 0; i < 2; i++) expectCode(await logIn(email, wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
      proxy.hold = ["find\0", "login_attempts"];
      const refusal = logIn(email, password);
      await proxy.held();
      clock.advance(5_000);
      proxy.release();
      assert.equal(expectRetryLater(await refusal, "resource_exhausted", locked, "LOGIN_LOCKED"), 55);
    });
  });
}
