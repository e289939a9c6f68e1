// The embedded store's checkpoints of its log: run by a worker thread, never by a commit on the
// event loop.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import type { AuditEventRecord, Store } from "../../src/store/ports.js";
import { startCheckpointer } from "../../src/store/sqlite/sqlite-checkpoints.js";
import { openSqliteStore, type SqliteStoreOptions } from "../../src/store/sqlite/sqlite-store.js";

describe("sqlite store: checkpoints of the log, off the event loop", () => {
  let dataDir: string;
  let file: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), "tessera-checkpoints-"));
    file = join(dataDir, "tessera.db");
  });
  afterEach(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** SQLite's threshold in bytes of the log file: 1000 frames of a 4096-byte page, and the header. */
  const threshold = 32 + 1000 * (4096 + 24);

  /** Opens the store and finds its connection (the one that set the log's journal mode). */
  async function open(options: SqliteStoreOptions = {}): Promise<{ store: Store; connection: Database.Database }> {
    const pragma = Database.prototype.pragma;
    let connection: Database.Database | undefined;
    Database.prototype.pragma = function (this: Database.Database, source: string, ...rest: unknown[]) {
      if (/^journal_mode\s*=\s*WAL$/i.test(source)) connection ??= this;
      return (pragma as (...args: unknown[]) => unknown).call(this, source, ...rest);
    } as typeof pragma;
    try {
      const store = await openSqliteStore(dataDir, options);
      return { store, connection: connection! };
    } finally {
      Database.prototype.pragma = pragma;
    }
  }

  let serial = 0;
  /** A refused call's event (committed without an fsync) of about 2 KB: half a page. */
  const event = (): AuditEventRecord => ({ id: `e${++serial}`, time: new Date(), type: "user.login", outcome: "shed", userAgent: "x".repeat(2000) });

  /**
   * Appends `pages` pages' worth of events through the store, 200 a turn (one transaction of
   * about 100 pages each), with `pause` milliseconds between turns; returns the log file's size
   * after each turn. The log starts over only when its writer begins a transaction with every
   * frame copied: a checkpoint must run between two commits.
   */
  async function write(store: Store, pages: number, pause: number | (() => Promise<void>) = 5): Promise<number[]> {
    const sizes: number[] = [];
    for (let written = 0; written < pages; written += 100) {
      await Promise.all(Array.from({ length: 200 }, () => store.auditEvents.append(event())));
      sizes.push(statSync(`${file}-wal`).size);
      await (typeof pause === "number" ? new Promise((resolve) => setTimeout(resolve, pause)) : pause());
    }
    return sizes;
  }

  /**
   * The checkpointer thread the store starts, watched: `caughtUp()` resolves once the thread has
   * answered every checkpoint asked of it so far (a thread held back by a loaded machine is waited
   * for, up to 60 s; the log's cap, past which the connection checkpoints itself, is another case's).
   */
  function watchedCheckpointer() {
    let worker: Worker | undefined;
    let asked = 0;
    let answered = 0;
    const start = (f: string) => {
      const w = startCheckpointer(f);
      const post = w.postMessage.bind(w);
      w.postMessage = (message: unknown) => {
        if (message === "checkpoint") asked++;
        post(message);
      };
      w.on("message", () => answered++);
      return (worker = w);
    };
    const caughtUp = async () => {
      for (const deadline = Date.now() + 60_000; answered < asked; await new Promise((resolve) => setTimeout(resolve, 5))) {
        assert.ok(Date.now() < deadline, `the checkpointer answered ${answered} of the ${asked} checkpoints asked in 60 s`);
      }
    };
    return { start, caughtUp, started: () => worker !== undefined };
  }

  it("the service's connection never checkpoints by itself: its automatic checkpoint is off", async () => {
    const { store, connection } = await open();
    try {
      assert.equal(connection.pragma("wal_autocheckpoint", { simple: true }), 0);
    } finally {
      await store.close();
    }
  });

  it("a log written well past the threshold is checkpointed by the thread, and starts over: its file stays near the threshold", async function () {
    this.timeout(180_000);
    const checkpointer = watchedCheckpointer();
    const { store } = await open({ startCheckpointer: checkpointer.start });
    try {
      // Past the threshold: the thread starts, and is asked for a checkpoint (answered once the
      // thread is up; meanwhile the log goes on growing, up to the cap).
      await write(store, 1200);
      assert.ok(checkpointer.started(), "the checkpointer was started");
      // Until the log has started over (its file cut back to the threshold), the thread given the
      // time to answer between turns.
      await checkpointer.caughtUp();
      for (let turns = 0; statSync(`${file}-wal`).size > threshold; await write(store, 100, checkpointer.caughtUp)) {
        assert.ok(turns++ < 15, "the log never started over");
      }
      // Then three times the threshold more (the file would pass 16 MB with checkpoints merely
      // off), the thread's checkpoint of each turn's frames answered before the next turn (a
      // checkpoint under way does not hold a commit back, and is no part of this case).
      const sizes = await write(store, 3000, checkpointer.caughtUp);
      assert.ok(Math.max(...sizes) < 3 * threshold, `log file sizes up to ${Math.max(...sizes)} bytes`);
    } finally {
      await store.close();
    }
  });

  it("before any write past the threshold, no thread is started (an idle service runs none)", async () => {
    let started = 0;
    const { store } = await open({ startCheckpointer: (f) => (started++, startCheckpointer(f)) });
    try {
      await write(store, 200);
      assert.equal(started, 0);
    } finally {
      await store.close();
    }
  });

  it("a started checkpointer does not keep the process alive: a process that ends its work without closing the store exits", async () => {
    // The store's modules, from a process of its own that writes past the threshold (the thread
    // starts and is asked for a checkpoint) and then has nothing left to do.
    const here = join(process.cwd(), "src", "store", "sqlite");
    const script = `
      import { openSqliteStore } from ${JSON.stringify(pathToFileURL(join(here, "sqlite-store.ts")).href)};
      import { startCheckpointer } from ${JSON.stringify(pathToFileURL(join(here, "sqlite-checkpoints.ts")).href)};
      let started = 0;
      const store = await openSqliteStore(${JSON.stringify(dataDir)}, {
        startCheckpointer: (f) => (started++, startCheckpointer(f)),
        warn: (message) => console.log(message),
      });
      let serial = 0;
      for (let turn = 0; turn < 12; turn++) {
        await Promise.all(Array.from({ length: 200 }, () => store.auditEvents.append({ id: "e" + ++serial, time: new Date(), type: "user.login", outcome: "shed", userAgent: "x".repeat(2000) })));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // Time for the thread to start and answer (no warning below: it did).
      await new Promise((resolve) => setTimeout(resolve, 1000));
      console.log("started " + started);
    `;
    const entry = join(dataDir, "write.mjs");
    writeFileSync(entry, script);
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(process.execPath, ["--import", "tsx", entry], { timeout: 15000, killSignal: "SIGKILL" }, (error, out) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout: out }),
      );
    });
    assert.match(stdout, /^started 1$/m);
    assert.doesNotMatch(stdout, /checkpointer thread/);
    assert.equal(code, 0, "the process was killed: it did not exit by itself");
  });

  for (const [name, start] of [
    ["dies", () => new Worker("throw new Error('checkpointer broke')", { eval: true })],
    ["cannot start", () => {
      throw new Error("no threads");
    }],
  ] as const) {
    it(`a checkpointer that ${name}: the connection goes back to SQLite's automatic checkpoint, with one warning, and the log stays bounded`, async () => {
      const warnings: string[] = [];
      const { store, connection } = await open({ startCheckpointer: start, warn: (message) => void warnings.push(message) });
      try {
        const sizes = await write(store, 3000);
        assert.equal(warnings.filter((w) => /checkpointer/.test(w)).length, 1, warnings.join("\n"));
        assert.equal(connection.pragma("wal_autocheckpoint", { simple: true }), 1000);
        // Once fallen back, SQLite checkpoints the log itself (the file no longer grows).
        assert.ok(sizes.at(-1)! < 2.5 * threshold, `log file sizes up to ${sizes.at(-1)} bytes`);
      } finally {
        await store.close();
      }
    });
  }

  const checkpointFailed = "a checkpoint of the embedded store's log failed; the log keeps its frames and the checkpoint is tried again as it grows";

  it("a checkpoint that fails for a full disk (SQLITE_FULL): one warning, the thread stays, and the next checkpoints start the log over", async () => {
    // The real checkpointer thread, whose first three checkpoints fail as on a full disk (the
    // database file cannot grow).
    const require = createRequire(import.meta.url);
    const code = `
      require(${JSON.stringify(require.resolve("tsx/cjs"))});
      const Database = require("better-sqlite3");
      const pragma = Database.prototype.pragma;
      let failures = 3;
      Database.prototype.pragma = function (source, ...rest) {
        if (/^wal_checkpoint\\(PASSIVE\\)$/.test(source) && failures-- > 0) throw new Database.SqliteError("database or disk is full", "SQLITE_FULL");
        return pragma.call(this, source, ...rest);
      };
      require(${JSON.stringify(join(process.cwd(), "src/store/sqlite/sqlite-checkpointer.cts"))});
    `;
    const warnings: string[] = [];
    const { store, connection } = await open({
      warn: (message) => void warnings.push(message),
      startCheckpointer: (f) => new Worker(code, { eval: true, workerData: { file: f } }),
    });
    try {
      await write(store, 1200);
      for (const deadline = Date.now() + 3000; statSync(`${file}-wal`).size > threshold; await write(store, 100)) {
        assert.ok(Date.now() < deadline, "the log never started over");
      }
      assert.deepEqual(warnings, [checkpointFailed]);
      assert.equal(connection.pragma("wal_autocheckpoint", { simple: true }), 0, "no fallback to SQLite's automatic checkpoint");
    } finally {
      await store.close();
    }
  });

  // The store's full disk (sqlite-errors.ts meansFull): the log's file or the database file
  // refused room, with ENOSPC (SQLITE_FULL) or another errno (SQLITE_IOERR_WRITE).
  for (const [code, message] of [["SQLITE_FULL", "database or disk is full"], ["SQLITE_IOERR_WRITE", "disk I/O error"]] as const) {
    it(`a checkpoint the connection makes itself (past the cap) that fails for a full disk (${code}): one warning, no fallback`, async () => {
      // A thread that answers every request without checkpointing, so the log grows past the cap.
      const warnings: string[] = [];
      const { store, connection } = await open({
        warn: (message) => void warnings.push(message),
        startCheckpointer: () =>
          new Worker(
            `const { parentPort } = require("node:worker_threads");
             parentPort.on("message", (m) => (m === "close" ? parentPort.close() : parentPort.postMessage({ runs: 0, log: 0, checkpointed: 0, busy: false })));`,
            { eval: true },
          ),
      });
      const pragma = connection.pragma.bind(connection);
      connection.pragma = ((source: string, ...rest: unknown[]) => {
        if (/^wal_checkpoint\(PASSIVE\)$/.test(source)) throw new Database.SqliteError(message, code);
        return (pragma as (...args: unknown[]) => unknown)(source, ...rest);
      }) as typeof connection.pragma;
      try {
        await write(store, 5000);
        assert.deepEqual(warnings, [checkpointFailed]);
        assert.equal(connection.pragma("wal_autocheckpoint", { simple: true }), 0);
      } finally {
        await store.close();
      }
    });
  }

  it("a checkpoint the connection cannot make itself (past the cap): the thread still running is stopped, and ends before close() resolves", async () => {
    // A thread that answers every request without checkpointing, so the log grows past the cap
    // and the connection checkpoints itself; that checkpoint fails here.
    let worker: Worker | undefined;
    let exited = false;
    const warnings: string[] = [];
    const { store, connection } = await open({
      warn: (message) => void warnings.push(message),
      startCheckpointer: () =>
        (worker = new Worker(
          `const { parentPort } = require("node:worker_threads");
           parentPort.on("message", (m) => (m === "close" ? parentPort.close() : parentPort.postMessage({ runs: 0, log: 0, checkpointed: 0, busy: false })));`,
          { eval: true },
        ).once("exit", () => (exited = true))),
    });
    const pragma = connection.pragma.bind(connection);
    connection.pragma = ((source: string, ...rest: unknown[]) => {
      if (/^wal_checkpoint\(PASSIVE\)$/.test(source)) throw Object.assign(new Error("disk I/O error"), { code: "SQLITE_IOERR" });
      return (pragma as (...args: unknown[]) => unknown)(source, ...rest);
    }) as typeof connection.pragma;
    let endedInClose = false;
    try {
      await write(store, 5000);
      assert.ok(worker, "the checkpointer was started");
      assert.equal(warnings.filter((w) => /checkpointer/.test(w)).length, 1, warnings.join("\n"));
      assert.equal(connection.pragma("wal_autocheckpoint", { simple: true }), 1000);
    } finally {
      await store.close();
      endedInClose = exited;
      if (!exited) await worker?.terminate();
    }
    assert.ok(endedInClose, "the thread ended before close() resolved");
  });

  it("close() with a checkpoint asked for: the thread finishes it, closes its connection and ends before the store's connection closes", async () => {
    let worker: Worker | undefined;
    const answers: unknown[] = [];
    const { store } = await open({
      startCheckpointer: (f) => {
        worker = startCheckpointer(f);
        worker.on("message", (m) => void answers.push(m));
        return worker;
      },
    });
    const written = (await write(store, 1200)).length * 200;
    assert.ok(worker, "the checkpointer was started");
    let exited = false;
    worker.once("exit", () => (exited = true));
    await store.close();
    assert.ok(exited, "the thread ended before close() resolved");
    assert.ok(answers.length >= 1, "the checkpoint asked for ran to its end");
    // The store's connection was the file's last: SQLite checkpointed the log and removed it.
    assert.equal(existsSync(`${file}-wal`), false);
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
      assert.equal((db.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n, written);
    } finally {
      db.close();
    }
  });
});
