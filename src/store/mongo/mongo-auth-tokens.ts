import type { AuthTokenRecord, AuthTokenStore, NewAuthToken } from "../ports.js";
import { deleteBatch } from "./mongo-batches.js";
import { fromDoc, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";

export const AUTH_TOKENS = "auth_tokens";
const ID = "hash";

// The token document is never updated; consuming it is the mark "auth-consumed:<hash>".
const consumedMark = (hash: string) => `auth-consumed:${hash}`;

export function mongoAuthTokens(ctx: MongoContext): AuthTokenStore {
  const tokens = ctx.db.collection<StoredDoc>(AUTH_TOKENS);
  return {
    create: (token: NewAuthToken) =>
      ctx.run(ID, async () => {
        const doc = toDoc(token, ID);
        await tokens.insertOne({ ...doc });
        return fromDoc<AuthTokenRecord>(doc, ID);
      }),
    findByHash: (hash) =>
      ctx.run(ID, async () => {
        const [doc, consumedAt] = await Promise.all([tokens.findOne({ _id: hash }), ctx.marks.get(consumedMark(hash))]);
        if (!doc) return null;
        const token = fromDoc<AuthTokenRecord>(doc, ID);
        if (consumedAt) token.consumedAt = consumedAt;
        return token;
      }),
    consume: (hash, now) =>
      ctx.run(ID, async () => {
        const doc = await tokens.findOne({ _id: hash });
        if (!doc) return null;
        const token = fromDoc<AuthTokenRecord>(doc, ID);
        if (token.expiresAt.getTime() <= now.getTime()) return null;
        if (!(await ctx.marks.claim(consumedMark(hash), now, token.expiresAt))) return null;
        return { ...token, consumedAt: new Date(now.getTime()) };
      }),
    release: (hash, consumedAt) => ctx.run(ID, () => ctx.marks.release(consumedMark(hash), consumedAt)),
    deleteExpired: (before, limit) =>
      ctx.run(ID, async () => {
        const { ids, deleted } = await deleteBatch(tokens, { expiresAt: { $lt: before } }, limit);
        await ctx.marks.deleteMany(ids.map(consumedMark));
        return deleted;
      }),
  };
}
