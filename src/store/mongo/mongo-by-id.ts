import type { Collection, Document, Filter, FindOptions, UpdateFilter } from "mongodb";

/**
 * Reads, deletes and updates of documents by a list of `_id`s: up to ONE_BY_ONE ids, one
 * equality on `_id` per document (with the call's other conditions beside it), not one
 * `{_id: {$in: ids}}`; more, one `$in` (below).
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

/**
 * Past this many ids, one `$in`: a batch of housekeeping or a long list (an account's API
 * tokens) costs one read of the collection on FerretDB (at 100 ids among 10,000 other marks
 * about what the equalities cost, and far less in a small collection: 7 ms against 280 ms at
 * 100 ids, none other) and one request on MongoDB, where the equalities would be that many.
 */
export const ONE_BY_ONE = AT_ONCE;

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
const byList = <T extends Document>(filter: Filter<T>, ids: readonly string[]) => ({ ...filter, _id: { $in: ids } }) as Filter<T>;

/** The documents of `ids` (each once) that match `filter` too, as `find({...filter, _id: {$in: ids}})`. */
export async function findByIds<T extends Document & { _id: string }>(
  collection: Collection<T>,
  ids: readonly string[],
  filter: Filter<T> = {},
  options?: FindOptions,
): Promise<T[]> {
  const each = distinct(ids);
  if (each.length > ONE_BY_ONE) return (await collection.find(byList(filter, each), options).toArray()) as T[];
  const docs = await eachById(each, (id) => collection.findOne(byId(filter, id), options));
  return docs.filter((doc): doc is NonNullable<typeof doc> => doc !== null) as T[];
}

/** Deletes the documents of `ids` that match `filter` too; how many: as `deleteMany({...filter, _id: {$in: ids}})`. */
export async function deleteByIds<T extends Document & { _id: string }>(collection: Collection<T>, ids: readonly string[], filter: Filter<T> = {}): Promise<number> {
  const each = distinct(ids);
  if (each.length > ONE_BY_ONE) return (await collection.deleteMany(byList(filter, each))).deletedCount;
  const counts = await eachById(each, async (id) => (await collection.deleteOne(byId(filter, id))).deletedCount);
  return counts.reduce((sum, n) => sum + n, 0);
}

/** Updates the documents of `ids` that match `filter` too: as `updateMany({...filter, _id: {$in: ids}}, update)`. */
export async function updateByIds<T extends Document & { _id: string }>(
  collection: Collection<T>,
  ids: readonly string[],
  filter: Filter<T>,
  update: UpdateFilter<T>,
): Promise<void> {
  const each = distinct(ids);
  if (each.length > ONE_BY_ONE) await collection.updateMany(byList(filter, each), update);
  else await eachById(each, (id) => collection.updateOne(byId(filter, id), update));
}
