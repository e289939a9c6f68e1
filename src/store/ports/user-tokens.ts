// User tokens (seed 002), and the cookie sessions of seed 003 stored alike.
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
}

export type NewUserToken = Omit<UserTokenRecord, "enabled" | "version" | "lastUsedAt">;

export interface UserTokenStore {
  /** enabled=true, version=0. DuplicateError("id" | "hash"). */
  create(token: NewUserToken): Promise<UserTokenRecord>;
  findByHash(hash: string): Promise<UserTokenRecord | null>;
  findById(id: string): Promise<UserTokenRecord | null>;
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
