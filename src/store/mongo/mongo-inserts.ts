// Inserts, the Mongo adapter's only compare-and-set (see mongo-marks.ts for why): an insert into
// a unique index either wins or fails with a duplicate-key error. Everything here is built on
// telling that error apart.
import type { Collection, Document, Filter, MongoServerError, OptionalUnlessRequiredId, UpdateFilter } from "mongodb";
import { mongoDriver } from "./mongo-driver.js";
import { DuplicateError } from "../ports.js";
import type { StoredDoc } from "./mongo-context.js";

/** True when a write was refused by a unique index (E11000). */
export function isDuplicateKey(error: unknown): error is MongoServerError {
  const m = mongoDriver();
  return m !== undefined && error instanceof m.MongoServerError && error.code === 11000;
}

/** Inserts `doc`; true when this call inserted it, false when its unique key was taken. */
export async function insertUnlessTaken<D extends Document>(collection: Collection<D>, doc: OptionalUnlessRequiredId<D>): Promise<boolean> {
  try {
    await collection.insertOne(doc);
    return true;
  } catch (error) {
    if (isDuplicateKey(error)) return false;
    throw error;
  }
}

/**
 * `updateOne(filter, update)` with an upsert. Two first writes at once may both try to insert the
 * document: the loser's duplicate-key error is answered by updating the one the winner inserted.
 */
export async function upsertOne<D extends Document>(collection: Collection<D>, filter: Filter<D>, update: UpdateFilter<D>): Promise<void> {
  try {
    await collection.updateOne(filter, update, { upsert: true });
  } catch (error) {
    if (!isDuplicateKey(error)) throw error;
    await collection.updateOne(filter, update);
  }
}

/**
 * Inserts `doc` into a collection with a second unique key. FerretDB's duplicate-key error does
 * not say which index refused it, so on a clash look: if the `_id` is taken it was `idKey`,
 * otherwise `otherKey`.
 */
export async function insertNamingDuplicate(
  collection: Collection<StoredDoc>,
  doc: StoredDoc,
  idKey: string,
  otherKey: string,
): Promise<void> {
  try {
    await collection.insertOne({ ...doc });
  } catch (error) {
    if (!isDuplicateKey(error)) throw error;
    const pattern = error.keyPattern as Record<string, unknown> | undefined;
    if (pattern) throw new DuplicateError(Object.keys(pattern)[0] === "_id" ? idKey : otherKey, { cause: error });
    const taken = await collection.countDocuments({ _id: doc._id }, { limit: 1 });
    throw new DuplicateError(taken > 0 ? idKey : otherKey, { cause: error });
  }
}

/** A state kept as numbered versions: version n lives in its own document, `_id` = idOf(n). */
export interface VersionDoc {
  _id: string;
  n: number;
}

export interface NextVersion<D extends VersionDoc> {
  /** The latest version, or null when there is none yet. */
  latest(): Promise<D | null>;
  /** The next state computed from the latest; null: nothing to write. */
  next(current: D | null): Omit<D, "_id" | "n"> | null | Promise<Omit<D, "_id" | "n"> | null>;
  /** The `_id` of version n. */
  idOf(n: number): string;
  /** After losing a race to a concurrent writer: read again and retry (true), or give up (false). */
  retry: boolean;
  /** How many attempts before giving up with an error (a race that never settles is a bug). */
  maxTries: number;
  /**
   * Before retrying a lost race: wait a random time up to this many ms times the attempt number,
   * so that many writers of one value spread out instead of colliding round after round.
   */
  backoffMs?: number;
  /** What is being versioned, for that error. */
  what: string;
  /**
   * The insert of `doc` failed without telling whether it was made (a dropped connection, a
   * pool cleared while it was on the wire: the server may still apply it, or have applied it):
   * called before that error is thrown.
   */
  uncertain?(doc: D): void;
}

/**
 * A versioned insert, for values that change many times (a password, a failure counter): read
 * the latest version n, compute the next state from it, insert it as version n+1. The unique
 * `_id` makes the insert a compare-and-set: of two writers who read the same n, one inserts n+1
 * and the other gets a duplicate key, re-reads and tries again (or gives up, `retry` false), so
 * no change is lost or applied twice. Returns the inserted version, or null when `next` had
 * nothing to write or the race was lost without retry.
 */
export async function insertNextVersion<D extends VersionDoc>(collection: Collection<D>, step: NextVersion<D>): Promise<D | null> {
  for (let attempt = 0; attempt < step.maxTries; attempt++) {
    const current = await step.latest();
    const state = await step.next(current);
    if (state === null) return null;
    const n = (current?.n ?? 0) + 1;
    const doc = { ...state, _id: step.idOf(n), n } as D;
    let inserted: boolean;
    try {
      inserted = await insertUnlessTaken(collection, doc as OptionalUnlessRequiredId<D>);
    } catch (error) {
      step.uncertain?.(doc);
      throw error;
    }
    if (inserted) return doc;
    if (!step.retry) return null;
    if (step.backoffMs) await new Promise((resolve) => setTimeout(resolve, Math.random() * step.backoffMs! * (attempt + 1)));
  }
  throw new Error(`${step.what} did not settle`);
}
