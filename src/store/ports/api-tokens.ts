// API tokens per gateway account (seed 001).
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
  /**
   * Stores the token unless its account already holds `maxActive` active (unrevoked) tokens:
   * then nothing is stored and the answer is null. Concurrent creations keep as many as there was
   * room for (SQLite: count and insert in one write transaction, so exactly; MongoDB: insert,
   * count those ranked before it by (issuedAt, link) and those kept after it, withdraw: never
   * fewer, more only where creations overlap; src/store/README.md). DuplicateError("link" | "hash").
   */
  create(token: NewApiToken, maxActive: number): Promise<ApiTokenRecord | null>;
  findByHash(hash: string): Promise<ApiTokenRecord | null>;
  /** Only while not revoked; returns the updated record, null when unknown or revoked. */
  updateDescription(link: string, description: string): Promise<ApiTokenRecord | null>;
  /** Tokens of the account in that state, newest first (issuedAt desc, then link desc). */
  list(accountId: string, state: ApiTokenState): Promise<ApiTokenRecord[]>;
  /** CAS: revokes only an unrevoked token of that account; returns the revoked record or null. */
  revoke(accountId: string, link: string, at: Date): Promise<ApiTokenRecord | null>;
  /**
   * Coalesced write (see last-used.ts): sets lastUsedAt=at only when lastUsedAt is unset or before
   * touchBucket(at, minIntervalMs) (default 0: every millisecond). Returns whether this call wrote.
   */
  touchLastUsed(link: string, at: Date, minIntervalMs?: number): Promise<boolean>;
  /**
   * Housekeeping: deletes at most `limit` tokens whose creation never finished, issued before
   * `before` (MongoDB: still `pending` past PENDING_ABANDONED_AFTER_MS; nothing else of theirs
   * exists, no mark nor last use). Returns how many. SQLite has no such state: always 0.
   */
  deleteAbandoned(before: Date, limit: number): Promise<number>;
  /**
   * Housekeeping (retention): deletes at most `limit` tokens revoked before `before`, with their
   * last use (MongoDB: the document first, then its revocation mark and `api_token_usage`
   * document, so that a failure between them never leaves a revoked token without its mark), one
   * batch (see ports.ts). Returns how many. Active tokens are never deleted. MongoDB finds them by
   * the document's copy of the revocation time: a token whose copy is missing (revoked by a
   * version before it, or the write lost) is kept, until a creation's count of its account comes
   * upon it and writes the copy again.
   */
  deleteRevokedBefore(before: Date, limit: number): Promise<number>;
}

/**
 * How long after its issue a MongoDB token still `pending` (its creation has neither kept nor
 * withdrawn it) is abandoned: its creation died (the process ended between the insert and the
 * clear, or its withdrawal failed). A creation answers within the store's call bound
 * (TESSERA_STORE_TIMEOUT_MS, at most 60 s; the caller's deadline only shortens it) or not at
 * all, its caller answered UNAVAILABLE or DEADLINE_EXCEEDED; so no token pending this long is
 * ever handed out. Five minutes is well above that bound and leaves room for the clocks of
 * instances (the issue time is the creating instance's) to differ. An abandoned token no longer
 * counts towards its account's bound, and housekeeping deletes it.
 */
export const PENDING_ABANDONED_AFTER_MS = 5 * 60_000;
