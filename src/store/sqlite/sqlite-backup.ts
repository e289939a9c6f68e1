// An online backup of the embedded store (`npm run backup -- <file>`, src/backup.ts): a
// consistent copy of tessera.db taken while the service runs and writes, from any number of
// processes (TESSERA_WORKERS). Copying the file itself is not one: committed pages may still be in
// the -wal file only, and a copy made during a checkpoint is torn.
//
// The copy is SQLite's VACUUM INTO, on a read-only connection of its own (nothing it does writes
// the live database). It reads in one read transaction, which in WAL mode is a snapshot: the
// database as of the last commit before it began, whatever part of it is still in the -wal file.
// Writers of every process go on meanwhile (their commits are not in the copy), and it never
// starts over. Measured against better-sqlite3's db.backup() (SQLite's online backup API), on a
// 47 MiB database that another process wrote one row per commit:
//
//   VACUUM INTO                                       0.4 to 0.7 s, whatever the writer did
//   db.backup(), 100 pages a step (its default)       not finished after 20 s: it starts over
//                                                     after every commit of another connection
//                                                     (383 times at 20 commits/s, 16310 with
//                                                     commits back to back)
//   db.backup(), every page in one step               0.2 to 0.5 s, but it copies pages as they
//                                                     are, free ones included, which keep what
//                                                     deleted rows held (secure_delete is off):
//                                                     password hashes since changed, say
//
// VACUUM INTO writes the live rows only, compacted. The destination's directory, and each one
// above it, must be one no other user (root aside) may rename or delete files in
// (unsharedDirectory), and the copy is written by that directory's real path. The copy is written to a temporary file beside the destination
// (created 0600: it holds password hashes, and private signing keys unless
// TESSERA_KEY_ENCRYPTION_KEY sealed them), checked (PRAGMA integrity_check, its schema
// version read), synced, and linked to the destination's name (on a file system without hard
// links, that name made exclusively and the copy renamed over it), which fails if a file took that
// name meanwhile: a backup never replaces a file, and a destination that exists is the whole
// backup, never part of one. `npm run backup` writes the copy on a worker thread (startSqliteBackup),
// so that a signal meanwhile is answered: the thread is told to stop, and the temporary file is
// deleted once it has ended.
import { randomBytes } from "node:crypto";
import { closeSync, fchmodSync, fsyncSync, linkSync, lstatSync, openSync, realpathSync, renameSync, rmSync, statSync, type Stats } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, extname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { recordedSchemaVersion } from "./schema.js";
import { BUSY_TIMEOUT_MS, SQLITE_FILE_NAME } from "./sqlite-store.js";

/** A backup refused or failed, with what to tell the operator. */
export class BackupError extends Error {
  override name = "BackupError";
}

export interface SqliteBackup {
  /** The database copied (absolute). */
  readonly source: string;
  /** The copy (absolute). */
  readonly destination: string;
  /** The copy's schema version (schema_version, src/store/sqlite/schema.ts). */
  readonly schemaVersion: number;
  readonly bytes: number;
}

function alreadyExists(target: string, cause?: unknown): BackupError {
  return new BackupError(`${target} already exists: a backup is never written over a file; name a new one`, { cause });
}

function errorCode(error: unknown): string {
  return String((error as { code?: unknown }).code ?? "error");
}

/** The file's status, undefined when nothing is there (a link to nothing is something). */
function statusOf(path: string, stat: (path: string) => Stats): Stats | undefined {
  try {
    return stat(path);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw new BackupError(`cannot look at ${path} (${errorCode(error)})`, { cause: error });
  }
}

/** What an error of SQLite's while copying or checking means, said of `source` and `directory`. */
function sqliteFailure(error: unknown, source: string, directory: string): Error {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code === "SQLITE_BUSY") {
    return new BackupError(`the database ${source} stayed locked by another process for ${BUSY_TIMEOUT_MS / 1000} s (SQLITE_BUSY): try again`, { cause: error });
  }
  if (code === "SQLITE_NOTADB") return new BackupError(`${source} is not a SQLite database (SQLITE_NOTADB)`, { cause: error });
  if (code === "SQLITE_FULL") return new BackupError(`no space left in ${directory} for the copy (SQLITE_FULL)`, { cause: error });
  if (code.startsWith("SQLITE_")) return new BackupError(`copying ${source} failed: ${message} (${code})`, { cause: error });
  return error instanceof Error ? error : new Error(message);
}

/** fsync of a file or a directory (the directory: so that the name given to the copy survives a power cut). */
function sync(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether `target` is `<database>-<anything>` in the database's own directory: SQLite's names for
 * the files it keeps beside it. A copy named tessera.db-journal would be taken for a hot journal
 * and deleted by the service's next start; tessera.db-wal and tessera.db-shm are created by the
 * copy's own read (and would be read as the database's log and index).
 */
function besideDatabase(source: string, target: string): boolean {
  if (!basename(target).startsWith(`${basename(source)}-`)) return false;
  try {
    return realpathSync(dirname(target)) === realpathSync(dirname(source));
  } catch {
    return false;
  }
}

/**
 * Refuses a directory, or one above it, in which a user other than this process's and root may
 * rename or delete files: owned by another user, or writable by its group or others without the
 * sticky bit. Such a user could replace the copy's temporary file (or the directory it is in) with
 * a link between its creation and SQLite's open, and VACUUM INTO writes through a link to an empty
 * file: the copy (password hashes, token hashes, private signing keys) would be written into a
 * file of theirs, and then linked to the destination's name. Nothing else here can stop that:
 * SQLite opens the temporary file by its name. Returns the directory's real path, the one
 * checked: the copy is written there, not through a link on the path given (which a user who
 * may change the directory holding the link could point elsewhere after this check).
 */
function unsharedDirectory(directory: string): string {
  let real: string;
  try {
    real = realpathSync(directory);
  } catch (error) {
    throw new BackupError(`cannot look at ${directory} (${errorCode(error)})`, { cause: error });
  }
  const uid = process.geteuid?.();
  if (uid === undefined) return real; // no POSIX owners (Windows)
  let path = real;
  for (;;) {
    const status = statusOf(path, lstatSync);
    if (status === undefined) throw new BackupError(`the directory ${path} does not exist`);
    const othersRename = (status.mode & 0o022) !== 0 && (status.mode & 0o1000) === 0;
    if ((status.uid !== 0 && status.uid !== uid) || othersRename) {
      throw new BackupError(
        `${path} may be changed by users other than this one and root (owner ${status.uid}, mode 0${(status.mode & 0o7777).toString(8)}): another user could put a link where the copy is written; write it to a directory only this user or root can change`,
      );
    }
    const parent = dirname(path);
    if (parent === path) return real;
    path = parent;
  }
}

/** The schema version a database records, or why it records none. */
function checkCopy(copy: string, source: string): number {
  const db = new Database(copy, { readonly: true, fileMustExist: true });
  try {
    const result = db.pragma("integrity_check") as Array<{ integrity_check: string }>;
    if (result.length !== 1 || result[0]!.integrity_check !== "ok") {
      throw new BackupError(`the copy of ${source} did not pass PRAGMA integrity_check: ${result.map((r) => r.integrity_check).join("; ")}`);
    }
    let version: number | null;
    try {
      version = recordedSchemaVersion(db);
    } catch (error) {
      if (!/no such table/.test(String((error as Error).message))) throw error;
      version = null;
    }
    if (version === null) throw new BackupError(`${source} records no schema version: it is not the embedded store's database, or one still being created`);
    return version;
  } finally {
    db.close();
  }
}

/** The longest file name (in bytes) Linux's file systems take (NAME_MAX). */
const NAME_MAX = 255;

/**
 * `.<name>.<random>.tmp`, `name` cut (by whole characters) where the whole, with "-journal" after
 * it (the name of the journal SQLite makes beside it while it writes the copy), would be longer
 * than NAME_MAX: a destination named with the longest name its directory takes is written too.
 */
function temporaryName(name: string): string {
  const tail = `.${randomBytes(4).toString("hex")}.tmp`;
  const characters = Array.from(`.${name}`);
  while (Buffer.byteLength(`${characters.join("")}${tail}-journal`) > NAME_MAX) characters.pop();
  return characters.join("") + tail;
}

/** What a backup writes where: the checks passed, its temporary file made. */
export interface BackupPlan {
  readonly source: string;
  /** The destination as given (absolute). */
  readonly target: string;
  /** The destination's directory as given, and by its real path (checked). */
  readonly directory: string;
  readonly checked: string;
  /** The destination by the real path of its directory: the name the copy is linked to. */
  readonly final: string;
  /** The copy's temporary file, beside it (created empty, 0600). */
  readonly temporary: string;
}

/**
 * Checks what `backUpSqliteStore` checks and makes the copy's temporary file. Throws BackupError
 * with the reason when there is no database, or the destination exists or its directory cannot
 * take it; nothing is left then.
 */
export function planBackup(dataDir: string, destination: string): BackupPlan {
  const source = resolve(dataDir, SQLITE_FILE_NAME);
  const sourceStatus = statusOf(source, statSync);
  if (sourceStatus === undefined) throw new BackupError(`no database at ${source} (TESSERA_DATA_DIR): nothing to back up`);
  if (!sourceStatus.isFile()) throw new BackupError(`${source} is not a file`);
  const target = resolve(destination);
  if (besideDatabase(source, target)) {
    throw new BackupError(
      `${target} is a name SQLite gives a file beside the database (its rollback journal, log or shared memory): the service would delete or read it; name another`,
    );
  }
  const targetStatus = statusOf(target, lstatSync);
  if (targetStatus?.isDirectory()) throw new BackupError(`${target} is a directory: name the file to write`);
  if (targetStatus !== undefined) throw alreadyExists(target);
  const directory = dirname(target);
  const directoryStatus = statusOf(directory, statSync);
  if (directoryStatus === undefined) throw new BackupError(`the directory ${directory} does not exist`);
  if (!directoryStatus.isDirectory()) throw new BackupError(`${directory} is not a directory`);
  // Every file from here on is named by the real path checked, never through a link.
  const checked = unsharedDirectory(directory);
  const final = join(checked, basename(target));

  // VACUUM INTO writes into an empty file as into a new one, and keeps its mode.
  const temporary = join(checked, temporaryName(basename(target)));
  let fd: number;
  try {
    fd = openSync(temporary, "wx", 0o600);
  } catch (error) {
    // Nothing was made: a file already there by that name (another backup's) is not this one's to delete.
    throw new BackupError(`cannot write in the directory ${directory} (${errorCode(error)})`, { cause: error });
  }
  try {
    fchmodSync(fd, 0o600); // whatever the umask
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new BackupError(`cannot write in the directory ${directory} (${errorCode(error)})`, { cause: error });
  } finally {
    closeSync(fd);
  }
  return { source, target, directory, checked, final, temporary };
}

/**
 * Writes the copy into the plan's temporary file, checks it and syncs it; returns its schema
 * version, or undefined once `stopped` says so (asked before the copy, and between it and its
 * check: SQLite's VACUUM INTO is one call, which nothing interrupts). The long part of a backup,
 * and the part sqlite-backup-copier.ts runs off the main thread.
 */
export function copyDatabase(plan: BackupPlan, stopped: () => boolean = () => false): number | undefined {
  let schemaVersion: number;
  try {
    if (stopped()) return undefined;
    // The busy timeout bounds a wait for a lock: a reader in WAL mode waits only while another
    // process rebuilds the log's index (its first open after a crash). A migration, which holds
    // the write lock, is not waited for: the copy is the database as it was before it.
    const db = new Database(plan.source, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    try {
      db.prepare("VACUUM INTO ?").run(plan.temporary);
    } finally {
      db.close();
    }
    if (stopped()) return undefined;
    schemaVersion = checkCopy(plan.temporary, plan.source);
  } catch (error) {
    throw sqliteFailure(error, plan.source, plan.directory);
  }
  sync(plan.temporary);
  return schemaVersion;
}

/** Deletes the temporary file, and what SQLite may have made beside it while it read the copy. */
export function removeTemporary(plan: BackupPlan): void {
  for (const suffix of ["", "-journal", "-wal", "-shm"]) rmSync(`${plan.temporary}${suffix}`, { force: true });
}

/** What link(2) fails with on a file system that has no hard links (vfat, exFAT, some network and FUSE file systems). */
const NO_HARD_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV", "EMLINK"]);

/**
 * Gives the temporary file the plan's final name, never over a file: a hard link, or where the
 * file system has none, the name taken by an empty file made exclusively (O_EXCL), then the copy
 * renamed over it (a crash between the two leaves that empty file by the name).
 */
function claimName(plan: BackupPlan): void {
  try {
    linkSync(plan.temporary, plan.final);
    return;
  } catch (error) {
    if (errorCode(error) === "EEXIST") throw alreadyExists(plan.target, error);
    if (!NO_HARD_LINKS.has(errorCode(error))) throw new BackupError(`cannot name the copy ${plan.target} (${errorCode(error)})`, { cause: error });
  }
  try {
    closeSync(openSync(plan.final, "wx", 0o600));
  } catch (error) {
    if (errorCode(error) === "EEXIST") throw alreadyExists(plan.target, error);
    throw new BackupError(`cannot name the copy ${plan.target} (${errorCode(error)})`, { cause: error });
  }
  try {
    renameSync(plan.temporary, plan.final);
  } catch (error) {
    rmSync(plan.final, { force: true });
    throw new BackupError(`cannot name the copy ${plan.target} (${errorCode(error)})`, { cause: error });
  }
}

/** Gives the checked copy its name (never over a file), deletes the temporary file, syncs the directory. */
function nameCopy(plan: BackupPlan, schemaVersion: number): SqliteBackup {
  try {
    claimName(plan);
  } finally {
    removeTemporary(plan);
  }
  sync(plan.checked);
  return { source: plan.source, destination: plan.target, schemaVersion, bytes: statSync(plan.final).size };
}

/**
 * Copies `${dataDir}/tessera.db` to `destination` (a new file), online. Throws BackupError with
 * the reason when there is no database, the destination exists or its directory cannot take it,
 * the database stays locked past the busy timeout, or the copy does not check out; nothing is
 * left at the destination then.
 */
export function backUpSqliteStore(dataDir: string, destination: string): SqliteBackup {
  const plan = planBackup(dataDir, destination);
  let schemaVersion: number;
  try {
    schemaVersion = copyDatabase(plan)!;
  } catch (error) {
    removeTemporary(plan);
    throw error;
  }
  return nameCopy(plan, schemaVersion);
}

/** A backup under way whose copy is written off the main thread (`npm run backup`). */
export interface RunningBackup {
  /** Its temporary file. */
  readonly temporary: string;
  /** The backup written, or why not (as backUpSqliteStore throws). */
  readonly done: Promise<SqliteBackup>;
  /**
   * Gives the backup up (a signal came): the copy is never named; the copy's thread is told to
   * stop, and once it has ended (it finishes the SQLite call under way: the copy itself, or a
   * wait for a lock of up to the busy timeout), the temporary file is deleted; then resolves
   * true. Resolves false when too late: the copy has already been named (`done` resolves).
   */
  abandon(): Promise<boolean>;
}

/**
 * backUpSqliteStore with the copy (VACUUM INTO, the check, the sync: the long part, seconds on a
 * large database, and code that holds the thread until it returns) on a worker thread, so that
 * the main thread can answer a signal meanwhile (abandon). Checks and the temporary file are made
 * before it returns (throws as backUpSqliteStore does); the copy is named on the main thread, in
 * one turn of its event loop with the worker's answer, so a backup is either abandoned or named.
 */
export function startSqliteBackup(dataDir: string, destination: string): RunningBackup {
  const plan = planBackup(dataDir, destination);
  // Set to 1 when the backup is given up: the thread asks it between its steps. It is never
  // terminated: Worker.terminate() cannot stop SQLite's call, and better-sqlite3 then fails on
  // the dying thread (a fatal error that aborts the process).
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const workerData: CopierData = { plan, stop };
  const here = fileURLToPath(import.meta.url);
  const entry = join(dirname(here), `sqlite-backup-copier${extname(here)}`);
  // From the sources (tsx), the copier's .ts is loaded after registering tsx's ESM hook.
  const copier =
    extname(here) === ".ts"
      ? new Worker(
          `import(${JSON.stringify(tsxEsmApi(here))}).then((tsx) => tsx.register()).then(() => import(${JSON.stringify(pathToFileURL(entry).href)}));`,
          { eval: true, workerData },
        )
      : new Worker(entry, { workerData });
  let state: "copying" | "abandoned" | "named" = "copying";
  const ended = new Promise<void>((resolve) => copier.once("exit", () => resolve()));
  let abandoned: Promise<boolean> | undefined;
  const done = new Promise<SqliteBackup>((resolve, reject) => {
    copier.once("message", (answer: CopierAnswer) => {
      if (state === "abandoned" || "stopped" in answer) return;
      if ("failed" in answer) {
        removeTemporary(plan);
        state = "abandoned";
        reject(answer.backup ? new BackupError(answer.failed) : new Error(answer.failed));
        return;
      }
      state = "named";
      try {
        resolve(nameCopy(plan, answer.schemaVersion));
      } catch (error) {
        reject(error);
      }
    });
    copier.once("error", (error) => {
      if (state !== "copying") return;
      state = "abandoned";
      void ended.then(() => removeTemporary(plan));
      reject(error);
    });
    copier.once("exit", (exitCode) => {
      if (state !== "copying") return;
      state = "abandoned";
      removeTemporary(plan);
      reject(new BackupError(`the copy's thread ended without an answer (exit code ${exitCode})`));
    });
  });
  return {
    temporary: plan.temporary,
    done,
    abandon() {
      if (state === "named") return Promise.resolve(false);
      abandoned ??= (async () => {
        state = "abandoned";
        Atomics.store(stop, 0, 1);
        await ended;
        removeTemporary(plan);
        return true;
      })();
      return abandoned;
    },
  };
}

/** What the copier thread is given: the plan, and the flag set when the backup is given up. */
export interface CopierData {
  plan: BackupPlan;
  stop: Int32Array;
}

/** What sqlite-backup-copier.ts answers: the copy's schema version, why there is no copy, or that it stopped as told. */
export type CopierAnswer = { schemaVersion: number } | { failed: string; backup: boolean } | { stopped: true };

/**
 * The URL of tsx's ESM API (tsx/esm/api, its "import" export), as resolved from `from`.
 * import.meta.resolve is not there when tsx runs this module as CommonJS (as under mocha), and
 * require's resolution finds the CommonJS build, whose register() does not load.
 */
function tsxEsmApi(from: string): string {
  const require = createRequire(from);
  const manifest = require.resolve("tsx/package.json");
  const exports = (require(manifest) as { exports: Record<string, { import: { default: string } }> }).exports;
  return pathToFileURL(join(dirname(manifest), exports["./esm/api"]!.import.default)).href;
}
