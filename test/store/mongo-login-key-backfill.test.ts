// The start-up backfill of login keys on one instance while another instance records logins of
// the same accounts. FerretDB applies an update as a read and a write-back of the whole document
// (src/store/README.md), so two in-place updates of one users document sent at once keep one of
// them: a lastLoginAt written beside the backfill's $set of loginKey took the key away again. The
// account was then found by its exact spelling only, and a look-alike of it could be signed up,
// which then held the key for good (the next backfill found it taken). Each backfill update
// below is sent at the same moment as the other instance's lastLoginAt write of that account
// (when that instance writes to the users document at all). The last cases race the backfill's
// carry of a last login kept apart, and another instance's backfill.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Collection, MongoClient, type Document, type Filter, type UpdateFilter } from "mongodb";
import { openStore } from "../../src/store/index.js";
import { USER_LAST_LOGINS, USERS } from "../../src/store/mongo/mongo-users.js";
import type { Store } from "../../src/store/ports.js";
import { storesUnderTest } from "../support/server.js";
import { gate, type Gate } from "../credentials/support.js";
import { settlesWithin } from "../support/within.js";

/**
 * How long a call held at a gate waits for what opens it, and a test for a call it holds to
 * arrive: below the bound of the two instances' store calls (20 s), so that a gate that never
 * opens fails the store call held at it, and the test, naming what did not happen (not mocha's
 * timeout, past which the test's finally never runs and its interceptors stayed in place).
 */
const GATE_MS = 15_000;
/**
 * The bound on each answer to the tests' own client (the stores bound their calls themselves):
 * without one, a database that stopped answering held a hook or a test until mocha's timeout
 * (1 to 3 minutes here, and in a parallel run nothing is printed until the whole file ends).
 */
const CLIENT_SOCKET_TIMEOUT_MS = 30_000;

/**
 * Until the returned function is called: the first update of each of `ids`' loginKey (a $set of
 * it, by any instance) goes out together with `other`'s write of a login of that account at
 * `loginAt`, the key's first (or alone, once that login is recorded without an update of the
 * users document).
 */
function loginsBesideKeyWrites(ids: string[], other: () => Store, loginAt: Date): () => void {
  const updateOne = Collection.prototype.updateOne;
  // Per account: the gate the other instance's lastLoginAt update waits at, opened once the
  // update of the account's key is sent.
  const sent = new Map<string, Gate>(ids.map((id) => [id, gate()]));
  const raced = new Set<string>();
  const send = updateOne as (...args: unknown[]) => Promise<unknown>;
  Collection.prototype.updateOne = async function (this: Collection, filter: Filter<Document>, update: UpdateFilter<Document>, ...rest: unknown[]) {
    const id = (filter as Document)._id as string;
    if (this.collectionName === USERS && sent.has(id)) {
      if ("lastLoginAt" in ((update as Document).$max ?? {})) {
        await settlesWithin(GATE_MS, `the lastLoginAt write of account ${id}, held for the backfill's $set of its loginKey`, sent.get(id)!.pass());
      } else if ("loginKey" in ((update as Document).$set ?? {}) && !raced.has(id)) {
        raced.add(id);
        const login = other().users.setLastLogin(id, loginAt);
        await Promise.race([sent.get(id)!.reached, login]);
        const keyed = send.call(this, filter, update, ...rest);
        sent.get(id)!.open();
        const [result] = await Promise.all([keyed, login]);
        return result;
      }
    }
    return send.call(this, filter, update, ...rest);
  } as Collection["updateOne"];
  return () => {
    Collection.prototype.updateOne = updateOne;
  };
}

/**
 * Two stores on one database of their own for the describe it is called in (skipped without
 * MongoDB), as two instances; `client` reaches the database directly. Collection methods a test
 * replaced are restored after it.
 */
function twoInstances(prefix: string): { readonly client: MongoClient; readonly a: Store; readonly b: Store; readonly dbName: string } {
  const dbName = `${prefix}_${randomUUID().slice(0, 8)}`;
  let client: MongoClient;
  let a: Store;
  let b: Store;
  const updateOne = Collection.prototype.updateOne;
  const countDocuments = Collection.prototype.countDocuments;
  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    const uri = process.env.MONGODB_URI!;
    client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000, socketTimeoutMS: CLIENT_SOCKET_TIMEOUT_MS });
    // A bound past what a shared test server may take for one store call of the backfill (its
    // update of an account may wait for the other instance's login of it).
    const open = () => openStore({ mongodbUri: uri, dataDir: "", mongoDbName: dbName, serverSelectionTimeoutMs: 20_000, warn: () => {} });
    a = await open();
    b = await open();
  });
  // Also after a test that failed by mocha's timeout (its finally never ran).
  afterEach(() => {
    Collection.prototype.updateOne = updateOne;
    Collection.prototype.countDocuments = countDocuments;
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await client?.db(dbName).dropDatabase().catch(() => {});
    await client?.close();
  });
  return {
    dbName,
    get client() {
      return client;
    },
    get a() {
      return a;
    },
    get b() {
      return b;
    },
  };
}

describe("mongo store: login keys backfilled while another instance records logins or backfills too", function () {
  this.timeout(60_000);
  const db = twoInstances("tessera_backfill");
  const updateOne = Collection.prototype.updateOne;
  const countDocuments = Collection.prototype.countDocuments;

  /** An account as a version without login keys wrote it, its login spelt `${prefix}.<random>@Example.com`. */
  async function keylessAccount(prefix: string): Promise<{ id: string; login: string }> {
    const id = randomUUID();
    const login = `${prefix}.${randomUUID().slice(0, 6)}@Example.com`;
    await db.client.db(db.dbName).collection<Document>(USERS).insertOne({ _id: id as never, login, emails: [], passwordHash: "hash", createdAt: new Date(Date.now() - 60_000) });
    return { id, login };
  }

  it("every account keeps the key the backfill gave it, and is found by a look-alike spelling", async () => {
    const accounts = Array.from({ length: 16 }, (_, i) => ({
      id: randomUUID(),
      login: `Legacy.${i}.${randomUUID().slice(0, 6)}@Example.com`,
      emails: [],
      passwordHash: "hash",
      createdAt: new Date(Date.now() - 60_000 + i),
    }));
    // As a version without login keys wrote them.
    await db.client.db(db.dbName).collection<{ _id: string }>(USERS).insertMany(accounts.map(({ id, ...account }) => ({ _id: id, ...account })));
    const loginAt = new Date();
    const restore = loginsBesideKeyWrites(accounts.map((u) => u.id), () => db.a, loginAt);
    let filled: { filled: number; clashes: string[] };
    try {
      filled = await db.b.users.backfillLoginKeys((login) => login.toLowerCase());
    } finally {
      restore();
    }
    assert.deepEqual(filled, { filled: accounts.length, clashes: [] });
    const lost: string[] = [];
    for (const account of accounts) if ((await db.a.users.findById(account.id))?.loginKey !== account.login.toLowerCase()) lost.push(account.login);
    assert.deepEqual(lost, [], `${lost.length} of ${accounts.length} accounts lost their login key`);
    for (const account of accounts) {
      const key = account.login.toLowerCase();
      // A look-alike spelling finds the account (by its key), and the login recorded beside the
      // backfill is kept.
      const user = await db.a.users.findByLogin(key.toUpperCase(), key);
      assert.equal(user?.id, account.id, account.login);
      assert.equal(user?.lastLoginAt?.getTime(), loginAt.getTime(), account.login);
    }
  });

  it("a last login kept apart while the account had no key is carried into its document, and its user_last_logins document goes (none left once every account has its key)", async () => {
    const { id, login } = await keylessAccount("Apart");
    const loginAt = new Date(Date.now() - 1000);
    await db.a.users.setLastLogin(id, loginAt);
    const apart = db.client.db(db.dbName).collection<{ _id: string }>(USER_LAST_LOGINS);
    assert.equal(await apart.countDocuments({ _id: id }), 1, "kept apart while keyless");
    assert.equal((await db.a.users.findById(id))?.lastLoginAt?.getTime(), loginAt.getTime());
    await db.b.users.backfillLoginKeys((l) => l.toLowerCase());
    const user = await db.a.users.findById(id);
    assert.equal(user?.loginKey, login.toLowerCase());
    assert.equal(user?.lastLoginAt?.getTime(), loginAt.getTime());
    assert.equal(await apart.countDocuments({ _id: id }), 0);
  });

  it("a keyless account's last login kept apart stays the later one when an earlier login is written after it (two logins racing)", async () => {
    const { id } = await keylessAccount("Racing");
    const earlier = new Date(Date.now() - 2000);
    const later = new Date(Date.now() - 1000);
    // The first write inserts the user_last_logins document, the second updates it.
    await db.a.users.setLastLogin(id, later);
    await db.b.users.setLastLogin(id, earlier);
    const apart = await db.client.db(db.dbName).collection<{ _id: string; lastLoginAt?: Date }>(USER_LAST_LOGINS).findOne({ _id: id });
    assert.equal(apart?.lastLoginAt?.getTime(), later.getTime());
    assert.equal((await db.a.users.findById(id))?.lastLoginAt?.getTime(), later.getTime());
  });

  it("a login kept apart as the backfill carries the account's earlier one is kept, and no user_last_logins document is left", async () => {
    const { id, login } = await keylessAccount("Beside");
    const earlier = new Date(Date.now() - 2000);
    const later = new Date(Date.now() - 1000);
    await db.a.users.setLastLogin(id, earlier);
    // The later login finds the account keyless; the backfill then keys it and carries the
    // earlier login; the later one is kept apart only then, before the backfill's delete.
    const carried = gate();
    const keptApart = gate();
    const send = updateOne as (...args: unknown[]) => Promise<unknown>;
    Collection.prototype.updateOne = async function (this: Collection, filter: Filter<Document>, update: UpdateFilter<Document>, ...rest: unknown[]) {
      const result = await send.call(this, filter, update, ...rest);
      if ((filter as Document)._id === id) {
        const max = ((update as Document).$max ?? {}) as Document;
        if (this.collectionName === USERS && "lastLoginAt" in max && max.lastLoginAt.getTime() === later.getTime()) {
          await settlesWithin(GATE_MS, "the later login, held once it found the account keyless, waiting for the backfill's carry of the earlier one", carried.pass());
        } else if (this.collectionName === USERS && "lastLoginAt" in max) {
          carried.open();
          await settlesWithin(GATE_MS, "the backfill's carry, held for the later login's write to user_last_logins", keptApart.pass());
        } else if (this.collectionName === USER_LAST_LOGINS && ((update as Document).$max as Document | undefined)?.lastLoginAt?.getTime() === later.getTime()) {
          keptApart.open();
        }
      }
      return result;
    } as Collection["updateOne"];
    try {
      const recorded = db.a.users.setLastLogin(id, later);
      // The login answered (or failed) before it was held fails the test at once.
      const unheld = recorded.then(() => Promise.reject(new Error("the later login was answered without being held")));
      await settlesWithin(GATE_MS, "the later login's lastLoginAt write of the keyless account", Promise.race([carried.reached, unheld]));
      await Promise.all([db.b.users.backfillLoginKeys((l) => l.toLowerCase()), recorded]);
    } finally {
      Collection.prototype.updateOne = updateOne;
    }
    const user = await db.a.users.findById(id);
    assert.equal(user?.loginKey, login.toLowerCase());
    assert.equal(user?.lastLoginAt?.getTime(), later.getTime());
    assert.equal(await db.client.db(db.dbName).collection<{ _id: string }>(USER_LAST_LOGINS).countDocuments({ _id: id }), 0);
  });

  // Two instances starting at once both backfill the same accounts. One read its page of keyless
  // accounts before the other keyed them; its check of a key then found the key taken by the very
  // account it was about to key (the other instance's write), and it reported that account as a
  // clash: a warning naming an account as having a look-alike it does not have. (Last here: its
  // look-alike stays keyless, a clash of every later backfill on this database.)
  it("an account the other instance keyed meanwhile is no clash; a real look-alike still is, on both", async () => {
    const tag = randomUUID().slice(0, 6);
    const t0 = Date.now() - 60_000;
    const accounts = Array.from({ length: 4 }, (_, i) => ({
      _id: `legacy-${i}-${tag}`,
      login: `Legacy.${i}.${tag}@Example.com`,
      emails: [],
      passwordHash: "hash",
      createdAt: new Date(t0 + i),
    }));
    // A look-alike of the first account, younger than every other: it keeps no key.
    const younger = { _id: `younger-${tag}`, login: accounts[0]!.login.toUpperCase(), emails: [], passwordHash: "hash", createdAt: new Date(t0 + 10) };
    // As a version without login keys wrote them.
    await db.client.db(db.dbName).collection<{ _id: string }>(USERS).insertMany([...accounts, younger]);
    const keyOf = (login: string) => login.toLowerCase();
    // Instance b has read its page; at its first check of a key, instance a backfills them all.
    let first: Promise<{ filled: number; clashes: string[] }> | undefined;
    const count = countDocuments as (...args: unknown[]) => Promise<number>;
    Collection.prototype.countDocuments = async function (this: Collection, filter?: Filter<Document>, ...rest: unknown[]) {
      if (this.collectionName === USERS && filter !== undefined && "loginKey" in filter && first === undefined) {
        first = db.a.users.backfillLoginKeys(keyOf);
        await first;
      }
      return count.call(this, filter, ...rest);
    } as Collection["countDocuments"];
    let second: { filled: number; clashes: string[] };
    try {
      second = await db.b.users.backfillLoginKeys(keyOf);
    } finally {
      Collection.prototype.countDocuments = countDocuments;
    }
    assert.deepEqual(await first, { filled: accounts.length, clashes: [younger._id] });
    assert.deepEqual(second, { filled: 0, clashes: [younger._id] });
    for (const account of accounts) assert.equal((await db.b.users.findById(account._id))?.loginKey, keyOf(account.login), account._id);
    assert.equal((await db.b.users.findById(younger._id))?.loginKey, undefined);
  });
});

// Accounts stored before login keys, more than the whole backfill can key under the store's
// bound (2 s here, the default), which is still far above what any one of its store operations
// takes, on a loaded machine too (a bound of 500 ms was passed by single operations there). The
// backfill was one store call under that bound: it answered StoreUnavailableError ("MongoDB did
// not answer within 2000 ms") after keying only some of them, and so did every start after it.
/**
 * A database of its own for the describe it is called in (skipped without MongoDB), and a store on
 * it whose calls are bound to `boundMs`; `client` reaches the database directly.
 */
function boundStore(boundMs: number): { readonly client: MongoClient; readonly store: Store; readonly dbName: string } {
  const dbName = `tessera_backfill_${randomUUID().slice(0, 8)}`;
  let client: MongoClient;
  let store: Store;
  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    const uri = process.env.MONGODB_URI!;
    client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000, socketTimeoutMS: CLIENT_SOCKET_TIMEOUT_MS });
    store = await openStore({ mongodbUri: uri, dataDir: "", mongoDbName: dbName, serverSelectionTimeoutMs: boundMs, warn: () => {} });
  });
  after(async () => {
    await store?.close();
    await client?.db(dbName).dropDatabase().catch(() => {});
    await client?.close();
  });
  return {
    dbName,
    get client() {
      return client;
    },
    get store() {
      return store;
    },
  };
}

describe("mongo store: login keys backfilled for more accounts than one store call's bound allows", function () {
  this.timeout(120_000);
  const COUNT = 1500;
  const BOUND_MS = 2000;
  const db = boundStore(BOUND_MS);

  it("every account gets its key, a clash is reported once, and a last login kept apart is carried", async () => {
    const t0 = Date.now() - 86_400_000;
    const tag = randomUUID().slice(0, 6);
    // Several accounts share each creation time: the backfill's order is (createdAt, _id).
    const accounts = Array.from({ length: COUNT }, (_, i) => ({
      _id: `legacy-${String(i).padStart(5, "0")}-${tag}`,
      login: `Legacy.${i}.${tag}@Example.com`,
      emails: [],
      passwordHash: "hash",
      createdAt: new Date(t0 + Math.floor(i / 3)),
    }));
    // A look-alike of the first account, younger than every other: it keeps no key.
    const younger = { _id: `younger-${tag}`, login: accounts[0]!.login.toUpperCase(), emails: [], passwordHash: "hash", createdAt: new Date(t0 + COUNT) };
    // As a version without login keys wrote them.
    const users = db.client.db(db.dbName).collection<{ _id: string; login: string; loginKey?: string }>(USERS);
    await users.insertMany([...accounts, younger]);
    const loginAt = new Date(t0 + 2 * COUNT);
    const lastLogins = [accounts[1]!, accounts[COUNT - 1]!];
    await db.client
      .db(db.dbName)
      .collection<{ _id: string }>(USER_LAST_LOGINS)
      .insertMany(lastLogins.map((u) => ({ _id: u._id, lastLoginAt: loginAt })));

    const keyOf = (login: string) => login.toLowerCase();
    const started = performance.now();
    const result = await db.store.users.backfillLoginKeys(keyOf);
    const tookMs = Math.round(performance.now() - started);
    assert.deepEqual(result, { filled: COUNT, clashes: [younger._id] });
    // Else the case no longer shows a backfill longer than one store call may be.
    assert.ok(tookMs > BOUND_MS, `the backfill took ${tookMs} ms, within one store call's bound`);

    const stored = await users.find({}, { projection: { login: 1, loginKey: 1 } }).toArray();
    const wrong = stored.filter((doc) => (doc._id === younger._id ? "loginKey" in doc : doc.loginKey !== keyOf(doc.login)));
    assert.deepEqual(wrong.map((doc) => doc._id), []);
    assert.equal(stored.length, COUNT + 1);
    for (const account of lastLogins) assert.equal((await db.store.users.findById(account._id))?.lastLoginAt?.getTime(), loginAt.getTime(), account._id);

    // Run again: nothing left to fill, and the clash is reported once.
    assert.deepEqual(await db.store.users.backfillLoginKeys(keyOf), { filled: 0, clashes: [younger._id] });
  });
});

// Keyless accounts by the tens of thousands. FerretDB 1.24 sorts in its own process, after reading
// every document the filter matches (its explain: no filter, sort or limit pushdown), so a read
// of the next page by (createdAt, _id) read and sorted every keyless account, each page: 40000 of
// them took seconds, past the store's bound (1 s here), and the backfill (the start) failed
// before keying one. Read without a sort, a page ends once it has its accounts.
describe("mongo store: login keys backfilled for tens of thousands of keyless accounts", function () {
  this.timeout(180_000);
  const COUNT = 40_000;
  const db = boundStore(1000);

  it("every page read stays under the store's bound: the backfill reaches the accounts' keys, oldest first", async () => {
    const t0 = Date.now() - 86_400_000;
    const accounts = Array.from({ length: COUNT }, (_, i) => ({
      _id: `legacy-${String(i).padStart(6, "0")}`,
      login: `Legacy.${i}@Example.com`,
      emails: [],
      passwordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
      // Stored youngest first: the oldest is the last document a scan meets.
      createdAt: new Date(t0 + COUNT - i),
    }));
    const users = db.client.db(db.dbName).collection<{ _id: string }>(USERS);
    for (let i = 0; i < COUNT; i += 5000) await users.insertMany(accounts.slice(i, i + 5000));
    // Stops the backfill at the first account it keys (keying 40000 takes minutes).
    const keyed: string[] = [];
    const stop = new Error("stopped at the first key");
    const keyOf = (login: string) => {
      keyed.push(login);
      throw stop;
    };
    await assert.rejects(db.store.users.backfillLoginKeys(keyOf), (e) => e === stop);
    assert.deepEqual(keyed, [accounts[COUNT - 1]!.login]);
  });
});

// The re-key of accounts whose key an older key function gave them (backfillLoginKeys with a key
// function version), on one instance while another records logins of the same accounts or
// re-keys them too. Unlike a keyless account, a keyed one has its lastLoginAt written in place,
// and FerretDB writes an updated document back whole: a login's write sent beside the re-key's
// $set of the new key can put the old key back.
describe("mongo store: login keys re-keyed for a newer key function while another instance records logins or re-keys too", function () {
  this.timeout(60_000);
  const db = twoInstances("tessera_rekey");
  const countDocuments = Collection.prototype.countDocuments;
  // The key function now folds case and collapses spaces; the older one only folded case.
  const keyOf = (login: string) => login.toLowerCase().replace(/ +/g, " ");
  const oldKeyOf = (login: string) => login.toLowerCase();

  /** Accounts as the older key function keyed them, `Legacy  <i>` with two spaces. */
  async function staleAccounts(count: number, tag: string) {
    const t0 = Date.now() - 60_000;
    const accounts = Array.from({ length: count }, (_, i) => {
      const login = `Legacy  ${i}.${tag}@Example.com`;
      return { _id: `stale-${i}-${tag}`, login, loginKey: oldKeyOf(login), emails: [], passwordHash: "hash", createdAt: new Date(t0 + i) };
    });
    await db.client.db(db.dbName).collection<{ _id: string }>(USERS).insertMany(accounts);
    return accounts;
  }

  it("every account keeps the new key the re-key gave it while the other instance records its logins", async () => {
    const accounts = await staleAccounts(16, randomUUID().slice(0, 6));
    const loginAt = new Date();
    const restore = loginsBesideKeyWrites(accounts.map((u) => u._id), () => db.a, loginAt);
    let result: { filled: number; clashes: string[] };
    try {
      result = await db.b.users.backfillLoginKeys(keyOf, 2);
    } finally {
      restore();
    }
    assert.deepEqual(result, { filled: accounts.length, clashes: [] });
    const lost: string[] = [];
    for (const account of accounts) if ((await db.a.users.findById(account._id))?.loginKey !== keyOf(account.login)) lost.push(account.login);
    assert.deepEqual(lost, [], `${lost.length} of ${accounts.length} accounts lost their new key`);
    for (const account of accounts) {
      const user = await db.a.users.findByLogin(keyOf(account.login).toUpperCase(), keyOf(account.login));
      assert.equal(user?.id, account._id, account.login);
    }
  });

  it("an account the other instance re-keyed meanwhile is no clash; a real look-alike still is, on both", async () => {
    const tag = randomUUID().slice(0, 6);
    const accounts = await staleAccounts(4, tag);
    // Signed up under the new key function as a look-alike of the first account.
    const lookAlikeLogin = keyOf(accounts[0]!.login);
    await db.client
      .db(db.dbName)
      .collection<Document>(USERS)
      .insertOne({ _id: `look-alike-${tag}` as never, login: lookAlikeLogin, loginKey: keyOf(lookAlikeLogin), emails: [], passwordHash: "hash", createdAt: new Date() });
    let first: Promise<{ filled: number; clashes: string[] }> | undefined;
    const count = countDocuments as (...args: unknown[]) => Promise<number>;
    Collection.prototype.countDocuments = async function (this: Collection, filter?: Filter<Document>, ...rest: unknown[]) {
      if (this.collectionName === USERS && filter !== undefined && "loginKey" in filter && first === undefined) {
        first = db.a.users.backfillLoginKeys(keyOf, 3);
        await first;
      }
      return count.call(this, filter, ...rest);
    } as Collection["countDocuments"];
    let second: { filled: number; clashes: string[] };
    try {
      second = await db.b.users.backfillLoginKeys(keyOf, 3);
    } finally {
      Collection.prototype.countDocuments = countDocuments;
    }
    assert.deepEqual(await first, { filled: accounts.length - 1, clashes: [accounts[0]!._id] });
    assert.deepEqual(second, { filled: 0, clashes: [accounts[0]!._id] });
    for (const account of accounts.slice(1)) assert.equal((await db.b.users.findById(account._id))?.loginKey, keyOf(account.login), account._id);
    assert.equal((await db.b.users.findById(accounts[0]!._id))?.loginKey, accounts[0]!.loginKey);
    assert.equal((await db.b.users.findById(`look-alike-${tag}`))?.loginKey, keyOf(lookAlikeLogin));
  });
});
