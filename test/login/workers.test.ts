// Login protection under TESSERA_WORKERS: the windows live in the store, so one client's attempts
// count the same whichever worker process serves each of them. Two workers, compiled (`npm start`),
// behind a trusted proxy (127.0.0.9, the clients' bound address): each login is a new connection,
// handed round-robin, so consecutive attempts alternate between the workers. With
// TESSERA_LOGIN_MAX_FAILURES=1 an address is locked after 4 failures (429), whichever worker
// counted them, and an IPv6 /48 after TESSERA_LOGIN_MAX_FAILURES_PER_IPV6_48 (6), one fresh /64
// at each attempt. On SQLite (one file, several processes) and on MongoDB.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MongoClient } from "mongodb";
import { killService, startService, type ServiceProcess } from "../support/process.js";
import { storesUnderTest } from "../support/server.js";
import { otherPassword, uniqueEmail } from "../support/users.js";

const proxy = "127.0.0.9";

/** A failed login (a login nobody has) through the proxy, on a connection of its own: its status. */
function login(port: number, headers: Record<string, string>): Promise<number> {
  const body = JSON.stringify({ account_type: "traditional", email: uniqueEmail("ghost"), password: otherPassword });
  return new Promise((resolve, reject) => {
    const options = {
      host: "127.0.0.1",
      port,
      path: "/session",
      method: "POST",
      localAddress: proxy,
      agent: false as const,
      headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), "x-koms-clientid": "test-client", ...headers },
    };
    const req = http.request(options, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode!));
    });
    req.on("error", reject);
    req.end(body);
  });
}

for (const store of storesUnderTest()) {
  describe(`login protection across TESSERA_WORKERS=2 (${store})`, function () {
    this.timeout(60_000);
    let dataDir: string;
    let database: string | undefined;
    let cluster: ServiceProcess | undefined;

    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), "tessera-login-workers-"));
      database = store === "mongo" ? `tessera_test_${randomBytes(6).toString("hex")}` : undefined;
      cluster = await startService(
        "compiled",
        {
          TESSERA_WORKERS: "2",
          TESSERA_DATA_DIR: dataDir,
          TESSERA_TRUSTED_PROXIES: proxy,
          TESSERA_LOGIN_MAX_FAILURES: "1",
          TESSERA_LOGIN_MAX_FAILURES_PER_IPV6_48: "6",
          ...(database !== undefined && { MONGODB_URI: process.env.MONGODB_URI!, TESSERA_MONGODB_DATABASE: database }),
        },
        { listeners: 2 },
      );
    });
    after(async () => {
      await killService(cluster);
      rmSync(dataDir, { recursive: true, force: true });
      if (database !== undefined) {
        const client = new MongoClient(process.env.MONGODB_URI!, { serverSelectionTimeoutMS: 1000 });
        try {
          await client.db(database).dropDatabase();
        } finally {
          await client.close();
        }
      }
    });

    /** The workers that served the logins `run` made. */
    async function servedBy<T>(run: () => Promise<T>): Promise<{ result: T; workers: number[] }> {
      const logins = () => cluster!.lines().filter((l) => l.msg === "rpc" && l.procedure === "tessera.session.v1.SessionService/CreateSession");
      const before = logins().length;
      const result = await run();
      return { result, workers: [...new Set(logins().slice(before).map((l) => l.worker as number))].sort() };
    }

    it("one client named by X-Forwarded-For: locked after its 4th failure, counted by both workers; another client is not", async () => {
      const { result, workers } = await servedBy(async () => {
        const statuses: number[] = [];
        for (let i = 0; i < 5; i++) statuses.push(await login(cluster!.port, { "x-forwarded-for": "198.51.100.1" }));
        return statuses;
      });
      assert.deepEqual(workers, [1, 2], "both workers served the attempts");
      assert.deepEqual(result, [401, 401, 401, 401, 429]);
      assert.equal(await login(cluster!.port, { "x-forwarded-for": "198.51.100.2" }), 401);
    });

    it("a fresh /64 of one IPv6 /48 at each attempt (Forwarded): the /48 locked after its 6th failure, counted by both workers", async () => {
      const { result, workers } = await servedBy(async () => {
        const statuses: number[] = [];
        for (let i = 0; i < 7; i++) statuses.push(await login(cluster!.port, { forwarded: `for="[2001:db8:7:${i}::1]:4711"` }));
        return statuses;
      });
      assert.deepEqual(workers, [1, 2], "both workers served the attempts");
      assert.deepEqual(result, [401, 401, 401, 401, 401, 401, 429]);
    });
  });
}
