import type Database from "better-sqlite3";
import type { NewUser, UserRecord, UserStanding, UserStore } from "../ports.js";
import { sqliteCalls } from "./sqlite-durability.js";
import { returning } from "./sqlite-returning.js";
import { waitingForUpgrades } from "./schema.js";
import { dateIfPresent, fromMs, setIfPresent, toMs } from "./sqlite-values.js";

interface UserRow {
  id: string;
  login: string;
  login_key: string | null;
  emails: string;
  firstname: string | null;
  lastname: string | null;
  password_hash: string;
  active: number;
  created_at: number;
  last_login_at: number | null;
  password_changed_at: number;
  deactivated_at: number | null;
  version: number;
  credential_epoch: number;
}

/**
 * A user's standing selected beside a credential in one statement (the credential's table
 * LEFT JOINed with `users u`), so that a credential check is one read transaction:
 * SessionStore.findWithUser, UserTokenStore.findByHashWithUser.
 */
export const userStandingColumns =
  "u.active AS user_active, u.credential_epoch AS user_credential_epoch, u.password_changed_at AS user_password_changed_at";

/** The columns userStandingColumns selects (all null when no user has the id). */
export interface UserStandingColumns {
  user_active: number | null;
  user_credential_epoch: number | null;
  user_password_changed_at: number | null;
}

/** The standing of user `userId` from userStandingColumns' columns; null when there is no such user. */
export function userStandingOf(row: UserStandingColumns, userId: string): UserStanding | null {
  if (row.user_active === null) return null;
  return { id: userId, active: row.user_active === 1, credentialEpoch: row.user_credential_epoch!, passwordChangedAt: fromMs(row.user_password_changed_at!) };
}

function toRecord(row: UserRow): UserRecord {
  const user: UserRecord = {
    id: row.id,
    login: row.login,
    emails: JSON.parse(row.emails) as string[],
    passwordHash: row.password_hash,
    active: row.active === 1,
    createdAt: fromMs(row.created_at),
    passwordChangedAt: fromMs(row.password_changed_at),
    version: row.version,
    credentialEpoch: row.credential_epoch,
  };
  setIfPresent(user, "loginKey", row.login_key);
  setIfPresent(user, "firstname", row.firstname);
  setIfPresent(user, "lastname", row.lastname);
  dateIfPresent(user, "lastLoginAt", row.last_login_at);
  dateIfPresent(user, "deactivatedAt", row.deactivated_at);
  return user;
}

export function sqliteUsers(db: Database.Database): UserStore {
  const { call, cheaply, spend } = sqliteCalls(db);
  const insert = db.prepare(`INSERT INTO users
    (id, login, login_key, emails, firstname, lastname, password_hash, active, created_at, password_changed_at, version)
    VALUES (@id, @login, @loginKey, @emails, @firstname, @lastname, @passwordHash, 1, @createdAt, @createdAt, 0)
    RETURNING *`);
  const byId = db.prepare("SELECT * FROM users WHERE id = ?");
  // The exact spelling first, then the key (see the port).
  const byLogin = db.prepare(
    "SELECT * FROM users WHERE login = @login OR login_key = @loginKey ORDER BY login = @login DESC LIMIT 1",
  );
  const keyless = db.prepare("SELECT id, login, login_key FROM users WHERE login_key IS NULL ORDER BY created_at, id");
  const everyAccount = db.prepare("SELECT id, login, login_key FROM users ORDER BY created_at, id");
  const anyKeyless = db.prepare("SELECT 1 FROM users WHERE login_key IS NULL LIMIT 1");
  const keyFunctionRecorded = db.prepare("SELECT 1 FROM login_key_functions WHERE version >= ? LIMIT 1");
  const recordKeyFunction = db.prepare("INSERT OR IGNORE INTO login_key_functions (version, recorded_at) VALUES (?, ?)");
  const keyTaken = db.prepare("SELECT 1 FROM users WHERE login_key = ?");
  // The key is replaced only while it is still the one read (null: keyless).
  const setKey = db.prepare("UPDATE users SET login_key = @key WHERE id = @id AND login_key IS @was");
  const updatePassword = db.prepare(`UPDATE users
    SET password_hash = ?, password_changed_at = ?, version = version + 1, credential_epoch = credential_epoch + 1
    WHERE id = ? RETURNING *`);
  const updatePasswordIf = db.prepare(`UPDATE users
    SET password_hash = ?, password_changed_at = ?, version = version + 1, credential_epoch = credential_epoch + 1
    WHERE id = ? AND credential_epoch = ? RETURNING *`);
  const rehash = db.prepare(`UPDATE users
    SET password_hash = ?, version = version + 1 WHERE id = ? AND password_hash = ?`);
  // Never an earlier time over a later one (two logins racing: the earlier may commit last).
  const lastLogin = db.prepare("UPDATE users SET last_login_at = MAX(COALESCE(last_login_at, @at), @at) WHERE id = @id AND active = 1");
  const deactivate = db.prepare(`UPDATE users
    SET active = 0, deactivated_at = ?, version = version + 1, credential_epoch = credential_epoch + 1
    WHERE id = ? AND active = 1`);

  return {
    create: (user: NewUser) =>
      call(() =>
        toRecord(
          returning<UserRow>(insert, {
            id: user.id,
            login: user.login,
            loginKey: user.loginKey,
            emails: JSON.stringify(user.emails),
            firstname: user.firstname ?? null,
            lastname: user.lastname ?? null,
            passwordHash: user.passwordHash,
            createdAt: toMs(user.createdAt),
          })!,
        ),
      ),
    findById: (id) =>
      call(() => {
        const row = byId.get(id) as UserRow | undefined;
        return row ? toRecord(row) : null;
      }),
    findByLogin: (login, loginKey) =>
      call(() => {
        const row = byLogin.get({ login, loginKey }) as UserRow | undefined;
        return row ? toRecord(row) : null;
      }),
    // One IMMEDIATE transaction: two processes on one file backfill in turn.
    // At start-up, once per process: a database without keyless accounts whose key function is
    // recorded takes no write lock; otherwise the lock is waited for as a migration's is (another
    // process may be backfilling the same accounts). Re-keying reads every account, once per key
    // function (recorded in the same transaction).
    backfillLoginKeys: (keyOf, keyFunction) =>
      call(() => {
        const recorded = () => keyFunction === undefined || keyFunctionRecorded.get(keyFunction) !== undefined;
        if (!anyKeyless.get() && recorded()) return { filled: 0, clashes: [] };
        return waitingForUpgrades(db, () =>
          db
            .transaction(() => {
              let filled = 0;
              const clashes: string[] = [];
              const rekey = !recorded();
              for (const row of (rekey ? everyAccount : keyless).all() as Array<{ id: string; login: string; login_key: string | null }>) {
                const key = keyOf(row.login);
                if (row.login_key === key) continue;
                if (keyTaken.get(key)) clashes.push(row.id);
                else filled += setKey.run({ key, id: row.id, was: row.login_key }).changes;
              }
              if (rekey) recordKeyFunction.run(keyFunction, Date.now());
              return { filled, clashes };
            })
            .immediate(),
        );
      }),
    updatePasswordHash: (id, passwordHash, at, expectedEpoch) =>
      call(() => {
        const row =
          expectedEpoch === undefined
            ? returning<UserRow>(updatePassword, passwordHash, toMs(at), id)
            : returning<UserRow>(updatePasswordIf, passwordHash, toMs(at), id, expectedEpoch);
        return row ? toRecord(row) : null;
      }),
    rehashPassword: (id, expectedHash, newHash) => call(() => rehash.run(newHash, id, expectedHash).changes === 1),
    setLastLogin: (id, at, options) =>
      call(() => {
        const set = () => lastLogin.run({ at: toMs(at), id }).changes === 1;
        // Unsynced for a login whose next write syncs it (see the port).
        return (options?.syncedByNextWrite ? cheaply(set) : set()) ? fromMs(toMs(at)) : null;
      }),
    deactivate: (id, at) => spend(() => deactivate.run(toMs(at), id).changes === 1),
  };
}
