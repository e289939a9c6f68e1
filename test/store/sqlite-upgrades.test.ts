// An embedded store written by an older version of Tessera opens under this one: every row is
// kept and still works (a user logs in, an API token and a user token from before still verify,
// the signing key from before is still published). A database of a newer version is refused.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { generateApiTokenSecret } from "../../src/core/api-token-secret.js";
import { Passwords } from "../../src/core/passwords.js";
import { hashSecret, randomId, randomToken } from "../../src/core/secrets.js";
import { openStore } from "../../src/store/index.js";
import { migrations } from "../../src/store/sqlite/schema.js";
import { bearer, rest } from "../support/clients.js";
import { startTestServer, testClientId } from "../support/server.js";
import { admin, password } from "../support/users.js";

const t0 = Date.UTC(2026, 0, 1);
const here = dirname(fileURLToPath(import.meta.url));

/** `dir`/tessera.db as a version with `version` migrations left it. */
function databaseAt(dir: string, version: number): Database.Database {
  const db = new Database(join(dir, "tessera.db"));
  db.pragma("journal_mode = WAL");
  db.exec("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT");
  for (let v = 0; v < version; v++) {
    db.exec(migrations[v]!);
    db.prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)").run(v + 1, t0);
  }
  return db;
}

/**
 * Another process holding `file`'s write lock for `ms` (longer than the 5 s busy timeout):
 * `locked` once it holds it, `done` once it has let go and exited.
 */
function holdWriteLock(file: string, ms: number): { locked: Promise<void>; done: Promise<unknown> } {
  const holder = spawn(
    process.execPath,
    ["-e", `const db = new (require("better-sqlite3"))(process.argv[1]); db.exec("BEGIN IMMEDIATE"); console.log("locked"); setTimeout(() => { db.exec("COMMIT"); db.close(); }, ${ms});`, file],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const done = once(holder, "exit");
  const locked = once(holder.stdout, "data").then(([chunk]) => assert.equal(String(chunk), "locked\n"));
  return { locked, done };
}

interface OldRows {
  login: string;
  apiToken: string;
  userToken: string;
  /** Made before the user's password changed. */
  outdatedUserToken: string;
  kid: string;
  /** A seed 000 session's pair. */
  access: string;
  refresh: string;
}

/** Rows as the first schema wrote them: only its columns (every later one takes its default). */
async function writeFirstSchemaRows(db: Database.Database): Promise<OldRows> {
  const login = "Old.User@example.com";
  const passwordHash = await new Passwords({ memoryKib: 1024, iterations: 1, parallelism: 1 }).hash(password);
  const now = Date.now();
  db.prepare(
    `INSERT INTO users (id, login, emails, password_hash, active, created_at, password_changed_at, version)
     VALUES ('u-old', ?, ?, ?, 1, ?, ?, 1)`,
  ).run(login, JSON.stringify([login]), passwordHash, t0, t0);
  const apiToken = generateApiTokenSecret();
  db.prepare(
    `INSERT INTO api_tokens (link, hash, account_id, description, created_by, issued_at)
     VALUES ('link-old', ?, 'acct-old', 'from before', 'admin', ?)`,
  ).run(hashSecret(apiToken), t0);
  const userToken = randomId();
  db.prepare(
    `INSERT INTO user_tokens (id, hash, user_id, note, expires_at, created_at, enabled, version)
     VALUES ('ut-old', ?, 'u-old', NULL, ?, ?, 1, 1)`,
  ).run(hashSecret(userToken), now + 86_400_000, t0);
  const outdatedUserToken = randomId();
  db.prepare(
    `INSERT INTO user_tokens (id, hash, user_id, note, expires_at, created_at, enabled, version)
     VALUES ('ut-outdated', ?, 'u-old', NULL, ?, ?, 1, 1)`,
  ).run(hashSecret(outdatedUserToken), now + 86_400_000, t0 - 1000);
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { extractable: true });
  const kid = "kid-old";
  db.prepare(
    `INSERT INTO signing_keys (kid, generation, alg, private_jwk, public_jwk, created_at, activated_at)
     VALUES (?, 1, 'EdDSA', ?, ?, ?, ?)`,
  ).run(kid, JSON.stringify(await exportJWK(privateKey)), JSON.stringify(await exportJWK(publicKey)), t0, t0);
  db.prepare(
    `INSERT INTO sessions (id, user_id, client_id, access_jti, created_at, expires_at)
     VALUES ('s-old', 'u-old', ?, 'jti-old', ?, ?)`,
  ).run(testClientId, t0, now + 86_400_000);
  const refresh = randomToken(32);
  db.prepare("INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at) VALUES (?, 's-old', ?, ?)").run(hashSecret(refresh), t0, now + 86_400_000);
  const access = await new SignJWT({ sid: "s-old", jti: "jti-old" })
    .setProtectedHeader({ alg: "EdDSA", kid, typ: "JWT" })
    .setIssuer("tessera")
    .setSubject("u-old")
    .setAudience(testClientId)
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(privateKey);
  db.prepare("INSERT INTO login_attempts (key, failures, first_failure_at, last_failure_at) VALUES ('login:x', 2, ?, ?)").run(now, now);
  return { login, apiToken, userToken, outdatedUserToken, kid, access, refresh };
}

describe("sqlite store: a database of every older schema version opens with its rows kept and usable", () => {
  // Each test's data directory: a fresh one, removed after it.
  let dataDir: string;
  beforeEach(() => (dataDir = mkdtempSync(join(tmpdir(), "tessera-upgrade-"))));
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));
  for (let version = 1; version < migrations.length; version++) {
    it(`schema version ${version}`, async () => {
      const db = databaseAt(dataDir, version);
      let old: OldRows;
      try {
        old = await writeFirstSchemaRows(db);
      } finally {
        db.close();
      }
      const server = await startTestServer({ env: { TESSERA_DATA_DIR: dataDir, TESSERA_JWT_ALG: "EdDSA" } });
      try {
        // The login is compared by its key, which the start-up backfill gave the old account.
        const login = await rest(server.url, "POST", "/session", {
          json: { account_type: "traditional", email: "old.user@EXAMPLE.com", password },
          headers: { "x-koms-clientid": testClientId },
        });
        assert.equal(login.status, 200, login.text);
        const apiToken = await rest(server.url, "GET", "/v1/api/auth", { headers: bearer(old.apiToken) });
        assert.equal(apiToken.status, 200, apiToken.text);
        assert.equal(apiToken.body.account_id, "acct-old");
        const bump = await rest(server.url, "POST", "/auth/bump", { headers: bearer(old.userToken) });
        assert.equal(bump.status, 200, bump.text);
        // No credential epoch before version 4: checked against the password change by time.
        const outdated = await rest(server.url, "POST", "/auth/bump", { headers: bearer(old.outdatedUserToken) });
        assert.equal(outdated.status, 401, outdated.text);
        assert.equal(outdated.body.details?.[0]?.debug?.reason, "TOKEN_REVOKED", outdated.text);
        const client = { "x-koms-clientid": testClientId };
        const session = await rest(server.url, "GET", "/session", { headers: { ...client, ...bearer(old.access) } });
        assert.equal(session.status, 200, session.text);
        const refreshed = await rest(server.url, "PUT", "/session", { json: { refresh_token: old.refresh }, headers: { ...client, ...bearer(old.access) } });
        assert.equal(refreshed.status, 200, refreshed.text);
        assert.equal(typeof refreshed.body.refresh_token, "string");
        const jwks = await rest(server.url, "GET", "/.well-known/jwks.json");
        assert.ok((jwks.body.keys as Array<{ kid: string }>).some((k) => k.kid === old.kid), jwks.text);
      } finally {
        await server.close();
      }
      const check = new Database(join(dataDir, "tessera.db"), { readonly: true });
      try {
        const versions = check.prepare("SELECT version FROM schema_version ORDER BY version").all() as Array<{ version: number }>;
        assert.deepEqual(versions.map((r) => r.version), migrations.map((_, i) => i + 1));
        // The index housekeeping's retention of revoked API tokens finds them by (schema version 18).
        assert.ok(check.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'api_tokens_revoked_at'").get(), "api_tokens_revoked_at made on upgrade");
        // Before version 2 every failure counted held its slot: migration 2 says so.
        const attempts = check.prepare("SELECT failures, held FROM login_attempts WHERE key = 'login:x'").get();
        assert.deepEqual(attempts, { failures: 2, held: version === 1 ? 2 : 0 });
      } finally {
        check.close();
      }
    });
  }

  it("two processes opening an old database at once (TESSERA_WORKERS) migrate it once: both open it, each version applied once", async () => {
    const db = databaseAt(dataDir, 1);
    await writeFirstSchemaRows(db);
    db.close();
    const opener = join(here, "fixtures", "sqlite-open.ts");
    const open = async () => {
      const child = spawn(process.execPath, ["--import", "tsx", opener, dataDir], { stdio: ["ignore", "pipe", "inherit"] });
      let output = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
      await once(child, "exit");
      return output;
    };
    assert.deepEqual(await Promise.all([open(), open()]), ["opened\n", "opened\n"]);
    const check = new Database(join(dataDir, "tessera.db"), { readonly: true });
    try {
      const versions = check.prepare("SELECT version FROM schema_version ORDER BY version").all() as Array<{ version: number }>;
      assert.deepEqual(versions.map((r) => r.version), migrations.map((_, i) => i + 1));
      assert.deepEqual(check.prepare("SELECT id FROM users").all(), [{ id: "u-old" }]);
    } finally {
      check.close();
    }
  });

  it("a process that finds another one migrating the file waits for it (up to 10 minutes) rather than failing its start with SQLITE_BUSY after the 5 s busy timeout", async function () {
    this.timeout(30_000);
    const db = databaseAt(dataDir, 1);
    await writeFirstSchemaRows(db);
    db.close();
    // Another process holds the write lock for 6 s, as a migration of a large database does.
    const holder = holdWriteLock(join(dataDir, "tessera.db"), 6000);
    await holder.locked;
    const store = await openStore({ dataDir });
    try {
      await holder.done;
      assert.ok(await store.users.findById("u-old"));
    } finally {
      await store.close();
    }
  });

  it("the start-up backfill of login keys waits, as the migration does, for another process holding the write lock", async function () {
    this.timeout(30_000);
    const db = databaseAt(dataDir, 1);
    await writeFirstSchemaRows(db);
    db.close();
    const store = await openStore({ dataDir });
    try {
      const exited = holdWriteLock(join(dataDir, "tessera.db"), 6000);
      await exited.locked;
      const filled = await store.users.backfillLoginKeys((login) => login.toLowerCase());
      assert.deepEqual(filled, { filled: 1, clashes: [] });
      await exited.done;
    } finally {
      await store.close();
    }
  });

  it("a start that stops midway through its migrations (here: one fails) leaves the database as it was: all of them or none", async () => {
    const db = databaseAt(dataDir, 1);
    await writeFirstSchemaRows(db);
    // Migration 2 adds users.login_key, then creates known_logins, which is in the way.
    db.exec("CREATE TABLE known_logins (x TEXT)");
    db.close();
    await assert.rejects(openStore({ dataDir }), /table known_logins already exists/);
    const check = new Database(join(dataDir, "tessera.db"), { readonly: true });
    try {
      assert.deepEqual(check.prepare("SELECT MAX(version) AS v FROM schema_version").get(), { v: 1 });
      const columns = (check.prepare("SELECT name FROM pragma_table_info('users')").all() as Array<{ name: string }>).map((c) => c.name);
      assert.ok(!columns.includes("login_key"), columns.join());
      assert.deepEqual(check.prepare("SELECT id FROM users").all(), [{ id: "u-old" }]);
    } finally {
      check.close();
    }
  });

  it("a login counter stored before leases: its attempts still being checked count until the lease from its last attempt, its failures on", async () => {
    const db = databaseAt(dataDir, migrations.length - 1);
    try {
      // One failure and two attempts whose process died mid-check, the last at t0 + 10.
      db.prepare("INSERT INTO login_attempts (key, held, failures, first_failure_at, last_failure_at) VALUES ('login:y', 3, 1, ?, ?)").run(t0, t0 + 10);
    } finally {
      db.close();
    }
    const store = await openStore({ dataDir });
    try {
      const rule = { windowMs: 15 * 60_000, lockMs: 60_000, maxLockMs: 15 * 60_000, leaseMs: 60_000 };
      const reserve = (ms: number) => store.loginAttempts.reserve([{ key: "login:y", limit: 3 }], new Date(t0 + ms), rule);
      assert.deepEqual(await reserve(10 + 60_000 - 1), { granted: false });
      const a = await reserve(10 + 60_000);
      assert.ok(a.granted);
      assert.ok((await reserve(10 + 60_001)).granted);
      assert.deepEqual(await reserve(10 + 60_002), { granted: false });
      await store.loginAttempts.recordFailure(a.slots, new Date(t0 + 60_100), rule);
    } finally {
      await store.close();
    }
    const check = new Database(join(dataDir, "tessera.db"), { readonly: true });
    try {
      const row = check.prepare("SELECT held, failures, pending_from, pending_until FROM login_attempts WHERE key = 'login:y'").get();
      assert.deepEqual(row, { held: 3, failures: 2, pending_from: t0 + 10 + 60_000, pending_until: t0 + 10 + 60_001 + 60_000 });
    } finally {
      check.close();
    }
  });

  it("a hand-off token and a cookie session stored before they recorded the keys of their source tokens keep working when a key is revoked", async () => {
    const db = databaseAt(dataDir, migrations.length - 1);
    const now = Date.now();
    const handOff = randomToken(24);
    const cookie = randomToken(32);
    try {
      await writeFirstSchemaRows(db);
      db.prepare(
        `INSERT INTO user_tokens (id, hash, user_id, note, expires_at, created_at, enabled, version, credential_epoch)
         VALUES ('cookie-old', ?, 'u-old', 'tessera_session cookie', ?, ?, 1, 0, 0)`,
      ).run(hashSecret(cookie), now + 86_400_000, now);
      db.prepare(
        `INSERT INTO auth_tokens (hash, user_id, created_at, expires_at, credential_epoch) VALUES (?, 'u-old', ?, ?, 0)`,
      ).run(hashSecret(handOff), now, now + 3_600_000);
    } finally {
      db.close();
    }
    const server = await startTestServer({ env: { TESSERA_DATA_DIR: dataDir, TESSERA_JWT_ALG: "EdDSA" } });
    try {
      const jwks = await rest(server.url, "GET", "/.well-known/jwks.json");
      for (const { kid } of jwks.body.keys as Array<{ kid: string }>) {
        const revoked = await rest(server.url, "POST", `/v1/admin/keys/${kid}:revoke`, { json: {}, headers: admin });
        assert.equal(revoked.status, 200, revoked.text);
      }
      const withCookie = await rest(server.url, "GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${cookie}` } });
      assert.equal(withCookie.status, 200, withCookie.text);
      const exchanged = await rest(server.url, "GET", `/api/authenticationtoken/${handOff}/user`);
      assert.equal(exchanged.status, 200, exchanged.text);
      assert.equal(exchanged.body._id, "u-old");
    } finally {
      await server.close();
    }
  });

  it("refuses a database of a newer schema version at start, naming the version and the file, and leaves it as it was", async () => {
    const db = databaseAt(dataDir, migrations.length);
    db.prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)").run(migrations.length + 1, t0);
    db.exec("CREATE TABLE from_the_future (x TEXT)");
    db.close();
    const file = join(dataDir, "tessera.db");
    await assert.rejects(openStore({ dataDir }), (error: Error) => {
      assert.equal(
        error.message,
        `the embedded store's database ${file} has schema version ${migrations.length + 1}, newer than this build's (${migrations.length}): run the version that wrote it, or restore a copy from before it`,
      );
      return true;
    });
    const after = new Database(file, { readonly: true });
    try {
      assert.deepEqual(after.prepare("SELECT MAX(version) AS v FROM schema_version").get(), { v: migrations.length + 1 });
    } finally {
      after.close();
    }
  });
});
