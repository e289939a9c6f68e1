import { closeSync, existsSync, fstatSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";
import type { CheckpointDone } from "./sqlite-checkpointer.cjs";
import { meansFull } from "./sqlite-errors.js";

/**
 * Checkpoints of the embedded store's write-ahead log, off the event loop.
 *
 * SQLite's automatic checkpoint (wal_autocheckpoint, 1000 pages) runs inside the commit that
 * crosses it, on the thread that commits: here the event loop. With synchronous=NORMAL it fsyncs
 * the log, copies the pages into the database file and fsyncs that file (9 to 18 ms measured in a
 * loop of commits), while every request in flight (token checks included) waits. So the service's
 * connection checkpoints nothing by itself (wal_autocheckpoint = 0), and a worker thread
 * (sqlite-checkpointer.cts) runs PASSIVE checkpoints on a connection of its own; they do not take
 * the write lock, so commits go on while one runs.
 *
 * When: every CHECK_EVERY_ROWS rows this connection changes (sqlite-durability.ts reads the count
 * at each call anyway), the log file's size is read (an fstat on the event loop: a few
 * microseconds). journal_size_limit cuts the file back to the threshold in the first commit of a
 * new log, so a file longer than the threshold holds a log longer than SQLite's own threshold:
 * the checkpointer is then asked (a postMessage), one request at a time. The log starts over only
 * when a writer begins with every frame copied, which a checkpoint that overlaps commits may miss:
 * the checkpointer runs again while it finds new frames (a few times), and is asked again at the
 * next check while the file stays long. Past CAP_FACTOR times the threshold, when the thread is
 * between checkpoints, the connection checkpoints itself on the event loop, as SQLite would have
 * (copying only what the thread has not), so the log stays bounded even under writes that leave
 * the thread no pause to catch up in.
 *
 * What stays on the event loop: the first commit of a new log writes the log's header and SQLite
 * syncs it (with synchronous=NORMAL, against a reordered write after the restart), once per log,
 * about one to seven milliseconds measured; with journal_size_limit, the same commit truncates a
 * file grown past the threshold.
 *
 * Nothing runs while the service is idle: the thread starts the first time the log is long
 * enough (start-up time and an idle service's memory are those without it), waits for messages
 * without a timer, and does not keep the process alive by itself (unref).
 *
 * Durability does not change: the checkpointer's connection is synchronous=NORMAL, so SQLite syncs
 * the log before it copies frames and the database file before it lets the log start over (a
 * power cut finds every page in the synced log or in the synced database file). Under
 * TESSERA_WORKERS each process runs its own checkpointer on the same file; SQLite lets one
 * checkpoint run at a time (a second finds the checkpoint lock taken and does nothing: busy), so
 * concurrent ones are safe, and whichever runs copies every process's commits.
 *
 * A checkpoint that fails for a full disk (sqlite-errors.ts meansFull: the database file cannot
 * grow) leaves the log as it is (nothing is lost) and the thread in place: it is warned of once,
 * until one succeeds again, and the next check asks again, so checkpoints resume by themselves
 * once space is back.
 * The thread treats any failed checkpoint so (an I/O error too); the connection's own past the cap
 * does so for a full disk only, and falls back for any other error.
 * If the thread cannot start or dies, the connection goes back to SQLite's automatic checkpoint
 * (wal_autocheckpoint = 1000), with one warning.
 */
export interface Checkpoints {
  /** After a commit: `changes`, the connection's total_changes() now. */
  committed(changes: number): void;
  /** Stops the checkpointer (after the checkpoint under way) and releases the log's descriptor. */
  close(): Promise<void>;
}

export interface CheckpointsOptions {
  warn?: (message: string, fields?: Record<string, unknown>) => void;
  /** Starts the checkpointer thread on `file`, replaceable (tests). */
  startWorker?: (file: string) => Worker;
}

/** SQLite's own threshold for its automatic checkpoint, in pages of the log. */
const AUTOCHECKPOINT_PAGES = 1000;
/** How many rows changed between two reads of the log's size. */
const CHECK_EVERY_ROWS = 32;
/** Past this many times the threshold, the connection checkpoints itself. */
const CAP_FACTOR = 4;

/**
 * Starts the checkpointer thread. From the sources (tests, tsx), its .cts through tsx's
 * CommonJS hook; compiled, tsc's output of it: beside this module, or, from the service's bundle
 * (dist/src/main.bundle.cjs, where this module's URL is the bundle's), under store/sqlite.
 */
export function startCheckpointer(file: string): Worker {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith(".ts")) {
    const tsx = createRequire(here).resolve("tsx/cjs");
    const entry = join(dirname(here), "sqlite-checkpointer.cts");
    return new Worker(`require(${JSON.stringify(tsx)}); require(${JSON.stringify(entry)});`, { eval: true, workerData: { file } });
  }
  const candidates = [join(dirname(here), "sqlite-checkpointer.cjs"), join(dirname(here), "store", "sqlite", "sqlite-checkpointer.cjs")];
  const entry = candidates.find((f) => existsSync(f)) ?? candidates[0]!;
  return new Worker(entry, { workerData: { file } });
}

export function sqliteCheckpoints(db: Database.Database, options: CheckpointsOptions = {}): Checkpoints {
  const warn = options.warn ?? (() => {});
  const startWorker = options.startWorker ?? startCheckpointer;
  // A log frame is a page and its 24-byte header; the file starts with a 32-byte header.
  const pageSize = db.pragma("page_size", { simple: true }) as number;
  const limit = 32 + AUTOCHECKPOINT_PAGES * (pageSize + 24);
  const cap = CAP_FACTOR * limit;
  db.pragma("wal_autocheckpoint = 0");
  db.pragma(`journal_size_limit = ${limit}`);

  let fd: number | undefined;
  /** The thread checkpoints are asked of: none before the first, after a fallback or close(). */
  let worker: Worker | undefined;
  /** The thread last started, until it has ended (close() stops it and waits for its end). */
  let alive: Worker | undefined;
  let exited: Promise<void> | undefined;
  let asked = false;
  let fallenBack = false;
  let closed = false;
  let checkedAt = 0;
  /** A checkpoint failed and none has succeeded since: warned of once. */
  let failing = false;
  const checkpointFailed = (error: { code?: unknown; message?: unknown }) => {
    if (failing) return;
    failing = true;
    warn("a checkpoint of the embedded store's log failed; the log keeps its frames and the checkpoint is tried again as it grows", {
      error: `${String(error.message ?? error)} (${String(error.code ?? "error")})`,
    });
  };

  const fallBack = (reason: string, error?: unknown) => {
    if (fallenBack || closed) return;
    fallenBack = true;
    // A thread still running (what failed was this side: a read of the log's size, a checkpoint
    // past the cap) is stopped after the checkpoint under way, so that its connection does not
    // stay open beside this one; close() still waits for its end.
    worker?.postMessage("close");
    worker = undefined;
    asked = false;
    if (db.open) db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
    warn("the embedded store's checkpointer thread " + reason + "; the log is checkpointed on the event loop instead (SQLite's automatic checkpoint)", {
      // A thread's error may arrive as a plain object (its message kept, not its class).
      ...(error !== undefined && { error: error instanceof Error ? error.message : String((error as { message?: unknown } | null)?.message ?? error) }),
    });
  };

  const ask = () => {
    if (!worker) {
      let started: Worker;
      try {
        started = startWorker(db.name);
      } catch (error) {
        fallBack("could not start", error);
        return;
      }
      worker = alive = started;
      started.on("message", (done: CheckpointDone) => {
        if (worker !== started) return;
        asked = false;
        if (done.error) checkpointFailed(done.error);
        else failing = false;
      });
      started.on("error", (error) => {
        if (worker === started) fallBack("failed", error);
      });
      exited = new Promise((resolve) =>
        started.once("exit", (code) => {
          if (worker === started) fallBack(`stopped (exit code ${code})`);
          if (alive === started) alive = undefined;
          resolve();
        }),
      );
      // After the listeners: a thread's first "message" listener refs it again, which would keep
      // a process that has nothing else to do alive.
      started.unref();
    }
    asked = true;
    worker.postMessage("checkpoint");
  };

  return {
    committed(changes) {
      if (fallenBack || closed || changes - checkedAt < CHECK_EVERY_ROWS) return;
      checkedAt = changes;
      // Called after a commit, inside the call that made it: what fails here must not fail the call.
      try {
        fd ??= openSync(`${db.name}-wal`, "r");
        const size = fstatSync(fd).size;
        // One checkpoint at a time: while the thread runs one, a checkpoint here would find the
        // checkpoint lock taken and do nothing.
        if (size <= limit || asked) return;
        if (size > cap) {
          db.pragma("wal_checkpoint(PASSIVE)");
          failing = false;
        } else ask();
      } catch (error) {
        // A checkpoint here that met a full disk: tried again at the next check, as the thread's.
        if (meansFull(error)) checkpointFailed(error as Error);
        else fallBack("could not be asked", error);
      }
    },
    async close() {
      closed = true;
      worker = undefined;
      const stopping = alive;
      if (stopping) {
        // Kept alive until it has ended: close() is awaited.
        stopping.ref();
        stopping.postMessage("close");
        await exited;
      }
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
