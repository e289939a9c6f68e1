// Errors adapters throw on purpose: the only ones a caller of a port needs to tell apart.
/** Base class of the errors adapters throw on purpose. */
export class StoreError extends Error {
  override name = "StoreError";
}

/** The database is down, unreachable or timed out. Maps to UNAVAILABLE (HTTP 503). */
export class StoreUnavailableError extends StoreError {
  override name = "StoreUnavailableError";
  constructor(message = "store unavailable", options?: { cause?: unknown }) {
    super(message, options);
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
 * A unique constraint refused the write. `key` names the constrained field of the record
 * ("login", "hash", "jti", "kid", "generation", "id", ...) — never its value, which may be secret.
 */
export class DuplicateError extends StoreError {
  override name = "DuplicateError";
  readonly key: string;
  /**
   * Set when the clash is answered before the write it clashed with is durable (the embedded
   * store's RefreshTokenStore.insertThenSync, see there): resolves once that write, and every
   * commit before it, is durable. Unset: durable already.
   */
  durable?: () => Promise<void>;
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
