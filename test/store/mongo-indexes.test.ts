// Start-up index creation on a database that already holds indexes under the names Tessera uses
// (an older version's, or made by hand) with another definition: what the code needs is
// checked, a conflict is refused naming the index and what to do, and a difference that
// changes no answer (a TTL) is kept with a warning.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { MongoClient, type Db } from "mongodb";
import { indexConflict } from "../../src/store/mongo/mongo-indexes.js";
import { openMongoStore } from "../../src/store/mongo/mongo-store.js";
import { storesUnderTest } from "../support/server.js";

describe("mongo store: indexes that exist with another definition", function () {
  let client: MongoClient;
  let dbName: string;
  let db: Db;

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    client = new MongoClient(process.env.MONGODB_URI!, { serverSelectionTimeoutMS: 5000 });
    await client.connect();
  });
  beforeEach(function () {
    if (!client) this.skip();
    dbName = `tessera_indexes_${randomBytes(6).toString("hex")}`;
    db = client.db(dbName);
  });
  afterEach(async () => {
    if (db) await db.dropDatabase();
  });
  after(async () => {
    if (client) await client.close();
  });

  const open = () => openMongoStore(process.env.MONGODB_URI!, { dbName, warn: () => {} });

  it("a load-bearing unique index that exists without unique is refused at start, named (FerretDB accepted it silently: logins no longer unique)", async () => {
    await db.collection("users").createIndex({ loginKey: 1 }, { name: "loginKey_1" });
    await assert.rejects(open(), (error: Error) => {
      assert.equal(
        error.message,
        `MongoDB index users.loginKey_1 is not the one this version needs ({"loginKey":1} unique): it exists as {"loginKey":1}; drop it (db.users.dropIndex("loginKey_1")) and start again, it is then created as needed`,
      );
      return true;
    });
  });

  it("an index of the same name on other keys is refused at start, named (the driver's IndexKeySpecsConflict before)", async () => {
    await db.collection("sessions").createIndex({ userId: 1, createdAt: 1 }, { name: "userId_1" });
    await assert.rejects(open(), (error: Error) => {
      assert.equal(
        error.message,
        `MongoDB index sessions.userId_1 is not the one this version needs ({"userId":1}): it exists as {"userId":1,"createdAt":1}; drop it (db.sessions.dropIndex("userId_1")) and start again, it is then created as needed`,
      );
      return true;
    });
  });

  it("the same keys indexed under another name are refused at start, named (the driver's 'Index already exists with a different name' before)", async () => {
    await db.collection("sessions").createIndex({ userId: 1 }, { name: "by_user" });
    await assert.rejects(open(), (error: Error) => {
      assert.match(error.message, /^MongoDB index sessions\.userId_1 \(\{"userId":1\}\) cannot be created: /);
      assert.match(error.message, /drop the index of sessions on the same keys/);
      return true;
    });
  });

  it("indexes it made itself are accepted at the next start", async () => {
    await (await open()).close();
    await (await open()).close();
  });

  it("the caps' indexes are made at start: where only live ones count, the field an ended one has comes right after the user", async () => {
    await (await open()).close();
    const keysOf = async (collection: string) => new Map((await db.collection(collection).listIndexes().toArray()).map((index) => [index.name as string, index.key as Record<string, number>]));
    const [sessions, userTokens, refreshTokens] = await Promise.all(["sessions", "user_tokens", "jwt_refresh_tokens"].map(keysOf));
    assert.deepEqual(sessions!.get("userId_1_createdAt_-1__id_-1"), { userId: 1, createdAt: -1, _id: -1 });
    assert.deepEqual(sessions!.get("userId_1_endedAt_1__id_1"), { userId: 1, endedAt: 1, _id: 1 });
    assert.deepEqual(userTokens!.get("userId_1_disabledAt_1_createdAt_-1__id_-1"), { userId: 1, disabledAt: 1, createdAt: -1, _id: -1 });
    assert.deepEqual(refreshTokens!.get("userId_1_revokedAt_1_issuedAt_-1__id_-1"), { userId: 1, revokedAt: 1, issuedAt: -1, _id: -1 });
  });

  it("a database from before the retention of revoked API tokens gets revokedAt_1 at its next start, and its revoked tokens are deleted by it", async () => {
    // As an older version left it: its indexes of api_tokens, an active token and one revoked (mark and copy).
    const tokens = db.collection<{ _id: string } & Record<string, unknown>>("api_tokens");
    await tokens.createIndex({ hash: 1 }, { unique: true, name: "hash_1" });
    await tokens.createIndex({ accountId: 1, revokedAt: 1, issuedAt: 1, _id: 1 }, { name: "accountId_1_revokedAt_1_issuedAt_1__id_1" });
    const issuedAt = new Date(Date.UTC(2020, 0, 1));
    const revokedAt = new Date(Date.UTC(2020, 0, 2));
    await tokens.insertMany([
      { _id: "link-active", hash: "h-active", accountId: "a", description: "d", issuedAt },
      { _id: "link-revoked", hash: "h-revoked", accountId: "a", description: "d", issuedAt, revokedAt },
    ]);
    await db.collection<{ _id: string; at: Date }>("marks").insertOne({ _id: "api-revoked:link-revoked", at: revokedAt });
    assert.equal((await tokens.listIndexes().toArray()).some((index) => index.name === "revokedAt_1"), false);
    const store = await open();
    try {
      const index = (await tokens.listIndexes().toArray()).find((i) => i.name === "revokedAt_1");
      assert.deepEqual(index?.key, { revokedAt: 1 });
      assert.equal(await store.apiTokens.deleteRevokedBefore(new Date(Date.UTC(2021, 0, 1)), 1000), 1);
      assert.deepEqual((await tokens.find().toArray()).map((doc) => doc._id), ["link-active"]);
      assert.equal(await db.collection("marks").countDocuments({ _id: "api-revoked:link-revoked" as never }), 0);
    } finally {
      await store.close();
    }
  });

  it("a difference in TTL only is no conflict (the first version made expiresAt_1 of refresh tokens a TTL index; FerretDB makes marks' plain)", () => {
    const plan = { collection: "refresh_tokens", keys: { expiresAt: 1 }, options: { name: "expiresAt_1" } };
    assert.equal(indexConflict({ key: { expiresAt: 1 }, name: "expiresAt_1", expireAfterSeconds: 86_400 }, plan), "ttl");
    assert.equal(indexConflict({ key: { expiresAt: 1 }, name: "expiresAt_1" }, plan), undefined);
    assert.equal(indexConflict({ key: { expiresAt: -1 }, name: "expiresAt_1" }, plan), 'it exists as {"expiresAt":-1}');
  });
});
