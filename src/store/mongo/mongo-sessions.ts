import type { NewRefreshToken, NewSession, SessionRecord, SessionStore, UserStore } from "../ports.js";
import { pastCap } from "../mongo-caps.js";
import { deleteBatch } from "./mongo-batches.js";
import { fromDoc, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";
import { REFRESH_TOKENS } from "./mongo-refresh-tokens.js";
import { standingOf } from "./mongo-users.js";

export const SESSIONS = "sessions";
const ID = "id";

// The session document is written at creation; afterwards only `accessJti` changes, and only by
// a caller of the move that won the mark "session-jti:<id>:<expectedJti>" — jtis are unique, so
// each jti can be moved on from exactly once and the writes to the document happen one after
// another. The mark carries the new jti: a caller of that same move (a retry of the same refresh,
// whose child jti is the same) makes the write too, so one that stopped between the mark and
// its write (a dropped call, a crash) is finished by the retry instead of leaving the session
// stuck on a jti nothing can move on. Ending is the mark "session-ended:<id>".
const endedMark = (id: string) => `session-ended:${id}`;
const jtiMark = (id: string, jti: string) => `session-jti:${id}:${jti}`;

/** `users`: the store's users, which findWithUser reads beside the session. */
export function mongoSessions(ctx: MongoContext, users: Pick<UserStore, "findById">): SessionStore {
  const sessions = ctx.db.collection<StoredDoc>(SESSIONS);
  const refreshTokens = ctx.db.collection<StoredDoc>(REFRESH_TOKENS);

  const load = async (id: string): Promise<SessionRecord | null> => {
    const [doc, endedAt] = await Promise.all([sessions.findOne({ _id: id }), ctx.marks.get(endedMark(id))]);
    if (!doc) return null;
    const session = fromDoc<SessionRecord>(doc, ID);
    if (endedAt) session.endedAt = endedAt;
    return session;
  };

  const end = async (session: { id: string; expiresAt: Date }, at: Date) =>
    ctx.marks.claim(endedMark(session.id), at, session.expiresAt);

  // The user's unexpired sessions past the cap (ended or not), once the new one is stored: their
  // refresh tokens deleted first, then the sessions (a failure between the two leaves sessions
  // no refresh can renew, which the next creation deletes). Answers those that had not ended.
  const deletePastCap = async (session: NewSession, cap: number): Promise<string[]> => {
    const docs = await pastCap(sessions, { userId: session.userId, expiresAt: { $gt: session.createdAt } }, session.id, cap, "createdAt");
    if (docs.length === 0) return [];
    const ids = docs.map((doc) => doc._id);
    const endedMarks = await ctx.marks.getMany(ids.map(endedMark));
    await refreshTokens.deleteMany({ sessionId: { $in: ids } });
    // One delete each: of two creations deleting the same session, one is told it did.
    const deleted = await Promise.all(ids.map(async (id) => (await sessions.deleteOne({ _id: id })).deletedCount === 1));
    return ids.filter((id, i) => deleted[i] && !endedMarks.has(endedMark(id)));
  };

  return {
    // Two inserts, the session first, each acknowledged (the connection's write concern), so
    // nothing is left to wait for. No transaction (FerretDB 1.x has none, and a standalone
    // MongoDB neither): when the second fails, the call fails with its error and the session's
    // document stays, without a refresh token. No token of it went out, so nothing can use it;
    // housekeeping deletes it at its expiry. A clash is named by the key of the collection it is
    // in ("id" for the session, "hash" for the refresh token).
    createThenSync: async (session: NewSession, refreshToken: NewRefreshToken, cap?: number) => {
      const record = await ctx.run(ID, async () => {
        const doc = toDoc(session, ID);
        await sessions.insertOne({ ...doc });
        return fromDoc<SessionRecord>(doc, ID);
      });
      await ctx.run("hash", () => refreshTokens.insertOne({ ...toDoc(refreshToken, "hash") }));
      const ended = cap === undefined ? [] : await ctx.run(ID, () => deletePastCap(session, cap));
      return { record, durable: () => Promise.resolve(), ended };
    },
    findById: (id) => ctx.run(ID, () => load(id)),
    findWithUser: (id, userId) =>
      ctx.run(ID, async () => {
        const [session, user] = await Promise.all([load(id), users.findById(userId)]);
        if (!session) return null;
        return { session, user: standingOf(user) };
      }),
    setAccessJti: (id, expectedJti, newJti) =>
      ctx.run(ID, async () => {
        const session = await load(id);
        if (!session || session.endedAt || session.accessJti !== expectedJti) return false;
        const mark = jtiMark(id, expectedJti);
        if (!(await ctx.marks.claim(mark, new Date(), session.expiresAt, newJti)) && (await ctx.marks.read(mark))?.data !== newJti) return false;
        await sessions.updateOne({ _id: id, accessJti: expectedJti }, { $set: { accessJti: newJti } });
        return true;
      }),
    // Each write acknowledged (the connection's write concern): nothing is left to wait for.
    synced: () => Promise.resolve(),
    // Acknowledged (the connection's write concern): nothing is left to wait for.
    endThenSync: (id, at) =>
      ctx.run(ID, async () => {
        const session = await load(id);
        return { ended: session ? await end(session, at) : false, durable: () => Promise.resolve() };
      }),
    endAllForUser: (userId, at, createdBefore) =>
      ctx.run(ID, async () => {
        const docs = await sessions.find(createdBefore === undefined ? { userId } : { userId, createdAt: { $lt: createdBefore } }).toArray();
        const results = await Promise.all(docs.map((doc) => end(fromDoc<SessionRecord>(doc, ID), at)));
        return results.filter(Boolean).length;
      }),
    // The session's marks carry its expiresAt: housekeeping drops them with the expired refresh
    // tokens' (Marks.deleteExpired).
    deleteExpired: (before, limit) =>
      ctx.run(ID, async () => (await deleteBatch(sessions, { expiresAt: { $lt: before } }, limit)).deleted),
  };
}
