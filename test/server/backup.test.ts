// `npm run backup -- <file>`: a consistent copy of the embedded store taken while the service
// runs and writes (README, "Backups"). The project's own backup script is run by npm, on the
// build of the current sources (as npm-start.test.ts runs `npm start`), against the compiled
// service with two workers committing sign-ups meanwhile; the copy is checked as SQLite reads it,
// and restored as the README says, under a service started on it.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { decodeProtectedHeader } from "jose";
import { projectRoot } from "../../src/project-files.js";
import { openStore } from "../../src/store/index.js";
import { migrations } from "../../src/store/sqlite/schema.js";
import { compiledEntry, killService, request, runUntilExit, startService, type ServiceProcess } from "../support/process.js";
import { testClientId } from "../support/server.js";
import { password, uniqueEmail } from "../support/users.js";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A directory holding a package.json whose backup script is the project's, naming the test build's backup.js instead of dist/'s. */
async function backupPackage(): Promise<string> {
  const script = (JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as { scripts: { backup: string } }).scripts.backup;
  assert.equal(script, "node dist/src/backup.js");
  const dir = mkdtempSync(join(tmpdir(), "tessera-backup-package-"));
  const backupJs = join(dirname(await compiledEntry()), "backup.js");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "backup-probe", private: true, scripts: { backup: script.replace("dist/src/backup.js", backupJs) } }));
  return dir;
}

/** `npm run -s backup -- ...args` in `cwd` (the package's directory unless `cwd` says another). */
function npmBackup(pkg: string, args: string[], env: Record<string, string>, cwd = pkg): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      "npm",
      ["--prefix", pkg, "run", "-s", "backup", "--", ...args],
      { cwd, env: { ...process.env, MONGODB_URI: "", ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

/** A fresh, migrated embedded store in `dataDir` (as a first start leaves it). */
async function createDatabase(dataDir: string): Promise<string> {
  await (await openStore({ dataDir })).close();
  return join(dataDir, "tessera.db");
}

const clientHeaders = { "x-koms-clientid": testClientId, authorization: undefined };

async function signUp(port: number, email: string): Promise<number> {
  return (await request(port, "POST", "/user", { email, password }, clientHeaders)).status;
}

/** The copy as SQLite reads it: integrity_check's answer, its schema version, and the users' logins. */
function readCopy(file: string): { integrity: unknown; version: number; logins: Set<string>; fillers: number } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return {
      integrity: db.pragma("integrity_check"),
      version: (db.prepare("SELECT MAX(version) AS v FROM schema_version").get() as { v: number }).v,
      logins: new Set((db.prepare("SELECT login FROM users").all() as Array<{ login: string }>).map((r) => r.login)),
      fillers: (db.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE type = 'backup.filler'").get() as { n: number }).n,
    };
  } finally {
    db.close();
  }
}

/** Runs `body` while another connection holds `database` alone (an exclusive lock and an open write transaction). */
async function whileHeld(database: string, body: () => Promise<void>): Promise<void> {
  const holder = new Database(database);
  try {
    holder.pragma("locking_mode = EXCLUSIVE");
    holder.exec("BEGIN EXCLUSIVE; CREATE TABLE held (x INTEGER)");
    await body();
  } finally {
    holder.exec("ROLLBACK");
    holder.close();
  }
}

const mode = (path: string) => `0${(statSync(path).mode & 0o777).toString(8)}`;
const written = (source: string, destination: string) =>
  new RegExp(`^tessera: backup of ${escape(source)} \\(schema version ${migrations.length}\\) written to ${escape(destination)}: \\d+ bytes in \\d+ ms\\n$`);
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

describe("server: npm run backup, an online copy of the embedded store", function () {
  this.timeout(120_000);
  let pkg: string;
  let dir: string;
  before(async () => {
    pkg = await backupPackage();
  });
  after(() => rmSync(pkg, { recursive: true, force: true }));
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tessera-backup-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe("while the service runs (two workers) and commits sign-ups", () => {
    let service: ServiceProcess | undefined;
    afterEach(() => killService(service));

    it("completes; the copy (0600) passes integrity_check and holds every sign-up answered before it began, none answered after it ended", async () => {
      const dataDir = join(dir, "data");
      const database = await createDatabase(dataDir);
      // 30 MB of audit events: the copy takes long enough for sign-ups to commit while it reads.
      const db = new Database(database);
      db.prepare(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
         INSERT INTO audit_events (id, time, type, outcome, subject) SELECT printf('filler-%d', i), ?, 'backup.filler', 'success', hex(randomblob(200)) FROM n`,
      ).run(Date.now());
      db.close();
      service = await startService("compiled", { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir, TESSERA_SIGNUP_MAX_PER_ADDRESS: "1000000" }, { listeners: 2 });
      const port = service.port;

      const answered: Array<{ email: string; status: number }> = [];
      let stop = false;
      const loop = async () => {
        while (!stop) {
          const email = uniqueEmail("backup");
          answered.push({ email, status: await signUp(port, email) });
        }
      };
      const loops = Array.from({ length: 4 }, loop);
      while (answered.length < 20) await new Promise((r) => setTimeout(r, 10));
      const before = answered.map((a) => a.email);
      const destination = join(dir, "copies", "tessera-copy.db");
      mkdirSync(dirname(destination));
      const run = await npmBackup(pkg, [destination], { TESSERA_DATA_DIR: dataDir });
      const after = answered.length;
      while (answered.length < after + 20) await new Promise((r) => setTimeout(r, 10));
      stop = true;
      await Promise.all(loops);

      assert.deepEqual({ code: run.code, stderr: run.stderr }, { code: 0, stderr: "" });
      assert.match(run.stdout, written(database, destination));
      assert.deepEqual(
        answered.filter((a) => a.status !== 201),
        [],
        "every sign-up was answered 201 while the copy was taken",
      );
      const copy = readCopy(destination);
      assert.deepEqual(copy.integrity, [{ integrity_check: "ok" }]);
      assert.equal(copy.version, migrations.length);
      assert.equal(copy.fillers, 50000);
      assert.deepEqual(
        before.filter((email) => !copy.logins.has(email)),
        [],
        "a sign-up answered before the backup began is missing from the copy",
      );
      assert.deepEqual(
        answered.slice(after).filter((a) => copy.logins.has(a.email)),
        [],
        "a sign-up answered after the backup ended is in the copy",
      );
      assert.deepEqual(readdirSync(dirname(destination)), ["tessera-copy.db"], "no temporary file is left");
      assert.equal(mode(destination), "0600");
    });
  });

  it("restored as the README says (stopped, the copy as tessera.db, no -wal or -shm), the service takes a user created before the copy; a session ended after it is live again until its signing key is revoked", async () => {
    const dataDir = join(dir, "data");
    const env = { TESSERA_WORKERS: "1", TESSERA_DATA_DIR: dataDir };
    let service: ServiceProcess | undefined = await startService("compiled", env);
    try {
      const before = uniqueEmail("before");
      assert.equal(await signUp(service.port, before), 201);
      const login = { account_type: "traditional", email: before, password };
      const session = await request(service.port, "POST", "/session", login, clientHeaders);
      assert.equal(session.status, 200, session.text);
      const { access_token: access, refresh_token: refresh } = session.json as { access_token: string; refresh_token: string };
      const destination = join(dir, "copy.db");
      const run = await npmBackup(pkg, [destination], { TESSERA_DATA_DIR: dataDir });
      assert.equal(run.code, 0, run.stderr);

      const ended = await request(service.port, "DELETE", "/session", undefined, { ...clientHeaders, authorization: `Bearer ${access}` });
      assert.equal(ended.status, 200, ended.text);
      const afterwards = uniqueEmail("after");
      assert.equal(await signUp(service.port, afterwards), 201);
      service.child.kill("SIGTERM");
      assert.equal(await service.exited, 0);

      copyFileSync(destination, join(dataDir, "tessera.db"));
      rmSync(join(dataDir, "tessera.db-wal"), { force: true });
      rmSync(join(dataDir, "tessera.db-shm"), { force: true });
      service = await startService("compiled", env);
      const port = service.port;

      assert.equal((await request(port, "POST", "/session", login, clientHeaders)).status, 200);
      const unknown = await request(port, "POST", "/session", { ...login, email: afterwards }, clientHeaders);
      assert.deepEqual([unknown.status, unknown.json?.message], [401, "invalid login or password"]);
      const refreshed = await request(port, "PUT", "/session", { refresh_token: refresh }, { ...clientHeaders, authorization: `Bearer ${access}` });
      assert.equal(refreshed.status, 200, `the session ended after the copy is live again: ${refreshed.text}`);
      const pair = refreshed.json as { access_token: string; refresh_token: string };

      const kid = decodeProtectedHeader(access).kid!;
      const revoked = await request(port, "POST", `/v1/admin/keys/${kid}:revoke`, {});
      assert.equal(revoked.status, 200, revoked.text);
      const refused = await request(port, "PUT", "/session", { refresh_token: pair.refresh_token }, { ...clientHeaders, authorization: `Bearer ${pair.access_token}` });
      assert.deepEqual([refused.status, refused.json?.message], [401, "token signed by a revoked key"]);
    } finally {
      await killService(service);
    }
  });

  /** A fresh embedded store in `dir`/data, and its copy by `npm run backup`. */
  async function backedUp(): Promise<{ dataDir: string; database: string; destination: string }> {
    const dataDir = join(dir, "data");
    const database = await createDatabase(dataDir);
    const destination = join(dir, "copy.db");
    const run = await npmBackup(pkg, [destination], { TESSERA_DATA_DIR: dataDir });
    assert.equal(run.code, 0, run.stderr);
    return { dataDir, database, destination };
  }

  it("restored with the replaced database's log left beside it (its service killed, not stopped): the start refuses, exit 1, naming the files to delete; the copy untouched", async () => {
    const { dataDir, database, destination } = await backedUp();
    // Writes after the copy, still in the log when the process was killed (its log as the kill left it).
    const db = new Database(database);
    db.pragma("wal_autocheckpoint = 0");
    db.prepare("INSERT INTO audit_events (id, time, type, outcome) VALUES ('after-the-copy', 0, 'backup.filler', 'ok')").run();
    const log = readFileSync(`${database}-wal`);
    db.close();
    writeFileSync(`${database}-wal`, log);

    copyFileSync(destination, database);
    const r = await runUntilExit("compiled", { TESSERA_DATA_DIR: dataDir });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(
      r.stderr,
      `tessera: failed to start: the embedded store's database ${database} is not in WAL mode (a copy put in its place, as a restore does), but ${database}-wal beside it holds a log: the replaced database's, which SQLite would write into it; delete ${database}-wal and ${database}-shm, then start again\n`,
    );
    assert.deepEqual(readFileSync(database), readFileSync(destination), "the copy is untouched");
  });

  it("restored from a copy cut short (a transfer stopped midway): the start refuses, exit 1, naming the file", async () => {
    const { dataDir, database, destination } = await backedUp();

    writeFileSync(database, readFileSync(destination).subarray(0, statSync(destination).size / 2));
    const r = await runUntilExit("compiled", { TESSERA_DATA_DIR: dataDir });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `tessera: failed to start: TESSERA_DATA_DIR: ${database} is damaged: database disk image is malformed (SQLITE_CORRUPT)\n`);
  });

  it("does not wait for a migration holding the write lock: the copy is the database as it was before it", async () => {
    const dataDir = join(dir, "data");
    const database = await createDatabase(dataDir);
    const migration = new Database(database);
    try {
      // A step of a later version, applied and recorded but not yet committed (schema.ts: one IMMEDIATE transaction).
      migration.exec(`BEGIN IMMEDIATE; CREATE TABLE later_step (x INTEGER); INSERT INTO schema_version (version, applied_at) VALUES (${migrations.length + 1}, 0)`);
      const destination = join(dir, "copy.db");
      const run = await npmBackup(pkg, [destination], { TESSERA_DATA_DIR: dataDir });
      assert.deepEqual({ code: run.code, stderr: run.stderr }, { code: 0, stderr: "" });
      assert.match(run.stdout, written(database, destination));
      const copy = new Database(destination, { readonly: true });
      assert.equal(copy.prepare("SELECT COUNT(*) AS n FROM sqlite_schema WHERE name = 'later_step'").pluck().get(), 0);
      copy.close();
    } finally {
      migration.exec("ROLLBACK");
      migration.close();
    }
  });

  it("gives up after the busy timeout (5 s) when another process keeps the database locked, exit 1, nothing written", async () => {
    const dataDir = join(dir, "data");
    const database = await createDatabase(dataDir);
    await whileHeld(database, async () => {
      const destination = join(dir, "copy.db");
      const run = await npmBackup(pkg, [destination], { TESSERA_DATA_DIR: dataDir });
      assert.deepEqual(run, {
        code: 1,
        stdout: "",
        stderr: `tessera: backup failed: the database ${database} stayed locked by another process for 5 s (SQLITE_BUSY): try again\n`,
      });
      assert.deepEqual(readdirSync(dir), ["data"]);
    });
  });

  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    it(`stopped by ${signal} while it copies (a terminal's Ctrl-C, a supervisor's stop, the terminal closed): removes its temporary file, one line, ended by the signal`, async () => {
      const dataDir = join(dir, "data");
      const database = await createDatabase(dataDir);
      // Another process holds the database alone: the copy waits (up to 5 s) with its temporary file made.
      await whileHeld(database, async () => {
        const destination = join(dir, "copy.db");
        const child = spawn(process.execPath, [join(dirname(await compiledEntry()), "backup.js"), destination], {
          env: { ...process.env, MONGODB_URI: "", TESSERA_DATA_DIR: dataDir },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("close", (code, sig) => resolve({ code, signal: sig })));
        const temporary = () => readdirSync(dir).find((name) => /^\.copy\.db\.[0-9a-f]{8}\.tmp$/.test(name));
        const deadline = Date.now() + 4_000;
        while (temporary() === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        const made = temporary();
        assert.notEqual(made, undefined, "the temporary file is made before the copy waits");
        await new Promise((r) => setTimeout(r, 200));
        child.kill(signal);
        const end = await ended;
        assert.deepEqual(
          { ...end, stdout, stderr },
          { code: null, signal, stdout: "", stderr: `tessera: backup stopped by ${signal}: nothing written; its temporary file ${join(dir, made!)} removed\n` },
        );
        assert.deepEqual(readdirSync(dir), ["data"]);
      });
    });
  }

  it("a relative destination is taken from where npm runs, a relative TESSERA_DATA_DIR from the project (as npm start reads it)", async () => {
    const database = await createDatabase(join(pkg, "data"));
    try {
      const run = await npmBackup(pkg, ["copy.db"], { TESSERA_DATA_DIR: "data" }, dir);
      assert.deepEqual({ code: run.code, stderr: run.stderr }, { code: 0, stderr: "" });
      assert.match(run.stdout, written(database, join(dir, "copy.db")));
      assert.deepEqual(readCopy(join(dir, "copy.db")).integrity, [{ integrity_check: "ok" }]);
    } finally {
      rmSync(join(pkg, "data"), { recursive: true, force: true });
    }
  });

  describe("refusals: one line on stderr naming the problem, nothing written", () => {
    let dataDir: string;
    let database: string;
    beforeEach(async () => {
      dataDir = join(dir, "data");
      database = await createDatabase(dataDir);
    });

    it("an existing destination: exit 1, the file untouched", async () => {
      const destination = join(dir, "taken.db");
      writeFileSync(destination, "an earlier backup");
      assert.deepEqual(await npmBackup(pkg, [destination], { TESSERA_DATA_DIR: dataDir }), {
        code: 1,
        stdout: "",
        stderr: `tessera: backup failed: ${destination} already exists: a backup is never written over a file; name a new one\n`,
      });
      assert.equal(readFileSync(destination, "utf8"), "an earlier backup");
    });

    it("a destination that is a directory: exit 1", async () => {
      assert.deepEqual(await npmBackup(pkg, [dir], { TESSERA_DATA_DIR: dataDir }), {
        code: 1,
        stdout: "",
        stderr: `tessera: backup failed: ${dir} is a directory: name the file to write\n`,
      });
    });

    it("a directory that does not exist: exit 1, naming it", async () => {
      const missing = join(dir, "missing");
      assert.deepEqual(await npmBackup(pkg, [join(missing, "copy.db")], { TESSERA_DATA_DIR: dataDir }), {
        code: 1,
        stdout: "",
        stderr: `tessera: backup failed: the directory ${missing} does not exist\n`,
      });
      assert.equal(existsSync(missing), false);
    });

    it("a directory it may not write in: exit 1, naming it and the error (sysfs refuses new files to every user, root included)", async () => {
      assert.deepEqual(await npmBackup(pkg, ["/sys/tessera-copy.db"], { TESSERA_DATA_DIR: dataDir }), {
        code: 1,
        stdout: "",
        stderr: "tessera: backup failed: cannot write in the directory /sys (EACCES)\n",
      });
    });

    it("no database: exit 1, naming the file; the data directory is not created", async () => {
      const empty = join(dir, "no-data");
      assert.deepEqual(await npmBackup(pkg, [join(dir, "copy.db")], { TESSERA_DATA_DIR: empty }), {
        code: 1,
        stdout: "",
        stderr: `tessera: backup failed: no database at ${join(empty, "tessera.db")} (TESSERA_DATA_DIR): nothing to back up\n`,
      });
      assert.equal(existsSync(empty), false);
    });

    it("MONGODB_URI set: exit 2, pointing to MongoDB's tools, the URI (and its password) not quoted", async () => {
      assert.deepEqual(await npmBackup(pkg, [join(dir, "copy.db")], { TESSERA_DATA_DIR: dataDir, MONGODB_URI: "mongodb://tessera:s3cret-pw@127.0.0.1:27017/tessera" }), {
        code: 2,
        stdout: "",
        stderr:
          'tessera: backup: MONGODB_URI is set: the store is MongoDB, which this command does not copy; back it up with MongoDB\'s own tools (mongodump, or a snapshot of a replica set member: README, "Backups")\n',
      });
      assert.deepEqual(readdirSync(dir), ["data"]);
    });

    it("no destination: exit 2, the usage", async () => {
      assert.deepEqual(await npmBackup(pkg, [], { TESSERA_DATA_DIR: dataDir }), { code: 2, stdout: "", stderr: "usage: npm run backup -- <destination file>\n" });
    });

    afterEach(() => assert.equal(statSync(database).isFile(), true));
  });
});
