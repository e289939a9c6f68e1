import type { Document } from "mongodb";
import type { JwtRefreshTokenRecord, JwtRefreshTokenStore, NewJwtRefreshToken } from "../ports.js";
import { deleteBatch } from "./mongo-batches.js";
import { fromDoc, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";

export const JWT_REFRESH_TOKENS = "jwt_refresh_tokens";
const ID = "jti";

// The token document is never updated; revocation is the mark "jwt-revoked:<jti>".
const revokedMark = (jti: string) => `jwt-revoked:${jti}`;

export function mongoJwtRefreshTokens(ctx: MongoContext): JwtRefreshTokenStore {
  const tokens = ctx.db.collection<StoredDoc>(JWT_REFRESH_TOKENS);

  const revoke = (doc: StoredDoc, at: Date) => ctx.marks.claim(revokedMark(doc._id), at, doc.expiresAt as Date);

  return {
    create: (token: NewJwtRefreshToken) =>
      ctx.run(ID, async () => {
        const doc = toDoc(token, ID);
        await tokens.insertOne({ ...doc });
        return fromDoc<JwtRefreshTokenRecord>(doc, ID);
      }),
    findByJti: (jti) =>
      ctx.run(ID, async () => {
        const [doc, revokedAt] = await Promise.all([tokens.findOne({ _id: jti }), ctx.marks.get(revokedMark(jti))]);
        if (!doc) return null;
        const token = fromDoc<JwtRefreshTokenRecord>(doc, ID);
        if (revokedAt) token.revokedAt = revokedAt;
        return token;
      }),
    revoke: (jti, userId, at) =>
      ctx.run(ID, async () => {
        const doc = await tokens.findOne({ _id: jti, userId });
        return doc ? revoke(doc, at) : false;
      }),
    revokeAllForUser: (userId, at, issuedBefore) =>
      ctx.run(ID, async () => {
        const filter: Document = { userId };
        if (issuedBefore !== undefined) filter.issuedAt = { $lt: issuedBefore };
        const docs = await tokens.find(filter).toArray();
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
