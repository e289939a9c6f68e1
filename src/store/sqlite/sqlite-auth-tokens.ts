import type Database from "better-sqlite3";
import type { AuthTokenRecord, AuthTokenStore, NewAuthToken } from "../ports.js";
import { batchDelete } from "./sqlite-batches.js";
import { sqliteCalls } from "./sqlite-durability.js";
import { returning } from "./sqlite-returning.js";
import { dateIfPresent, fromMs, setIfPresent, toMs, toMsOrNull } from "./sqlite-values.js";

interface AuthTokenRow {
  hash: string;
  user_id: string;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
  credential_epoch: number | null;
  not_after: number | null;
  source: string | null;
  /** JSON array of kids. */
  source_kids: string | null;
}

function toRecord(row: AuthTokenRow): AuthTokenRecord {
  const token: AuthTokenRecord = {
    hash: row.hash,
    userId: row.user_id,
    createdAt: fromMs(row.created_at),
    expiresAt: fromMs(row.expires_at),
  };
  dateIfPresent(token, "consumedAt", row.consumed_at);
  setIfPresent(token, "credentialEpoch", row.credential_epoch);
  dateIfPresent(token, "notAfter", row.not_after);
  setIfPresent(token, "source", row.source);
  if (row.source_kids !== null) token.sourceKids = JSON.parse(row.source_kids) as string[];
  return token;
}

function toRecordOrNull(row: unknown): AuthTokenRecord | null {
  return row ? toRecord(row as AuthTokenRow) : null;
}

export function sqliteAuthTokens(db: Database.Database): AuthTokenStore {
  const { call, spend } = sqliteCalls(db);
  const insert = db.prepare(`INSERT INTO auth_tokens (hash, user_id, created_at, expires_at, credential_epoch, not_after, source, source_kids)
    VALUES (@hash, @userId, @createdAt, @expiresAt, @credentialEpoch, @notAfter, @source, @sourceKids) RETURNING *`);
  const byHash = db.prepare("SELECT * FROM auth_tokens WHERE hash = ?");
  const consume = db.prepare(`UPDATE auth_tokens SET consumed_at = @now
    WHERE hash = @hash AND consumed_at IS NULL AND expires_at > @now RETURNING *`);
  const release = db.prepare("UPDATE auth_tokens SET consumed_at = NULL WHERE hash = ? AND consumed_at = ?");
  const deleteExpired = batchDelete(db, "auth_tokens", "expires_at < ?");

  return {
    create: (token: NewAuthToken) =>
      call(() =>
        toRecord(
          returning<AuthTokenRow>(insert, {
            hash: token.hash,
            userId: token.userId,
            createdAt: toMs(token.createdAt),
            expiresAt: toMs(token.expiresAt),
            credentialEpoch: token.credentialEpoch ?? null,
            notAfter: toMsOrNull(token.notAfter),
            source: token.source ?? null,
            sourceKids: token.sourceKids === undefined ? null : JSON.stringify(token.sourceKids),
          })!,
        ),
      ),
    findByHash: (hash) => call(() => toRecordOrNull(byHash.get(hash))),
    consume: (hash, now) => spend(() => toRecordOrNull(returning(consume, { hash, now: toMs(now) }))),
    release: (hash, consumedAt) => call(() => release.run(hash, toMs(consumedAt)).changes === 1),
    deleteExpired: (before, limit) => call(() => deleteExpired.run(toMs(before), limit).changes),
  };
}
