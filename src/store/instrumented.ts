// Every store call through one hook, without touching the adapters: each port's methods are
// wrapped, generically, so a new method is observed as soon as it exists. The hook sees the
// operation's name ("users.findByLogin") and the call; the server layer times it (metrics) and
// opens a span for it (tracing).
import type { Store } from "./ports.js";

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
