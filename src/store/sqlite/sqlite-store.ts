import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { StoreUnavailableError, type Store } from "../ports.js";
import { sqliteApiTokens } from "./sqlite-api-tokens.js";
import { sqliteAuthTokens } from "./sqlite-auth-tokens.js";
import { call, mapSqliteError } from "./sqlite-errors.js";
import { sqliteJwtRefreshTokens } from "./sqlite-jwt-refresh-tokens.js";
import { sqliteLoginAttempts } from "./sqlite-login-attempts.js";
import { sqliteRefreshTokens } from "./sqlite-refresh-tokens.js";
import { sqliteSessions } from "./sqlite-sessions.js";
import { sqliteSigningKeys } from "./sqlite-signing-keys.js";
import { sqliteUserTokens } from "./sqlite-user-tokens.js";
import { sqliteUsers } from "./sqlite-users.js";
import { migrate } from "./schema.js";

export const SQLITE_FILE_NAME = "tessera.db";

/**
 * Opens (creating if needed) `${dataDir}/tessera.db`.
 *
 * Durability: WAL with synchronous=FULL. NORMAL would already keep every acknowledged write
 * across a kill -9 of the process (the WAL lives in the OS page cache), but could lose the last
 * commits on power loss or an OS crash — for an auth store that can mean a revoked token or a
 * changed password coming back. FULL fsyncs the WAL on each commit; reads (the hot paths:
 * authenticate, get session) are unaffected, and the hot write paths are either rare or coalesced.
 */
export async function openSqliteStore(dataDir: string): Promise<Store> {
  let db: Database.Database;
  try {
    mkdirSync(dataDir, { recursive: true });
    db = new Database(join(dataDir, SQLITE_FILE_NAME));
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    // Another process on the same file (a second instance, a CLI) waits instead of failing at once.
    db.pragma("busy_timeout = 5000");
    db.pragma("foreign_keys = ON");
    migrate(db);
  } catch (error) {
    const mapped = mapSqliteError(error);
    if (mapped instanceof StoreUnavailableError) throw mapped;
    throw error;
  }
  const ping = db.prepare("SELECT 1");

  return {
    kind: "sqlite",
    users: sqliteUsers(db),
    sessions: sqliteSessions(db),
    refreshTokens: sqliteRefreshTokens(db),
    apiTokens: sqliteApiTokens(db),
    userTokens: sqliteUserTokens(db),
    authTokens: sqliteAuthTokens(db),
    jwtRefreshTokens: sqliteJwtRefreshTokens(db),
    keys: sqliteSigningKeys(db),
    loginAttempts: sqliteLoginAttempts(db),
    ping: () =>
      call(() => {
        ping.get();
      }),
    close: async () => {
      if (db.open) db.close();
    },
  };
}
