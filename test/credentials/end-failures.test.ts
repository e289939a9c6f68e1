// Ending a credential whose write the store holds while it answers the call with an error (a write
// that landed, its answer lost; on MongoDB one still under way when the store's time bound
// passed): the call answers 503 STORE_UNAVAILABLE, and the instance that answered it refuses the
// credential from then on, whatever it had cached of it. An API token's revocation evicts the
// token from the lookup cache; a signing key's revocation reads the key list again, so the
// tokens it signed stop verifying (also those already verified and remembered). A write that
// lands only after the 503 leaves nothing cached from a read made before it.
import assert from "node:assert/strict";
import { decodeProtectedHeader } from "jose";
import { ManualClock } from "../../src/core/clock.js";
import { expectCode, expectOk } from "../support/api.js";
import { bearer, rest } from "../support/clients.js";
import { assertStoreUnavailable } from "../support/error-details.js";
import { startTestServer, storesUnderTest, type StoreKind, type TestServer } from "../support/server.js";
import { admin, clientIdHeader, createApiToken, jwtLogin, signUp, startSession, uniqueEmail, uniqueName } from "../support/users.js";
import { apiTokenApi } from "../api-token/api.js";
import { holdInsert, landsThenFails } from "../support/doubtful-writes.js";

const kidOf = (token: string) => decodeProtectedHeader(token).kid!;

/** GET /v1/api/auth with `token` refused as a revoked token is (seed 001). */
async function assertApiTokenRefused(server: TestServer, token: string): Promise<void> {
  const api = apiTokenApi("rest", server.url);
  expectCode(await api.authenticate(bearer(token)), "unauthenticated", "invalid API token", "INVALID_TOKEN");
}

/** The tokens of a revoked key refused: seed 004's check (400) and a bearer call (GET /jwt/refresh_token, 401), seed 000's session check (401). */
async function assertKeyRefused(server: TestServer, jwt: string, sessionAccess: string): Promise<void> {
  const check = await rest(server.url, "GET", "/jwt/check", { headers: bearer(jwt) });
  assert.equal(check.status, 400, check.text);
  assert.equal(check.body.message, "token signed by a revoked key");
  assert.equal(check.body.details[0].debug.reason, "INVALID_TOKEN");
  const refresh = await rest(server.url, "GET", "/jwt/refresh_token", { headers: bearer(jwt) });
  assert.equal(refresh.status, 401, refresh.text);
  assert.equal(refresh.body.message, "token signed by a revoked key");
  const session = await rest(server.url, "GET", "/session", { headers: { ...clientIdHeader, ...bearer(sessionAccess) } });
  assert.equal(session.status, 401, session.text);
  assert.equal(session.body.message, "token signed by a revoked key");
  assert.equal(session.body.details[0].debug.reason, "INVALID_TOKEN");
}

/**
 * A server whose key K1 signed a seed 004 access token and a seed 000 access token, both checked
 * (so remembered by the verifier), and has since been retired by a rotation that made the next
 * key sign at once: K1 still verifies, and its revocation promotes nothing, writing the mark alone.
 */
async function retiredKeyTokens(server: TestServer, clock: ManualClock): Promise<{ kid: string; jwt: string; sessionAccess: string }> {
  const email = uniqueEmail("end");
  await signUp(server, email);
  // Past the next key's publication lead: the rotation makes it sign at once.
  clock.advance((server.config.keyPublishSeconds + 1) * 1000);
  const jwt = await jwtLogin(server, email);
  const sessionAccess = (await startSession(server, email)).access_token;
  assert.equal((await rest(server.url, "GET", "/jwt/check", { headers: bearer(jwt) })).status, 200);
  assert.equal((await rest(server.url, "GET", "/session", { headers: { ...clientIdHeader, ...bearer(sessionAccess) } })).status, 200);
  const rotated = await rest(server.url, "POST", "/v1/admin/keys:rotate", { json: {}, headers: admin });
  assert.equal(rotated.status, 200, rotated.text);
  assert.notEqual(rotated.body.kid, kidOf(jwt));
  assert.equal((await rest(server.url, "GET", "/jwt/check", { headers: bearer(jwt) })).status, 200, "the retired key still verifies");
  return { kid: kidOf(jwt), jwt, sessionAccess };
}

const revokeKey = (server: TestServer, kid: string) => rest(server.url, "POST", `/v1/admin/keys/${encodeURIComponent(kid)}:revoke`, { json: {}, headers: admin });

const revokeApiToken = async (server: TestServer, accountId: string, token: string) => {
  const link = expectOk(await apiTokenApi("rest", server.url).authenticate(bearer(token))).token_link;
  return rest(server.url, "DELETE", `/v1/frontend/auth/${encodeURIComponent(accountId)}`, { json: { token_link: link }, headers: admin });
};

for (const store of storesUnderTest()) {
  describe(`A credential's end the store holds but answers with an error, on ${store}`, function () {
    this.timeout(60_000);
    const clock = new ManualClock(Date.now());
    let server: TestServer;
    before(async () => (server = await startTestServer({ store, clock, env: { TESSERA_API_TOKEN_CACHE_SECONDS: "60" } })));
    after(() => server.close());

    it("DELETE /v1/frontend/auth/{account_id} stored, answered 503 STORE_UNAVAILABLE: the token, cached before, is refused by the same instance (401 INVALID_TOKEN)", async () => {
      const accountId = uniqueName("acct");
      const token = await createApiToken(server, accountId);
      // Authenticated (and cached) by the revocation's own lookup of its link.
      landsThenFails(server.tessera.store.apiTokens, "revoke");
      assertStoreUnavailable(await revokeApiToken(server, accountId, token));
      await assertApiTokenRefused(server, token);
      const revoked = expectOk(await apiTokenApi("rest", server.url).listTokens(accountId, "revoked", admin));
      assert.equal(revoked.tokens.length, 1, "the store holds the revocation");
    });

    it("POST /v1/admin/keys/{kid}:revoke stored, answered 503 STORE_UNAVAILABLE: the key's tokens, verified before, are refused by the same instance", async () => {
      const { kid, jwt, sessionAccess } = await retiredKeyTokens(server, clock);
      landsThenFails(server.tessera.store.keys, "revoke");
      assertStoreUnavailable(await revokeKey(server, kid));
      await assertKeyRefused(server, jwt, sessionAccess);
    });
  });
}

const mongo: StoreKind[] = storesUnderTest().filter((s) => s === "mongo");
for (const store of mongo) {
  describe(`A credential's end whose write lands after the store's time bound answered 503, on ${store}`, function () {
    this.timeout(60_000);
    const clock = new ManualClock(Date.now());
    let server: TestServer;
    before(async () => (server = await startTestServer({ store, clock, env: { TESSERA_API_TOKEN_CACHE_SECONDS: "60", TESSERA_STORE_TIMEOUT_MS: "1000" } })));
    after(() => server.close());

    it("DELETE /v1/frontend/auth/{account_id}: a check while the revocation's mark is still on its way reads the token active, and once the mark lands the same instance refuses it (401 INVALID_TOKEN)", async () => {
      const accountId = uniqueName("acct");
      const token = await createApiToken(server, accountId);
      const mark = holdInsert("marks", "api-revoked:");
      try {
        assertStoreUnavailable(await revokeApiToken(server, accountId, token));
        await mark.reached;
        // The store holds no revocation yet: the token is still active.
        expectOk(await apiTokenApi("rest", server.url).authenticate(bearer(token)));
      } finally {
        mark.release();
      }
      await mark.landed;
      await assertApiTokenRefused(server, token);
    });

    it("POST /v1/admin/keys/{kid}:revoke: a check while the revocation's mark is still on its way verifies, and once the mark lands the same instance refuses the key's tokens", async () => {
      const { kid, jwt, sessionAccess } = await retiredKeyTokens(server, clock);
      const mark = holdInsert("marks", "key-revoked:");
      try {
        assertStoreUnavailable(await revokeKey(server, kid));
        await mark.reached;
        // The store holds no revocation yet: the key still verifies.
        assert.equal((await rest(server.url, "GET", "/jwt/check", { headers: bearer(jwt) })).status, 200);
      } finally {
        mark.release();
      }
      await mark.landed;
      await assertKeyRefused(server, jwt, sessionAccess);
    });
  });
}
