// Which MongoDB database Tessera uses: the one MONGODB_URI names, when it names one (two
// deployments on one cluster with different database names never share users, sessions or
// signing keys); TESSERA_MONGODB_DATABASE only when the URI names none. Both at once with
// different names stops start-up (test/server/server.test.ts). On a private FerretDB, so
// nothing lands in a shared database.
import { strict as assert } from "node:assert";
import { MongoClient } from "mongodb";
import { rest } from "../support/clients.js";
import { ferretdbBinary, PrivateFerretDb } from "../support/ferretdb.js";
import { startTestServer } from "../support/server.js";
import { clientIdHeader, password, uniqueEmail } from "../support/users.js";

describe("MongoDB database name", function () {
  this.timeout(60_000);
  let db: PrivateFerretDb;
  let client: MongoClient;

  before(async function () {
    if (!ferretdbBinary()) {
      if (process.env.CI === "true") throw new Error("CI=true but the FerretDB binary is missing (FERRETDB_BIN)");
      this.skip();
    }
    db = await PrivateFerretDb.start();
    client = new MongoClient(db.uri);
  });
  after(async () => {
    await client?.close();
    await db?.destroy();
  });

  const users = (name: string) => client.db(name).collection("users").countDocuments();
  const signUp = (url: string, email: string) => rest(url, "POST", "/user", { json: { email, password }, headers: clientIdHeader });

  it("MONGODB_URI names the database: it is used, and two deployments naming two databases share no user", async () => {
    const a = await startTestServer({ store: "mongo", env: { MONGODB_URI: `${db.uri}deployment_a`, TESSERA_MONGODB_DATABASE: "" } });
    const b = await startTestServer({ store: "mongo", env: { MONGODB_URI: `${db.uri}deployment_b?appName=b`, TESSERA_MONGODB_DATABASE: "" } });
    try {
      const email = uniqueEmail("ada");
      assert.equal((await signUp(a.url, email)).status, 201);
      const inB = await signUp(b.url, email);
      assert.equal(inB.status, 201, `deployment B saw deployment A's user: ${inB.status} ${inB.text}`);
      assert.equal(await users("deployment_a"), 1);
      assert.equal(await users("deployment_b"), 1);
      assert.equal(await users("tessera"), 0, "a user landed in the default database");
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("the same name in both is fine; a URI naming none takes TESSERA_MONGODB_DATABASE", async () => {
    const same = await startTestServer({ store: "mongo", env: { MONGODB_URI: `${db.uri}same_name`, TESSERA_MONGODB_DATABASE: "same_name" } });
    const fromVariable = await startTestServer({ store: "mongo", env: { MONGODB_URI: db.uri, TESSERA_MONGODB_DATABASE: "from_variable" } });
    try {
      assert.equal((await signUp(same.url, uniqueEmail())).status, 201);
      assert.equal((await signUp(fromVariable.url, uniqueEmail())).status, 201);
      assert.equal(await users("same_name"), 1);
      assert.equal(await users("from_variable"), 1);
    } finally {
      await same.close();
      await fromVariable.close();
    }
  });
});
