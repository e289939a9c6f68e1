import type Database from "better-sqlite3";
import type { LoginAttemptRecord, LoginAttemptStore } from "../ports.js";
import { call } from "./sqlite-errors.js";
import { dateIfPresent, fromMs, toMs } from "./sqlite-values.js";

interface LoginAttemptRow {
  key: string;
  failures: number;
  first_failure_at: number;
  last_failure_at: number;
  locked_until: number | null;
}

function toRecord(row: LoginAttemptRow): LoginAttemptRecord {
  const attempt: LoginAttemptRecord = {
    key: row.key,
    failures: row.failures,
    firstFailureAt: fromMs(row.first_failure_at),
    lastFailureAt: fromMs(row.last_failure_at),
  };
  dateIfPresent(attempt, "lockedUntil", row.locked_until);
  return attempt;
}

export function sqliteLoginAttempts(db: Database.Database): LoginAttemptStore {
  // One upsert: counts within the open window, or starts a new window when it has passed.
  const recordFailure = db.prepare(`INSERT INTO login_attempts (key, failures, first_failure_at, last_failure_at)
    VALUES (@key, 1, @at, @at)
    ON CONFLICT (key) DO UPDATE SET
      failures = CASE WHEN first_failure_at > @windowStart THEN failures + 1 ELSE 1 END,
      first_failure_at = CASE WHEN first_failure_at > @windowStart THEN first_failure_at ELSE @at END,
      last_failure_at = @at
    RETURNING *`);
  const get = db.prepare("SELECT * FROM login_attempts WHERE key = ?");
  const reset = db.prepare("DELETE FROM login_attempts WHERE key = ?");
  const lock = db.prepare("UPDATE login_attempts SET locked_until = ? WHERE key = ?");
  const deleteStale = db.prepare(
    "DELETE FROM login_attempts WHERE last_failure_at < ? AND (locked_until IS NULL OR locked_until <= ?)",
  );

  return {
    recordFailure: (key, at, windowMs) =>
      call(() =>
        toRecord(recordFailure.get({ key, at: toMs(at), windowStart: toMs(at) - windowMs }) as LoginAttemptRow),
      ),
    get: (key) =>
      call(() => {
        const row = get.get(key) as LoginAttemptRow | undefined;
        return row ? toRecord(row) : null;
      }),
    reset: (key) =>
      call(() => {
        reset.run(key);
      }),
    setLockedUntil: (key, until) =>
      call(() => {
        lock.run(toMs(until), key);
      }),
    deleteStale: (lastFailureBefore, now) => call(() => deleteStale.run(toMs(lastFailureBefore), toMs(now)).changes),
  };
}
