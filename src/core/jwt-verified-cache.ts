// Tokens whose signature and claims already verified, so a token presented again (a client
// uses one access token for many calls) skips the signature work, which is most of a Check's
// own cost. Only what SigningKeys.verify accepted goes in, keyed by the exact token text, so a
// changed byte is a miss. Time is not cached: `exp` and `nbf` are checked on every hit. Nothing
// else about a token can become invalid before it expires: a retired key keeps verifying until
// every token it signed has expired. Revocation and user state are checked by the caller on
// every use, outside this cache.
import { unauthenticated } from "./errors.js";

export class VerifiedTokenCache<C extends Readonly<Record<string, unknown>>> {
  // A Map iterates in insertion order: re-inserting on a hit makes it a small LRU.
  private readonly entries = new Map<string, C>();

  constructor(private readonly maxEntries: number) {}

  /** The cached claims, after the same time checks as SigningKeys.verify; undefined on a miss. */
  get(token: string, nowSeconds: number, allowExpired: boolean): C | undefined {
    const claims = this.entries.get(token);
    if (claims === undefined) return undefined;
    const { exp, nbf } = claims;
    if (typeof exp !== "number" || exp <= nowSeconds) {
      // Expired entries are useless except to an allowExpired caller; drop them early.
      if (!allowExpired) {
        this.entries.delete(token);
        throw unauthenticated("TOKEN_EXPIRED", "token expired");
      }
    }
    if (typeof nbf === "number" && nbf > nowSeconds) throw unauthenticated("TOKEN_NOT_YET_VALID", "token not yet valid");
    this.entries.delete(token);
    this.entries.set(token, claims);
    return claims;
  }

  set(token: string, claims: C): void {
    if (this.maxEntries <= 0) return;
    this.entries.delete(token);
    this.entries.set(token, claims);
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }
}
