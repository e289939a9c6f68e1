import type { CreateIndexesOptions, Db, Document, IndexSpecification } from "mongodb";
import { isUnavailable } from "./mongo-errors.js";
import { API_TOKENS, API_TOKENS_ACTIVE_INDEX, API_TOKENS_PENDING_INDEX, API_TOKENS_REVOKED_INDEX } from "./mongo-api-tokens.js";
import { AUDIT_EVENTS } from "./mongo-audit-events.js";
import { AUTH_TOKENS } from "./mongo-auth-tokens.js";
import { JWT_REFRESH_TOKENS, JWT_REFRESH_TOKENS_CAP_INDEX } from "./mongo-jwt-refresh-tokens.js";
import { KNOWN_LOGINS, LOGIN_ATTEMPT_RELEASES, LOGIN_ATTEMPTS } from "./mongo-login-attempts.js";
import { REFRESH_TOKENS } from "./mongo-refresh-tokens.js";
import { CAP_INDEX, ENDED_INDEX, SESSIONS } from "./mongo-sessions.js";
import { SIGNING_KEYS } from "./mongo-signing-keys.js";
import { USER_TOKENS, USER_TOKENS_CAP_INDEX } from "./mongo-user-tokens.js";
import { USER_PASSWORDS, USERS } from "./mongo-users.js";
import { MARKS } from "./mongo-marks.js";

export interface IndexPlan {
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
  // The caps (mongo-caps.ts): a creation reads the user's newest credentials by these, named by
  // the reads (hint). Where only live ones count, the field an ended one has (disabledAt,
  // revokedAt) comes second: the live ones (those without it) are read without the others.
  { collection: SESSIONS, keys: { userId: 1, createdAt: -1, _id: -1 }, options: { name: CAP_INDEX } },
  // The session cap deletes the user's ended sessions (those with an endedAt copy) first.
  { collection: SESSIONS, keys: { userId: 1, endedAt: 1, _id: 1 }, options: { name: ENDED_INDEX } },
  { collection: USER_TOKENS, keys: { userId: 1, disabledAt: 1, createdAt: -1, _id: -1 }, options: { name: USER_TOKENS_CAP_INDEX } },
  { collection: JWT_REFRESH_TOKENS, keys: { userId: 1, revokedAt: 1, issuedAt: -1, _id: -1 }, options: { name: JWT_REFRESH_TOKENS_CAP_INDEX } },
  { collection: REFRESH_TOKENS, keys: { sessionId: 1 }, options: { name: "sessionId_1" } },
  { collection: REFRESH_TOKENS, keys: { expiresAt: 1 }, options: { name: "expiresAt_1" } },
  { collection: API_TOKENS, keys: { hash: 1 }, options: { unique: true, name: "hash_1" } },
  {
    collection: API_TOKENS,
    keys: { accountId: 1, issuedAt: -1, _id: -1 },
    options: { name: "accountId_1_issuedAt_-1__id_-1" },
  },
  // An account's active tokens, counted by every creation (revokedAt is absent until revoked).
  {
    collection: API_TOKENS,
    keys: { accountId: 1, revokedAt: 1, issuedAt: 1, _id: 1 },
    options: { name: API_TOKENS_ACTIVE_INDEX },
  },
  // Housekeeping finds abandoned pending tokens by this (deleteAbandoned); sparse: only a token
  // whose creation has not finished has `pending`.
  { collection: API_TOKENS, keys: { pending: 1, issuedAt: 1 }, options: { sparse: true, name: API_TOKENS_PENDING_INDEX } },
  // Housekeeping's retention finds revoked tokens by this (deleteRevokedBefore); sparse: only a
  // revoked token's document has `revokedAt`. Made at the first start of this version on a store
  // from before it, as every index of this plan is.
  { collection: API_TOKENS, keys: { revokedAt: 1 }, options: { sparse: true, name: API_TOKENS_REVOKED_INDEX } },
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
  // A count reads the releases of the key's current group only: those of its window taken
  // since the group started (mongo-login-attempts.ts). This version's index; the one before,
  // key_1_windowStart_1, is left in place on a store that has it (unused: it may be dropped).
  // FerretDB 1.x uses neither (it reads the key's releases of the window, matched by
  // PostgreSQL on the whole collection): there a count stays short because the releases
  // counted once, and those of ended groups, are deleted.
  { collection: LOGIN_ATTEMPT_RELEASES, keys: { key: 1, windowStart: 1, takenAt: 1 }, options: { name: "key_1_windowStart_1_takenAt_1" } },
  { collection: LOGIN_ATTEMPT_RELEASES, keys: { windowStart: 1 }, options: { name: "windowStart_1" } },
  { collection: KNOWN_LOGINS, keys: { until: 1 }, options: { name: "until_1" } },
  { collection: AUDIT_EVENTS, keys: { time: -1, _id: -1 }, options: { name: "time_-1__id_-1" } },
  { collection: AUDIT_EVENTS, keys: { userId: 1, time: -1, _id: -1 }, options: { name: "userId_1_time_-1__id_-1" } },
  { collection: MARKS, keys: { expiresAt: 1 }, options: { name: "expiresAt_1", expireAfterSeconds: DAY_S } },
];

/** The indexes ensureIndexes makes (README, "Indexes and shard keys", names them). */
export const indexPlan: readonly IndexPlan[] = plan;

export type Warn = (message: string, fields?: Record<string, unknown>) => void;

/** An index's keys and the options that decide answers, as the messages below show them. */
function describe(key: Document, unique: boolean | undefined): string {
  return JSON.stringify(key) + (unique ? " unique" : "");
}

/**
 * How an index found under a planned name differs from the plan: undefined when it is the
 * planned one, "ttl" when only its TTL differs (a TTL only tidies: every expiry is checked on
 * read), else what it is instead. Keys (their order too) and uniqueness are compared; `sparse`
 * is not, as FerretDB 1.x does not list it.
 */
export function indexConflict(found: Document, plan: Pick<IndexPlan, "keys" | "options">): "ttl" | string | undefined {
  const key = found.key as Document;
  const sameKeys = JSON.stringify(Object.entries(key)) === JSON.stringify(Object.entries(plan.keys as Document));
  if (!sameKeys || Boolean(found.unique) !== Boolean(plan.options.unique)) return `it exists as ${describe(key, found.unique as boolean | undefined)}`;
  return found.expireAfterSeconds === plan.options.expireAfterSeconds ? undefined : "ttl";
}

/** The indexes of `collection` by name (none before the collection exists). */
async function indexesOf(db: Db, collection: string): Promise<Map<string, Document>> {
  try {
    const list = await db.collection(collection).listIndexes().toArray();
    return new Map(list.map((index) => [index.name as string, index]));
  } catch (error) {
    if ((error as { code?: unknown }).code === 26) return new Map(); // NamespaceNotFound
    throw error;
  }
}

// createIndex's conflicts: IndexOptionsConflict (the same keys under another name, or the
// same name with other options), IndexKeySpecsConflict (the same name on other keys).
const conflictCodes = new Set([85, 86]);

/**
 * Creates every index (idempotent). A server without TTL support (FerretDB 1.x) gets a plain
 * index instead, with a warning: nothing depends on TTL deletion. An index that already exists
 * under a planned name is checked first (FerretDB 1.x answers a createIndex of a unique index
 * over a plain one of the same name with success, and keeps the plain one): one on other keys or
 * of another uniqueness is refused, naming it and what to do; one whose TTL differs (the first
 * version made the tokens' expiresAt_1 and login_attempts' lastFailureAt_1 TTL indexes) is kept,
 * with a warning.
 */
export async function ensureIndexes(db: Db, warn: Warn): Promise<void> {
  const existing = new Map<string, Map<string, Document>>();
  for (const { collection, keys, options } of plan) {
    let indexes = existing.get(collection);
    if (indexes === undefined) existing.set(collection, (indexes = await indexesOf(db, collection)));
    const name = options.name!;
    const found = indexes.get(name);
    const wanted = describe(keys as Document, options.unique);
    if (found !== undefined) {
      const conflict = indexConflict(found, { keys, options });
      if (conflict === undefined) continue;
      if (conflict !== "ttl") {
        throw new Error(
          `MongoDB index ${collection}.${name} is not the one this version needs (${wanted}): ${conflict}; drop it (db.${collection}.dropIndex("${name}")) and start again, it is then created as needed`,
        );
      }
      warn(
        options.expireAfterSeconds === undefined
          ? "index kept with the TTL an older version gave it; it only deletes records already expired"
          : "TTL index exists without its TTL; expired records are removed by housekeeping only",
        { collection, index: name, expireAfterSeconds: found.expireAfterSeconds ?? null },
      );
      continue;
    }
    try {
      await db.collection(collection).createIndex(keys, options);
    } catch (error) {
      if (conflictCodes.has((error as { code?: unknown }).code as number)) {
        throw new Error(
          `MongoDB index ${collection}.${name} (${wanted}) cannot be created: ${(error as Error).message}; drop the index of ${collection} on the same keys (db.${collection}.getIndexes() lists them) and start again`,
          { cause: error },
        );
      }
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
