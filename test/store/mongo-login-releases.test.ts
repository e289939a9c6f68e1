// A login counter's released slots on MongoDB (mongo-login-attempts.ts): a reservation counts the
// releases of the key's current group of slots only, and a group ends once every slot of it has
// ended (ports/login-attempts.ts), so a stream of successful logins on one key leaves a count
// of one group's releases, not of every success of the window: without that, each later
// reservation on the key counted them all, slower with every success (on FerretDB 1.x, which
// reads every release of the key's window to count them, the releases of ended groups are
// deleted too).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Collection, MongoClient, MongoNetworkError, type Db, type FindCursor } from "mongodb";
import { currentCall, runInCall, type CallScope } from "../../src/call-scope.js";
import { openMongoStore } from "../../src/store/mongo/mongo-store.js";
import { LOGIN_ATTEMPT_RELEASES, LOGIN_ATTEMPTS } from "../../src/store/mongo/mongo-login-attempts.js";
import type { HeldSlot, Reservation, Store } from "../../src/store/ports.js";
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

  /**
   * How many of a group's releases each count or read of them made by `call` came to, in order;
   * once the deletes of releases it started (after it answered) have ended.
   */
  async function countsOf(call: () => Promise<void>): Promise<number[]> {
    const proto = Collection.prototype as unknown as Record<"countDocuments" | "find" | "deleteOne" | "deleteMany", (...args: unknown[]) => unknown>;
    const originals = { countDocuments: proto.countDocuments, find: proto.find, deleteOne: proto.deleteOne, deleteMany: proto.deleteMany };
    const deletes: unknown[] = [];
    for (const name of ["deleteOne", "deleteMany"] as const) {
      proto[name] = function (this: Collection, ...args: unknown[]) {
        const deleted = originals[name].apply(this, args);
        if (this.collectionName === LOGIN_ATTEMPT_RELEASES) deletes.push(deleted);
        return deleted;
      };
    }
    const counts: number[] = [];
    const ofGroup = (collection: Collection, filter: unknown) =>
      collection.collectionName === LOGIN_ATTEMPT_RELEASES && (filter as { takenAt?: { $gte?: Date } }).takenAt?.$gte !== undefined;
    proto.countDocuments = async function (this: Collection, ...args: unknown[]) {
      const n = (await originals.countDocuments.apply(this, args)) as number;
      if (ofGroup(this, args[0])) counts.push(n);
      return n;
    };
    proto.find = function (this: Collection, ...args: unknown[]) {
      const cursor = originals.find.apply(this, args) as FindCursor;
      if (!ofGroup(this, args[0])) return cursor;
      const toArray = cursor.toArray.bind(cursor);
      cursor.toArray = async () => {
        const docs = await toArray();
        counts.push(docs.length);
        return docs;
      };
      return cursor;
    };
    try {
      await call();
      for (let ended = -1; ended < deletes.length; ) {
        ended = deletes.length;
        await Promise.all(deletes);
      }
    } finally {
      Object.assign(proto, originals);
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
    const counts = await countsOf(async () => {
      held(await store.loginAttempts.reserve([slot], at(60), rule));
    });
    assert.deepEqual(counts, [3, 3]);
    assert.equal(await db.collection(LOGIN_ATTEMPT_RELEASES).countDocuments({ key }), 0);
    // The slot of login 60 is still held: two more, then the window is full.
    for (let i = 0; i < 2; i++) held(await twin.loginAttempts.reserve([slot], at(61 + i), rule));
    assert.deepEqual(await store.loginAttempts.reserve([slot], at(63), rule), { granted: false });
  });

  it("after 150 successful logins from two instances that overlap without a pause, a reservation counts the 2 releases given back since the count before, and the limit holds across both", async () => {
    const key = `login:${randomBytes(6).toString("hex")}`;
    const limit = 3;
    const slot = { key, limit };
    const on = (i: number) => (i % 2 === 0 ? store : twin);
    // One slot always pending: each login takes its slot before the one before it gives its back,
    // so the group of slots never ends within its lease.
    let pending = held(await store.loginAttempts.reserve([slot], at(0), rule));
    for (let i = 1; i <= 150; i++) {
      const next = held(await on(i).loginAttempts.reserve([slot], at(i), rule));
      await on(i - 1).loginAttempts.release(pending);
      pending = next;
    }
    // Releases are counted once a group's grants (less those counted) reach the limit, and the
    // state a grant stores holds those it counted as given back (they are then deleted): with
    // one slot pending, every other reservation counts the 2 releases given back since the
    // count before, not every release of the stretch.
    let last: readonly HeldSlot[] = [];
    const counts = await countsOf(async () => {
      last = held(await twin.loginAttempts.reserve([slot], at(151), rule));
    });
    assert.deepEqual(counts, [2, 2]);
    assert.equal(await db.collection(LOGIN_ATTEMPT_RELEASES).countDocuments({ key }), 0);
    // Logins 150 and 151 still hold their slots: of six reservations at once across both
    // instances, exactly one is granted.
    const burst = await Promise.all(Array.from({ length: 6 }, (_, i) => on(i).loginAttempts.reserve([slot], at(152), rule)));
    assert.equal(burst.filter((r) => r.granted).length, 1);
    // Each given back, the three slots are free again.
    for (const [i, slots] of [pending, last, ...burst.filter((r) => r.granted).map(held)].entries()) await on(i).loginAttempts.release(slots);
    for (let i = 0; i < limit; i++) held(await on(i).loginAttempts.reserve([slot], at(153 + i), rule));
    assert.deepEqual(await store.loginAttempts.reserve([slot], at(156), rule), { granted: false });
  });

  it("a grant that starts a group after a lease passed is answered while the ended group's releases are still being deleted, and they are deleted", async () => {
    const key = `login:${randomBytes(6).toString("hex")}`;
    const slot = { key, limit: 3 };
    const first = held(await store.loginAttempts.reserve([slot], at(0), rule));
    held(await store.loginAttempts.reserve([slot], at(1), rule));
    await store.loginAttempts.release(first);
    // The deletes of ended groups' releases wait until let go.
    const proto = Collection.prototype as unknown as { deleteMany: (...args: unknown[]) => Promise<unknown> };
    const original = proto.deleteMany;
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    const deletes: Array<Promise<unknown>> = [];
    proto.deleteMany = function (this: Collection, ...args: unknown[]) {
      const ofGroup = (args[0] as { takenAt?: { $gte?: Date } }).takenAt?.$gte !== undefined;
      if (this.collectionName !== LOGIN_ATTEMPT_RELEASES || ofGroup) return original.apply(this, args);
      const deleted = gate.then(() => original.apply(this, args));
      deletes.push(deleted);
      return deleted;
    };
    try {
      // The lease of the pending slot has passed: this grant starts a new group.
      held(await twin.loginAttempts.reserve([slot], at(2 + rule.leaseMs), rule));
      assert.equal(deletes.length, 1);
      assert.equal(await db.collection(LOGIN_ATTEMPT_RELEASES).countDocuments({ key }), 1);
    } finally {
      letGo();
      proto.deleteMany = original;
    }
    await Promise.all(deletes);
    assert.equal(await db.collection(LOGIN_ATTEMPT_RELEASES).countDocuments({ key }), 0);
  });

  // A release whose insert landed though its caller was told the store failed (the connection
  // dropped after the write) is owed and made again (store/ports/owed-releases.ts), by a process
  // that cannot know it landed: it is the document named by the slot's id, so the slot is given
  // back once, whether the first is still stored or was counted and deleted meanwhile (the state
  // lists the ids it counted).
  /** A key of limit 2 whose two slots were taken, the first (`a`) then given back. */
  async function bothHeldOneReleased() {
    const key = `login:${randomBytes(6).toString("hex")}`;
    const slot = { key, limit: 2 };
    const a = held(await store.loginAttempts.reserve([slot], at(0), rule));
    held(await store.loginAttempts.reserve([slot], at(1), rule));
    await store.loginAttempts.release(a);
    return { key, slot, a };
  }

  it("a release made again after its first landed unseen gives back one slot, not two", async () => {
    const { slot, a } = await bothHeldOneReleased();
    await twin.loginAttempts.release(a);
    held(await twin.loginAttempts.reserve([slot], at(2), rule));
    assert.deepEqual(await store.loginAttempts.reserve([slot], at(3), rule), { granted: false });
  });

  it("a release made again after its first was counted and deleted gives back nothing more", async () => {
    const { key, slot, a } = await bothHeldOneReleased();
    await countsOf(async () => void held(await store.loginAttempts.reserve([slot], at(2), rule)));
    assert.equal(await db.collection(LOGIN_ATTEMPT_RELEASES).countDocuments({ key }), 0);
    await twin.loginAttempts.release(a);
    assert.deepEqual(await store.loginAttempts.reserve([slot], at(3), rule), { granted: false });
  });

  // A reservation whose later key's take failed gives back the slots it took of the earlier
  // keys; when the store fails that too, they are owed (store/ports/owed-releases.ts), and given
  // back before the next reservation is counted, not only by the retry a second later: else that
  // reservation, the store answering again, found the slot still held (its login refused 429).
  // That give-back is no part of the next reservation's call (its request id, its trace).
  it("a slot a failed reservation could not give back is given back before the next reservation once the store answers, outside that reservation's call", async () => {
    const first = `login:${randomBytes(6).toString("hex")}`;
    const second = `addr:${randomBytes(6).toString("hex")}`;
    const now = Date.now();
    const proto = Collection.prototype as unknown as { insertOne: (...args: unknown[]) => Promise<unknown> };
    const insertOne = proto.insertOne;
    proto.insertOne = function (this: Collection, ...args: unknown[]) {
      const doc = args[0] as { key?: string };
      if (this.collectionName === LOGIN_ATTEMPT_RELEASES || doc.key === second) return Promise.reject(new MongoNetworkError("the store went away"));
      return insertOne.apply(this, args);
    };
    try {
      await assert.rejects(
        store.loginAttempts.reserve(
          [
            { key: first, limit: 1 },
            { key: second, limit: 1 },
          ],
          new Date(now),
          rule,
        ),
      );
    } finally {
      proto.insertOne = insertOne;
    }
    const releaseScopes: Array<CallScope | undefined> = [];
    proto.insertOne = function (this: Collection, ...args: unknown[]) {
      if (this.collectionName === LOGIN_ATTEMPT_RELEASES) releaseScopes.push(currentCall());
      return insertOne.apply(this, args);
    };
    try {
      held(await runInCall({ requestId: "next-login" }, () => store.loginAttempts.reserve([{ key: first, limit: 1 }], new Date(now + 1), rule)));
    } finally {
      proto.insertOne = insertOne;
    }
    assert.deepEqual(releaseScopes, [undefined]);
  });
  // A take whose state's write failed on the wire is settled by a copy of the state it was
  // computed from, inserted under the write's own version (mongo-login-attempts.ts,
  // settleUncertain). Housekeeping (deleteStale) deletes every state of a key whose last attempt
  // is a window old, and the key's states then start again from version 1 on any instance: a copy
  // of the deleted state inserted above them became the key's latest state, its window long
  // closed, and the failures and the lock of the states made since were gone.
  it("a take whose write was lost on the wire, settled after housekeeping deleted the key's states and another instance locked the key: the lock holds", async () => {
    const key = `login:${randomBytes(6).toString("hex")}`;
    const slot = { key, limit: 1 };
    // The settling is retried every second, until the window passes: times near the real clock.
    const now = Date.now();
    const near = (ms: number) => new Date(now + ms);
    // A day ago: five logins, each given back (states 1 to 5).
    for (let i = 0; i < 5; i++) await store.loginAttempts.release(held(await store.loginAttempts.reserve([slot], near(-86_400_000 + i), rule)));
    // Now: a login whose state 6 is lost on the wire, and whose settling fails until allowed.
    let lost = true;
    const proto = Collection.prototype as unknown as { insertOne: (...args: unknown[]) => Promise<unknown> };
    const insertOne = proto.insertOne;
    proto.insertOne = function (this: Collection, ...args: unknown[]) {
      const doc = args[0] as { _id?: string };
      if (lost && this.collectionName === LOGIN_ATTEMPTS && doc._id === `${key}#6`) return Promise.reject(new MongoNetworkError("the connection was lost"));
      return insertOne.apply(this, args);
    };
    try {
      await assert.rejects(store.loginAttempts.reserve([slot], near(0), rule));
      // Housekeeping deletes the key's states (the last attempt of each a day old).
      while ((await twin.loginAttempts.deleteStale(near(-rule.windowMs), near(0), 1000)) > 0);
      assert.equal(await db.collection(LOGIN_ATTEMPTS).countDocuments({ key }), 0);
      // The other instance: a login fails, and locks the key (states 1 and 2).
      await twin.loginAttempts.recordFailure(held(await twin.loginAttempts.reserve([slot], near(1000), rule)), near(2000), rule);
      assert.deepEqual(await twin.loginAttempts.reserve([slot], near(3000), rule), { granted: false, lockedUntil: near(2000 + LOCK) });
    } finally {
      lost = false;
      proto.insertOne = insertOne;
    }
    // The store answers again: the lost write is settled before the next reservation.
    held(await store.loginAttempts.reserve([{ key: `login:${randomBytes(6).toString("hex")}`, limit: 1 }], near(4000), rule));
    assert.deepEqual(await twin.loginAttempts.reserve([slot], near(5000), rule), { granted: false, lockedUntil: near(2000 + LOCK) });
    assert.deepEqual(await store.loginAttempts.reserve([slot], near(5000), rule), { granted: false, lockedUntil: near(2000 + LOCK) });
  });
});
