import type { NewUserToken, UserTokenRecord, UserTokenStore } from "../ports.js";
import { fromDoc, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";
import { insertNamingDuplicate } from "./mongo-inserts.js";
import { LastUsed } from "./mongo-last-used.js";

export const USER_TOKENS = "user_tokens";
export const USER_TOKEN_USAGE = "user_token_usage";
const ID = "id";

// The token document is never updated. Disabling is the mark "ut-disabled:<id>" (so version is 0,
// or 1 once disabled: the only change a user token has); last use lives in user_token_usage.
const disabledMark = (id: string) => `ut-disabled:${id}`;

export function mongoUserTokens(ctx: MongoContext): UserTokenStore {
  const tokens = ctx.db.collection<StoredDoc>(USER_TOKENS);
  const lastUsed = new LastUsed(ctx.db, USER_TOKEN_USAGE, tokens, ctx.marks, "ut-touch");

  const load = async (doc: StoredDoc | null): Promise<UserTokenRecord | null> => {
    if (!doc) return null;
    const [disabledAt, lastUsedAt] = await Promise.all([ctx.marks.get(disabledMark(doc._id)), lastUsed.get(doc._id)]);
    const token = fromDoc<UserTokenRecord>(doc, ID);
    token.enabled = !disabledAt;
    token.version = disabledAt ? 1 : 0;
    if (lastUsedAt) token.lastUsedAt = lastUsedAt;
    return token;
  };

  const disable = async (doc: StoredDoc) =>
    ctx.marks.claim(disabledMark(doc._id), new Date(), (doc.expiresAt as Date | undefined) ?? undefined);

  return {
    create: (token: NewUserToken) =>
      ctx.run(ID, async () => {
        const doc = toDoc(token, ID);
        await insertNamingDuplicate(tokens, doc, ID, "hash");
        return { ...fromDoc<UserTokenRecord>(doc, ID), enabled: true, version: 0 };
      }),
    findByHash: (hash) => ctx.run(ID, async () => load(await tokens.findOne({ hash }))),
    touchLastUsed: (id, at, minIntervalMs = 0) => ctx.run(ID, () => lastUsed.touch(id, at, minIntervalMs)),
    disable: (id) =>
      ctx.run(ID, async () => {
        const doc = await tokens.findOne({ _id: id });
        return doc ? disable(doc) : false;
      }),
    disableAllForUser: (userId) =>
      ctx.run(ID, async () => {
        const docs = await tokens.find({ userId }).toArray();
        return (await Promise.all(docs.map(disable))).filter(Boolean).length;
      }),
  };
}
