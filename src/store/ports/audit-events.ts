// The audit trail: security events, appended once, read back newest first by an administrator,
// deleted only by retention (housekeeping). An event is never updated.

/** One recorded security event. Optional fields are absent when unknown. */
export interface AuditEventRecord {
  /** Unique: a UUIDv7 (core/audit.ts SortableIds), in the order the instance recorded events. */
  id: string;
  time: Date;
  /** What happened: one of the names in core/audit.ts (e.g. "login", "session.ended"). */
  type: string;
  /** "success", "failure", "locked", "throttled", "shed", "canceled" or "error" (see refusalOutcomes). */
  outcome: string;
  userId?: string;
  /** The login name given (a failed login names what was tried). */
  login?: string;
  /** The API called: "session", "apitoken", "usertoken", "authtoken", "jwt", "key", "audit". */
  api?: string;
  clientId?: string;
  clientAddress?: string;
  userAgent?: string;
  requestId?: string;
  traceId?: string;
  spanId?: string;
  /** What the event is about, by its public id: a session id, a token link, a key id, an RPC. */
  subject?: string;
  /** The error reason of a refused or failed call (e.g. INVALID_CREDENTIALS). */
  reason?: string;
  /** Type "audit.suppressed" only: what the audit budget counted instead of storing (core/audit-budget.ts). */
  suppressed?: SuppressedEvents;
}

/** Events counted instead of stored, from `since` to the summary's time. */
export interface SuppressedEvents {
  since: Date;
  /** The sum of the entries' counts. */
  count: number;
  /** Counts by type, outcome and reason (empty when there was none), largest first. */
  events: Array<{ type: string; outcome: string; reason: string; count: number }>;
}

/**
 * The outcomes of calls refused, or ended by their callers, before any password was checked
 * (core/audit.ts AuditOutcome): what a flood is made of. An adapter may commit events of these alone less durably (the
 * embedded store skips the fsync; see src/store/README.md).
 */
export const refusalOutcomes: ReadonlySet<string> = new Set(["locked", "throttled", "shed", "canceled"]);

/** Where a page of events starts: strictly after (older than) this event. */
export interface AuditCursor {
  time: Date;
  id: string;
}

export interface AuditEventQuery {
  userId?: string;
  type?: string;
  /** Events at or after this time. */
  since?: Date;
  /** Events before this time. */
  until?: Date;
  /** Continue after this event (the last of the previous page). */
  after?: AuditCursor;
  /** Most events returned. */
  limit: number;
}

export interface AppendOptions {
  /**
   * A success whose call records another event next, once its credential is stored, and waits
   * for that event to be durable (seed 000's login: session.started after the session and its
   * refresh token, SessionStore.createThenSync): the embedded store commits this event without
   * waiting for an fsync of its own (in the same transaction as that next event when it comes in
   * the same turn of the event loop, else before it), and the fsync that the next event waits for
   * makes both durable. A call whose next event is not stored, or that fails before it, calls
   * synced() before it answers.
   */
  syncedByNextWrite?: boolean;
}

export interface AuditEventStore {
  /**
   * Stores one event, resolving once it is durable (see AppendOptions for the one exception).
   * DuplicateError("id") if the id exists.
   */
  append(event: AuditEventRecord, options?: AppendOptions): Promise<void>;
  /** Resolves once every event appended so far is durable (at once where each append is, on its own). */
  synced(): Promise<void>;
  /** Matching events, newest first (time desc, then id desc), at most `limit`. */
  list(query: AuditEventQuery): Promise<AuditEventRecord[]>;
  /** Retention: deletes at most `limit` events older than `before` (one batch, see ports.ts); returns how many. */
  deleteOlderThan(before: Date, limit: number): Promise<number>;
}
