import type { NewSigningKey, SigningKeyRecord, SigningKeyStore } from "../ports.js";
import { fromDoc, fromDocOrNull, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";
import { insertUnlessTaken } from "./mongo-inserts.js";

export const SIGNING_KEYS = "signing_keys";
const ID = "kid";

// A revocation is the mark "key-revoked:<kid>" (once, whatever races it).
const revokedMark = (kid: string) => `key-revoked:${kid}`;

export function mongoSigningKeys(ctx: MongoContext): SigningKeyStore {
  const keys = ctx.db.collection<StoredDoc>(SIGNING_KEYS);

  // The unique index on generation (and _id = kid) lets exactly one instance win each generation.
  const tryInsert = (key: NewSigningKey): Promise<boolean> => insertUnlessTaken(keys, toDoc(key, ID));

  const withRevocations = async (docs: StoredDoc[]): Promise<SigningKeyRecord[]> => {
    const revoked = await ctx.marks.getMany(docs.map((doc) => revokedMark(doc._id)));
    return docs.map((doc) => {
      const key = fromDoc<SigningKeyRecord>(doc, ID);
      const at = revoked.get(revokedMark(doc._id));
      if (at) key.revokedAt = at;
      return key;
    });
  };

  return {
    list: () => ctx.run(ID, async () => withRevocations(await keys.find({}).sort({ generation: 1 }).toArray())),
    current: () =>
      ctx.run(ID, async () => {
        const doc = await keys.find({}).sort({ generation: -1 }).limit(1).next();
        return doc ? (await withRevocations([doc]))[0]! : fromDocOrNull<SigningKeyRecord>(null, ID);
      }),
    insertGeneration: (key) => ctx.run(ID, () => tryInsert(key)),
    rotate: (next, change) =>
      ctx.run(ID, async () => {
        if (!(await tryInsert(next))) return false;
        // No multi-document transaction (FerretDB has none): the insert above decides the
        // rotation, so only its winner writes the follow-ups below (no racing writers). Until they
        // land, the previous signer keeps signing (the ring's rule needs the promotion's time).
        await keys.updateOne({ _id: change.promote.kid }, { $set: { activatedAt: change.promote.activatedAt } });
        if (change.retire) {
          await keys.updateOne(
            { _id: change.retire.kid, retiredAt: null },
            { $set: { retiredAt: change.retire.retiredAt, notAfter: change.retire.notAfter } },
          );
        }
        return true;
      }),
    revoke: (kid, at) =>
      ctx.run(ID, async () => {
        if ((await keys.countDocuments({ _id: kid }, { limit: 1 })) === 0) return false;
        return ctx.marks.claim(revokedMark(kid), at);
      }),
    deleteExpired: (before) =>
      ctx.run(ID, async () =>
        (await keys.deleteMany({ retiredAt: { $ne: null }, notAfter: { $lt: before } })).deletedCount,
      ),
  };
}
