// The embedded store's online copy (store/sqlite/sqlite-backup.ts) where it is written: a
// directory in which another user may rename or delete files is refused, as such a user could
// replace the copy's temporary file with a link, and SQLite's VACUUM INTO writes through a link
// to an empty file (password hashes, token hashes and private signing keys in a file of theirs);
// so is a name SQLite gives a file beside the database, which the service would delete or read.
// The compiled `npm run backup` is test/server/backup.test.ts.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs, { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { openStore } from "../../src/store/index.js";
import { BackupError, backUpSqliteStore, startSqliteBackup } from "../../src/store/sqlite/sqlite-backup.js";

/** How many times this process (its threads included) holds `path` open. */
function openBy(path: string): number {
  let held = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) held++;
    } catch {
      // closed meanwhile
    }
  }
  return held;
}

/** Runs `body` with `name` of `module` replaced by `stand`, then puts it back (ESM bindings included). */
function withReplaced<M extends object, K extends keyof M>(module: M, name: K, stand: M[K], body: () => void): void {
  const original = module[name];
  module[name] = stand;
  syncBuiltinESMExports();
  try {
    body();
  } finally {
    module[name] = original;
    syncBuiltinESMExports();
  }
}

describe("sqlite backup: where the copy may be written", () => {
  let dir: string;
  let dataDir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tessera-sqlite-backup-"));
    dataDir = join(dir, "data");
    await (await openStore({ dataDir })).close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A new directory under the test's own, of `mode` (and owner `uid`, when given). */
  function directory(name: string, mode: number, uid?: number): string {
    const path = join(dir, name);
    mkdirSync(path);
    chmodSync(path, mode);
    if (uid !== undefined) chownSync(path, uid, statSync(path).gid);
    return path;
  }

  it("one only its owner may change: the copy is written (0600)", () => {
    const target = join(directory("private", 0o700), "copy.db");
    const copy = backUpSqliteStore(dataDir, target);
    assert.equal(copy.destination, target);
    assert.equal(statSync(target).mode & 0o777, 0o600);
  });

  it("a destination named with the longest name a file system takes (255 bytes): the copy is written by that name (0600), nothing else left", () => {
    const where = directory("long-name", 0o700);
    const name = `${"é".repeat(126)}.db`;
    assert.equal(Buffer.byteLength(name), 255);
    const target = join(where, name);
    assert.equal(backUpSqliteStore(dataDir, target).destination, target);
    assert.deepEqual(readdirSync(where), [name]);
    assert.equal(statSync(target).mode & 0o777, 0o600);
  });

  it("one others may write in, with the sticky bit (as /tmp): the copy is written, as others cannot rename or delete its files", () => {
    const target = join(directory("sticky", 0o1777), "copy.db");
    assert.equal(backUpSqliteStore(dataDir, target).destination, target);
  });

  for (const [name, mode] of [
    ["group-writable", 0o770],
    ["world-writable", 0o777],
  ] as const) {
    it(`one ${name} without the sticky bit: refused, naming it and its mode, nothing written in it`, () => {
      const shared = directory(name, mode);
      assert.throws(
        () => backUpSqliteStore(dataDir, join(shared, "copy.db")),
        (e: unknown) =>
          e instanceof BackupError &&
          e.message ===
            `${shared} may be changed by users other than this one and root (owner ${process.geteuid!()}, mode 0${mode.toString(8)}): another user could put a link where the copy is written; write it to a directory only this user or root can change`,
      );
      assert.deepEqual(readdirSync(shared), []);
    });
  }

  it("one below a directory others may write in: refused, naming that directory", () => {
    const shared = directory("shared-above", 0o777);
    const below = join(shared, "backups");
    mkdirSync(below, { mode: 0o700 });
    assert.throws(
      () => backUpSqliteStore(dataDir, join(below, "copy.db")),
      (e: unknown) => e instanceof BackupError && e.message.startsWith(`${shared} may be changed by users other than this one and root (owner `),
    );
    assert.deepEqual(readdirSync(below), []);
  });

  it("one owned by another user: refused, naming it and its owner", function () {
    if (process.geteuid!() !== 0) this.skip(); // chown needs root
    const theirs = directory("theirs", 0o755, 4242);
    assert.throws(
      () => backUpSqliteStore(dataDir, join(theirs, "copy.db")),
      (e: unknown) =>
        e instanceof BackupError &&
        e.message ===
          `${theirs} may be changed by users other than this one and root (owner 4242, mode 0755): another user could put a link where the copy is written; write it to a directory only this user or root can change`,
    );
    assert.equal(existsSync(join(theirs, "copy.db")), false);
  });

  for (const name of ["tessera.db-journal", "tessera.db-wal", "tessera.db-shm"]) {
    it(`${name} in the data directory, a name SQLite gives a file beside the database: refused, nothing written`, () => {
      const data = join(dir, `data-${name}`);
      mkdirSync(data, { mode: 0o700 });
      const live = join(dataDir, "tessera.db");
      const copyOf = join(data, "tessera.db");
      // A database of its own, so that no other case's copy meets its -wal or -shm.
      writeFileSync(copyOf, readFileSync(live), { mode: 0o600 });
      const target = join(data, name);
      assert.throws(
        () => backUpSqliteStore(data, target),
        (e: unknown) =>
          e instanceof BackupError &&
          e.message === `${target} is a name SQLite gives a file beside the database (its rollback journal, log or shared memory): the service would delete or read it; name another`,
      );
      assert.equal(existsSync(target), false);
    });
  }

  // The path named goes through a link that lies in a directory others may change: its target
  // passes the check, and another user then points the link elsewhere, before the copy is
  // written. The copy is written where the check looked, never where the link points later.
  it("a path through a link another user repoints after the check: the copy is written in the directory checked, nothing where the link points then", () => {
    const shared = directory("shared-link", 0o777);
    const safe = directory("safe", 0o700);
    const theirs = directory("theirs-link", 0o777);
    const link = join(shared, "backups");
    symlinkSync(safe, link);
    const fchmod = fs.fchmodSync;
    // Right after the temporary file is created (its mode set), the link is pointed elsewhere.
    fs.fchmodSync = (fd, mode) => {
      fchmod(fd, mode);
      unlinkSync(link);
      symlinkSync(theirs, link);
    };
    syncBuiltinESMExports();
    try {
      backUpSqliteStore(dataDir, join(link, "copy.db"));
    } finally {
      fs.fchmodSync = fchmod;
      syncBuiltinESMExports();
    }
    assert.deepEqual(readdirSync(theirs), []);
    assert.deepEqual(readdirSync(safe), ["copy.db"]);
  });

  it("a file system without hard links (link fails EPERM, as on vfat): the copy is still named, 0600, and nothing else is left", () => {
    const private_ = directory("no-hard-links", 0o700);
    const target = join(private_, "copy.db");
    const refuse = (() => {
      throw Object.assign(new Error("EPERM: operation not permitted, link"), { code: "EPERM" });
    }) as typeof fs.linkSync;
    withReplaced(fs, "linkSync", refuse, () => assert.equal(backUpSqliteStore(dataDir, target).destination, target));
    assert.deepEqual(readdirSync(private_), ["copy.db"]);
    assert.equal(statSync(target).mode & 0o777, 0o600);
    const copy = new Database(target, { readonly: true });
    assert.deepEqual(copy.pragma("integrity_check"), [{ integrity_check: "ok" }]);
    copy.close();
  });

  it("a file system without hard links, the name taken meanwhile: refused as taken, that file untouched, nothing else left", () => {
    const private_ = directory("no-hard-links-taken", 0o700);
    const target = join(private_, "copy.db");
    const refuse = (() => {
      writeFileSync(target, "an earlier backup");
      throw Object.assign(new Error("EPERM: operation not permitted, link"), { code: "EPERM" });
    }) as typeof fs.linkSync;
    withReplaced(fs, "linkSync", refuse, () =>
      assert.throws(
        () => backUpSqliteStore(dataDir, target),
        (e: unknown) => e instanceof BackupError && e.message === `${target} already exists: a backup is never written over a file; name a new one`,
      ),
    );
    assert.deepEqual(readdirSync(private_), ["copy.db"]);
    assert.equal(readFileSync(target, "utf8"), "an earlier backup");
  });

  it("a temporary file name already taken (another backup of the same name drew it): refused, that file untouched", () => {
    const private_ = directory("same-temporary", 0o700);
    const drawn = Buffer.from("0badcafe", "hex");
    const theirs = join(private_, ".copy.db.0badcafe.tmp");
    writeFileSync(theirs, "another backup's copy", { mode: 0o600 });
    withReplaced(crypto, "randomBytes", (() => Buffer.from(drawn)) as unknown as typeof crypto.randomBytes, () =>
      assert.throws(
        () => backUpSqliteStore(dataDir, join(private_, "copy.db")),
        (e: unknown) => e instanceof BackupError && e.message === `cannot write in the directory ${private_} (EEXIST)`,
      ),
    );
    assert.equal(readFileSync(theirs, "utf8"), "another backup's copy");
  });

  // startSqliteBackup (`npm run backup`) copies on a worker thread. Given up (a signal), the
  // thread is told to stop and waited for before the temporary file is removed: a thread still
  // running would write into the file removed, or make it again (VACUUM INTO creates its file).
  it("a running backup given up while its copy waits on a lock, the lock let go right after: once abandon resolves, nothing is left, and nothing is made after", async function () {
    this.timeout(20_000);
    const data = join(dir, "held-data");
    mkdirSync(data, { mode: 0o700 });
    const database = join(data, "tessera.db");
    writeFileSync(database, readFileSync(join(dataDir, "tessera.db")), { mode: 0o600 });
    const private_ = directory("abandoned", 0o700);
    const holder = new Database(database);
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      holder.exec("ROLLBACK");
      holder.close();
    };
    try {
      holder.pragma("locking_mode = EXCLUSIVE");
      holder.exec("BEGIN EXCLUSIVE; CREATE TABLE held (x INTEGER)");
      const running = startSqliteBackup(data, join(private_, "copy.db"));
      running.done.catch(() => {});
      // The thread has opened the database (the holder's is the other): it waits for the lock.
      const deadline = Date.now() + 10_000;
      while (openBy(database) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(openBy(database), 2, "the copy's thread opens the database");
      await new Promise((r) => setTimeout(r, 200));
      const abandoning = running.abandon();
      release(); // the copy the thread was waiting to make goes ahead
      assert.equal(await abandoning, true);
      assert.deepEqual(readdirSync(private_), []);
      // Whatever the thread would still do, it has done by then.
      await new Promise((r) => setTimeout(r, 1_000));
      assert.deepEqual(readdirSync(private_), [], "a copy was written after the backup was given up");
    } finally {
      release();
    }
  });
});
