import type { NewSigningKey, SigningKeyRecord, SigningKeyStore } from "../ports.js";
import { fromDoc, fromDocOrNull, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";
import { insertUnlessTaken } from "./mongo-inserts.js";

export const SIGNING_KEYS = "signing_keys";
const ID = "kid";

export function mongoSigningKeys(ctx: MongoContext): SigningKeyStore {
  const keys = ctx.db.collection<StoredDoc>(SIGNING_KEYS);

  // The unique index on generation (and _id = kid) lets exactly one instance win each generation.
  const tryInsert = (key: NewSigningKey): Promise<boolean> => insertUnlessTaken(keys, toDoc(key, ID));

  return {
    list: () =>
      ctx.run(ID, async () =>
        (await keys.find({}).sort({ generation: 1 }).toArray()).map((doc) => fromDoc<SigningKeyRecord>(doc, ID)),
      ),
    current: () =>
      ctx.run(ID, async () =>
        fromDocOrNull<SigningKeyRecord>(await keys.find({}).sort({ generation: -1 }).limit(1).next(), ID),
      ),
    insertGeneration: (key) => ctx.run(ID, () => tryInsert(key)),
    rotate: (next, previousNotAfter) =>
      ctx.run(ID, async () => {
        if (!(await tryInsert(next))) return false;
        // No multi-document transaction (FerretDB has none): the insert above decides the rotation
        // and "current" is always the highest generation, so there are never two current keys.
        // Marking the previous key retired is an idempotent follow-up.
        await keys.updateOne(
          { generation: next.generation - 1, retiredAt: null },
          { $set: { retiredAt: next.activatedAt, notAfter: previousNotAfter } },
        );
        return true;
      }),
    deleteExpired: (before) =>
      ctx.run(ID, async () =>
        (await keys.deleteMany({ retiredAt: { $ne: null }, notAfter: { $lt: before } })).deletedCount,
      ),
  };
}
