import type { Db, Document } from "mongodb";
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

/** A record -> a document to insert: `idKey` becomes `_id`; undefined fields are left out. */
export function toDoc(record: object, idKey: string): StoredDoc {
  const doc: Document = {};
  for (const [field, value] of Object.entries(record)) {
    if (value === undefined) continue;
    doc[field === idKey ? "_id" : field] = value;
  }
  return doc as StoredDoc;
}

