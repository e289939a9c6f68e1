// How many store operations one credential check makes, read from the server's per-operation
// store metrics (tessera_store_operation_duration_seconds, one sample per call through the
// instrumented store). A user token check (seed 002's bearer token) and a cookie session check
// (seed 003's `tessera_session`) read the token and its user's standing in one store call
// (UserTokenStore.findByHashWithUser), as a session check does (SessionStore.findWithUser); a
// cookie session then reads the credential it came from (a user token, here), which it must not
// outlive (README, "Cookie sessions").
// A hand-off token (seed 003's GET /api/authenticationtoken) is made from the user's standing as
// that check read it: the user is read once.
// Counts only, never times.
import assert from "node:assert/strict";
import { bearer, rest } from "../support/clients.js";
import { scrape, type Families } from "../support/metrics.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { clientIdHeader, createJwtUser, jwtLogin, loginUserToken, sessionCookie, signUp, startSession, uniqueEmail } from "../support/users.js";

const cookie = (value: string) => ({ cookie: `tessera_session=${value}` });

/** Store calls made so far, by operation ("port.method"); audit events left out (each call records its own). */
function storeCalls(families: Families): Map<string, number> {
  const calls = new Map<string, number>();
  for (const line of (families.text ?? "").split("\n")) {
    const m = /^tessera_store_operation_duration_seconds_count\{(.*)\} (\S+)$/.exec(line);
    const operation = m && /operation="([^"]+)"/.exec(m[1]!)?.[1];
    if (!operation || operation.startsWith("auditEvents.")) continue;
    calls.set(operation, (calls.get(operation) ?? 0) + Number(m[2]));
  }
  return calls;
}

for (const store of storesUnderTest()) {
  describe(`store calls of one credential check on ${store}`, function () {
    this.timeout(30_000);
    let server: TestServer;
    before(async () => (server = await startTestServer({ store })));
    after(() => server.close());

    /** The store calls `act` makes, by operation (those it makes none of left out). */
    async function callsOf(act: () => Promise<void>): Promise<Record<string, number>> {
      const before = storeCalls(await scrape(`${server.url}/metrics`));
      await act();
      const after = storeCalls(await scrape(`${server.url}/metrics`));
      const made: Record<string, number> = {};
      for (const [operation, n] of after) if (n !== (before.get(operation) ?? 0)) made[operation] = n - (before.get(operation) ?? 0);
      return made;
    }

    it("a user token check reads the token and its user in one call (POST /auth/bump)", async () => {
      const email = uniqueEmail("calls");
      await signUp(server, email);
      const token = await loginUserToken(server, email);
      // The first use records the token's last use; the second, within the interval, does not.
      assert.equal((await rest(server.url, "POST", "/auth/bump", { headers: bearer(token) })).status, 200);
      const made = await callsOf(async () => {
        const res = await rest(server.url, "POST", "/auth/bump", { headers: bearer(token) });
        assert.equal(res.status, 200, res.text);
      });
      assert.deepEqual(made, { "userTokens.findByHashWithUser": 1, "users.setLastLogin": 1 });
    });

    it("a cookie session check reads the session and its user in one call, and the user token it came from in another (POST /auth/logout with the cookie)", async () => {
      const email = uniqueEmail("calls");
      await signUp(server, email);
      const value = await sessionCookie(server, await loginUserToken(server, email));
      // A first use records its last use (GET /api/authenticationtoken takes the cookie).
      assert.equal((await rest(server.url, "GET", "/api/authenticationtoken", { headers: cookie(value) })).status, 200);
      const made = await callsOf(async () => {
        const res = await rest(server.url, "POST", "/auth/logout", { headers: cookie(value) });
        assert.equal(res.status, 200, res.text);
      });
      assert.deepEqual(made, { "userTokens.findByHashWithUser": 1, "userTokens.findById": 1, "userTokens.disable": 1 });
    });

    /** The store calls of one GET /api/authenticationtoken with `headers` (made twice: the first use records a last use). */
    async function handOffCalls(headers: Record<string, string>): Promise<Record<string, number>> {
      assert.equal((await rest(server.url, "GET", "/api/authenticationtoken", { headers })).status, 200);
      return callsOf(async () => {
        const res = await rest(server.url, "GET", "/api/authenticationtoken", { headers });
        assert.equal(res.status, 200, res.text);
      });
    }

    it("a hand-off token from a user token reads the user once, in the credential check (GET /api/authenticationtoken)", async () => {
      const email = uniqueEmail("calls");
      await signUp(server, email);
      const made = await handOffCalls(bearer(await loginUserToken(server, email)));
      assert.deepEqual(made, { "userTokens.findByHashWithUser": 1, "authTokens.create": 1 });
    });

    it("a hand-off token from a cookie session reads the user once, in the credential check", async () => {
      const email = uniqueEmail("calls");
      await signUp(server, email);
      const made = await handOffCalls(cookie(await sessionCookie(server, await loginUserToken(server, email))));
      // And the user token the cookie session came from, which it must not outlive.
      assert.deepEqual(made, { "userTokens.findByHashWithUser": 1, "userTokens.findById": 1, "authTokens.create": 1 });
    });

    it("a hand-off token from a seed 000 session reads the user once, in the credential check", async () => {
      const email = uniqueEmail("calls");
      await signUp(server, email);
      const { access_token } = await startSession(server, email);
      const made = await handOffCalls({ ...bearer(access_token), ...clientIdHeader });
      assert.deepEqual(made, { "sessions.findWithUser": 1, "authTokens.create": 1 });
    });

    it("a hand-off token from a seed 004 access JWT reads the user once, in the credential check", async () => {
      const user = await createJwtUser(server);
      const made = await handOffCalls(bearer(await jwtLogin(server, user)));
      assert.deepEqual(made, { "users.findById": 1, "authTokens.create": 1 });
    });
  });
}
