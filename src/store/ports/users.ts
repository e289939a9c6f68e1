// Users, shared by every service.
export interface UserRecord {
  id: string;
  /** The login as the account spells it (core/login-name.ts: trimmed, NFC, emails lower-cased); unique. */
  login: string;
  /**
   * What logins are compared by (NFKC + case folding of `login`); unique. Absent only on an
   * account stored before login keys existed, until backfillLoginKeys gives it one (or, when
   * an older account already holds that key, for good: it is then found by its exact spelling).
   * An older key function's key until backfillLoginKeys re-keys the account (or, when another
   * account holds its current key, for good).
   */
  loginKey?: string;
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
  /**
   * The credential epoch: starts at 0 and grows by one, in the same write, on every password
   * change (updatePasswordHash, not a rehash) and on deactivation. A credential records the
   * epoch it was issued under and is refused once the user's has moved on.
   */
  credentialEpoch: number;
}

/**
 * A password change, as the credentials it outdated are told apart from those issued after it:
 * issued under an earlier credential epoch than `epoch` (the one it moved the user to), or, for a
 * record written before epochs, created before `changedAt`. Not by issue time alone: another
 * instance's clock may be behind (README, Clocks), so a login there with the new password, made
 * while the change was still ending the old credentials, has an earlier time than the change.
 */
export interface PasswordChange {
  epoch: number;
  changedAt: Date;
}

/** What checking a credential needs of its user: whether it is active, and its credential epoch (and, for records from before epochs, its last password change). */
export type UserStanding = Pick<UserRecord, "id" | "active" | "credentialEpoch" | "passwordChangedAt">;

export interface NewUser {
  id: string;
  login: string;
  loginKey: string;
  emails: string[];
  firstname?: string;
  lastname?: string;
  passwordHash: string;
  createdAt: Date;
}

export interface UserStore {
  /**
   * active=true, version=0, passwordChangedAt=createdAt. DuplicateError("login") when the login
   * or its key is taken (DuplicateError("id") when the id is).
   */
  create(user: NewUser): Promise<UserRecord>;
  findById(id: string): Promise<UserRecord | null>;
  /**
   * The account spelled exactly `login`, else the one whose key is `loginKey` (both computed by
   * the caller). The exact spelling wins so that two accounts stored before login keys existed,
   * whose keys clash, each stay reachable by their own spelling.
   */
  findByLogin(login: string, loginKey: string): Promise<UserRecord | null>;
  /**
   * Gives every account without a key the key `keyOf(login)`, oldest account first (run at
   * start-up; accounts written by an older version have none). An account whose key an older
   * one already holds keeps none. With `keyFunction` (keyOf's version), unless the store has
   * recorded that version or a newer one: every account whose key is not `keyOf(login)` is
   * re-keyed too, in the same order, and one whose new key another account holds keeps its own;
   * once all are done the version is recorded, so later calls read the keyless accounts only.
   * Returns how many got a (new) key and the ids of those that clash.
   */
  backfillLoginKeys(keyOf: (login: string) => string, keyFunction?: number): Promise<{ filled: number; clashes: string[] }>;
  /**
   * A real password change: sets hash and passwordChangedAt, version++, credentialEpoch++. Null
   * when no such user, or, with `expectedEpoch`, when the user's credential epoch is no longer it
   * (a concurrent change or deactivation won: the caller's credential is outdated).
   */
  updatePasswordHash(id: string, passwordHash: string, at: Date, expectedEpoch?: number): Promise<UserRecord | null>;
  /**
   * Rehash after a parameter change (same password): replaces the hash only while it is still
   * `expectedHash`, so it never overwrites a concurrent password change. passwordChangedAt is
   * kept; version++. Returns whether it was replaced.
   */
  rehashPassword(id: string, expectedHash: string, newHash: string): Promise<boolean>;
  /**
   * Records lastLoginAt = at unless a later time is recorded (an earlier login written last, two
   * racing, never replaces a later one; on FerretDB, which applies an update to a read it does
   * not lock, two at the same moment may still leave the earlier) and returns `at`; null when no such active user. With `syncedByNextWrite`
   * (a login that stores its credential next, and waits for that write): the embedded store
   * commits it without an fsync of its own, the caller's next write makes it durable with it.
   */
  setLastLogin(id: string, at: Date, options?: { syncedByNextWrite?: boolean }): Promise<Date | null>;
  /** active=false, deactivatedAt=at, version++, credentialEpoch++; false when unknown or already inactive. */
  deactivate(id: string, at: Date): Promise<boolean>;
}
