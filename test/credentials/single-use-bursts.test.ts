// Single-use credentials under a burst of identical calls spread over two instances sharing one
// store (MongoDB: FerretDB applies no filtered update atomically, so only the store's insert-once
// marks can keep this; SQLite: one conditional statement): of 20 at once, exactly one succeeds and
// every other gets the answer a call after it gets. Seed 003's exchange, seed 002's logout (bearer
// token and session cookie) and seed 001's revocation.
import assert from "node:assert/strict";
import { bearer, rest, type RestResponse } from "../support/clients.js";
import { storesUnderTest } from "../support/server.js";
import { admin, createApiToken, loginUserToken, sessionCookie, signUp, uniqueEmail, uniqueName } from "../support/users.js";
import { startServerPair, type ServerPair } from "./support.js";

const burst = 20;

/** The one success of `calls` and the answers of the rest, each the same as `after` (a call made once the burst is over). */
function exactlyOne(answers: RestResponse[], success: number, after: RestResponse): RestResponse {
  const won = answers.filter((r) => r.status === success);
  assert.equal(won.length, 1, answers.map((r) => `${r.status} ${r.text}`).join("\n"));
  for (const lost of answers.filter((r) => r.status !== success)) {
    assert.equal(lost.status, after.status, lost.text);
    assert.deepEqual(lost.body, after.body);
  }
  return won[0]!;
}

for (const store of storesUnderTest()) {
  describe(`Single-use credentials, ${burst} calls at once over two instances on ${store}`, function () {
    this.timeout(60_000);
    let pair: ServerPair;
    before(async () => (pair = await startServerPair(store)));
    after(() => pair.close());
    const spread = (call: (url: string) => Promise<RestResponse>) =>
      Promise.all(Array.from({ length: burst }, (_, i) => call((i % 2 === 0 ? pair.a : pair.b).url)));

    it("GET /api/authenticationtoken/{token}/user: one exchange starts a session, the others are 404 TOKEN_NOT_FOUND", async () => {
      const email = uniqueEmail("burst");
      await signUp(pair.a, email);
      const userToken = await loginUserToken(pair.a, email);
      const token = (await rest(pair.a.url, "GET", "/api/authenticationtoken", { headers: bearer(userToken) })).body.token as string;
      const answers = await spread((url) => rest(url, "GET", `/api/authenticationtoken/${token}/user`));
      const after = await rest(pair.b.url, "GET", `/api/authenticationtoken/${token}/user`);
      assert.equal(after.status, 404, after.text);
      assert.equal(after.body.details[0].debug.reason, "TOKEN_NOT_FOUND");
      const won = exactlyOne(answers, 200, after);
      assert.equal(won.headers.getSetCookie().filter((c) => c.startsWith("tessera_session=")).length, 1);
    });

    it("POST /auth/logout with one user token: one logs out, the others are 401 TOKEN_REVOKED", async () => {
      const email = uniqueEmail("burst");
      await signUp(pair.a, email);
      const userToken = await loginUserToken(pair.a, email);
      const answers = await spread((url) => rest(url, "POST", "/auth/logout", { headers: bearer(userToken) }));
      const after = await rest(pair.a.url, "POST", "/auth/logout", { headers: bearer(userToken) });
      assert.equal(after.status, 401, after.text);
      assert.equal(after.body.details[0].debug.reason, "TOKEN_REVOKED");
      assert.deepEqual(exactlyOne(answers, 200, after).body, { success: true });
    });

    it("POST /auth/logout with one session cookie: one ends it, the others are 401 TOKEN_REVOKED", async () => {
      const email = uniqueEmail("burst");
      await signUp(pair.a, email);
      const cookie = { cookie: `tessera_session=${await sessionCookie(pair.a, await loginUserToken(pair.a, email))}` };
      const answers = await spread((url) => rest(url, "POST", "/auth/logout", { headers: cookie }));
      const after = await rest(pair.b.url, "POST", "/auth/logout", { headers: cookie });
      assert.equal(after.status, 401, after.text);
      assert.equal(after.body.details[0].debug.reason, "TOKEN_REVOKED");
      assert.deepEqual(exactlyOne(answers, 200, after).body, { success: true });
    });

    it("DELETE /v1/frontend/auth/{account_id}: one revokes the token, the others are 404 TOKEN_NOT_FOUND", async () => {
      const account = uniqueName("acct");
      const token = await createApiToken(pair.a, account);
      const link = (await rest(pair.a.url, "GET", "/v1/api/auth", { headers: bearer(token) })).body.token_link as string;
      const revoke = (url: string) => rest(url, "DELETE", `/v1/frontend/auth/${account}`, { headers: admin, json: { token_link: link } });
      const answers = await spread(revoke);
      const after = await revoke(pair.b.url);
      assert.equal(after.status, 404, after.text);
      assert.equal(after.body.details[0].debug.reason, "TOKEN_NOT_FOUND");
      exactlyOne(answers, 200, after);
      const revoked = await rest(pair.b.url, "GET", `/v1/frontend/auth/${account}?state=revoked`, { headers: admin });
      assert.equal(revoked.status, 200, revoked.text);
      assert.equal(revoked.body.tokens.length, 1, revoked.text);
    });
  });
}
