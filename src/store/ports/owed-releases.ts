// Slots whose give-back the store refused (it was down, or past its time bound), kept and given
// back once it answers again, rather than lost. A lost release is a slot nobody checks any more
// that its window still counts as being checked: the lease frees it only once no attempt on its
// key has been granted for a lease's time, so under steady traffic (every client of one address,
// one popular login) it stays held for the rest of the window, and a handful of logins answered
// 503 during an outage would refuse a right password 429 LOGIN_LOCKED afterwards.
//
// A give-back made late counts nothing wrong (ports/login-attempts.ts: giveBackSlot gives nothing
// back for a slot that no longer counts, and touches no new window), so one is tried again until
// it is made or its window has passed: before the next reservation that waits for it (settle())
// and every OWED_RELEASE_RETRY_MS meanwhile, by itself. A stop (close()) tries them once more,
// before the store closes, and then no more: those still owed are left to the lease.
//
// A round tries every owed give-back, at most ROUND_CONCURRENCY at a time: after a long or
// flapping outage thousands may be owed, and sent at once they would flood the store just as it
// answers again (MongoDB: the driver's pool of 100 connections, whose wait queue gives up at the
// store's time bound, and behind FerretDB its PostgreSQL), refusing the logins of that moment.
// A round ends at its first give-back the store fails (those in flight still waited for): the
// store is down or hangs, and sending the rest would only make a caller that waits for the round
// (a login, a sign-up) wait out the store's time bound once for every ROUND_CONCURRENCY owed;
// they wait for the next round. So a caller waits at most about two time bounds (the round under
// way and one more), however many are owed.
// A stop's last round sends all at once instead (nothing is served any more, and it must not wait
// out the store's time bound once for every ROUND_CONCURRENCY of them while the store hangs), and
// the round under way at a stop sends no more: what it has not tried goes in that last round.
// A round runs outside any call's scope, whoever began it: its store calls are no part of the
// login that waited for it (its request id, its trace, its deadline), which it may outlast.
import { outsideCall } from "../../call-scope.js";
import type { HeldSlot } from "./login-attempts.js";

/** How often owed give-backs are tried again by themselves. */
const OWED_RELEASE_RETRY_MS = 1000;
/** At most this many reservations' give-backs are kept owed (the oldest dropped first: the lease is their backstop). */
const MAX_OWED = 10_000;
/**
 * At most this many give-backs of a round are in flight at once: a sixth of MongoDB's default
 * pool, leaving the rest to the calls being served, and still quick to make up a backlog (at a
 * millisecond a give-back, the 10,000 owed at most within a second).
 */
export const ROUND_CONCURRENCY = 16;

export class OwedReleases {
  /** Each owed reservation's slots, and when the last of their windows has passed (ms). */
  private readonly owed = new Map<readonly HeldSlot[], number>();
  private timer: NodeJS.Timeout | undefined;
  private settling: Promise<void> | undefined;
  /**
   * The round after the one under way (`after`), shared by the callers that came while it ran.
   * Tied to that round, not cleared when it ends: a caller that comes once another round has
   * begun (also one begun before those waiting for `after` have been resumed) waits for one more
   * after that one.
   */
  private nextRound: { after: Promise<void>; round: Promise<void> } | undefined;
  private closed = false;

  constructor(
    private readonly giveBack: (slots: readonly HeldSlot[]) => Promise<void>,
    private readonly nowMs: () => number,
  ) {}

  /** `slots`' give-back failed: it is owed until made, or until its windows (`windowMs` long) have passed. */
  owe(slots: readonly HeldSlot[], windowMs: number): void {
    if (slots.length === 0 || this.closed) return;
    let until = 0;
    for (const slot of slots) until = Math.max(until, slot.windowStart.getTime() + windowMs);
    if (this.owed.size >= MAX_OWED) this.owed.delete(this.owed.keys().next().value!);
    this.owed.set(slots, until);
    if (this.timer === undefined) {
      // Outside the call that owed it: its retries are no part of that call (its trace, its
      // request id), which has long been answered. A round still under way when it fires is
      // left to end: no other is queued behind it (as settle() queues one for a caller).
      this.timer = outsideCall(() => setInterval(() => void (this.settling ?? this.settle()), OWED_RELEASE_RETRY_MS));
      this.timer.unref();
    }
  }

  /**
   * Tries every owed give-back again (one round at a time, shared by its callers). A caller that
   * comes while a round is under way waits for it and then, when any give-back is still owed, for
   * the next round: the one under way may have been sent before the store answered again, and
   * fail after it has (MongoDB: at its time bound). Never throws.
   */
  settle(): Promise<void> {
    if (this.owed.size === 0) return Promise.resolve();
    const underWay = this.settling;
    if (underWay === undefined) return this.begin();
    if (this.nextRound?.after !== underWay) {
      // One round at a time: one begun meanwhile is this one.
      const round = underWay.then(() => (this.owed.size === 0 ? undefined : (this.settling ?? this.begin())));
      this.nextRound = { after: underWay, round };
    }
    return this.nextRound.round;
  }

  /** Begins a round (none is under way), outside the scope of the call that asked for it. */
  private begin(last = false): Promise<void> {
    this.settling = outsideCall(() => this.round(last)).finally(() => {
      this.settling = undefined;
      if (this.owed.size === 0 && this.timer !== undefined) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    });
    return this.settling;
  }

  /**
   * Stops the retries: the owed give-backs are tried once more, all at once (after the round
   * under way, which sends no more), then none is kept. Before the store closes: a retry after it
   * would fail every second until the windows passed, holding on to the closed store.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    while (this.settling !== undefined) await this.settling;
    if (this.owed.size > 0) await this.begin(true);
    this.owed.clear();
  }

  /** Tries each give-back owed as it begins, ROUND_CONCURRENCY at a time (a stop's `last` round: all at once). */
  private async round(last: boolean): Promise<void> {
    const now = this.nowMs();
    const entries = [...this.owed];
    let next = 0;
    let failed = false;
    const tryInTurn = async () => {
      while (next < entries.length) {
        if (failed) return; // the store failed one: the rest wait for the next round
        if (this.closed && !last) return; // a stop: the rest goes in its last round
        const [slots, until] = entries[next++]!;
        if (!this.owed.has(slots)) continue; // dropped meanwhile (MAX_OWED): left to the lease
        if (until <= now) {
          this.owed.delete(slots); // its windows have passed: nothing left to give back
          continue;
        }
        try {
          await this.giveBack(slots);
          this.owed.delete(slots);
        } catch {
          // Still owed: the next round tries again.
          failed = true;
        }
      }
    };
    await Promise.all(Array.from({ length: last ? entries.length : Math.min(ROUND_CONCURRENCY, entries.length) }, tryInTurn));
  }
}
