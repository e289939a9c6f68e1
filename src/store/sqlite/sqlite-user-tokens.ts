import type Database from "better-sqlite3";
import { CAP_BATCH, touchBucket, userTokenSources, type Capped, type NewUserToken, type UserTokenRecord, type UserTokenStore } from "../ports.js";
import { batchDelete } from "./sqlite-batches.js";
import { capParameters, pastCapRowids } from "./sqlite-caps.js";
import { sqliteCalls } from "./sqlite-durability.js";
import { returning } from "./sqlite-returning.js";
import { userStandingColumns, userStandingOf, type UserStandingColumns } from "./sqlite-users.js";
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
  /** When it was disabled (housekeeping's retention only); null while enabled, or disabled before it was recorded. */
  disabled_at: number | null;
  /** JSON array of kids (cookie sessions). */
  source_kids: string | null;
  /** JSON array of the credentials it descends from (cookie sessions). */
  sources: string | null;
}

/** A token row with its user's standing (null columns when no user has the token's user id). */
type UserTokenWithUserRow = UserTokenRow & UserStandingColumns;

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
  if (row.source_kids !== null) token.sourceKids = JSON.parse(row.source_kids) as string[];
  if (row.sources !== null) token.sources = JSON.parse(row.sources) as string[];
  return token;
}

function toRecordOrNull(row: unknown): UserTokenRecord | null {
  return row ? toRecord(row as UserTokenRow) : null;
}

export function sqliteUserTokens(db: Database.Database): UserTokenStore {
  const { call, deferred, spend } = sqliteCalls(db);
  const insert = db.prepare(`INSERT INTO user_tokens (id, hash, user_id, note, expires_at, created_at, enabled, version, credential_epoch, source_kids, sources)
    VALUES (@id, @hash, @userId, @note, @expiresAt, @createdAt, 1, 0, @credentialEpoch, @sourceKids, @sources) RETURNING *`);
  // One statement (one read transaction) instead of the token's lookup and then its user's: a
  // user token or cookie session check makes this read on every call, and each statement begins
  // and ends its own WAL read transaction (as SessionStore.findWithUser).
  const byHashWithUser = db.prepare(`SELECT t.*, ${userStandingColumns}
    FROM user_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.hash = ?`);
  const byId = db.prepare("SELECT * FROM user_tokens WHERE id = ?");
  const touch = db.prepare(
    "UPDATE user_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
  );
  const disable = db.prepare("UPDATE user_tokens SET enabled = 0, version = version + 1, disabled_at = ? WHERE id = ? AND enabled = 1");
  const disableAll = db.prepare(
    "UPDATE user_tokens SET enabled = 0, version = version + 1, disabled_at = ? WHERE user_id = ? AND enabled = 1",
  );
  // By user_tokens_expires_at and user_tokens_disabled_at (one index per side of the OR). The
  // usage bookkeeping (last_used_at) is a column of the row: it goes with it.
  const deleteEnded = batchDelete(db, "user_tokens", "expires_at < ? OR disabled_at < ?");

  const inserted = (token: NewUserToken): UserTokenRecord =>
    toRecord(
      returning<UserTokenRow>(insert, {
        id: token.id,
        hash: token.hash,
        userId: token.userId,
        note: token.note ?? null,
        expiresAt: toMsOrNull(token.expiresAt),
        createdAt: toMs(token.createdAt),
        credentialEpoch: token.credentialEpoch ?? null,
        sourceKids: token.sourceKids === undefined ? null : JSON.stringify(token.sourceKids),
        sources: token.sources === undefined ? null : JSON.stringify(token.sources),
      })!,
    );

  // Those past the cap are logged out as disable() does (kept for the retention), never one a
  // new cookie session descends from (@sources: their ids, each between spaces), which take
  // places of the cap beside it.
  const disablePastCap = db.prepare(
    `UPDATE user_tokens SET enabled = 0, version = version + 1, disabled_at = @now WHERE rowid IN (${pastCapRowids("user_tokens", "id", "created_at", "enabled = 1 AND (expires_at IS NULL OR expires_at > @now) AND instr(@sources, ' ' || id || ' ') = 0")}) RETURNING id`,
  );
  // The user's tokens that had expired by the creation's time, never logged out, are marked so
  // (as disable() does, not reported: their expiry ended them, and answers it first; their
  // retention still runs from it, which came first), newest first, at most CAP_BATCH a
  // creation: else each stays in user_tokens_user_created (partial on enabled) for its whole
  // retention, and the cap's reads, which skip it, walked every one inside the write
  // transaction. Found by that index (the expiry compared as a plain value, `+`, not by
  // user_tokens_expires_at, which holds every user's). Every worker reads the host's one clock.
  const disableExpired = db.prepare(`UPDATE user_tokens SET enabled = 0, version = version + 1, disabled_at = @now WHERE rowid IN (
    SELECT rowid FROM user_tokens WHERE user_id = @userId AND enabled = 1 AND +expires_at <= @now ORDER BY created_at DESC, rowid DESC LIMIT ${CAP_BATCH})`);
  // The token and the logouts of those past the cap: one transaction, taken up front.
  const create = db.transaction((token: NewUserToken, cap: number | undefined): Capped<UserTokenRecord> => {
    const record = inserted(token);
    if (cap === undefined) return { record, ended: [] };
    const now = toMs(token.createdAt);
    disableExpired.run({ userId: token.userId, now });
    const sources = userTokenSources(token.sources);
    const ended = disablePastCap.all({
      ...capParameters(token.userId, token.id, Math.max(1, cap - sources.length), now),
      sources: ` ${sources.join(" ")} `,
    }) as { id: string }[];
    return { record, ended: ended.map((r) => r.id) };
  });

  return {
    create: (token: NewUserToken, cap?: number) => call(() => create.immediate(token, cap)),
    // A login's token: committed without an fsync of its own (SqliteCalls.deferred).
    createThenSync: async (token: NewUserToken, cap?: number) => {
      const { result, durable } = await deferred(() => create.immediate(token, cap));
      return { ...result, durable };
    },
    findByHashWithUser: (hash) =>
      call(() => {
        const row = byHashWithUser.get(hash) as UserTokenWithUserRow | undefined;
        if (!row) return null;
        return { token: toRecord(row), user: userStandingOf(row, row.user_id) };
      }),
    findById: (id) =>
      call(() => {
        const token = toRecordOrNull(byId.get(id));
        if (token) delete token.lastUsedAt; // as the port says, on every store
        return token;
      }),
    touchLastUsed: (id, at, minIntervalMs = 0) =>
      call(() => touch.run(toMs(at), id, touchBucket(at, minIntervalMs)).changes === 1),
    disable: (id, at) => spend(() => disable.run(toMs(at), id).changes === 1),
    disableAllForUser: (userId, at) => call(() => disableAll.run(toMs(at), userId).changes),
    deleteEndedBefore: (before, limit) => call(() => deleteEnded.run(toMs(before), toMs(before), limit).changes),
  };
}
