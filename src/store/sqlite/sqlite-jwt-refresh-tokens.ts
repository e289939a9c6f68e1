import type Database from "better-sqlite3";
import type { Capped, JwtRefreshTokenRecord, JwtRefreshTokenStore, NewJwtRefreshToken } from "../ports.js";
import { batchDelete } from "./sqlite-batches.js";
import { capParameters, pastCapRowids } from "./sqlite-caps.js";
import { sqliteCalls } from "./sqlite-durability.js";
import { returning } from "./sqlite-returning.js";
import { dateIfPresent, fromMs, setIfPresent, toMs } from "./sqlite-values.js";

interface JwtRefreshTokenRow {
  jti: string;
  user_id: string;
  issued_at: number;
  expires_at: number;
  revoked_at: number | null;
  credential_epoch: number | null;
}

function toRecord(row: JwtRefreshTokenRow): JwtRefreshTokenRecord {
  const token: JwtRefreshTokenRecord = {
    jti: row.jti,
    userId: row.user_id,
    issuedAt: fromMs(row.issued_at),
    expiresAt: fromMs(row.expires_at),
  };
  dateIfPresent(token, "revokedAt", row.revoked_at);
  setIfPresent(token, "credentialEpoch", row.credential_epoch);
  return token;
}

export function sqliteJwtRefreshTokens(db: Database.Database): JwtRefreshTokenStore {
  const { call, spend } = sqliteCalls(db);
  const insert = db.prepare(`INSERT INTO jwt_refresh_tokens (jti, user_id, issued_at, expires_at, credential_epoch)
    VALUES (@jti, @userId, @issuedAt, @expiresAt, @credentialEpoch) RETURNING *`);
  const revokePastCap = db.prepare(
    `UPDATE jwt_refresh_tokens SET revoked_at = @now WHERE rowid IN (${pastCapRowids("jwt_refresh_tokens", "jti", "issued_at", "revoked_at IS NULL AND expires_at > @now")}) RETURNING jti`,
  );
  const inserted = (token: NewJwtRefreshToken, cap: number | undefined): Capped<JwtRefreshTokenRecord> => {
    const record = toRecord(
      returning<JwtRefreshTokenRow>(insert, {
        jti: token.jti,
        userId: token.userId,
        issuedAt: toMs(token.issuedAt),
        expiresAt: toMs(token.expiresAt),
        credentialEpoch: token.credentialEpoch ?? null,
      })!,
    );
    if (cap === undefined) return { record, ended: [] };
    const ended = revokePastCap.all(capParameters(token.userId, token.jti, cap, toMs(token.issuedAt))) as { jti: string }[];
    return { record, ended: ended.map((r) => r.jti) };
  };
  // The token and the revocations of those past the cap: one transaction, taken up front.
  const create = db.transaction(inserted);
  const byJti = db.prepare("SELECT * FROM jwt_refresh_tokens WHERE jti = ?");
  const revoke = db.prepare(
    "UPDATE jwt_refresh_tokens SET revoked_at = ? WHERE jti = ? AND user_id = ? AND revoked_at IS NULL",
  );
  const revokeAll = db.prepare(
    "UPDATE jwt_refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
  );
  // Those a password change outdated (PasswordChange): of an earlier epoch, or issued before it without one.
  const revokeAllOutdated = db.prepare(
    "UPDATE jwt_refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND (credential_epoch < ? OR (credential_epoch IS NULL AND issued_at < ?))",
  );
  const deleteExpired = batchDelete(db, "jwt_refresh_tokens", "expires_at < ?");

  return {
    create: (token: NewJwtRefreshToken, cap?: number) => call(() => create.immediate(token, cap)),
    findByJti: (jti) =>
      call(() => {
        const row = byJti.get(jti) as JwtRefreshTokenRow | undefined;
        return row ? toRecord(row) : null;
      }),
    revoke: (jti, userId, at) => spend(() => revoke.run(toMs(at), jti, userId).changes === 1),
    revokeAllForUser: (userId, at, outdatedBy) =>
      call(() =>
        outdatedBy === undefined
          ? revokeAll.run(toMs(at), userId).changes
          : revokeAllOutdated.run(toMs(at), userId, outdatedBy.epoch, toMs(outdatedBy.changedAt)).changes,
      ),
    deleteExpired: (before, limit) => call(() => deleteExpired.run(toMs(before), limit).changes),
  };
}
