import type { Filter } from "mongodb";
import { PENDING_ABANDONED_AFTER_MS, StoreUnavailableError, type ApiTokenRecord, type ApiTokenStore, type NewApiToken } from "../ports.js";
import { deleteBatch } from "./mongo-batches.js";
import { abandoned, fromDoc, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";
import { insertNamingDuplicate } from "./mongo-inserts.js";
import { LastUsed } from "./mongo-last-used.js";

export const API_TOKENS = "api_tokens";
export const API_TOKEN_USAGE = "api_token_usage";
const ID = "link";

// The token document changes only through its creation's `pending` flag (below), updateDescription
// (last writer wins between two renames) and its revocation; revocation is the mark
// "api-revoked:<link>", copied into the document's `revokedAt` once claimed, so that an account's
// active tokens are found by the index (`accountId_1_revokedAt_1_issuedAt_1__id_1`) without its
// revoked ones; last use lives in api_token_usage. `pending` (true from the insert until the
// creation has counted and kept the token) is the store's own: no record carries it, and a
// pending token is neither listed nor found by its hash or link (its secret and link have not
// been handed out, and its creation may yet withdraw it). One pending past PENDING_ABANDONED_AFTER_MS is abandoned:
// no creation counts it, and housekeeping deletes it (deleteAbandoned). A revoked token is deleted
// TESSERA_API_TOKEN_RETENTION_DAYS after its revocation (deleteRevokedBefore, by `revokedAt`).
const revokedMark = (link: string) => `api-revoked:${link}`;

/** The index by which housekeeping finds abandoned pending tokens (sparse: only pending ones have the field). */
export const API_TOKENS_PENDING_INDEX = "pending_1_issuedAt_1";

/**
 * The index by which housekeeping finds tokens revoked more than the retention ago (sparse: only a
 * revoked token's document has `revokedAt`, the copy of its mark's time).
 */
export const API_TOKENS_REVOKED_INDEX = "revokedAt_1";

/** The index by which a creation counts the account's active tokens ranked before and after its own (mongo-indexes.ts). */
export const API_TOKENS_ACTIVE_INDEX = "accountId_1_revokedAt_1_issuedAt_1__id_1";

/** The items for which `test` holds, and the others. */
function partition<T>(items: readonly T[], test: (item: T) => boolean): [T[], T[]] {
  const yes: T[] = [];
  const no: T[] = [];
  for (const item of items) (test(item) ? yes : no).push(item);
  return [yes, no];
}

/** Tokens ranked after `doc` by (issuedAt, then _id), and before it. */
const after = (doc: StoredDoc): Filter<StoredDoc> => ({ $or: [{ issuedAt: { $gt: doc.issuedAt } }, { issuedAt: doc.issuedAt, _id: { $gt: doc._id } }] });
const before = (doc: StoredDoc): Filter<StoredDoc> => ({ $or: [{ issuedAt: { $lt: doc.issuedAt } }, { issuedAt: doc.issuedAt, _id: { $lt: doc._id } }] });
/** Tokens whose creation has kept them: no longer `pending`. */
const keptOnly: Filter<StoredDoc> = { pending: { $exists: false } };
/** Tokens kept, or pending but not abandoned as seen from `now` (PENDING_ABANDONED_AFTER_MS). */
const notAbandoned = (now: Date): Filter<StoredDoc> => ({
  $or: [keptOnly, { issuedAt: { $gte: new Date(now.getTime() - PENDING_ABANDONED_AFTER_MS) } }],
});
/**
 * A token found by its hash or link: kept. A pending one's secret and link have not been handed
 * out, so it is answered as unknown, and a rename or revocation leaves it as its creation made it.
 */
const kept = (doc: StoredDoc | null): StoredDoc | null => (doc?.pending === undefined ? doc : null);

/** The record of a token's document: without the creation's `pending` flag. */
function recordOf(doc: StoredDoc): ApiTokenRecord {
  const { pending: _creationOnly, ...fields } = doc;
  return fromDoc<ApiTokenRecord>(fields, ID);
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
    const token = recordOf(doc);
    if (lastUsedAt) token.lastUsedAt = lastUsedAt;
    if (revokedAt) token.revokedAt = revokedAt;
    return token;
  };

  /**
   * How many of `accountId`'s active tokens match `ranked`, counted up to `limit`: at most `limit`
   * of them are read, oldest first (issuedAt, then link), by the index, which leaves the revoked
   * ones out by the document's `revokedAt`. The mark decides those whose copy is missing (revoked
   * by a version before it, or its write lost): they are not counted, their copies are written
   * again, and as many more are read after them.
   */
  const countActive = async (accountId: string, ranked: Filter<StoredDoc>, limit: number): Promise<number> => {
    let found = 0;
    let last: StoredDoc | undefined;
    while (found < limit) {
      const wanted = limit - found;
      const page = await counted
        .find({ $and: [{ accountId, revokedAt: null }, ranked, ...(last ? [after(last)] : [])] }, { projection: { _id: 1, issuedAt: 1 } })
        .sort({ issuedAt: 1, _id: 1 })
        .hint(API_TOKENS_ACTIVE_INDEX)
        .limit(wanted)
        .toArray();
      const revoked = await ctx.marks.getMany(page.map((d) => revokedMark(d._id)));
      const [gone, active] = partition(page, (d) => revoked.has(revokedMark(d._id)));
      await Promise.all(gone.map((d) => tokens.updateOne({ _id: d._id, revokedAt: null }, { $set: { revokedAt: revoked.get(revokedMark(d._id)) } })));
      found += active.length;
      if (gone.length === 0 || page.length < wanted) break;
      last = page.at(-1);
    }
    return found;
  };

  /**
   * One housekeeping batch: at most `limit` tokens matching `filter`, then their revocation marks
   * and last-use documents (after the tokens: a failure between them leaves no revoked token
   * without its mark, which would make it active again). Returns how many tokens went.
   */
  const deleteWithTheirs = (filter: Filter<StoredDoc>, limit: number): Promise<number> =>
    ctx.run(ID, async () => {
      const { ids, deleted } = await deleteBatch(tokens, filter, limit);
      if (ids.length > 0) await Promise.all([ctx.marks.deleteMany(ids.map(revokedMark)), lastUsed.delete(ids)]);
      return deleted;
    });

  return {
    // Without transactions the count cannot come before the insert: the token is inserted
    // (`pending`), then counted are the account's active tokens that rank before it by (issuedAt,
    // then link), and, while fewer than `maxActive` do, those ranked after it that were kept
    // already (no longer `pending`: their creations have answered, or are about to). When these
    // fill `maxActive` places it is withdrawn (deleted: its secret was never handed out) and
    // refused; else it is kept, its `pending` flag cleared before the answer. Creations racing for
    // the last places agree on the order: the earliest are kept and the later withdraw
    // themselves, and one issued earlier (another instance's clock behind) but stored after a
    // later one was kept is refused. What a race can leave: src/store/README.md ("API tokens per
    // account"). A pending token ranked before it whose creation died (abandoned: pending for
    // PENDING_ABANDONED_AFTER_MS before this one's issue) does not count; the index walks it
    // (a residual filter) until housekeeping deletes it. When the clearing of `pending` fails,
    // the token is withdrawn as well as can be: the clear may have landed despite the error, and
    // its secret is not handed out; if the withdrawal fails too, it stays pending, abandoned.
    create: (token: NewApiToken, maxActive: number) =>
      ctx.run(ID, async () => {
        const record = toDoc(token, ID);
        const doc: StoredDoc = { ...record, pending: true };
        await insertNamingDuplicate(tokens, doc, ID, "hash");
        const withdraw = () => tokens.deleteOne({ _id: doc._id });
        const ahead = await countActive(token.accountId, { $and: [before(doc), notAbandoned(token.issuedAt)] }, maxActive);
        const keptAfter = ahead < maxActive ? await countActive(token.accountId, { $and: [after(doc), keptOnly] }, maxActive - ahead) : 0;
        if (ahead + keptAfter >= maxActive) {
          await withdraw();
          return null;
        }
        // Given up meanwhile (its caller answered UNAVAILABLE or DEADLINE_EXCEEDED): the secret
        // will never be handed out, so the token is withdrawn rather than kept. Asked again once
        // the clear has landed: the bound may pass during that write too.
        const givenUp = async () => {
          await withdraw();
          throw new StoreUnavailableError("the API token's creation was given up before it was kept");
        };
        if (abandoned()) return givenUp();
        let cleared;
        try {
          cleared = await tokens.updateOne({ _id: doc._id }, { $unset: { pending: "" } });
        } catch (error) {
          await withdraw().catch(() => undefined);
          throw error;
        }
        // Deleted as abandoned meanwhile (by an instance whose clock is ahead by more than
        // PENDING_ABANDONED_AFTER_MS): there is no token to answer.
        if (cleared.matchedCount === 0) throw new StoreUnavailableError("the API token was deleted before its creation kept it");
        if (abandoned()) return givenUp();
        return recordOf(record);
      }),
    findByHash: (hash) => ctx.run(ID, async () => load(kept(await tokens.findOne({ hash })))),
    updateDescription: (link, description) =>
      ctx.run(ID, async () => {
        const token = await load(kept(await tokens.findOne({ _id: link })));
        if (!token || token.revokedAt) return null;
        const replaced = await tokens.findOneAndUpdate({ _id: link }, { $set: { description } }, { returnDocument: "before" });
        // A revocation may have claimed its mark since the read above. Found now, it may have
        // come first, where SQLite's one conditional UPDATE refuses the rename: refused, and the
        // description this write replaced put back (unless a later rename has replaced this
        // one), not the one read above: a rename made and answered between the two, before the
        // revocation, stands. Not found, the rename came first. (FerretDB writes a document back
        // whole: a revocation's copy of its time this write drops is written again by the
        // listing that misses it, countActive.)
        if (await ctx.marks.get(revokedMark(link))) {
          await tokens.updateOne({ _id: link, description }, { $set: { description: replaced?.description ?? token.description } });
          return null;
        }
        return { ...token, description };
      }),
    list: (accountId, state) =>
      ctx.run(ID, async () => {
        const docs = await tokens.find({ $and: [{ accountId }, keptOnly] }).sort({ issuedAt: -1, _id: -1 }).toArray();
        const links = docs.map((doc) => doc._id);
        const [revoked, used] = await Promise.all([ctx.marks.getMany(links.map(revokedMark)), lastUsed.getMany(links)]);
        const records = docs.map((doc) => {
          const token = recordOf(doc);
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
        const token = await load(kept(await tokens.findOne({ _id: link, accountId })));
        if (!token || token.revokedAt) return null;
        if (!(await ctx.marks.claim(revokedMark(link), at))) return null;
        // Only for counting (see countActive, which writes it again when it is missing) and for
        // housekeeping's retention (deleteRevokedBefore): the mark has revoked the token,
        // whatever becomes of this write.
        await tokens.updateOne({ _id: link }, { $set: { revokedAt: at } }).catch(() => undefined);
        return { ...token, revokedAt: new Date(at.getTime()) };
      }),
    touchLastUsed: (link, at, minIntervalMs = 0) => ctx.run(ID, () => lastUsed.touch(link, at, minIntervalMs)),
    // A pending token was never handed out, so nothing used it; a version that listed pending
    // tokens may have let one be revoked: its mark goes too.
    deleteAbandoned: (issuedBefore, limit) => deleteWithTheirs({ pending: true, issuedAt: { $lt: issuedBefore } }, limit),
    // Found by the copy of the revocation time (API_TOKENS_REVOKED_INDEX), written only once the
    // mark was claimed: a document that has it is revoked. One whose copy is missing is kept.
    deleteRevokedBefore: (before, limit) => deleteWithTheirs({ revokedAt: { $lt: before } }, limit),
  };
}
