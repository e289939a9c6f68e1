// Signing keys, shared by every instance.
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
