// Public keys (KeyService) through real clients — gRPC, Connect and REST — on each store: the JWKS
// lists public keys only and verifies the access tokens of seed 000 and seed 004 offline; rotation
// needs the admin credential, keeps old tokens valid and signs new ones with the new key.
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from "jose";
import { jwtApi, type JwtApi } from "../jwt/api.js";
import { sessionApi, type SessionApi } from "../session/api.js";
import { expectCode, expectOk, protocols } from "../support/api.js";
import { bearer } from "../support/clients.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { admin, createJwtUser, jwtLogin, password, signUp, startSession } from "../support/users.js";
import { keyApi, type KeyApi } from "./api.js";

for (const store of storesUnderTest()) {
  describe(`Public keys on ${store}`, function () {
    let server: TestServer;
    // Rotation without waiting: keys published 0 s before they sign (test/credentials covers the lead).
    let rotating: TestServer;
    before(async () => {
      server = await startTestServer({ store });
      rotating = await startTestServer({ store, env: { TESSERA_KEY_PUBLISH_SECONDS: "0" } });
    });
    after(async () => {
      await server?.close();
      await rotating?.close();
    });

    for (const protocol of protocols) {
      describe(`over ${protocol}`, () => {
        let keys: KeyApi;
        let jwt: JwtApi;
        let sessions: SessionApi;
        before(() => {
          keys = keyApi(protocol, server.url);
          jwt = jwtApi(protocol, server.url);
          sessions = sessionApi(protocol, server.url);
        });
        after(() => {
          keys.close();
          jwt.close();
          sessions.close();
        });

        it("GET /.well-known/jwks.json lists public keys only, with kid, alg and use, cacheable for 5 minutes", async () => {
          const res = await keys.getJwks();
          const { keys: set } = expectOk(res);
          assert.ok(set.length >= 1);
          for (const k of set) {
            assert.equal(typeof k.kid, "string");
            assert.equal(k.alg, "EdDSA");
            assert.equal(k.use, "sig");
            assert.equal(k.kty, "OKP");
            assert.equal(k.d, undefined, "no private key material");
          }
          assert.equal(res.headers.get("cache-control"), "public, max-age=300");
        });

        it("the JWKS verifies seed 000 and seed 004 access tokens offline; GET /jwt/pubkey is its current key", async () => {
          const { access_token } = await startSession(server, (await signUp(server)).login);
          const user = await createJwtUser(server);
          const access = await jwtLogin(server, user);
          const set = createLocalJWKSet(expectOk(await keys.getJwks()) as JSONWebKeySet);
          await jwtVerify(access_token, set, { audience: testClientId, algorithms: ["EdDSA"] });
          const { payload } = await jwtVerify(access, set, { issuer: server.config.jwtIssuer, audience: server.config.jwtAudience, algorithms: ["EdDSA"] });
          assert.equal(payload.user, user);
          await assert.rejects(jwtVerify(access, set, { audience: "another-service" }));
          const kid = decodeProtectedHeader(access).kid;
          const jwk = expectOk(await keys.getJwks()).keys.find((k) => k.kid === kid)!;
          assert.ok(jwk, "the signing key is published");
          assert.equal(createPublicKey(expectOk(await jwt.getPublicKey()).text).export({ format: "jwk" }).x, jwk.x);
        });

        it("POST /v1/admin/keys:rotate needs the admin credential", async () => {
          const access = await jwtLogin(server, await createJwtUser(server));
          expectCode(await keys.rotateKey({}), "unauthenticated", "admin credential required");
          expectCode(await keys.rotateKey(bearer(access)), "unauthenticated", "admin credential required");
        });

        it("rotation promotes the published next key and publishes a new one; old tokens stay valid, new tokens carry the promoted kid", async () => {
          const server = rotating;
          const keys = keyApi(protocol, server.url);
          const jwt = jwtApi(protocol, server.url);
          const sessions = sessionApi(protocol, server.url);
          try {
          const email = (await signUp(server)).login;
          const session = await startSession(server, email);
          const user = await createJwtUser(server);
          const before = await jwtLogin(server, user);
          const refresh = expectOk(await jwt.getRefreshToken({}, bearer(before))).text;
          const jwks1 = expectOk(await keys.getJwks());
          // The first key is the next one, published but not signing.
          assert.notEqual(jwks1.keys[0].kid, decodeProtectedHeader(before).kid);
          assert.equal(jwks1.keys[1].kid, decodeProtectedHeader(before).kid);

          const { kid } = expectOk(await keys.rotateKey(admin));
          assert.equal(kid, jwks1.keys[0].kid, "the published next key is promoted");
          const jwks2 = expectOk(await keys.getJwks());
          assert.equal(jwks2.keys.length, jwks1.keys.length + 1);
          assert.ok(!jwks1.keys.some((k) => k.kid === jwks2.keys[0].kid), "a new next key is published");
          assert.deepEqual(jwks2.keys.slice(1), jwks1.keys);

          // Tokens from before the rotation: valid on the server and offline.
          expectOk(await sessions.getSession({ clientId: testClientId, access: session.access_token }));
          expectOk(await jwt.check({ access_token: before }));
          const set = createLocalJWKSet(jwks2 as JSONWebKeySet);
          await jwtVerify(session.access_token, set, { audience: testClientId });
          await jwtVerify(before, set, { issuer: server.config.jwtIssuer, audience: server.config.jwtAudience });
          // A refresh token signed by the old key still works; what it answers is signed by the new one.
          assert.equal(decodeProtectedHeader(expectOk(await jwt.getToken({ user: refresh })).text).kid, kid);

          // New tokens, of both APIs, carry the new kid and verify with the new JWKS.
          const after = expectOk(await jwt.getToken({ user, pass: password })).text;
          assert.equal(decodeProtectedHeader(after).kid, kid);
          expectOk(await jwt.check({ access_token: after }));
          assert.equal(expectOk(await jwt.getUser({}, bearer(after)))!.user, user);
          const again = await startSession(server, email);
          assert.equal((await jwtVerify(again.access_token, set, { audience: testClientId })).protectedHeader.kid, kid);
          assert.equal(createPublicKey(expectOk(await jwt.getPublicKey()).text).export({ format: "jwk" }).x, jwks2.keys[1].x);
          } finally {
            keys.close();
            jwt.close();
            sessions.close();
          }
        });
      });
    }

    it("REST only: jose's createRemoteJWKSet verifies a token with nothing but the JWKS URL", async () => {
      const access = await jwtLogin(server, await createJwtUser(server));
      const jwks = createRemoteJWKSet(new URL("/.well-known/jwks.json", server.url));
      const { protectedHeader } = await jwtVerify(access, jwks, { issuer: server.config.jwtIssuer, audience: server.config.jwtAudience, algorithms: ["EdDSA"] });
      assert.equal(protectedHeader.kid, decodeProtectedHeader(access).kid);
      await assert.rejects(jwtVerify(access, jwks, { audience: "another-service" }));
    });
  });
}
