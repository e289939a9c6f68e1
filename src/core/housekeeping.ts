// Removes records that can never be valid again: expired sessions (seed 000), expired refresh
// tokens (seeds 000 and 004), expired authentication tokens (seed 003), retired signing keys past
// their last token (revoked ones past REVOKED_KEY_KEPT_MS too), login-attempt counters whose
// window has passed and that hold no lock, remembered logins past their 30 days, audit events
// older than TESSERA_AUDIT_RETENTION_DAYS, and
// API tokens whose creation never finished (MongoDB: pending past PENDING_ABANDONED_AFTER_MS,
// never handed out, listed or counted).
// Correctness never depends on it (every read compares expiry with the clock, and FerretDB has
// no TTL indexes; what expires is deleted CLOCK_STEP_MS after its expiry, so that an instance
// whose clock is behind still finds it until it has expired there too); it only keeps the
// tables small. Two deletions change an answer, by design:
// user tokens and cookie sessions that expired or were logged out (disabled) more than
// TESSERA_USER_TOKEN_RETENTION_DAYS ago. Until then such a token answers TOKEN_EXPIRED or
// TOKEN_REVOKED; once deleted it is unknown, INVALID_TOKEN, as a token never issued. Without the
// retention they were kept for good, one row per login and per link exchange. Likewise seed 001
// API tokens revoked more than TESSERA_API_TOKEN_RETENTION_DAYS ago: until then the revoked
// listing shows them; once deleted they are unknown (every other answer of a revoked token is
// already an unknown one's), and without it every creation and revocation added a row for good,
// which the revoked listing (no paging) read in full. Active tokens are never deleted. Every instance may
// run it: deletes are idempotent. Each kind is deleted in batches of at most `deleteBatch`
// records, one store call each (in SQLite one statement, its own commit: see ports.ts), until a
// batch comes back short:
// a backlog (the first pass after an upgrade, a long outage) never holds SQLite's write lock,
// which every worker's writers wait on, or a MongoDB call, for longer than one batch takes.
import type { Logger } from "../logger.js";
import { PENDING_ABANDONED_AFTER_MS, type Store } from "../store/ports.js";
import { reloadIntervalMs } from "./key-ring.js";

/** The stores housekeeping tidies: those holding records that expire. */
export type HousekeepingStores = Pick<Store, "sessions" | "refreshTokens" | "authTokens" | "jwtRefreshTokens" | "userTokens" | "apiTokens" | "keys" | "loginAttempts" | "auditEvents">;
import { CLOCK_STEP_MS, type Clock } from "./clock.js";
import { LONGEST_CREDENTIAL_LIFETIME_SECONDS } from "../config.js";

/**
 * How long a revoked signing key is kept after its revocation, retired or not, whatever the
 * settings now. What is made from one of its tokens (an authentication token, a cookie session, a
 * seed 004 refresh token and the access tokens of its refresh logins, and what those make in
 * turn) records its kid, and is refused while the key ring knows that kid revoked: deleted, the
 * key would be unknown, and such a credential taken again. None is made once the revocation has
 * reached every instance (the 30 s reload interval), and each lives to its own expiry, which the
 * settings of the instance that made it gave, earlier settings perhaps, longer than today's: at
 * most LONGEST_CREDENTIAL_LIFETIME_SECONDS. A minute more twice (CLOCK_STEP_MS): the instance
 * that made one may run that far ahead of the one that revoked the key, and the one that checks
 * it that far behind. One record per revocation: a handful.
 */
export const REVOKED_KEY_KEPT_MS = LONGEST_CREDENTIAL_LIFETIME_SECONDS * 1000 + reloadIntervalMs + 2 * CLOCK_STEP_MS;


/** Records deleted per store call (a batch); see the top of this file. */
export const DELETE_BATCH = 1000;

/**
 * The first pass on the timer comes this long after the start, or after the interval when that is
 * shorter: with a longer interval (up to a day) a process restarted more often than it (a
 * deployment every few hours) never ran a pass, and kept what the retentions promise to delete.
 */
export const FIRST_PASS_AFTER_SECONDS = 600;

export class Housekeeping {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** Set by stop(): a pass under way ends after the batch it is deleting. */
  private stopping = false;
  /** The wall clock and the monotonic one (ms) at the previous pass on the timer, or its start. */
  private lastTick: { wall: number; monotonic: number } | undefined;

  constructor(
    private readonly deps: {
      store: HousekeepingStores;
      clock: Clock;
      logger: Logger;
      loginWindowSeconds?: number;
      auditRetentionDays?: number;
      /** Days user tokens and cookie sessions are kept after they expired or were logged out; default 30. */
      userTokenRetentionDays?: number;
      /** Days revoked API tokens are kept after their revocation; default 30. */
      apiTokenRetentionDays?: number;
      /** Records per batch; default DELETE_BATCH. */
      deleteBatch?: number;
      /** Seconds from start() to the first pass, when shorter than the interval; default FIRST_PASS_AFTER_SECONDS. */
      firstPassAfterSeconds?: number;
    },
  ) {}

  /** One pass; returns how many records each kind lost. A store outage is logged, not thrown. */
  async runOnce(): Promise<Record<string, number>> {
    const { store, clock, logger } = this.deps;
    const now = clock.now();
    const removed: Record<string, number> = {};
    const batch = this.deps.deleteBatch ?? DELETE_BATCH;
    // One batch after another until one comes back short.
    const batched = (deleteBatch: (limit: number) => Promise<number>) => async () => {
      let deleted = 0;
      for (;;) {
        const n = await deleteBatch(batch);
        deleted += n;
        if (n < batch || this.stopping) return deleted;
      }
    };
    // Expired by this clock a little while ago, not just now: another instance whose clock is
    // behind this one (README, Clocks) still takes a session or token for unexpired until its own
    // clock passes the expiry, and must still find its record. Deleted the moment this clock
    // passed it, a seed 004 refresh token in its last seconds there was refused as revoked and
    // its owner's DELETE answered 400, and a session there ended early.
    const expiredBefore = new Date(now.getTime() - CLOCK_STEP_MS);
    const staleBefore = new Date(now.getTime() - (this.deps.loginWindowSeconds ?? 86400) * 1000);
    const auditBefore = new Date(now.getTime() - (this.deps.auditRetentionDays ?? 90) * 86_400_000);
    const abandonedBefore = new Date(now.getTime() - PENDING_ABANDONED_AFTER_MS);
    const userTokensBefore = new Date(now.getTime() - (this.deps.userTokenRetentionDays ?? 30) * 86_400_000);
    const revokedApiTokensBefore = new Date(now.getTime() - (this.deps.apiTokenRetentionDays ?? 30) * 86_400_000);
    const jobs: Array<[string, () => Promise<number>]> = [
      ["sessions", batched((limit) => store.sessions.deleteExpired(expiredBefore, limit))],
      ["refreshTokens", batched((limit) => store.refreshTokens.deleteExpired(expiredBefore, limit))],
      ["authTokens", batched((limit) => store.authTokens.deleteExpired(expiredBefore, limit))],
      ["jwtRefreshTokens", batched((limit) => store.jwtRefreshTokens.deleteExpired(expiredBefore, limit))],
      ["userTokens", batched((limit) => store.userTokens.deleteEndedBefore(userTokensBefore, limit))],
      ["abandonedApiTokens", batched((limit) => store.apiTokens.deleteAbandoned(abandonedBefore, limit))],
      ["revokedApiTokens", batched((limit) => store.apiTokens.deleteRevokedBefore(revokedApiTokensBefore, limit))],
      // A handful of rows: one per key rotation or revocation. A retired key once its notAfter
      // (stored at its retirement) has passed; a revoked one, retired or not, not before
      // REVOKED_KEY_KEPT_MS after its revocation either.
      ["keys", () => store.keys.deleteExpired(now, new Date(now.getTime() - REVOKED_KEY_KEPT_MS))],
      ["loginAttempts", batched((limit) => store.loginAttempts.deleteStale(staleBefore, now, limit))],
      ["knownLogins", batched((limit) => store.loginAttempts.forgetExpiredLogins(now, limit))],
      ["auditEvents", batched((limit) => store.auditEvents.deleteOlderThan(auditBefore, limit))],
    ];
    for (const [name, job] of jobs) {
      if (this.stopping) break;
      try {
        removed[name] = await job();
      } catch (e) {
        logger.warn("housekeeping failed", { records: name, error: e instanceof Error ? e.message : String(e) });
      }
    }
    if (Object.values(removed).some((n) => n > 0)) logger.info("housekeeping", removed);
    return removed;
  }

  /**
   * Runs every `intervalSeconds` (0: never) until stop(), the first time after
   * FIRST_PASS_AFTER_SECONDS when the interval is longer; the timer does not keep the process alive.
   */
  start(intervalSeconds: number): void {
    if (intervalSeconds <= 0 || this.timer) return;
    this.stopping = false;
    this.lastTick = { wall: this.deps.clock.now().getTime(), monotonic: performance.now() };
    const tick = () => {
      if (this.running === undefined && this.jumpedAhead()) return;
      this.running ??= this.runOnce().then(
        () => { this.running = undefined; },
        () => { this.running = undefined; },
      );
    };
    const every = () => {
      this.timer = setInterval(tick, intervalSeconds * 1000);
      this.timer.unref();
    };
    const firstSeconds = this.deps.firstPassAfterSeconds ?? FIRST_PASS_AFTER_SECONDS;
    if (firstSeconds >= intervalSeconds) return every();
    this.timer = setTimeout(() => {
      tick();
      every();
    }, firstSeconds * 1000);
    this.timer.unref();
  }

  /**
   * Whether the wall clock ran more than CLOCK_STEP_MS further than the monotonic one since the
   * previous tick (logged as `housekeeping postponed`); each tick is the next one's mark. A pass
   * right after such a jump (an NTP step, an operator setting the time) is postponed: a clock set
   * wrongly ahead would have it delete for good what is live once it is set right (sessions,
   * tokens, keys, the audit trail); one set right is acted on a pass later.
   */
  private jumpedAhead(): boolean {
    const now = { wall: this.deps.clock.now().getTime(), monotonic: performance.now() };
    const last = this.lastTick;
    this.lastTick = now;
    if (last === undefined) return false;
    const aheadMs = now.wall - last.wall - (now.monotonic - last.monotonic);
    if (aheadMs <= CLOCK_STEP_MS) return false;
    this.deps.logger.warn("housekeeping postponed", { reason: "the clock jumped ahead", aheadMs: Math.round(aheadMs) });
    return true;
  }

  /**
   * Stops the timer and waits for a pass in progress (so the store can close under it), which
   * ends after the batch under way: the rest of a backlog (thousands of batches after an upgrade
   * or a long stop; on FerretDB each reads the whole collection) is left to the next start,
   * rather than hold the stop, and what the stop does after it (owed releases of login slots, the
   * last audit events), for as long as it takes.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
