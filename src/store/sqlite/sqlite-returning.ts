import type Database from "better-sqlite3";

/**
 * The row a write with `RETURNING` answers (undefined: it changed no row), run to its end.
 *
 * Never `statement.get()` for a write: better-sqlite3's get() steps the statement once, takes the
 * row, and resets it without looking at what the reset returns. Outside a transaction the write
 * commits when the statement ends, which for get() is in that reset: a commit that fails there
 * (the disk full, an I/O error writing the log) rolls the write back, and get() still answers
 * its row as if it had been stored. all() steps the statement until it is done, so the commit's
 * failure is thrown.
 */
export function returning<R>(statement: Database.Statement, ...params: unknown[]): R | undefined {
  return statement.all(...params)[0] as R | undefined;
}
