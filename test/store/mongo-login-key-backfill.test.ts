// The start-up backfill of login keys on one instance while another instance records logins of
// the same accounts. FerretDB applies an update as a read and a write-back of the whole document
// (src/store/README.md), so two in-place updates of one users document sent at once keep one of
// them: a lastLoginAt written beside the backfill's $set of loginKey took the key away again. The
// account was then found by its exact spelling only, and a look-alike of it could be signed up,
// which then held the key for good (the next backfill found it taken). Each backfill update
// below is sent at the same moment as the other instance's lastLoginAt write of that account
// (when that instance writes to the users document at all).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Collection, MongoClient, type Document, type Filter, type UpdateFilter } from "mongodb";
import { openStore } from "../../src/store/index.js";
import { USERS } from "../../src/store/mongo/mongo-users.js";
import type { Store } from "../../src/store/ports.js";
import { storesUnderTest } from "../support/server.js";
import { gate, type Gate } from "../credentials/support.js";

describe("mongo store: login keys backfilled while another instance records logins", function () {
  this.timeout(60_000);
  const dbName = `tessera_backfill_${randomUUID().slice(0, 8)}`;
  let client: MongoClient;
  let a: Store;
  let b: Store;
  const updateOne = Collection.prototype.updateOne;

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    const uri = process.env.MONGODB_URI!;
    client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
    // The backfill is one store call: a bound past what a shared test server may take for it.
    const open = () => openStore({ mongodbUri: uri, dataDir: "", mongoDbName: dbName, serverSelectionTimeoutMs: 20_000, warn: () => {} });
    a = await open();
    b = await open();
  });
  after(async () => {
    Collection.prototype.updateOne = updateOne;
    await a?.close();
    await b?.close();
    await client?.db(dbName).dropDatabase().catch(() => {});
    await client?.close();
  });

  it("every account keeps the key the backfill gave it, and is found by a look-alike spelling", async () => {
    const accounts = Array.from({ length: 16 }, (_, i) => ({
      id: randomUUID(),
      login: `Legacy.${i}.${randomUUID().slice(0, 6)}@Example.com`,
      emails: [],
      passwordHash: "hash",
      createdAt: new Date(Date.now() - 60_000 + i),
    }));
    // As a version without login keys wrote them.
    await client.db(dbName).collection<{ _id: string }>(USERS).insertMany(accounts.map(({ id, ...account }) => ({ _id: id, ...account })));
    const loginAt = new Date();
    // Per account: the gate the other instance's lastLoginAt update waits at, opened once the
    // backfill's update of the account is sent.
    const sent = new Map<string, Gate>(accounts.map((u) => [u.id, gate()]));
    const send = updateOne as (...args: unknown[]) => Promise<unknown>;
    Collection.prototype.updateOne = async function (this: Collection, filter: Filter<Document>, update: UpdateFilter<Document>, ...rest: unknown[]) {
      const id = (filter as Document)._id as string;
      if (this.collectionName === USERS && sent.has(id)) {
        if ("lastLoginAt" in ((update as Document).$set ?? {})) {
          await sent.get(id)!.pass();
        } else if ("loginKey" in ((update as Document).$set ?? {})) {
          // The backfill's write of this account's key: the other instance records a login of
          // it now, and the two updates go out together, this one first (or this one alone, once
          // that login is recorded without an update of the users document).
          const login = a.users.setLastLogin(id, loginAt);
          await Promise.race([sent.get(id)!.reached, login]);
          const backfilled = send.call(this, filter, update, ...rest);
          sent.get(id)!.open();
          const [result] = await Promise.all([backfilled, login]);
          return result;
        }
      }
      return send.call(this, filter, update, ...rest);
    } as Collection["updateOne"];
    let filled: { filled: number; clashes: string[] };
    try {
      filled = await b.users.backfillLoginKeys((login) => login.toLowerCase());
    } finally {
      Collection.prototype.updateOne = updateOne;
    }
    assert.deepEqual(filled, { filled: accounts.length, clashes: [] });
    const lost: string[] = [];
    for (const account of accounts) if ((await a.users.findById(account.id))?.loginKey !== account.login.toLowerCase()) lost.push(account.login);
    assert.deepEqual(lost, [], `${lost.length} of ${accounts.length} accounts lost their login key`);
    for (const account of accounts) {
      const key = account.login.toLowerCase();
      // A look-alike spelling finds the account (by its key), and the login recorded beside the
      // backfill is kept.
      const user = await a.users.findByLogin(key.toUpperCase(), key);
      assert.equal(user?.id, account.id, account.login);
      assert.equal(user?.lastLoginAt?.getTime(), loginAt.getTime(), account.login);
    }
  });
});
