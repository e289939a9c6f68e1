import type Database from "better-sqlite3";
import { touchBucket, type ApiTokenRecord, type ApiTokenStore, type NewApiToken } from "../ports.js";
import { batchDelete } from "./sqlite-batches.js";
import { sqliteCalls } from "./sqlite-durability.js";
import { returning } from "./sqlite-returning.js";
import { dateIfPresent, fromMs, setIfPresent, toMs } from "./sqlite-values.js";

interface ApiTokenRow {
  link: string;
  hash: string;
  account_id: string;
  description: string;
  created_by: string | null;
  issued_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

function toRecord(row: ApiTokenRow): ApiTokenRecord {
  const token: ApiTokenRecord = {
    link: row.link,
    hash: row.hash,
    accountId: row.account_id,
    description: row.description,
    issuedAt: fromMs(row.issued_at),
  };
  setIfPresent(token, "createdBy", row.created_by);
  dateIfPresent(token, "lastUsedAt", row.last_used_at);
  dateIfPresent(token, "revokedAt", row.revoked_at);
  return token;
}

function toRecordOrNull(row: unknown): ApiTokenRecord | null {
  return row ? toRecord(row as ApiTokenRow) : null;
}

export function sqliteApiTokens(db: Database.Database): ApiTokenStore {
  const { call, spend } = sqliteCalls(db);
  const insert = db.prepare(`INSERT INTO api_tokens (link, hash, account_id, description, created_by, issued_at)
    VALUES (@link, @hash, @accountId, @description, @createdBy, @issuedAt) RETURNING *`);
  // At most `maxActive` index entries are read (api_tokens_account_active), however many the account holds.
  // `LIMIT +?`, not `LIMIT ?`: SQLite re-prepares a statement whose LIMIT is a bare parameter at
  // every run (its value may change the plan), parsing it again inside the creation's transaction.
  const countActive = db.prepare(
    "SELECT count(*) AS n FROM (SELECT 1 FROM api_tokens WHERE account_id = ? AND revoked_at IS NULL LIMIT +?)",
  );
  // The count and the insert in one write transaction (taken up front): no other creation
  // counts between them, in this process or another on the file.
  const createCapped = db.transaction((row: Record<string, unknown>, accountId: string, maxActive: number): ApiTokenRecord | null => {
    if ((countActive.get(accountId, maxActive) as { n: number }).n >= maxActive) return null;
    return toRecord(returning<ApiTokenRow>(insert, row)!);
  });
  const byHash = db.prepare("SELECT * FROM api_tokens WHERE hash = ?");
  const describe = db.prepare(
    "UPDATE api_tokens SET description = ? WHERE link = ? AND revoked_at IS NULL RETURNING *",
  );
  const listActive = db.prepare(
    "SELECT * FROM api_tokens WHERE account_id = ? AND revoked_at IS NULL ORDER BY issued_at DESC, link DESC",
  );
  const listRevoked = db.prepare(
    "SELECT * FROM api_tokens WHERE account_id = ? AND revoked_at IS NOT NULL ORDER BY issued_at DESC, link DESC",
  );
  const revoke = db.prepare(
    "UPDATE api_tokens SET revoked_at = ? WHERE link = ? AND account_id = ? AND revoked_at IS NULL RETURNING *",
  );
  // Retention: by api_tokens_revoked_at (partial: the active tokens are not in it).
  const deleteRevoked = batchDelete(db, "api_tokens", "revoked_at < ?");
  const touch = db.prepare(
    "UPDATE api_tokens SET last_used_at = ? WHERE link = ? AND (last_used_at IS NULL OR last_used_at < ?)",
  );

  return {
    create: (token: NewApiToken, maxActive: number) =>
      call(() =>
        createCapped.immediate(
          {
            link: token.link,
            hash: token.hash,
            accountId: token.accountId,
            description: token.description,
            createdBy: token.createdBy ?? null,
            issuedAt: toMs(token.issuedAt),
          },
          token.accountId,
          maxActive,
        ),
      ),
    findByHash: (hash) => call(() => toRecordOrNull(byHash.get(hash))),
    updateDescription: (link, description) => call(() => toRecordOrNull(returning(describe, description, link))),
    list: (accountId, state) =>
      call(() => ((state === "active" ? listActive : listRevoked).all(accountId) as ApiTokenRow[]).map(toRecord)),
    revoke: (accountId, link, at) => spend(() => toRecordOrNull(returning(revoke, toMs(at), link, accountId))),
    touchLastUsed: (link, at, minIntervalMs = 0) =>
      call(() => touch.run(toMs(at), link, touchBucket(at, minIntervalMs)).changes === 1),
    // Counted and inserted in one transaction: no token is ever stored before it is kept.
    deleteAbandoned: async () => 0,
    // The last use is a column of the row: it goes with it.
    deleteRevokedBefore: (before, limit) => call(() => deleteRevoked.run(toMs(before), limit).changes),
  };
}
