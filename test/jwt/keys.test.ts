// Offline verification and key rotation: a token Tessera issues verifies with an independent
// verifier that knows only the JWKS URL, and rotation keeps old tokens valid while new tokens
// carry the new key.
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from "jose";
import { startTestServer, storesUnderTest, testAdminToken, type TestServer } from "../support/server.js";
import { bearer, call, goodPassword, uniqueUser } from "./support.js";

for (const store of storesUnderTest()) {
  describe(`JWT keys: JWKS and rotation (${store})`, function () {
    let server: TestServer;
    let user: string;
    before(async () => {
      server = await startTestServer({ store });
      user = uniqueUser();
      assert.equal((await call(server.url, "POST", "/jwt/user", { user, pass: goodPassword })).status, 201);
    });
    after(async () => {
      await server?.close();
    });

    const login = async () => {
      const res = await call(server.url, "GET", "/jwt/token", { user, pass: goodPassword });
      assert.equal(res.status, 200, res.text);
      return res.text;
    };
    const jwksUrl = () => new URL("/.well-known/jwks.json", server.url);
    const rotate = () => call(server.url, "POST", "/v1/admin/keys:rotate", {}, { headers: bearer(testAdminToken) });

    it("a token verifies with jose's createRemoteJWKSet against the running server, and only with the right issuer/audience", async () => {
      const token = await login();
      const jwks = createRemoteJWKSet(jwksUrl());
      const { payload, protectedHeader } = await jwtVerify(token, jwks, {
        issuer: server.config.jwtIssuer,
        audience: server.config.jwtAudience,
        algorithms: ["EdDSA"],
      });
      assert.equal(payload.user, user);
      assert.equal(protectedHeader.kid, decodeProtectedHeader(token).kid);
      await assert.rejects(jwtVerify(token, jwks, { audience: "another-service" }));
    });

    it("the JWKS lists public keys only, with kid, alg and use, and a Cache-Control header", async () => {
      const res = await call(server.url, "GET", "/.well-known/jwks.json");
      assert.equal(res.status, 200);
      assert.match(String(res.headers["cache-control"]), /max-age=\d+/);
      const set = res.body as JSONWebKeySet;
      assert.ok(set.keys.length >= 1);
      for (const k of set.keys) {
        assert.equal(typeof k.kid, "string");
        assert.equal(k.alg, "EdDSA");
        assert.equal(k.use, "sig");
        assert.equal(k.d, undefined, "a private key part is published");
      }
    });

    it("GET /jwt/pubkey is the current JWKS key, in PEM", async () => {
      const pem = (await call(server.url, "GET", "/jwt/pubkey")).text;
      const kid = decodeProtectedHeader(await login()).kid;
      const set = (await call(server.url, "GET", "/.well-known/jwks.json")).body as JSONWebKeySet;
      const jwk = set.keys.find((k) => k.kid === kid)!;
      assert.equal(createPublicKey(pem).export({ format: "jwk" }).x, jwk.x);
    });

    it("rotation: old tokens stay valid, new tokens are signed by the new key, both keys are published", async () => {
      const before = await login();
      const refresh = (await call(server.url, "GET", "/jwt/refresh_token", {}, { headers: bearer(before) })).text;
      const oldKid = decodeProtectedHeader(before).kid;
      assert.equal((await call(server.url, "POST", "/v1/admin/keys:rotate")).status, 401, "rotation needs the admin token");
      assert.equal((await call(server.url, "POST", "/v1/admin/keys:rotate", {}, { headers: bearer(before) })).status, 401);
      const rotated = await rotate();
      assert.equal(rotated.status, 200, rotated.text);
      const newKid = rotated.body.kid as string;
      assert.notEqual(newKid, oldKid);

      const after = await login();
      assert.equal(decodeProtectedHeader(after).kid, newKid);
      const viaRefresh = await call(server.url, "GET", "/jwt/token", { user: refresh });
      assert.equal(viaRefresh.status, 200, "a refresh token signed by the old key still works");
      assert.equal(decodeProtectedHeader(viaRefresh.text).kid, newKid);
      for (const token of [before, after]) {
        assert.equal((await call(server.url, "GET", "/jwt/check", { access_token: token })).status, 200);
        assert.equal((await call(server.url, "GET", "/jwt/user", {}, { headers: bearer(token) })).status, 200);
      }

      const set = (await call(server.url, "GET", "/.well-known/jwks.json")).body as JSONWebKeySet;
      const kids = set.keys.map((k) => k.kid);
      assert.ok(kids.includes(oldKid) && kids.includes(newKid), `JWKS ${kids.join(",")}`);
      const local = createLocalJWKSet(set);
      for (const token of [before, after]) await jwtVerify(token, local, { issuer: server.config.jwtIssuer, audience: server.config.jwtAudience });

      const pem = (await call(server.url, "GET", "/jwt/pubkey")).text;
      assert.equal(createPublicKey(pem).export({ format: "jwk" }).x, set.keys.find((k) => k.kid === newKid)!.x);
    });
  });
}
