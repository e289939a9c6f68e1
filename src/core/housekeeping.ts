// Removes records that can never be valid again: expired sessions (seed 000), expired refresh
// tokens (seeds 000 and 004), expired authentication tokens (seed 003), retired signing keys past
// their last token, login-attempt counters whose window has passed and that hold no lock,
// remembered logins past their 30 days, and audit events older than TESSERA_AUDIT_RETENTION_DAYS.
// Correctness never depends on it (every read compares expiry with the clock, and FerretDB has
// no TTL indexes); it only keeps the tables small. Every instance may run it: deletes are
// idempotent.
import type { Logger } from "../logger.js";
import type { Store } from "../store/ports.js";

/** The stores housekeeping tidies: those holding records that expire. */
export type HousekeepingStores = Pick<Store, "sessions" | "refreshTokens" | "authTokens" | "jwtRefreshTokens" | "keys" | "loginAttempts" | "auditEvents">;
import type { Clock } from "./clock.js";

export class Housekeeping {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly deps: { store: HousekeepingStores; clock: Clock; logger: Logger; loginWindowSeconds?: number; auditRetentionDays?: number }) {}

  /** One pass; returns how many records each kind lost. A store outage is logged, not thrown. */
  async runOnce(): Promise<Record<string, number>> {
    const { store, clock, logger } = this.deps;
    const now = clock.now();
    const removed: Record<string, number> = {};
    const jobs: Array<[string, () => Promise<number>]> = [
      ["sessions", () => store.sessions.deleteExpired(now)],
      ["refreshTokens", () => store.refreshTokens.deleteExpired(now)],
      ["authTokens", () => store.authTokens.deleteExpired(now)],
      ["jwtRefreshTokens", () => store.jwtRefreshTokens.deleteExpired(now)],
      ["keys", () => store.keys.deleteExpired(now)],
      ["loginAttempts", () => store.loginAttempts.deleteStale(new Date(now.getTime() - (this.deps.loginWindowSeconds ?? 86400) * 1000), now)],
      ["knownLogins", () => store.loginAttempts.forgetExpiredLogins(now)],
      ["auditEvents", () => store.auditEvents.deleteOlderThan(new Date(now.getTime() - (this.deps.auditRetentionDays ?? 90) * 86_400_000))],
    ];
    for (const [name, job] of jobs) {
      try {
        removed[name] = await job();
      } catch (e) {
        logger.warn("housekeeping failed", { records: name, error: e instanceof Error ? e.message : String(e) });
      }
    }
    if (Object.values(removed).some((n) => n > 0)) logger.info("housekeeping", removed);
    return removed;
  }

  /** Runs every `intervalSeconds` (0: never) until stop(); the timer does not keep the process alive. */
  start(intervalSeconds: number): void {
    if (intervalSeconds <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      this.running ??= this.runOnce().then(
        () => { this.running = undefined; },
        () => { this.running = undefined; },
      );
    }, intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass in progress (so the store can close under it). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
