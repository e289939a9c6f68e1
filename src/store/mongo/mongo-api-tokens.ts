import type { ApiTokenRecord, ApiTokenStore, NewApiToken } from "../ports.js";
import { fromDoc, fromDocOrNull, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";

export const API_TOKENS = "api_tokens";
const ID = "link";

export function mongoApiTokens(ctx: MongoContext): ApiTokenStore {
  const tokens = ctx.db.collection<StoredDoc>(API_TOKENS);
  return {
    create: (token: NewApiToken) =>
      ctx.run(ID, async () => {
        const doc = toDoc(token, ID);
        await tokens.insertOne({ ...doc });
        return fromDoc<ApiTokenRecord>(doc, ID);
      }),
    findByHash: (hash) => ctx.run(ID, async () => fromDocOrNull<ApiTokenRecord>(await tokens.findOne({ hash }), ID)),
    findByLink: (link) =>
      ctx.run(ID, async () => fromDocOrNull<ApiTokenRecord>(await tokens.findOne({ _id: link }), ID)),
    updateDescription: (link, description) =>
      ctx.run(ID, async () =>
        fromDocOrNull<ApiTokenRecord>(
          await tokens.findOneAndUpdate(
            { _id: link, revokedAt: null },
            { $set: { description } },
            { returnDocument: "after" },
          ),
          ID,
        ),
      ),
    list: (accountId, state) =>
      ctx.run(ID, async () => {
        const filter = state === "active" ? { accountId, revokedAt: null } : { accountId, revokedAt: { $ne: null } };
        const docs = await tokens.find(filter).sort({ issuedAt: -1, _id: -1 }).toArray();
        return docs.map((doc) => fromDoc<ApiTokenRecord>(doc, ID));
      }),
    revoke: (accountId, link, at) =>
      ctx.run(ID, async () =>
        fromDocOrNull<ApiTokenRecord>(
          await tokens.findOneAndUpdate(
            { _id: link, accountId, revokedAt: null },
            { $set: { revokedAt: at } },
            { returnDocument: "after" },
          ),
          ID,
        ),
      ),
    touchLastUsed: (link, at, minIntervalMs = 0) =>
      ctx.run(ID, async () => {
        const result = await tokens.updateOne(
          {
            _id: link,
            $or: [{ lastUsedAt: null }, { lastUsedAt: { $lt: new Date(at.getTime() - minIntervalMs) } }],
          },
          { $set: { lastUsedAt: at } },
        );
        return result.matchedCount === 1;
      }),
  };
}
