// Deployment modes: HS256 with a configured secret, end to end over gRPC, Connect and REST, and
// the JWT API mounted at "/" (TESSERA_JWT_BASE_PATH=/, with the Session API off so /user is free),
// a REST matter.
import assert from "node:assert/strict";
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair, type CryptoKey } from "jose";
import { loadConfig } from "../../src/config.js";
import { keyApi } from "../key/api.js";
import { expectCode, expectOk, protocols } from "../support/api.js";
import { bearer } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { otherPassword, password, uniqueName } from "../support/users.js";
import { jwtApi, type JwtApi } from "./api.js";
import { algNone, withPayload } from "./forge.js";

const secret = "an HS256 secret that is long enough: 0123456789";

for (const store of storesUnderTest()) {
  describe(`JWT API with HS256 (${store})`, function () {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store, env: { TESSERA_JWT_ALG: "HS256", TESSERA_JWT_SECRET: secret } });
    });
    after(async () => {
      await server?.close();
    });

    for (const protocol of protocols) {
      describe(`over ${protocol}`, () => {
        let api: JwtApi;
        before(() => {
          api = jwtApi(protocol, server.url);
        });
        after(() => api.close());

        async function login(): Promise<{ user: string; access: string }> {
          const user = uniqueName();
          expectOk(await api.createUser({ user, pass: password }), 201);
          return { user, access: expectOk(await api.getToken({ user, pass: password })).text };
        }

        it("issues, checks, refreshes, revokes and deletes with HS256 tokens", async () => {
          const { user, access } = await login();
          assert.deepEqual(decodeProtectedHeader(access), { alg: "HS256", kid: "hs256", typ: "JWT" });
          assert.equal(expectOk(await api.check({ access_token: access })).user, user);
          const refresh = expectOk(await api.getRefreshToken({}, bearer(access))).text;
          assert.equal(decodeJwt(refresh).token_type, "refresh_token");
          const derived = expectOk(await api.getToken({ user: refresh })).text;
          assert.equal(decodeJwt(derived).authentication_method, "refresh_token");
          expectCode(await api.changePassword({ pass: otherPassword }, bearer(derived)), "permission_denied", "password authentication required: this token came from a refresh token", "PASSWORD_LOGIN_REQUIRED");
          expectOk(await api.deleteRefreshToken({ refresh_token: refresh }, bearer(access)), 204);
          expectCode(await api.getToken({ user: refresh }), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
          expectOk(await api.deleteUser({}, bearer(access)), 204);
          expectCode(await api.check({ access_token: access }), "invalid_argument", "the token's user is deactivated", "USER_DEACTIVATED");
        });

        it("GET /pubkey is 404 and the JWKS is empty", async () => {
          expectCode(await api.getPublicKey(), "not_found", "a symmetric algorithm (HS256) is in use: there is no public key", "NO_PUBLIC_KEY");
          const keys = keyApi(protocol, server.url);
          try {
            assert.deepEqual(expectOk(await keys.getJwks()), { keys: [] });
          } finally {
            keys.close();
          }
        });

        it("refuses other secrets, other algorithms, alg none, an unknown kid and tampering", async () => {
          const { access } = await login();
          const claims = decodeJwt(access);
          const sign = (alg: string, key: Uint8Array | CryptoKey, kid = "hs256") => new SignJWT(claims).setProtectedHeader({ alg, kid, typ: "JWT" }).sign(key);
          const key = new TextEncoder().encode(secret);
          // Control: the right secret, algorithm and kid.
          expectOk(await api.check({ access_token: await sign("HS256", key) }));
          const refused: Array<[string, string]> = [
            [await sign("HS256", new TextEncoder().encode("another secret that is long enough: 0123456789")), "invalid token signature"],
            [await sign("HS384", key), "unexpected token algorithm"],
            [await sign("HS256", key, "other"), "token signed by an unknown key"],
            [await sign("EdDSA", (await generateKeyPair("EdDSA", { crv: "Ed25519" })).privateKey), "unexpected token algorithm"],
            [algNone(access), "unexpected token algorithm"],
            [withPayload(access, (p) => ({ ...p, user: "admin" })), "invalid token signature"],
          ];
          for (const [token, message] of refused) {
            expectCode(await api.check({ access_token: token }), "invalid_argument", message, "INVALID_TOKEN");
            expectCode(await api.getRefreshToken({}, bearer(token)), "unauthenticated", message, "INVALID_TOKEN");
          }
        });
      });
    }
  });

  describe(`JWT API mounted at / (${store})`, function () {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store, env: { TESSERA_JWT_BASE_PATH: "/", TESSERA_SESSION_API: "false" } });
    });
    after(async () => {
      await server?.close();
    });

    it("REST: serves every path at the root, and none under /jwt", async () => {
      const api = jwtApi("rest", server.url, { basePath: "/" });
      const user = uniqueName();
      expectOk(await api.createUser({ user, pass: password }), 201);
      const access = expectOk(await api.getToken({ user, pass: password })).text;
      expectOk(await api.check({ access_token: access }));
      assert.equal(expectOk(await api.getUser({}, bearer(access)))!.user, user);
      expectOk(await api.getUser({}), 204);
      expectOk(await api.getPublicKey());
      expectOk(await api.getVersion());
      const refresh = expectOk(await api.getRefreshToken({ access_token: access })).text;
      expectOk(await api.deleteRefreshToken({ refresh_token: refresh }, bearer(access)), 204);
      expectOk(await api.changePassword({ pass: otherPassword }, bearer(access)));
      const fresh = expectOk(await api.getToken({ user, pass: otherPassword })).text;
      expectOk(await api.deleteUser({}, bearer(fresh)), 204);
      const underJwt = await jwtApi("rest", server.url).getVersion();
      expectCode(underJwt, "not_found", "no route for GET /jwt/*", "ROUTE_NOT_FOUND");
    });
  });
}

describe("JWT configuration", () => {
  it("refuses the root mount while the Session API is on, and HS256 without a 32-byte secret", () => {
    assert.throws(() => loadConfig({ TESSERA_JWT_BASE_PATH: "/" }), /TESSERA_SESSION_API=false/);
    assert.throws(() => loadConfig({ TESSERA_JWT_ALG: "HS256" }), /TESSERA_JWT_SECRET/);
    assert.throws(() => loadConfig({ TESSERA_JWT_ALG: "HS256", TESSERA_JWT_SECRET: "too short" }), /at least 32 bytes/);
    assert.equal(loadConfig({ TESSERA_JWT_BASE_PATH: "/", TESSERA_SESSION_API: "false" }).jwtBasePath, "/");
  });

  it("refuses a client id that is the JWT audience or the refresh tokens' (a session token's aud is its client id)", () => {
    const message = "TESSERA_CLIENT_IDS: a client id equals TESSERA_JWT_AUDIENCE or the refresh tokens' audience (TESSERA_JWT_AUDIENCE followed by /refresh_token): session access tokens, whose aud is their client id, would pass a verifier of JWT API tokens, and those a verifier of session tokens";
    assert.throws(() => loadConfig({ TESSERA_CLIENT_IDS: "web,tessera" }), { message });
    assert.throws(() => loadConfig({ TESSERA_CLIENT_IDS: "web,api", TESSERA_JWT_AUDIENCE: "api" }), { message });
    assert.throws(() => loadConfig({ TESSERA_CLIENT_IDS: "tessera/refresh_token" }), { message });
    assert.deepEqual(loadConfig({ TESSERA_CLIENT_IDS: "web,tessera", TESSERA_JWT_AUDIENCE: "jwt-api" }).clientIds, ["web", "tessera"]);
  });
});
