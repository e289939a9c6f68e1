// What the caps read on MongoDB (src/store/README.md, "Caps"): each read of a user's credentials
// by a capped creation names its index (hint), and the index begins with the fields the read
// compares for equality (the user, and for user tokens and seed 004 refresh tokens the missing
// disabledAt / revokedAt of a live one), then the read's sort: the server then walks the user's
// live credentials alone, newest (or oldest) first, and stops at the cap and one batch, however
// many logged-out or revoked ones are stored. FerretDB ignores hints and its explain shows no
// index walk, so the commands the driver sends are checked against the indexes made at start. An
// API-token creation's counts of the account's active tokens are checked the same way.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { MongoClient, type CommandStartedEvent, type Document } from "mongodb";
import { loadMongoDriver } from "../../src/store/mongo/mongo-driver.js";
import { ensureIndexes } from "../../src/store/mongo/mongo-indexes.js";
import { API_TOKENS_ACTIVE_INDEX, mongoApiTokens } from "../../src/store/mongo/mongo-api-tokens.js";
import { mongoJwtRefreshTokens } from "../../src/store/mongo/mongo-jwt-refresh-tokens.js";
import { Marks } from "../../src/store/mongo/mongo-marks.js";
import { mongoSessions } from "../../src/store/mongo/mongo-sessions.js";
import { mongoUserTokens, USER_TOKENS_CAP_INDEX } from "../../src/store/mongo/mongo-user-tokens.js";
import type { MongoContext } from "../../src/store/mongo/mongo-context.js";
import { storesUnderTest } from "../support/server.js";

/** The fields `filter` compares for equality (a value, null included, not an operator), through $and. */
function equalities(filter: Document): string[] {
  return Object.entries(filter).flatMap(([field, value]) => {
    if (field === "$and") return (value as Document[]).flatMap(equalities);
    if (field.startsWith("$")) return [];
    const operator = value !== null && typeof value === "object" && !(value instanceof Date) && Object.keys(value).some((k) => k.startsWith("$"));
    return operator ? [] : [field];
  });
}

describe("mongo store: the caps' reads", function () {
  let client: MongoClient;
  let dbName: string;
  let ctx: MongoContext;
  const started: CommandStartedEvent[] = [];

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    await loadMongoDriver();
    dbName = `tessera_cap_reads_${randomBytes(6).toString("hex")}`;
    client = new MongoClient(process.env.MONGODB_URI!, { monitorCommands: true, serverSelectionTimeoutMS: 5000 });
    client.on("commandStarted", (event) => event.databaseName === dbName && started.push(event));
    await client.connect();
    const db = client.db(dbName);
    await ensureIndexes(db, () => {});
    ctx = { db, marks: new Marks(db), run: (_idKey, op) => op() };
  });

  after(async () => {
    if (!client) return;
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  const at = (minutes: number) => new Date(Date.UTC(2030, 0, 1, 0, minutes));
  const later = new Date(Date.UTC(2030, 0, 2));

  /**
   * The reads of the user's credentials in `collection` (finds with a sort or a hint) that `create`
   * (a capped creation past its cap) sends, each checked: its hint names an index of the
   * collection whose keys begin with the read's equality fields, then its sort (in the index's
   * direction or the reverse), if any. Answers each read's equality fields.
   */
  async function capReads(collection: string, create: () => Promise<{ ended: string[] }>, ended: number): Promise<string[][]> {
    return readsOf(collection, async () => assert.equal((await create()).ended.length, ended));
  }

  /** The reads of `collection` (finds with a sort or a hint) that `run` sends, each checked as capReads says. */
  async function readsOf(collection: string, run: () => Promise<void>): Promise<string[][]> {
    started.length = 0;
    await run();
    const finds = started.filter((e) => e.commandName === "find" && e.command.find === collection && (e.command.sort !== undefined || e.command.hint !== undefined));
    assert.ok(finds.length >= 2, `${collection}: ${finds.length} sorted reads`);
    const indexes = new Map((await client.db(dbName).collection(collection).listIndexes().toArray()).map((index) => [index.name as string, index.key as Document]));
    return finds.map(({ command }) => {
      // The driver sends a sort as a Map (its keys' order is the sort's).
      const sort = command.sort instanceof Map ? [...(command.sort as Map<string, number>).entries()] : Object.entries((command.sort ?? {}) as Document);
      const shown = JSON.stringify({ filter: command.filter, sort, hint: command.hint });
      assert.equal(typeof command.hint, "string", `${collection} read without a hint: ${shown}`);
      const key = indexes.get(command.hint as string);
      assert.ok(key, `${collection} has no index ${command.hint}`);
      const equal = equalities(command.filter as Document);
      const keys = Object.entries(key);
      const prefix = keys.slice(0, equal.length).map(([field]) => field);
      assert.deepEqual([...prefix].sort(), [...new Set(equal)].sort(), `${collection}: the index ${command.hint} begins with the read's equalities: ${shown}`);
      const rest = keys.slice(equal.length, equal.length + sort.length);
      const reversed = rest.map(([field, dir]) => [field, -dir]);
      assert.ok(JSON.stringify(sort) === JSON.stringify(rest) || JSON.stringify(sort) === JSON.stringify(reversed), `${collection}: ${command.hint} then sorts as the read: ${shown}`);
      return equal;
    });
  }

  it("user tokens and cookie sessions: by userId_1_disabledAt_1_createdAt_-1__id_-1, the logged-out ones never walked", async () => {
    const store = mongoUserTokens(ctx, { findById: async () => null });
    const token = (i: number) => ({ id: `ut-${i}`, hash: `h-${i}`, userId: "u1", createdAt: at(i), expiresAt: later });
    for (let i = 0; i < 4; i++) await store.create(token(i), 10);
    await store.disable("ut-1", at(5));
    await store.disable("ut-3", at(5));
    const reads = await capReads("user_tokens", () => store.create(token(6), 2), 1);
    for (const equal of reads) assert.ok(equal.includes("disabledAt"), "the live ones read by equality on disabledAt");
    // The expired ones never logged out (to be marked so), the boundary, the oldest up to it.
    assert.deepEqual(
      started.filter((e) => e.commandName === "find" && e.command.find === "user_tokens").map((e) => e.command.hint),
      [USER_TOKENS_CAP_INDEX, USER_TOKENS_CAP_INDEX, USER_TOKENS_CAP_INDEX],
    );
  });

  it("seed 004 refresh tokens: by userId_1_revokedAt_1_issuedAt_-1__id_-1, the revoked ones never walked", async () => {
    const store = mongoJwtRefreshTokens(ctx);
    const token = (i: number) => ({ jti: `jti-${i}`, userId: "u1", issuedAt: at(i), expiresAt: later });
    for (let i = 0; i < 4; i++) await store.create(token(i), 10);
    await store.revoke("jti-1", "u1", at(5));
    await store.revoke("jti-3", "u1", at(5));
    const reads = await capReads("jwt_refresh_tokens", () => store.create(token(6), 2), 1);
    for (const equal of reads) assert.ok(equal.includes("revokedAt"), "the live ones read by equality on revokedAt");
  });

  it("sessions: the boundary by userId_1_createdAt_-1__id_-1, the ended ones by userId_1_endedAt_1__id_1", async () => {
    const store = mongoSessions(ctx, { findById: async () => null });
    const create = (i: number, cap: number) => {
      const session = { id: `s-${i}`, userId: "u1", clientId: "c", accessJti: `j-${i}`, createdAt: at(i), expiresAt: later };
      return store.createThenSync(session, { hash: `rt-${i}`, sessionId: session.id, createdAt: at(i), expiresAt: later }, cap);
    };
    for (let i = 0; i < 4; i++) await create(i, 10);
    await store.endThenSync("s-3", at(5));
    const reads = await capReads("sessions", () => create(6, 3), 1);
    // The boundary, the oldest up to it, the ended ones; then, a live one going, those without the copy.
    assert.deepEqual(
      started.filter((e) => e.commandName === "find" && e.command.find === "sessions").map((e) => e.command.hint),
      ["userId_1_createdAt_-1__id_-1", "userId_1_createdAt_-1__id_-1", "userId_1_endedAt_1__id_1", "userId_1_endedAt_1__id_1"],
    );
    assert.deepEqual(reads, [["userId"], ["userId"], ["userId"], ["userId", "endedAt"]]);
  });

  it("sessions: one ended without its endedAt copy (an older version's end, or the write lost) still goes before a live one, its copy written again", async () => {
    const store = mongoSessions(ctx, { findById: async () => null });
    const create = (id: string, i: number, cap: number) => {
      const session = { id, userId: "u2", clientId: "c", accessJti: `j-${id}`, createdAt: at(i), expiresAt: later };
      return store.createThenSync(session, { hash: `rt-${id}`, sessionId: id, createdAt: at(i), expiresAt: later }, cap);
    };
    const sessions = client.db(dbName).collection<{ _id: string; endedAt?: Date }>("sessions");
    await create("old-live", 0, 10);
    await create("copy-lost", 1, 10);
    await create("copy-kept", 2, 10);
    assert.equal((await store.endThenSync("copy-lost", at(3))).ended, true);
    assert.equal((await store.endThenSync("copy-kept", at(3))).ended, true);
    assert.deepEqual((await sessions.findOne({ _id: "copy-lost" }))?.endedAt, at(3));
    await sessions.updateOne({ _id: "copy-lost" }, { $unset: { endedAt: "" } });
    // A cap of 2: two go, both ended ones; the live one stays.
    assert.deepEqual((await create("new", 4, 2)).ended, []);
    assert.deepEqual((await sessions.find({ userId: "u2" }, { projection: { _id: 1 } }).sort({ _id: 1 }).toArray()).map((doc) => doc._id), ["new", "old-live"]);
    // A repeated logout of a session whose copy is missing writes it.
    await create("again", 5, 10);
    assert.equal((await store.endThenSync("again", at(6))).ended, true);
    await sessions.updateOne({ _id: "again" }, { $unset: { endedAt: "" } });
    assert.equal((await store.endThenSync("again", at(7))).ended, false);
    assert.deepEqual((await sessions.findOne({ _id: "again" }))?.endedAt, at(6));
  });

  it("API tokens: a creation counts by accountId_1_revokedAt_1_issuedAt_1__id_1 those ranked before its own, then those kept after it, at most the bound, the revoked ones never walked", async () => {
    const store = mongoApiTokens(ctx);
    const token = (i: number, issuedAt = at(i)) => ({ link: `link-${i}`, hash: `api-${i}`, accountId: "acct", description: "d", issuedAt });
    for (let i = 0; i < 4; i++) assert.ok(await store.create(token(i), 10));
    await store.revoke("acct", "link-1", at(5));
    // Issued between link-2 and link-3: two active before it, one kept after it, a bound of 3.
    const reads = await readsOf("api_tokens", async () => assert.equal(await store.create(token(6, new Date(at(2).getTime() + 1)), 3), null));
    assert.deepEqual(
      started.filter((e) => e.commandName === "find" && e.command.find === "api_tokens").map((e) => [e.command.hint, e.command.limit]),
      [
        [API_TOKENS_ACTIVE_INDEX, 3],
        [API_TOKENS_ACTIVE_INDEX, 1],
      ],
    );
    for (const equal of reads) assert.deepEqual(equal, ["accountId", "revokedAt"], "the active ones read by equality on revokedAt");
    // One place freed: the same is kept, and no longer pending once answered.
    await store.revoke("acct", "link-3", at(7));
    assert.ok(await store.create(token(8, new Date(at(2).getTime() + 1)), 3));
    assert.equal(await client.db(dbName).collection("api_tokens").countDocuments({ pending: { $exists: true } }), 0);
  });
});
