// FerretDB 1.x on PostgreSQL stops answering for good once as many updates are in flight as its
// PostgreSQL pool has connections (src/store/README.md): a server on it says so at start, once,
// naming FerretDB's version and the maxPoolSize it uses (MONGODB_URI's), never the URI. The
// suites' MongoDB is FerretDB 1.x.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { MongoClient } from "mongodb";
import { pollUntil } from "../support/poll.js";
import { killService, startService, type ServiceProcess } from "../support/process.js";
import { startTestServer } from "../support/server.js";

const msg =
  "FerretDB 1.x stops answering for good once as many updates are in flight as its PostgreSQL pool has connections: keep the sum of every process's maxPoolSize (a MONGODB_URI option) below FerretDB's pool_max_conns (default 50; see src/store/README.md)";

describe("FerretDB 1.x: the warning on its PostgreSQL pool at start", function () {
  this.timeout(60_000);
  let uri: string;
  let ferretdbVersion: string;

  before(async function () {
    const base = process.env.MONGODB_URI;
    if (!base) {
      if (process.env.CI === "true") throw new Error("CI=true but MONGODB_URI is unset: the MongoDB suites cannot run");
      this.skip();
    }
    uri = `${base}${base.includes("?") ? "&" : "?"}maxPoolSize=7`;
    const client = new MongoClient(base, { serverSelectionTimeoutMS: 5000 });
    try {
      ferretdbVersion = (await client.db("admin").command({ buildInfo: 1 })).ferretdbVersion as string;
    } finally {
      await client.close();
    }
    assert.match(ferretdbVersion, /^v1\./, "the suites' MongoDB is FerretDB 1.x");
  });

  const warnings = (lines: Array<Record<string, unknown>>) => lines.filter((l) => l.msg === msg);

  it("a server logs it once, with its maxPoolSize (7, from MONGODB_URI), and not the URI", async () => {
    const server = await startTestServer({ store: "mongo", env: { MONGODB_URI: uri } });
    try {
      const lines = () => server.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
      await pollUntil("the warning", () => warnings(lines()).length > 0, { limitMs: 10_000, intervalMs: 20 });
      const ping = await fetch(`${server.url}/readyz`);
      assert.equal(ping.status, 200);
      assert.deepEqual(warnings(lines()).map(({ time: _time, ...line }) => line), [
        { level: "warn", msg, component: "store", ferretdbVersion, maxPoolSize: 7, workers: 1 },
      ]);
      assert.ok(!server.logs.some((l) => l.includes("maxPoolSize=7")), "no line holds the URI");
    } finally {
      await server.close();
    }
  });

  it("under TESSERA_WORKERS=2 the first worker alone logs it, naming both workers", async () => {
    let service: ServiceProcess | undefined;
    const db = `tessera_test_${randomBytes(6).toString("hex")}`;
    try {
      service = await startService("sources", { MONGODB_URI: uri, TESSERA_MONGODB_DATABASE: db, TESSERA_WORKERS: "2" }, { listeners: 2 });
      await pollUntil("the warning", () => warnings(service!.lines()).length > 0, { limitMs: 10_000, intervalMs: 20 });
      // The second worker has reached the store too (it listens once its store is open): a
      // warning of its own would come as soon as the first's.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.deepEqual(warnings(service.lines()).map(({ time: _time, ...line }) => line), [
        { level: "warn", msg, worker: 1, component: "store", ferretdbVersion, maxPoolSize: 7, workers: 2 },
      ]);
    } finally {
      await killService(service);
      const client = new MongoClient(process.env.MONGODB_URI!, { serverSelectionTimeoutMS: 5000 });
      await client.db(db).dropDatabase().catch(() => {});
      await client.close();
    }
  });
});
