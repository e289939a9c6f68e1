// Every store call through one hook, without touching the adapters: each port's methods are
// wrapped, generically, so a new method is observed as soon as it exists. The hook sees the
// operation's name ("users.findByLogin") and the call; the server layer times it (metrics) and
// opens a span for it (tracing).
import { durableOf, withDurable, type Store } from "./ports.js";

export type StoreCallHook = <T>(operation: string, call: () => Promise<T>) => Promise<T>;

/** `store` with every port method's call passed through `hook`. */
export function instrumentStore(store: Store, hook: StoreCallHook): Store {
  const wrapped: Record<string, unknown> = {};
  for (const [portName, port] of Object.entries(store)) {
    if (typeof port !== "object" || port === null) continue;
    const methods: Record<string, unknown> = {};
    for (const [name, fn] of Object.entries(port as Record<string, unknown>)) {
      if (typeof fn !== "function") continue;
      const operation = `${portName}.${name}`;
      methods[name] = (...args: unknown[]) => hook(operation, () => (fn as (...a: unknown[]) => Promise<unknown>).apply(port, args));
    }
    wrapped[portName] = methods;
  }
  return { ...store, ...wrapped } as Store;
}

/**
 * The later wait of a store call, outside its timing: a ...ThenSync method's `durable` (its
 * answer's) or the wait on its error (errorDurable, a duplicate answered before the write it
 * clashed with is durable). `outcome` (the call's answer, or its error) is given back with that
 * wait telling `failed` when it rejects, so that a failure seen only there (a failed fsync of
 * the embedded store) is counted under the operation that made the write. The wait itself still
 * rejects as before.
 */
export function watchingWait<T>(outcome: T, failed: (error: unknown) => void): T {
  // Every store call's answer passes here: one without a wait is given back before any function
  // is made for it (the bundle names each arrow function it makes, a defineProperty per call).
  const wait = durableOf(outcome);
  if (wait) return withDurable(outcome as Error, watched(wait, failed)) as T;
  if (typeof outcome !== "object" || outcome === null || !("durable" in outcome) || typeof outcome.durable !== "function") return outcome;
  return { ...outcome, durable: watched(outcome.durable as () => Promise<void>, failed) };
}

/** `wait`, telling `failed` when it rejects (watchingWait). */
function watched(wait: () => Promise<void>, failed: (error: unknown) => void): () => Promise<void> {
  return () =>
    wait().catch((error: unknown) => {
      failed(error);
      throw error;
    });
}
