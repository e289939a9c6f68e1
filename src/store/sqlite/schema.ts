import type Database from "better-sqlite3";

// Ordered migrations. Never edit an applied one: append a new entry. All those a start applies
// run in one transaction together with the rows that record them in schema_version. Exported so
// that a database of every older version can be built from its own steps.
export const migrations: readonly string[] = [
  `
  CREATE TABLE users (
    id TEXT PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    emails TEXT NOT NULL,            -- JSON array
    firstname TEXT,
    lastname TEXT,
    password_hash TEXT NOT NULL,
    active INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_login_at INTEGER,
    password_changed_at INTEGER NOT NULL,
    deactivated_at INTEGER,
    version INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    access_jti TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at INTEGER
  ) STRICT;
  CREATE INDEX sessions_user_id ON sessions (user_id);

  CREATE TABLE refresh_tokens (
    hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    spent_at INTEGER
  ) STRICT;
  CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
  CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

  CREATE TABLE api_tokens (
    link TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    description TEXT NOT NULL,
    created_by TEXT,
    issued_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
  ) STRICT;
  CREATE INDEX api_tokens_account ON api_tokens (account_id, issued_at DESC, link DESC);

  CREATE TABLE user_tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    note TEXT,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    version INTEGER NOT NULL,
    last_used_at INTEGER
  ) STRICT;
  CREATE INDEX user_tokens_user_id ON user_tokens (user_id);

  CREATE TABLE auth_tokens (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed_at INTEGER
  ) STRICT;
  CREATE INDEX auth_tokens_expires_at ON auth_tokens (expires_at);

  CREATE TABLE jwt_refresh_tokens (
    jti TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
  ) STRICT;
  CREATE INDEX jwt_refresh_tokens_user_id ON jwt_refresh_tokens (user_id);
  CREATE INDEX jwt_refresh_tokens_expires_at ON jwt_refresh_tokens (expires_at);

  CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    generation INTEGER NOT NULL UNIQUE,
    alg TEXT NOT NULL,
    private_jwk TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    activated_at INTEGER NOT NULL,
    retired_at INTEGER,
    not_after INTEGER
  ) STRICT;

  CREATE TABLE login_attempts (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    first_failure_at INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    locked_until INTEGER
  ) STRICT;
  `,
  // Login keys (NFKC + case folding, computed by the core): rows from before have none until
  // the start-up backfill gives them one. SQLite's UNIQUE lets any number of NULLs in.
  // Attempt slots: `held` counts the slots taken (failures, and attempts being checked); every
  // failure counted so far held its slot.
  // Remembered logins: SHA-256 of (login key, client address) -> until when.
  `
  ALTER TABLE users ADD COLUMN login_key TEXT;
  CREATE UNIQUE INDEX users_login_key ON users (login_key);

  ALTER TABLE login_attempts ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
  UPDATE login_attempts SET held = failures;

  CREATE TABLE known_logins (
    hash TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX known_logins_expires_at ON known_logins (expires_at);
  `,
  // The audit trail: appended, listed newest first (time, then id), deleted by retention.
  `
  CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    time INTEGER NOT NULL,
    type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    user_id TEXT,
    login TEXT,
    api TEXT,
    client_id TEXT,
    client_address TEXT,
    user_agent TEXT,
    request_id TEXT,
    trace_id TEXT,
    span_id TEXT,
    subject TEXT,
    reason TEXT
  ) STRICT;
  CREATE INDEX audit_events_time ON audit_events (time DESC, id DESC);
  CREATE INDEX audit_events_user ON audit_events (user_id, time DESC, id DESC);
  CREATE INDEX audit_events_type ON audit_events (type, time DESC, id DESC);
  `,
  // Credential epochs: a user's counter grows on every password change and on deactivation;
  // every credential records the epoch it was issued under (NULL: issued before epochs existed,
  // checked by its creation time alone). Hand-off tokens carry the end of the cookie session
  // they came from (not_after). A spent refresh token keeps its child pair, sealed (child).
  // Signing keys can be revoked.
  `
  ALTER TABLE users ADD COLUMN credential_epoch INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE sessions ADD COLUMN credential_epoch INTEGER;
  ALTER TABLE user_tokens ADD COLUMN credential_epoch INTEGER;
  ALTER TABLE jwt_refresh_tokens ADD COLUMN credential_epoch INTEGER;
  ALTER TABLE auth_tokens ADD COLUMN credential_epoch INTEGER;
  ALTER TABLE auth_tokens ADD COLUMN not_after INTEGER;
  ALTER TABLE refresh_tokens ADD COLUMN child TEXT;
  ALTER TABLE signing_keys ADD COLUMN revoked_at INTEGER;
  `,
  // Housekeeping deletes expired sessions.
  `
  CREATE INDEX sessions_expires_at ON sessions (expires_at);
  `,
  // Housekeeping finds what it deletes by an index, never by reading a whole table: stale login
  // counters by their last attempt, retired signing keys by the end of their last token.
  `
  CREATE INDEX login_attempts_last_attempt ON login_attempts (last_failure_at);
  CREATE INDEX signing_keys_not_after ON signing_keys (not_after);
  `,
  // Retention of user tokens and cookie sessions: housekeeping deletes those that expired or were
  // disabled (logged out) TESSERA_USER_TOKEN_RETENTION_DAYS ago, found by these indexes (partial:
  // a token that never expires or is still enabled has no entry). Tokens disabled before this
  // version have no disabled_at: only their expiry counts.
  `
  ALTER TABLE user_tokens ADD COLUMN disabled_at INTEGER;
  CREATE INDEX user_tokens_expires_at ON user_tokens (expires_at) WHERE expires_at IS NOT NULL;
  CREATE INDEX user_tokens_disabled_at ON user_tokens (disabled_at) WHERE disabled_at IS NOT NULL;
  `,
  // The credential an authentication token was made from ("session:<id>", "user_token:<id>"):
  // its exchange checks that it is still live. Tokens made before this version have none.
  `
  ALTER TABLE auth_tokens ADD COLUMN source TEXT;
  `,
  // What an "audit.suppressed" event counted (JSON: {"since": ms, "count", "events": [...]});
  // null on every other event.
  `
  ALTER TABLE audit_events ADD COLUMN suppressed TEXT;
  `,
  // Housekeeping deletes a signing key revoked without being retired (it has no not_after) by
  // the time of its revocation.
  `
  CREATE INDEX signing_keys_revoked_unretired ON signing_keys (revoked_at) WHERE retired_at IS NULL AND revoked_at IS NOT NULL;
  `,
  // The kids of the signing keys of the tokens an authentication token or a cookie session was
  // made from (JSON array): it ends once one of them is revoked. NULL: no signed token took part,
  // or made before this version.
  `
  ALTER TABLE auth_tokens ADD COLUMN source_kids TEXT;
  ALTER TABLE user_tokens ADD COLUMN source_kids TEXT;
  `,
  // Login attempt slots still being checked are held on a lease (ports/login-attempts.ts): the
  // group of pending slots (taken at or after pending_from) counts until pending_until. NULL in
  // rows from before: every pending slot of the row's window is in the group, which lasts the
  // lease from its last attempt.
  `
  ALTER TABLE login_attempts ADD COLUMN pending_from INTEGER;
  ALTER TABLE login_attempts ADD COLUMN pending_until INTEGER;
  `,
  // The credentials a cookie session descends from (JSON array of "session:<id>" and
  // "user_token:<id>"): it ends once one of them has ended. NULL: a user token, a cookie session
  // made from a seed 004 JWT, or one made before this version.
  `
  ALTER TABLE user_tokens ADD COLUMN sources TEXT;
  `,
  // The login key functions (core/login-name.ts LOGIN_KEY_FUNCTION) every account has been
  // re-keyed for: a start whose function is recorded (or a newer one) reads only the keyless
  // accounts. Empty in a database from before: its first start re-keys once.
  `
  CREATE TABLE login_key_functions (version INTEGER PRIMARY KEY, recorded_at INTEGER NOT NULL);
  `,
  // An account's active API tokens, counted by every creation against
  // TESSERA_MAX_API_TOKENS_PER_ACCOUNT: the count reads these entries only, never its revoked
  // ones, and no row (revoked_at is in the index so that the query's own test needs none).
  `
  CREATE INDEX api_tokens_account_active ON api_tokens (account_id, issued_at, revoked_at) WHERE revoked_at IS NULL;
  `,
  // The caps on a user's live credentials (sqlite/sqlite-caps.ts): a creation reads the user's
  // newest by these, newest first, and ends those past the cap. Partial where only live ones
  // count (an unrevoked refresh token, an enabled user token), so those ended are not read again.
  `
  CREATE INDEX sessions_user_created ON sessions (user_id, created_at);
  CREATE INDEX jwt_refresh_tokens_user_issued ON jwt_refresh_tokens (user_id, issued_at) WHERE revoked_at IS NULL;
  CREATE INDEX user_tokens_user_created ON user_tokens (user_id, created_at) WHERE enabled = 1;
  `,
  // The session cap deletes the user's ended sessions before any live one: it reads them by
  // this, earliest ended first, never going through the live ones.
  `
  CREATE INDEX sessions_user_ended ON sessions (user_id, ended_at) WHERE ended_at IS NOT NULL;
  `,
  // Retention of revoked API tokens: housekeeping deletes those revoked
  // TESSERA_API_TOKEN_RETENTION_DAYS ago, found by this (partial: an active token has no entry).
  `
  CREATE INDEX api_tokens_revoked_at ON api_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
  `,
];

/**
 * How long a start waits for the write lock to upgrade the database (migrate, backfill login
 * keys): another process may hold it doing the same to a large database (an index over every
 * session, a key for every user), and it must finish before this one can look. The usual busy
 * timeout (5 s) would fail such a start with SQLITE_BUSY.
 */
const UPGRADE_WAIT_MS = 10 * 60_000;

/** Runs `fn` (which takes the write lock) waiting up to UPGRADE_WAIT_MS for other processes. */
export function waitingForUpgrades<T>(db: Database.Database, fn: () => T): T {
  const busyTimeout = db.pragma("busy_timeout", { simple: true }) as number;
  db.pragma(`busy_timeout = ${UPGRADE_WAIT_MS}`);
  try {
    return fn();
  } finally {
    db.pragma(`busy_timeout = ${busyTimeout}`);
  }
}

/** The schema version the database records (its highest schema_version row); null when it records none. */
export function recordedSchemaVersion(db: Database.Database): number | null {
  return (db.prepare("SELECT MAX(version) AS v FROM schema_version").get() as { v: number | null }).v;
}

/** Brings the schema up to date; returns the resulting schema version. */
export function migrate(db: Database.Database): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at INTEGER NOT NULL
  ) STRICT`);
  const versionNow = () => recordedSchemaVersion(db) ?? 0;
  const refuseNewer = (current: number) => {
    if (current > migrations.length) {
      // A newer version wrote it: refused before anything reads or writes its tables.
      throw new Error(
        `the embedded store's database ${db.name} has schema version ${current}, newer than this build's (${migrations.length}): run the version that wrote it, or restore a copy from before it`,
      );
    }
  };
  // Up to date (every start but the first of a version): no write lock taken.
  const seen = versionNow();
  refuseNewer(seen);
  if (seen === migrations.length) return seen;
  // IMMEDIATE takes the write lock up front, so two processes opening one file migrate in turn:
  // the second, once the first is done, finds nothing left to do.
  const apply = db.transaction(() => {
    let current = versionNow();
    refuseNewer(current);
    for (; current < migrations.length; current++) {
      db.exec(migrations[current]!);
      db.prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)").run(current + 1, Date.now());
    }
    return current;
  });
  return waitingForUpgrades(db, () => apply.immediate());
}
