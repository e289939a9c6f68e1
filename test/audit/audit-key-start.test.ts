// The signing key a start makes sign (the first start, or one that finds no key that can sign: a
// change of TESSERA_JWT_ALG) is recorded as `key.rotated`, as a rotation's promoted key is, once
// between every worker and instance starting on the store; a start that finds a key that signs
// records nothing.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { decodeProtectedHeader } from "jose";
import { MongoClient } from "mongodb";
import { expectOk } from "../support/api.js";
import { killService, request, startService, type ServiceProcess } from "../support/process.js";
import { startTestServer, storesUnderTest, type StoreKind, type TestServer } from "../support/server.js";
import { admin, createJwtUser, jwtLogin } from "../support/users.js";
import { auditApi } from "./api.js";

/** The environment that puts every start of a test on one store: a data directory, and on MongoDB a database. */
function sharedStore(store: StoreKind): { env: Record<string, string>; dataDir: string } {
  const dataDir = mkdtempSync(join(tmpdir(), "tessera-key-start-"));
  const env: Record<string, string> = { TESSERA_DATA_DIR: dataDir };
  if (store === "mongo") Object.assign(env, { MONGODB_URI: process.env.MONGODB_URI!, TESSERA_MONGODB_DATABASE: `tessera_test_${randomBytes(6).toString("hex")}` });
  return { env, dataDir };
}

/** The key.rotated events, oldest first, as [outcome, subject, request_id]. */
async function keyRotations(server: TestServer): Promise<Array<[string, string | undefined, string | undefined]>> {
  const api = auditApi("rest", server.url);
  const page = expectOk(await api.listAuditEvents({ type: "key.rotated", page_size: 500 }, admin));
  return page.events.reverse().map((e) => [e.outcome, e.subject, e.request_id]);
}

/** The kid of the key that signs now (a seed 004 access token's header names it). */
const signingKid = async (server: TestServer) => decodeProtectedHeader(await jwtLogin(server, await createJwtUser(server))).kid!;

for (const store of storesUnderTest()) {
  describe(`audit trail on ${store}: the signing key a start makes`, function () {
    this.timeout(60_000);
    let shared: ReturnType<typeof sharedStore>;
    const servers: TestServer[] = [];
    beforeEach(() => (shared = sharedStore(store)));
    afterEach(async () => {
      // Each server closes its store; the last one also drops the database.
      const started = servers.splice(0);
      for (const s of started.slice(0, -1)) await s.tessera.close();
      await started.at(-1)?.close();
      rmSync(shared.dataDir, { recursive: true, force: true });
    });
    const start = async (env: Record<string, string> = {}) => {
      const server = await startTestServer({ store, env: { ...shared.env, ...env } });
      servers.push(server);
      return server;
    };

    it("the first start records key.rotated for the key it makes sign; a start that finds it signing records none; one that finds no key of its TESSERA_JWT_ALG records the key it makes sign", async () => {
      const first = await start();
      const kid = await signingKid(first);
      assert.deepEqual(await keyRotations(first), [["success", kid, undefined]]);
      await first.tessera.close();
      servers.splice(0);

      const again = await start();
      assert.equal(await signingKid(again), kid);
      assert.deepEqual(await keyRotations(again), [["success", kid, undefined]]);
      await again.tessera.close();
      servers.splice(0);

      const es256 = await start({ TESSERA_JWT_ALG: "ES256" });
      const es256Kid = await signingKid(es256);
      assert.notEqual(es256Kid, kid);
      assert.deepEqual(await keyRotations(es256), [
        ["success", kid, undefined],
        ["success", es256Kid, undefined],
      ]);
    });

    it("two instances starting at once on one store agree on one key and record one key.rotated", async () => {
      const [a, b] = await Promise.all([start(), start()]);
      const kid = await signingKid(a!);
      assert.equal(await signingKid(b!), kid);
      assert.deepEqual(await keyRotations(a!), [["success", kid, undefined]]);
    });
  });

  describe(`audit trail on ${store}: the signing key a start makes, under TESSERA_WORKERS=2`, function () {
    this.timeout(60_000);
    let shared: ReturnType<typeof sharedStore>;
    let cluster: ServiceProcess | undefined;
    before(async () => {
      shared = sharedStore(store);
      cluster = await startService("compiled", { TESSERA_WORKERS: "2", ...shared.env }, { listeners: 2 });
    });
    after(async () => {
      await killService(cluster);
      if (store === "mongo") {
        const client = new MongoClient(shared.env.MONGODB_URI!);
        try {
          await client.db(shared.env.TESSERA_MONGODB_DATABASE).dropDatabase();
        } finally {
          await client.close();
        }
      }
      rmSync(shared.dataDir, { recursive: true, force: true });
    });

    it("the workers' starts record key.rotated once, for the key that signs", async () => {
      const port = cluster!.port;
      assert.equal((await request(port, "POST", "/jwt/user", { user: "key-start", pass: "correct horse battery staple" })).status, 201);
      const token = await request(port, "GET", `/jwt/token?user=key-start&pass=${encodeURIComponent("correct horse battery staple")}`);
      assert.equal(token.status, 200, token.text);
      const kid = decodeProtectedHeader(token.text).kid;
      const events = await request(port, "GET", "/v1/admin/audit-events?type=key.rotated");
      assert.equal(events.status, 200, events.text);
      const rotations = (events.json.events as Array<{ outcome: string; subject: string }>).map((e) => [e.outcome, e.subject]);
      assert.deepEqual(rotations, [["success", kid]]);
    });
  });
}
