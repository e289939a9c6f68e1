// The embedded store's checkpointer: a worker thread (started by sqlite-checkpoints.ts the first
// time the log needs a checkpoint) that copies the write-ahead log into the database file on a
// connection of its own, so that the event loop never runs a checkpoint's writes and syncs.
// CommonJS, compiled by tsc beside the store's modules (dist/src/store/sqlite/), and loaded as
// it is at run time: the service's bundle does not hold it. It requires better-sqlite3 from
// node_modules, as the store does.
//
// Messages: "checkpoint" runs one (answered with its result), "close" closes the connection and
// lets the thread end. One message is handled at a time, so a "close" sent while a checkpoint
// runs waits for it.
import { parentPort, workerData } from "node:worker_threads";
import Database = require("better-sqlite3");

interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

/** What the thread answers a "checkpoint" with. */
export interface CheckpointDone {
  /** PASSIVE checkpoints run for this request (each after the last found new frames). */
  runs: number;
  /** The last one's: frames in the log, frames copied into the database file so far, busy. */
  log: number;
  checkpointed: number;
  busy: boolean;
  /**
   * The checkpoint failed, for whatever reason (SQLITE_FULL, the database file could not grow on
   * a full disk, is the one expected; an I/O error is reported the same way): its SQLite code and
   * message. The thread stays: the next request tries again, and succeeds once
   * space is back. What the log holds stays in the log; nothing is lost.
   */
  error?: { code: string; message: string };
}

/** At most this many checkpoints in a row for one request (see below). */
const RUNS_PER_REQUEST = 4;

const port = parentPort!;
const db = new Database((workerData as { file: string }).file);
// synchronous=NORMAL (a new connection's default is FULL, which only adds syncs to commits, and
// this connection commits nothing): a checkpoint fsyncs the log before it copies frames into the
// database file, and fsyncs the database file before it records the frames as copied, which is
// what lets a writer start the log over. So at every moment each committed page is in the synced
// log or in the synced database file, and a power cut loses nothing it would not have lost
// without checkpoints.
db.pragma("synchronous = NORMAL");

/**
 * PASSIVE checkpoints: they copy what the log holds without taking the write lock, so the
 * service's commits go on meanwhile, and a checkpoint that finds another one running (another
 * process's checkpointer on the same file, TESSERA_WORKERS) does nothing and says busy. The log
 * starts over only when a writer begins a transaction with every frame copied; frames committed
 * while a checkpoint ran are left for the next, so it runs again, each run shorter than the last,
 * until one finds nothing new (the log is all copied: the next commit starts it over), or it is
 * busy, or after RUNS_PER_REQUEST runs (the service keeps asking while the log stays long).
 */
function checkpoint(): CheckpointDone {
  let runs = 0;
  let previous = -1;
  let result: CheckpointResult = { busy: 0, log: 0, checkpointed: 0 };
  while (runs < RUNS_PER_REQUEST) {
    result = (db.pragma("wal_checkpoint(PASSIVE)") as CheckpointResult[])[0]!;
    runs++;
    if (result.busy !== 0 || (result.checkpointed === result.log && result.log === previous)) break;
    previous = result.log;
  }
  return { runs, log: result.log, checkpointed: result.checkpointed, busy: result.busy !== 0 };
}

port.on("message", (message: unknown) => {
  if (message === "checkpoint") {
    let done: CheckpointDone;
    try {
      done = checkpoint();
    } catch (error) {
      const code = String((error as { code?: unknown }).code ?? "error");
      done = { runs: 0, log: 0, checkpointed: 0, busy: false, error: { code, message: (error as Error).message ?? String(error) } };
    }
    port.postMessage(done);
  } else if (message === "close") {
    db.close();
    port.close();
  }
});
