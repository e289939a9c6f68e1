// MongoDB documents as older versions wrote them (before login keys, credential epochs, a
// token's source; an instance of such a version still writing them during a rolling upgrade)
// read correctly under this one: the user logs in by its login key once the start-up backfill
// gave it one, credentials from before still verify, and one from before a password change
// that version made is refused as TOKEN_REVOKED.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { MongoClient } from "mongodb";
import { generateApiTokenSecret } from "../../src/core/api-token-secret.js";
import { Passwords } from "../../src/core/passwords.js";
import { hashSecret, randomId } from "../../src/core/secrets.js";
import { openStore } from "../../src/store/index.js";
import { bearer, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, testClientId } from "../support/server.js";
import { otherPassword, password } from "../support/users.js";

describe("mongo store: documents written by older versions", function () {
  before(function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
  });

  it("read correctly: login by key after the backfill, an API token and a user token from before verify, a user token from before a password change is refused", async () => {
    const uri = process.env.MONGODB_URI!;
    const dbName = `tessera_upgrade_${randomBytes(6).toString("hex")}`;
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
    const hasher = new Passwords({ memoryKib: 1024, iterations: 1, parallelism: 1 });
    const now = Date.now();
    const created = new Date(now - 10 * 86_400_000);
    const changed = new Date(now - 5 * 86_400_000);
    const apiToken = generateApiTokenSecret();
    const before = randomId();
    const after = randomId();
    try {
      const db = client.db(dbName);
      const login = "Old.Mongo@example.com";
      // No loginKey; the password changed once by a version without epochs (generation 1, no epoch).
      await db.collection("users").insertOne({ _id: "u-old" as never, login, emails: [login], passwordHash: await hasher.hash(otherPassword), createdAt: created });
      await db.collection("user_passwords").insertOne({ _id: "u-old:1" as never, userId: "u-old", n: 1, passwordHash: await hasher.hash(password), passwordChangedAt: changed });
      await db.collection("api_tokens").insertOne({ _id: "link-old" as never, hash: hashSecret(apiToken), accountId: "acct-old", description: "from before", createdBy: "admin", issuedAt: created });
      const userToken = (id: string, secret: string, at: Date) => ({ _id: id as never, hash: hashSecret(secret), userId: "u-old", expiresAt: new Date(now + 86_400_000), createdAt: at });
      await db.collection("user_tokens").insertMany([userToken("ut-before", before, created), userToken("ut-after", after, new Date(changed.getTime() + 1000))]);
      const server = await startTestServer({ store: "mongo", env: { TESSERA_MONGODB_DATABASE: dbName } });
      try {
        const session = await rest(server.url, "POST", "/session", {
          json: { account_type: "traditional", email: "old.mongo@EXAMPLE.com", password },
          headers: { "x-koms-clientid": testClientId },
        });
        assert.equal(session.status, 200, session.text);
        const api = await rest(server.url, "GET", "/v1/api/auth", { headers: bearer(apiToken) });
        assert.equal(api.status, 200, api.text);
        assert.equal(api.body.account_id, "acct-old");
        const bumped = await rest(server.url, "POST", "/auth/bump", { headers: bearer(after) });
        assert.equal(bumped.status, 200, bumped.text);
        const refused = await rest(server.url, "POST", "/auth/bump", { headers: bearer(before) });
        assert.equal(refused.status, 401, refused.text);
        assert.equal(refused.body.details?.[0]?.debug?.reason, "TOKEN_REVOKED", refused.text);
      } finally {
        await server.close();
      }
    } finally {
      await client.db(dbName).dropDatabase().catch(() => {});
      await client.close();
    }
  });
  it("a login counter and releases written before leases: its attempts still being checked count until the lease from its last attempt, and releases of theirs do not count in a later group", async () => {
    const uri = process.env.MONGODB_URI!;
    const dbName = `tessera_upgrade_${randomBytes(6).toString("hex")}`;
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
    const t0 = Date.now();
    try {
      const db = client.db(dbName);
      // Four slots granted (one failure, three being checked), one of them given back: held 3.
      const windowStart = new Date(t0);
      await db.collection("login_attempts").insertOne({ _id: "login:y#1" as never, key: "login:y", n: 1, grants: 4, failures: 1, firstFailureAt: windowStart, lastFailureAt: new Date(t0 + 10) });
      await db.collection("login_attempt_releases").insertOne({ _id: "r-old" as never, key: "login:y", windowStart });
      const store = await openStore({ mongodbUri: uri, dataDir: "", mongoDbName: dbName, warn: () => {} });
      try {
        const rule = { windowMs: 15 * 60_000, lockMs: 60_000, maxLockMs: 15 * 60_000, leaseMs: 60_000 };
        const reserve = (ms: number) => store.loginAttempts.reserve([{ key: "login:y", limit: 3 }], new Date(t0 + ms), rule);
        assert.deepEqual(await reserve(10 + 60_000 - 1), { granted: false });
        // The lease has passed: the failure holds one slot, the old release none.
        for (let i = 0; i < 2; i++) assert.ok((await reserve(10 + 60_000 + i)).granted, `slot ${i}`);
        assert.deepEqual(await reserve(10 + 60_002), { granted: false });
      } finally {
        await store.close();
      }
    } finally {
      await client.db(dbName).dropDatabase().catch(() => {});
      await client.close();
    }
  });
});
