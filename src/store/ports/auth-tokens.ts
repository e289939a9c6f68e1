// Short-lived authentication tokens (seed 003).
export interface AuthTokenRecord {
  /** SHA-256 of the random token id given to the client. Unique. */
  hash: string;
  userId: string;
  createdAt: Date;
  expiresAt: Date;
  consumedAt?: Date;
  /** The user's credential epoch when this was issued (UserRecord.credentialEpoch); absent on records from before epochs. */
  credentialEpoch?: number;
  /** Set when the token was made from a cookie session: the session it starts ends no later (that session's expiry). */
  notAfter?: Date;
  /**
   * The credential it was made from, "session:<id>" (seed 000) or "user_token:<id>" (a seed 002
   * token or a cookie session): its exchange checks that one is still live. Absent for a token
   * made from a JWT, and on records from before sources.
   */
  source?: string;
  /**
   * The kids of the signing keys of the tokens it was made from (a JWT or session access token,
   * and those that one was made from in turn, or those a cookie session records): it is dead
   * once one of them is revoked, and the cookie session its exchange starts records them too.
   * Absent when no signed token took part, and on records from before it was recorded.
   */
  sourceKids?: string[];
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
  /**
   * Undoes a consume() that answered the record, made at `consumedAt`, by an exchange that then
   * handed out no session (the store failed as it stored it, its call ended, ...): the token is
   * unused again, so that a retry can exchange it. False when the token is not consumed at that
   * time. Never called after a consume() in doubt (its error may hide another caller's win).
   */
  release(hash: string, consumedAt: Date): Promise<boolean>;
  /** Housekeeping: deletes at most `limit` tokens with expiresAt < before (one batch, see ports.ts); returns how many. */
  deleteExpired(before: Date, limit: number): Promise<number>;
}
