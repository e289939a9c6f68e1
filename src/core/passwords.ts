// Password hashing: argon2id with configurable cost. The dummy hash lets a login for an unknown
// user cost the same as one for a known user, so timing does not reveal which logins exist.
// Every hash and verification goes through one HashPool (admission control): when it is full,
// they throw UNAVAILABLE HASHER_BUSY without hashing.
import argon2 from "argon2";
import { HashPool } from "./hash-pool.js";
import { randomToken } from "./secrets.js";

export interface Argon2Params {
  memoryKib: number;
  iterations: number;
  parallelism: number;
}

export class Passwords {
  private readonly options: { type: typeof argon2.argon2id; memoryCost: number; timeCost: number; parallelism: number };
  private dummyHash: Promise<string> | undefined;
  private readonly pool: HashPool;

  /** Without a pool: one hash at a time, none waiting beyond 1024 (tests and tools). */
  constructor(params: Argon2Params, pool: HashPool = new HashPool({ concurrency: 1, queueLimit: 1024 })) {
    this.pool = pool;
    this.options = {
      type: argon2.argon2id,
      memoryCost: params.memoryKib,
      timeCost: params.iterations,
      parallelism: params.parallelism,
    };
  }

  /** Throws HASHER_BUSY when a hash submitted now would be refused (before a caller does other work). */
  admit(): void {
    this.pool.admit();
  }

  hash(password: string): Promise<string> {
    return this.pool.run(() => argon2.hash(password, this.options));
  }

  /** False for a wrong password and for a malformed stored hash (never throws on bad input; HASHER_BUSY when full). */
  verify(hash: string, password: string): Promise<boolean> {
    return this.pool.run(async () => {
      try {
        return await argon2.verify(hash, password);
      } catch {
        return false;
      }
    });
  }

  /** True when the stored hash is not argon2id at the configured cost. */
  needsRehash(hash: string): boolean {
    if (!hash.startsWith("$argon2id$")) return true;
    try {
      return argon2.needsRehash(hash, {
        memoryCost: this.options.memoryCost,
        timeCost: this.options.timeCost,
        parallelism: this.options.parallelism,
      });
    } catch {
      return true;
    }
  }

  /** Verifies against a fixed dummy hash at the configured cost: same work as a real verify. */
  async verifyDummy(password: string): Promise<void> {
    await this.verify(await this.dummy(), password);
  }

  /**
   * Starts making the dummy hash, without waiting for it: the first login for an unknown user
   * then finds it made (or waits for the rest of it) instead of paying for it on top of its own
   * verification. A failure is left to that login, which tries again.
   */
  prepareDummy(): void {
    this.dummy().catch(() => {});
  }

  /**
   * Made once per process, outside the pool's admission: it is no caller's hash, so it neither
   * waits for a hasher nor takes one from a caller (with one hasher and no queue, a sign-up
   * right after the start would otherwise be refused while it is made).
   */
  private dummy(): Promise<string> {
    this.dummyHash ??= argon2.hash(randomToken(16), this.options).catch((e: unknown) => {
      this.dummyHash = undefined; // made by the next call
      throw e;
    });
    return this.dummyHash;
  }
}
