// Abuse protection for password logins and sign-ups, shared by every instance through
// store.loginAttempts.
//
// Logins: a password is checked only by an attempt that first took a slot, atomically in the
// store, in its login's window (TESSERA_LOGIN_MAX_FAILURES slots per TESSERA_LOGIN_WINDOW_SECONDS)
// and in its client address's window (4x as many: many users may share one address), and an
// IPv6 client's also in its /48's (TESSERA_LOGIN_MAX_FAILURES_PER_IPV6_48: one holder may take a
// fresh /64 of its /48 for every request; IPv4 addresses are never grouped, carrier-grade NAT
// putting many users behind one /24). A window
// holds at most that many slots: failures, and attempts still being checked. A failed attempt
// keeps its slot and counts as a failure; a successful one gives its slot back (earlier failures
// stay counted until the window passes). When a window's failures reach the limit the key locks
// for TESSERA_LOGIN_LOCKOUT_SECONDS; once a lock has passed, one more attempt may take a slot,
// and it locks the key at once, whatever its outcome, for twice as long as the window's last
// failure did, up to the window (a right password let through counts no failure, so it does not
// double the next lock). Every
// refusal — locked, or all slots held by attempts being checked — is RESOURCE_EXHAUSTED
// LOGIN_LOCKED with a Retry-After, before anything is hashed. So a burst of any size evaluates
// at most the limit's worth of guesses, however many instances it is spread over.
//
// Known users: a login that succeeded from an address within the last 30 days is remembered
// (by a hash of its login key and the address) and does not count in, nor wait for, that
// address's window nor its /48's — only its own login's. Strangers from a locked address still wait.
//
// Sign-ups: every attempt to create a user takes a slot in its address's sign-up window
// (TESSERA_SIGNUP_MAX_PER_ADDRESS per window), an IPv6 client's also in its /48's
// (TESSERA_SIGNUP_MAX_PER_IPV6_48), and counts like a failure, whatever its outcome:
// it is the sign-up that is limited. Its slot is leased as a login's, and a sign-up whose hash
// ended after `checkMs` is not made (UNAVAILABLE HASHER_BUSY; it still counts).
//
// Slots are bookkeeping of the server's, not work for the caller: once a reservation has been
// asked for (never past the caller's deadline), it and the attempt's end (failed, succeeded,
// abandon) are made whether the caller still waits or not. A caller whose deadline passes while
// its password is hashed is answered DEADLINE_EXCEEDED, and its attempt still gives its slots
// back or counts them as failures: else a few calls with a short deadline would hold a login's
// slots, refusing it as busy, until its window passed.
//
// Leases: a login's check (after its slots are taken: the user's lookup, the hash, its verdict)
// gets `checkMs` (TESSERA_REQUEST_TIMEOUT_MS, at least 10 s); a verdict reached later is not
// given (UNAVAILABLE HASHER_BUSY, Retry-After 1: a wrong password still counts as a failure, a
// right one's slots are given back). Its slots, until failed or given back, count for twice that
// (`leaseMs`, the store's rule in ports/login-attempts.ts): so a slot whose attempt never ended
// (its process killed mid-check) frees itself after
// the lease, and a verdict given always came while its slot still counted, with `checkMs` to
// spare for its failure to be written. Failures count until the window passes, leases or not.
//
// Releases the store fails (it is down: the login is answered 503, nothing having been checked,
// or its right password's give-back failing) are owed, not lost (store/ports/owed-releases.ts):
// tried again before this throttle's next reservation and every second, until made or their
// window has passed, and once more by a stop (close()). A failure the store did not write (a
// wrong password answered 503) is not owed: its slot stays held, under the lease, as a guess
// checked. The lease frees a lost one only once no attempt on its key has been granted
// for a lease's time: under steady traffic on a key (one address's clients) never, within the
// window, and the logins answered 503 during an outage would have refused a right password 429
// afterwards. An outage is not a guess.
import { beyondDeadline, timeLeftMs } from "../call-scope.js";
import type { Config } from "../config.js";
import { ipv6Prefix48 } from "./ip-prefix.js";
import { DeadlineExceededError } from "../store/ports.js";
import type { AttemptRule, AttemptSlot, HeldSlot, LoginAttemptStore } from "../store/ports/login-attempts.js";
import { OwedReleases } from "../store/ports/owed-releases.js";
import type { Clock } from "./clock.js";
import { resourceExhausted, type AuthError } from "./errors.js";
import { hasherBusy } from "./hash-pool.js";
import { hashSecret } from "./secrets.js";

export type LoginThrottleConfig = Pick<
  Config,
  | "loginProtection"
  | "loginMaxFailures"
  | "loginMaxFailuresPerIpv6_48"
  | "loginWindowSeconds"
  | "loginLockoutSeconds"
  | "signupMaxPerAddress"
  | "signupMaxPerIpv6_48"
  | "requestTimeoutMs"
>;

/** An address gets this many times a login's attempts. */
const addressFactor = 4;
const dayMs = 24 * 60 * 60 * 1000;
/** How long a successful login from an address is remembered. */
export const REMEMBER_LOGIN_MS = 30 * dayMs;
/** A remembered login is written again (pushing its 30 days forward) at most once a day. */
const rememberAgainAfterMs = dayMs;

/** How long to wait when every slot is held by attempts still being checked (a password check takes well under a second). */
const fullRetryAfterSeconds = 1;

/** The least time a login's check gets before its verdict is withheld (see above). */
const minCheckMs = 10_000;

/** How long a login's check may take (`checkMs`), and how long its slots count while it runs (`leaseMs`, twice that). */
export function loginCheckTimes(config: Pick<Config, "requestTimeoutMs">): { checkMs: number; leaseMs: number } {
  const checkMs = Math.max(minCheckMs, config.requestTimeoutMs);
  return { checkMs, leaseMs: 2 * checkMs };
}

/** An attempt holding its slots, until it ends with one of these. */
export interface Attempt {
  /** The password was wrong (a sign-up: it happened): the slots stay taken and count as failures. */
  failed(): Promise<void>;
  /** The password was right: the slots are given back; `remember` records the login as known from this address. */
  succeeded(remember: boolean): Promise<void>;
  /** Nothing was checked after all (hasher busy, store down): the slots are given back. Never throws. */
  abandon(): Promise<void>;
}

/** Refusals because every slot was held by attempts still being checked (no lock): "throttled", not "locked". */
const refusedWithoutLock = new WeakSet<object>();

/** True for a LOGIN_LOCKED refusal that no lock caused (every slot busy with attempts being checked). */
export function isBusyRefusal(e: unknown): boolean {
  return typeof e === "object" && e !== null && refusedWithoutLock.has(e);
}

const unthrottled: Attempt = {
  failed: async () => {},
  succeeded: async () => {},
  abandon: async () => {},
};

export class LoginThrottle {
  private readonly attempts: LoginAttemptStore;
  private readonly config: LoginThrottleConfig;
  private readonly clock: Clock;
  private readonly rule: AttemptRule;
  private readonly checkMs: number;
  /** Releases the store failed, made once it answers again (see the top of this file). */
  private readonly owed: OwedReleases;

  constructor(deps: { loginAttempts: LoginAttemptStore; config: LoginThrottleConfig; clock: Clock }) {
    this.attempts = deps.loginAttempts;
    this.config = deps.config;
    this.clock = deps.clock;
    const lockMs = deps.config.loginLockoutSeconds * 1000;
    const windowMs = deps.config.loginWindowSeconds * 1000;
    const { checkMs, leaseMs } = loginCheckTimes(deps.config);
    this.checkMs = checkMs;
    this.rule = { windowMs, lockMs, maxLockMs: Math.max(lockMs, windowMs), leaseMs };
    this.owed = new OwedReleases(
      (held) => beyondDeadline(() => this.attempts.release(held)),
      () => this.clock.now().getTime(),
    );
  }

  get enabled(): boolean {
    return this.config.loginProtection;
  }

  /**
   * Takes the slots of a login attempt for `loginKey` from `clientAddress` (core/login-name.ts),
   * or throws RESOURCE_EXHAUSTED LOGIN_LOCKED with retryAfterSeconds.
   */
  async beginLogin(loginKey: string, clientAddress: string): Promise<Attempt> {
    if (!this.enabled) return unthrottled;
    const now = this.clock.now();
    const remembered = knownLoginHash(loginKey, clientAddress);
    // Releases owed to the store are made before this attempt's slots are asked for.
    const [until] = await Promise.all([this.attempts.rememberedUntil(remembered), this.owed.settle()]);
    const known = until !== null && until.getTime() > now.getTime();
    const max = this.config.loginMaxFailures;
    const slots: AttemptSlot[] = [{ key: `login:${hashSecret(loginKey)}`, limit: max }];
    if (!known) slots.push(...addressSlots("addr", clientAddress, max * addressFactor, this.config.loginMaxFailuresPerIpv6_48));
    const held = await this.reserve(slots, now, (retryAfterSeconds) =>
      resourceExhausted("LOGIN_LOCKED", "too many failed logins; try again later", { retryAfterSeconds }),
    );
    // A verdict reached after `checkMs` is withheld: its slots may have stopped counting.
    return {
      failed: () => this.countFailure(held, now),
      succeeded: (remember) =>
        beyondDeadline(async () => {
          if (this.late(now)) {
            await this.release(held);
            throw hasherBusy(fullRetryAfterSeconds);
          }
          const at = this.clock.now().getTime();
          const rememberAgain = remember && (!known || until!.getTime() - at < REMEMBER_LOGIN_MS - rememberAgainAfterMs);
          await Promise.all([
            this.attempts.release(held).catch((error: unknown) => {
              this.owed.owe(held, this.rule.windowMs);
              throw error;
            }),
            rememberAgain ? this.attempts.rememberLogin(remembered, new Date(at + REMEMBER_LOGIN_MS)) : undefined,
          ]);
        }),
      abandon: () => this.release(held),
    };
  }

  /** Gives back the releases still owed, once more, and stops retrying them (a stop, before the store closes). */
  close(): Promise<void> {
    return this.owed.close();
  }

  /** Takes the slot of a sign-up from `clientAddress`, or throws RESOURCE_EXHAUSTED TOO_MANY_SIGNUPS. */
  async beginSignUp(clientAddress: string): Promise<Attempt> {
    if (!this.enabled) return unthrottled;
    const slots = addressSlots("signup", clientAddress, this.config.signupMaxPerAddress, this.config.signupMaxPerIpv6_48);
    await this.owed.settle();
    const now = this.clock.now();
    const held = await this.reserve(slots, now, (retryAfterSeconds) =>
      resourceExhausted("TOO_MANY_SIGNUPS", "too many sign-ups from this address; try again later", { retryAfterSeconds }),
    );
    // As a login's verdict: a sign-up whose hash ended after `checkMs` is not made (its slot may
    // have stopped counting, and another sign-up taken it), but it counts.
    const counted = () => this.countFailure(held, now);
    return { failed: counted, succeeded: counted, abandon: () => this.release(held) };
  }

  /**
   * Counts `held` as failed (a login's wrong password, any sign-up); then, when the attempt
   * whose slots were asked for at `start` has outlasted `checkMs`, withholds its outcome.
   */
  private async countFailure(held: readonly HeldSlot[], start: Date): Promise<void> {
    await beyondDeadline(() => this.attempts.recordFailure(held, this.clock.now(), this.rule));
    if (this.late(start)) throw hasherBusy(fullRetryAfterSeconds);
  }

  /** Whether an attempt whose slots were asked for at `start` has outlasted `checkMs`. */
  private late(start: Date): boolean {
    return this.clock.now().getTime() - start.getTime() >= this.checkMs;
  }

  private async reserve(slots: AttemptSlot[], now: Date, refused: (retryAfterSeconds: number) => AuthError): Promise<readonly HeldSlot[]> {
    // Not asked for past the deadline; once asked for, not abandoned at it (a slot taken by a
    // reservation nobody waits for would never be given back).
    const left = timeLeftMs();
    if (left !== undefined && left <= 0) throw new DeadlineExceededError();
    const reservation = await beyondDeadline(() => this.attempts.reserve(slots, now, this.rule));
    if (!reservation.granted) {
      const until = reservation.lockedUntil;
      // What is left of the lock as the refusal is answered, not as the attempt began: the store
      // may have taken seconds to answer (a busy MongoDB pool).
      const left = until ? until.getTime() - this.clock.now().getTime() : 0;
      const error = refused(until ? Math.max(1, Math.ceil(left / 1000)) : fullRetryAfterSeconds);
      if (!until) refusedWithoutLock.add(error);
      throw error;
    }
    return reservation.slots;
  }

  private async release(held: readonly HeldSlot[]): Promise<void> {
    try {
      await beyondDeadline(() => this.attempts.release(held));
    } catch {
      // Owed: made once the store answers again (see the top of this file).
      this.owed.owe(held, this.rule.windowMs);
    }
  }
}

/**
 * The windows of `clientAddress` under `kind`: its own (`limit`), and an IPv6 address's /48's too
 * ("addr:2001:db8:1::/48", `limit48`), which every /64 of it shares.
 */
function addressSlots(kind: "addr" | "signup", clientAddress: string, limit: number, limit48: number): AttemptSlot[] {
  const slots: AttemptSlot[] = [{ key: `${kind}:${clientAddress}`, limit }];
  const prefix = ipv6Prefix48(clientAddress);
  if (prefix !== undefined) slots.push({ key: `${kind}:${prefix}`, limit: limit48 });
  return slots;
}

/** The remembered form of (login key, address): no login or address is stored in the clear. */
function knownLoginHash(loginKey: string, clientAddress: string): string {
  // Neither may hold a line break (login-name.ts refuses control characters).
  return hashSecret(`known-login\n${loginKey}\n${clientAddress}`);
}
