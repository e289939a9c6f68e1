import type { JwtRefreshTokenRecord, JwtRefreshTokenStore, NewJwtRefreshToken } from "../ports.js";
import { pastCap } from "../mongo-caps.js";
import { deleteBatch } from "./mongo-batches.js";
import { updateByIds } from "./mongo-by-id.js";
import { fromDoc, outdatedFilter, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";

export const JWT_REFRESH_TOKENS = "jwt_refresh_tokens";
const ID = "jti";
/** The index by which the cap reads the user's unrevoked tokens, the revoked ones left out (mongo-indexes.ts). */
export const JWT_REFRESH_TOKENS_CAP_INDEX = "userId_1_revokedAt_1_issuedAt_-1__id_-1";

// Revocation is the mark "jwt-revoked:<jti>". The token document's one in-place write is
// `revokedAt`, set after the mark was claimed: only the cap reads it (to count the user's
// unrevoked tokens by the userId_1_revokedAt_1_issuedAt_-1__id_-1 index, without its revoked ones), never an answer, which the mark
// decides. A token revoked before it was written (by an older version, or a failed write) counts
// as unrevoked until the cap reaches it: its claim then fails, and the field is written.
const revokedMark = (jti: string) => `jwt-revoked:${jti}`;

export function mongoJwtRefreshTokens(ctx: MongoContext): JwtRefreshTokenStore {
  const tokens = ctx.db.collection<StoredDoc>(JWT_REFRESH_TOKENS);

  /** Claims the revocation; whoever claimed it or not, the document then says it is revoked (see above). */
  const revoke = async (doc: StoredDoc, at: Date): Promise<boolean> => {
    const won = await ctx.marks.claim(revokedMark(doc._id), at, doc.expiresAt as Date);
    // The revocation is made: a failed write of its time must not report it failed.
    if (doc.revokedAt === undefined) await tokens.updateOne({ _id: doc._id, revokedAt: { $exists: false } }, { $set: { revokedAt: at } }).catch(() => {});
    return won;
  };

  /** The user's unrevoked, unexpired tokens past the cap, once `token` is stored: revoked; answers those this call revoked. */
  const revokePastCap = async (token: NewJwtRefreshToken, cap: number): Promise<string[]> => {
    const live = { userId: token.userId, revokedAt: null, expiresAt: { $gt: token.issuedAt } };
    const docs = await pastCap(tokens, live, token.jti, cap, "issuedAt", JWT_REFRESH_TOKENS_CAP_INDEX);
    if (docs.length === 0) return [];
    const at = token.issuedAt;
    const won = await Promise.all(docs.map((doc) => ctx.marks.claim(revokedMark(doc._id), at, doc.expiresAt as Date)));
    // Their `revokedAt` by one update (of a whole batch, one write rather than one each), those
    // found revoked already included.
    await updateByIds(tokens, docs.map((doc) => doc._id), { revokedAt: { $exists: false } }, { $set: { revokedAt: at } }).catch(() => {});
    return docs.filter((_, i) => won[i]).map((doc) => doc._id);
  };

  return {
    create: (token: NewJwtRefreshToken, cap?: number) =>
      ctx.run(ID, async () => {
        const doc = toDoc(token, ID);
        await tokens.insertOne({ ...doc });
        return { record: fromDoc<JwtRefreshTokenRecord>(doc, ID), ended: cap === undefined ? [] : await revokePastCap(token, cap) };
      }),
    findByJti: (jti) =>
      ctx.run(ID, async () => {
        const [doc, revokedAt] = await Promise.all([tokens.findOne({ _id: jti }), ctx.marks.get(revokedMark(jti))]);
        if (!doc) return null;
        const { revokedAt: _capOnly, ...fields } = doc;
        const token = fromDoc<JwtRefreshTokenRecord>(fields, ID);
        if (revokedAt) token.revokedAt = revokedAt;
        return token;
      }),
    revoke: (jti, userId, at) =>
      ctx.run(ID, async () => {
        const doc = await tokens.findOne({ _id: jti, userId });
        return doc ? revoke(doc, at) : false;
      }),
    revokeAllForUser: (userId, at, outdatedBy) =>
      ctx.run(ID, async () => {
        const docs = await tokens.find(outdatedBy === undefined ? { userId } : { userId, ...outdatedFilter(outdatedBy, "issuedAt") }).toArray();
        return (await Promise.all(docs.map((doc) => revoke(doc, at)))).filter(Boolean).length;
      }),
    deleteExpired: (before, limit) =>
      ctx.run(ID, async () => {
        const { ids, deleted } = await deleteBatch(tokens, { expiresAt: { $lt: before } }, limit);
        await ctx.marks.deleteMany(ids.map(revokedMark));
        return deleted;
      }),
  };
}
