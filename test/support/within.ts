// Time bounds in tests: on work that used to take time quadratic (or worse) in its input's length,
// and on waits for another party.
import { strict as assert } from "node:assert";

/** `run`'s result, failing the test ("<what> took N ms") when it took `limitMs` or more. */
export function within<T>(limitMs: number, what: string, run: () => T): T {
  const started = performance.now();
  try {
    return run();
  } finally {
    const ms = Math.round(performance.now() - started);
    assert.ok(ms < limitMs, `${what} took ${ms} ms`);
  }
}

/**
 * `promise`, or a failure naming `what` once `limitMs` have passed without it settling: a wait
 * on another party (a gate another call opens, a database's answer) ends within the test's own
 * timeout, with what did not happen, and the test's own clean-up (finally) still runs.
 */
export function settlesWithin<T>(limitMs: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${limitMs} ms`)), limitMs);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
