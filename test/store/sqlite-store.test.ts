// What is particular to the embedded store: its file, its durability and its migrations.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, copyFileSync, existsSync, fstatSync, fsync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { ManualClock } from "../../src/core/clock.js";
import { Housekeeping } from "../../src/core/housekeeping.js";
import { createLogger } from "../../src/logger.js";
import { openStore } from "../../src/store/index.js";
import { DuplicateError, errorDurable, StoreUnavailableError, type AuditEventRecord } from "../../src/store/ports.js";
import { batchNeedsSync, sqliteAuditEvents } from "../../src/store/sqlite/sqlite-audit-events.js";
import { sqliteCalls } from "../../src/store/sqlite/sqlite-durability.js";
import { sqliteAuthTokens } from "../../src/store/sqlite/sqlite-auth-tokens.js";
import { sqliteJwtRefreshTokens } from "../../src/store/sqlite/sqlite-jwt-refresh-tokens.js";
import { sqliteLoginAttempts } from "../../src/store/sqlite/sqlite-login-attempts.js";
import { sqliteRefreshTokens } from "../../src/store/sqlite/sqlite-refresh-tokens.js";
import { sqliteSessions } from "../../src/store/sqlite/sqlite-sessions.js";
import { migrations } from "../../src/store/sqlite/schema.js";
import { sqliteSigningKeys } from "../../src/store/sqlite/sqlite-signing-keys.js";
import { sqliteUserTokens } from "../../src/store/sqlite/sqlite-user-tokens.js";
import { sqliteApiTokens } from "../../src/store/sqlite/sqlite-api-tokens.js";
import { sqliteUsers } from "../../src/store/sqlite/sqlite-users.js";
import { migrate } from "../../src/store/sqlite/schema.js";

const here = dirname(fileURLToPath(import.meta.url));

describe("sqlite store", () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = join(mkdtempSync(join(tmpdir(), "tessera-sqlite-")), "nested", "data");
  });
  afterEach(() => {
    rmSync(dirname(dirname(dataDir)), { recursive: true, force: true });
  });

  it("creates tessera.db under the data directory, in WAL mode", async () => {
    const store = await openStore({ dataDir });
    assert.equal(store.kind, "sqlite");
    await store.close();
    const file = join(dataDir, "tessera.db");
    assert.ok(existsSync(file));
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
      const versions = db.prepare("SELECT version FROM schema_version ORDER BY version").all();
      assert.deepEqual(versions, migrations.map((_, i) => ({ version: i + 1 })));
      assert.equal(migrations.length, 18);
    } finally {
      db.close();
    }
  });

  /** The SQL of each statement matching `pattern` that the store prepares as it opens. */
  async function preparedAtOpen(pattern: RegExp): Promise<string[]> {
    const seen: string[] = [];
    const prepare = Database.prototype.prepare;
    Database.prototype.prepare = function (this: Database.Database, sql: string) {
      if (pattern.test(sql)) seen.push(sql);
      return prepare.call(this, sql);
    } as typeof prepare;
    try {
      await (await openStore({ dataDir })).close();
    } finally {
      Database.prototype.prepare = prepare;
    }
    return seen;
  }

  it("every DELETE of the embedded store finds its rows by an index, never by reading the whole table (housekeeping deletes in batches: each must be short)", async () => {
    const deletes = new Set((await preparedAtOpen(/^\s*DELETE\b/i)).map((sql) => sql.replace(/\s+/g, " ").trim()));
    const db = new Database(join(dataDir, "tessera.db"), { readonly: true });
    try {
      const tables = new Set([...deletes].map((sql) => /^DELETE FROM (\w+)/.exec(sql)?.[1]));
      assert.deepEqual([...tables].sort(), ["api_tokens", "audit_events", "auth_tokens", "jwt_refresh_tokens", "known_logins", "login_attempts", "refresh_tokens", "sessions", "signing_keys", "user_tokens"]);
      const scans = [...deletes].flatMap((sql) => {
        const params = (sql.match(/\?/g) ?? []).map(() => 0);
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((row) => row.detail);
        return plan.filter((step) => step.startsWith("SCAN ")).map((step) => `${sql}: ${step}`);
      });
      assert.deepEqual(scans, []);
    } finally {
      db.close();
    }
  });

  it("an API token's creation counts its account's active tokens by an index of those alone (api_tokens_account_active), never reading the revoked ones", async () => {
    const counts = await preparedAtOpen(/\bcount\(\*\)[\s\S]*\bapi_tokens\b/i);
    assert.equal(counts.length, 1);
    const db = new Database(join(dataDir, "tessera.db"), { readonly: true });
    try {
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${counts[0]}`).all("acct", 1000) as Array<{ detail: string }>).map((row) => row.detail);
      assert.ok(plan.includes("SEARCH api_tokens USING COVERING INDEX api_tokens_account_active (account_id=?)"), plan.join("\n"));
    } finally {
      db.close();
    }
  });

  it("the session cap reads the user's ended sessions by sessions_user_ended (schema version 17), earliest ended first, never reading a live one or sorting", async () => {
    const reads = await preparedAtOpen(/ended_at IS NOT NULL[\s\S]*ORDER BY ended_at/);
    assert.equal(reads.length, 1);
    const db = new Database(join(dataDir, "tessera.db"), { readonly: true });
    try {
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${reads[0]}`).all({ userId: "u", keep: "k", now: 0, limit: 1 }) as Array<{ detail: string }>).map((row) => row.detail);
      assert.deepEqual(plan, ["SEARCH sessions USING INDEX sessions_user_ended (user_id=? AND ended_at>?)"]);
    } finally {
      db.close();
    }
  });

  it("the session cap's reads, made in the login's write transaction, bind no LIMIT to a bare parameter (SQLite re-prepares such a statement at every run)", async () => {
    const reads = await preparedAtOpen(/^\s*SELECT\b[\s\S]*\bFROM sessions WHERE (rowid IN|user_id = @userId AND ended_at IS NOT NULL)/);
    assert.equal(reads.length, 2, reads.join("\n"));
    for (const sql of reads) assert.doesNotMatch(sql, /\bLIMIT\s+[?@:$]/, sql);
  });

  it("no statement the embedded store prepares as it opens binds its LIMIT to a bare parameter (SQLite re-prepares such a statement every time it is bound again): the API-token cap's count, in a creation's write transaction, and housekeeping's batch deletes bind it as +?", async () => {
    const limited = (await preparedAtOpen(/\bLIMIT\b/)).map((sql) => sql.replace(/\s+/g, " ").trim());
    assert.deepEqual(
      limited.filter((sql) => /\bLIMIT \+[?@:$]/.test(sql)).map((sql) => /\bFROM (\w+)/.exec(sql)?.[1] ?? sql).sort(),
      ["api_tokens", "api_tokens", "audit_events", "auth_tokens", "jwt_refresh_tokens", "known_logins", "login_attempts", "refresh_tokens", "sessions", "sessions", "user_tokens"],
    );
    assert.deepEqual(limited.filter((sql) => /\bLIMIT [?@:$]/.test(sql)), []);
  });

  it("a capped user-token creation finds the user's expired tokens to mark by user_tokens_user_created, never by every user's expiry index, a read of the table or a sort", async () => {
    const marking = await preparedAtOpen(/\+expires_at <= @now/);
    assert.equal(marking.length, 1);
    const db = new Database(join(dataDir, "tessera.db"), { readonly: true });
    try {
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${marking[0]}`).all({ userId: "u", now: 0 }) as Array<{ detail: string }>).map((row) => row.detail);
      assert.ok(plan.includes("SEARCH user_tokens USING INDEX user_tokens_user_created (user_id=?)"), plan.join("\n"));
      assert.ok(!plan.some((step) => step.startsWith("SCAN user_tokens") || step.includes("user_tokens_expires_at") || step.includes("TEMP B-TREE")), plan.join("\n"));
    } finally {
      db.close();
    }
  });

  it("the caps find a user's credentials past the cap by the (user, creation time) indexes of schema version 16, never by reading a table or sorting", async () => {
    const capped = new Set((await preparedAtOpen(/boundary_at/)).map((sql) => sql.replace(/\s+/g, " ").trim()));
    const db = new Database(join(dataDir, "tessera.db"), { readonly: true });
    try {
      const plans = [...capped].map((sql) => {
        const table = /FROM (\w+) WHERE user_id/.exec(sql)![1]!;
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all({ userId: "u", keep: "k", skip: 0, now: 0, ...(table === "user_tokens" && { sources: " " }) }) as Array<{ detail: string }>).map((row) => row.detail);
        return { table, plan };
      });
      assert.deepEqual(plans.map((p) => p.table).sort(), ["jwt_refresh_tokens", "sessions", "user_tokens"]);
      const index = { sessions: "sessions_user_created", jwt_refresh_tokens: "jwt_refresh_tokens_user_issued", user_tokens: "user_tokens_user_created" };
      for (const { table, plan } of plans) {
        const reads = plan.filter((step) => /^(SCAN|SEARCH) /.test(step) && !step.includes("INTEGER PRIMARY KEY") && !step.startsWith("SCAN (subquery"));
        assert.ok(reads.length >= 2, `${table}: ${plan.join("; ")}`);
        for (const step of reads) assert.match(step, new RegExp(`^SEARCH \\w+ USING INDEX ${index[table as keyof typeof index]} \\(user_id=`), `${table}: ${plan.join("; ")}`);
        assert.ok(!plan.some((step) => step.includes("TEMP B-TREE")), `${table} sorts: ${plan.join("; ")}`);
      }
    } finally {
      db.close();
    }
  });

  const mode = (path: string) => `0${(statSync(path).mode & 0o777).toString(8)}`;

  it("creates its directory 0700 and its files 0600: the database, its -wal and -shm (signing keys live there)", async () => {
    const store = await openStore({ dataDir });
    try {
      await store.users.create({ id: "u1", login: "a@example.com", loginKey: "a@example.com", emails: ["a@example.com"], passwordHash: "$argon2id$x", createdAt: new Date() });
      const file = join(dataDir, "tessera.db");
      assert.equal(mode(dataDir), "0700");
      assert.equal(mode(file), "0600");
      assert.equal(mode(`${file}-wal`), "0600");
      assert.equal(mode(`${file}-shm`), "0600");
    } finally {
      await store.close();
    }
  });

  it("warns at start-up about an existing directory or database others can read, naming it and its mode", async () => {
    mkdirSync(dataDir, { recursive: true });
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, "tessera.db"), "");
    chmodSync(join(dataDir, "tessera.db"), 0o644);
    const warnings: Array<{ message: string; fields?: Record<string, unknown> }> = [];
    const store = await openStore({ dataDir, warn: (message, fields) => warnings.push({ message, fields }) });
    await store.close();
    assert.deepEqual(
      warnings.map((w) => w.fields),
      [
        { path: dataDir, mode: "0755" },
        { path: join(dataDir, "tessera.db"), mode: "0644" },
        // SQLite gives them the database file's mode.
        { path: join(dataDir, "tessera.db-wal"), mode: "0644" },
        { path: join(dataDir, "tessera.db-shm"), mode: "0644" },
      ],
    );
    assert.match(warnings[0]!.message, /readable or writable by other users/);
    assert.equal(mode(dataDir), "0755", "an existing mode is the operator's: reported, not changed");
  });

  it("refuses to start on a database file it may not write, instead of opening it read-only (ready, every write UNAVAILABLE)", async function () {
    this.timeout(30_000);
    const store = await openStore({ dataDir });
    await store.close();
    const file = join(dataDir, "tessera.db");
    if (process.getuid?.() !== 0) {
      chmodSync(file, 0o400);
      await assert.rejects(openStore({ dataDir }), (e: unknown) => e instanceof Error && e.message.includes(file) && /not writable/.test(e.message));
      return;
    }
    // The superuser writes any file: the store is opened by another user (nobody), who may write
    // the directory (SQLite's -wal and -shm files) but not the database file.
    const nobody = { uid: 65534, gid: 65534 };
    const opener = join(here, "fixtures", "sqlite-open.ts");
    if (!(await canRead(opener, nobody))) this.skip(); // a checkout that user cannot read
    for (const dir of [dirname(dirname(dataDir)), dirname(dataDir)]) chmodSync(dir, 0o755);
    chmodSync(dataDir, 0o777);
    for (const name of readdirSync(dataDir)) chmodSync(join(dataDir, name), 0o644);
    const child = spawn(process.execPath, ["--import", "tsx", opener, dataDir], { ...nobody, stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    assert.equal((await once(child, "exit"))[0], 0);
    assert.ok(output.startsWith("refused ") && output.includes(file) && /not writable/.test(output), output);
  });

  it("keeps data and schema across reopen (migrations run once)", async () => {
    const first = await openStore({ dataDir });
    await first.users.create({
      id: "u1",
      login: "a@example.com",
      loginKey: "a@example.com",
      emails: ["a@example.com"],
      passwordHash: "$argon2id$h",
      createdAt: new Date(1_700_000_000_001),
    });
    await first.close();
    const second = await openStore({ dataDir });
    try {
      assert.equal((await second.users.findByLogin("a@example.com", "a@example.com"))?.createdAt.getTime(), 1_700_000_000_001);
    } finally {
      await second.close();
    }
  });

  describe("start-up checkpoint: what the log holds as the store opens is in the database file, synced, and the log empty, before any write is acknowledged", () => {
    const user = (id: string) => ({ id, login: `${id}@example.com`, loginKey: `${id}@example.com`, emails: [`${id}@example.com`], passwordHash: "$argon2id$h", createdAt: new Date(1_700_000_000_000) });
    /** The users that the database file alone (without its log) holds: read from a copy of it. */
    const inDatabaseFile = (dir: string): string[] => {
      const copy = mkdtempSync(join(dirname(dir), "copy-"));
      copyFileSync(join(dir, "tessera.db"), join(copy, "tessera.db"));
      const db = new Database(join(copy, "tessera.db"), { readonly: true });
      try {
        if (!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'users'").get()) return [];
        return (db.prepare("SELECT id FROM users ORDER BY id").all() as Array<{ id: string }>).map((row) => row.id);
      } finally {
        db.close();
        rmSync(copy, { recursive: true });
      }
    };
    const walSize = (dir: string) => statSync(join(dir, "tessera.db-wal")).size;

    it("a new database (no log as it opens): no checkpoint; its migrations stay in the log, which a copy of the files as they are then recovers", async () => {
      const store = await openStore({ dataDir });
      const left = join(dirname(dataDir), "left");
      try {
        assert.ok(walSize(dataDir) > 0, "the migrations are in the log");
        mkdirSync(left);
        for (const name of ["tessera.db", "tessera.db-wal"]) copyFileSync(join(dataDir, name), join(left, name));
      } finally {
        await store.close();
      }
      const db = new Database(join(left, "tessera.db"));
      try {
        assert.equal((db.prepare("SELECT max(version) AS v FROM schema_version").get() as { v: number }).v, migrations.length);
      } finally {
        db.close();
      }
    });

    it("after a crash (its log left behind, recovered as the store opens): the log is copied into the database file and emptied", async () => {
      // A process that wrote and died before a checkpoint: its files as it left them.
      const crashed = await openStore({ dataDir });
      const left = join(dirname(dataDir), "left");
      try {
        for (const id of ["u1", "u2", "u3"]) await crashed.users.create(user(id));
        mkdirSync(left);
        for (const name of ["tessera.db", "tessera.db-wal"]) copyFileSync(join(dataDir, name), join(left, name));
      } finally {
        await crashed.close();
      }
      assert.ok(walSize(left) > 0);
      assert.deepEqual(inDatabaseFile(left), [], "the writes are in the log only");

      const store = await openStore({ dataDir: left });
      try {
        assert.equal(walSize(left), 0, "the log is empty: the next commit starts a new one");
        assert.deepEqual(inDatabaseFile(left), ["u1", "u2", "u3"]);
        await store.users.create(user("u4"));
        assert.ok(await store.users.findById("u4"));
      } finally {
        await store.close();
      }
    });

    it("another process on the file (a worker) with writes in the log: the same for the process that opens; a checkpoint kept busy by a reader is warned about, and start-up goes on", async () => {
      const worker = await openStore({ dataDir });
      try {
        await worker.users.create(user("u1"));
        assert.ok(walSize(dataDir) > 0);
        const second = await openStore({ dataDir });
        try {
          assert.equal(walSize(dataDir), 0);
          assert.deepEqual(inDatabaseFile(dataDir), ["u1"]);
        } finally {
          await second.close();
        }
        await worker.users.create(user("u2"));
        // A reader of another process holds a snapshot that needs the log while the third opens.
        const reader = new Database(join(dataDir, "tessera.db"), { readonly: true });
        const snapshot = reader.prepare("SELECT id FROM users").iterate();
        snapshot.next();
        const warnings: string[] = [];
        try {
          const third = await openStore({ dataDir, warn: (message) => warnings.push(message) });
          try {
            await third.users.create(user("u3"));
            assert.ok(await worker.users.findById("u3"));
          } finally {
            await third.close();
          }
        } finally {
          snapshot.return?.();
          reader.close();
        }
        assert.deepEqual(warnings, ["the embedded store's start-up checkpoint of its log was busy (another process on the database); starting without it"]);
      } finally {
        await worker.close();
      }
    });
  });

  it("keeps every acknowledged write when the process is killed with SIGKILL", async function () {
    this.timeout(30_000);
    const child = spawn(process.execPath, ["--import", "tsx", join(here, "fixtures", "sqlite-writer.ts"), dataDir], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const acked: string[] = [];
    let buffered = "";
    child.stdout.setEncoding("utf8");
    const enough = new Promise<void>((resolve) => {
      child.stdout.on("data", (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        acked.push(...lines);
        if (acked.length >= 50) resolve();
      });
    });
    const exited = once(child, "exit");
    await Promise.race([enough, exited.then(() => Promise.reject(new Error("writer exited early")))]);
    child.kill("SIGKILL");
    const [, signal] = await exited;
    assert.equal(signal, "SIGKILL");

    const store = await openStore({ dataDir });
    try {
      for (const id of acked) assert.ok(await store.users.findById(id), `acknowledged ${id} lost`);
    } finally {
      await store.close();
    }
  });

  it("a write whose commit fails (the disk is full) is refused, never acknowledged and lost; the store takes itself as full (told once)", async function () {
    this.timeout(30_000);
    // Under a file size limit the write-ahead log soon cannot grow: a commit past it fails as it
    // would on a full disk (SQLite writes a transaction's pages to the log when it commits), with
    // SQLITE_IOERR_WRITE (EFBIG: SQLite answers SQLITE_FULL for ENOSPC alone), which the store
    // takes as a full disk as it does a quota's EDQUOT.
    const writer = join(here, "fixtures", "sqlite-full-writer.ts");
    const child = spawn("sh", ["-c", `ulimit -f 2048 && exec "${process.execPath}" --import tsx "${writer}" "${dataDir}"`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const [code] = await once(child, "exit");
    assert.equal(code, 0);
    const lines = output.trim().split("\n");
    const acked = lines.filter((l) => l.startsWith("acked ")).map((l) => l.slice("acked ".length));
    const refused = lines.filter((l) => l.startsWith("refused "));
    assert.ok(acked.includes("user-0"), output.slice(0, 500));
    assert.ok(refused.length > 0, `the log never filled up: ${acked.length} writes acknowledged, none refused`);
    assert.match(refused[0]!, /StoreUnavailableError: embedded store unavailable \(SQLITE_IOERR_WRITE\)/);
    // Ready before (its first ping's probe write fitted); the first refusal made it take itself as
    // full (its ping then tries a write: sqlite-full.test.ts), told once for the five.
    assert.deepEqual(lines.filter((l) => l.startsWith("ping ") || l.startsWith("told ")), ["ping ok", "told full 1"]);

    const store = await openStore({ dataDir });
    try {
      const lost = [];
      for (const id of acked) if (!(await store.users.findById(id))) lost.push(id);
      assert.deepEqual(lost, [], `${lost.length} of ${acked.length} acknowledged users lost`);
    } finally {
      await store.close();
    }
  });

  // The write-ahead log grows by one frame (a page and its header) per page a commit writes.
  const walFrames = (file: string) => Math.floor(Math.max(0, statSync(`${file}-wal`).size - 32) / (4096 + 24));

  it("a successful login gives its slot back by writing the slot count alone: one page of the log (the row's), no index of login_attempts rewritten", async () => {
    const store = await openStore({ dataDir });
    try {
      const file = join(dataDir, "tessera.db");
      const rule = { windowMs: 60_000, lockMs: 60_000, maxLockMs: 600_000, leaseMs: 60_000 };
      const reservation = await store.loginAttempts.reserve([{ key: "login:k", limit: 5 }], new Date(), rule);
      assert.ok(reservation.granted);
      const before = walFrames(file);
      await store.loginAttempts.release(reservation.slots);
      assert.equal(walFrames(file) - before, 1);
      // The slot is free again: five more attempts take one each, a sixth is refused.
      for (let i = 0; i < 5; i++) assert.ok((await store.loginAttempts.reserve([{ key: "login:k", limit: 5 }], new Date(), rule)).granted);
      assert.equal((await store.loginAttempts.reserve([{ key: "login:k", limit: 5 }], new Date(), rule)).granted, false);
    } finally {
      await store.close();
    }
  });

  describe("audit events: group commit", () => {
    const event = (n: number): AuditEventRecord => ({ id: `e${String(n).padStart(4, "0")}`, time: new Date(1_700_000_000_000 + n), type: "user.login", outcome: "shed", login: `flood-${n}@example.com` });

    it("the events of one turn are committed together: 200 appends write about one transaction's frames, not 200", async () => {
      const store = await openStore({ dataDir });
      try {
        const file = join(dataDir, "tessera.db");
        await store.auditEvents.append(event(0));
        const before = walFrames(file);
        await Promise.all(Array.from({ length: 200 }, (_, i) => store.auditEvents.append(event(i + 1))));
        const frames = walFrames(file) - before;
        // One commit of 200 small rows touches a handful of pages; a commit per row would write at
        // least one frame each.
        assert.ok(frames < 20, `${frames} WAL frames for 200 appends`);
        // Each resolved append is durable: another connection reads all of them.
        const other = new Database(file, { readonly: true });
        try {
          assert.equal((other.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n, 201);
        } finally {
          other.close();
        }
      } finally {
        await store.close();
      }
    });

    it("one bad event in a turn loses no other: the duplicate is refused (DuplicateError), the rest are written", async () => {
      const store = await openStore({ dataDir });
      try {
        await store.auditEvents.append(event(1));
        const results = await Promise.allSettled([store.auditEvents.append(event(2)), store.auditEvents.append(event(1)), store.auditEvents.append(event(3))]);
        assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
        const refused = (results[1] as PromiseRejectedResult).reason;
        assert.ok(refused instanceof DuplicateError && refused.key === "id", String(refused));
        const listed = await store.auditEvents.list({ limit: 10 });
        assert.deepEqual(listed.map((e) => e.id), ["e0003", "e0002", "e0001"]);
      } finally {
        await store.close();
      }
    });

    it("once an fsync of the log has failed, the store refuses every write (audit events too) with that failure, and its ping; reads still answer", async () => {
      let failing = false;
      const eio = Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
      const store = await openStore({ dataDir, fsync: (fd, done) => (failing ? setImmediate(done, eio) : fsync(fd, done)) });
      try {
        const refused = (e: unknown) => e instanceof StoreUnavailableError && e.message === "embedded store could not sync its log (EIO); it refuses writes until restarted";
        const success = { ...event(1), outcome: "success" };
        await store.auditEvents.append(success);
        failing = true;
        await assert.rejects(store.auditEvents.append({ ...event(2), outcome: "success" }), refused);
        assert.equal(store.failure()?.message, "embedded store could not sync its log (EIO); it refuses writes until restarted");
        await assert.rejects(store.auditEvents.append(event(3)), refused, "a refusal's event, written without an fsync, too");
        await assert.rejects(store.ping(), refused);
        failing = false;
        await assert.rejects(store.auditEvents.append({ ...event(4), outcome: "success" }), refused, "a later fsync that would succeed changes nothing");
        // The refused event had committed before its fsync failed; nothing after it committed.
        assert.deepEqual((await store.auditEvents.list({ limit: 10 })).map((e) => e.id), ["e0002", "e0001"]);
      } finally {
        await store.close();
      }
    });

    it("a batch is committed with an fsync unless every event in it is a refusal (locked, throttled, shed)", () => {
      assert.equal(batchNeedsSync(["shed", "throttled", "locked", "shed"]), false);
      assert.equal(batchNeedsSync(["shed", "success"]), true);
      assert.equal(batchNeedsSync(["failure"]), true);
      assert.equal(batchNeedsSync(["error", "shed"]), true);
    });

    it("events still waiting for their turn's commit are written when the store closes", async () => {
      const store = await openStore({ dataDir });
      const appended = store.auditEvents.append(event(7));
      await store.close();
      await appended;
      const db = new Database(join(dataDir, "tessera.db"), { readonly: true });
      try {
        assert.deepEqual(db.prepare("SELECT id FROM audit_events").all(), [{ id: "e0007" }]);
      } finally {
        db.close();
      }
    });
  });

  describe("group commit: a write is answered once an fsync of the WAL after its commit returned", () => {
    let db: Database.Database;
    let syncs: Array<{ fd: number; done: (error: NodeJS.ErrnoException | null) => void }>;
    let calls: ReturnType<typeof sqliteCalls>;
    let failures: StoreUnavailableError[];
    const settled = async (p: Promise<unknown>) => {
      let state = "pending";
      p.then(() => (state = "resolved"), () => (state = "rejected"));
      await new Promise((r) => setImmediate(r));
      return state;
    };
    /** A write answered without an fsync of its own: its `durable` asks for one, and waits for it. */
    const waitsForOneFsync = async (durable: () => Promise<void>) => {
      assert.equal(syncs.length, 0, "no fsync of its own");
      const waiting = durable();
      assert.equal(await settled(waiting), "pending");
      assert.equal(syncs.length, 1);
      syncs.shift()!.done(null);
      await waiting;
    };
    beforeEach(() => {
      mkdirSync(dataDir, { recursive: true });
      db = new Database(join(dataDir, "t.db"));
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.exec("CREATE TABLE t (x INTEGER PRIMARY KEY)");
      syncs = [];
      failures = [];
      calls = sqliteCalls(db, { fsync: (fd, done) => void syncs.push({ fd, done }), failed: (e) => void failures.push(e) });
    });
    afterEach(() => {
      for (const s of syncs) s.done(null);
      db.close();
    });
    const insert = (x: number) => () => db.prepare("INSERT INTO t VALUES (?)").run(x);

    it("waits for its fsync, of the WAL file; writes made while it runs share the next one", async () => {
      const first = calls.call(insert(1));
      assert.equal(await settled(first), "pending");
      assert.equal(syncs.length, 1);
      assert.equal(fstatSync(syncs[0]!.fd).ino, statSync(join(dataDir, "t.db-wal")).ino);
      // Committed (visible) already; only the answer waits.
      assert.deepEqual(await calls.call(() => db.prepare("SELECT x FROM t").all()), [{ x: 1 }]);
      const second = calls.call(insert(2));
      const third = calls.call(insert(3));
      assert.equal(syncs.length, 1, "no second fsync while the first runs");
      syncs[0]!.done(null);
      assert.equal(await settled(first), "resolved");
      assert.equal(await settled(second), "pending");
      assert.equal(syncs.length, 2, "one fsync for the two writes made meanwhile");
      syncs[1]!.done(null);
      assert.deepEqual([await settled(second), await settled(third)], ["resolved", "resolved"]);
      assert.equal(syncs.length, 2);
    });

    it("reads, writes that change no row and cheaply() writes are answered without one", async () => {
      await calls.call(() => db.prepare("SELECT count(*) FROM t").get());
      await calls.call(() => db.prepare("UPDATE t SET x = 5 WHERE x = 99").run());
      await calls.call(() => calls.cheaply(insert(4)));
      assert.equal(syncs.length, 0);
      // ...but a call that also changes rows outside cheaply() waits.
      const mixed = calls.call(() => {
        calls.cheaply(insert(6));
        insert(7)();
      });
      assert.equal(await settled(mixed), "pending");
      assert.equal(syncs.length, 1);
    });

    it("a failed fsync fails the connection for good: the writes that waited for it, those waiting for the next and every later write are refused (UNAVAILABLE), with no fsync again; reads still answer", async () => {
      const message = "embedded store could not sync its log (EIO); it refuses writes until restarted";
      const refused = (e: unknown) => e instanceof StoreUnavailableError && e.message === message;
      const waited = calls.call(insert(1));
      const waitingForNext = calls.call(insert(2));
      syncs[0]!.done(Object.assign(new Error("i/o error"), { code: "EIO" }));
      await assert.rejects(waited, refused);
      assert.equal(syncs.length, 1, "no fsync for the write that was waiting for the next one");
      await assert.rejects(waitingForNext, refused);
      assert.equal(calls.failure()?.message, message);
      // Later writes, cheap ones included, are refused before they commit anything.
      await assert.rejects(calls.call(insert(3)), refused);
      await assert.rejects(calls.call(() => calls.cheaply(insert(4))), refused);
      await assert.rejects(calls.synced(), refused);
      assert.equal(syncs.length, 1, "no fsync after the failed one");
      assert.deepEqual(await calls.call(() => db.prepare("SELECT x FROM t ORDER BY x").all()), [{ x: 1 }, { x: 2 }]);
      assert.deepEqual(failures.map((e) => e.message), [message], "reported once");
    });

    it("failed by another process on the file (TESSERA_WORKERS): the same, and the fsync under way acknowledges nothing though it succeeds", async () => {
      const write = calls.call(insert(1));
      calls.fail("embedded store could not sync its log (EIO); it refuses writes until restarted");
      syncs[0]!.done(null);
      await assert.rejects(write, StoreUnavailableError);
      await assert.rejects(calls.call(insert(2)), /could not sync its log \(EIO\); it refuses writes until restarted/);
      assert.equal(syncs.length, 1);
      assert.deepEqual(await calls.call(() => db.prepare("SELECT x FROM t").all()), [{ x: 1 }]);
      assert.deepEqual(failures, [], "not reported back");
    });

    it("close() waits for the fsync under way and the one asked for meanwhile; a sync after it is UNAVAILABLE", async () => {
      const first = calls.call(insert(1));
      const closing = calls.close();
      // A write committed while the store closes (its connection is still open) is synced too.
      const second = calls.call(insert(2));
      assert.equal(await settled(closing), "pending");
      syncs[0]!.done(null);
      assert.equal(await settled(first), "resolved");
      assert.equal(await settled(closing), "pending", "the second write's fsync still runs");
      syncs[1]!.done(null);
      assert.deepEqual([await settled(second), await settled(closing)], ["resolved", "resolved"]);
      await assert.rejects(calls.synced(), StoreUnavailableError);
      assert.equal(syncs.length, 2);
    });

    it("deferred(): answered once committed, without an fsync; durable() waits for none more once an fsync that started after the commit returned (whatever was committed since), else for the one under way when it started after the commit, else for the next", async () => {
      // Before any fsync: durable() makes one.
      const a = await calls.deferred(insert(1));
      assert.equal(syncs.length, 0, "committed, no fsync of its own");
      assert.deepEqual(await calls.call(() => db.prepare("SELECT x FROM t").all()), [{ x: 1 }]);
      const aDurable = a.durable();
      assert.equal(syncs.length, 1);
      // A second deferred write while that fsync runs: the fsync under way started before it.
      const b = await calls.deferred(insert(2));
      const bDurable = b.durable();
      assert.equal(await settled(bDurable), "pending");
      assert.equal(syncs.length, 1, "the next fsync is asked for, not started");
      syncs[0]!.done(null);
      assert.equal(await settled(aDurable), "resolved");
      assert.equal(await settled(bDurable), "pending", "the fsync that returned started before b's commit");
      assert.equal(syncs.length, 2, "the next one, started as the first returned");
      syncs[1]!.done(null);
      assert.equal(await settled(bDurable), "resolved");
      // A later write's own fsync, under way: d's durable() shares it; another commit since (a
      // concurrent login's) does not make d wait for the next.
      const d = await calls.deferred(insert(4));
      const e = calls.call(insert(5));
      assert.equal(syncs.length, 3, "e's own fsync, which started after d's commit");
      await calls.deferred(insert(6));
      const dDurable = d.durable();
      assert.equal(syncs.length, 3, "d waits for e's fsync under way, none of its own");
      syncs[2]!.done(null);
      assert.deepEqual([await settled(e), await settled(dDurable)], ["resolved", "resolved"]);
      assert.equal(await settled(d.durable()), "resolved", "answered at once, although 6 was committed since without an fsync");
      assert.equal(syncs.length, 3);
    });

    it("deferred() on a failed connection: refused; durable() of a write not yet synced is refused with the failure", async () => {
      const a = await calls.deferred(insert(1));
      const waiting = a.durable();
      syncs[0]!.done(Object.assign(new Error("i/o error"), { code: "EIO" }));
      await assert.rejects(waiting, StoreUnavailableError);
      await assert.rejects(a.durable(), StoreUnavailableError);
      await assert.rejects(calls.deferred(insert(2)), StoreUnavailableError);
      assert.equal(syncs.length, 1);
    });

    it("the adapters: a login's session and its first refresh token (createThenSync) are answered once committed, in one transaction, without an fsync; its durable() waits for one", async () => {
      migrate(db);
      const at = new Date();
      const session = { id: "s1", userId: "u1", clientId: "c", accessJti: "j", createdAt: at, expiresAt: at };
      const { record, durable } = await sqliteSessions(db).createThenSync(session, { hash: "rt", sessionId: "s1", createdAt: at, expiresAt: at });
      assert.deepEqual(record, session);
      assert.equal(db.prepare("SELECT count(*) FROM refresh_tokens WHERE session_id = 's1'").pluck().get(), 1);
      await waitsForOneFsync(durable);
      // A clash of the refresh token rolls the session back with it.
      await assert.rejects(sqliteSessions(db).createThenSync({ ...session, id: "s2" }, { hash: "rt", sessionId: "s2", createdAt: at, expiresAt: at }), DuplicateError);
      assert.equal(await sqliteSessions(db).findById("s2"), null);
    });

    it("the adapters: a refresh's child refresh token (insertThenSync) is answered once committed, without an fsync; its durable() waits for one", async () => {
      migrate(db);
      const at = new Date();
      const { record, durable } = await sqliteRefreshTokens(db).insertThenSync({ hash: "rt", sessionId: "s1", createdAt: at, expiresAt: at });
      assert.equal(record.hash, "rt");
      await waitsForOneFsync(durable);
      await assert.rejects(sqliteRefreshTokens(db).insertThenSync({ hash: "rt", sessionId: "s1", createdAt: at, expiresAt: at }), DuplicateError);
    });

    it("the adapters: a login's counters and its new session are answered at once, a new user after its fsync", async () => {
      migrate(db);
      const at = new Date();
      const rule = { windowMs: 60_000, lockMs: 60_000, maxLockMs: 600_000, leaseMs: 60_000 };
      await sqliteLoginAttempts(db).reserve([{ key: "login:k", limit: 5 }], at, rule);
      await sqliteLoginAttempts(db).rememberLogin("h", new Date(at.getTime() + 60_000));
      const user = sqliteUsers(db).create({ id: "u1", login: "ada@example.com", loginKey: "ada@example.com", emails: ["ada@example.com"], passwordHash: "x", createdAt: at });
      assert.equal(await settled(user), "pending");
      assert.equal(syncs.length, 1, "only the user waited for an fsync");
      syncs[0]!.done(null);
      await user;
      await sqliteSessions(db).createThenSync({ id: "s1", userId: "u1", clientId: "c", accessJti: "j", createdAt: at, expiresAt: at }, { hash: "rt", sessionId: "s1", createdAt: at, expiresAt: at });
      assert.equal(syncs.length, 1);
    });

    it("the adapters: a login's lastLoginAt, which its session's insert syncs, is answered at once; set alone, after its fsync", async () => {
      migrate(db);
      const at = new Date();
      const user = sqliteUsers(db).create({ id: "u1", login: "ada@example.com", loginKey: "ada@example.com", emails: ["ada@example.com"], passwordHash: "x", createdAt: at });
      syncs.shift()!.done(null);
      await user;
      assert.deepEqual(await sqliteUsers(db).setLastLogin("u1", at, { syncedByNextWrite: true }), at);
      assert.equal(syncs.length, 0, "no fsync of its own");
      const alone = sqliteUsers(db).setLastLogin("u1", new Date(at.getTime() + 1));
      assert.equal(await settled(alone), "pending");
      assert.equal(syncs.length, 1);
      syncs.shift()!.done(null);
      assert.deepEqual(await alone, new Date(at.getTime() + 1));
    });

    it("housekeeping deletes a backlog of every kind a batch per statement, each its own commit of at most 1000 rows: the write lock and the event loop are let go between them", async () => {
      migrate(db);
      const t = 1_700_000_000_000;
      const now = new Date(t + 100 * 86_400_000);
      const batch = 1000; // the README's figure (core/housekeeping.ts DELETE_BATCH)
      const backlog = 2 * batch + batch / 2;
      // Each table: `backlog` rows housekeeping deletes at `now`, and one it keeps. Written
      // straight to the file (no commits of the adapters to count).
      const tables: Array<[string, (i: number, keep: boolean) => unknown[], string]> = [
        ["sessions", (i, keep) => [`s${i}`, keep ? now.getTime() + 1 : t], "INSERT INTO sessions (id, user_id, client_id, access_jti, created_at, expires_at) VALUES (?, 'u', 'c', 'j', 0, ?)"],
        ["refresh_tokens", (i, keep) => [`r${i}`, keep ? now.getTime() + 1 : t], "INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at) VALUES (?, 's', 0, ?)"],
        ["auth_tokens", (i, keep) => [`a${i}`, keep ? now.getTime() + 1 : t], "INSERT INTO auth_tokens (hash, user_id, created_at, expires_at) VALUES (?, 'u', 0, ?)"],
        ["jwt_refresh_tokens", (i, keep) => [`j${i}`, keep ? now.getTime() + 1 : t], "INSERT INTO jwt_refresh_tokens (jti, user_id, issued_at, expires_at) VALUES (?, 'u', 0, ?)"],
        // Past the retention (30 days): half expired, half logged out without an expiry; kept: one that never expires.
        ["user_tokens", (i, keep) => [`ut${i}`, `ut${i}`, keep || i % 2 === 0 ? 1 : 0, keep || i % 2 === 1 ? null : t, keep || i % 2 === 0 ? null : t], "INSERT INTO user_tokens (id, hash, user_id, created_at, version, enabled, expires_at, disabled_at) VALUES (?, ?, 'u', 0, 0, ?, ?, ?)"],
        // Revoked past the retention (30 days); kept: one never revoked, issued as long ago.
        ["api_tokens", (i, keep) => [`l${i}`, `l${i}`, keep ? null : t], "INSERT INTO api_tokens (link, hash, account_id, description, issued_at, revoked_at) VALUES (?, ?, 'a', 'd', 0, ?)"],
        ["login_attempts", (i, keep) => [`k${i}`, keep ? now.getTime() : t], "INSERT INTO login_attempts (key, failures, first_failure_at, last_failure_at) VALUES (?, 1, 0, ?)"],
        ["known_logins", (i, keep) => [`h${i}`, keep ? now.getTime() + 1 : t], "INSERT INTO known_logins (hash, expires_at) VALUES (?, ?)"],
        ["audit_events", (i, keep) => [`e${i}`, keep ? now.getTime() : t], "INSERT INTO audit_events (id, time, type, outcome) VALUES (?, ?, 'login', 'success')"],
      ];
      db.transaction(() => {
        for (const [, row, sql] of tables) {
          const insert = db.prepare(sql);
          for (let i = 0; i <= backlog; i++) insert.run(...row(i, i === backlog));
        }
      })();
      const counts = () => tables.map(([table]) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
      const store = {
        sessions: sqliteSessions(db),
        refreshTokens: sqliteRefreshTokens(db),
        authTokens: sqliteAuthTokens(db),
        jwtRefreshTokens: sqliteJwtRefreshTokens(db),
        userTokens: sqliteUserTokens(db),
        apiTokens: sqliteApiTokens(db),
        keys: sqliteSigningKeys(db),
        loginAttempts: sqliteLoginAttempts(db),
        auditEvents: sqliteAuditEvents(db),
      };
      const housekeeping = new Housekeeping({ store, clock: new ManualClock(now.getTime()), logger: createLogger("silent"), loginWindowSeconds: 60, auditRetentionDays: 90 });
      // Each fsync asked for follows one commit (the next batch waits for it): what the commit
      // deleted is what the tables lost since the last one.
      const commits: Array<[string, number]> = [];
      let before = counts();
      let done = false;
      const pass = housekeeping.runOnce().finally(() => (done = true));
      while (!done) {
        await new Promise((r) => setImmediate(r));
        for (const s of syncs.splice(0)) {
          const after = counts();
          tables.forEach(([table], i) => {
            if (after[i] !== before[i]) commits.push([table, before[i]! - after[i]!]);
          });
          before = after;
          s.done(null);
        }
      }
      const removed = await pass;
      const expected = tables.flatMap(([table]): Array<[string, number]> => [[table, batch], [table, batch], [table, batch / 2]]);
      assert.deepEqual(commits, expected, "three commits per table: 1000, 1000 and 500 rows");
      assert.deepEqual(counts(), tables.map(() => 1), "every row that is not due is kept");
      assert.deepEqual(removed, { sessions: backlog, refreshTokens: backlog, authTokens: backlog, jwtRefreshTokens: backlog, userTokens: backlog, abandonedApiTokens: 0, revokedApiTokens: backlog, keys: 0, loginAttempts: backlog, knownLogins: backlog, auditEvents: backlog });
    });

    describe("single-use spends: the loser is answered once the winner's write is on disk", () => {
      const at = new Date(1_700_000_000_000);
      const later = new Date(at.getTime() + 3_600_000);
      /** Writes `made` straight (outside call()) and makes it durable: nothing is pending after. */
      const settle = async (made: () => void) => {
        migrate(db);
        made();
        const synced = calls.synced();
        for (const s of syncs.splice(0)) s.done(null);
        await synced;
      };
      const userToken = () =>
        db.prepare("INSERT INTO user_tokens (id, hash, user_id, created_at, version, enabled, expires_at) VALUES ('t1', 'h1', 'u', 0, 0, 1, ?)").run(later.getTime());

      // Each spend: the store call, and what its winner and its loser answer.
      const spends: Array<{ name: string; made: () => void; spend: () => Promise<unknown>; won: unknown; lost: unknown }> = [
        { name: "a user token's logout (POST /auth/logout)", made: userToken, spend: () => sqliteUserTokens(db).disable("t1", at), won: true, lost: false },
        {
          name: "a hand-off token's consume (seed 003 exchange)",
          made: () => db.prepare("INSERT INTO auth_tokens (hash, user_id, created_at, expires_at) VALUES ('a1', 'u', 0, ?)").run(later.getTime()),
          spend: async () => (await sqliteAuthTokens(db).consume("a1", at)) !== null,
          won: true,
          lost: false,
        },
        {
          name: "a JWT refresh token's revocation",
          made: () => db.prepare("INSERT INTO jwt_refresh_tokens (jti, user_id, issued_at, expires_at) VALUES ('r1', 'u', 0, ?)").run(later.getTime()),
          spend: () => sqliteJwtRefreshTokens(db).revoke("r1", "u", at),
          won: true,
          lost: false,
        },
      ];
      for (const { name, made, spend, won, lost } of spends) {
        it(`${name}: the loser waits for the winner's fsync (sharing it); a spend that races with nothing is answered at once, without one`, async () => {
          await settle(made);
          const winner = spend();
          assert.equal(await settled(winner), "pending");
          assert.equal(syncs.length, 1);
          const loser = spend();
          assert.equal(await settled(loser), "pending", "not answered before the winner's write is on disk");
          assert.equal(syncs.length, 1, "no fsync of its own: it waits for the winner's");
          syncs.shift()!.done(null);
          assert.deepEqual([await winner, await loser], [won, lost]);
          // Long after (nothing committed since): answered from what is on disk already.
          assert.deepEqual(await spend(), lost);
          assert.equal(syncs.length, 0);
        });
      }

      it("a refresh token's spend, which its winner commits without an fsync (its child token's insert syncs it): the loser is answered at once, its durable() waiting for an fsync of it", async () => {
        await settle(() => db.prepare("INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at) VALUES ('rt', 's1', 0, ?)").run(later.getTime()));
        const refreshTokens = sqliteRefreshTokens(db);
        assert.equal((await refreshTokens.spendThenSync("rt", at, "child")).before?.spentAt, undefined, "won, answered at once");
        assert.equal(syncs.length, 0);
        const lost = await refreshTokens.spendThenSync("rt", at, "other");
        assert.equal(lost.before?.child, "child");
        assert.equal(syncs.length, 0, "the loser is answered without an fsync");
        const lostDurable = lost.durable();
        assert.equal(await settled(lostDurable), "pending", "its durable() waits until the winner's spend is on disk");
        assert.equal(syncs.length, 1);
        syncs.shift()!.done(null);
        await lostDurable;
        // The child token, inserted by the winner (answered at once, durable() waiting for an
        // fsync), then by a concurrent caller of the same refresh: the duplicate is refused at
        // once, the wait on it (errorDurable) resolving after an fsync of the first insert (its
        // caller's audit event's, when it records one first).
        const child = { hash: "child-rt", sessionId: "s1", createdAt: at, expiresAt: later };
        const { durable } = await refreshTokens.insertThenSync(child);
        assert.equal(syncs.length, 0, "the first insert is answered without an fsync");
        const refused = (await refreshTokens.insertThenSync(child).catch((e: unknown) => e)) as DuplicateError;
        assert.ok(refused instanceof DuplicateError, String(refused));
        assert.equal(syncs.length, 0, "the duplicate is answered without an fsync");
        const second = errorDurable(refused);
        assert.equal(await settled(second), "pending", "its durable() waits until the first insert is on disk");
        assert.equal(syncs.length, 1);
        const first = durable();
        assert.equal(await settled(first), "pending");
        assert.equal(syncs.length, 1, "durable() shares the duplicate's fsync, which started after the insert");
        syncs.shift()!.done(null);
        await Promise.all([first, second]);
      });

      it("a session's end (DELETE /session), which its winner commits without an fsync (the logout's audit event syncs it): answered at once, durable() waiting for an fsync; the loser too, its durable() waiting for an fsync of the winner's end", async () => {
        await settle(() => db.prepare("INSERT INTO sessions (id, user_id, client_id, access_jti, created_at, expires_at) VALUES ('s1', 'u', 'c', 'j', 0, ?)").run(later.getTime()));
        const sessions = sqliteSessions(db);
        const winner = await sessions.endThenSync("s1", at);
        assert.equal(winner.ended, true);
        assert.equal(syncs.length, 0, "answered without an fsync");
        const lost = await sessions.endThenSync("s1", at);
        assert.equal(lost.ended, false);
        assert.equal(syncs.length, 0, "the loser is answered without an fsync");
        const lostDurable = lost.durable();
        assert.equal(await settled(lostDurable), "pending", "its durable() waits until the winner's end is on disk");
        assert.equal(syncs.length, 1);
        const durable = winner.durable();
        assert.equal(await settled(durable), "pending");
        assert.equal(syncs.length, 1, "the winner's durable() shares that fsync");
        syncs.shift()!.done(null);
        await Promise.all([durable, lostDurable]);
        // Long after (nothing committed since): answered from what is on disk already.
        const again = await sessions.endThenSync("s1", at);
        assert.equal(again.ended, false);
        await again.durable();
        assert.equal(syncs.length, 0);
      });

      it("the winner in another process on the file (TESSERA_WORKERS): the loser fsyncs the log itself before it answers", async () => {
        await settle(userToken);
        const other = new Database(join(dataDir, "t.db"));
        const otherSyncs: typeof syncs = [];
        try {
          sqliteCalls(other, { fsync: (fd, done) => void otherSyncs.push({ fd, done }) });
          const winner = sqliteUserTokens(other).disable("t1", at);
          assert.equal(otherSyncs.length, 1);
          const loser = sqliteUserTokens(db).disable("t1", at);
          assert.equal(await settled(loser), "pending", "not answered before the other process's write is on disk");
          assert.equal(syncs.length, 1, "its own fsync of the log, which syncs every process's commits");
          syncs.shift()!.done(null);
          assert.equal(await loser, false);
          otherSyncs.shift()!.done(null);
          assert.equal(await winner, true);
          assert.equal(await sqliteUserTokens(db).disable("t1", at), false);
          assert.equal(syncs.length, 0, "nothing committed since its fsync: none again");
        } finally {
          for (const s of otherSyncs) s.done(null);
          other.close();
        }
      });

      it("the winner's fsync fails: the loser is refused with the failure too (UNAVAILABLE), not told the token has ended", async () => {
        await settle(userToken);
        const winner = sqliteUserTokens(db).disable("t1", at);
        const loser = sqliteUserTokens(db).disable("t1", at);
        syncs.shift()!.done(Object.assign(new Error("i/o error"), { code: "EIO" }));
        await assert.rejects(winner, StoreUnavailableError);
        await assert.rejects(loser, StoreUnavailableError);
      });
    });

    it("a statement that fails is refused at once and waits for nothing", async () => {
      const first = calls.call(insert(1));
      syncs.shift()!.done(null);
      await first;
      await assert.rejects(calls.call(insert(1)), DuplicateError);
      assert.equal(syncs.length, 0);
    });
  });
});

/** Whether the user `as` may read `file` (a child process run as that user tries). */
async function canRead(file: string, as: { uid: number; gid: number }): Promise<boolean> {
  const child = spawn(process.execPath, ["-e", "require('node:fs').accessSync(process.argv[1], require('node:fs').constants.R_OK)", file], { ...as, cwd: tmpdir(), stdio: "ignore" });
  return (await once(child, "exit"))[0] === 0;
}
