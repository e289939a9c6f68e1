import type { Document } from "mongodb";
import type { JwtRefreshTokenRecord, JwtRefreshTokenStore, NewJwtRefreshToken } from "../ports.js";
import { fromDoc, fromDocOrNull, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";

export const JWT_REFRESH_TOKENS = "jwt_refresh_tokens";
const ID = "jti";

export function mongoJwtRefreshTokens(ctx: MongoContext): JwtRefreshTokenStore {
  const tokens = ctx.db.collection<StoredDoc>(JWT_REFRESH_TOKENS);
  return {
    create: (token: NewJwtRefreshToken) =>
      ctx.run(ID, async () => {
        const doc = toDoc(token, ID);
        await tokens.insertOne({ ...doc });
        return fromDoc<JwtRefreshTokenRecord>(doc, ID);
      }),
    findByJti: (jti) =>
      ctx.run(ID, async () => fromDocOrNull<JwtRefreshTokenRecord>(await tokens.findOne({ _id: jti }), ID)),
    revoke: (jti, userId, at) =>
      ctx.run(ID, async () => {
        const result = await tokens.updateOne({ _id: jti, userId, revokedAt: null }, { $set: { revokedAt: at } });
        return result.matchedCount === 1;
      }),
    revokeAllForUser: (userId, at, issuedBefore) =>
      ctx.run(ID, async () => {
        const filter: Document = { userId, revokedAt: null };
        if (issuedBefore !== undefined) filter.issuedAt = { $lt: issuedBefore };
        return (await tokens.updateMany(filter, { $set: { revokedAt: at } })).matchedCount;
      }),
    deleteExpired: (before) =>
      ctx.run(ID, async () => (await tokens.deleteMany({ expiresAt: { $lt: before } })).deletedCount),
  };
}
