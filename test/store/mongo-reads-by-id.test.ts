// The reads by a list of ids (mongo-by-id.ts): a key list and an API token's creation (its count
// of the account's active tokens) and list read their marks and last uses by `_id`. On FerretDB
// 1.24 only an `_id` equality is handed to PostgreSQL (explain: `filterPushdown: true`); an `$in`
// read every mark, so each key list (every 30 s on each instance) and API-token call took longer
// with every logout and revocation kept, past the store's time bound at tens of thousands. Each
// filter these calls send is explained here: pushed down on FerretDB, by the `_id` index on MongoDB.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Collection, MongoClient, type Db, type Document, type Filter } from "mongodb";
import { openStore } from "../../src/store/index.js";
import { API_TOKEN_USAGE } from "../../src/store/mongo/mongo-api-tokens.js";
import { MARKS } from "../../src/store/mongo/mongo-marks.js";
import type { Store } from "../../src/store/ports.js";
import { storesUnderTest } from "../support/server.js";
import { newSigningKey } from "../support/store.js";

const t0 = new Date("2032-01-02T03:04:05.678Z");
const at = (offsetMs: number): Date => new Date(t0.getTime() + offsetMs);

const newKey = (generation: number) => newSigningKey(generation, at(generation));

const newToken = (accountId: string) => ({ link: randomUUID(), hash: `api-hash-${randomUUID()}`, accountId, description: "payments backend", issuedAt: at(0) });

describe("mongo store: reads by id (key list, API tokens)", function () {
  this.timeout(120_000);
  let client: MongoClient;
  let db: Db;
  let store: Store;
  let ferretdb: boolean;
  const find = Collection.prototype.find;

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    const uri = process.env.MONGODB_URI!;
    const dbName = `tessera_test_byid_${randomUUID().slice(0, 8)}`;
    store = await openStore({ mongodbUri: uri, dataDir: "", mongoDbName: dbName, warn: () => {} });
    client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 5000 });
    db = client.db(dbName);
    ferretdb = "ferretdbVersion" in (await client.db("admin").command({ buildInfo: 1 }));
    await store.keys.insertGeneration(newKey(1));
    await store.keys.insertGeneration(newKey(2));
    assert.equal(await store.keys.revoke((await store.keys.list())[1]!.kid, at(10)), true);
  });
  afterEach(() => {
    Collection.prototype.find = find;
  });
  after(async () => {
    await store?.close();
    await db?.dropDatabase();
    await client?.close();
  });

  /** The filters `call` reads `marks` and `api_token_usage` with. */
  async function filtersOf(call: () => Promise<unknown>): Promise<{ collection: string; filter: Filter<Document> }[]> {
    const seen: { collection: string; filter: Filter<Document> }[] = [];
    Collection.prototype.find = function (this: Collection, filter?: Filter<Document>, ...rest: unknown[]) {
      if (this.collectionName === MARKS || this.collectionName === API_TOKEN_USAGE) seen.push({ collection: this.collectionName, filter: filter ?? {} });
      return (find as (...args: unknown[]) => ReturnType<Collection["find"]>).call(this, filter, ...rest);
    } as Collection["find"];
    try {
      await call();
    } finally {
      Collection.prototype.find = find;
    }
    return seen;
  }

  /** How the database runs `filter` on `collection`: "pushed down" (FerretDB) or the winning plan's stages (MongoDB). */
  async function planOf(collection: string, filter: Filter<Document>): Promise<string> {
    const explained = await db.collection(collection).find(filter).explain();
    if (ferretdb) return explained.filterPushdown === true ? "by _id" : `not pushed down: ${JSON.stringify(filter)}`;
    const stages: string[] = [];
    for (let plan = explained.queryPlanner?.winningPlan; plan; plan = plan.inputStage) stages.push(`${plan.stage}${plan.indexName ? ` ${plan.indexName}` : ""}`);
    return stages.some((stage) => stage === "IDHACK" || stage === "EXPRESS_IXSCAN" || stage === "IXSCAN _id_") ? "by _id" : `${stages.join(" < ")}: ${JSON.stringify(filter)}`;
  }

  it("a key list, an API token's creation and the account's list read marks and last uses by _id, each filter by the _id index", async () => {
    const accountId = `acct-${randomUUID()}`;
    const first = newToken(accountId);
    assert.notEqual(await store.apiTokens.create(first, 10), null);
    assert.equal(await store.apiTokens.touchLastUsed(first.link, at(15)), true);
    assert.notEqual(await store.apiTokens.revoke(accountId, first.link, at(20)), null);
    const filters = [
      ...(await filtersOf(() => store.keys.list())),
      ...(await filtersOf(() => store.apiTokens.create(newToken(accountId), 10))),
      ...(await filtersOf(() => store.apiTokens.list(accountId, "active"))),
    ];
    assert.deepEqual([...new Set(filters.map((f) => f.collection))].sort(), [API_TOKEN_USAGE, MARKS]);
    const plans = await Promise.all(filters.map((f) => planOf(f.collection, f.filter)));
    assert.deepEqual(plans, filters.map(() => "by _id"));
  });

  it("with 30,000 other marks, a key list and an API-token list answer as with none", async () => {
    const accountId = `acct-${randomUUID()}`;
    const revoked = newToken(accountId);
    const active = newToken(accountId);
    assert.notEqual(await store.apiTokens.create(revoked, 10), null);
    assert.notEqual(await store.apiTokens.create(active, 10), null);
    assert.notEqual(await store.apiTokens.revoke(accountId, revoked.link, at(30)), null);
    const keysBefore = await store.keys.list();
    const marks = db.collection<{ _id: string; at: Date; expiresAt: Date }>(MARKS);
    for (let i = 0; i < 30_000; i += 1000) {
      await marks.insertMany(Array.from({ length: 1000 }, (_, j) => ({ _id: `session-ended:${randomUUID()}-${i + j}`, at: at(0), expiresAt: at(86_400_000) })));
    }
    assert.deepEqual(await store.keys.list(), keysBefore);
    assert.deepEqual(
      (await store.apiTokens.list(accountId, "revoked")).map((token) => `${token.link} ${token.revokedAt?.toISOString()}`),
      [`${revoked.link} ${at(30).toISOString()}`],
    );
    assert.deepEqual(
      (await store.apiTokens.list(accountId, "active")).map((token) => token.link),
      [active.link],
    );
  });
});
