// A spy that records every call of one method of an object (a store port, say) and passes it on.

export interface Spy<A extends unknown[]> {
  readonly calls: A[];
  restore(): void;
}

/**
 * Wraps `obj[key]` (a method) so every call is recorded, then passed on (or to `replacement`).
 * The core calls `store.apiTokens.findByHash(...)` through the object each time, so a spy
 * installed on a running server's store sees every lookup.
 */
export function spyOn<T extends object, K extends keyof T>(
  obj: T,
  key: K,
  replacement?: T[K],
): Spy<T[K] extends (...args: infer A) => unknown ? A : never> {
  const original = obj[key] as unknown as (...args: unknown[]) => unknown;
  const target = (replacement ?? original) as unknown as (...args: unknown[]) => unknown;
  const calls: unknown[][] = [];
  (obj as Record<PropertyKey, unknown>)[key as PropertyKey] = (...args: unknown[]) => {
    calls.push(args);
    return target.apply(obj, args);
  };
  return {
    calls: calls as never,
    restore: () => {
      (obj as Record<PropertyKey, unknown>)[key as PropertyKey] = original;
    },
  };
}
