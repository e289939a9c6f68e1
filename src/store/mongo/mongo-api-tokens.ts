import type { ApiTokenRecord, ApiTokenStore, NewApiToken } from "../ports.js";
import { fromDoc, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";
import { insertNamingDuplicate } from "./mongo-inserts.js";
import { LastUsed } from "./mongo-last-used.js";

export const API_TOKENS = "api_tokens";
export const API_TOKEN_USAGE = "api_token_usage";
const ID = "link";

// The token document changes only through updateDescription (last writer wins between two
// renames) and its revocation; revocation is the mark "api-revoked:<link>", copied into the
// document's `revokedAt` once claimed, so that an account's active tokens are found by the
// index (`accountId_1_revokedAt_1_issuedAt_1__id_1`) without its revoked ones; last use lives in
// api_token_usage.
const revokedMark = (link: string) => `api-revoked:${link}`;

/** Creations of a full account tried again after a race with other creations (see create). */
const CREATE_TRIES = 3;
/** Before trying again: a random wait up to this many ms times the attempt number. */
const CREATE_BACKOFF_MS = 20;

/** The items for which `test` holds, and the others. */
function partition<T>(items: readonly T[], test: (item: T) => boolean): [T[], T[]] {
  const yes: T[] = [];
  const no: T[] = [];
  for (const item of items) (test(item) ? yes : no).push(item);
  return [yes, no];
}

export function mongoApiTokens(ctx: MongoContext): ApiTokenStore {
  const tokens = ctx.db.collection<StoredDoc>(API_TOKENS);
  // Counted on the primary at read concern "local", as marks are read: a count that missed a
  // creation another instance has already answered could let both through.
  const counted = ctx.db.collection<StoredDoc>(API_TOKENS, { readConcern: { level: "local" }, readPreference: "primary" });
  const lastUsed = new LastUsed(ctx.db, API_TOKEN_USAGE, tokens, ctx.marks, "api-touch");

  const load = async (doc: StoredDoc | null): Promise<ApiTokenRecord | null> => {
    if (!doc) return null;
    const [revokedAt, lastUsedAt] = await Promise.all([ctx.marks.get(revokedMark(doc._id)), lastUsed.get(doc._id)]);
    const token = fromDoc<ApiTokenRecord>(doc, ID);
    if (lastUsedAt) token.lastUsedAt = lastUsedAt;
    if (revokedAt) token.revokedAt = revokedAt;
    return token;
  };

  /**
   * The links of the account's active tokens, oldest first (issuedAt, then link). The document's
   * `revokedAt` leaves out the revoked ones by the index; the mark decides those whose copy is
   * missing (revoked by a version before it, or its write lost), and the copy is written again.
   */
  const activeLinks = async (accountId: string): Promise<string[]> => {
    const docs = await counted
      .find({ accountId, revokedAt: null }, { projection: { _id: 1 } })
      .sort({ issuedAt: 1, _id: 1 })
      .toArray();
    const revoked = await ctx.marks.getMany(docs.map((doc) => revokedMark(doc._id)));
    const [gone, active] = partition(docs.map((doc) => doc._id), (link) => revoked.has(revokedMark(link)));
    await Promise.all(gone.map((link) => tokens.updateOne({ _id: link, revokedAt: null }, { $set: { revokedAt: revoked.get(revokedMark(link)) } })));
    return active;
  };

  return {
    // Without transactions the count cannot come before the insert: the token is inserted, then
    // the account's active tokens counted, its own included, and past `maxActive` it is withdrawn
    // (deleted: its secret was never handed out) and refused. Of concurrent creations each counts
    // every one inserted before its count, so the last to count sees every one answered before
    // it: no more than `maxActive` are kept. A race can refuse a creation for which there was
    // room (the others were inserted but not yet withdrawn); one that had fewer than `maxActive`
    // tokens ahead of it (issuedAt, then link) tries again, up to CREATE_TRIES times.
    create: (token: NewApiToken, maxActive: number) =>
      ctx.run(ID, async () => {
        const doc = toDoc(token, ID);
        for (let attempt = 1; ; attempt++) {
          await insertNamingDuplicate(tokens, doc, ID, "hash");
          const active = await activeLinks(token.accountId);
          if (active.length <= maxActive) return fromDoc<ApiTokenRecord>(doc, ID);
          await tokens.deleteOne({ _id: doc._id });
          // Not among them: revoked already (its link was listed meanwhile); never stored again.
          const ahead = active.indexOf(doc._id);
          if (ahead < 0 || ahead >= maxActive || attempt === CREATE_TRIES) return null;
          await new Promise((resolve) => setTimeout(resolve, Math.random() * CREATE_BACKOFF_MS * attempt));
        }
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
        // Only for counting (see activeLinks, which writes it again when it is missing): the
        // mark has revoked the token, whatever becomes of this write.
        await tokens.updateOne({ _id: link }, { $set: { revokedAt: at } }).catch(() => undefined);
        return { ...token, revokedAt: new Date(at.getTime()) };
      }),
    touchLastUsed: (link, at, minIntervalMs = 0) => ctx.run(ID, () => lastUsed.touch(link, at, minIntervalMs)),
  };
}
