// Seed 004 tokens under attack: every forged token is refused by GET /check (400) and by the
// interceptor (401). Forgeries are signed with the server's REAL key (read from its store), so
// each case differs from an accepted token only in the one thing under test; a control case
// proves the forging harness itself produces tokens the server accepts.
import assert from "node:assert/strict";
import { CompactSign, SignJWT, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK, type JWTHeaderParameters } from "jose";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { algNone, b64url, bearer, call, goodPassword, uniqueUser, withPayload } from "./support.js";

for (const store of storesUnderTest()) {
  describe(`JWT attacks (${store})`, function () {
    let server: TestServer;
    let good: string;
    let claims: Record<string, unknown>;
    let realKid: string;
    let realKey: CryptoKey;
    let publicJwk: JWK;
    before(async () => {
      server = await startTestServer({ store });
      const user = uniqueUser();
      assert.equal((await call(server.url, "POST", "/jwt/user", { user, pass: goodPassword })).status, 201);
      good = (await call(server.url, "GET", "/jwt/token", { user, pass: goodPassword })).text;
      claims = decodeJwt(good) as Record<string, unknown>;
      const record = (await server.tessera.store.keys.current())!;
      realKid = record.kid;
      realKey = (await importJWK(JSON.parse(record.privateJwk) as JWK, record.alg)) as CryptoKey;
      publicJwk = JSON.parse(record.publicJwk) as JWK;
    });
    after(async () => {
      await server?.close();
    });

    const check = (token: string) => call(server.url, "GET", "/jwt/check", { access_token: token }, { style: "query" });

    /** Signs `payload` with the server's own key and the given header. */
    function forge(header: Partial<JWTHeaderParameters>, payload: Record<string, unknown> = claims): Promise<string> {
      return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
        .setProtectedHeader({ alg: "EdDSA", kid: realKid, typ: "JWT", ...header } as JWTHeaderParameters)
        .sign(realKey);
    }

    async function assertRefused(token: string, reason: RegExp): Promise<void> {
      const res = await check(token);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.code, "invalid_argument");
      assert.match(res.body.message, reason);
      const viaInterceptor = await call(server.url, "GET", "/jwt/refresh_token", {}, { style: "query", headers: bearer(token) });
      assert.equal(viaInterceptor.status, 401, viaInterceptor.text);
    }

    it("control: a token forged with the real key and unchanged claims is accepted", async () => {
      assert.equal((await check(good)).status, 200);
      const forged = await forge({});
      const res = await check(forged);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, claims);
    });

    it("alg none is refused", async () => {
      await assertRefused(algNone(good), /algorithm|signature|malformed/);
      const noneNoKid = `${b64url({ alg: "none", typ: "JWT" })}.${good.split(".")[1]}.`;
      await assertRefused(noneNoKid, /key id|algorithm|malformed/);
    });

    it("HS256 signed with the public key (algorithm confusion) is refused", async () => {
      const pem = (await call(server.url, "GET", "/jwt/pubkey")).text;
      const secrets = [
        new TextEncoder().encode(pem),
        new TextEncoder().encode(JSON.stringify(publicJwk)),
        Buffer.from(publicJwk.x!, "base64url"),
      ];
      for (const secret of secrets) {
        const token = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: realKid, typ: "JWT" }).sign(secret);
        await assertRefused(token, /algorithm/);
      }
    });

    it("an unknown kid is refused, and so is a missing one", async () => {
      await assertRefused(await forge({ kid: "not-a-key-of-ours" }), /unknown key/);
      const attacker = await generateKeyPair("EdDSA", { crv: "Ed25519" });
      const own = await new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", kid: "attacker", typ: "JWT" }).sign(attacker.privateKey);
      await assertRefused(own, /unknown key/);
      const noKid = await new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
        .setProtectedHeader({ alg: "EdDSA", typ: "JWT" })
        .sign(realKey);
      await assertRefused(noKid, /key id/);
    });

    it("jku, x5u, jwk and x5c headers are refused, even on an otherwise valid token", async () => {
      const attacker = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
      const attackerJwk = await exportJWK(attacker.publicKey);
      await assertRefused(await forge({ jku: "https://attacker.example/jwks.json" }), /jku/);
      await assertRefused(await forge({ x5u: "https://attacker.example/cert.pem" }), /x5u/);
      await assertRefused(await forge({ jwk: attackerJwk }), /jwk/);
      await assertRefused(await forge({ x5c: ["MIIB"] }), /x5c/);
      // The classic embedded-key attack: signed by the attacker's key, which the header carries.
      const embedded = await new SignJWT(claims)
        .setProtectedHeader({ alg: "EdDSA", kid: realKid, typ: "JWT", jwk: attackerJwk })
        .sign(attacker.privateKey);
      await assertRefused(embedded, /jwk/);
    });

    it("a token signed by another key under our kid is refused", async () => {
      const attacker = await generateKeyPair("EdDSA", { crv: "Ed25519" });
      const token = await new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", kid: realKid, typ: "JWT" }).sign(attacker.privateKey);
      await assertRefused(token, /signature/);
    });

    it("a tampered payload is refused", async () => {
      await assertRefused(withPayload(good, (p) => ({ ...p, user: "admin" })), /signature/);
      await assertRefused(withPayload(good, (p) => ({ ...p, exp: (p.exp as number) + 86400 })), /signature/);
      await assertRefused(withPayload(good, (p) => ({ ...p, sub: "00000000-0000-4000-8000-000000000000" })), /signature/);
      const [h, p, s] = good.split(".");
      const flipped = s!.slice(0, 10) + (s![10] === "A" ? "B" : "A") + s!.slice(11);
      await assertRefused(`${h}.${p}.${flipped}`, /signature/);
    });

    it("a validly signed token of the wrong type, audience or issuer, or without the claims, is refused", async () => {
      await assertRefused(await forge({}, { ...claims, token_type: "refresh_token", jti: "x" }), /not an access token/);
      await assertRefused(await forge({}, { ...claims, token_type: "id_token" }), /not an access token/);
      await assertRefused(await forge({}, { ...claims, aud: "someone-else" }), /audience/);
      await assertRefused(await forge({}, { ...claims, iss: "someone-else" }), /issuer/);
      await assertRefused(await forge({}, { ...claims, authentication_method: "magic" }), /claims/);
      const { sub: _sub, ...noSub } = claims;
      await assertRefused(await forge({}, noSub), /claims/);
      const { exp: _exp, ...noExp } = claims;
      await assertRefused(await forge({}, noExp), /expiry/);
    });

    it("an access token presented as a refresh token, and a forged refresh token, are refused (401)", async () => {
      const asRefresh = await call(server.url, "GET", "/jwt/token", { user: good });
      assert.equal(asRefresh.status, 401);
      // Correctly signed, but its jti was never issued: revocation state is the store's.
      const forged = await forge({}, { ...claims, token_type: "refresh_token", jti: "never-issued" });
      assert.equal((await call(server.url, "GET", "/jwt/token", { user: forged })).status, 401);
    });

    it("the header names the key and the algorithm", () => {
      const header = decodeProtectedHeader(good);
      assert.equal(header.kid, realKid);
      assert.equal(header.alg, "EdDSA");
    });
  });
}
