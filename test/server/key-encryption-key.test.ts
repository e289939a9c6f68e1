// Changing TESSERA_KEY_ENCRYPTION_KEY on the compiled service (README "Upgrades"): keys sealed
// under the old secret keep signing and verifying once it is given as
// TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS, that start seals them again under the new one (logged,
// audited), and from then on the new secret alone opens them while the old one alone is refused.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MongoClient } from "mongodb";
import { bearer } from "../support/clients.js";
import { killService, request, runUntilExit, startService, type ServiceProcess } from "../support/process.js";
import { storesUnderTest, testAdminToken } from "../support/server.js";

const a = "the-old-key-encryption-secret-0123456789";
const b = "the-new-key-encryption-secret-9876543210";

const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString()) as { kid: string }).kid;

for (const kind of storesUnderTest()) {
  describe(`start: TESSERA_KEY_ENCRYPTION_KEY changed, the old one as TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS (compiled, ${kind})`, function () {
    this.timeout(120_000);
    let dataDir: string;
    let database: string;
    let service: ServiceProcess | undefined;
    const storeEnv = (): Record<string, string> =>
      kind === "sqlite" ? { TESSERA_DATA_DIR: dataDir } : { MONGODB_URI: process.env.MONGODB_URI!, TESSERA_MONGODB_DATABASE: database };
    const startWith = async (secrets: Record<string, string>) => {
      service = await startService("compiled", { TESSERA_WORKERS: "1", ...storeEnv(), ...secrets });
      return service;
    };

    before(() => {
      dataDir = mkdtempSync(join(tmpdir(), "tessera-kek-"));
      database = `tessera_kek_${randomBytes(4).toString("hex")}`;
    });
    afterEach(() => killService(service));
    after(async () => {
      rmSync(dataDir, { recursive: true, force: true });
      if (kind === "mongo") {
        const client = new MongoClient(process.env.MONGODB_URI!, { serverSelectionTimeoutMS: 5000 });
        try {
          await client.db(database).dropDatabase();
        } finally {
          await client.close();
        }
      }
    });

    it("signs and verifies with the old keys, seals each under the new secret at start (logged, audited); then the new secret alone starts and the old one alone is refused", async () => {
      const user = `kek-${randomBytes(4).toString("hex")}`;
      const pass = "a-password-for-the-kek-test";
      const login = async (port: number) => {
        const r = await request(port, "GET", `/jwt/token?${new URLSearchParams({ user, pass })}`, undefined, { authorization: undefined });
        assert.equal(r.status, 200, r.text);
        return r.text;
      };
      const check = async (port: number, token: string) => (await request(port, "GET", "/jwt/check", undefined, bearer(token))).status;

      const old = await startWith({ TESSERA_KEY_ENCRYPTION_KEY: a });
      assert.equal((await request(old.port, "POST", "/jwt/user", { user, pass }, { authorization: undefined })).status, 201);
      const before = await login(old.port);
      const kids = (await request(old.port, "GET", "/.well-known/jwks.json")).json.keys.map((k: { kid: string }) => k.kid).sort();
      assert.equal(kids.length, 2, "the signing key and the next key");
      await killService(old);

      const changed = await startWith({ TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
      assert.deepEqual(
        changed.lines().filter((l) => l.msg === "signing key re-sealed").map((l) => l.kid).sort(),
        kids,
      );
      assert.equal(await check(changed.port, before), 200);
      const after = await login(changed.port);
      assert.equal(kidOf(after), kidOf(before), "the old signing key signs");
      const events = await request(changed.port, "GET", "/v1/admin/audit-events?type=key.resealed");
      assert.equal(events.status, 200, events.text);
      assert.deepEqual(events.json.events.map((e: { subject: string; outcome: string }) => [e.subject, e.outcome]).sort(), kids.map((kid: string) => [kid, "success"]));
      const output = JSON.stringify(changed.lines()) + changed.stderr();
      assert.ok(!output.includes(a) && !output.includes(b), "neither secret is logged");
      await killService(changed);

      const alone = await startWith({ TESSERA_KEY_ENCRYPTION_KEY: b });
      assert.deepEqual(alone.lines().filter((l) => l.msg === "signing key re-sealed"), []);
      assert.equal(await check(alone.port, before), 200);
      assert.equal(kidOf(await login(alone.port)), kidOf(before));
      await killService(alone);

      const refused = await runUntilExit("compiled", { ...storeEnv(), TESSERA_KEY_ENCRYPTION_KEY: a });
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /^tessera: failed to start: signing key \S+ cannot be unsealed: TESSERA_KEY_ENCRYPTION_KEY is not the secret it was sealed with\n$/);
      assert.ok(kids.includes(/signing key (\S+) /.exec(refused.stderr)![1]));
    });
  });
}
