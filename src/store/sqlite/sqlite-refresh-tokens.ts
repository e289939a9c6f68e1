import type Database from "better-sqlite3";
import type { NewRefreshToken, RefreshTokenRecord, RefreshTokenStore } from "../ports.js";
import { batchDelete } from "./sqlite-batches.js";
import { sqliteCalls, thenSync } from "./sqlite-durability.js";
import { returning } from "./sqlite-returning.js";
import { dateIfPresent, fromMs, toMs } from "./sqlite-values.js";

interface RefreshTokenRow {
  hash: string;
  session_id: string;
  created_at: number;
  expires_at: number;
  spent_at: number | null;
  child: string | null;
}

function toRecord(row: RefreshTokenRow): RefreshTokenRecord {
  const token: RefreshTokenRecord = {
    hash: row.hash,
    sessionId: row.session_id,
    createdAt: fromMs(row.created_at),
    expiresAt: fromMs(row.expires_at),
  };
  dateIfPresent(token, "spentAt", row.spent_at);
  if (row.child !== null) token.child = row.child;
  return token;
}

/**
 * The insert of a refresh token, run where it is called: inside a call of this adapter (a
 * refresh's child) or inside the transaction that stores a new session with its first one
 * (sqlite-sessions.ts). One statement for both, so the row is built and mapped in one place.
 */
export function refreshTokenInsert(db: Database.Database): (token: NewRefreshToken) => RefreshTokenRecord {
  const insert = db.prepare(`INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at)
    VALUES (@hash, @sessionId, @createdAt, @expiresAt) RETURNING *`);
  return (token) =>
    toRecord(
      returning<RefreshTokenRow>(insert, {
        hash: token.hash,
        sessionId: token.sessionId,
        createdAt: toMs(token.createdAt),
        expiresAt: toMs(token.expiresAt),
      })!,
    );
}

export function sqliteRefreshTokens(db: Database.Database): RefreshTokenStore {
  const { call, cheaply, deferred, deferredSpend } = sqliteCalls(db);
  const insert = refreshTokenInsert(db);
  const byHash = db.prepare("SELECT * FROM refresh_tokens WHERE hash = ?");
  const spend = db.prepare(
    "UPDATE refresh_tokens SET spent_at = ?, child = ? WHERE hash = ? AND spent_at IS NULL RETURNING *",
  );
  const deleteBySession = db.prepare("DELETE FROM refresh_tokens WHERE session_id = ?");
  const deleteExpired = batchDelete(db, "refresh_tokens", "expires_at < ?");

  return {
    // Committed without an fsync of its own (SqliteCalls.deferred). A refresh's child token is
    // inserted by its first caller and by every concurrent caller of the same refresh: a
    // duplicate is refused at once, the wait on the error (errorDurable) resolving once the first
    // caller's insert is on disk (deferredSpend).
    insertThenSync: (token: NewRefreshToken) => thenSync("record", deferredSpend(() => insert(token))),
    findByHash: (hash) =>
      call(() => {
        const row = byHash.get(hash) as RefreshTokenRow | undefined;
        return row ? toRecord(row) : null;
      }),
    spendThenSync: (hash, at, child) =>
      thenSync(
        "before",
        deferredSpend(() => {
          // The conditional UPDATE decides the race. The winner gets the record as it was before
          // (unspent); a loser reads the spent record, whose spentAt never changes again.
          // Unsynced: the refresh's next write (its child's insert) syncs it (see the port). A
          // loser is answered at once, its `durable` waiting until the winner's spend is on disk
          // (SqliteCalls.deferredSpend).
          const won = cheaply(() => returning<RefreshTokenRow>(spend, toMs(at), child, hash));
          if (won) {
            const before = toRecord(won);
            delete before.spentAt;
            delete before.child;
            return before;
          }
          const row = byHash.get(hash) as RefreshTokenRow | undefined;
          return row ? toRecord(row) : null;
        }),
      ),
    // A logout's: committed without an fsync of its own, its audit event's covers it (see the port).
    deleteBySessionThenSync: (sessionId) => thenSync("deleted", deferred(() => deleteBySession.run(sessionId).changes)),
    deleteExpired: (before, limit) => call(() => deleteExpired.run(toMs(before), limit).changes),
  };
}
