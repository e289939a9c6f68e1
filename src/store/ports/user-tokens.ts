// User tokens (seed 002), and the cookie sessions of seed 003 stored alike.
import type { Capped } from "./caps.js";
import type { UserStanding } from "./users.js";

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
  /** The user's credential epoch when this was issued (UserRecord.credentialEpoch); absent on records from before epochs. */
  credentialEpoch?: number;
  /**
   * A cookie session: the kids of the signing keys of the tokens it descends from
   * (AuthTokenRecord.sourceKids); it ends once one of them is revoked. Absent on user tokens,
   * cookie sessions no signed token took part in, and records from before it was recorded.
   */
  sourceKids?: string[];
  /**
   * A cookie session: the credentials it descends from ("session:<id>", "user_token:<id>", as
   * AuthTokenRecord.source names them): the one the exchanged token was made from, then those
   * that one descends from (a cookie session's own). It ends once one of them has ended. Absent
   * on user tokens, cookie sessions made from a seed 004 JWT, and records from before it was
   * recorded.
   */
  sources?: string[];
}

export type NewUserToken = Omit<UserTokenRecord, "enabled" | "version" | "lastUsedAt">;

export interface UserTokenStore {
  /**
   * enabled=true, version=0. DuplicateError("id" | "hash"). `cap`
   * (TESSERA_MAX_USER_TOKENS_PER_USER, one cap for user tokens and cookie sessions together):
   * once the token is stored, the user's oldest enabled, unexpired tokens beyond the newest `cap`
   * (this one counted) are disabled as disable() does (logged out, kept for the retention), at
   * `createdAt`, at most CAP_BATCH of them; never this one, whatever its time. `ended`: the ids
   * this call disabled (none without a cap). With a cap, the user's newest CAP_BATCH tokens
   * that expired never logged out (by `createdAt`; MongoDB: CLOCK_STEP_MS before it) are
   * disabled too, not reported: else the cap's reads walked each for its whole retention. The
   * embedded store does it in the insert's transaction; MongoDB after the insert
   * (src/store/README.md, "Caps").
   */
  create(token: NewUserToken, cap?: number): Promise<Capped<UserTokenRecord>>;
  /**
   * create() for a seed 002 login's token, answered once stored, with `durable`, which resolves
   * once the token, and everything committed before it, is durable. The caller makes its last
   * write in between (the user_token.login audit event, which waits for its own fsync) and then
   * waits for `durable`: on the embedded store the token is committed without an fsync of its
   * own, and `durable` resolves at once when the later write's fsync (which started after the
   * token's commit) has returned, else after one that does (SessionStore.createThenSync).
   * MongoDB: answered once acknowledged, as create(); `durable` resolves at once. `cap` and
   * `ended`: as create()'s.
   */
  createThenSync(token: NewUserToken, cap?: number): Promise<{ record: UserTokenRecord; durable: () => Promise<void>; ended: string[] }>;
  /**
   * The token with the SHA-256 `hash` and the standing of its user, read together: every check
   * of a user token or cookie session needs the two. On the embedded store one statement, so
   * both come from one snapshot; on MongoDB the user is read beside the token's logout mark and
   * last use, once the token's document has named it. Null when no token has the hash; `user`
   * null when no user has the token's userId.
   */
  findByHashWithUser(hash: string): Promise<{ token: UserTokenRecord; user: UserStanding | null } | null>;
  /**
   * The token without its last use (lastUsedAt is never read here): what a check of a
   * credential a cookie session descends from needs (core/credential-sources.ts), which runs for
   * each of them on every use of the session.
   */
  findById(id: string): Promise<Omit<UserTokenRecord, "lastUsedAt"> | null>;
  /** Coalesced like ApiTokenStore.touchLastUsed; does not change version. */
  touchLastUsed(id: string, at: Date, minIntervalMs?: number): Promise<boolean>;
  /**
   * Logout: enabled=false, version++ only if enabled, recording `at` as when it was disabled
   * (for housekeeping alone: nothing reads it back); returns whether this call disabled it.
   */
  disable(id: string, at: Date): Promise<boolean>;
  /** Disables every enabled token of the user (version++ each, disabled at `at`); returns how many. */
  disableAllForUser(userId: string, at: Date): Promise<number>;
  /**
   * Housekeeping (retention): deletes at most `limit` tokens that expired before `before` or were
   * disabled before it (one batch, see ports.ts), with what depends on them; returns how many.
   * A token disabled by a version that did not record when has no such time: only its expiry counts.
   */
  deleteEndedBefore(before: Date, limit: number): Promise<number>;
}
