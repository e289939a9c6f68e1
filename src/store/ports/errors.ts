// Errors adapters throw on purpose: the only ones a caller of a port needs to tell apart.
/** Base class of the errors adapters throw on purpose. */
export class StoreError extends Error {
  override name = "StoreError";
}

/** The database is down, unreachable or timed out. Maps to UNAVAILABLE (HTTP 503). */
export class StoreUnavailableError extends StoreError {
  override name = "StoreUnavailableError";
  /**
   * The write was refused for want of space (the embedded store on a full disk): reads still
   * answer, and writes are taken again once space is back. A start owes such a write rather than
   * failing (core/owed-writes.ts).
   */
  readonly diskFull: boolean;
  constructor(message = "store unavailable", options?: { cause?: unknown; diskFull?: boolean }) {
    super(message, options);
    this.diskFull = options?.diskFull ?? false;
  }
}

/**
 * The store's setting (MONGODB_URI) cannot be used as written: found by the driver as the store
 * opens, it is a configuration error all the same (the start stops with exit code 2, as for a
 * value the configuration refuses), not a failure a retry could mend.
 */
export class StoreSettingError extends StoreError {
  override name = "StoreSettingError";
}

/**
 * The store was not opened: the start was stopped (SIGTERM, SIGINT) while it waited for MongoDB to
 * be reachable (TESSERA_STORE_START_WAIT_SECONDS). Not a failure: the process stops as asked.
 */
export class OpenStopped extends StoreError {
  override name = "OpenStopped";
  constructor() {
    super("stopped while waiting for the store");
  }
}

/**
 * A unique constraint refused the write. `key` names the constrained field of the record
 * ("login", "hash", "jti", "kid", "generation", "id", ...) — never its value, which may be secret.
 */
export class DuplicateError extends StoreError {
  override name = "DuplicateError";
  readonly key: string;
  constructor(key: string, options?: { cause?: unknown }) {
    super(`duplicate ${key}`, options);
    this.key = key;
  }
}

/**
 * The caller's deadline passed before the store answered, or before the call reached the store
 * (it is then not made). The caller has stopped waiting: maps to DEADLINE_EXCEEDED.
 */
export class DeadlineExceededError extends StoreError {
  override name = "DeadlineExceededError";
  constructor(message = "the call's deadline passed before the store answered") {
    super(message);
  }
}

/**
 * The waits that ride on errors: what an error rests on that may not be durable yet, which its
 * caller waits for before the error goes on (errorDurable), once it has made its own last write
 * (an audit event, whose fsync then covers both on the embedded store). Set where the error is
 * made: by the embedded store on the DuplicateError of a clash answered before the write it
 * clashed with is durable (RefreshTokenStore.insertThenSync), by the core on a refusal that
 * follows a refresh's spend (Sessions.rotate: the spend's own commit, or what a lost spend
 * read). Kept beside the error, not on it, so that an error of any class carries one the same
 * way; only an error made for one call is marked (a store's failure may be one object thrown to
 * many calls: such an error is waited for where it is seen).
 */
const durableWaits = new WeakMap<Error, () => Promise<void>>();

/** `error`, marked with `durable`: what it rests on, resolved once durable (see errorDurable). */
export function withDurable<E extends Error>(error: E, durable: () => Promise<void>): E {
  durableWaits.set(error, durable);
  return error;
}

/**
 * Resolves once what `error` rests on is durable: at once unless a wait rides on it
 * (withDurable). Rejects when that cannot be made durable (the store's failure).
 */
export function errorDurable(error: unknown): Promise<void> {
  const wait = durableOf(error);
  return wait ? wait() : Promise.resolve();
}

/** The wait that rides on `error` (withDurable), if any. */
export function durableOf(error: unknown): (() => Promise<void>) | undefined {
  return error instanceof Error ? durableWaits.get(error) : undefined;
}

/**
 * The operations that go on after their error was thrown: a store call given up at its time
 * bound (MongoDB: the store's or the caller's deadline passed) while the operation it started
 * still runs, and may still write. Set by the adapter on the error it answers the call with;
 * what it holds settles once that operation has ended, written or not. A caller that ends a
 * credential evicts what it caches of it again then (core/api-tokens.ts, core/key-ring.ts): a
 * write that lands after the error must not leave a cache filled from a read before it.
 */
const lateOperations = new WeakMap<Error, Promise<void>>();

/** `error`, marked with `operation`, which goes on after it (see settledOf). */
export function withLateOperation<E extends Error>(error: E, operation: Promise<unknown>): E {
  lateOperations.set(
    error,
    operation.then(
      () => undefined,
      () => undefined,
    ),
  );
  return error;
}

/** Resolves once the operation going on after `error` has ended; undefined when none does (withLateOperation). */
export function settledOf(error: unknown): Promise<void> | undefined {
  return error instanceof Error ? lateOperations.get(error) : undefined;
}
