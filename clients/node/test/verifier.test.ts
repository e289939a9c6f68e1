// createTokenVerifier against a real Tessera: both kinds of access token verified offline, with
// their typed claims; forged, expired, not-yet-valid, wrong-audience, wrong-issuer and refresh
// tokens refused with their codes; key rotation seen through the unknown-kid refetch (rate
// limited), the JWKS max-age (300 s) and its ETag (revalidated: 304, or a rotated set's 200); a
// key that leaves the JWKS stops verifying. Tokens signed with Tessera's own key that Tessera
// refuses (a member named twice, no typ, a number no reader can use, past exp, an aud array, a
// claim of the wrong shape) are refused here too, each asserted against Tessera's own answer.
import assert from "node:assert/strict";
import { createHmac, createPrivateKey, sign, type KeyObject } from "node:crypto";
import { inspect } from "node:util";
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT, type JWK } from "jose";
import { ManualClock } from "../../../src/core/clock.js";
import { algNone, b64url, withPayload } from "../../../test/jwt/forge.js";
import { jwtApi, type JwtApi } from "../../../test/jwt/api.js";
import { sessionApi } from "../../../test/session/api.js";
import { expectCode, expectOk } from "../../../test/support/api.js";
import { rest } from "../../../test/support/clients.js";
import { freePort } from "../../../test/support/net.js";
import { createTokenVerifier, TokenVerificationError, type TokenErrorCode, type TokenVerifierOptions } from "../src/index.js";
import { refusedHeaders } from "../src/verify/compact-jws.js";
import {
  countingFetch,
  jwtRefreshLogin,
  jwtTokens,
  otherClientId,
  refused,
  revokeKey,
  rotateKey,
  sessionTokens,
  startTestServer,
  storesUnderTest,
  TestClock,
  testClientId,
  type TestServer,
} from "./support.js";

const jwksPath = "/.well-known/jwks.json";

for (const store of storesUnderTest()) {
  describe(`@tessera/client createTokenVerifier against Tessera (${store})`, () => {
    describe("verifying Tessera's access tokens", () => {
      let server: TestServer;
      const verifierFor = (server: TestServer, more: Partial<TokenVerifierOptions> = {}) =>
        createTokenVerifier({ jwksUrl: server.url + jwksPath, issuer: "tessera", audience: "tessera", clientId: testClientId, ...more } as TokenVerifierOptions);
      before(async () => (server = await startTestServer({ store })));
      after(() => server.close());

      it("a seed 004 access token: kind jwt, with its user, subject and authentication method", async () => {
        const t = await jwtTokens(server);
        const v = await verifierFor(server).verify(t.access);
        assert.equal(v.kind, "jwt");
        assert.equal(v.userId, t.userId);
        assert.equal(v.user, t.user);
        assert.equal(v.authenticationMethod, "password");
        const claims = decodeJwt(t.access);
        assert.deepEqual(v.claims, claims);
        assert.equal(v.claims.token_type, "access_token");
        assert.equal(v.expiresAt.getTime(), claims.exp! * 1000);
      });

      it("a seed 004 access token from a refresh login: authenticationMethod refresh_token", async () => {
        const t = await jwtTokens(server);
        const v = await verifierFor(server).verify(await jwtRefreshLogin(server, t.refresh));
        assert.equal(v.kind, "jwt");
        assert.equal(v.kind === "jwt" && v.authenticationMethod, "refresh_token");
      });

      it("a seed 000 session access token: kind session, with its session, token id and client id", async () => {
        const t = await sessionTokens(server);
        const v = await verifierFor(server).verify(t.access);
        const claims = decodeJwt(t.access);
        assert.deepEqual(v, {
          kind: "session",
          userId: t.userId,
          sessionId: claims.sid,
          clientId: testClientId,
          tokenId: claims.jti,
          expiresAt: new Date(claims.exp! * 1000),
          claims,
        });
      });

      it("a session token of a client id among several configured: the one it was issued to", async () => {
        const t = await sessionTokens(server, otherClientId);
        const v = await verifierFor(server, { clientId: [testClientId, otherClientId] }).verify(t.access);
        assert.equal(v.kind === "session" && v.clientId, otherClientId);
      });

      it("refused: a session token of another client id (WRONG_AUDIENCE)", async () => {
        const t = await sessionTokens(server, otherClientId);
        await refused(verifierFor(server).verify(t.access), "WRONG_AUDIENCE", "the token was issued for another client id");
      });

      it("refused: session tokens when no client id is configured, JWT API tokens when no audience is", async () => {
        const s = await sessionTokens(server);
        const j = await jwtTokens(server);
        await refused(verifierFor(server, { clientId: undefined }).verify(s.access), "WRONG_AUDIENCE", "session tokens are not accepted (no client id configured)");
        await refused(verifierFor(server, { audience: undefined }).verify(j.access), "WRONG_AUDIENCE", "JWT API tokens are not accepted (no audience configured)");
      });

      it("refused: a JWT API token for another audience (WRONG_AUDIENCE)", async () => {
        const t = await jwtTokens(server);
        await refused(verifierFor(server, { audience: "billing" }).verify(t.access), "WRONG_AUDIENCE", "the token was issued for another audience");
      });

      it("refused: a token of another issuer (WRONG_ISSUER)", async () => {
        const t = await jwtTokens(server);
        await refused(verifierFor(server, { issuer: "https://elsewhere.example" }).verify(t.access), "WRONG_ISSUER", "the token was issued by another issuer");
      });

      it("refused: a seed 004 refresh token (WRONG_TOKEN_TYPE, its kind read before its audience), though its signature is good", async () => {
        const t = await jwtTokens(server);
        assert.equal(decodeJwt(t.refresh).aud, "tessera/refresh_token");
        await refused(verifierFor(server).verify(t.refresh), "WRONG_TOKEN_TYPE", 'not an access token (token_type "refresh_token")');
      });

      it("refused: a seed 000 refresh token, which is no JWT (MALFORMED_TOKEN)", async () => {
        const t = await sessionTokens(server);
        await refused(verifierFor(server).verify(t.refresh), "MALFORMED_TOKEN");
      });

      it("refused: an expired token (TOKEN_EXPIRED) once the clock reaches its exp, whatever the clock tolerance (nbf's alone), as in Tessera", async () => {
        const t = await jwtTokens(server);
        const exp = decodeJwt(t.access).exp!;
        const clock = new TestClock(exp * 1000 - 1);
        const v = verifierFor(server, { now: clock.now });
        assert.equal((await v.verify(t.access)).kind, "jwt", "a millisecond before its exp");
        clock.advanceSeconds(0.001);
        await refused(v.verify(t.access), "TOKEN_EXPIRED", "the token has expired");
        const tolerant = verifierFor(server, { now: new TestClock(exp * 1000).now, clockToleranceSeconds: 60 });
        await refused(tolerant.verify(t.access), "TOKEN_EXPIRED", "the token has expired");
      });

      // A clock that gives NaN (a date parsed from nothing) is the caller's mistake, not
      // Tessera's keys being unavailable: named, as the verifier names its other options.
      it("a clock (`now`) that gives NaN, or no number, fails verify with a TypeError naming `now`, not KEYS_UNAVAILABLE; a `now` that is not a function is refused when the verifier is made", async () => {
        const t = await jwtTokens(server);
        const outcome = async (now: () => number) => {
          try {
            return await verifierFor(server, { now }).verify(t.access);
          } catch (e) {
            return e instanceof TokenVerificationError ? `${e.code}: ${e.message}` : `${(e as Error).name}: ${(e as Error).message}`;
          }
        };
        const message = "TypeError: now: must return a finite number of milliseconds since the epoch";
        assert.deepEqual([await outcome(() => NaN), await outcome(() => Infinity), await outcome((() => "1") as unknown as () => number)], [message, message, message]);
        assert.throws(() => verifierFor(server, { now: 5 as unknown as () => number }), { name: "TypeError", message: "now: must be a function giving the time in milliseconds since the epoch" });
      });

      it("refused: a token whose nbf is ahead of the verifier's clock by more than the tolerance (TOKEN_NOT_YET_VALID)", async () => {
        const t = await jwtTokens(server);
        const nbf = decodeJwt(t.access).nbf!;
        const clock = new TestClock((nbf - 6) * 1000);
        const v = verifierFor(server, { now: clock.now });
        await refused(v.verify(t.access), "TOKEN_NOT_YET_VALID", "the token is not valid yet");
        clock.advanceSeconds(1);
        assert.equal((await v.verify(t.access)).kind, "jwt");
      });

      // Loggers write out an error's enumerable fields, its cause's too (JSON.stringify,
      // util.inspect, pino's and winston's error serializers): jose's claim errors hold the whole
      // claims set (payload), the user's id and login among them.
      it("a refusal by the claim checks holds neither the token nor its claims in any field, its cause included, and says which check failed: jose's code, the claim and the reason", async () => {
        const j = await jwtTokens(server);
        const s = await sessionTokens(server);
        const other = await sessionTokens(server, otherClientId);
        const jwtTimes = decodeJwt(j.access);
        const cases: Array<[string, () => Promise<unknown>, TokenErrorCode, Record<string, string>]> = [
          [j.access, () => verifierFor(server, { now: new TestClock(jwtTimes.exp! * 1000).now }).verify(j.access), "TOKEN_EXPIRED", { code: "ERR_JWT_EXPIRED", claim: "exp", reason: "check_failed" }],
          [j.access, () => verifierFor(server, { audience: "billing" }).verify(j.access), "WRONG_AUDIENCE", { code: "ERR_JWT_CLAIM_VALIDATION_FAILED", claim: "aud", reason: "check_failed" }],
          [j.access, () => verifierFor(server, { issuer: "https://elsewhere.example" }).verify(j.access), "WRONG_ISSUER", { code: "ERR_JWT_CLAIM_VALIDATION_FAILED", claim: "iss", reason: "check_failed" }],
          [j.access, () => verifierFor(server, { now: new TestClock((jwtTimes.nbf! - 6) * 1000).now }).verify(j.access), "TOKEN_NOT_YET_VALID", { code: "ERR_JWT_CLAIM_VALIDATION_FAILED", claim: "nbf", reason: "check_failed" }],
          [s.access, () => verifierFor(server, { now: new TestClock(decodeJwt(s.access).exp! * 1000).now }).verify(s.access), "TOKEN_EXPIRED", { code: "ERR_JWT_EXPIRED", claim: "exp", reason: "check_failed" }],
          [other.access, () => verifierFor(server).verify(other.access), "WRONG_AUDIENCE", { code: "ERR_JWT_CLAIM_VALIDATION_FAILED", claim: "aud", reason: "check_failed" }],
        ];
        for (const [token, verification, code, cause] of cases) {
          const err = await refused(verification(), code);
          const claims = decodeJwt(token);
          const secrets = [token, token.split(".")[1]!, ...[claims.sub, claims.user, claims.sid, claims.jti].filter((c): c is string => typeof c === "string")];
          for (const written of [inspect(err, { depth: Infinity }), JSON.stringify(err), JSON.stringify(err.cause)]) {
            const leaked = secrets.filter((secret) => written.includes(secret));
            assert.deepEqual(leaked, [], `${code}: the error as a logger writes it holds the token or its claims: ${written}`);
          }
          assert.deepEqual(JSON.parse(JSON.stringify(err)), { code, name: "TokenVerificationError" });
          assert.deepEqual(JSON.parse(JSON.stringify(err.cause)), cause, code);
        }
      });

      describe("forged tokens", () => {
        it("a changed payload under the original signature (INVALID_SIGNATURE)", async () => {
          const t = await jwtTokens(server);
          const forged = withPayload(t.access, (p) => ({ ...p, sub: "someone-else" }));
          await refused(verifierFor(server).verify(forged), "INVALID_SIGNATURE", "the token's signature does not verify");
        });

        it('alg "none": without a signature MALFORMED_TOKEN, with one UNSUPPORTED_ALGORITHM', async () => {
          const t = await jwtTokens(server);
          await refused(verifierFor(server).verify(algNone(t.access)), "MALFORMED_TOKEN", "the token is not base64url");
          await refused(verifierFor(server).verify(`${algNone(t.access)}AAAA`), "UNSUPPORTED_ALGORITHM", 'the token\'s algorithm ("none") is not accepted');
        });

        it("HS256 with Tessera's public key as the HMAC secret (UNSUPPORTED_ALGORITHM)", async () => {
          const t = await jwtTokens(server);
          const { kid } = decodeProtectedHeader(t.access);
          const jwk = (await rest(server.url, "GET", jwksPath)).body.keys.find((k: { kid: string }) => k.kid === kid);
          const input = `${b64url({ alg: "HS256", kid, typ: "JWT" })}.${t.access.split(".")[1]}`;
          for (const secret of [Buffer.from(jwk.x, "base64url"), Buffer.from(JSON.stringify(jwk))]) {
            const forged = `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
            await refused(verifierFor(server).verify(forged), "UNSUPPORTED_ALGORITHM", 'the token\'s algorithm ("HS256") is not accepted');
          }
        });

        it("signed by another Ed25519 key under Tessera's kid (INVALID_SIGNATURE), or under a kid of its own (UNKNOWN_KEY)", async () => {
          const t = await jwtTokens(server);
          const { kid } = decodeProtectedHeader(t.access);
          const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
          const sign = (k: string) => new SignJWT(decodeJwt(t.access)).setProtectedHeader({ alg: "EdDSA", kid: k, typ: "JWT" }).sign(privateKey);
          await refused(verifierFor(server).verify(await sign(kid!)), "INVALID_SIGNATURE");
          await refused(verifierFor(server).verify(await sign("attacker-key")), "UNKNOWN_KEY", "the token's key is not in the key set");
        });

        it("an ES256 header on Tessera's Ed25519 key (UNSUPPORTED_ALGORITHM: the key decides)", async () => {
          const t = await jwtTokens(server);
          const [h, p, s] = t.access.split(".");
          const forged = `${b64url({ ...decodeProtectedHeader(t.access), alg: "ES256" })}.${p}.${s}`;
          assert.notEqual(h, forged.split(".")[0]);
          await refused(verifierFor(server).verify(forged), "UNSUPPORTED_ALGORITHM", "the token's algorithm (ES256) is not its key's");
        });

        it("a signature spelled non-canonically (MALFORMED_TOKEN), headers pointing at other keys (MALFORMED_TOKEN)", async () => {
          const t = await jwtTokens(server);
          // 64 bytes: the last base64url character carries 2 unused bits; setting one keeps the bytes.
          const last = t.access.at(-1)!;
          const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
          const respelled = t.access.slice(0, -1) + alphabet[alphabet.indexOf(last) + 1];
          assert.deepEqual(Buffer.from(respelled.split(".")[2]!, "base64url"), Buffer.from(t.access.split(".")[2]!, "base64url"));
          await refused(verifierFor(server).verify(respelled), "MALFORMED_TOKEN", "the token's signature is not canonical base64url");
          const [, p, s] = t.access.split(".");
          for (const h of refusedHeaders) {
            const forged = `${b64url({ ...decodeProtectedHeader(t.access), [h]: h === "crit" ? ["exp"] : "https://attacker.example/keys" })}.${p}.${s}`;
            await refused(verifierFor(server).verify(forged), "MALFORMED_TOKEN", `the token header "${h}" is not accepted`);
          }
        });

        it("not a JWT at all (MALFORMED_TOKEN)", async () => {
          const v = verifierFor(server);
          await refused(v.verify(""), "MALFORMED_TOKEN", "the token is empty");
          await refused(v.verify("abc.def"), "MALFORMED_TOKEN", "the token is not a compact JWS (three dot-separated parts)");
          await refused(v.verify("a.b.c.d"), "MALFORMED_TOKEN", "the token is not a compact JWS (three dot-separated parts)");
          await refused(v.verify("e30.e30.e3 0"), "MALFORMED_TOKEN", "the token is not base64url");
          await refused(v.verify(`${b64url("[1]")}.e30.AAAA`), "MALFORMED_TOKEN", "the token header is not a JSON object");
          await refused(v.verify(`${b64url("{")}.e30.AAAA`), "MALFORMED_TOKEN", "the token header is not JSON");
          await refused(v.verify(`${b64url({ alg: "EdDSA" })}.e30.AAAA`), "MALFORMED_TOKEN", 'the token header has no "kid"');
          await refused(v.verify("a".repeat(8193)), "MALFORMED_TOKEN", "the token is longer than 8192 characters");
        });
      });

      // Tokens signed with Tessera's REAL key (read from its store) that Tessera itself refuses
      // (src/core/token-verifier.ts): each is refused here too, and Tessera's own answer (GET
      // /check) is asserted alongside. Each differs from a token both accept (the control) only in
      // the thing under test.
      describe("tokens Tessera refuses, signed with its own key", () => {
        let key: KeyObject;
        let kid: string;
        let jwt: JwtApi;
        before(async () => {
          const { access } = await jwtTokens(server);
          kid = decodeProtectedHeader(access).kid!;
          const record = (await server.tessera.store.keys.list()).find((k) => k.kid === kid)!;
          key = createPrivateKey({ key: JSON.parse(record.privateJwk) as JWK, format: "jwk" });
          jwt = jwtApi("rest", server.url);
        });
        after(() => jwt.close());

        /** `payload` (JSON text) signed with Tessera's key under `header` (JSON text). */
        function signed(header: string, payload: string): string {
          const input = `${b64url(header)}.${b64url(payload)}`;
          return `${input}.${sign(null, Buffer.from(input), key).toString("base64url")}`;
        }
        /** The header Tessera's tokens carry, as JSON text (`more` members added). */
        const header = (more: Record<string, unknown> = {}) => JSON.stringify({ alg: "EdDSA", kid, typ: "JWT", ...more });
        /** The claims of a fresh seed 004 access token, as JSON text (`more` members added or replaced). */
        async function payload(more: Record<string, unknown> = {}): Promise<string> {
          return JSON.stringify({ ...decodeJwt((await jwtTokens(server)).access), ...more });
        }
        /** The JSON text of `value` with `"name":<first>` written before its own members. */
        const withFirst = (json: string, name: string, first: unknown) => `{${JSON.stringify(name)}:${JSON.stringify(first)},${json.slice(1)}`;

        /** Tessera refuses `token` (GET /check: 400, `serverReason`, `serverMessage`); so does the verifier (`code`, `message`). */
        async function refusedByBoth(token: string, code: TokenErrorCode, message: string, serverMessage: string, serverReason = "INVALID_TOKEN"): Promise<void> {
          expectCode(await jwt.check({ access_token: token }), "invalid_argument", serverMessage, serverReason);
          await refused(verifierFor(server).verify(token), code, message);
        }
        /** Tessera accepts `token`, and so does the verifier. */
        async function acceptedByBoth(token: string): Promise<void> {
          assert.equal(expectOk(await jwt.check({ access_token: token })).sub, decodeJwt(token).sub);
          assert.equal((await verifierFor(server).verify(token)).kind, "jwt");
        }

        it("control: the claims of an issued token signed again under its header verify", async () => {
          await acceptedByBoth(signed(header(), await payload()));
        });

        it("a header or payload naming a member twice (MALFORMED_TOKEN): JSON.parse keeps the last, a reader in front may take the first", async () => {
          const claims = await payload();
          const cases: Array<[string, string, string]> = [
            [signed(withFirst(header(), "kid", "not-a-key-of-ours"), claims), 'the token header names member "kid" more than once', 'malformed token: member "kid" of the header is given more than once'],
            [signed(withFirst(header(), "alg", "none"), claims), 'the token header names member "alg" more than once', 'malformed token: member "alg" of the header is given more than once'],
            [signed(header(), withFirst(claims, "sub", "someone-else")), 'the token payload names member "sub" more than once', 'malformed token: member "sub" of the payload is given more than once'],
            [signed(header(), withFirst(claims, "exp", 1)), 'the token payload names member "exp" more than once', 'malformed token: member "exp" of the payload is given more than once'],
            [
              signed(header(), `${claims.slice(0, -1)},"note":{"a":1,"\\u0061":2}}`),
              'the token payload names member "note.a" more than once',
              'malformed token: member "note.a" of the payload is given more than once',
            ],
            [signed(header(), `${claims.slice(0, -1)},"a b":1,"a b":2}`), "the token payload names a member more than once", "malformed token: a member of the payload is given more than once"],
          ];
          for (const [token, message, serverMessage] of cases) await refusedByBoth(token, "MALFORMED_TOKEN", message, serverMessage);
        });

        it('a header typed other than "JWT", or not typed (MALFORMED_TOKEN); "jwt" and "application/JWT" verify, compared as a media type', async () => {
          const claims = await payload();
          await refusedByBoth(signed(JSON.stringify({ alg: "EdDSA", kid }), claims), "MALFORMED_TOKEN", 'the token header has no "typ" (it must be "JWT")', 'token has no type: header "typ" must be "JWT"');
          for (const typ of ["at+jwt", "JOSE", 5, null, ["JWT"]]) {
            const serverType = typeof typ === "string" ? JSON.stringify(typ) : `of JSON type ${typ === null ? "null" : Array.isArray(typ) ? "array" : typeof typ}`;
            await refusedByBoth(signed(header({ typ }), claims), "MALFORMED_TOKEN", 'the token header "typ" is not "JWT"', `unexpected token type ${serverType}: header "typ" must be "JWT"`);
          }
          for (const typ of ["jwt", "application/JWT", "Application/jwt"]) await acceptedByBoth(signed(header({ typ }), claims));
        });

        it("a number no reader can use (INVALID_CLAIMS): one JSON writes as no number (1e400 is Infinity), anywhere; a time claim before the epoch or past what a Date holds", async () => {
          const claims = JSON.parse(await payload()) as Record<string, unknown>;
          /** The claims of an issued token with `name` set to `raw` (JSON text, as written). */
          const withRaw = (name: string, raw: string) => JSON.stringify({ ...claims, [name]: "RAW" }).replace('"RAW"', raw);
          const cases: Array<[string, string, string]> = [
            ["exp", "1e400", "must be a finite number"],
            ["exp", "-1e400", "must be a finite number"],
            ["nbf", "1e400", "must be a finite number"],
            ["iat", "1e400", "must be a finite number"],
            ["note", "1e400", "must be a finite number"],
            ["note", '{"a":[1,-1e400]}', "must be a finite number"],
            ["exp", "8640000000001", "is out of range"],
            ["nbf", "-1", "is out of range"],
            ["iat", "-1", "is out of range"],
          ];
          for (const [name, raw, problem] of cases) {
            await refusedByBoth(signed(header(), withRaw(name, raw)), "INVALID_CLAIMS", `the token's "${name}" claim ${problem}`, `malformed token: "${name}" claim ${problem}`);
          }
          await refusedByBoth(
            signed(header(), withRaw("a claim", "1e400")),
            "INVALID_CLAIMS",
            "a claim of the token must be a finite number",
            "malformed token: a claim must be a finite number",
          );
          // The bounds themselves are times a Date holds.
          await acceptedByBoth(signed(header(), await payload({ exp: 8.64e12, iat: 0, nbf: 0 })));
        });

        it("exp has no leeway (TOKEN_EXPIRED once the clock reaches it), nbf the clock tolerance (5 s), as in Tessera", async () => {
          const now = Math.floor(Date.now() / 1000);
          for (const exp of [now, now - 2, now - 4]) {
            await refusedByBoth(signed(header(), await payload({ exp })), "TOKEN_EXPIRED", "the token has expired", "token expired", "TOKEN_EXPIRED");
          }
          await acceptedByBoth(signed(header(), await payload({ nbf: now + 3 })));
          await refusedByBoth(signed(header(), await payload({ nbf: now + 60 })), "TOKEN_NOT_YET_VALID", "the token is not valid yet", "token not yet valid", "TOKEN_NOT_YET_VALID");
        });

        it("iat may be up to 60 s ahead: a token issued further ahead is TOKEN_NOT_YET_VALID, whatever its nbf, as in Tessera", async () => {
          const claims = JSON.parse(await payload()) as Record<string, unknown>;
          const now = Math.floor(Date.now() / 1000);
          const { nbf: _nbf, ...noNbf } = claims;
          for (const ahead of [
            JSON.stringify({ ...claims, iat: now + 3600, nbf: now }),
            JSON.stringify({ ...noNbf, iat: now + 3600 }),
            JSON.stringify({ ...claims, iat: now + 90, nbf: now + 3 }),
          ]) {
            await refusedByBoth(signed(header(), ahead), "TOKEN_NOT_YET_VALID", "the token was issued in the future", "token issued in the future", "TOKEN_NOT_YET_VALID");
          }
          // A Tessera whose clock runs seconds ahead: its session tokens carry no nbf.
          await acceptedByBoth(signed(header(), JSON.stringify({ ...noNbf, iat: now + 3 })));
          await acceptedByBoth(signed(header(), JSON.stringify({ ...noNbf, iat: now + 30 })));
          const { iat: _iat, ...noIat } = claims;
          await refusedByBoth(signed(header(), JSON.stringify(noIat)), "INVALID_CLAIMS", 'the token\'s "iat" claim is missing or malformed', "token has no issue time");
        });

        // The tolerance is for a Tessera whose clock runs ahead: the time is taken to be at least
        // the nbf, so an exp at or before the nbf has passed, though this clock has not reached it.
        it("an nbf within the clock tolerance: the token is checked as at its nbf, so an exp at or before it is TOKEN_EXPIRED, as in Tessera", async () => {
          const claims = JSON.parse(await payload()) as Record<string, unknown>;
          const now = Math.floor(Date.now() / 1000);
          for (const exp of [now + 3, now + 4]) {
            await refusedByBoth(signed(header(), JSON.stringify({ ...claims, nbf: now + 4, exp })), "TOKEN_EXPIRED", "the token has expired", "token expired", "TOKEN_EXPIRED");
          }
          await acceptedByBoth(signed(header(), JSON.stringify({ ...claims, nbf: now + 4, exp: now + 5 })));
        });

        it("a seed 004 access token's aud is the audience itself: an array naming it is WRONG_AUDIENCE, as in Tessera", async () => {
          for (const aud of [["tessera"], ["other", "tessera"]]) {
            await refusedByBoth(signed(header(), await payload({ aud })), "WRONG_AUDIENCE", "the token was issued for another audience", "token issued for another audience", "WRONG_AUDIENCE");
          }
          // A session token's aud may be an array naming the client id, in both (jose's rule).
          const { access } = await sessionTokens(server);
          const session = signed(header(), JSON.stringify({ ...decodeJwt(access), aud: ["other", testClientId] }));
          expectOk(await sessionApi("rest", server.url).getSession({ clientId: testClientId, access: session }));
          assert.equal((await verifierFor(server).verify(session)).kind, "session");
        });

        it("a seed 004 access token's source_kids that is not a list of kids, or a credential_epoch that is not an integer (INVALID_CLAIMS), as in Tessera", async () => {
          const cases: Array<[string, unknown]> = [
            ["source_kids", "kid"],
            ["source_kids", [kid, 5]],
            ["source_kids", {}],
            ["credential_epoch", 1.5],
            ["credential_epoch", "0"],
            ["credential_epoch", 2 ** 53],
            ["credential_epoch", null],
          ];
          const claims = JSON.parse(await payload()) as Record<string, unknown>;
          for (const [name, value] of cases) {
            await refusedByBoth(signed(header(), JSON.stringify({ ...claims, [name]: value })), "INVALID_CLAIMS", `the token's "${name}" claim is malformed`, "invalid token claims");
          }
          // As Tessera issues them: the kids of the tokens it was made from, the user's epoch.
          await acceptedByBoth(signed(header(), await payload({ source_kids: [kid] })));
        });
      });

      it("KEYS_UNAVAILABLE when the key set cannot be fetched: nothing verifies", async () => {
        const t = await jwtTokens(server);
        const port = await freePort();
        const closed = createTokenVerifier({ jwksUrl: `http://127.0.0.1:${port}${jwksPath}`, audience: "tessera" });
        await refused(closed.verify(t.access), "KEYS_UNAVAILABLE", `GET http://127.0.0.1:${port}${jwksPath} failed`);
        const missing = createTokenVerifier({ jwksUrl: `${server.url}/no/such/keys`, audience: "tessera" });
        await refused(missing.verify(t.access), "KEYS_UNAVAILABLE", `GET ${server.url}/no/such/keys answered HTTP 404`);
      });
    });

    describe("key rotation (POST /v1/admin/keys:rotate)", () => {
      // Keys published 0 s before they sign: a rotation switches at once, so the promoted key is
      // one the verifier may not have fetched (with Tessera's default lead it always has).
      let server: TestServer;
      let published: TestServer;
      before(async () => {
        server = await startTestServer({ store, env: { TESSERA_KEY_PUBLISH_SECONDS: "0" } });
        published = await startTestServer({ store });
      });
      after(async () => {
        await server.close();
        await published.close();
      });

      /** Rotates twice: tokens are then signed by a key published after the verifier's fetch. */
      async function rotateToUnseenKey(): Promise<string> {
        await rotateKey(server);
        return rotateKey(server);
      }

      it("a token of the new key: UNKNOWN_KEY within the cooldown (no fetch), verified after it (one fetch); the old key keeps verifying", async () => {
        const counting = countingFetch();
        const clock = new TestClock();
        const v = createTokenVerifier({ jwksUrl: server.url + jwksPath, issuer: "tessera", audience: "tessera", fetch: counting.fetch, now: clock.now });
        const before = await jwtTokens(server);
        assert.equal((await v.verify(before.access)).kind, "jwt");
        assert.equal(counting.count(jwksPath), 1);

        const kid = await rotateToUnseenKey();
        const after = await jwtTokens(server);
        assert.equal(decodeProtectedHeader(after.access).kid, kid);
        clock.advanceSeconds(9);
        await refused(v.verify(after.access), "UNKNOWN_KEY", "the token's key is not in the key set");
        assert.equal(counting.count(jwksPath), 1, "no fetch within the cooldown (10 s)");
        clock.advanceSeconds(1);
        assert.equal((await v.verify(after.access)).kind, "jwt");
        assert.equal(counting.count(jwksPath), 2);
        assert.equal((await v.verify(before.access)).kind, "jwt", "the previous key stays in the JWKS");
        assert.equal(counting.count(jwksPath), 2);
      });

      it("concurrent verifications of tokens of a new key share one fetch; later unknown kids wait for the cooldown", async () => {
        const counting = countingFetch();
        const clock = new TestClock();
        const v = createTokenVerifier({ jwksUrl: server.url + jwksPath, issuer: "tessera", audience: "tessera", fetch: counting.fetch, now: clock.now });
        await v.verify((await jwtTokens(server)).access);
        await rotateToUnseenKey();
        const tokens = await Promise.all([1, 2, 3, 4, 5].map(() => jwtTokens(server)));
        clock.advanceSeconds(10);
        const verified = await Promise.all(tokens.map((t) => v.verify(t.access)));
        assert.deepEqual(verified.map((x) => x.userId), tokens.map((t) => t.userId));
        assert.equal(counting.count(jwksPath), 2);
        // An attacker's stream of invented kids costs at most one fetch per cooldown.
        const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
        for (let i = 0; i <= 20; i++) {
          const forged = await new SignJWT({ sub: "x" }).setProtectedHeader({ alg: "EdDSA", kid: `invented-${i}` }).sign(privateKey);
          await refused(v.verify(forged), "UNKNOWN_KEY");
          clock.advanceSeconds(1);
        }
        assert.equal(counting.count(jwksPath), 4, "two more fetches in 20 s of invented kids (cooldown 10 s)");
      });

      it("the JWKS is asked for again with its ETag: 304 while the keys are the same (tokens still verify), a rotated set's new ETag taken up", async () => {
        const counting = countingFetch();
        const clock = new TestClock();
        const v = createTokenVerifier({ jwksUrl: server.url + jwksPath, issuer: "tessera", audience: "tessera", fetch: counting.fetch, now: clock.now });
        const before = await jwtTokens(server);
        assert.equal((await v.verify(before.access)).kind, "jwt");
        const first = counting.exchanges[0]!;
        assert.deepEqual({ ...first, etag: undefined }, { path: jwksPath, ifNoneMatch: null, status: 200, etag: undefined });
        assert.match(String(first.etag), /^"[\w-]+"$/);

        // Past the max-age (at most 300 s): the same keys, so 304, and the cached keys verify.
        clock.advanceSeconds(300);
        assert.equal((await v.verify(before.access)).userId, before.userId);
        assert.deepEqual(counting.exchanges[1], { path: jwksPath, ifNoneMatch: first.etag, status: 304, etag: first.etag });

        // A rotation changes the set: a token of the new key fetches it (after the cooldown),
        // answered 200 with another ETag, which the next revalidation sends.
        await rotateToUnseenKey();
        const after = await jwtTokens(server);
        clock.advanceSeconds(10);
        assert.equal((await v.verify(after.access)).userId, after.userId);
        const rotated = counting.exchanges[2]!;
        assert.deepEqual({ ...rotated, etag: undefined }, { path: jwksPath, ifNoneMatch: first.etag, status: 200, etag: undefined });
        assert.notEqual(rotated.etag, first.etag);
        clock.advanceSeconds(300);
        assert.equal((await v.verify(after.access)).userId, after.userId);
        assert.equal((await v.verify(before.access)).userId, before.userId, "the previous key stays in the JWKS");
        assert.deepEqual(counting.exchanges[3], { path: jwksPath, ifNoneMatch: rotated.etag, status: 304, etag: rotated.etag });
        assert.equal(counting.exchanges.length, 4);
      });

      it("the JWKS max-age (300 s) is honoured: no fetch before it passes, one when it has", async () => {
        const counting = countingFetch();
        const clock = new TestClock();
        const v = createTokenVerifier({ jwksUrl: published.url + jwksPath, issuer: "tessera", audience: "tessera", fetch: counting.fetch, now: clock.now });
        const t = await jwtTokens(published);
        assert.equal((await rest(published.url, "GET", jwksPath)).headers.get("cache-control"), "public, max-age=300");
        await v.verify(t.access);
        clock.advanceSeconds(299);
        await v.verify(t.access);
        assert.equal(counting.count(jwksPath), 1);
        clock.advanceSeconds(1);
        await v.verify(t.access);
        assert.equal(counting.count(jwksPath), 2);
      });
    });

    describe("a key that leaves the JWKS (retired past its last token's lifetime, or revoked)", () => {
      // Tessera drops a rotated key from the JWKS once every token it signed has expired: with
      // refresh tokens of 60 s and access tokens of 900 s, 930 s after it stopped signing (the
      // promoted key signs once it has been published for TESSERA_KEY_PUBLISH_SECONDS). Tessera's
      // clock is moved past that; the verifier's own clock stays where the token is still valid,
      // as a verifier's would when a key is withdrawn early.
      let server: TestServer;
      let serverClock: ManualClock;
      let start: number;
      async function startServer(publishSeconds: number): Promise<void> {
        start = Date.now();
        serverClock = new ManualClock(start);
        server = await startTestServer({
          store,
          clock: serverClock,
          env: { TESSERA_REFRESH_TOKEN_TTL_SECONDS: "60", TESSERA_KEY_PUBLISH_SECONDS: String(publishSeconds) },
        });
      }
      afterEach(() => server.close());

      /** Tessera no longer lists `kid` (its clock is past the retired key's last token). */
      async function assertWithdrawn(kid: string): Promise<void> {
        const kids = (await rest(server.url, "GET", jwksPath)).body.keys.map((k: { kid: string }) => k.kid);
        assert.ok(!kids.includes(kid), "Tessera no longer lists the key");
      }

      it("stops verifying when the cached key set expires (KEY_REMOVED); until then the cache answers", async () => {
        // Keys published 330 s before they sign: the JWKS max-age is 300 s.
        await startServer(330);
        const clock = new TestClock(start);
        const counting = countingFetch();
        const v = createTokenVerifier({ jwksUrl: server.url + jwksPath, issuer: "tessera", audience: "tessera", fetch: counting.fetch, now: clock.now });
        const { access: token } = await jwtTokens(server);
        await v.verify(token);
        await rotateKey(server);
        serverClock.advance(330_000 + 931_000);
        await assertWithdrawn(decodeProtectedHeader(token).kid!);
        clock.advanceSeconds(299);
        assert.equal((await v.verify(token)).kind, "jwt", "still fresh: the cached set");
        clock.advanceSeconds(1);
        await refused(v.verify(token), "KEY_REMOVED", "the token's key has been removed from the key set (retired or revoked)");
        assert.equal(counting.count(jwksPath), 2);
      });

      it("stops verifying once a fetch for an unknown kid sees it gone (KEY_REMOVED)", async () => {
        // Keys published 0 s before they sign: two rotations switch to a key the verifier has not seen.
        await startServer(0);
        const clock = new TestClock(start);
        const v = createTokenVerifier({ jwksUrl: server.url + jwksPath, issuer: "tessera", audience: "tessera", now: clock.now });
        const { access: token } = await jwtTokens(server);
        await v.verify(token);
        await rotateKey(server);
        await rotateKey(server);
        const { access: newToken } = await jwtTokens(server);
        serverClock.advance(931_000);
        await assertWithdrawn(decodeProtectedHeader(token).kid!);
        clock.advanceSeconds(10);
        assert.equal((await v.verify(newToken)).kind, "jwt", "the new key: fetched");
        await refused(v.verify(token), "KEY_REMOVED");
      });

      it("a key revoked (POST /v1/admin/keys/{kid}:revoke): Tessera drops it at once; the verifier once its cached set expires (KEY_REMOVED)", async () => {
        await startServer(330);
        const clock = new TestClock(start);
        const counting = countingFetch();
        const v = createTokenVerifier({ jwksUrl: server.url + jwksPath, issuer: "tessera", audience: "tessera", fetch: counting.fetch, now: clock.now });
        const { access: token } = await jwtTokens(server);
        await v.verify(token);
        const kid = decodeProtectedHeader(token).kid!;
        await revokeKey(server, kid);
        await assertWithdrawn(kid);
        clock.advanceSeconds(299);
        assert.equal((await v.verify(token)).kind, "jwt", "still fresh: the cached set (max-age 300 s)");
        clock.advanceSeconds(1);
        await refused(v.verify(token), "KEY_REMOVED", "the token's key has been removed from the key set (retired or revoked)");
        assert.equal(counting.count(jwksPath), 2);
        const { access: fresh } = await jwtTokens(server);
        assert.notEqual(decodeProtectedHeader(fresh).kid, kid, "the next key signs at once");
        assert.equal((await v.verify(fresh)).kind, "jwt");
      });
    });

    describe("discovery: createTokenVerifier({ issuer }) with TESSERA_PUBLIC_URL", () => {
      let server: TestServer;
      let publicUrl: string;
      before(async () => {
        const port = await freePort();
        publicUrl = `http://127.0.0.1:${port}`;
        server = await startTestServer({ store, env: { PORT: String(port), TESSERA_PUBLIC_URL: publicUrl } });
      });
      after(() => server.close());

      it("finds the keys through /.well-known/openid-configuration (read once) and checks iss against the issuer", async () => {
        const counting = countingFetch();
        const v = createTokenVerifier({ issuer: publicUrl, audience: "tessera", clientId: testClientId, fetch: counting.fetch });
        const j = await jwtTokens(server);
        const s = await sessionTokens(server);
        assert.equal(decodeJwt(j.access).iss, publicUrl);
        assert.equal((await v.verify(j.access)).kind, "jwt");
        assert.equal((await v.verify(s.access)).kind, "session");
        assert.deepEqual(counting.urls, [`${publicUrl}/.well-known/openid-configuration`, `${publicUrl}${jwksPath}`]);
        const other = createTokenVerifier({ jwksUrl: publicUrl + jwksPath, issuer: "tessera", audience: "tessera" });
        await refused(other.verify(j.access), "WRONG_ISSUER");
      });

      it("an issuer the document does not name exactly: KEYS_UNAVAILABLE, saying so", async () => {
        const v = createTokenVerifier({ issuer: `${publicUrl}/`, audience: "tessera" });
        const j = await jwtTokens(server);
        await refused(
          v.verify(j.access),
          "KEYS_UNAVAILABLE",
          `the discovery document at ${publicUrl}/.well-known/openid-configuration names another issuer ("${publicUrl}", not "${publicUrl}/")`,
        );
      });
    });

    describe("TESSERA_JWT_ALG=ES256", () => {
      let server: TestServer;
      before(async () => (server = await startTestServer({ store, env: { TESSERA_JWT_ALG: "ES256" } })));
      after(() => server.close());

      it("ES256 tokens verify by default; a verifier pinned to EdDSA refuses them (UNSUPPORTED_ALGORITHM)", async () => {
        const j = await jwtTokens(server);
        const s = await sessionTokens(server);
        assert.equal(decodeProtectedHeader(j.access).alg, "ES256");
        const v = createTokenVerifier({ jwksUrl: server.url + jwksPath, issuer: "tessera", audience: "tessera", clientId: testClientId });
        assert.equal((await v.verify(j.access)).kind, "jwt");
        assert.equal((await v.verify(s.access)).kind, "session");
        const pinned = createTokenVerifier({ jwksUrl: server.url + jwksPath, audience: "tessera", algorithms: ["EdDSA"] });
        await refused(pinned.verify(j.access), "UNSUPPORTED_ALGORITHM", 'the token\'s algorithm ("ES256") is not accepted');
        const forged = withPayload(j.access, (p) => ({ ...p, user: "admin" }));
        await refused(v.verify(forged), "INVALID_SIGNATURE");
      });
    });
  });
}
