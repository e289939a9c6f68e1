// What a cookie session check reads on MongoDB of each credential it descends from that is a user
// token or cookie session (UserTokenStore.findById, core/credential-sources.ts): the token's
// document and its logout mark, both named by the id, sent together; never its last use, which
// the check does not ask for. Checked on the commands the driver sends.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { MongoClient, type CommandStartedEvent, type CommandSucceededEvent } from "mongodb";
import { loadMongoDriver } from "../../src/store/mongo/mongo-driver.js";
import { Marks } from "../../src/store/mongo/mongo-marks.js";
import { mongoUserTokens } from "../../src/store/mongo/mongo-user-tokens.js";
import type { MongoContext } from "../../src/store/mongo/mongo-context.js";
import { storesUnderTest } from "../support/server.js";

describe("mongo store: a user token read by id", function () {
  let client: MongoClient;
  let dbName: string;
  /** The commands sent and answered, in order. */
  const events: Array<{ started: CommandStartedEvent } | { answered: CommandSucceededEvent }> = [];

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    await loadMongoDriver();
    dbName = `tessera_ut_reads_${randomBytes(6).toString("hex")}`;
    client = new MongoClient(process.env.MONGODB_URI!, { monitorCommands: true, serverSelectionTimeoutMS: 5000 });
    client.on("commandStarted", (started) => started.databaseName === dbName && events.push({ started }));
    client.on("commandSucceeded", (answered) => answered.databaseName === dbName && events.push({ answered }));
    await client.connect();
    // Connections for two commands at once, open before the reads: a command that waited for
    // a connection to be made would start after the other's answer whatever the store does.
    await Promise.all(Array.from({ length: 4 }, () => client.db(dbName).command({ ping: 1 })));
  });

  after(async () => {
    if (!client) return;
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  it("reads the token and its logout mark in one round trip, and not its last use", async () => {
    const db = client.db(dbName);
    const ctx: MongoContext = { db, marks: new Marks(db), run: (_idKey, op) => op() };
    const store = mongoUserTokens(ctx, { findById: async () => null });
    const at = new Date("2030-01-01T00:00:00Z");
    const token = {
      id: "ut-1",
      hash: "h1",
      userId: "u1",
      note: "cookie session",
      createdAt: at,
      expiresAt: new Date("2030-01-02T00:00:00Z"),
      credentialEpoch: 0,
      sources: ["session:s1", "user_token:ut-0"],
    };
    await store.create(token);
    // A last use is recorded: the read leaves it out all the same.
    assert.equal(await store.touchLastUsed(token.id, at, 60_000), true);

    const read = async (id: string) => {
      events.length = 0;
      const found = await store.findById(id);
      const sent = events.flatMap((e) => ("started" in e ? [[e.started.commandName, e.started.command[e.started.commandName]]] : []));
      // One round trip: every command was sent before the first answer came.
      const firstAnswer = events.findIndex((e) => "answered" in e);
      assert.equal(events.slice(firstAnswer).filter((e) => "started" in e).length, 0, JSON.stringify(sent));
      return { found, sent: sent.sort() };
    };

    const live = await read(token.id);
    assert.deepEqual(live.sent, [["find", "marks"], ["find", "user_tokens"]]);
    assert.deepEqual(live.found, { ...token, enabled: true, version: 0 });

    assert.equal(await store.disable(token.id, at), true);
    const disabled = await read(token.id);
    assert.deepEqual(disabled.sent, [["find", "marks"], ["find", "user_tokens"]]);
    assert.deepEqual(disabled.found, { ...token, enabled: false, version: 1 });

    const missing = await read("ut-missing");
    assert.deepEqual(missing.sent, [["find", "marks"], ["find", "user_tokens"]]);
    assert.equal(missing.found, null);
  });
});
