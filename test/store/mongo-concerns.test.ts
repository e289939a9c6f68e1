// Write and read concerns on MongoDB (README, "Scale out"): Tessera sets none itself, so the
// connection string's w / journal / readConcernLevel reach every operation — except reads of the
// insert-once marks, which go to the primary at read concern "local" whatever the connection
// string says (the loser of an insert must see the winner's mark at once). Checked on the
// commands the driver sends.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { MongoClient, type CommandStartedEvent, type Document } from "mongodb";
import { loadMongoDriver } from "../../src/store/mongo/mongo-driver.js";
import { Marks } from "../../src/store/mongo/mongo-marks.js";
import { storesUnderTest } from "../support/server.js";

/** `uri` with `options` added to its query string. */
function withOptions(uri: string, options: string): string {
  const separator = uri.includes("?") ? "&" : /^mongodb(\+srv)?:\/\/[^/]+$/.test(uri) ? "/?" : "?";
  return uri + separator + options;
}

describe("mongo store: write and read concerns", function () {
  let client: MongoClient;
  let dbName: string;
  const commands: CommandStartedEvent[] = [];

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    // Marks is used here without openMongoStore, which loads the driver (and so lets the store
    // tell a duplicate key): load it as a store's opening does.
    await loadMongoDriver();
    dbName = `tessera_concerns_${randomBytes(6).toString("hex")}`;
    client = new MongoClient(withOptions(process.env.MONGODB_URI!, "w=majority&journal=true&readConcernLevel=majority"), {
      monitorCommands: true,
      serverSelectionTimeoutMS: 5000,
    });
    client.on("commandStarted", (event) => commands.push(event));
    await client.connect();
  });

  after(async () => {
    if (!client) return;
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  const sent = (name: string): Document => {
    const found = commands.filter((c) => c.commandName === name && c.databaseName === dbName).at(-1);
    assert.ok(found, `no ${name} command was sent`);
    return found.command;
  };

  it("marks: the claim carries the connection string's write concern; the read is at local", async () => {
    const marks = new Marks(client.db(dbName));
    const at = new Date("2030-01-01T00:00:00Z");
    assert.equal(await marks.claim("refresh-spent:h1", at), true);
    const { w, j } = sent("insert").writeConcern as { w?: unknown; j?: unknown };
    assert.deepEqual({ w, j }, { w: "majority", j: true });
    assert.equal(await marks.claim("refresh-spent:h1", new Date()), false);
    assert.deepEqual(await marks.get("refresh-spent:h1"), at);
    assert.equal((sent("find").readConcern as { level?: string }).level, "local");
  });

  it("without that override the same client reads at the connection string's read concern", async () => {
    await client.db(dbName).collection("sessions").findOne({ _id: "s1" as unknown as never });
    assert.equal((sent("find").readConcern as { level?: string }).level, "majority");
  });
});
