import type { Capped } from "./caps.js";
import type { PasswordChange } from "./users.js";

// JWT refresh tokens (seed 004): the JWT is self-contained; the store keeps revocation state.
export interface JwtRefreshTokenRecord {
  jti: string;
  userId: string;
  issuedAt: Date;
  expiresAt: Date;
  revokedAt?: Date;
  /** The user's credential epoch when this was issued (UserRecord.credentialEpoch); absent on records from before epochs. */
  credentialEpoch?: number;
}

export type NewJwtRefreshToken = Omit<JwtRefreshTokenRecord, "revokedAt">;

export interface JwtRefreshTokenStore {
  /**
   * DuplicateError("jti"). `cap` (TESSERA_MAX_JWT_REFRESH_TOKENS_PER_USER): once the token is
   * stored, the user's oldest unrevoked, unexpired tokens beyond the newest `cap` (this one
   * counted) are revoked, at `issuedAt`, at most CAP_BATCH of them; never this one, whatever its
   * time. `ended`: the jtis this call revoked (none without a cap). The embedded store does it in
   * the insert's transaction; MongoDB after the insert (src/store/README.md, "Caps").
   */
  create(token: NewJwtRefreshToken, cap?: number): Promise<Capped<JwtRefreshTokenRecord>>;
  findByJti(jti: string): Promise<JwtRefreshTokenRecord | null>;
  /** Revokes an unrevoked token of that user; false when unknown, another user's or already revoked. */
  revoke(jti: string, userId: string, at: Date): Promise<boolean>;
  /** Revokes every unrevoked token of the user (only those `outdatedBy` outdated when given). */
  revokeAllForUser(userId: string, at: Date, outdatedBy?: PasswordChange): Promise<number>;
  /** Housekeeping: deletes at most `limit` tokens with expiresAt < before (one batch, see ports.ts); returns how many. */
  deleteExpired(before: Date, limit: number): Promise<number>;
}
