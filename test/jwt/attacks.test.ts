// Seed 004 tokens under attack: every forged token is refused by GET /check (400) and by the
// interceptor (401), with the reason, over gRPC, Connect and REST. Forgeries are signed with the
// server's REAL key (read from its store), so each case differs from an accepted token only in
// the one thing under test; a control case proves the forging harness itself produces tokens
// the server accepts.
import assert from "node:assert/strict";
import { CompactSign, FlattenedSign, SignJWT, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK, type JWTHeaderParameters } from "jose";
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JSONWebKeySet } from "jose";
import { expectCode, expectOk, protocols } from "../support/api.js";
import { bearer } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { createJwtUser, jwtLogin, jwtRefreshToken } from "../support/users.js";
import { jwtApi, type JwtApi } from "./api.js";
import { algNone, b64url, withPayload } from "./forge.js";

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
      good = await jwtLogin(server, await createJwtUser(server));
      claims = decodeJwt(good) as Record<string, unknown>;
      // The key that signed the token (the store's highest generation is the published next key).
      const record = (await server.tessera.store.keys.list()).find((k) => k.kid === decodeProtectedHeader(good).kid)!;
      realKid = record.kid;
      realKey = (await importJWK(JSON.parse(record.privateJwk) as JWK, record.alg)) as CryptoKey;
      publicJwk = JSON.parse(record.publicJwk) as JWK;
    });
    after(async () => {
      await server?.close();
    });

    /** Signs `payload` (an object, or the JSON text itself) with the server's own key and the given header. */
    function forge(header: Partial<JWTHeaderParameters>, payload: Record<string, unknown> | string = claims): Promise<string> {
      return new CompactSign(new TextEncoder().encode(typeof payload === "string" ? payload : JSON.stringify(payload)))
        .setProtectedHeader({ alg: "EdDSA", kid: realKid, typ: "JWT", ...header } as JWTHeaderParameters)
        .sign(realKey);
    }

    for (const protocol of protocols) {
      describe(`over ${protocol}`, () => {
        let api: JwtApi;
        before(() => {
          api = jwtApi(protocol, server.url);
        });
        after(() => api.close());

        /** GET /check refuses the token with 400, exactly `message` and `reason`; the interceptor with 401 and the same message and reason. */
        async function assertRefused(token: string, message: string, reason = "INVALID_TOKEN"): Promise<void> {
          expectCode(await api.check({ access_token: token }), "invalid_argument", message, reason);
          expectCode(await api.getRefreshToken({}, bearer(token)), "unauthenticated", message, reason);
        }

        it("control: a token forged with the real key and unchanged claims is accepted", async () => {
          assert.deepEqual(expectOk(await api.check({ access_token: good })), claims);
          const forged = await forge({});
          assert.deepEqual(expectOk(await api.check({ access_token: forged })), claims);
          expectOk(await api.getRefreshToken({}, bearer(forged)));
        });

        it("alg none is refused", async () => {
          await assertRefused(algNone(good), "unexpected token algorithm");
          const noneNoKid = `${b64url({ alg: "none", typ: "JWT" })}.${good.split(".")[1]}.`;
          await assertRefused(noneNoKid, "token has no key id");
        });

        it("HS256 signed with the public key (algorithm confusion) is refused", async () => {
          const pem = expectOk(await api.getPublicKey()).text;
          const secrets = [
            new TextEncoder().encode(pem),
            new TextEncoder().encode(JSON.stringify(publicJwk)),
            Buffer.from(publicJwk.x!, "base64url"),
          ];
          for (const secret of secrets) {
            const token = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: realKid, typ: "JWT" }).sign(secret);
            await assertRefused(token, "unexpected token algorithm");
          }
        });

        it("an unknown kid is refused, and so is a missing one", async () => {
          await assertRefused(await forge({ kid: "not-a-key-of-ours" }), "token signed by an unknown key");
          const attacker = await generateKeyPair("EdDSA", { crv: "Ed25519" });
          const own = await new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", kid: "attacker", typ: "JWT" }).sign(attacker.privateKey);
          await assertRefused(own, "token signed by an unknown key");
          const noKid = await new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
            .setProtectedHeader({ alg: "EdDSA", typ: "JWT" })
            .sign(realKey);
          await assertRefused(noKid, "token has no key id");
        });

        it("jku, x5u, jwk and x5c headers are refused, even on an otherwise valid token", async () => {
          const attacker = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
          const attackerJwk = await exportJWK(attacker.publicKey);
          await assertRefused(await forge({ jku: "https://attacker.example/jwks.json" }), 'token header "jku" is not accepted');
          await assertRefused(await forge({ x5u: "https://attacker.example/cert.pem" }), 'token header "x5u" is not accepted');
          await assertRefused(await forge({ jwk: attackerJwk }), 'token header "jwk" is not accepted');
          await assertRefused(await forge({ x5c: ["MIIB"] }), 'token header "x5c" is not accepted');
          // The classic embedded-key attack: signed by the attacker's key, which the header carries.
          const embedded = await new SignJWT(claims)
            .setProtectedHeader({ alg: "EdDSA", kid: realKid, typ: "JWT", jwk: attackerJwk })
            .sign(attacker.privateKey);
          await assertRefused(embedded, 'token header "jwk" is not accepted');
        });

        it("b64, crit and x5t headers are refused, even on an otherwise valid token", async () => {
          // b64: false (RFC 7797) says the signature covers the payload unencoded: a verifier that
          // honours it reads another payload than one that ignores it without crit, as jose does.
          // Signed here as jose signs it then: over the encoded payload, which Tessera checks.
          const signedWith = async (header: JWTHeaderParameters) => {
            const jws = await new FlattenedSign(new TextEncoder().encode(JSON.stringify(claims))).setProtectedHeader(header).sign(realKey);
            return `${jws.protected}.${jws.payload}.${jws.signature}`;
          };
          const header = { alg: "EdDSA", kid: realKid, typ: "JWT" };
          await assertRefused(await signedWith({ ...header, b64: false }), 'token header "b64" is not accepted');
          await assertRefused(await signedWith({ ...header, b64: true }), 'token header "b64" is not accepted');
          await assertRefused(await signedWith({ ...header, b64: true, crit: ["b64"] }), 'token header "crit" is not accepted');
          // Certificate thumbprints point at other keys, as x5u and x5c do.
          await assertRefused(await forge({ x5t: "dGh1bWJwcmludA" }), 'token header "x5t" is not accepted');
          await assertRefused(await forge({ "x5t#S256": "dGh1bWJwcmludC1zaGEyNTY" }), 'token header "x5t#S256" is not accepted');
        });

        it("a header longer than 1024 characters is refused before it is read, whatever its signature", async () => {
          /** A header of `bytes` bytes of JSON: ours, and a member padding it out. */
          const header = (bytes: number) => {
            const base = { alg: "EdDSA", kid: realKid, typ: "JWT", pad: "" };
            return { ...base, pad: "x".repeat(bytes - JSON.stringify(base).length) };
          };
          // Control: 768 bytes, 1024 characters, signed with the real key.
          const longest = await forge(header(768));
          assert.equal(longest.indexOf("."), 1024);
          assert.deepEqual(expectOk(await api.check({ access_token: longest })), claims);
          const message = "malformed token: the header is longer than 1024 characters";
          await assertRefused(await forge(header(769)), message);
          // Parsed before its signature is checked: nested arrays, whose JSON.parse alone costs
          // far more than a token's check, signed by no one.
          const nested = `${b64url(`{"alg":"EdDSA","kid":"${realKid}","typ":"JWT","x":${"[".repeat(4000)}${"]".repeat(4000)}}`)}.${good.split(".")[1]}.${good.split(".")[2]}`;
          await assertRefused(nested, message);
          // GET /user answers it as no token (REST 204).
          assert.equal(expectOk(await api.getUser({}, bearer(nested)), 204), undefined);
        });

        it("a token signed by another key under our kid is refused", async () => {
          const attacker = await generateKeyPair("EdDSA", { crv: "Ed25519" });
          const token = await new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", kid: realKid, typ: "JWT" }).sign(attacker.privateKey);
          await assertRefused(token, "invalid token signature");
        });

        it("a tampered payload is refused", async () => {
          await assertRefused(withPayload(good, (p) => ({ ...p, user: "admin" })), "invalid token signature");
          await assertRefused(withPayload(good, (p) => ({ ...p, exp: (p.exp as number) + 86400 })), "invalid token signature");
          await assertRefused(withPayload(good, (p) => ({ ...p, sub: "00000000-0000-4000-8000-000000000000" })), "invalid token signature");
          const [h, p, s] = good.split(".");
          const flipped = s!.slice(0, 10) + (s![10] === "A" ? "B" : "A") + s!.slice(11);
          await assertRefused(`${h}.${p}.${flipped}`, "invalid token signature");
        });

        it("a validly signed token of the wrong type, audience or issuer, or without the claims, is refused", async () => {
          await assertRefused(await forge({}, { ...claims, token_type: "refresh_token", jti: "x" }), "not an access token", "WRONG_TOKEN_TYPE");
          await assertRefused(await forge({}, { ...claims, token_type: "id_token" }), "not an access token", "WRONG_TOKEN_TYPE");
          await assertRefused(await forge({}, { ...claims, aud: "someone-else" }), "token issued for another audience", "WRONG_AUDIENCE");
          // The refresh tokens' audience is no access token's.
          await assertRefused(await forge({}, { ...claims, aud: `${server.config.jwtAudience}/refresh_token` }), "token issued for another audience", "WRONG_AUDIENCE");
          await assertRefused(await forge({}, { ...claims, iss: "someone-else" }), "token issued by another issuer", "WRONG_ISSUER");
          await assertRefused(await forge({}, { ...claims, authentication_method: "magic" }), "invalid token claims");
          const { sub: _sub, ...noSub } = claims;
          await assertRefused(await forge({}, noSub), "invalid token claims");
          const { exp: _exp, ...noExp } = claims;
          await assertRefused(await forge({}, noExp), "token has no expiry");
        });

        it("a validly signed token with a malformed time claim or a number JSON cannot answer is refused naming the claim", async () => {
          /** The claims' JSON text with `claim` set to the JSON text `value` (1e400 parses as Infinity). */
          const withClaim = (claim: string, value: string) => JSON.stringify({ ...claims, [claim]: 0 }).replace(`"${claim}":0`, `"${claim}":${value}`);
          const cases: Array<[string, string]> = [
            [withClaim("exp", "1e400"), 'malformed token: "exp" claim must be a finite number'],
            [withClaim("exp", "-1e400"), 'malformed token: "exp" claim must be a finite number'],
            [withClaim("nbf", "1e400"), 'malformed token: "nbf" claim must be a finite number'],
            [withClaim("iat", "1e400"), 'malformed token: "iat" claim must be a finite number'],
            [withClaim("exp", "1e300"), 'malformed token: "exp" claim is out of range'],
            [withClaim("iat", "-1"), 'malformed token: "iat" claim is out of range'],
            [withClaim("note", "[1,{\"a\":1e400}]"), 'malformed token: "note" claim must be a finite number'],
            [withClaim("nbf", '"yesterday"'), 'malformed token: "nbf" claim must be a number'],
            [withClaim("iat", "null"), 'malformed token: "iat" claim must be a number'],
            [withClaim("exp", '"2099"'), 'malformed token: "exp" claim must be a number'],
          ];
          for (const [payload, reason] of cases) {
            const token = await forge({}, payload);
            await assertRefused(token, reason);
            // GET /user answers a token refused as no token: no claims (REST 204), never a 500.
            assert.equal(expectOk(await api.getUser({ access_token: token }), 204), undefined, payload);
            assert.equal(expectOk(await api.getUser({}, bearer(token)), 204), undefined, payload);
          }
        });

        it("a token signed with the real key but issued in the future (iat more than 60 s ahead) is not yet valid, whatever its nbf", async () => {
          const now = Math.floor(Date.now() / 1000);
          const { nbf: _nbf, ...noNbf } = claims;
          for (const payload of [
            { ...claims, iat: now + 3600, nbf: now, exp: now + 7200 },
            { ...noNbf, iat: now + 3600, exp: now + 7200 },
          ]) {
            await assertRefused(await forge({}, payload), "token issued in the future", "TOKEN_NOT_YET_VALID");
            assert.equal(expectOk(await api.getUser({}, bearer(await forge({}, payload))), 204), undefined);
          }
          // Control: the same claims issued now are accepted.
          expectOk(await api.check({ access_token: await forge({}, { ...claims, iat: now, nbf: now, exp: now + 7200 }) }));
        });

        it("an access token presented as a refresh token, and a forged refresh token, are refused (401)", async () => {
          expectCode(await api.getToken({ user: good }), "unauthenticated", "invalid refresh token: not a refresh token", "WRONG_TOKEN_TYPE");
          // Correctly signed, but its jti was never issued: revocation state is the store's.
          const forged = await forge({}, { ...claims, token_type: "refresh_token", jti: "never-issued" });
          expectCode(await api.getToken({ user: forged }), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
        });
      });
    }

    it("a verifier of access JWTs that checks the signature, issuer and audience (jose over the JWKS) refuses a refresh JWT", async () => {
      const jwks = createLocalJWKSet((await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet);
      const rules = { issuer: server.config.jwtIssuer, audience: server.config.jwtAudience };
      // Control: the access JWT passes those checks.
      assert.equal((await jwtVerify(good, jwks, rules)).payload.sub, claims.sub);
      const refresh = await jwtRefreshToken(server, good);
      assert.equal(decodeJwt(refresh).aud, `${server.config.jwtAudience}/refresh_token`);
      await assert.rejects(jwtVerify(refresh, jwks, rules), (e) => e instanceof errors.JWTClaimValidationFailed && e.claim === "aud");
      // Tessera itself takes it as a refresh token.
      const api = jwtApi("rest", server.url);
      try {
        assert.equal(decodeJwt(expectOk(await api.getToken({ user: refresh })).text).authentication_method, "refresh_token");
      } finally {
        api.close();
      }
    });

    it("a refresh token issued with the access tokens' audience (before refresh tokens had their own) is still taken until it expires", async () => {
      const now = Math.floor(Date.now() / 1000);
      const jti = `legacy-${now}-${Math.random().toString(16).slice(2)}`;
      const { authentication_method: _method, ...base } = claims;
      const legacy = await forge({}, { ...base, aud: server.config.jwtAudience, token_type: "refresh_token", jti, iat: now, nbf: now, exp: now + 3600 });
      await server.tessera.store.jwtRefreshTokens.create({
        jti,
        userId: claims.sub as string,
        issuedAt: new Date(now * 1000),
        expiresAt: new Date((now + 3600) * 1000),
        credentialEpoch: claims.credential_epoch as number,
      });
      const api = jwtApi("rest", server.url);
      try {
        assert.equal(decodeJwt(expectOk(await api.getToken({ user: legacy })).text).authentication_method, "refresh_token");
        // It is still no access token.
        expectCode(await api.check({ access_token: legacy }), "invalid_argument", "not an access token", "WRONG_TOKEN_TYPE");
      } finally {
        api.close();
      }
    });

    it("the header of an issued token names the key and the algorithm", () => {
      const header = decodeProtectedHeader(good);
      assert.equal(header.kid, realKid);
      assert.equal(header.alg, "EdDSA");
    });
  });
}
