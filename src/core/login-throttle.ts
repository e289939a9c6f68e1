// Abuse protection for password logins. Failures are counted per login and per client address
// in store.loginAttempts, so every instance sees the same counters. Once a key reaches its limit
// it is locked; the lockout doubles with every further failure (up to the counting window), and
// a locked key is refused with RESOURCE_EXHAUSTED + Retry-After before any password is checked.
// An address gets 4x the per-login limit: many users may share one address (NAT, proxies).
import type { Config } from "../config.js";
import type { LoginAttemptRecord, LoginAttemptStore } from "../store/ports/login-attempts.js";
import type { Clock } from "./clock.js";
import { resourceExhausted } from "./errors.js";

export type LoginThrottleConfig = Pick<Config, "loginProtection" | "loginMaxFailures" | "loginWindowSeconds" | "loginLockoutSeconds">;

const addressFactor = 4;

export class LoginThrottle {
  private readonly attempts: LoginAttemptStore;
  private readonly config: LoginThrottleConfig;
  private readonly clock: Clock;

  constructor(deps: { loginAttempts: LoginAttemptStore; config: LoginThrottleConfig; clock: Clock }) {
    this.attempts = deps.loginAttempts;
    this.config = deps.config;
    this.clock = deps.clock;
  }

  get enabled(): boolean {
    return this.config.loginProtection;
  }

  /**
   * Throws resource_exhausted (with retryAfterSeconds) while the login or the address is locked.
   * Returns whether the login has failures on record (a success then has something to clear).
   */
  async check(login: string, clientAddress: string): Promise<boolean> {
    if (!this.enabled) return false;
    const [byLogin, byAddress] = await Promise.all([
      this.attempts.get(loginKey(login)),
      this.attempts.get(addressKey(clientAddress)),
    ]);
    const now = this.clock.now().getTime();
    const until = Math.max(lockedUntil(byLogin), lockedUntil(byAddress));
    if (until > now) {
      throw resourceExhausted("LOGIN_LOCKED", "too many failed logins; try again later", {
        retryAfterSeconds: Math.ceil((until - now) / 1000),
      });
    }
    return byLogin !== null;
  }

  /** Counts a failed login for both keys and locks whichever reached its limit. */
  async recordFailure(login: string, clientAddress: string): Promise<void> {
    if (!this.enabled) return;
    const at = this.clock.now();
    const windowMs = this.config.loginWindowSeconds * 1000;
    const max = this.config.loginMaxFailures;
    await Promise.all([
      this.count(loginKey(login), at, windowMs, max),
      this.count(addressKey(clientAddress), at, windowMs, max * addressFactor),
    ]);
  }

  /**
   * A correct password clears the login's counter (not the address's: one good account must not
   * unlock an address). `hadFailures` comes from check(): without failures on record there is
   * nothing to clear, and a successful login costs no write.
   */
  async recordSuccess(login: string, hadFailures = true): Promise<void> {
    if (!this.enabled || !hadFailures) return;
    await this.attempts.reset(loginKey(login));
  }

  private async count(key: string, at: Date, windowMs: number, max: number): Promise<void> {
    const state = await this.attempts.recordFailure(key, at, windowMs);
    if (state.failures < max) return;
    const base = this.config.loginLockoutSeconds;
    const cap = Math.max(base, this.config.loginWindowSeconds);
    const seconds = Math.min(cap, base * 2 ** Math.min(30, state.failures - max));
    await this.attempts.setLockedUntil(key, new Date(at.getTime() + seconds * 1000));
  }
}

function lockedUntil(record: LoginAttemptRecord | null): number {
  return record?.lockedUntil?.getTime() ?? 0;
}

const loginKey = (login: string) => `login:${login}`;
const addressKey = (address: string) => `addr:${address}`;
