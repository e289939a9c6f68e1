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
    return new StoreUnavailableError(`embedded store unavailable (${code})`, { cause: error });
  }
  // better-sqlite3 throws TypeError("The database connection is not open") after close().
  if (error instanceof TypeError && /database connection is not open/.test(error.message)) {
    return new StoreUnavailableError("embedded store is closed", { cause: error });
  }
  return error;
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
