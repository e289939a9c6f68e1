// Why a token was refused, as a stable code a caller can branch on. Messages say what is wrong
// with the token; they never contain it.

/** Every reason a token can be refused. */
export const TokenErrorCodes = [
  /** Not a compact JWS of the expected form: segments, base64url (canonical), JSON, length. */
  "MALFORMED_TOKEN",
  /** The header names an algorithm that is not allowed (never `none` or HS*), or not the key's. */
  "UNSUPPORTED_ALGORITHM",
  /** No key with the token's `kid` in the key set, even after fetching it again. */
  "UNKNOWN_KEY",
  /** The token's key was in the key set once and is no longer: retired or revoked. */
  "KEY_REMOVED",
  /** The signature does not verify with the key the token names. */
  "INVALID_SIGNATURE",
  /** `exp` has passed (beyond the clock tolerance). */
  "TOKEN_EXPIRED",
  /** `nbf` is still ahead (beyond the clock tolerance). */
  "TOKEN_NOT_YET_VALID",
  /** `iss` is not the expected issuer. */
  "WRONG_ISSUER",
  /** `aud` is not the configured audience (JWT API tokens) or a configured client id (session tokens). */
  "WRONG_AUDIENCE",
  /** A valid Tessera token that is not an access token (a refresh token). */
  "WRONG_TOKEN_TYPE",
  /** A claim is missing or of the wrong type, or the token is of no Tessera kind. */
  "INVALID_CLAIMS",
  /** The key set (or the discovery document) could not be fetched: nothing can be verified. */
  "KEYS_UNAVAILABLE",
] as const;

export type TokenErrorCode = (typeof TokenErrorCodes)[number];

/** A token was refused, or could not be checked (KEYS_UNAVAILABLE). */
export class TokenVerificationError extends Error {
  override readonly name = "TokenVerificationError";
  constructor(
    readonly code: TokenErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const refuse = (code: TokenErrorCode, message: string, cause?: unknown) =>
  new TokenVerificationError(code, message, cause === undefined ? undefined : { cause });
