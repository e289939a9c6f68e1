import type Database from "better-sqlite3";

/**
 * A housekeeping delete of at most `limit` rows of `table` matching `where` (its last parameter
 * is the limit). The rows are found by an index on `where`'s column (sqlite-store.test.ts checks
 * the plan of every DELETE), and the statement runs on its own, so it is its own commit: a
 * backlog of a million rows is a thousand short statements, between which other writers (the
 * other workers' too) take the write lock and the event loop runs, instead of one statement that
 * holds both for seconds. The core repeats it until a batch comes back short (core/housekeeping.ts).
 * The limit is bound as `+?`, not `?`: SQLite re-prepares a statement whose LIMIT is a bare
 * parameter every time it is bound again (the value may change the plan), parsing it anew at
 * every batch.
 */
export function batchDelete(db: Database.Database, table: string, where: string): Database.Statement {
  return db.prepare(`DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE ${where} LIMIT +?)`);
}
