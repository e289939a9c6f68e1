// The persistence contract the core depends on. Adapters (sqlite/, mongo/) implement it; the
// contract suite in test/store/ runs one set of tests against each of them.
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

// ---------------------------------------------------------------------------------------------
// Errors

/** Base class of the errors adapters throw on purpose. */
export class StoreError extends Error {
  override name = "StoreError";
}

/** The database is down, unreachable or timed out. Maps to UNAVAILABLE (HTTP 503). */
export class StoreUnavailableError extends StoreError {
  override name = "StoreUnavailableError";
  constructor(message = "store unavailable", options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A unique constraint refused the write. `key` names the constrained field of the record
 * ("login", "hash", "jti", "kid", "generation", "id", ...) — never its value, which may be secret.
 */
export class DuplicateError extends StoreError {
  override name = "DuplicateError";
  readonly key: string;
  constructor(key: string, options?: { cause?: unknown }) {
    super(`duplicate ${key}`, options);
    this.key = key;
  }
}

// ---------------------------------------------------------------------------------------------
// Users (shared by every service)

export interface UserRecord {
  id: string;
  /** Normalised by the core (trim, NFC, lower-case emails); unique. */
  login: string;
  emails: string[];
  firstname?: string;
  lastname?: string;
  passwordHash: string;
  active: boolean;
  createdAt: Date;
  lastLoginAt?: Date;
  /** Set at creation and on every password change; tokens issued before it may be refused. */
  passwordChangedAt: Date;
  deactivatedAt?: Date;
  /** Starts at 0, grows on every change (optimistic-concurrency counter). */
  version: number;
}

export interface NewUser {
  id: string;
  login: string;
  emails: string[];
  firstname?: string;
  lastname?: string;
  passwordHash: string;
  createdAt: Date;
}

export interface UserStore {
  /** active=true, version=0, passwordChangedAt=createdAt. DuplicateError("login") when taken (or "id"). */
  create(user: NewUser): Promise<UserRecord>;
  findById(id: string): Promise<UserRecord | null>;
  /** `login` must already be normalised by the caller. */
  findByLogin(login: string): Promise<UserRecord | null>;
  /** A real password change: sets hash and passwordChangedAt, version++. Null when no such user. */
  updatePasswordHash(id: string, passwordHash: string, at: Date): Promise<UserRecord | null>;
  /**
   * Rehash after a parameter change (same password): replaces the hash only while it is still
   * `expectedHash`, so it never overwrites a concurrent password change. passwordChangedAt is
   * kept; version++. Returns whether it was replaced.
   */
  rehashPassword(id: string, expectedHash: string, newHash: string): Promise<boolean>;
  /** Sets lastLoginAt = at and returns it; null when no such active user. */
  setLastLogin(id: string, at: Date): Promise<Date | null>;
  /** active=false, deactivatedAt=at, version++; false when unknown or already inactive. */
  deactivate(id: string, at: Date): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------------
// Sessions and their refresh tokens (seed 000)

export interface SessionRecord {
  id: string;
  userId: string;
  clientId: string;
  /** jti of the most recent access token; only that one is accepted. */
  accessJti: string;
  createdAt: Date;
  expiresAt: Date;
  endedAt?: Date;
}

export type NewSession = Omit<SessionRecord, "endedAt">;

export interface SessionStore {
  /** DuplicateError("id") on an id clash. */
  create(session: NewSession): Promise<SessionRecord>;
  findById(id: string): Promise<SessionRecord | null>;
  /** CAS: sets accessJti=newJti only while it is expectedJti and the session is not ended. */
  setAccessJti(id: string, expectedJti: string, newJti: string): Promise<boolean>;
  /** Ends the session (sets endedAt) if it is not ended yet; returns whether this call ended it. */
  end(id: string, at: Date): Promise<boolean>;
  /** Ends every open session of the user; returns how many. */
  endAllForUser(userId: string, at: Date): Promise<number>;
}

/** Opaque refresh token; the store only ever sees its hash. */
export interface RefreshTokenRecord {
  hash: string;
  sessionId: string;
  createdAt: Date;
  expiresAt: Date;
  spentAt?: Date;
}

export type NewRefreshToken = Omit<RefreshTokenRecord, "spentAt">;

export interface RefreshTokenStore {
  /** DuplicateError("hash") on a clash. */
  insert(token: NewRefreshToken): Promise<RefreshTokenRecord>;
  findByHash(hash: string): Promise<RefreshTokenRecord | null>;
  /**
   * Atomically marks the token spent (only if it is not spent yet) and returns the record AS IT
   * WAS BEFORE: `spentAt` absent -> this call won the rotation; `spentAt` present -> it was
   * already spent at that time (reuse or a concurrent refresh). Null when unknown.
   * Expiry is not checked here (the caller compares expiresAt).
   */
  spend(hash: string, at: Date): Promise<RefreshTokenRecord | null>;
  deleteBySession(sessionId: string): Promise<number>;
  /** Housekeeping: deletes tokens with expiresAt < before. */
  deleteExpired(before: Date): Promise<number>;
}

// ---------------------------------------------------------------------------------------------
// API tokens per gateway account (seed 001)

export interface ApiTokenRecord {
  /** token_link: server-made UUID, the public handle. Unique. */
  link: string;
  /** SHA-256 of the secret. Unique. */
  hash: string;
  accountId: string;
  description: string;
  createdBy?: string;
  issuedAt: Date;
  lastUsedAt?: Date;
  revokedAt?: Date;
}

export type NewApiToken = Omit<ApiTokenRecord, "lastUsedAt" | "revokedAt">;

export type ApiTokenState = "active" | "revoked";

export interface ApiTokenStore {
  /** DuplicateError("link" | "hash"). */
  create(token: NewApiToken): Promise<ApiTokenRecord>;
  findByHash(hash: string): Promise<ApiTokenRecord | null>;
  findByLink(link: string): Promise<ApiTokenRecord | null>;
  /** Only while not revoked; returns the updated record, null when unknown or revoked. */
  updateDescription(link: string, description: string): Promise<ApiTokenRecord | null>;
  /** Tokens of the account in that state, newest first (issuedAt desc, then link desc). */
  list(accountId: string, state: ApiTokenState): Promise<ApiTokenRecord[]>;
  /** CAS: revokes only an unrevoked token of that account; returns the revoked record or null. */
  revoke(accountId: string, link: string, at: Date): Promise<ApiTokenRecord | null>;
  /**
   * Coalesced write: time is cut into intervals of minIntervalMs (aligned to multiples of it since
   * the epoch; default 0 = every millisecond); sets lastUsedAt=at only when lastUsedAt is unset or
   * before the interval `at` falls in. So all instances together write at most once per token
   * per interval, and lastUsedAt never moves back. Returns whether this call wrote.
   */
  touchLastUsed(link: string, at: Date, minIntervalMs?: number): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------------
// User tokens (seed 002)

export interface UserTokenRecord {
  id: string;
  /** SHA-256 of the bearer secret. Unique. */
  hash: string;
  userId: string;
  note?: string;
  expiresAt?: Date;
  createdAt: Date;
  enabled: boolean;
  /** Starts at 0; grows on every change of the token (not on usage bookkeeping). */
  version: number;
  lastUsedAt?: Date;
}

export type NewUserToken = Omit<UserTokenRecord, "enabled" | "version" | "lastUsedAt">;

export interface UserTokenStore {
  /** enabled=true, version=0. DuplicateError("id" | "hash"). */
  create(token: NewUserToken): Promise<UserTokenRecord>;
  findByHash(hash: string): Promise<UserTokenRecord | null>;
  findById(id: string): Promise<UserTokenRecord | null>;
  /** Coalesced like ApiTokenStore.touchLastUsed; does not change version. */
  touchLastUsed(id: string, at: Date, minIntervalMs?: number): Promise<boolean>;
  /** Logout: enabled=false, version++ only if enabled; returns whether this call disabled it. */
  disable(id: string): Promise<boolean>;
  /** Disables every enabled token of the user (version++ each); returns how many. */
  disableAllForUser(userId: string): Promise<number>;
}

// ---------------------------------------------------------------------------------------------
// Short-lived authentication tokens (seed 003)

export interface AuthTokenRecord {
  /** SHA-256 of the random token id given to the client. Unique. */
  hash: string;
  userId: string;
  createdAt: Date;
  expiresAt: Date;
  consumedAt?: Date;
}

export type NewAuthToken = Omit<AuthTokenRecord, "consumedAt">;

export interface AuthTokenStore {
  /** DuplicateError("hash"). */
  create(token: NewAuthToken): Promise<AuthTokenRecord>;
  findByHash(hash: string): Promise<AuthTokenRecord | null>;
  /**
   * Atomic single use: succeeds only if unconsumed and expiresAt > now; sets consumedAt=now and
   * returns the consumed record. Null when unknown, already consumed or expired.
   */
  consume(hash: string, now: Date): Promise<AuthTokenRecord | null>;
  deleteExpired(before: Date): Promise<number>;
}

// ---------------------------------------------------------------------------------------------
// JWT refresh tokens (seed 004): the JWT is self-contained; the store keeps revocation state.

export interface JwtRefreshTokenRecord {
  jti: string;
  userId: string;
  issuedAt: Date;
  expiresAt: Date;
  revokedAt?: Date;
}

export type NewJwtRefreshToken = Omit<JwtRefreshTokenRecord, "revokedAt">;

export interface JwtRefreshTokenStore {
  /** DuplicateError("jti"). */
  create(token: NewJwtRefreshToken): Promise<JwtRefreshTokenRecord>;
  findByJti(jti: string): Promise<JwtRefreshTokenRecord | null>;
  /** Revokes an unrevoked token of that user; false when unknown, another user's or already revoked. */
  revoke(jti: string, userId: string, at: Date): Promise<boolean>;
  /** Revokes every unrevoked token of the user (only those issued before `issuedBefore` when given). */
  revokeAllForUser(userId: string, at: Date, issuedBefore?: Date): Promise<number>;
  deleteExpired(before: Date): Promise<number>;
}

// ---------------------------------------------------------------------------------------------
// Signing keys, shared by every instance

export interface SigningKeyRecord {
  kid: string;
  alg: string;
  /** JWK as JSON text. */
  privateJwk: string;
  /** JWK as JSON text. */
  publicJwk: string;
  /**
   * 1, 2, 3, ... unique. The key with the highest generation is the current signing key; the
   * unique index is what lets several instances agree on exactly one key per generation.
   */
  generation: number;
  createdAt: Date;
  activatedAt: Date;
  /** Set when a newer generation replaced it; it keeps verifying until notAfter. */
  retiredAt?: Date;
  /** After this, no token signed by it can be valid: drop it from the JWKS. */
  notAfter?: Date;
}

export type NewSigningKey = Omit<SigningKeyRecord, "retiredAt" | "notAfter">;

export interface SigningKeyStore {
  /** Every stored key, generation ascending. */
  list(): Promise<SigningKeyRecord[]>;
  /** The key with the highest generation, or null when there is none yet. */
  current(): Promise<SigningKeyRecord | null>;
  /**
   * Inserts `key` unless its generation (or kid) is taken. Returns true when this call won; false
   * when another instance already stored that generation (read `current()` and use theirs).
   * Start-up: `insertGeneration({...key, generation: 1})`.
   */
  insertGeneration(key: NewSigningKey): Promise<boolean>;
  /**
   * Rotation: inserts `next` (generation = previous + 1 is required) and, if it won, retires the
   * previous generation (retiredAt = next.activatedAt, notAfter = previousNotAfter). Returns
   * false, changing nothing, when another instance already rotated to that generation.
   */
  rotate(next: NewSigningKey, previousNotAfter: Date): Promise<boolean>;
  /** Housekeeping: deletes retired keys whose notAfter < before; returns how many. */
  deleteExpired(before: Date): Promise<number>;
}

// ---------------------------------------------------------------------------------------------
// Failed-login counters for abuse protection, shared across instances

export interface LoginAttemptRecord {
  /** e.g. "login:<normalised login>" or "addr:<ip>". */
  key: string;
  /** Failures counted in the current window. */
  failures: number;
  firstFailureAt: Date;
  lastFailureAt: Date;
  lockedUntil?: Date;
}

export interface LoginAttemptStore {
  /**
   * Atomic increment: when the window that started at firstFailureAt is still open
   * (firstFailureAt > at - windowMs) failures++, otherwise a new window starts (failures=1,
   * firstFailureAt=at). lockedUntil is kept. Returns the state after the increment.
   */
  recordFailure(key: string, at: Date, windowMs: number): Promise<LoginAttemptRecord>;
  get(key: string): Promise<LoginAttemptRecord | null>;
  /** After a successful login. */
  reset(key: string): Promise<void>;
  /** No-op when the key has no record. */
  setLockedUntil(key: string, until: Date): Promise<void>;
  /**
   * Housekeeping: deletes the records whose last failure is before `lastFailureBefore` and that
   * are not locked at `now` (their window has long passed: they can never count again).
   * Returns how many records (documents) it deleted.
   */
  deleteStale(lastFailureBefore: Date, now: Date): Promise<number>;
}

// ---------------------------------------------------------------------------------------------
// The aggregate

export type StoreKind = "sqlite" | "mongo";

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
  /** Resolves when the database answers; StoreUnavailableError otherwise (readiness checks). */
  ping(): Promise<void>;
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
}
