// The persistence contract the core depends on, one port per domain (like Ory Kratos'
// per-domain persistence interfaces) under ports/; this file gathers them into the Store an
// adapter provides. Each core part takes only the ports it uses. Adapters (sqlite/, mongo/)
// implement them all; the contract suite in test/store/ runs one set of tests against each.
//
// Rules every adapter keeps:
// - Times are `Date` with millisecond precision; ids are strings. Optional fields are absent
//   (not null) when unset.
// - Every method that decides a race (CAS, unique key, counter) is decided by ONE atomic operation
//   in the database (UPDATE ... WHERE ... RETURNING in SQLite; an insert into a unique index in
//   MongoDB, because FerretDB 1.x updates are not atomic — see mongo/mongo-marks.ts), never by
//   read-then-write, so several instances sharing one database stay correct.
// - Records returned are plain copies: mutating them changes nothing in the store.
// - A database that is down or unreachable surfaces as StoreUnavailableError (the service maps
//   it to UNAVAILABLE / 503); a unique-key clash as DuplicateError. Nothing else is thrown on
//   purpose; anything else is a bug (INTERNAL).
// - Expiry is never left to the database (FerretDB has no TTL): callers compare `expiresAt`
//   with their own clock; `deleteExpired` exists only to keep tables small.
// - Housekeeping deletes (deleteExpired, deleteEndedBefore, deleteOlderThan, deleteStale,
//   forgetExpiredLogins) take a `limit` and delete at most that many records per call, found by
//   an index: one batch. In
//   SQLite a batch is one statement and its own commit, so a backlog never holds the one write
//   lock (every worker's writers wait on it) or the event loop for long; in MongoDB it is one
//   find of at most `limit` ids by the index, then one deleteMany of those ids (the filter
//   applied again), so each batch gets the store's own time bound. A batch that comes back
//   short means nothing more was found; core/housekeeping.ts repeats them until then.
import type { ApiTokenStore } from "./ports/api-tokens.js";
import type { AuditEventStore } from "./ports/audit-events.js";
import type { AuthTokenStore } from "./ports/auth-tokens.js";
import type { JwtRefreshTokenStore } from "./ports/jwt-refresh-tokens.js";
import type { LoginAttemptStore } from "./ports/login-attempts.js";
import type { RefreshTokenStore, SessionStore } from "./ports/sessions.js";
import type { SigningKeyStore } from "./ports/signing-keys.js";
import type { UserTokenStore } from "./ports/user-tokens.js";
import type { UserStore } from "./ports/users.js";
import type { StoreUnavailableError } from "./ports/errors.js";

export * from "./ports/api-tokens.js";
export * from "./ports/audit-events.js";
export * from "./ports/auth-tokens.js";
export * from "./ports/caps.js";
export * from "./ports/errors.js";
export * from "./ports/jwt-refresh-tokens.js";
export * from "./ports/last-used.js";
export * from "./ports/login-attempts.js";
export * from "./ports/owed-releases.js";
export * from "./ports/sessions.js";
export * from "./ports/signing-keys.js";
export * from "./ports/user-tokens.js";
export * from "./ports/users.js";

export type StoreKind = "sqlite" | "mongo";

/** Every port, as one adapter provides them, plus the adapter's own life cycle. */
export interface Store {
  readonly kind: StoreKind;
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly refreshTokens: RefreshTokenStore;
  readonly apiTokens: ApiTokenStore;
  readonly userTokens: UserTokenStore;
  readonly authTokens: AuthTokenStore;
  readonly jwtRefreshTokens: JwtRefreshTokenStore;
  readonly keys: SigningKeyStore;
  readonly loginAttempts: LoginAttemptStore;
  readonly auditEvents: AuditEventStore;
  /**
   * Resolves when the database answers and takes writes; StoreUnavailableError otherwise
   * (readiness checks).
   */
  ping(): Promise<void>;
  /**
   * Undefined while the store can be trusted with writes. Once it cannot until the process
   * restarts (the embedded store after a failed fsync of its log), the error every write is
   * refused with: readiness and liveness fail. A database that is down is not this: it comes
   * back by itself.
   */
  failure(): StoreUnavailableError | undefined;
  /** Releases connections / file handles. Idempotent. */
  close(): Promise<void>;
}

export interface StoreConfig {
  /** Set -> MongoDB adapter; unset -> embedded SQLite under dataDir. */
  mongodbUri?: string;
  dataDir: string;
  /** Database name; wins over one named in the URI; default: the URI's, else "tessera". */
  mongoDbName?: string;
  /** How long a Mongo call waits for a server before failing with StoreUnavailableError. Default 2000. */
  serverSelectionTimeoutMs?: number;
  /** Where adapter warnings go (e.g. no TTL index support); default: a JSON line on stderr. */
  warn?: (message: string, fields?: Record<string, unknown>) => void;
  /** The embedded store's fsync of its log (fs.fsync's shape): tests hold and fail it. */
  fsync?: (fd: number, done: (error: NodeJS.ErrnoException | null) => void) => void;
  /** How the embedded store reports failing for good or a full disk, and hears of another worker's (TESSERA_WORKERS). */
  failures?: StoreFailures;
  /**
   * MongoDB that cannot be reached as the store opens fails the open (StoreUnavailableError naming
   * why), so that a start waiting for it (TESSERA_STORE_START_WAIT_SECONDS) tries again; unset, the
   * store opens and answers UNAVAILABLE until MongoDB is back.
   */
  failUnreachable?: boolean;
  /** Aborted: an open under way gives up at once (a stop during the start's wait for MongoDB). */
  stopped?: AbortSignal;
  /** MongoDB: worker processes of this instance (TESSERA_WORKERS), named in the warning on FerretDB 1.x's pool (default 1). */
  workers?: number;
  /** MongoDB: another worker of this instance warns of the server (FerretDB 1.x's pool): this one does not. */
  serverWarned?: boolean;
}

/**
 * The embedded store failing for good (see Store.failure), or meeting a full disk, between the
 * processes on its file.
 */
export interface StoreFailures {
  /** This store has failed for good: told once, with the error its writes are refused with. */
  failed(error: StoreUnavailableError): void;
  /** Calls `fail` when another process's store on the same file has failed (the message is its error's); this one then fails too. */
  listen(fail: (message: string) => void): void;
  /**
   * A write of this store met a full disk (SQLITE_FULL, or the log's index or a write refused for
   * room: sqlite-errors.ts meansFull) after one had committed, or before any had (its first
   * readiness probe's): told again each time.
   */
  full?(): void;
  /** Calls `full` when another process's store on the same file met a full disk: this one then takes itself as full too. */
  listenFull?(full: () => void): void;
}
