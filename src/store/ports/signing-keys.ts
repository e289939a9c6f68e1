// Signing keys, shared by every instance.
//
// Keys are ordered by generation. The highest generation is the published NEXT key: it is in
// the JWKS but signs nothing until a rotation promotes it (and publishes a new next key above
// it). The key that signs at a time t is the highest generation below the next key that is not
// revoked, whose activatedAt <= t and whose retiredAt (if set) > t — computed by the key ring.
export interface SigningKeyRecord {
  kid: string;
  alg: string;
  /** JWK as JSON text. */
  privateJwk: string;
  /** JWK as JSON text. */
  publicJwk: string;
  /**
   * 1, 2, 3, ... unique. The unique index is what lets several instances agree on exactly one
   * key per generation, and so on exactly one rotation at a time.
   */
  generation: number;
  /** When it was stored: from then on it is published in the JWKS. */
  createdAt: Date;
  /** When it signs from: set when a rotation promotes it (at insertion: a placeholder). */
  activatedAt: Date;
  /** When a rotation replaced it; it keeps verifying until notAfter. */
  retiredAt?: Date;
  /** After this, no token signed by it can be valid: drop it from the JWKS. */
  notAfter?: Date;
  /** Revoked (emergency): it verifies nothing from then on, and leaves the JWKS. */
  revokedAt?: Date;
}

export type NewSigningKey = Omit<SigningKeyRecord, "retiredAt" | "notAfter" | "revokedAt">;

/** What a rotation changes besides inserting the new next key. */
export interface KeyPromotion {
  /** The key that starts signing (the published next key) and from when. */
  promote: { kid: string; activatedAt: Date };
  /**
   * The key that stops signing then (retiredAt = promote.activatedAt), verifying until notAfter;
   * a key already retired is retired again at these times (the key promoted to take over from it
   * was revoked before it signed: it signs until this promotion instead).
   */
  retire?: { kid: string; retiredAt: Date; notAfter: Date };
  /**
   * Keys below it that stop then too, with the same retiredAt and notAfter: at a change of
   * TESSERA_JWT_ALG, `retire` is the previous algorithm's unused next key and these the key that
   * signed with it.
   */
  alsoRetire?: string[];
}

/** The kids a rotation retires: `retire`'s and `alsoRetire`. */
export const retiredBy = (change: Pick<KeyPromotion, "retire" | "alsoRetire">): string[] =>
  change.retire ? [change.retire.kid, ...(change.alsoRetire ?? [])] : [];

/**
 * What a re-seal did (SigningKeyStore.reseal): "resealed", the key holds a new form in place of
 * the one read, and this caller is the one that reports it; "refused", another caller's form was
 * found waiting to be written and `accepts` refused it (nothing written); "unchanged", nothing
 * for this caller to report.
 */
export type ResealOutcome = "resealed" | "refused" | "unchanged";

export interface SigningKeyStore {
  /** Every stored key, generation ascending. */
  list(): Promise<SigningKeyRecord[]>;
  /**
   * Inserts `key` unless its generation (or kid) is taken. Returns true when this call won; false
   * when another instance already stored that generation (read the list again).
   */
  insertGeneration(key: NewSigningKey): Promise<boolean>;
  /**
   * Rotation: inserts `next` (generation = the highest + 1 is required) and, if it won, applies
   * `change` (the promoted key's activatedAt; the retired key's retiredAt and notAfter, replacing
   * an earlier rotation's; the others' of `alsoRetire`, unless already retired). Returns false, changing nothing, when another instance already rotated to
   * that generation. (MongoDB: the insert decides; the updates follow, written by the winner only.)
   */
  rotate(next: NewSigningKey, change: KeyPromotion): Promise<boolean>;
  /**
   * Compare-and-set of a key's stored private part (TESSERA_KEY_ENCRYPTION_KEY changed, or
   * sealing turned on): replaces it with `to` if it is still `from`, the form the caller read,
   * changing nothing else of the key. "resealed" for exactly one of several callers replacing
   * the same `from`, at once or one after another, and the `to` of one of them is then what is
   * stored; "unchanged" when the stored form is no longer `from` (another instance replaced it)
   * or the key is gone. `at`: now. MongoDB: an insert-once mark decides whose `to` is stored,
   * and a caller that finds another's waiting to be written (its maker may have stopped) writes
   * it only if `accepts` takes it, else returns "refused" (see mongo-signing-keys.ts); SQLite
   * never writes another's form, nor calls `accepts`.
   */
  reseal(kid: string, from: string, to: string, at: Date, accepts: (form: string) => boolean): Promise<ResealOutcome>;
  /** Sets revokedAt unless already set; false when unknown or already revoked. */
  revoke(kid: string, at: Date): Promise<boolean>;
  /**
   * Housekeeping: deletes retired keys whose notAfter < before (a revoked one only when revoked
   * before `revokedBefore` too: credentials made from its tokens record its kid, and must find it
   * revoked as long as they may live), and keys revoked before `revokedBefore` that were never
   * retired (revoked while they were the published next key, or as a rotation elsewhere promoted
   * them): they verify nothing and are in no JWKS, and once no token they could have signed, nor
   * credential made from one, is valid they are nothing. Never the highest generation (the next
   * key is published above it). Returns how many.
   */
  deleteExpired(before: Date, revokedBefore: Date): Promise<number>;
}
