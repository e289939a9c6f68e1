import type { AuthTokenRecord, AuthTokenStore, NewAuthToken } from "../ports.js";
import { fromDoc, fromDocOrNull, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";

export const AUTH_TOKENS = "auth_tokens";
const ID = "hash";

export function mongoAuthTokens(ctx: MongoContext): AuthTokenStore {
  const tokens = ctx.db.collection<StoredDoc>(AUTH_TOKENS);
  return {
    create: (token: NewAuthToken) =>
      ctx.run(ID, async () => {
        const doc = toDoc(token, ID);
        await tokens.insertOne({ ...doc });
        return fromDoc<AuthTokenRecord>(doc, ID);
      }),
    findByHash: (hash) => ctx.run(ID, async () => fromDocOrNull<AuthTokenRecord>(await tokens.findOne({ _id: hash }), ID)),
    consume: (hash, now) =>
      ctx.run(ID, async () =>
        fromDocOrNull<AuthTokenRecord>(
          await tokens.findOneAndUpdate(
            { _id: hash, consumedAt: null, expiresAt: { $gt: now } },
            { $set: { consumedAt: now } },
            { returnDocument: "after" },
          ),
          ID,
        ),
      ),
    deleteExpired: (before) =>
      ctx.run(ID, async () => (await tokens.deleteMany({ expiresAt: { $lt: before } })).deletedCount),
  };
}
