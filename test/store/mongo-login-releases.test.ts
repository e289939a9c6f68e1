// A login counter's released slots on MongoDB (mongo-login-attempts.ts): a reservation counts the
// releases of the key's current group of slots only, and a group ends once every slot of it has
// ended (ports/login-attempts.ts), so a stream of successful logins on one key leaves a count
// of one group's releases, not of every success of the window: without that, each later
// reservation on the key counted them all, slower with every success (on FerretDB 1.x, which
// reads every release of the key's window to count them, the releases of ended groups are
// deleted too).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Collection, MongoClient, type Db } from "mongodb";
import { openMongoStore } from "../../src/store/mongo/mongo-store.js";
import { LOGIN_ATTEMPT_RELEASES } from "../../src/store/mongo/mongo-login-attempts.js";
import type { Reservation, Store } from "../../src/store/ports.js";
import { storesUnderTest } from "../support/server.js";

describe("mongo store: a login counter's releases after a stream of successful logins", function () {
  let client: MongoClient;
  let db: Db;
  let store: Store;
  let twin: Store;
  const LOCK = 60_000;
  const rule = { windowMs: 15 * 60_000, lockMs: LOCK, maxLockMs: 15 * 60_000, leaseMs: 2 * LOCK };
  const t0 = new Date("2026-01-02T03:04:05.678Z");
  const at = (ms: number) => new Date(t0.getTime() + ms);
  const held = (r: Reservation) => {
    assert.ok(r.granted, "expected the slot to be granted");
    return r.slots;
  };

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    const uri = process.env.MONGODB_URI!;
    const dbName = `tessera_releases_${randomBytes(6).toString("hex")}`;
    client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
    db = client.db(dbName);
    store = await openMongoStore(uri, { dbName, warn: () => {} });
    twin = await openMongoStore(uri, { dbName, warn: () => {} });
  });
  after(async () => {
    await store?.close();
    await twin?.close();
    await db?.dropDatabase();
    await client?.close();
  });

  /** What each count of `collection`'s documents made by `call` answered. */
  async function countsOf(collection: string, call: () => Promise<void>): Promise<number[]> {
    const proto = Collection.prototype as unknown as { countDocuments: (...args: unknown[]) => Promise<number> };
    const original = proto.countDocuments;
    const counts: number[] = [];
    proto.countDocuments = async function (this: Collection, ...args: unknown[]) {
      const n = await original.apply(this, args);
      if (this.collectionName === collection) counts.push(n);
      return n;
    };
    try {
      await call();
    } finally {
      proto.countDocuments = original;
    }
    return counts;
  }

  it("after 60 successful logins from two instances, a reservation counts the 3 releases of one group, and the ended groups' are gone", async () => {
    const key = `login:${randomBytes(6).toString("hex")}`;
    const limit = 3;
    const slot = { key, limit };
    for (let i = 0; i < 60; i++) {
      const s = held(await (i % 2 === 0 ? store : twin).loginAttempts.reserve([slot], at(i), rule));
      await (i % 2 === 0 ? twin : store).loginAttempts.release(s);
    }
    // Logins 57 to 59 are the open group (every third login finds the group before it ended):
    // the next reservation's read and its grant each count those 3, and its grant ends the group.
    const counts = await countsOf(LOGIN_ATTEMPT_RELEASES, async () => {
      held(await store.loginAttempts.reserve([slot], at(60), rule));
    });
    assert.deepEqual(counts, [3, 3]);
    assert.equal(await db.collection(LOGIN_ATTEMPT_RELEASES).countDocuments({ key }), 0);
    // The slot of login 60 is still held: two more, then the window is full.
    for (let i = 0; i < 2; i++) held(await twin.loginAttempts.reserve([slot], at(61 + i), rule));
    assert.deepEqual(await store.loginAttempts.reserve([slot], at(63), rule), { granted: false });
  });
});
