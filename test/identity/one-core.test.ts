// "One identity core": a password changed or a user deleted through one service takes effect in
// all of them (API.md). Seed 000 (email logins), seed 002 (Basic) and seed 004 (user names) share
// the user; the JWT API takes the stored login as its user name.
import assert from "node:assert/strict";
import { basic, bearer, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { otherPassword as newPassword, password as oldPassword } from "../support/users.js";

const email = "shared.user@example.com";

for (const store of storesUnderTest()) {
  describe(`one identity core across the services (${store})`, function () {
    this.timeout(30000);
    let server: TestServer;
    const client = { "x-koms-clientid": testClientId };

    beforeEach(async () => {
      server = await startTestServer({ store });
      const created = await rest(server.url, "POST", "/user", { headers: client, json: { email, password: oldPassword } });
      assert.equal(created.status, 201, created.text);
    });
    afterEach(async () => server.close());

    const startSession = async (password: string) =>
      rest(server.url, "POST", "/session", { headers: client, json: { account_type: "traditional", email, password } });
    const jwtToken = async (password: string) => rest(server.url, "GET", `/jwt/token?user=${encodeURIComponent(email)}&pass=${encodeURIComponent(password)}`);

    it("a password changed through the JWT API ends seed 000 sessions and seed 002 user tokens, and the new password works everywhere", async () => {
      const session = await startSession(oldPassword);
      assert.equal(session.status, 200, session.text);
      const userToken = await rest(server.url, "POST", "/auth/login", { headers: basic(email, oldPassword) });
      assert.equal(userToken.status, 200, userToken.text);
      const jwt = await jwtToken(oldPassword);
      assert.equal(jwt.status, 200, jwt.text);

      const changed = await rest(server.url, "PATCH", "/jwt/user", { headers: bearer(jwt.text), json: { pass: newPassword } });
      assert.equal(changed.status, 200, changed.text);

      const get = await rest(server.url, "GET", "/session", { headers: { ...client, ...bearer(session.body.access_token) } });
      assert.equal(get.status, 401, "the seed 000 session ended");
      const refresh = await rest(server.url, "PUT", "/session", {
        headers: { ...client, ...bearer(session.body.access_token) },
        json: { refresh_token: session.body.refresh_token },
      });
      assert.equal(refresh.status, 401, "its refresh token too");
      const bump = await rest(server.url, "POST", "/auth/bump", { headers: bearer(userToken.body.token) });
      assert.equal(bump.status, 401, "the seed 002 user token stopped working");

      assert.equal((await startSession(oldPassword)).status, 401, "the old password is refused by seed 000");
      assert.equal((await rest(server.url, "POST", "/auth/login", { headers: basic(email, oldPassword) })).status, 401);
      assert.equal((await startSession(newPassword)).status, 200, "the new password works for seed 000");
      assert.equal((await rest(server.url, "POST", "/auth/login", { headers: basic(email, newPassword) })).status, 200);
      assert.equal((await jwtToken(newPassword)).status, 200);
    });

    it("a user deleted through the JWT API can no longer log in, or use any credential, in any service", async () => {
      const session = await startSession(oldPassword);
      const userToken = await rest(server.url, "POST", "/auth/login", { headers: basic(email, oldPassword) });
      const jwt = await jwtToken(oldPassword);
      const deleted = await rest(server.url, "DELETE", "/jwt/user", { headers: bearer(jwt.text) });
      assert.equal(deleted.status, 204, deleted.text);

      assert.equal((await rest(server.url, "GET", "/user", { headers: { ...client, ...bearer(session.body.access_token) } })).status, 401);
      assert.equal((await rest(server.url, "POST", "/auth/bump", { headers: bearer(userToken.body.token) })).status, 401);
      assert.equal((await rest(server.url, "GET", "/jwt/check", { headers: bearer(jwt.text) })).status, 400);
      assert.equal((await rest(server.url, "GET", "/api/authenticationtoken", { headers: bearer(jwt.text) })).status, 401);
      // A deactivated user is told so (403) only with the right password, in every service.
      assert.equal((await jwtToken(oldPassword)).status, 403);
      assert.equal((await startSession(oldPassword)).status, 403);
      assert.equal((await rest(server.url, "POST", "/auth/login", { headers: basic(email, oldPassword) })).status, 403);
      assert.equal((await startSession(newPassword)).status, 401, "a wrong password still gets the plain 401");
    });
  });
}
