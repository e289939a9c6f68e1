import type Database from "better-sqlite3";
import { endedFirst, type NewRefreshToken, type NewSession, type SessionRecord, type SessionStore } from "../ports.js";
import { batchDelete } from "./sqlite-batches.js";
import { capParameters, pastCapRowids } from "./sqlite-caps.js";
import { sqliteCalls, thenSync } from "./sqlite-durability.js";
import { refreshTokenInsert } from "./sqlite-refresh-tokens.js";
import { returning } from "./sqlite-returning.js";
import { userStandingColumns, userStandingOf, type UserStandingColumns } from "./sqlite-users.js";
import { dateIfPresent, fromMs, setIfPresent, toMs } from "./sqlite-values.js";

interface SessionRow {
  id: string;
  user_id: string;
  client_id: string;
  access_jti: string;
  created_at: number;
  expires_at: number;
  ended_at: number | null;
  credential_epoch: number | null;
}

/** A session row with its user's standing (null columns when no user has the id). */
type SessionWithUserRow = SessionRow & UserStandingColumns;

function toRecord(row: SessionRow): SessionRecord {
  const session: SessionRecord = {
    id: row.id,
    userId: row.user_id,
    clientId: row.client_id,
    accessJti: row.access_jti,
    createdAt: fromMs(row.created_at),
    expiresAt: fromMs(row.expires_at),
  };
  dateIfPresent(session, "endedAt", row.ended_at);
  setIfPresent(session, "credentialEpoch", row.credential_epoch);
  return session;
}

export function sqliteSessions(db: Database.Database): SessionStore {
  const { call, cheaply, deferred, deferredSpend, synced } = sqliteCalls(db);
  const insert = db.prepare(`INSERT INTO sessions (id, user_id, client_id, access_jti, created_at, expires_at, credential_epoch)
    VALUES (@id, @userId, @clientId, @accessJti, @createdAt, @expiresAt, @credentialEpoch) RETURNING *`);
  const insertRefreshToken = refreshTokenInsert(db);
  // One transaction, so one commit: a crash or power cut keeps the session and its first refresh
  // token or neither, and the login takes the write lock and commits once for both, not twice.
  // Taken up front (IMMEDIATE), as the store's other write transactions are.
  // The user's unexpired sessions past the cap, ended or not, count; as many are deleted with
  // their refresh tokens (a use of one then answers what an unknown session does, SESSION_ENDED),
  // its ended ones first (by sessions_user_ended), then its oldest live ones.
  // `+@limit`, not `@limit`: SQLite re-prepares a statement whose LIMIT is a bare parameter at
  // every run (its value may change the plan), parsing it again inside the login's transaction.
  const pastCap = db.prepare(`SELECT id, ended_at IS NULL AS open FROM sessions WHERE rowid IN (${pastCapRowids("sessions", "id", "created_at", "expires_at > @now")})`);
  const endedOnes = db.prepare(`SELECT id FROM sessions WHERE user_id = @userId AND ended_at IS NOT NULL AND expires_at > @now AND id != @keep
    ORDER BY ended_at, rowid LIMIT +@limit`);
  const deleteSession = db.prepare("DELETE FROM sessions WHERE id = ?");
  const deleteRefreshTokens = db.prepare("DELETE FROM refresh_tokens WHERE session_id = ?");
  const endPastCap = (session: NewSession, cap: number): string[] => {
    const parameters = capParameters(session.userId, session.id, cap, toMs(session.createdAt));
    const rows = pastCap.all(parameters) as { id: string; open: number }[];
    if (rows.length === 0) return [];
    const ended = (endedOnes.all({ ...parameters, limit: rows.length }) as { id: string }[]).map((r) => r.id);
    const ids = endedFirst(rows.map((r) => r.id), ended);
    for (const id of ids) {
      deleteRefreshTokens.run(id);
      deleteSession.run(id);
    }
    const open = new Set(rows.filter((r) => r.open === 1).map((r) => r.id));
    return ids.filter((id) => open.has(id));
  };
  const createWithRefreshToken = db.transaction((session: NewSession, refreshToken: NewRefreshToken, cap: number | undefined): { record: SessionRecord; ended: string[] } => {
    const row = returning<SessionRow>(insert, {
      id: session.id,
      userId: session.userId,
      clientId: session.clientId,
      accessJti: session.accessJti,
      createdAt: toMs(session.createdAt),
      expiresAt: toMs(session.expiresAt),
      credentialEpoch: session.credentialEpoch ?? null,
    })!;
    insertRefreshToken(refreshToken);
    return { record: toRecord(row), ended: cap === undefined ? [] : endPastCap(session, cap) };
  });
  const byId = db.prepare("SELECT * FROM sessions WHERE id = ?");
  // One statement (one read transaction) instead of two lookups: a token check makes this read
  // on every call, and each statement begins and ends its own WAL read transaction.
  const withUser = db.prepare(`SELECT s.*, ${userStandingColumns}
    FROM sessions s LEFT JOIN users u ON u.id = @userId WHERE s.id = @id`);
  const casJti = db.prepare(
    "UPDATE sessions SET access_jti = ? WHERE id = ? AND access_jti = ? AND ended_at IS NULL",
  );
  const end = db.prepare("UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL");
  const endAll = db.prepare("UPDATE sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL");
  // Those a password change outdated (PasswordChange): of an earlier epoch, or created before it without one.
  const endAllOutdated = db.prepare(
    "UPDATE sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL AND (credential_epoch < ? OR (credential_epoch IS NULL AND created_at < ?))",
  );
  const deleteExpired = batchDelete(db, "sessions", "expires_at < ?");

  return {
    // Committed without an fsync of its own (SqliteCalls.deferred): the login's session.started
    // event's fsync covers it (see the port).
    // The cap is applied in the same transaction: the session, its refresh token and the ends of
    // those past the cap are committed together.
    createThenSync: async (session, refreshToken, cap) => {
      const { result, durable } = await deferred(() => createWithRefreshToken.immediate(session, refreshToken, cap));
      return { ...result, durable };
    },
    findById: (id) =>
      call(() => {
        const row = byId.get(id) as SessionRow | undefined;
        return row ? toRecord(row) : null;
      }),
    findWithUser: (id, userId) =>
      call(() => {
        const row = withUser.get({ id, userId }) as SessionWithUserRow | undefined;
        if (!row) return null;
        return { session: toRecord(row), user: userStandingOf(row, userId) };
      }),
    // Unsynced: the refresh that moves the jti syncs it with the child token's insert (see the port).
    setAccessJti: (id, expectedJti, newJti) => call(() => cheaply(() => casJti.run(newJti, id, expectedJti).changes === 1)),
    synced: () => synced(),
    // Committed without an fsync of its own: the logout's audit event's covers it (see the port).
    // A loser (ended already) is answered at once, its `durable` waiting until the winner's end
    // is on disk (deferredSpend).
    endThenSync: (id, at) => thenSync("ended", deferredSpend(() => end.run(toMs(at), id).changes === 1)),
    endAllForUser: (userId, at, outdatedBy) =>
      call(() =>
        outdatedBy === undefined
          ? endAll.run(toMs(at), userId).changes
          : endAllOutdated.run(toMs(at), userId, outdatedBy.epoch, toMs(outdatedBy.changedAt)).changes,
      ),
    deleteExpired: (before, limit) => call(() => deleteExpired.run(toMs(before), limit).changes),
  };
}
