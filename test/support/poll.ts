// Polling for what happens after a call was answered (an audit event stored, a count in
// /metrics, a listener closed, a store back). The time limit is judged by when a probe started,
// not by when it was answered: on a loaded machine a probe can itself wait for seconds (an admin
// listing, for one, is answered only once its own admin.call event is on disk, one fsync), and
// what it found was read back then. A probe that started before the limit and was answered after
// it is followed by one more; only one that started past the limit is the last. The limit is
// measured on the monotonic clock, so a test that steps the wall clock does not move it.
import assert from "node:assert/strict";

/** How long to poll, and how often. */
export interface Pace {
  /** From the first probe's start; a probe that starts later is the last. */
  limitMs: number;
  /** The pause after a probe that did not find it. */
  intervalMs: number;
}

/**
 * Probes until `enough` holds of a probe's value, or a probe that started past the limit was
 * answered: that probe's value, for the caller's assertion to show what was found.
 */
export async function pollLast<T>(probe: () => T | Promise<T>, enough: (value: T) => boolean, { limitMs, intervalMs }: Pace): Promise<T> {
  const deadline = performance.now() + limitMs;
  for (;;) {
    const started = performance.now();
    const value = await probe();
    if (enough(value) || started > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * The first value of `probe` other than undefined and false; fails, naming `what`, when a probe
 * that started past the limit found none either.
 */
export async function pollUntil<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, pace: Pace): Promise<T> {
  const found = await pollLast(probe, (value) => value !== undefined && value !== false, pace);
  assert.ok(found !== undefined && found !== false, `timed out after ${pace.limitMs} ms waiting for: ${what}`);
  return found;
}
