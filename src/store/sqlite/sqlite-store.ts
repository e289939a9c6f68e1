import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type Database from "better-sqlite3";
import { StoreUnavailableError, type Store, type StoreFailures } from "../ports.js";
import { sqliteApiTokens } from "./sqlite-api-tokens.js";
import { sqliteAuditEvents } from "./sqlite-audit-events.js";
import { sqliteAuthTokens } from "./sqlite-auth-tokens.js";
import { sqliteCheckpoints, type CheckpointsOptions } from "./sqlite-checkpoints.js";
import { sqliteCalls, type SqliteCallsOptions } from "./sqlite-durability.js";
import { mapSqliteError, meansFull } from "./sqlite-errors.js";
import { sqliteJwtRefreshTokens } from "./sqlite-jwt-refresh-tokens.js";
import { sqliteLoginAttempts } from "./sqlite-login-attempts.js";
import { sqliteRefreshTokens } from "./sqlite-refresh-tokens.js";
import { sqliteSessions } from "./sqlite-sessions.js";
import { sqliteSigningKeys } from "./sqlite-signing-keys.js";
import { sqliteUserTokens } from "./sqlite-user-tokens.js";
import { sqliteUsers } from "./sqlite-users.js";
import { migrate } from "./schema.js";

export const SQLITE_FILE_NAME = "tessera.db";

export interface SqliteStoreOptions {
  /** Where start-up warnings go (a data directory or file others can read). */
  warn?: (message: string, fields?: Record<string, unknown>) => void;
  /** fs.fsync of the WAL, replaceable (tests). */
  fsync?: SqliteCallsOptions["fsync"];
  /** Where a failed fsync of the WAL or a full disk is reported, and another process's heard of. */
  failures?: StoreFailures;
  /** Starts the thread that checkpoints the log, replaceable (tests). */
  startCheckpointer?: CheckpointsOptions["startWorker"];
}

/**
 * The database holds password hashes, token hashes and (unless TESSERA_KEY_ENCRYPTION_KEY seals
 * them) private signing keys: only the service's user may read it. The directory is created
 * 0700 and the database file 0600 before SQLite opens it (SQLite gives its -wal and -shm files
 * the database file's mode). A directory or file that already exists keeps its mode — an
 * operator may have reasons — but a mode that lets others in is reported.
 */
function createPrivately(dataDir: string, file: string): void {
  try {
    makeDirectory(dataDir);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? "error";
    throw new Error(`TESSERA_DATA_DIR: cannot create the directory ${dataDir} (${code})`, { cause });
  }
  // mkdir answers EEXIST for a file as for a directory: the file's open below then failed with
  // ENOTDIR naming tessera.db, not the variable.
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dataDir).isDirectory();
  } catch (cause) {
    // A link to nothing (mkdir saw the link and answered EEXIST).
    throw new Error(`TESSERA_DATA_DIR: cannot use the directory ${dataDir} (${(cause as NodeJS.ErrnoException).code ?? "error"})`, { cause });
  }
  if (!isDirectory) throw new Error(`TESSERA_DATA_DIR: ${dataDir} is not a directory`);
  try {
    closeSync(openSync(file, "wx", 0o600));
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? "error";
    if (code !== "EEXIST") throw new Error(`TESSERA_DATA_DIR: cannot create the database ${file} (${code})`, { cause });
  }
  // A directory (or a socket, a device) where the database should be: SQLite said only "unable
  // to open database file".
  if (existsSync(file) && !statSync(file).isFile()) throw new Error(`TESSERA_DATA_DIR: ${file} is not a file`);
}

/**
 * mkdir -p, each directory made 0700. Not mkdirSync's `recursive`: in Node 20 it retries forever,
 * on the event loop, a directory whose mkdir answers ENOENT while its parent exists (a path
 * under /proc or /sys).
 */
function makeDirectory(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return;
    const parent = dirname(dir);
    if (code !== "ENOENT" || parent === dir) throw error;
    makeDirectory(parent);
    mkdirSync(dir, { mode: 0o700 });
  }
}

/**
 * SQLite opens a database file it may not write read-only, without a word: the store would start,
 * answer reads and report ready, and refuse every write (a login's counters included) as
 * UNAVAILABLE. Refuse to start instead, naming the file.
 */
function requireWritable(file: string): void {
  try {
    accessSync(file, constants.W_OK);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? "error";
    throw new Error(`the embedded store's database ${file} is not writable by this process (${code}): check its owner and mode, and that its file system is not read-only`, { cause });
  }
}

function reportWideModes(paths: string[], warn: NonNullable<SqliteStoreOptions["warn"]>): void {
  for (const path of paths) {
    let mode: number;
    try {
      mode = statSync(path).mode & 0o777;
    } catch {
      continue; // not there (yet)
    }
    if ((mode & 0o077) !== 0) {
      warn("the embedded store is readable or writable by other users than its owner; restrict it (chmod 700 on the directory, 600 on the files)", {
        path,
        mode: `0${mode.toString(8)}`,
      });
    }
  }
}

/**
 * Makes what the log holds at start-up durable in the database file before this process
 * acknowledges a write: a TRUNCATE checkpoint copies every frame into the database file, syncs
 * it, and empties the log, so the next commit starts a new log. Without it, after a failed
 * fsync and a restart without a reboot, frames whose writeback failed may still read back from
 * the page cache (marked clean): recovery keeps them, new commits are appended after them and
 * their own fsyncs succeed, and a power cut then loses those acknowledged commits with the bad
 * frames (recovery stops at the first frame that does not read back whole). Every process on
 * the file runs it as it opens, unless the log is empty or absent then (logBytesOf); after the
 * first, the log is empty or holds only frames synced
 * by live processes, and the checkpoint costs next to nothing. It holds the write lock while it
 * waits for other processes' readers to leave the log, so it waits at most CHECKPOINT_WAIT_MS:
 * a checkpoint still busy then (another process reading at length) is reported, not fatal.
 *
 * On a full disk the checkpoint cannot copy the log into the database file (meansFull: the file
 * must grow). That does not stop the start either (a worker replaced, the service restarted on a
 * full disk, would otherwise exit and be started again until space is back): it answers the
 * error, and the store takes no write until the checkpoint has run (openSqliteStore: it is
 * tried again every second, and by each readiness probe), so nothing is still appended after
 * the log it found.
 */
function checkpointAtStart(db: Database.Database, warn: NonNullable<SqliteStoreOptions["warn"]>): unknown {
  db.pragma(`busy_timeout = ${CHECKPOINT_WAIT_MS}`);
  try {
    const [result] = db.pragma("wal_checkpoint(TRUNCATE)") as Array<{ busy: number; log: number; checkpointed: number }>;
    if (result !== undefined && result.busy !== 0) {
      warn("the embedded store's start-up checkpoint of its log was busy (another process on the database); starting without it", {
        framesInLog: result.log,
        framesCheckpointed: result.checkpointed,
      });
    }
    return undefined;
  } catch (error) {
    if (meansFull(error)) return error;
    throw error;
  } finally {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  }
}

/** The database header's "file format write version" (byte 18): 2 in WAL mode, 1 in rollback-journal mode. */
const HEADER_WRITE_VERSION = 18;
/** A log's own header: a log longer than that holds frames. */
const WAL_HEADER_BYTES = 32;

/**
 * Refuses a log that holds frames beside a database that is not in WAL mode: a copy put in the
 * database's place (a restore; `npm run backup` writes it in rollback-journal mode, as VACUUM
 * INTO does) with the log of the database it replaced left beside it (its service killed rather
 * than stopped). SQLite reads a log it finds beside a database whatever its header says, and
 * would lay the replaced database's pages over the copy's, a mix of the two (the start-up
 * checkpoint then writes them into the copy for good). That log was never the file's own: SQLite
 * records WAL mode in the header (2) before it writes a log, and deletes the log before it
 * records rollback-journal mode (1) again.
 */
function refuseForeignLog(file: string, logBytes: number): void {
  // The log first (logBytes), then the header: a process of this service opening the copy at the
  // same time records WAL mode before its log holds a frame, so a log seen with frames is seen with it.
  if (logBytes <= WAL_HEADER_BYTES) return;
  const header = Buffer.alloc(100);
  const fd = openSync(file, "r");
  let read: number;
  try {
    read = readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  if (read < header.length || header.toString("latin1", 0, 16) !== "SQLite format 3\0" || header[HEADER_WRITE_VERSION] !== 1) return;
  throw new Error(
    `the embedded store's database ${file} is not in WAL mode (a copy put in its place, as a restore does), but ${file}-wal beside it holds a log: the replaced database's, which SQLite would write into it; delete ${file}-wal and ${file}-shm, then start again`,
  );
}

/**
 * The size of the database's log as the store opens, 0 when there is none: more than that, a log
 * left by an earlier process or written by a live one (checkpointAtStart's concern; one holding
 * frames beside a database not in WAL mode, refuseForeignLog's). A new database (the first start)
 * has none, nor has one whose last process closed cleanly (SQLite removes the log then).
 */
function logBytesOf(file: string): number {
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0; // not there
  }
}

/** How long a statement waits for another process's lock on the file (a second instance, a CLI). */
export const BUSY_TIMEOUT_MS = 5000;
/** How long the start-up checkpoint may hold the write lock waiting for other processes. */
const CHECKPOINT_WAIT_MS = 1000;
/**
 * How often a start-up checkpoint owed for a full disk is tried again (besides each readiness
 * probe): a failed try costs what the log could copy before the disk refused.
 */
const OWED_CHECKPOINT_RETRY_MS = 1000;

/**
 * better-sqlite3 and its native addon, loaded when an embedded store opens (as the MongoDB driver
 * is when a MongoDB store opens, mongo-driver.ts): a process on MongoDB never loads them.
 */
let sqlite: typeof Database | undefined;
async function loadSqlite(): Promise<typeof Database> {
  return (sqlite ??= (await import("better-sqlite3")).default);
}

/**
 * Opens (creating if needed) `${dataDir}/tessera.db`.
 *
 * Durability: WAL with synchronous=NORMAL, and a write answered only once an fsync of the WAL
 * made after its commit has returned, off the event loop and shared by the writes of its moment
 * (see sqlite-durability.ts): an acknowledged write survives a power cut or an OS crash, not
 * only a kill of the process. Checkpoints of the log run on a worker thread started when the log
 * first needs one (sqlite-checkpoints.ts), so no request waits on the disk on the event loop but
 * for the sync of a new log's header, which SQLite makes in the first commit after each
 * checkpoint. After a failed
 * fsync the store refuses every write until the process restarts (failure() says why; reads
 * still answer), and so does every worker on the file once `failures` has told it; a full disk
 * is told the same way, and ends in each worker with its own probe's write. A process's first
 * probe makes that write too, so one started on a full disk (told nothing) reports it. What the
 * log holds as it opens is checkpointed first (checkpointAtStart; on a full disk, before the
 * first write instead).
 */
export async function openSqliteStore(dataDir: string, options: SqliteStoreOptions = {}): Promise<Store> {
  const Sqlite = await loadSqlite();
  let db: Database.Database;
  let checkpoints: ReturnType<typeof sqliteCheckpoints>;
  /** The start-up checkpoint's error when it met a full disk: it is owed, and no write is taken until it has run. */
  let owed: unknown;
  const warn = options.warn ?? (() => {});
  const file = join(dataDir, SQLITE_FILE_NAME);
  try {
    createPrivately(dataDir, file);
    requireWritable(file);
    const logBytes = logBytesOf(file);
    refuseForeignLog(file, logBytes);
    const logLeft = logBytes > 0;
    db = new Sqlite(file);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    // Another process on the same file (a second instance, a CLI) waits instead of failing at once.
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma("foreign_keys = ON");
    migrate(db);
    // A log empty or absent as the file opened holds only what this process has just written
    // (the migrations of a new database), which the sync below makes durable: nothing to copy.
    if (logLeft) owed = checkpointAtStart(db, warn);
    const cps = (checkpoints = sqliteCheckpoints(db, {
      ...(options.warn !== undefined && { warn: options.warn }),
      ...(options.startCheckpointer !== undefined && { startWorker: options.startCheckpointer }),
    }));
    sqliteCalls(db, {
      committed: (changes) => cps.committed(changes),
      ...(options.fsync !== undefined && { fsync: options.fsync }),
      ...(options.failures !== undefined && { failed: (error: StoreUnavailableError) => options.failures!.failed(error) }),
      ...(options.failures?.full !== undefined && { full: () => options.failures!.full!() }),
    }).syncNow();
    reportWideModes([dataDir, file, `${file}-wal`, `${file}-shm`], warn);
  } catch (error) {
    // A file that is not a database (SQLite said only "file is not a database", naming none).
    if ((error as { code?: unknown }).code === "SQLITE_NOTADB") {
      throw new Error(`TESSERA_DATA_DIR: ${file} is not a SQLite database (SQLITE_NOTADB)`, { cause: error });
    }
    // A database SQLite finds damaged as it opens (a copy cut short: its header counts more pages
    // than the file holds), said of no file either.
    const code = String((error as { code?: unknown }).code);
    if (code.startsWith("SQLITE_CORRUPT")) {
      throw new Error(`TESSERA_DATA_DIR: ${file} is damaged: ${(error as Error).message} (${code})`, { cause: error });
    }
    const mapped = mapSqliteError(error);
    if (mapped instanceof StoreUnavailableError) throw mapped;
    throw error;
  }
  const ping = db.prepare("SELECT 1");
  // A commit that changes no row: the database header's application id written again with its
  // own value. It appends a page to the log, so it fails with SQLITE_FULL while the disk is full
  // (or SQLITE_IOERR_SHMSIZE when that page needs the log's index to grow).
  const applicationId = db.pragma("application_id", { simple: true }) as number;
  const probeWrite = db.prepare(`PRAGMA application_id = ${Number(applicationId)}`);
  const { call, synced, close, failure, fail, full, notFull, fill, hold } = sqliteCalls(db);
  const auditEvents = sqliteAuditEvents(db);
  options.failures?.listen(fail);
  options.failures?.listenFull?.(fill);
  /** Runs the owed start-up checkpoint (throws while the disk is still full); then takes writes again. */
  const payOwed = () => {
    if (owed === undefined) return;
    const error = checkpointAtStart(db, warn);
    if (error !== undefined) throw error;
    owed = undefined;
    hold();
  };
  /** While the checkpoint is owed, it is tried every OWED_CHECKPOINT_RETRY_MS, probes or none. */
  let retrying: NodeJS.Timeout | undefined;
  const stopRetrying = () => {
    if (retrying !== undefined) clearInterval(retrying);
    retrying = undefined;
  };
  if (owed !== undefined) {
    const refusal = mapSqliteError(owed) as StoreUnavailableError;
    warn("the embedded store's start-up checkpoint of its log met a full disk; it takes no write until the checkpoint has run (tried every second, and by each readiness probe)", {
      error: refusal.message,
    });
    hold(refusal);
    // Without it, a process that nothing probes (no readiness checks configured) would refuse
    // every write for good, space back or not.
    retrying = setInterval(() => {
      if (owed === undefined || failure() !== undefined || !db.open) return stopRetrying();
      call(payOwed).then(stopRetrying, () => {});
    }, OWED_CHECKPOINT_RETRY_MS);
    retrying.unref();
  }
  // Whether a write of this process has been seen to commit (ping()'s probe). Until then the store
  // is not known to take writes: a process started on a full disk (a worker replaced, the service
  // restarted) has met no refusal of its own and heard no other worker's (news is not kept), and
  // its first write may be long in coming. So its first probe tries a write, as a full store's do,
  // and tells the other workers if the disk refuses it.
  let proven = false;

  return {
    kind: "sqlite",
    users: sqliteUsers(db),
    sessions: sqliteSessions(db),
    refreshTokens: sqliteRefreshTokens(db),
    apiTokens: sqliteApiTokens(db),
    userTokens: sqliteUserTokens(db),
    authTokens: sqliteAuthTokens(db),
    jwtRefreshTokens: sqliteJwtRefreshTokens(db),
    keys: sqliteSigningKeys(db),
    loginAttempts: sqliteLoginAttempts(db),
    auditEvents,
    ping: () => {
      const failed = failure();
      if (failed) return Promise.reject(failed);
      return call(() => {
        // The start-up checkpoint is owed (it met a full disk): it runs before any write here.
        payOwed();
        // Not yet proven, or the last write here, or another process's (`failures` told), met a
        // full disk: ready again once a write commits (space is back).
        if (full() || !proven) {
          probeWrite.run();
          notFull();
          proven = true;
        }
        ping.get();
      });
    },
    failure,
    close: async () => {
      stopRetrying();
      if (!db.open) return;
      auditEvents.flush();
      // What was committed is on disk before the connection goes (and the WAL with it).
      await synced().catch(() => {});
      // The checkpointer's connection closes first (after the checkpoint under way, if any), so
      // this one is the file's last in this process.
      await checkpoints.close();
      db.close();
      await close();
    },
  };
}
