// A key rotation the store holds but answers with an error (503: its answer lost after the write
// landed; on MongoDB, a write still under way when the store's time bound passed, which lands
// later): the instance that answered reads the key list again as soon as the write is in the
// store, as after a rotation answered 200, rather than at the end of its 30 s reload interval. It
// signs with the promoted key and publishes the new next key; GET /jwt/pubkey is the promoted key.
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { decodeProtectedHeader } from "jose";
import { ManualClock } from "../../src/core/clock.js";
import { jwtApi, type JwtApi } from "../jwt/api.js";
import { expectCode, expectOk, protocols, type Protocol } from "../support/api.js";
import { holdInsert, landsThenFails } from "../support/doubtful-writes.js";
import { startTestServer, storesUnderTest, type StoreKind, type TestServer } from "../support/server.js";
import { admin, createJwtUser, password } from "../support/users.js";
import { keyApi, type Jwk, type KeyApi } from "./api.js";

const kids = (keys: readonly Jwk[]) => keys.map((k) => k.kid);

interface Clients {
  keys: KeyApi;
  jwt: JwtApi;
  user: string;
}

/** The kid of a seed 004 access token the server signs now. */
async function signingKid({ jwt, user }: Clients): Promise<string | undefined> {
  return decodeProtectedHeader(expectOk(await jwt.getToken({ user, pass: password })).text).kid;
}

/** The key ring as it was before the rotation (`published`: the JWKS then, the next key first). */
async function assertUnrotated(clients: Clients, published: readonly Jwk[], why: string): Promise<void> {
  assert.deepEqual(kids(expectOk(await clients.keys.getJwks()).keys), kids(published), why);
  assert.equal(await signingKid(clients), published[1]!.kid, why);
}

/**
 * The rotation in effect on this instance: the published next key (first in `published`) signs,
 * GET /jwt/pubkey is it, and a new next key is published above the keys that were.
 */
async function assertRotated(clients: Clients, published: readonly Jwk[]): Promise<void> {
  const now = expectOk(await clients.keys.getJwks()).keys;
  assert.deepEqual(kids(now.slice(1)), kids(published), "the keys published before the rotation, and a new next key above them");
  assert.ok(!kids(published).includes(now[0]!.kid), "a new next key is published");
  assert.equal(await signingKid(clients), published[0]!.kid, "the promoted key signs");
  const pem = expectOk(await clients.jwt.getPublicKey()).text;
  assert.equal(createPublicKey(pem).export({ format: "jwk" }).x, published[0]!.x, "GET /jwt/pubkey is the promoted key");
}

/** `test` with each protocol's key and JWT clients to `server` and a seed 004 user of its own. */
function withClients(protocol: Protocol, server: () => TestServer, test: (clients: Clients) => Promise<void>): () => Promise<void> {
  return async () => {
    const keys = keyApi(protocol, server().url);
    const jwt = jwtApi(protocol, server().url);
    try {
      await test({ keys, jwt, user: await createJwtUser(server()) });
    } finally {
      keys.close();
      jwt.close();
    }
  };
}

const storeUnavailable = (outcome: Parameters<typeof expectCode>[0]) =>
  expectCode(outcome, "unavailable", "the store is unavailable, try again shortly", "STORE_UNAVAILABLE");

for (const store of storesUnderTest()) {
  describe(`A key rotation the store holds but answers with an error, on ${store}`, function () {
    this.timeout(60_000);
    // The clock stands still: the 30 s reload interval never ends. Keys sign once promoted.
    const clock = new ManualClock(Date.now());
    let server: TestServer;
    before(async () => (server = await startTestServer({ store, clock, env: { TESSERA_KEY_PUBLISH_SECONDS: "0" } })));
    after(() => server.close());

    for (const protocol of protocols) {
      describe(`over ${protocol}`, () => {
        it("POST /v1/admin/keys:rotate stored, answered 503 STORE_UNAVAILABLE: the same instance signs with the promoted key and publishes the new next key", withClients(protocol, () => server, async (clients) => {
          const published = expectOk(await clients.keys.getJwks()).keys;
          await assertUnrotated(clients, published, "the key list as it was");
          landsThenFails(server.tessera.store.keys, "rotate");
          storeUnavailable(await clients.keys.rotateKey(admin));
          await assertRotated(clients, published);
        }));
      });
    }
  });
}

const mongo: StoreKind[] = storesUnderTest().filter((s) => s === "mongo");
for (const store of mongo) {
  describe(`A key rotation whose write lands after the store's time bound answered 503, on ${store}`, function () {
    this.timeout(60_000);
    const clock = new ManualClock(Date.now());
    let server: TestServer;
    before(async () => (server = await startTestServer({ store, clock, env: { TESSERA_KEY_PUBLISH_SECONDS: "0", TESSERA_STORE_TIMEOUT_MS: "1000" } })));
    after(() => server.close());

    for (const protocol of protocols) {
      describe(`over ${protocol}`, () => {
        it("POST /v1/admin/keys:rotate answered 503 while its key is on its way; once it lands the same instance signs with the promoted key and publishes the new next key", withClients(protocol, () => server, async (clients) => {
          const published = expectOk(await clients.keys.getJwks()).keys;
          const insert = holdInsert("signing_keys");
          try {
            storeUnavailable(await clients.keys.rotateKey(admin));
            await insert.reached;
            await assertUnrotated(clients, published, "the store holds no rotation yet");
          } finally {
            insert.release();
          }
          await insert.landed;
          await assertRotated(clients, published);
        }));
      });
    }
  });
}
