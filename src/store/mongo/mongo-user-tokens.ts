import { CAP_BATCH, CLOCK_STEP_MS, userTokenSources, type Capped, type NewUserToken, type UserStore, type UserTokenRecord, type UserTokenStore } from "../ports.js";
import { pastCap } from "../mongo-caps.js";
import { deleteBatch } from "./mongo-batches.js";
import { updateByIds } from "./mongo-by-id.js";
import { fromDoc, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";
import { insertNamingDuplicate } from "./mongo-inserts.js";
import { LastUsed } from "./mongo-last-used.js";
import { standingOf } from "./mongo-users.js";

export const USER_TOKENS = "user_tokens";
export const USER_TOKEN_USAGE = "user_token_usage";
/** The index by which the cap reads the user's enabled tokens, the logged-out ones left out (mongo-indexes.ts). */
export const USER_TOKENS_CAP_INDEX = "userId_1_disabledAt_1_createdAt_-1__id_-1";
const ID = "id";

// Disabling is the mark "ut-disabled:<id>" (so version is 0, or 1 once disabled: the only change a
// user token has); last use lives in user_token_usage. The token document's one in-place write is
// `disabledAt`, set by the winner of that mark after it won: housekeeping finds by it the tokens
// disabled more than the retention ago (the disabledAt_1 index), and deletes each, then its
// mark. The mark decides every answer, but a document that has `disabledAt` is disabled too: a
// read of the token on another instance that read the document before that delete and the mark
// after it found no mark, and took a token logged out a retention ago for enabled. A crash or a
// failed write between the two leaves a disabled token without it, kept (as one disabled before
// it was recorded) until its expiry, if any, is past the retention.
const disabledMark = (id: string) => `ut-disabled:${id}`;

/** `users`: the store's users, which findByHashWithUser reads beside the token's mark and last use. */
export function mongoUserTokens(ctx: MongoContext, users: Pick<UserStore, "findById">): UserTokenStore {
  const tokens = ctx.db.collection<StoredDoc>(USER_TOKENS);
  const lastUsed = new LastUsed(ctx.db, USER_TOKEN_USAGE, tokens, ctx.marks, "ut-touch");

  /**
   * The token of `doc`, enabled unless it has a logout mark (`disabledAt`: the mark's time) or its
   * document records a logout (the mark read after housekeeping deleted it: see above).
   */
  const tokenOf = (doc: StoredDoc, disabledAt: Date | null): UserTokenRecord => {
    const { disabledAt: recorded, ...fields } = doc;
    const token = fromDoc<UserTokenRecord>(fields, ID);
    const disabled = disabledAt !== null || (recorded !== undefined && recorded !== null);
    token.enabled = !disabled;
    token.version = disabled ? 1 : 0;
    return token;
  };

  const load = async (doc: StoredDoc | null): Promise<UserTokenRecord | null> => {
    if (!doc) return null;
    const [disabledAt, lastUsedAt] = await Promise.all([ctx.marks.get(disabledMark(doc._id)), lastUsed.get(doc._id)]);
    const token = tokenOf(doc, disabledAt);
    if (lastUsedAt) token.lastUsedAt = lastUsedAt;
    return token;
  };

  const disable = async (doc: StoredDoc, at: Date): Promise<boolean> => {
    if (!(await ctx.marks.claim(disabledMark(doc._id), at, (doc.expiresAt as Date | undefined) ?? undefined))) return false;
    // The logout is made: a failed write of its time must not report it failed (see above).
    await tokens.updateOne({ _id: doc._id }, { $set: { disabledAt: at } }).catch(() => {});
    return true;
  };

  /**
   * The user's tokens that had expired a clock step (CLOCK_STEP_MS: another instance's clock may
   * be behind, and must see one expired before it sees it logged out) before `token`'s creation,
   * never logged out, get `disabledAt` (not reported: their expiry ended them, and answers it
   * first; their retention still runs from it, which came first), newest first, at most
   * CAP_BATCH a creation: else each stays among the live ones of the cap's index for its whole
   * retention, and the cap's reads, which skip it, walked every one. Read by that index. A
   * failed update is left to the next creation, as the cap's own reads go on (nothing answered
   * depends on it).
   */
  const disableExpired = async (token: NewUserToken): Promise<void> => {
    const expiredBy = new Date(token.createdAt.getTime() - CLOCK_STEP_MS);
    const docs = await tokens
      .find({ userId: token.userId, disabledAt: null, expiresAt: { $lte: expiredBy } }, { projection: { _id: 1 } })
      .sort({ createdAt: -1, _id: -1 })
      .hint(USER_TOKENS_CAP_INDEX)
      .limit(CAP_BATCH)
      .toArray();
    if (docs.length === 0) return;
    await updateByIds(tokens, docs.map((doc) => doc._id), { disabledAt: { $exists: false } }, { $set: { disabledAt: token.createdAt } }).catch(() => {});
  };

  /**
   * The user's enabled, unexpired tokens past the cap (by `disabledAt`: a token whose logout has
   * not written it yet counts, and its claim then fails), once `token` is stored: logged out as
   * disable() does, their `disabledAt` then written by one update (of a whole batch, one write
   * rather than one each); answers those this call logged out. One whose claim fails (logged out
   * before `disabledAt` was recorded) gets it too, so that the cap does not count it again.
   */
  const disablePastCap = async (token: NewUserToken, cap: number): Promise<string[]> => {
    await disableExpired(token);
    // Never one a new cookie session descends from: they take places of the cap beside it.
    const sources = userTokenSources(token.sources);
    const live = {
      userId: token.userId,
      disabledAt: null,
      $or: [{ expiresAt: { $exists: false } }, { expiresAt: { $gt: token.createdAt } }],
      ...(sources.length > 0 && { _id: { $nin: sources } }),
    };
    const docs = await pastCap(tokens, live, token.id, Math.max(1, cap - sources.length), "createdAt", USER_TOKENS_CAP_INDEX);
    if (docs.length === 0) return [];
    const at = token.createdAt;
    const won = await Promise.all(docs.map((doc) => ctx.marks.claim(disabledMark(doc._id), at, (doc.expiresAt as Date | undefined) ?? undefined)));
    await updateByIds(tokens, docs.map((doc) => doc._id), { disabledAt: { $exists: false } }, { $set: { disabledAt: at } }).catch(() => {});
    return docs.filter((_, i) => won[i]).map((doc) => doc._id);
  };

  const create = (token: NewUserToken, cap?: number) =>
    ctx.run(ID, async (): Promise<Capped<UserTokenRecord>> => {
      const doc = toDoc(token, ID);
      await insertNamingDuplicate(tokens, doc, ID, "hash");
      const record = { ...fromDoc<UserTokenRecord>(doc, ID), enabled: true, version: 0 };
      return { record, ended: cap === undefined ? [] : await disablePastCap(token, cap) };
    });

  return {
    create,
    // Acknowledged as create() is (the connection's write concern): nothing is left to wait for.
    createThenSync: async (token: NewUserToken, cap?: number) => ({ ...(await create(token, cap)), durable: () => Promise.resolve() }),
    // The token's document names its user, who is then read at the same time as the token's
    // logout mark and last use: a check waits for three reads in turn (the token, the user, the
    // user's password generation and deactivation mark) where reading the token and then its
    // user made it wait for four.
    findByHashWithUser: (hash) =>
      ctx.run(ID, async () => {
        const doc = await tokens.findOne({ hash });
        if (!doc) return null;
        const [token, user] = await Promise.all([load(doc), users.findById(doc.userId as string)]);
        return { token: token!, user: standingOf(user) };
      }),
    // The document and its logout mark, both named by the id, read at once (one round trip, as a
    // session's load); its last use, which no reader of this needs, is not read.
    findById: (id) =>
      ctx.run(ID, async () => {
        const [doc, disabledAt] = await Promise.all([tokens.findOne({ _id: id }), ctx.marks.get(disabledMark(id))]);
        return doc ? tokenOf(doc, disabledAt) : null;
      }),
    touchLastUsed: (id, at, minIntervalMs = 0) => ctx.run(ID, () => lastUsed.touch(id, at, minIntervalMs)),
    disable: (id, at) =>
      ctx.run(ID, async () => {
        const doc = await tokens.findOne({ _id: id });
        return doc ? disable(doc, at) : false;
      }),
    disableAllForUser: (userId, at) =>
      ctx.run(ID, async () => {
        const docs = await tokens.find({ userId }).toArray();
        return (await Promise.all(docs.map((doc) => disable(doc, at)))).filter(Boolean).length;
      }),
    // The token first, then its logout mark and last-use document: the other way round, a failure
    // between the two would leave a logged-out token without its mark, enabled again.
    deleteEndedBefore: (before, limit) =>
      ctx.run(ID, async () => {
        const { ids, deleted } = await deleteBatch(tokens, { $or: [{ expiresAt: { $lt: before } }, { disabledAt: { $lt: before } }] }, limit);
        await Promise.all([ctx.marks.deleteMany(ids.map(disabledMark)), lastUsed.delete(ids)]);
        return deleted;
      }),
  };
}
