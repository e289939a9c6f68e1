// MongoDB keeps a user's password as versioned inserts (user_passwords, one per change): only the
// latest 16 (PASSWORD_GENERATIONS_KEPT, README "Indexes and shard keys") stay, so the collection does not grow by one document, and one
// old password hash, per change forever. The user's answers are those of the latest generation.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { MongoClient } from "mongodb";
import { openStore } from "../../src/store/index.js";
import { USER_PASSWORDS } from "../../src/store/mongo/mongo-users.js";
import type { Store } from "../../src/store/ports.js";
import { storesUnderTest } from "../support/server.js";

describe("mongo store: password generations", function () {
  let client: MongoClient;
  let store: Store;
  const dbName = `tessera_passwords_${randomBytes(6).toString("hex")}`;

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    client = new MongoClient(process.env.MONGODB_URI!, { serverSelectionTimeoutMS: 5000 });
    store = await openStore({ mongodbUri: process.env.MONGODB_URI!, dataDir: "", mongoDbName: dbName, warn: () => {} });
  });

  after(async () => {
    await store?.close();
    if (!client) return;
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  it("40 password changes leave the latest 16 generations; the user is the last change's (hash, version 40, epoch 40)", async () => {
    const at = new Date("2026-01-01T00:00:00Z");
    const id = `u-${randomBytes(4).toString("hex")}`;
    await store.users.create({ id, login: `${id}@example.com`, loginKey: `${id}@example.com`, emails: [`${id}@example.com`], passwordHash: "$argon2id$0", createdAt: at });
    for (let i = 1; i <= 40; i++) await store.users.updatePasswordHash(id, `$argon2id$${i}`, new Date(at.getTime() + i));
    const kept = await client.db(dbName).collection(USER_PASSWORDS).find({ userId: id }).sort({ n: 1 }).project({ n: 1 }).toArray();
    assert.deepEqual(kept.map((doc) => doc.n), Array.from({ length: 16 }, (_, i) => 25 + i));
    const user = await store.users.findById(id);
    assert.equal(user?.passwordHash, "$argon2id$40");
    assert.equal(user?.version, 40);
    assert.equal(user?.credentialEpoch, 40);
    assert.equal(user?.passwordChangedAt.getTime(), at.getTime() + 40);
    // A rehash after the pruning still finds the latest and moves on from it.
    assert.equal(await store.users.rehashPassword(id, "$argon2id$40", "$argon2id$40b"), true);
    const rehashed = await store.users.findById(id);
    assert.deepEqual([rehashed?.passwordHash, rehashed?.version, rehashed?.credentialEpoch], ["$argon2id$40b", 41, 40]);
  });
});
