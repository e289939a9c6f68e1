// The caps on a user's live credentials, on MongoDB (ports/caps.ts). FerretDB 1.x has no
// transactions and applies no update atomically, so a creation is not counted and stored in one
// step: the new credential is inserted first, then the user's live ones past the cap are found
// (this helper) and ended one by one, each by the credential's own atomic end (a mark claimed,
// or a delete), so two creations ending the same one end it once. The new credential is never
// among them: it is left out by its id, not by its time. Two creations at once may each count
// the other's credential and both end one: the user is then left with one fewer than the cap,
// never more (src/store/README.md, "Caps").
import type { Collection, Filter } from "mongodb";
import { CAP_BATCH } from "./ports.js";
import type { StoredDoc } from "./mongo/mongo-context.js";

/**
 * The documents of `collection` matching `live` (the user's live credentials: the user id, and the
 * liveness field's absence where only live ones count, as equalities),
 * other than `keep`'s (the new one), past the newest `cap - 1` of them by `created` then `_id`:
 * the CAP_BATCH oldest of them, oldest first. The boundary (the newest past the cap) is read
 * first, then the oldest up to it, both by `index` (named, so that the server takes no other),
 * which begins with `live`'s equalities, then `created` and _id: neither read goes through more
 * than the cap and one batch, nor through the user's ended ones where they do not count. Past the boundary, not past a count: a
 * credential another creation ends meanwhile leaves the ones this one ends as they were (by a
 * count, the next newer would have been ended in its place). Only `_id` and `expiresAt` are read.
 */
export async function pastCap(collection: Collection<StoredDoc>, live: Filter<StoredDoc>, keep: string, cap: number, created: string, index: string): Promise<StoredDoc[]> {
  const others = { $and: [live, { _id: { $ne: keep } }] } as Filter<StoredDoc>;
  const [boundary] = await collection
    .find(others, { projection: { _id: 1, [created]: 1 } })
    .sort({ [created]: -1, _id: -1 })
    .hint(index)
    .skip(cap - 1)
    .limit(1)
    .toArray();
  if (boundary === undefined) return [];
  const upTo = { $or: [{ [created]: { $lt: boundary[created] } }, { [created]: boundary[created], _id: { $lte: boundary._id } }] };
  return collection
    .find({ $and: [others, upTo] } as Filter<StoredDoc>, { projection: { _id: 1, expiresAt: 1 } })
    .sort({ [created]: 1, _id: 1 })
    .hint(index)
    .limit(CAP_BATCH)
    .toArray();
}
