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
import { raw, type RawAnswer } from "../hostile/support.js";
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
          expectCode(await keys.rotateKey({}), "unauthenticated", "admin credential required", "MISSING_CREDENTIAL");
          expectCode(await keys.rotateKey(bearer(access)), "unauthenticated", "admin credential required", "INVALID_TOKEN");
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

// The JWKS had no validator: a verifier whose cached copy went stale fetched the whole set again
// every max-age, and could not ask whether it had changed. Every path that serves it (REST, and
// Connect GET) now tags each representation with a strong ETag of its bytes and answers a
// matching If-None-Match 304 without a body (RFC 9110 13.1.2, 15.4.5), Cache-Control kept.
describe("Public keys: the JWKS carries an ETag and answers If-None-Match", function () {
  this.timeout(30_000);
  let server: TestServer;
  const jwksPath = "/.well-known/jwks.json";
  const connectPath = (encoding: "json" | "proto") => `/tessera.key.v1.KeyService/GetJwks?connect=v1&encoding=${encoding}&message=${encoding === "json" ? "%7B%7D" : ""}`;
  const strongTag = /^"[A-Za-z0-9_-]{27}"$/;
  before(async () => {
    // Keys published 0 s before they sign: rotations take effect at once (max-age 0).
    server = await startTestServer({ env: { TESSERA_KEY_PUBLISH_SECONDS: "0" } });
  });
  after(async () => server?.close());

  const get = (path: string, headers: Record<string, string> = {}, method = "GET") => raw(server.url, method, path, headers);
  const rotate = async () => assert.equal((await raw(server.url, "POST", "/v1/admin/keys:rotate", { ...admin, "content-type": "application/json" }, "{}")).status, 200);

  /** A 304 as RFC 9110 15.4.5 has it: no body, the 200's ETag and Cache-Control, no Content-Type. */
  function notModified(a: RawAnswer, tag: string, what: string): void {
    assert.equal(a.status, 304, what);
    assert.equal(a.text, "", what);
    assert.equal(a.headers.etag, tag, what);
    assert.equal(a.headers["cache-control"], "public, max-age=0", what);
    assert.equal(a.headers["content-type"], undefined, what);
  }

  it("REST GET: a strong ETag, the same while the keys are; If-None-Match naming it (weak comparison, in a list, or *) is 304 without a body", async () => {
    const a = await get(jwksPath);
    assert.equal(a.status, 200);
    assert.equal(a.headers["cache-control"], "public, max-age=0");
    const tag = a.headers.etag!;
    assert.match(tag, strongTag);
    assert.equal((await get(jwksPath)).headers.etag, tag);
    for (const ifNoneMatch of [tag, `W/${tag}`, `"elsewhere", ${tag}`, `W/"x",,${tag} , "y"`, "*"]) {
      notModified(await get(jwksPath, { "if-none-match": ifNoneMatch }), tag, ifNoneMatch);
    }
    // Another tag, or a field that is no list of entity tags: the keys, as without one.
    for (const ifNoneMatch of ['"elsewhere"', `W/"${tag.slice(1, -1)}x"`, tag.slice(1, -1), `${tag} junk`]) {
      const b = await get(jwksPath, { "if-none-match": ifNoneMatch });
      assert.equal(b.status, 200, ifNoneMatch);
      assert.equal(b.text, a.text, ifNoneMatch);
      assert.equal(b.headers.etag, tag, ifNoneMatch);
    }
  });

  it("REST HEAD: the GET's headers, ETag included; If-None-Match naming it is 304", async () => {
    const a = await get(jwksPath);
    const head = await get(jwksPath, {}, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.text, "");
    assert.equal(head.headers.etag, a.headers.etag);
    assert.equal(head.headers["content-length"], a.headers["content-length"]);
    notModified(await get(jwksPath, { "if-none-match": a.headers.etag! }, "HEAD"), a.headers.etag!, "HEAD");
  });

  it("a rotation changes the keys and the ETag: the old tag gets the new set, the new tag 304", async () => {
    const before = await get(jwksPath);
    await rotate();
    const after = await get(jwksPath, { "if-none-match": before.headers.etag! });
    assert.equal(after.status, 200);
    assert.notDeepEqual(JSON.parse(after.text), JSON.parse(before.text));
    assert.match(after.headers.etag!, strongTag);
    assert.notEqual(after.headers.etag, before.headers.etag);
    notModified(await get(jwksPath, { "if-none-match": after.headers.etag! }), after.headers.etag!, "after the rotation");
  });

  it("Connect GET: its own ETag per representation (JSON, binary, gzip, each as sent), each answered 304 alone", async () => {
    // Enough keys for a JWKS over 1 KiB, which connect-es compresses when asked.
    for (let i = 0; i < 8; i++) await rotate();
    const json = await get(connectPath("json"), { "accept-encoding": "identity" });
    const proto = await get(connectPath("proto"), { "accept-encoding": "identity" });
    const gzip = await get(connectPath("json"), { "accept-encoding": "gzip" });
    assert.deepEqual([json.status, proto.status, gzip.status], [200, 200, 200]);
    assert.equal(json.headers["content-encoding"], undefined);
    assert.equal(gzip.headers["content-encoding"], "gzip");
    assert.ok(Number(json.headers["content-length"]) > 1024);
    const tags = [json, proto, gzip].map((a) => a.headers.etag!);
    for (const tag of tags) assert.match(tag, strongTag);
    assert.equal(new Set(tags).size, 3, "three representations, three tags");
    for (const a of [json, proto, gzip]) assert.equal(a.headers.vary, "Accept-Encoding");
    notModified(await get(connectPath("json"), { "accept-encoding": "gzip", "if-none-match": gzip.headers.etag! }), gzip.headers.etag!, "gzip");
    notModified(await get(connectPath("json"), { "if-none-match": json.headers.etag! }), json.headers.etag!, "identity");
    notModified(await get(connectPath("proto"), { "if-none-match": proto.headers.etag! }), proto.headers.etag!, "binary");
    // The identity tag does not validate the gzip answer, nor the JSON one the binary answer.
    const other = await get(connectPath("json"), { "accept-encoding": "gzip", "if-none-match": json.headers.etag! });
    assert.equal(other.status, 200);
    assert.equal(other.headers.etag, gzip.headers.etag);
    assert.equal((await get(connectPath("proto"), { "if-none-match": json.headers.etag! })).status, 200);
  });

  it("an answer no cache may store carries no ETag, and If-None-Match does not change it", async () => {
    const user = await createJwtUser(server);
    const token = await jwtLogin(server, user);
    for (const ifNoneMatch of [undefined, "*"]) {
      const a = await get("/jwt/check", { ...bearer(token), ...(ifNoneMatch && { "if-none-match": ifNoneMatch }) });
      assert.equal(a.status, 200);
      assert.equal(a.headers["cache-control"], "no-store");
      assert.equal(a.headers.etag, undefined);
    }
  });
});
