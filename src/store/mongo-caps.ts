// The caps on a user's live credentials, on MongoDB (ports/caps.ts). FerretDB 1.x has no
// transactions and applies no update atomically, so a creation is not counted and stored in one
// step: the new credential is inserted first, then the user's live ones past the cap are found
// (this helper) and ended one by one, each by the credential's own atomic end (a mark claimed,
// or a delete), so two creations ending the same one end it once.
//
// Concurrent creations agree on one order: (creation time, then _id) over all the user's live
// credentials, each new one included. A creation ends the others that fall outside the newest
// `cap` in that order, never its own credential: of two racing creations that each read the
// other's credential, both keep the newer, and the newer's creation ends the older (before, each
// left its own credential out and ended the other's: both ended, both answered). What a race
// can leave (src/store/README.md, "Caps"):
// - never fewer than the cap: a creation ends a credential only once it has read `cap` live ones
//   newer than it (the boundary), so the user's newest `cap` credentials are never ended by a cap;
// - at most one more than the cap, and only while no later creation has passed: the creation
//   that reads last has read every credential inserted before it (its own insert came first) and
//   ends every other one past its newest `cap`, so what stays is those `cap` and its own. Its own
//   is the one more when `cap` credentials newer than it were read: it was inserted after a newer
//   one's creation had read (its insert slower, its credential made in the same millisecond with
//   a lower _id, or its instance's clock behind another's). The next creation of that kind for
//   the user ends it (and is itself the one more if the same holds for it).
import type { Collection, Filter } from "mongodb";
import { CAP_BATCH } from "./ports.js";
import type { StoredDoc } from "./mongo/mongo-context.js";

/**
 * The documents of `collection` matching `live` (the user's live credentials: the user id, and the
 * liveness field's absence where only live ones count, as equalities), past the newest `cap` of
 * them, `keep`'s (the new one) included, by `created` then `_id`: the CAP_BATCH oldest of them,
 * oldest first, never `keep`'s (see above). The boundary (the newest past the cap) is read
 * first, then the oldest up to it, both by `index` (named, so that the server takes no other),
 * which begins with `live`'s equalities, then `created` and _id: neither read goes through more
 * than the cap and one batch, nor through the user's ended ones where they do not count. Past
 * the boundary, not past a count: a credential another creation ends meanwhile leaves the ones
 * this one ends as they were (by a count, the next newer would have been ended in its place),
 * and one inserted between the two reads is ended only when it is older than the boundary, which
 * had `cap` newer ones. Only `_id` and `expiresAt` are read.
 */
export async function pastCap(collection: Collection<StoredDoc>, live: Filter<StoredDoc>, keep: string, cap: number, created: string, index: string): Promise<StoredDoc[]> {
  const [boundary] = await collection
    .find(live, { projection: { _id: 1, [created]: 1 } })
    .sort({ [created]: -1, _id: -1 })
    .hint(index)
    .skip(cap)
    .limit(1)
    .toArray();
  if (boundary === undefined) return [];
  const upTo = { $or: [{ [created]: { $lt: boundary[created] } }, { [created]: boundary[created], _id: { $lte: boundary._id } }] };
  return collection
    .find({ $and: [live, { _id: { $ne: keep } }, upTo] } as Filter<StoredDoc>, { projection: { _id: 1, expiresAt: 1 } })
    .sort({ [created]: 1, _id: 1 })
    .hint(index)
    .limit(CAP_BATCH)
    .toArray();
}
