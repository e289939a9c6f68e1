import type { Db, IndexSpecification, CreateIndexesOptions } from "mongodb";
import { isUnavailable } from "./mongo-errors.js";
import { API_TOKENS } from "./mongo-api-tokens.js";
import { AUDIT_EVENTS } from "./mongo-audit-events.js";
import { AUTH_TOKENS } from "./mongo-auth-tokens.js";
import { JWT_REFRESH_TOKENS } from "./mongo-jwt-refresh-tokens.js";
import { KNOWN_LOGINS, LOGIN_ATTEMPT_RELEASES, LOGIN_ATTEMPTS } from "./mongo-login-attempts.js";
import { REFRESH_TOKENS } from "./mongo-refresh-tokens.js";
import { SESSIONS } from "./mongo-sessions.js";
import { SIGNING_KEYS } from "./mongo-signing-keys.js";
import { USER_TOKENS } from "./mongo-user-tokens.js";
import { USER_PASSWORDS, USERS } from "./mongo-users.js";
import { MARKS } from "./mongo-marks.js";

interface IndexPlan {
  collection: string;
  keys: IndexSpecification;
  options: CreateIndexesOptions;
}

// TTL indexes only tidy up: every expiry is checked on read by the core. Token documents get none
// (deleteExpired() removes a token together with its marks). A mark carries the expiry of what it
// describes, and nothing is usable after its expiry, so dropping the mark a day later is safe.
const DAY_S = 24 * 60 * 60;

// Unique indexes are load-bearing (they decide duplicate logins, hashes, key generations);
// `_id` carries each collection's natural key and is unique by itself.
const plan: readonly IndexPlan[] = [
  { collection: USERS, keys: { login: 1 }, options: { unique: true, name: "login_1" } },
  // Sparse: accounts stored before login keys have none until the start-up backfill.
  { collection: USERS, keys: { loginKey: 1 }, options: { unique: true, sparse: true, name: "loginKey_1" } },
  { collection: USER_PASSWORDS, keys: { userId: 1, n: -1 }, options: { name: "userId_1_n_-1" } },
  { collection: SESSIONS, keys: { userId: 1 }, options: { name: "userId_1" } },
  { collection: SESSIONS, keys: { expiresAt: 1 }, options: { name: "expiresAt_1" } },
  { collection: REFRESH_TOKENS, keys: { sessionId: 1 }, options: { name: "sessionId_1" } },
  { collection: REFRESH_TOKENS, keys: { expiresAt: 1 }, options: { name: "expiresAt_1" } },
  { collection: API_TOKENS, keys: { hash: 1 }, options: { unique: true, name: "hash_1" } },
  {
    collection: API_TOKENS,
    keys: { accountId: 1, issuedAt: -1, _id: -1 },
    options: { name: "accountId_1_issuedAt_-1__id_-1" },
  },
  { collection: USER_TOKENS, keys: { hash: 1 }, options: { unique: true, name: "hash_1" } },
  { collection: USER_TOKENS, keys: { userId: 1 }, options: { name: "userId_1" } },
  // Housekeeping's retention finds ended tokens by these (deleteEndedBefore). Plain, not TTL: a
  // token goes with its marks and last-use document, and only past the retention.
  { collection: USER_TOKENS, keys: { expiresAt: 1 }, options: { name: "expiresAt_1" } },
  { collection: USER_TOKENS, keys: { disabledAt: 1 }, options: { name: "disabledAt_1" } },
  { collection: AUTH_TOKENS, keys: { expiresAt: 1 }, options: { name: "expiresAt_1" } },
  { collection: JWT_REFRESH_TOKENS, keys: { userId: 1 }, options: { name: "userId_1" } },
  { collection: JWT_REFRESH_TOKENS, keys: { expiresAt: 1 }, options: { name: "expiresAt_1" } },
  { collection: SIGNING_KEYS, keys: { generation: 1 }, options: { unique: true, name: "generation_1" } },
  { collection: LOGIN_ATTEMPTS, keys: { key: 1, n: -1 }, options: { name: "key_1_n_-1" } },
  // Housekeeping finds stale states and releases by these (see deleteStale).
  { collection: LOGIN_ATTEMPTS, keys: { lastFailureAt: 1 }, options: { name: "lastFailureAt_1" } },
  { collection: LOGIN_ATTEMPT_RELEASES, keys: { key: 1, windowStart: 1 }, options: { name: "key_1_windowStart_1" } },
  { collection: LOGIN_ATTEMPT_RELEASES, keys: { windowStart: 1 }, options: { name: "windowStart_1" } },
  { collection: KNOWN_LOGINS, keys: { until: 1 }, options: { name: "until_1" } },
  { collection: AUDIT_EVENTS, keys: { time: -1, _id: -1 }, options: { name: "time_-1__id_-1" } },
  { collection: AUDIT_EVENTS, keys: { userId: 1, time: -1, _id: -1 }, options: { name: "userId_1_time_-1__id_-1" } },
  { collection: MARKS, keys: { expiresAt: 1 }, options: { name: "expiresAt_1", expireAfterSeconds: DAY_S } },
];

export type Warn = (message: string, fields?: Record<string, unknown>) => void;

/**
 * Creates every index (idempotent). A server without TTL support (FerretDB 1.x) gets a plain
 * index instead, with a warning: nothing depends on TTL deletion.
 */
export async function ensureIndexes(db: Db, warn: Warn): Promise<void> {
  for (const { collection, keys, options } of plan) {
    try {
      await db.collection(collection).createIndex(keys, options);
    } catch (error) {
      if (options.expireAfterSeconds === undefined || isUnavailable(error)) throw error;
      warn("TTL index not supported by this server; expired records are removed by housekeeping only", {
        collection,
        index: options.name,
        error: error instanceof Error ? error.message : String(error),
      });
      const { expireAfterSeconds: _ttl, ...plain } = options;
      await db.collection(collection).createIndex(keys, plain);
    }
  }
}
