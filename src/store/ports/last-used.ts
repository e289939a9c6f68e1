// Coalesced last-use writes (ApiTokenStore.touchLastUsed, UserTokenStore.touchLastUsed): time is
// cut into intervals of `minIntervalMs`, aligned to multiples of it since the epoch (0: every
// millisecond is its own interval), so every instance computes the same interval for a given
// time. A write happens only when the stored last use is unset or before the interval `at`
// falls in: all instances together write at most once per token per interval, and the last
// use never moves back.

/** The start (ms since the epoch) of the interval `at` falls in. */
export function touchBucket(at: Date, minIntervalMs: number): number {
  return minIntervalMs > 0 ? Math.floor(at.getTime() / minIntervalMs) * minIntervalMs : at.getTime();
}
