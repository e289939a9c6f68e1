import type { ApiTokenRecord, ApiTokenStore, NewApiToken } from "../ports.js";
import { fromDoc, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";
import { insertNamingDuplicate } from "./mongo-inserts.js";
import { LastUsed } from "./mongo-last-used.js";

export const API_TOKENS = "api_tokens";
export const API_TOKEN_USAGE = "api_token_usage";
const ID = "link";

// The token document changes only through updateDescription (last writer wins between two
// renames); revocation is the mark "api-revoked:<link>"; last use lives in api_token_usage.
const revokedMark = (link: string) => `api-revoked:${link}`;

export function mongoApiTokens(ctx: MongoContext): ApiTokenStore {
  const tokens = ctx.db.collection<StoredDoc>(API_TOKENS);
  const lastUsed = new LastUsed(ctx.db, API_TOKEN_USAGE, tokens, ctx.marks, "api-touch");

  const load = async (doc: StoredDoc | null): Promise<ApiTokenRecord | null> => {
    if (!doc) return null;
    const [revokedAt, lastUsedAt] = await Promise.all([ctx.marks.get(revokedMark(doc._id)), lastUsed.get(doc._id)]);
    const token = fromDoc<ApiTokenRecord>(doc, ID);
    if (lastUsedAt) token.lastUsedAt = lastUsedAt;
    if (revokedAt) token.revokedAt = revokedAt;
    return token;
  };

  return {
    create: (token: NewApiToken) =>
      ctx.run(ID, async () => {
        const doc = toDoc(token, ID);
        await insertNamingDuplicate(tokens, doc, ID, "hash");
        return fromDoc<ApiTokenRecord>(doc, ID);
      }),
    findByHash: (hash) => ctx.run(ID, async () => load(await tokens.findOne({ hash }))),
    updateDescription: (link, description) =>
      ctx.run(ID, async () => {
        const token = await load(await tokens.findOne({ _id: link }));
        if (!token || token.revokedAt) return null;
        await tokens.updateOne({ _id: link }, { $set: { description } });
        return { ...token, description };
      }),
    list: (accountId, state) =>
      ctx.run(ID, async () => {
        const docs = await tokens.find({ accountId }).sort({ issuedAt: -1, _id: -1 }).toArray();
        const links = docs.map((doc) => doc._id);
        const [revoked, used] = await Promise.all([ctx.marks.getMany(links.map(revokedMark)), lastUsed.getMany(links)]);
        const records = docs.map((doc) => {
          const token = fromDoc<ApiTokenRecord>(doc, ID);
          const revokedAt = revoked.get(revokedMark(doc._id));
          const lastUsedAt = used.get(doc._id);
          if (lastUsedAt) token.lastUsedAt = lastUsedAt;
          if (revokedAt) token.revokedAt = revokedAt;
          return token;
        });
        return records.filter((token) => (token.revokedAt !== undefined) === (state === "revoked"));
      }),
    revoke: (accountId, link, at) =>
      ctx.run(ID, async () => {
        const token = await load(await tokens.findOne({ _id: link, accountId }));
        if (!token || token.revokedAt) return null;
        if (!(await ctx.marks.claim(revokedMark(link), at))) return null;
        return { ...token, revokedAt: new Date(at.getTime()) };
      }),
    touchLastUsed: (link, at, minIntervalMs = 0) => ctx.run(ID, () => lastUsed.touch(link, at, minIntervalMs)),
  };
}
