// Keys are published before they sign, and a compromised key can be withdrawn.
// - A verifier that caches the JWKS as long as its Cache-Control allows verifies every token
//   signed while its copy is fresh: a rotation promotes a key published at least
//   TESSERA_KEY_PUBLISH_SECONDS before (longer than the max-age), and publishes the next one.
// - A retired key verifies (and stays in the JWKS) only as long as its tokens can live.
// - POST /v1/admin/keys/{kid}:revoke (admin) removes the key from the JWKS and every token it
//   signed fails at once on the answering instance and, within the 30 s reload interval, on the
//   other instance on the same store; revoking the signing key first promotes the next one.
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from "jose";
import { ManualClock } from "../../src/core/clock.js";
import { expectCode, expectOk, protocols } from "../support/api.js";
import { bearer, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { admin, clientIdHeader, jwtLogin, jwtRefreshToken, signUp, startSession, uniqueEmail } from "../support/users.js";
import { keyApi } from "../key/api.js";
import { jwtApi } from "../jwt/api.js";
import { gate, startServerPair, type ServerPair } from "./support.js";

const kidOf = (token: string) => decodeProtectedHeader(token).kid!;
const maxAgeOf = (headers: Headers) => Number(/max-age=(\d+)/.exec(headers.get("cache-control") ?? "")?.[1]);

for (const store of storesUnderTest()) {
  describe(`Signing keys on ${store}`, function () {
    this.timeout(60_000);

    describe("publication before use", () => {
      const clock = new ManualClock(Date.now());
      let server: TestServer;
      before(async () => {
        server = await startTestServer({ store, clock, env: { TESSERA_ACCESS_TOKEN_TTL_SECONDS: "60", TESSERA_REFRESH_TOKEN_TTL_SECONDS: "120" } });
      });
      after(() => server.close());

      /** A session access token and a JWT access token, signed now. */
      async function freshTokens(): Promise<string[]> {
        const email = uniqueEmail("keys");
        await signUp(server, email);
        return [(await startSession(server, email)).access_token, await jwtLogin(server, email)];
      }

      /** Verifies with a cached JWKS copy as a verifier would, at the server's time. */
      async function verifiesWith(copy: JSONWebKeySet, token: string): Promise<void> {
        await jwtVerify(token, createLocalJWKSet(copy), { currentDate: clock.now(), audience: [testClientId, server.config.jwtAudience] });
      }

      for (const protocol of protocols) {
        it(`every token signed while a cached JWKS copy is fresh verifies with that copy, across rotations (${protocol})`, async () => {
          const keys = keyApi(protocol, server.url);
          try {
            for (let round = 0; round < 3; round++) {
              const fetched = await keys.getJwks();
              const copy = expectOk(fetched) as JSONWebKeySet;
              const maxAge = maxAgeOf(fetched.headers);
              assert.ok(maxAge > 0 && maxAge <= server.config.keyPublishSeconds, `max-age ${maxAge} within the publication lead`);
              const promoted = expectOk(await keys.rotateKey(admin)).kid;
              assert.ok(copy.keys.some((k) => k.kid === promoted), "the promoted key was published before the rotation");
              // Right after the rotation and at the end of the copy's life, new tokens verify with it.
              for (const token of await freshTokens()) await verifiesWith(copy, token);
              clock.advance(maxAge * 1000);
              for (const token of await freshTokens()) await verifiesWith(copy, token);
            }
            // Once published for the lead, the promoted key signs.
            const published = expectOk(await keys.getJwks()).keys;
            clock.advance(server.config.keyPublishSeconds * 1000);
            const [sessionToken, jwtToken] = await freshTokens();
            assert.equal(kidOf(sessionToken!), kidOf(jwtToken!));
            assert.ok(published.some((k) => k.kid === kidOf(jwtToken!)));
          } finally {
            keys.close();
          }
        });
      }

      // GET /jwt/pubkey is the signing key alone, not the next one: a rotation changes it at once
      // (the next key published for the lead signs from the rotation), so no copy of it may be
      // used without asking again. A cache keeps it and revalidates it with its ETag.
      it("a GET /jwt/pubkey copy is used only once revalidated: no-cache, 304 while the signing key is the same", async () => {
                // The next key has been published for the whole lead: the rotation below promotes it at once.
        clock.advance(server.config.keyPublishSeconds * 1000);
        const fetched = await rest(server.url, "GET", "/jwt/pubkey");
        assert.equal(fetched.status, 200);
        const before = createPublicKey(fetched.text);
        const [, jwtToken] = await freshTokens();
        await jwtVerify(jwtToken!, before, { currentDate: clock.now() });
        const cacheControl = fetched.headers.get("cache-control")!;
        const etag = fetched.headers.get("etag")!;
        assert.equal((await rest(server.url, "GET", "/jwt/pubkey", { headers: { "if-none-match": etag } })).status, 304);

        expectOk(await keyApi("rest", server.url).rotateKey(admin));
        const [, after] = await freshTokens();
        // A copy a cache may still use as it is (its max-age not yet passed, no no-cache) must verify it.
        if (!/no-cache|no-store/.test(cacheControl) && maxAgeOf(fetched.headers) > 0) await jwtVerify(after!, before, { currentDate: clock.now() });
        assert.equal(cacheControl, "public, no-cache");
        const again = await rest(server.url, "GET", "/jwt/pubkey", { headers: { "if-none-match": etag } });
        assert.equal(again.status, 200);
        assert.notEqual(again.text, fetched.text);
        await jwtVerify(after!, createPublicKey(again.text), { currentDate: clock.now() });
      });

      it("a retired key verifies, and is published, only as long as its tokens can live", async () => {
        const keys = keyApi("rest", server.url);
        clock.advance(server.config.keyPublishSeconds * 1000);
        const [, old] = await freshTokens();
        const oldKid = kidOf(old!);
        expectOk(await keys.rotateKey(admin));
        const [, next] = await freshTokens();
        assert.notEqual(kidOf(next!), oldKid, "the promoted key signs (published long enough)");
        // The longest-lived token the old key signed (a 120 s refresh token) plus the 30 s in which
        // other instances may still sign with it.
        clock.advance(149_000);
        assert.ok(expectOk(await keys.getJwks()).keys.some((k) => k.kid === oldKid));
        clock.advance(1_000);
        assert.ok(!expectOk(await keys.getJwks()).keys.some((k) => k.kid === oldKid));
        const check = await rest(server.url, "GET", "/jwt/check", { headers: bearer(old!) });
        assert.equal(check.status, 400, check.text);
      });

      it("DELETE /jwt/refresh_token of an expired refresh token is 204 also once the retired key that signed it verifies no more", async () => {
        clock.advance(server.config.keyPublishSeconds * 1000);
        const email = uniqueEmail("retired-delete");
        await signUp(server, email);
        const refresh = await jwtRefreshToken(server, await jwtLogin(server, email));
        expectOk(await keyApi("rest", server.url).rotateKey(admin));
        clock.advance(150_000);
        assert.ok(!expectOk(await keyApi("rest", server.url).getJwks()).keys.some((k) => k.kid === kidOf(refresh)), "the key verifies no more");
        for (const protocol of protocols) {
          const api = jwtApi(protocol, server.url);
          try {
            expectOk(await api.deleteRefreshToken({ refresh_token: refresh }, bearer(await jwtLogin(server, email))), 204);
          } finally {
            api.close();
          }
        }
      });

      it("a key whose retirement a rotation did not get to write (MongoDB writes it after the promotion) stops verifying all the same", async () => {
        const keys = keyApi("rest", server.url);
        clock.advance(server.config.keyPublishSeconds * 1000);
        const [, old] = await freshTokens();
        const oldKid = kidOf(old!);
        const stored = server.tessera.store.keys;
        const rotate = stored.rotate;
        stored.rotate = (next, change) => {
          stored.rotate = rotate;
          return rotate.call(stored, next, { promote: change.promote });
        };
        try {
          expectOk(await keys.rotateKey(admin));
        } finally {
          stored.rotate = rotate;
        }
        assert.equal((await stored.list()).find((k) => k.kid === oldKid)?.retiredAt, undefined, "the retirement was not written");
        const [, next] = await freshTokens();
        assert.notEqual(kidOf(next!), oldKid, "the promoted key signs");
        clock.advance(149_000);
        assert.ok(expectOk(await keys.getJwks()).keys.some((k) => k.kid === oldKid));
        clock.advance(1_000);
        assert.ok(!expectOk(await keys.getJwks()).keys.some((k) => k.kid === oldKid));
        const check = await rest(server.url, "GET", "/jwt/check", { headers: bearer(old!) });
        assert.equal(check.status, 400, check.text);
      });

      // A rotation soon after another promotes a key that signs only once published for the
      // lead. Revoking that key before it signs leaves the key that signs unharmed: it goes on
      // until the next key, published by that rotation, has been published for the lead too. So
      // too when another rotation has promoted that next key already (it was to sign after it).
      for (const rotatedSince of [false, true]) {
        const title = rotatedSince
          ? "revoking the key a rotation promoted before it signs, another rotation since: the signing key goes on until the key that rotation published has been published for the lead"
          : "revoking the key a rotation promoted before it signs: the signing key goes on until the next key has been published for the lead";
        it(title, async () => {
          const keys = keyApi("rest", server.url);
          clock.advance(server.config.keyPublishSeconds * 1000);
          // Promoted at once; the rotation publishes a new next key now.
          expectOk(await keys.rotateKey(admin));
          const [, signed] = await freshTokens();
          const signingKid = kidOf(signed!);
          clock.advance(100_000);
          const fetched = await keys.getJwks();
          const copy = expectOk(fetched) as JSONWebKeySet;
          const promoted = expectOk(await keys.rotateKey(admin)).kid;
          if (rotatedSince) expectOk(await keys.rotateKey(admin));
          const [next] = expectOk(await keys.getJwks()).keys;
          assert.ok(!copy.keys.some((k) => k.kid === next!.kid), "the copy predates the next key");
          clock.advance(10_000);
          const revoked = expectOk(await keys.revokeKey(promoted, admin));
          assert.deepEqual(revoked, { kid: promoted, signing_kid: signingKid });
          // Until the copy's max-age has passed, every new token verifies with it.
          for (const token of await freshTokens()) await verifiesWith(copy, token);
          clock.advance((maxAgeOf(fetched.headers) - 10) * 1000);
          for (const token of await freshTokens()) await verifiesWith(copy, token);
          // The next key signs once published for the lead, not before.
          clock.advance((server.config.keyPublishSeconds - maxAgeOf(fetched.headers)) * 1000 - 1_000);
          assert.equal(kidOf((await freshTokens())[1]!), signingKid);
          clock.advance(1_000);
          const tokens = await freshTokens();
          assert.deepEqual(tokens.map(kidOf), [next!.kid, next!.kid]);
          const published = expectOk(await keys.getJwks()) as JSONWebKeySet;
          assert.ok(!published.keys.some((k) => k.kid === promoted), "the revoked key is not published");
          for (const token of tokens) await verifiesWith(published, token);
        });
      }
    });

    describe("revocation, two instances on one store", () => {
      const clock = new ManualClock(Date.now());
      let pair: ServerPair;
      before(async () => (pair = await startServerPair(store, {}, clock)));
      after(() => pair.close());

      for (const protocol of protocols) {
        it(`revoking the signing key withdraws it from the JWKS and every token it signed, on both instances (${protocol})`, async () => {
          const { a, b } = pair;
          const keysB = keyApi(protocol, b.url);
          try {
            const email = uniqueEmail("revoke");
            await signUp(a, email);
            const session = await startSession(a, email);
            const access = await jwtLogin(a, email);
            const refresh = await jwtRefreshToken(a, access);
            const kid = kidOf(access);
            for (const server of [a, b]) assert.equal((await rest(server.url, "GET", "/jwt/check", { headers: bearer(access) })).status, 200);

            expectCode(await keysB.revokeKey(kid, bearer(access)), "unauthenticated", "admin credential required", "INVALID_TOKEN");
            expectCode(await keysB.revokeKey("no-such-kid", admin), "not_found", "no signing key with this kid", "KEY_NOT_FOUND");
            const revoked = expectOk(await keysB.revokeKey(kid, admin));
            assert.equal(revoked.kid, kid);
            assert.notEqual(revoked.signing_kid, kid);
            const logged = b.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "signing key revoked" && l.kid === kid);
            assert.ok(logged, "the revocation is logged");

            // At once on the instance that revoked it; within the reload interval on the other.
            const refusedOn = async (server: TestServer) => {
              assert.ok(!expectOk(await keyApi("rest", server.url).getJwks()).keys.some((k) => k.kid === kid), "not in the JWKS");
              const check = await rest(server.url, "GET", "/jwt/check", { headers: bearer(access) });
              assert.equal(check.status, 400, check.text);
              assert.equal(check.body.message, "token signed by a revoked key");
              assert.equal((await rest(server.url, "GET", "/session", { headers: { ...clientIdHeader, ...bearer(session.access_token) } })).status, 401);
              assert.equal((await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: refresh })}`)).status, 401);
            };
            await refusedOn(b);
            clock.advance(30_000);
            await refusedOn(a);
            // New tokens, from either instance, are signed by the promoted key and work everywhere.
            for (const server of [a, b]) {
              const fresh = await jwtLogin(server, email);
              assert.equal(kidOf(fresh), revoked.signing_kid);
              for (const other of [a, b]) assert.equal((await rest(other.url, "GET", "/jwt/check", { headers: bearer(fresh) })).status, 200);
            }
            // Revoking again changes nothing.
            assert.equal(expectOk(await keysB.revokeKey(kid, admin)).signing_kid, revoked.signing_kid);
          } finally {
            keysB.close();
          }
        });
      }

      for (const protocol of protocols) {
        it(`DELETE /jwt/refresh_token of a refresh token its revoked key signed is 204, as for a revoked or expired one, on both instances (${protocol})`, async () => {
          const { a, b } = pair;
          const email = uniqueEmail("revoke-delete");
          await signUp(a, email);
          const access = await jwtLogin(a, email);
          const [onA, onB] = [await jwtRefreshToken(a, access), await jwtRefreshToken(a, access)];
          const kid = kidOf(onA);
          expectOk(await keyApi("rest", b.url).revokeKey(kid, admin));
          // Logged in again under the key that signs now: the caller's credential is valid.
          const fresh = await jwtLogin(b, email);
          assert.notEqual(kidOf(fresh), kid);
          const [apiA, apiB] = [jwtApi(protocol, a.url), jwtApi(protocol, b.url)];
          try {
            expectCode(await apiB.getToken({ user: onB }), "unauthenticated", "invalid refresh token: token signed by a revoked key", "INVALID_TOKEN");
            expectOk(await apiB.deleteRefreshToken({ refresh_token: onB }, bearer(fresh)), 204);
            expectOk(await apiB.deleteRefreshToken({ refresh_token: onB }, bearer(fresh)), 204);
            clock.advance(30_000);
            expectOk(await apiA.deleteRefreshToken({ refresh_token: onA }, bearer(fresh)), 204);
            // Still only its owner's.
            const other = uniqueEmail("revoke-delete-other");
            await signUp(a, other);
            const notHers = "refresh_token is not a refresh token of this user";
            expectCode(await apiA.deleteRefreshToken({ refresh_token: onA }, bearer(await jwtLogin(a, other))), "invalid_argument", notHers, "TOKEN_NOT_FOUND");
          } finally {
            apiA.close();
            apiB.close();
          }
        });
      }

      it("revoking the published next key publishes another one", async () => {
        const keys = keyApi("rest", pair.a.url);
        const [next, signing] = expectOk(await keys.getJwks()).keys;
        const answer = expectOk(await keys.revokeKey(next!.kid, admin));
        assert.equal(answer.signing_kid, signing!.kid, "the signing key is unchanged");
        const after = expectOk(await keys.getJwks()).keys;
        assert.ok(!after.some((k) => k.kid === next!.kid));
        assert.equal(after[1]!.kid, signing!.kid);
        assert.notEqual(after[0]!.kid, next!.kid);
        // The next rotation promotes the new next key.
        clock.advance(pair.a.config.keyPublishSeconds * 1000);
        assert.equal(expectOk(await keys.rotateKey(admin)).kid, after[0]!.kid);
      });
    });

    describe("revoking the next key while another instance rotates", () => {
      const clock = new ManualClock(Date.now());
      let pair: ServerPair;
      before(async () => (pair = await startServerPair(store, {}, clock)));
      after(() => pair.close());

      it("a rotation that promotes the key just before it is revoked leaves a key that signs, on both instances", async () => {
        const { a, b } = pair;
        const email = uniqueEmail("race");
        await signUp(a, email);
        const [next] = expectOk(await keyApi("rest", a.url).getJwks()).keys;
        // Published long enough: a rotation promotes it at once.
        clock.advance(a.config.keyPublishSeconds * 1000);
        // The rotation on b lands after a decided what the revocation needs, before a writes it.
        const keys = a.tessera.store.keys;
        const revoke = keys.revoke;
        keys.revoke = async (...args) => {
          keys.revoke = revoke;
          assert.equal(expectOk(await keyApi("rest", b.url).rotateKey(admin)).kid, next!.kid);
          return revoke.apply(keys, args);
        };
        try {
          const revoked = expectOk(await keyApi("rest", a.url).revokeKey(next!.kid, admin));
          assert.notEqual(revoked.signing_kid, next!.kid);
        } finally {
          keys.revoke = revoke;
        }
        await signsEverywhere(email, next!.kid);
      });

      it("a rotation that read the key list before the revocation and writes after it leaves a key that signs, on both instances", async () => {
        const { a, b } = pair;
        const race = await rotationHeldByRevocation();
        try {
          const rotated = keyApi("rest", b.url).rotateKey(admin);
          await race.reached;
          expectOk(await keyApi("rest", a.url).revokeKey(race.next.kid, admin));
          assert.notEqual(expectOk(await rotated).kid, race.next.kid);
        } finally {
          race.restore();
        }
        await signsEverywhere(race.email, race.next.kid);
      });

      it("a rotation whose key is revoked and replaced by the revocation before it looks again answers the key that signs, not the revoked one", async () => {
        const { a, b } = pair;
        // Once written, b's rotation looks at the list again only after a's revocation has
        // answered (a has then promoted another key itself).
        const rotating = b.tessera.store.keys;
        const list = rotating.list;
        let revoked!: ReturnType<ReturnType<typeof keyApi>["revokeKey"]>;
        const race = await rotationHeldByRevocation(() => {
          rotating.list = async (...listArgs) => {
            rotating.list = list;
            await revoked;
            return list.apply(rotating, listArgs);
          };
        });
        try {
          const rotated = keyApi("rest", b.url).rotateKey(admin);
          await race.reached;
          revoked = keyApi("rest", a.url).revokeKey(race.next.kid, admin);
          const signingKid = expectOk(await revoked).signing_kid;
          assert.notEqual(signingKid, race.next.kid);
          assert.equal(expectOk(await rotated).kid, signingKid, "the rotation answers the key that signs");
        } finally {
          race.restore();
          rotating.list = list;
        }
        await signsEverywhere(race.email, race.next.kid);
      });

      it("the signing key revoked on both instances at once: the published next key signs, a key published just now does not", async () => {
        const { a, b } = pair;
        const email = uniqueEmail("race");
        await signUp(a, email);
        const [next, signing] = expectOk(await keyApi("rest", a.url).getJwks()).keys;
        // Both revocations read the key list (the signing key not revoked yet); b then waits
        // until a's has finished.
        const done = gate();
        const listing = b.tessera.store.keys;
        const list = listing.list;
        listing.list = async (...args) => {
          listing.list = list;
          const records = await list.apply(listing, args);
          await done.pass();
          return records;
        };
        try {
          const onB = keyApi("rest", b.url).revokeKey(signing!.kid, admin);
          await done.reached;
          const onA = expectOk(await keyApi("rest", a.url).revokeKey(signing!.kid, admin));
          assert.equal(onA.signing_kid, next!.kid);
          done.open();
          const second = expectOk(await onB);
          assert.equal(second.kid, signing!.kid);
          assert.equal(second.signing_kid, next!.kid, "the key that signs is the one published before");
        } finally {
          listing.list = list;
          done.open();
        }
        await signsEverywhere(email, signing!.kid);
        assert.equal(kidOf(await jwtLogin(a, email)), next!.kid);
      });

      /**
       * The setup of the two races of a rotation on b with a revocation on a of the published
       * next key (`next`, published long enough that a rotation promotes it at once; `email`, a
       * user signed up for signsEverywhere): b's next rotation reads the list (the next key not
       * revoked yet), then waits to write (`reached`) until a has revoked the key and is about to
       * publish another next key, which waits for the rotation's write; `written` runs once that
       * write is done, before the rotation goes on. `restore` puts both stores' calls back and
       * lets a held rotation through.
       */
      async function rotationHeldByRevocation(written?: () => void) {
        const { a, b } = pair;
        const email = uniqueEmail("race");
        await signUp(a, email);
        const [next] = expectOk(await keyApi("rest", a.url).getJwks()).keys;
        clock.advance(a.config.keyPublishSeconds * 1000);
        const rotating = b.tessera.store.keys;
        const rotate = rotating.rotate;
        const rotation = gate();
        let rotationWritten!: Promise<boolean>;
        rotating.rotate = (...args) => {
          rotating.rotate = rotate;
          rotationWritten = rotation.pass().then(async () => {
            const won = await rotate.apply(rotating, args);
            written?.();
            return won;
          });
          return rotationWritten;
        };
        const revoking = a.tessera.store.keys;
        const insertGeneration = revoking.insertGeneration;
        revoking.insertGeneration = async (...args) => {
          revoking.insertGeneration = insertGeneration;
          rotation.open();
          await rotationWritten;
          return insertGeneration.apply(revoking, args);
        };
        return {
          email,
          next: next!,
          reached: rotation.reached,
          restore() {
            rotating.rotate = rotate;
            revoking.insertGeneration = insertGeneration;
            rotation.open();
          },
        };
      }

      /** Tokens from either instance are signed by a key other than `revokedKid` and verify on both, once both have reloaded. */
      async function signsEverywhere(email: string, revokedKid: string): Promise<void> {
        const { a, b } = pair;
        clock.advance(30_000);
        for (const server of [a, b]) {
          assert.ok(!expectOk(await keyApi("rest", server.url).getJwks()).keys.some((k) => k.kid === revokedKid), "not in the JWKS");
          const fresh = await jwtLogin(server, email);
          assert.notEqual(kidOf(fresh), revokedKid);
          for (const other of [a, b]) assert.equal((await rest(other.url, "GET", "/jwt/check", { headers: bearer(fresh) })).status, 200);
        }
      }
    });
  });
}

