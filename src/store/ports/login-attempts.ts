// Failed-login counters for abuse protection, shared across instances.
export interface LoginAttemptRecord {
  /** e.g. "login:<normalised login>" or "addr:<ip>". */
  key: string;
  /** Failures counted in the current window. */
  failures: number;
  firstFailureAt: Date;
  lastFailureAt: Date;
  lockedUntil?: Date;
}

export interface LoginAttemptStore {
  /**
   * Atomic increment: when the window that started at firstFailureAt is still open
   * (firstFailureAt > at - windowMs) failures++, otherwise a new window starts (failures=1,
   * firstFailureAt=at). lockedUntil is kept. Returns the state after the increment.
   */
  recordFailure(key: string, at: Date, windowMs: number): Promise<LoginAttemptRecord>;
  get(key: string): Promise<LoginAttemptRecord | null>;
  /** After a successful login. */
  reset(key: string): Promise<void>;
  /** No-op when the key has no record. */
  setLockedUntil(key: string, until: Date): Promise<void>;
  /**
   * Housekeeping: deletes the records whose last failure is before `lastFailureBefore` and that
   * are not locked at `now` (their window has long passed: they can never count again).
   * Returns how many records (documents) it deleted.
   */
  deleteStale(lastFailureBefore: Date, now: Date): Promise<number>;
}
