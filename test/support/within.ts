// A time bound on work that used to take time quadratic (or worse) in its input's length.
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
