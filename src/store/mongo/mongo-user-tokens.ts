import type { NewUserToken, UserTokenRecord, UserTokenStore } from "../ports.js";
import { fromDoc, fromDocOrNull, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";

export const USER_TOKENS = "user_tokens";
const ID = "id";

export function mongoUserTokens(ctx: MongoContext): UserTokenStore {
  const tokens = ctx.db.collection<StoredDoc>(USER_TOKENS);
  return {
    create: (token: NewUserToken) =>
      ctx.run(ID, async () => {
        const doc = toDoc({ ...token, enabled: true, version: 0 }, ID);
        await tokens.insertOne({ ...doc });
        return fromDoc<UserTokenRecord>(doc, ID);
      }),
    findByHash: (hash) => ctx.run(ID, async () => fromDocOrNull<UserTokenRecord>(await tokens.findOne({ hash }), ID)),
    findById: (id) => ctx.run(ID, async () => fromDocOrNull<UserTokenRecord>(await tokens.findOne({ _id: id }), ID)),
    touchLastUsed: (id, at, minIntervalMs = 0) =>
      ctx.run(ID, async () => {
        const result = await tokens.updateOne(
          { _id: id, $or: [{ lastUsedAt: null }, { lastUsedAt: { $lt: new Date(at.getTime() - minIntervalMs) } }] },
          { $set: { lastUsedAt: at } },
        );
        return result.matchedCount === 1;
      }),
    disable: (id) =>
      ctx.run(ID, async () => {
        const result = await tokens.updateOne({ _id: id, enabled: true }, { $set: { enabled: false }, $inc: { version: 1 } });
        return result.matchedCount === 1;
      }),
    disableAllForUser: (userId) =>
      ctx.run(ID, async () => {
        const result = await tokens.updateMany(
          { userId, enabled: true },
          { $set: { enabled: false }, $inc: { version: 1 } },
        );
        return result.matchedCount;
      }),
  };
}
