// Password hashing: argon2id with configurable cost. The dummy hash lets a login for an unknown
// user cost the same as one for a known user, so timing does not reveal which logins exist.
// Every hash and verification goes through one HashPool (admission control): when it is full,
// they throw UNAVAILABLE HASHER_BUSY without hashing. A caller with work to do before it hashes
// (a sign-up's lookup, a login's) is admitted first (admit(): a ticket holding its place) and
// hashes in that place (the ticket passed to hash, check, verify or verifyDummy), so it is not
// refused once admitted; see hash-pool.ts.
//
// After the cost is raised, a user whose stored hash has the older, cheaper parameters (until
// their next login upgrades it) would answer a wrong password faster than an unknown login does,
// telling that the account exists. So a failed verification of a hash not at the current
// parameters (or of no argon2id hash at all) waits, by a timer, until it has taken as long as a
// recent verification at the current parameters did (one picked at random from the last few,
// so refusals of either kind take the same spread of times; the dummy's making time before there
// is any). It costs no hashing, which a caller could ask for at will, and holds no hasher while it
// waits. A stored hash dearer than the current cost (the cost was lowered) cannot be answered
// faster: such accounts stay slower to refuse until their next login (README, TESSERA_ARGON2_*).
//
// A password is hashed and verified in its prepared form (RFC 8265's OpaqueString profile, as
// NIST SP 800-63B 5.1.1.2 asks: preparePassword), so one typed decomposed ("e" + U+0301, as macOS
// and some keyboards write it) is the password set precomposed (U+00E9), and a no-break space
// typed for a space is that space. A hash made before passwords were prepared is of the password
// as typed then: when the prepared form differs from what was typed and does not verify, what was
// typed is verified too, in the same place in the pool (one hasher taken, for one login attempt),
// and a login it lets in has the hash remade of the prepared form (`rehash`). A password already
// in its prepared form costs one verification, as before; one that is not costs two when it is
// refused, whether the login exists (the stored hash) or not (the dummy hash): never one more
// for either.
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import argon2 from "argon2";
import { HashPool, type HashTicket } from "./hash-pool.js";
import { beyondNormalLength } from "./normal-length.js";
import { randomToken } from "./secrets.js";

/** The longest password that can be set, in code points (the policy's limit: password-policy.ts). */
export const maxPasswordLength = 256;

export interface Argon2Params {
  memoryKib: number;
  iterations: number;
  parallelism: number;
}

/** Where a refusal's wait reads its times (tests script their own). */
export interface VerifyTiming {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Resolves after `ms` milliseconds: a timer, no CPU. */
  sleep(ms: number): Promise<void>;
  /** In [0, 1): which recent verification a refusal is padded to. */
  random(): number;
}

const systemTiming: VerifyTiming = {
  now: () => performance.now(),
  sleep: (ms) => sleep(ms),
  random: () => Math.random(),
};

/** How many recent verifications at the current parameters a refusal's wait is picked from. */
const timeSamples = 32;

/** Space separators (Zs): U+0020 and the non-ASCII ones (no-break space, ideographic space, ...). */
const spaceSeparator = /\p{Zs}/gu;

/**
 * The form a password is hashed and compared in: RFC 8265's OpaqueString enforcement (section
 * 4.2.2), non-ASCII spaces mapped to U+0020, then Unicode NFC. No width or case mapping, nothing
 * trimmed, and nothing refused: a password the policy let in is never refused at a login. One
 * of more than 4 × maxPasswordLength code points (typed at a login: the policy refuses it
 * anywhere else) is canonically equivalent to no password that can be set (normal-length.ts): it
 * matches no hash, and is compared as it is, not normalized in time quadratic in its length.
 */
export function preparePassword(password: string): string {
  if (beyondNormalLength(password, maxPasswordLength)) return password;
  return password.replace(spaceSeparator, " ").normalize("NFC");
}

export class Passwords {
  private readonly options: { type: typeof argon2.argon2id; memoryCost: number; timeCost: number; parallelism: number };
  private dummyHash: Promise<string> | undefined;
  private readonly pool: HashPool;
  private readonly timing: VerifyTiming;
  /** Durations (ms) of recent verifications at the current parameters, a ring of `timeSamples`. */
  private readonly times: number[] = [];
  private nextTime = 0;

  /** Without a pool: one hash at a time, none waiting beyond 1024 (tests and tools). */
  constructor(params: Argon2Params, pool: HashPool = new HashPool({ concurrency: 1, queueLimit: 1024 }), timing: VerifyTiming = systemTiming) {
    this.pool = pool;
    this.timing = timing;
    this.options = {
      type: argon2.argon2id,
      memoryCost: params.memoryKib,
      timeCost: params.iterations,
      parallelism: params.parallelism,
    };
  }

  /**
   * A place for one hash or verification, taken now (HASHER_BUSY when none is left, before the
   * caller does other work): pass the ticket to the hash it is for, and release() it on every path
   * (nothing once that hash has used it). See admitted().
   */
  admit(): HashTicket {
    return this.pool.admit();
  }

  /** `work` with a ticket admitted for it (HASHER_BUSY before it starts), released when it ends, however it ends. */
  async admitted<T>(work: (ticket: HashTicket) => Promise<T>): Promise<T> {
    const ticket = this.admit();
    try {
      return await work(ticket);
    } finally {
      ticket.release();
    }
  }

  /** A hash of `password`'s prepared form: in `ticket`'s place when given, else admitted now (HASHER_BUSY when full). */
  hash(password: string, ticket?: HashTicket): Promise<string> {
    const prepared = preparePassword(password);
    return (ticket ?? this.pool).run(() => argon2.hash(prepared, this.options));
  }

  /**
   * False for a wrong password and for a malformed stored hash (never throws on bad input;
   * HASHER_BUSY when full, unless run in `ticket`'s place). A false for a hash not at the current
   * parameters comes no sooner than one for a hash at them would (see the top of this file).
   */
  async verify(hash: string, password: string, ticket?: HashTicket): Promise<boolean> {
    return (await this.check(hash, password, ticket)).ok;
  }

  /**
   * verify() (`ok`), and whether the stored hash is to be made again (`rehash`: needsRehash, read
   * once, or the hash is of the password as typed rather than of its prepared form). The
   * prepared form is verified first; what was typed only when it differs and the prepared form
   * failed, in the same job (one place in the pool, one hasher: see the top of this file).
   */
  async check(hash: string, password: string, ticket?: HashTicket): Promise<{ ok: boolean; rehash: boolean }> {
    const stale = this.needsRehash(hash);
    const prepared = preparePassword(password);
    const forms = prepared === password ? [prepared] : [prepared, password];
    const took: number[] = [];
    const matched = await (ticket ?? this.pool).run(async () => {
      for (const form of forms) {
        const start = this.timing.now();
        try {
          if (await argon2.verify(hash, form)) return form;
        } catch {
          // a malformed stored hash: refused
        } finally {
          took.push(this.timing.now() - start);
        }
      }
      return undefined;
    });
    const ok = matched !== undefined;
    if (!stale) for (const ms of took) this.recordTime(ms);
    else if (!ok) await this.padToCurrent(took);
    return { ok, rehash: stale || (ok && matched !== prepared) };
  }

  private recordTime(ms: number): void {
    this.times[this.nextTime] = ms;
    this.nextTime = (this.nextTime + 1) % timeSamples;
  }

  /**
   * Waits (outside the pool) until verifications that took `took` ms each have taken as long as
   * as many current ones: one recent time picked at random for each.
   */
  private async padToCurrent(took: number[]): Promise<void> {
    if (this.times.length === 0) {
      try {
        await this.dummy(); // records its making time
      } catch {
        return; // no reference to pad to; the login that verifies the dummy tries again
      }
    }
    let wait = 0;
    for (const ms of took) wait += (this.times[Math.floor(this.timing.random() * this.times.length)] ?? 0) - ms;
    if (wait > 0) await this.timing.sleep(wait);
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

  /**
   * Verifies against a fixed dummy hash at the configured cost: the same work as a refused real
   * verify (both forms of a password not in its prepared form, see check()).
   */
  async verifyDummy(password: string, ticket?: HashTicket): Promise<void> {
    await this.verify(await this.dummy(), password, ticket);
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
    this.dummyHash ??= this.makeDummy();
    return this.dummyHash;
  }

  /** Hashing takes what verifying takes at the same parameters: its time is the first reference. */
  private async makeDummy(): Promise<string> {
    const start = this.timing.now();
    try {
      const hash = await argon2.hash(randomToken(16), this.options);
      if (this.times.length === 0) this.recordTime(this.timing.now() - start);
      return hash;
    } catch (e) {
      this.dummyHash = undefined; // made by the next call
      throw e;
    }
  }
}
