import type Database from "better-sqlite3";
import { touchBucket, type NewUserToken, type UserTokenRecord, type UserTokenStore } from "../ports.js";
import { sqliteCalls } from "./sqlite-durability.js";
import { returning } from "./sqlite-returning.js";
import { dateIfPresent, fromMs, setIfPresent, toMs, toMsOrNull } from "./sqlite-values.js";

interface UserTokenRow {
  id: string;
  hash: string;
  user_id: string;
  note: string | null;
  expires_at: number | null;
  created_at: number;
  enabled: number;
  version: number;
  last_used_at: number | null;
  credential_epoch: number | null;
}

function toRecord(row: UserTokenRow): UserTokenRecord {
  const token: UserTokenRecord = {
    id: row.id,
    hash: row.hash,
    userId: row.user_id,
    createdAt: fromMs(row.created_at),
    enabled: row.enabled === 1,
    version: row.version,
  };
  setIfPresent(token, "note", row.note);
  dateIfPresent(token, "expiresAt", row.expires_at);
  dateIfPresent(token, "lastUsedAt", row.last_used_at);
  setIfPresent(token, "credentialEpoch", row.credential_epoch);
  return token;
}

function toRecordOrNull(row: unknown): UserTokenRecord | null {
  return row ? toRecord(row as UserTokenRow) : null;
}

export function sqliteUserTokens(db: Database.Database): UserTokenStore {
  const { call } = sqliteCalls(db);
  const insert = db.prepare(`INSERT INTO user_tokens (id, hash, user_id, note, expires_at, created_at, enabled, version, credential_epoch)
    VALUES (@id, @hash, @userId, @note, @expiresAt, @createdAt, 1, 0, @credentialEpoch) RETURNING *`);
  const byHash = db.prepare("SELECT * FROM user_tokens WHERE hash = ?");
  const touch = db.prepare(
    "UPDATE user_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
  );
  const disable = db.prepare("UPDATE user_tokens SET enabled = 0, version = version + 1 WHERE id = ? AND enabled = 1");
  const disableAll = db.prepare(
    "UPDATE user_tokens SET enabled = 0, version = version + 1 WHERE user_id = ? AND enabled = 1",
  );

  return {
    create: (token: NewUserToken) =>
      call(() =>
        toRecord(
          returning<UserTokenRow>(insert, {
            id: token.id,
            hash: token.hash,
            userId: token.userId,
            note: token.note ?? null,
            expiresAt: toMsOrNull(token.expiresAt),
            createdAt: toMs(token.createdAt),
            credentialEpoch: token.credentialEpoch ?? null,
          })!,
        ),
      ),
    findByHash: (hash) => call(() => toRecordOrNull(byHash.get(hash))),
    touchLastUsed: (id, at, minIntervalMs = 0) =>
      call(() => touch.run(toMs(at), id, touchBucket(at, minIntervalMs)).changes === 1),
    disable: (id) => call(() => disable.run(id).changes === 1),
    disableAllForUser: (userId) => call(() => disableAll.run(userId).changes),
  };
}
