import type { NewRefreshToken, RefreshTokenRecord, RefreshTokenStore } from "../ports.js";
import { deleteBatch } from "./mongo-batches.js";
import { deleteByIds } from "./mongo-by-id.js";
import { fromDoc, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";

export const REFRESH_TOKENS = "refresh_tokens";
const ID = "hash";

// The token document is never updated; spending is the mark "refresh-spent:<hash>", which
// carries the sealed child pair.
const spentMark = (hash: string) => `refresh-spent:${hash}`;

/**
 * How long a mark is kept after the expiry it carries: far beyond the clock difference instances
 * may have (README, Clocks: well within 5 s).
 */
export const MARKS_OUTLIVE_MS = 5 * 60_000;

export function mongoRefreshTokens(ctx: MongoContext): RefreshTokenStore {
  const tokens = ctx.db.collection<StoredDoc>(REFRESH_TOKENS);

  const load = async (hash: string): Promise<RefreshTokenRecord | null> => {
    const [doc, spent] = await Promise.all([tokens.findOne({ _id: hash }), ctx.marks.read(spentMark(hash))]);
    if (!doc) return null;
    const token = fromDoc<RefreshTokenRecord>(doc, ID);
    if (spent) {
      token.spentAt = spent.at;
      if (spent.data !== undefined) token.child = spent.data;
    }
    return token;
  };

  const deleteTokens = async (docs: StoredDoc[]) => {
    const hashes = docs.map((doc) => doc._id);
    if (hashes.length === 0) return 0;
    const deleted = await deleteByIds(tokens, hashes);
    await ctx.marks.deleteMany(hashes.map(spentMark));
    return deleted;
  };

  return {
    // Acknowledged (the connection's write concern): nothing is left to wait for.
    insertThenSync: (token: NewRefreshToken) =>
      ctx.run(ID, async () => {
        const doc = toDoc(token, ID);
        await tokens.insertOne({ ...doc });
        return { record: fromDoc<RefreshTokenRecord>(doc, ID), durable: () => Promise.resolve() };
      }),
    findByHash: (hash) => ctx.run(ID, () => load(hash)),
    // Acknowledged, as insertThenSync: nothing is left to wait for.
    spendThenSync: (hash, at, child) =>
      ctx.run(ID, async () => {
        const durable = () => Promise.resolve();
        const doc = await tokens.findOne({ _id: hash });
        if (!doc) return { before: null, durable };
        const token = fromDoc<RefreshTokenRecord>(doc, ID);
        if (await ctx.marks.claim(spentMark(hash), at, token.expiresAt, child)) return { before: token, durable };
        // Lost: the mark, once set, never changes, so every loser learns the same spend time
        // and the winner's child pair.
        const spent = await ctx.marks.read(spentMark(hash));
        if (spent) {
          token.spentAt = spent.at;
          if (spent.data !== undefined) token.child = spent.data;
        }
        return { before: token, durable };
      }),
    deleteBySessionThenSync: (sessionId) =>
      ctx.run(ID, async () => ({
        deleted: await deleteTokens(await tokens.find({ sessionId }, { projection: { _id: 1 } }).toArray()),
        durable: () => Promise.resolve(),
      })),
    // Expired marks of every kind (each carries the expiry of what it describes) go here too,
    // once no expired token is left, in what is left of the batch, MARKS_OUTLIVE_MS after that
    // expiry: an instance whose clock runs behind the one running housekeeping still takes the
    // thing for unexpired until its own clock passes the expiry, and must still see its mark
    // (a logged-out user token, kept TESSERA_USER_TOKEN_RETENTION_DAYS, was accepted there again).
    deleteExpired: (before, limit) =>
      ctx.run(ID, async () => {
        const { ids, deleted } = await deleteBatch(tokens, { expiresAt: { $lt: before } }, limit);
        await ctx.marks.deleteMany(ids.map(spentMark));
        if (ids.length >= limit) return deleted;
        return deleted + (await ctx.marks.deleteExpired(new Date(before.getTime() - MARKS_OUTLIVE_MS), limit - ids.length));
      }),
  };
}
