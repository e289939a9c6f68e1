import { createHash } from "node:crypto";
import { retiredBy, type KeyPromotion, type NewSigningKey, type ResealOutcome, type SigningKeyRecord, type SigningKeyStore } from "../ports.js";
import { fromDoc, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";
import { insertUnlessTaken } from "./mongo-inserts.js";

export const SIGNING_KEYS = "signing_keys";
const ID = "kid";

// A revocation is the mark "key-revoked:<kid>" (once, whatever races it).
const revokedMark = (kid: string) => `key-revoked:${kid}`;

// A re-seal of a key's private part (README "Upgrades") is decided by the mark
// "key-resealed:<kid>:<SHA-256 of the form it replaces>", inserted with the new form: FerretDB's
// conditional update is no compare-and-set (mongo-marks.ts), and two instances that both matched
// the old form would each write their own. Every caller that finds the mark writes the form it
// holds (so the winner's form is stored whoever writes it, and one that stopped between its mark
// and its write is finished by the next), a caller other than the winner only if `accepts` takes
// it (the winner may have had another secret). Once the key holds the form, each inserts a
// second mark, ":reported" added; the one whose insert wins reports the re-seal (once, whoever
// it is) and deletes the first mark. Not the first mark's delete: once deleted, a caller that
// read the key before the write claims it again, and another's delete would count that one.
const resealedMark = (kid: string, from: string) => `key-resealed:${kid}:${createHash("sha256").update(from).digest("base64url")}`;
const reportedMark = (kid: string, from: string) => `${resealedMark(kid, from)}:reported`;
/** How long the mark of a re-seal whose winner stopped before deleting it is kept: housekeeping deletes it after. */
const resealMarkMs = 24 * 3600_000;

// A rotation is one insert: the new next key's document carries what the rotation changes
// (`rotation`: the key it promotes and from when, the key it retires and until when), and the
// list applies it to those keys. The unique generation lets one rotation win each generation, so
// nothing else decides it. The promotion and retirement are also written into the keys' own
// documents, for instances of versions that read only those; this version reads them only for
// keys no stored rotation names (stored before rotations carried them). Those in-place writes
// cannot be relied on: two rotations in a row from two instances both write the key between them
// (the first promotes it, the second retires it), and FerretDB, which applies an update as a read
// and a write-back of the whole document, keeps only one of two such writes made at once.
const ROTATION = "rotation";

interface StoredRotation {
  promote: { kid: string; activatedAt: Date };
  retire?: { kid: string; retiredAt: Date; notAfter: Date };
  alsoRetire?: string[];
}

export function mongoSigningKeys(ctx: MongoContext): SigningKeyStore {
  const keys = ctx.db.collection<StoredDoc>(SIGNING_KEYS);

  // The unique index on generation (and _id = kid) lets exactly one instance win each generation.
  const tryInsert = (key: NewSigningKey, rotation?: KeyPromotion): Promise<boolean> =>
    insertUnlessTaken(keys, { ...toDoc(key, ID), ...(rotation && { [ROTATION]: rotation }) });

  /** The records of `docs` (generation ascending, every key stored), rotations applied. */
  const records = async (docs: StoredDoc[]): Promise<SigningKeyRecord[]> => {
    const revoked = await ctx.marks.getMany(docs.map((doc) => revokedMark(doc._id)));
    const promoted = new Map<string, Date>();
    const retired = new Map<string, { retiredAt: Date; notAfter: Date }>();
    for (const doc of docs) {
      const rotation = doc[ROTATION] as StoredRotation | undefined;
      if (!rotation) continue;
      promoted.set(rotation.promote.kid, rotation.promote.activatedAt);
      // The key a rotation retires takes the latest rotation's times (the key promoted to take
      // over from it was revoked before it signed: see KeyPromotion); for the others of
      // `alsoRetire` the earliest counts, as the in-place write's retiredAt: null filter had it.
      for (const kid of retiredBy(rotation)) if (kid === rotation.retire!.kid || !retired.has(kid)) retired.set(kid, rotation.retire!);
    }
    return docs.map((doc) => {
      const { [ROTATION]: _rotation, ...fields } = doc;
      const key = fromDoc<SigningKeyRecord>(fields, ID);
      const activatedAt = promoted.get(doc._id);
      if (activatedAt) key.activatedAt = activatedAt;
      const retirement = retired.get(doc._id);
      if (retirement) {
        key.retiredAt = retirement.retiredAt;
        key.notAfter = retirement.notAfter;
      }
      const at = revoked.get(revokedMark(doc._id));
      if (at) key.revokedAt = at;
      return key;
    });
  };

  // Housekeeping deletes a key's document, then its revocation mark (deleteExpired): a list that
  // read the documents before that delete and the marks after it held the revoked key without its
  // revocation, which its instance's key ring took for a live key until its next read. So the
  // keys read without a mark are looked for again once the marks are read: one gone by then is
  // left out, as a list made after the delete leaves it. The marks are read one key at a time
  // (Marks.getMany): not one read of them all, but each starts after the documents were read, so
  // every mark set before a document the list holds is read (a revocation's rotation publishes
  // its new key after its mark: mongo-key-list-order.test.ts), and each key's own look again
  // starts after its own mark was read.
  const list = async () => {
    const listed = await records(await keys.find({}).sort({ generation: 1 }).toArray());
    const unrevoked = listed.filter((key) => key.revokedAt === undefined).map((key) => key.kid);
    if (unrevoked.length === 0) return listed;
    const still = new Set((await keys.find({ _id: { $in: unrevoked } }, { projection: { _id: 1 } }).toArray()).map((doc) => doc._id));
    return listed.filter((key) => key.revokedAt !== undefined || still.has(key.kid));
  };

  return {
    list: () => ctx.run(ID, list),
    insertGeneration: (key) => ctx.run(ID, () => tryInsert(key)),
    rotate: (next, change) =>
      ctx.run(ID, async () => {
        if (!(await tryInsert(next, change))) return false;
        // For older versions only (see above): made by the winner, and failing nothing.
        await keys.updateOne({ _id: change.promote.kid }, { $set: { activatedAt: change.promote.activatedAt } }).catch(() => {});
        for (const kid of retiredBy(change)) {
          const { retiredAt, notAfter } = change.retire!;
          await keys.updateOne({ _id: kid, retiredAt: null }, { $set: { retiredAt, notAfter } }).catch(() => {});
        }
        return true;
      }),
    reseal: (kid, from, to, at, accepts) =>
      ctx.run(ID, async (): Promise<ResealOutcome> => {
        const mark = resealedMark(kid, from);
        const won = await ctx.marks.claim(mark, at, new Date(at.getTime() + resealMarkMs), to);
        const form = won ? to : (await ctx.marks.read(mark))?.data;
        // No mark: it was written, and deleted.
        if (form === undefined) return "unchanged";
        if (!won && !accepts(form)) return "refused";
        const { matchedCount } = await keys.updateOne({ _id: kid, privateJwk: from }, { $set: { privateJwk: form } });
        // Another caller may have written this form first; the key may be gone (then the winner deletes the mark).
        const stored = matchedCount === 1 || (await keys.countDocuments({ _id: kid, privateJwk: form }, { limit: 1 })) === 1;
        if (!stored) {
          if (won) await ctx.marks.deleteMany([mark]);
          return "unchanged";
        }
        if (!(await ctx.marks.claim(reportedMark(kid, from), at, new Date(at.getTime() + resealMarkMs)))) return "unchanged";
        await ctx.marks.deleteMany([mark]);
        return "resealed";
      }),
    revoke: (kid, at) =>
      ctx.run(ID, async () => {
        if ((await keys.countDocuments({ _id: kid }, { limit: 1 })) === 0) return false;
        return ctx.marks.claim(revokedMark(kid), at);
      }),
    // By the records (a handful): a key's retirement may be known from a later key's rotation
    // only. A key whose rotation names a key that stays is kept with it (its notAfter can come
    // first when the token lifetimes were shortened between the two rotations; a revoked next
    // key's document holds the promotion of the key that signs). A deleted key's revocation
    // mark goes after it: a key without its mark would verify again.
    deleteExpired: (before, revokedBefore) =>
      ctx.run(ID, async () => {
        const docs = await keys.find({}).sort({ generation: 1 }).toArray();
        const all = await records(docs);
        const top = all.at(-1)?.generation;
        const expired = new Set(
          all
            .filter((key) =>
              key.retiredAt !== undefined
                ? key.notAfter !== undefined && key.notAfter < before && (key.revokedAt === undefined || key.revokedAt < revokedBefore)
                : key.revokedAt !== undefined && key.revokedAt < revokedBefore && key.generation !== top,
            )
            .map((key) => key.kid),
        );
        const named = (doc: StoredDoc) => {
          const rotation = doc[ROTATION] as StoredRotation | undefined;
          return rotation ? [rotation.promote.kid, ...retiredBy(rotation)] : [];
        };
        const present = new Set(docs.map((doc) => doc._id));
        const gone = docs.filter((doc) => expired.has(doc._id) && named(doc).every((kid) => expired.has(kid) || !present.has(kid)));
        if (gone.length === 0) return 0;
        const deleted = (await keys.deleteMany({ _id: { $in: gone.map((doc) => doc._id) } })).deletedCount;
        await ctx.marks.deleteMany(gone.map((doc) => revokedMark(doc._id)));
        return deleted;
      }),
  };
}
