import type { NewRefreshToken, RefreshTokenRecord, RefreshTokenStore } from "../ports.js";
import { fromDoc, fromDocOrNull, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";

export const REFRESH_TOKENS = "refresh_tokens";
const ID = "hash";

export function mongoRefreshTokens(ctx: MongoContext): RefreshTokenStore {
  const tokens = ctx.db.collection<StoredDoc>(REFRESH_TOKENS);
  return {
    insert: (token: NewRefreshToken) =>
      ctx.run(ID, async () => {
        const doc = toDoc(token, ID);
        await tokens.insertOne({ ...doc });
        return fromDoc<RefreshTokenRecord>(doc, ID);
      }),
    findByHash: (hash) =>
      ctx.run(ID, async () => fromDocOrNull<RefreshTokenRecord>(await tokens.findOne({ _id: hash }), ID)),
    spend: (hash, at) =>
      ctx.run(ID, async () => {
        // The filtered findOneAndUpdate decides the race; "before" tells the winner it won.
        const won = await tokens.findOneAndUpdate(
          { _id: hash, spentAt: null },
          { $set: { spentAt: at } },
          { returnDocument: "before" },
        );
        if (won) return fromDoc<RefreshTokenRecord>(won, ID);
        // Lost or unknown: spentAt, once set, never changes, so this read is stable.
        return fromDocOrNull<RefreshTokenRecord>(await tokens.findOne({ _id: hash }), ID);
      }),
    deleteBySession: (sessionId) =>
      ctx.run(ID, async () => (await tokens.deleteMany({ sessionId })).deletedCount),
    deleteExpired: (before) =>
      ctx.run(ID, async () => (await tokens.deleteMany({ expiresAt: { $lt: before } })).deletedCount),
  };
}
