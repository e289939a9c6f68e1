import type { Collection, Document, Filter } from "mongodb";

/**
 * A housekeeping batch (see ports.ts): the ids of at most `limit` documents matching `filter`,
 * found by the index on its field, then one deleteMany of those ids with the filter applied
 * again (a document that stopped matching meanwhile, e.g. a remembered login moved on by a new
 * success, stays). Each batch is its own store call (ctx.run), under the store's own time bound.
 * Returns the ids found (to drop their marks) and how many were deleted.
 */
export async function deleteBatch<T extends Document & { _id: string }>(
  collection: Collection<T>,
  filter: Filter<T>,
  limit: number,
): Promise<{ ids: string[]; deleted: number }> {
  const found = await collection.find(filter, { projection: { _id: 1 } }).limit(limit).toArray();
  if (found.length === 0) return { ids: [], deleted: 0 };
  const ids = found.map((doc) => doc._id as string);
  const { deletedCount } = await collection.deleteMany({ $and: [filter, { _id: { $in: ids } }] } as Filter<T>);
  return { ids, deleted: deletedCount };
}
