import { AsyncLocalStorage } from "node:async_hooks";
import type { Db, Document } from "mongodb";
import type { PasswordChange } from "../ports/users.js";
import type { Marks } from "./mongo-marks.js";

/** Every collection keeps the record's natural key (id, hash, link, jti, kid, key) in `_id`. */
export type StoredDoc = Document & { _id: string };

/** What each Mongo repository needs: the database and a guarded way to run an operation. */
export interface MongoContext {
  readonly db: Db;
  readonly marks: Marks;
  /**
   * Runs one operation after the start-up indexes exist (unique indexes are what make the CAS
   * writes correct, so nothing runs before them), mapping driver errors to store errors.
   * `idKey` names the record field kept in `_id`.
   */
  run<T>(idKey: string, op: () => Promise<T>): Promise<T>;
}

/**
 * A stored document -> a record: `_id` becomes `idKey`, and null/absent fields stay absent, so
 * `_id` never leaks out of the adapter.
 */
export function fromDoc<R>(doc: Document, idKey: string): R {
  const record: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(doc)) {
    if (value === null || value === undefined) continue;
    record[field === "_id" ? idKey : field] = Array.isArray(value) ? [...value] : value;
  }
  return record as R;
}

export function fromDocOrNull<R>(doc: Document | null, idKey: string): R | null {
  return doc ? fromDoc<R>(doc, idKey) : null;
}

/**
 * The filter of the credentials a password change outdated (PasswordChange): those of an earlier
 * credential epoch, and those stored without one (null matches an absent field too) whose
 * `timeField` is before the change.
 */
export function outdatedFilter(change: PasswordChange, timeField: string): Document {
  return { $or: [{ credentialEpoch: { $lt: change.epoch } }, { credentialEpoch: null, [timeField]: { $lt: change.changedAt } }] };
}

/** A record -> a document to insert: `idKey` becomes `_id`; undefined fields are left out. */
export function toDoc(record: object, idKey: string): StoredDoc {
  const doc: Document = {};
  for (const [field, value] of Object.entries(record)) {
    if (value === undefined) continue;
    doc[field === idKey ? "_id" : field] = value;
  }
  return doc as StoredDoc;
}


/**
 * Whether the operation being run (MongoContext.run) has been given up (its caller was
 * answered), and how long its caller waits for it.
 */
const givenUp = new AsyncLocalStorage<{ abandoned: boolean; waitMs: number }>();

/**
 * Runs `operation`, whose caller waits `waitMs` for it, so that what it starts can ask
 * `abandoned()` and `waitedForMs()`; returns the function that marks it given up (its caller was
 * answered UNAVAILABLE or DEADLINE_EXCEEDED meanwhile).
 */
export function abandonable<T>(operation: () => Promise<T>, waitMs: number): { running: Promise<T>; abandon(): void } {
  const state = { abandoned: false, waitMs };
  return { running: givenUp.run(state, operation), abandon: () => (state.abandoned = true) };
}

/**
 * How long the caller of the operation being run waits for it (the store's time bound, or the
 * call's deadline when nearer); undefined outside MongoContext.run. A read that may be long (the
 * audit listing) gives MongoDB this as its maxTimeMS: a caller answered UNAVAILABLE does not
 * leave the database reading on for no one, holding a pooled connection while it does.
 */
export function waitedForMs(): number | undefined {
  const waitMs = givenUp.getStore()?.waitMs;
  return waitMs === undefined ? undefined : Math.max(1, Math.ceil(waitMs));
}

/**
 * True when the operation this code runs for has been given up: a step that waited its turn
 * (login-attempt writes, one at a time per key) is then not made, since nobody will act on it.
 */
export function abandoned(): boolean {
  return givenUp.getStore()?.abandoned === true;
}

/**
 * abandoned() of the operation being run here, to ask later from a job run for several callers
 * (the takes of one login-attempt key decided together in one turn).
 */
export function abandonedCheck(): () => boolean {
  const state = givenUp.getStore();
  return () => state?.abandoned === true;
}
