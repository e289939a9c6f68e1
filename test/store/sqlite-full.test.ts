// The embedded store on a full disk, at the level of the store and of its calls
// (sqlite-durability.ts), each case on a tmpfs of its own (mount needs root) filled to its last
// byte: SQLite's errors are its own, from the file system, none made up. The service on a full
// disk, one worker or several, is test/faults/disk-full.test.ts.
import assert from "node:assert/strict";
import { statfsSync, statSync, truncateSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { openStore } from "../../src/store/index.js";
import { StoreUnavailableError, type Store, type StoreFailures } from "../../src/store/ports.js";
import { sqliteCalls } from "../../src/store/sqlite/sqlite-durability.js";
import { pollLast } from "../support/poll.js";
import { fill, mountTmpfs, type Tmpfs } from "../support/tmpfs.js";

const user = (id: string) => ({ id, login: `${id}@example.com`, loginKey: `${id}@example.com`, emails: [`${id}@example.com`], passwordHash: `$argon2id$${"h".repeat(600)}`, createdAt: new Date(1_700_000_000_000) });

/** The frames of a log that has not started over since it was created (4096-byte pages). */
const walFrames = (db: string) => Math.max(0, statSync(`${db}-wal`).size - 32) / (4096 + 24);

/** A StoreFailures that counts how often the store told of a full disk. */
function counting(): StoreFailures & { told: number } {
  const failures = {
    told: 0,
    failed() {},
    listen() {},
    full: () => void failures.told++,
    listenFull() {},
  };
  return failures;
}

describe("sqlite store on a full disk (tmpfs)", function () {
  this.timeout(60_000);
  let tmpfs: Tmpfs | undefined;
  const open: Array<Store | Database.Database> = [];
  beforeEach(function () {
    tmpfs = mountTmpfs("32m", this);
  });
  afterEach(async () => {
    for (const s of open.splice(0).reverse()) {
      if (s instanceof Database) {
        if (s.open) s.close();
      } else await s.close().catch(() => {});
    }
    tmpfs?.remove();
    tmpfs = undefined;
  });

  /** A store whose log holds 40 users not yet in its database file (whose size is given). */
  async function logNotCheckpointed() {
    const dataDir = join(tmpfs!.dir, "data");
    const first = await openStore({ dataDir });
    open.push(first);
    for (let i = 0; i < 40; i++) await first.users.create(user(`u${i}`));
    const file = join(dataDir, "tessera.db");
    return { dataDir, first, file, databaseSize: statSync(file).size };
  }

  it("a log index (-shm) that cannot grow (SQLITE_IOERR_SHMSIZE) is a full disk: full() from that write until one commits, told once", async () => {
    const file = join(tmpfs!.dir, "index.db");
    const db = new Database(file);
    open.push(db);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("wal_autocheckpoint = 0");
    db.exec("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (0)");
    let told = 0;
    const calls = sqliteCalls(db, { full: () => told++ });
    const bump = db.prepare("UPDATE t SET x = x + 1");
    // One frame per commit, and no checkpoint, so the log never starts over: the index's first
    // 32 KiB region holds 4062 frames, and the 4063rd needs a second one.
    while (walFrames(file) < 4062) bump.run();
    assert.equal(walFrames(file), 4062);
    assert.equal(statSync(`${file}-shm`).size, 32768);
    // Full, then exactly the room the next frame needs in the log is given back: the frame is
    // written, and the index cannot grow.
    const filler = join(tmpfs!.dir, "filler");
    fill(filler);
    const walSize = statSync(`${file}-wal`).size;
    const pages = Math.ceil((walSize + 4120) / 4096) - Math.ceil(walSize / 4096);
    let size = Math.floor(statSync(filler).size / 4096) * 4096;
    truncateSync(filler, size);
    while (statfsSync(tmpfs!.dir).bfree < pages) truncateSync(filler, (size -= 4096));
    assert.equal(statfsSync(tmpfs!.dir).bfree, pages);

    const refused = async () => {
      const error = await calls.call(() => bump.run()).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof StoreUnavailableError, String(error));
      return error.message;
    };
    assert.equal(calls.full(), false);
    assert.equal(await refused(), "embedded store unavailable (SQLITE_IOERR_SHMSIZE)");
    assert.equal(calls.full(), true, "the store takes itself as full");
    assert.equal(told, 1);
    assert.equal(await refused(), "embedded store unavailable (SQLITE_IOERR_SHMSIZE)");
    assert.equal(told, 1, "told once, not at each refusal");

    unlinkSync(filler);
    await calls.call(() => bump.run());
    assert.equal(calls.full(), false, "a write committed: not full any more");
    assert.equal(statSync(`${file}-shm`).size, 65536);
  });

  it("a store opened on a full disk, its log already checkpointed, refused nothing yet: its first ping tries a write, which the disk refuses (told as a full disk); ready once space is back", async () => {
    const dataDir = join(tmpfs!.dir, "data");
    const first = await openStore({ dataDir });
    open.push(first);
    for (const id of ["u1", "u2", "u3"]) await first.users.create(user(id));
    // Another opens: its start-up checkpoint empties the log while there is room.
    await (await openStore({ dataDir })).close();
    const filler = join(tmpfs!.dir, "filler");
    fill(filler);

    const failures = counting();
    const started = await openStore({ dataDir, failures });
    open.push(started);
    const error = await started.ping().then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof StoreUnavailableError, `NOT_SERVING on a full disk: ${String(error)}`);
    assert.equal(error.message, "embedded store unavailable (SQLITE_FULL)");
    assert.equal(failures.told, 1, "the other workers are told");
    assert.equal((await started.users.findById("u2"))?.id, "u2", "reads answer");
    await assert.rejects(started.ping(), StoreUnavailableError);
    assert.equal(failures.told, 1);

    unlinkSync(filler);
    await started.ping();
    await started.users.create(user("u4"));
    assert.ok(await first.users.findById("u4"));
  });

  it("a batch of audit events refused for a full disk counts as any refused write: told as a full disk, pings refused (NOT_SERVING) until one commits once space is back", async () => {
    const dataDir = join(tmpfs!.dir, "data");
    const first = await openStore({ dataDir });
    open.push(first);
    for (const id of ["u1", "u2"]) await first.users.create(user(id));
    await first.close();
    const failures = counting();
    // Its start-up checkpoint empties the log, and its first ping writes its one frame: every
    // commit below needs new space.
    const started = await openStore({ dataDir, failures });
    open.push(started);
    await started.ping();
    fill(join(tmpfs!.dir, "filler"));

    const event = (i: number, outcome: string) => ({ id: `e${i}`, time: new Date(1_700_000_000_000 + i), type: "login", outcome, login: "u1@example.com" });
    // One batch (one turn of the event loop): a success needs its fsync; refusals alone do not.
    for (const outcomes of [["success", "locked"], ["locked", "throttled"]]) {
      const answers = await Promise.all(outcomes.map((o, i) => started.auditEvents.append(event(i, o)).then(() => "stored", (e: unknown) => `${(e as Error).name}: ${(e as Error).message}`)));
      assert.deepEqual(answers, outcomes.map(() => "StoreUnavailableError: embedded store unavailable (SQLITE_FULL)"), outcomes.join(", "));
    }
    assert.equal(failures.told, 1, "the other workers are told, once");
    await assert.rejects(started.ping(), { name: "StoreUnavailableError", message: "embedded store unavailable (SQLITE_FULL)" });
    assert.equal((await started.users.findById("u2"))?.id, "u2", "reads answer");

    unlinkSync(join(tmpfs!.dir, "filler"));
    await started.ping();
    await started.auditEvents.append(event(9, "success"));
    assert.deepEqual((await started.auditEvents.list({ limit: 10 })).map((e) => e.id), ["e9"]);
  });

  it("a store opened on a full disk that its start-up checkpoint cannot copy the log onto starts: reads answer, writes and pings are refused (SQLITE_FULL) until its ping has run the checkpoint, once space is back", async () => {
    const { dataDir, first, file, databaseSize } = await logNotCheckpointed();
    assert.ok(walFrames(file) > 10, "the log holds the users, not yet in the database file");
    const filler = join(tmpfs!.dir, "filler");
    fill(filler);

    const warnings: string[] = [];
    const failures = counting();
    const started = await openStore({ dataDir, failures, warn: (message) => warnings.push(message) });
    open.push(started);
    assert.deepEqual(warnings, ["the embedded store's start-up checkpoint of its log met a full disk; it takes no write until the checkpoint has run (tried every second, and by each readiness probe)"]);
    assert.equal((await started.users.findById("u39"))?.id, "u39", "reads answer");
    const write = await started.users.create(user("refused")).then(() => undefined, (e: unknown) => e);
    assert.ok(write instanceof StoreUnavailableError, String(write));
    assert.equal(write.message, "embedded store unavailable (SQLITE_FULL)");
    await assert.rejects(started.ping(), { name: "StoreUnavailableError", message: "embedded store unavailable (SQLITE_FULL)" });
    assert.equal(failures.told, 1, "the other workers are told");
    // Even once space is back, no write is appended to the log before the checkpoint has run.
    unlinkSync(filler);
    await assert.rejects(started.users.create(user("early")), { name: "StoreUnavailableError", message: "embedded store unavailable (SQLITE_FULL)" });

    await started.ping();
    assert.ok(statSync(file).size > databaseSize, "the log was copied into the database file");
    assert.equal(walFrames(file), 1, "and emptied: the ping's probe is the new log's one frame");
    await started.users.create(user("later"));
    assert.ok(await first.users.findById("later"));
    assert.equal(await first.users.findById("refused"), null);
    assert.equal(await first.users.findById("early"), null);
  });

  it("a store whose start-up checkpoint is owed runs it by itself once space is back, with no readiness probe: writes are taken again", async () => {
    const { dataDir, first, file, databaseSize } = await logNotCheckpointed();
    const filler = join(tmpfs!.dir, "filler");
    fill(filler);
    const started = await openStore({ dataDir, failures: counting(), warn: () => {} });
    open.push(started);
    await assert.rejects(started.users.create(user("refused")), { name: "StoreUnavailableError", message: "embedded store unavailable (SQLITE_FULL)" });

    // Nothing probes readiness (a deployment without one): space comes back, and writes follow.
    unlinkSync(filler);
    const write = () => started.users.create(user("later")).then(() => undefined, (e: unknown) => e);
    const written = await pollLast(write, (refusal) => refusal === undefined, { limitMs: 15_000, intervalMs: 100 });
    assert.equal(written, undefined, `a write is still refused: ${String(written)}`);
    assert.ok(statSync(file).size > databaseSize, "the log was copied into the database file first");
    assert.ok(await first.users.findById("later"));
  });
});
