// An error's cause chain, read through once: what a failed call's error is traced back to (a
// refused stream, a lost connection, a TLS failure) may lie anywhere in it.

/**
 * The most errors of a chain read: Node's, connect-node's and a caller's interceptors' together
 * nest a handful; past this, what is left is not read.
 */
const maxCauses = 32;

/**
 * `e` and its causes, outermost first, while they are Errors, each once and at most maxCauses of
 * them. Nothing keeps a chain from looping (an error its own cause, a → b → a: a library's, or
 * an interceptor's, buggy or hostile): one that does ends at the first error seen again, instead
 * of the call's failure being read for ever, the call never settled and the process spinning.
 */
export function* causeChain(e: unknown): Generator<Error, void, undefined> {
  const seen = new Set<Error>();
  for (let c: unknown = e; c instanceof Error && !seen.has(c) && seen.size < maxCauses; c = c.cause) {
    seen.add(c);
    yield c;
  }
}

/** Whether `e` or one of its causes (causeChain) is among `marked`: the errors a module marked as failures of one kind. */
export function causedBy(e: unknown, marked: WeakSet<object>): boolean {
  for (const c of causeChain(e)) if (marked.has(c)) return true;
  return false;
}
