import { timeLeftMs } from "../../call-scope.js";
import { DeadlineExceededError, DuplicateError, StoreError, StoreUnavailableError } from "../ports.js";

// Column names (snake_case) of unique constraints -> the record field they guard.
const uniqueColumnToKey: Record<string, string> = {
  id: "id",
  login: "login",
  login_key: "login",
  hash: "hash",
  link: "link",
  jti: "jti",
  kid: "kid",
  generation: "generation",
  key: "key",
};

/** Turns a better-sqlite3 error into the store's error vocabulary. */
export function mapSqliteError(error: unknown): unknown {
  if (error instanceof StoreError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
    // Message: "UNIQUE constraint failed: users.login" — only the column name is kept, never a value.
    const match = /failed: \w+\.(\w+)/.exec((error as Error).message);
    const column = match?.[1] ?? "unknown";
    return new DuplicateError(uniqueColumnToKey[column] ?? column, { cause: error });
  }
  if (
    typeof code === "string" &&
    (code.startsWith("SQLITE_BUSY") ||
      code.startsWith("SQLITE_LOCKED") ||
      code.startsWith("SQLITE_IOERR") ||
      code === "SQLITE_FULL" ||
      code === "SQLITE_CANTOPEN" ||
      code === "SQLITE_READONLY")
  ) {
    return new StoreUnavailableError(`embedded store unavailable (${code})`, { cause: error, diskFull: meansFull(error) });
  }
  // better-sqlite3 throws TypeError("The database connection is not open") after close().
  if (error instanceof TypeError && /database connection is not open/.test(error.message)) {
    return new StoreUnavailableError("embedded store is closed", { cause: error });
  }
  return error;
}

/**
 * Whether `error` is SQLite's answer to a write that the file system gave no room, which the store
 * takes as a full disk (sqlite-durability.ts full(): readiness fails until a write commits, and
 * the other workers are told):
 * - SQLITE_FULL: the log or the database file could not grow. On Unix SQLite answers every write
 *   refused with ENOSPC so (os_unix.c unixWrite).
 * - SQLITE_IOERR_SHMSIZE: the log's index (the -shm file) could not grow: SQLite extends it by
 *   writing one byte in each new page, and on a full disk that write fails with ENOSPC while the
 *   log's own frames still fitted.
 * - SQLITE_IOERR_WRITE: a write of the log or the database file refused with another errno than
 *   ENOSPC: EDQUOT (a quota), EFBIG (a file size limit), EROFS, EIO. SQLite's error does not say
 *   which (better-sqlite3 gives no errno); each leaves the store answering reads and taking no
 *   write, which is what readiness says, and a write that commits is the one sign it is over.
 */
export function meansFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "SQLITE_FULL" || code === "SQLITE_IOERR_SHMSIZE" || code === "SQLITE_IOERR_WRITE";
}

/**
 * Runs a store call that may complete later (a group commit, an fsync) as the async port
 * expects. better-sqlite3 runs a statement or a transaction to completion once started, so the
 * caller's deadline is checked only before: once it has passed, the call is not made.
 */
export function callLater<T>(fn: () => Promise<T>): Promise<T> {
  const left = timeLeftMs();
  if (left !== undefined && left <= 0) return Promise.reject(new DeadlineExceededError());
  return fn();
}
