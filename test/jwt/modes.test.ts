// Deployment modes: HS256 with a configured secret, end to end, and the JWT API mounted at "/"
// (TESSERA_JWT_BASE_PATH=/, with the Session API off so /user is free).
import assert from "node:assert/strict";
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair, type CryptoKey } from "jose";
import { loadConfig } from "../../src/config.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { algNone, bearer, call, goodPassword, otherGoodPassword, uniqueUser, withPayload } from "./support.js";

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
    const jwt = (method: string, path: string, args: Record<string, string> = {}, headers: Record<string, string> = {}) =>
      call(server.url, method, `/jwt${path}`, args, { headers });

    it("issues, checks, refreshes, revokes and deletes with HS256 tokens", async () => {
      const user = uniqueUser();
      assert.equal((await jwt("POST", "/user", { user, pass: goodPassword })).status, 201);
      const access = (await jwt("GET", "/token", { user, pass: goodPassword })).text;
      assert.deepEqual(decodeProtectedHeader(access), { alg: "HS256", kid: "hs256", typ: "JWT" });
      const checked = await jwt("GET", "/check", { access_token: access });
      assert.equal(checked.status, 200);
      assert.equal(checked.body.user, user);
      const refresh = (await jwt("GET", "/refresh_token", {}, bearer(access))).text;
      assert.equal(decodeJwt(refresh).token_type, "refresh_token");
      const derived = await jwt("GET", "/token", { user: refresh });
      assert.equal(derived.status, 200);
      assert.equal(decodeJwt(derived.text).authentication_method, "refresh_token");
      assert.equal((await jwt("PATCH", "/user", { pass: otherGoodPassword }, bearer(derived.text))).status, 403);
      assert.equal((await jwt("DELETE", "/refresh_token", { refresh_token: refresh }, bearer(access))).status, 204);
      assert.equal((await jwt("GET", "/token", { user: refresh })).status, 401);
      assert.equal((await jwt("DELETE", "/user", {}, bearer(access))).status, 204);
      assert.equal((await jwt("GET", "/check", { access_token: access })).status, 400);
    });

    it("GET /pubkey is 404 and the JWKS is empty", async () => {
      const res = await jwt("GET", "/pubkey");
      assert.equal(res.status, 404);
      assert.equal(res.body.code, "not_found");
      const jwks = await call(server.url, "GET", "/.well-known/jwks.json");
      assert.equal(jwks.status, 200);
      assert.deepEqual(jwks.body.keys, []);
    });

    it("refuses other secrets, other algorithms, alg none, an unknown kid and tampering", async () => {
      const user = uniqueUser();
      await jwt("POST", "/user", { user, pass: goodPassword });
      const access = (await jwt("GET", "/token", { user, pass: goodPassword })).text;
      const claims = decodeJwt(access);
      const sign = (alg: string, key: Uint8Array | CryptoKey, kid = "hs256") => new SignJWT(claims).setProtectedHeader({ alg, kid, typ: "JWT" }).sign(key);
      const key = new TextEncoder().encode(secret);
      // Control: the right secret, algorithm and kid.
      assert.equal((await jwt("GET", "/check", { access_token: await sign("HS256", key) })).status, 200);
      const refused = [
        await sign("HS256", new TextEncoder().encode("another secret that is long enough: 0123456789")),
        await sign("HS384", key),
        await sign("HS256", key, "other"),
        await sign("EdDSA", (await generateKeyPair("EdDSA", { crv: "Ed25519" })).privateKey),
        algNone(access),
        withPayload(access, (p) => ({ ...p, user: "admin" })),
      ];
      for (const token of refused) {
        const res = await jwt("GET", "/check", { access_token: token });
        assert.equal(res.status, 400, `${decodeProtectedHeader(token).alg}: ${res.text}`);
        assert.equal((await jwt("GET", "/refresh_token", {}, bearer(token))).status, 401);
      }
    });
  });

  describe(`JWT API mounted at / (${store})`, function () {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store, env: { TESSERA_JWT_BASE_PATH: "/", TESSERA_SESSION_API: "false" } });
    });
    after(async () => {
      await server?.close();
    });

    it("serves every path at the root", async () => {
      const user = uniqueUser();
      assert.equal((await call(server.url, "POST", "/user", { user, pass: goodPassword })).status, 201);
      const access = (await call(server.url, "GET", "/token", { user, pass: goodPassword }, { style: "form" })).text;
      assert.equal((await call(server.url, "GET", "/check", { access_token: access }, { style: "query" })).status, 200);
      assert.equal((await call(server.url, "GET", "/user", {}, { headers: bearer(access) })).body.user, user);
      assert.equal((await call(server.url, "GET", "/user")).status, 204);
      assert.equal((await call(server.url, "GET", "/pubkey")).status, 200);
      assert.equal((await call(server.url, "GET", "/version")).status, 200);
      const refresh = await call(server.url, "GET", "/refresh_token", { access_token: access }, { style: "query" });
      assert.equal(refresh.status, 200);
      assert.equal((await call(server.url, "DELETE", "/refresh_token", { refresh_token: refresh.text }, { headers: bearer(access) })).status, 204);
      assert.equal((await call(server.url, "PATCH", "/user", { pass: otherGoodPassword }, { headers: bearer(access) })).status, 200);
      assert.equal((await call(server.url, "DELETE", "/user", {}, { headers: bearer(access) })).status, 204);
      assert.equal((await call(server.url, "GET", "/jwt/version")).status, 404);
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
});
