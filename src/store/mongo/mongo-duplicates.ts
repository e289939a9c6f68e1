import { MongoServerError, type Collection } from "mongodb";
import { DuplicateError } from "../ports.js";
import type { StoredDoc } from "./mongo-context.js";

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
    if (!(error instanceof MongoServerError && error.code === 11000)) throw error;
    const pattern = error.keyPattern as Record<string, unknown> | undefined;
    if (pattern) throw new DuplicateError(Object.keys(pattern)[0] === "_id" ? idKey : otherKey, { cause: error });
    const taken = await collection.countDocuments({ _id: doc._id }, { limit: 1 });
    throw new DuplicateError(taken > 0 ? idKey : otherKey, { cause: error });
  }
}
