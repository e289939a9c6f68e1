import type { Collection, Document, Filter, FindOptions, UpdateFilter } from "mongodb";

/**
 * Reads, deletes and updates of documents by a list of `_id`s: one equality on `_id` per
 * document (with the call's other conditions beside it), never one `{_id: {$in: ids}}`.
 *
 * FerretDB 1.24 hands a filter to PostgreSQL only when `_id` is an equality at its top level
 * (its explain: `filterPushdown: true`; other top-level fields beside it are checked after). An
 * `$in`, an `$or` of equalities, an `$and` around the equality and a `$regex` are not handed
 * down (`filterPushdown: false`): FerretDB then reads and decodes every document of the
 * collection, and `marks` holds one for each logout, revocation and spend until it expires.
 * Measured there (src/store/README.md, "How each adapter makes races safe"): five ids among
 * 10,000 other marks, `$in` 850 ms, `$or` 1,650 ms, five equalities in parallel 13 ms; 100 ids,
 * `$in` 300 ms, the equalities 400 ms, and the `$in` grows with the collection, they do not.
 *
 * On MongoDB each equality is a lookup by the `_id` index (IDHACK), as `$in` and an `$or` of
 * equalities are: n ids cost n requests rather than one, at most AT_ONCE in flight, on the
 * pooled connections. For the few ids these calls name (a user's sessions over the cap, a key
 * list, a page of a batch) that is a few round trips, not a read of the collection.
 *
 * Not one read: each id is read at its own moment, after the call began. A caller that needs a
 * state of all ids at one instant cannot use these; the store's callers need only that every
 * read starts after what they read before it (the key list: mongo-signing-keys.ts).
 */
export const AT_ONCE = 16;

/** `fn` of each item, at most AT_ONCE at a time, in the order of `items`; the first failure stops new ones and is thrown. */
export async function eachById<I, R>(items: readonly I[], fn: (item: I) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(AT_ONCE, items.length) }, worker));
  return results;
}

const distinct = (ids: readonly string[]) => [...new Set(ids)];
const byId = <T extends Document>(filter: Filter<T>, id: string) => ({ ...filter, _id: id }) as Filter<T>;

/** The documents of `ids` (each once) that match `filter` too, in the order of `ids`: as `find({...filter, _id: {$in: ids}})`. */
export async function findByIds<T extends Document & { _id: string }>(
  collection: Collection<T>,
  ids: readonly string[],
  filter: Filter<T> = {},
  options?: FindOptions,
): Promise<T[]> {
  const docs = await eachById(distinct(ids), (id) => collection.findOne(byId(filter, id), options));
  return docs.filter((doc): doc is NonNullable<typeof doc> => doc !== null) as T[];
}

/** Deletes the documents of `ids` that match `filter` too; how many: as `deleteMany({...filter, _id: {$in: ids}})`. */
export async function deleteByIds<T extends Document & { _id: string }>(collection: Collection<T>, ids: readonly string[], filter: Filter<T> = {}): Promise<number> {
  const counts = await eachById(distinct(ids), async (id) => (await collection.deleteOne(byId(filter, id))).deletedCount);
  return counts.reduce((sum, n) => sum + n, 0);
}

/** Updates the documents of `ids` that match `filter` too: as `updateMany({...filter, _id: {$in: ids}}, update)`. */
export async function updateByIds<T extends Document & { _id: string }>(
  collection: Collection<T>,
  ids: readonly string[],
  filter: Filter<T>,
  update: UpdateFilter<T>,
): Promise<void> {
  await eachById(distinct(ids), (id) => collection.updateOne(byId(filter, id), update));
}
