import { endedFirst, type NewRefreshToken, type NewSession, type SessionRecord, type SessionStore, type UserStore } from "../ports.js";
import type { Filter } from "mongodb";
import { pastCap } from "../mongo-caps.js";
import { deleteBatch } from "./mongo-batches.js";
import { updateByIds } from "./mongo-by-id.js";
import { fromDoc, outdatedFilter, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";
import { REFRESH_TOKENS } from "./mongo-refresh-tokens.js";
import { standingOf } from "./mongo-users.js";

export const SESSIONS = "sessions";
/** The indexes by which the session cap reads the user's sessions, and its ended ones (mongo-indexes.ts). */
export const CAP_INDEX = "userId_1_createdAt_-1__id_-1";
export const ENDED_INDEX = "userId_1_endedAt_1__id_1";
const ID = "id";

// The session document is written at creation; afterwards only `accessJti` changes, and only by
// a caller of the move that won the mark "session-jti:<id>:<expectedJti>" — jtis are unique, so
// each jti can be moved on from exactly once and the writes to the document happen one after
// another. The mark carries the new jti: a caller of that same move (a retry of the same refresh,
// whose child jti is the same) makes the write too, so one that stopped between the mark and
// its write (a dropped call, a crash) is finished by the retry instead of leaving the session
// stuck on a jti nothing can move on. Ending is the mark "session-ended:<id>", which alone decides
// that a session has ended; its time is then copied into the document's `endedAt`, which only the
// cap reads (to delete the user's ended sessions before any live one). A session whose copy is
// missing (ended by a version before it, or the write lost: FerretDB writes an updated document
// back whole) is found by its mark when the cap would otherwise delete a live one
// (endedWithoutCopy), and its copy written again; so does a later end of it (a repeated logout).
const endedMark = (id: string) => `session-ended:${id}`;
const jtiMark = (id: string, jti: string) => `session-jti:${id}:${jti}`;

/** `users`: the store's users, which findWithUser reads beside the session. */
export function mongoSessions(ctx: MongoContext, users: Pick<UserStore, "findById">): SessionStore {
  const sessions = ctx.db.collection<StoredDoc>(SESSIONS);
  const refreshTokens = ctx.db.collection<StoredDoc>(REFRESH_TOKENS);

  const load = async (id: string): Promise<SessionRecord | null> => {
    const [doc, endedAt] = await Promise.all([sessions.findOne({ _id: id }), ctx.marks.get(endedMark(id))]);
    if (!doc) return null;
    // The mark decides: the document's endedAt is the cap's copy only (see above).
    const { endedAt: _capOnly, ...fields } = doc;
    const session = fromDoc<SessionRecord>(fields, ID);
    if (endedAt) session.endedAt = endedAt;
    return session;
  };

  const claimEnd = (session: { id: string; expiresAt: Date }, at: Date) => ctx.marks.claim(endedMark(session.id), at, session.expiresAt);
  /** Writes `endedAt` into those of the sessions `ids` (ended at it) that lack it; never fails the end. */
  const copyEnd = (ids: string[], endedAt: Date) =>
    ids.length === 0 ? Promise.resolve() : updateByIds(sessions, ids, { endedAt: { $exists: false } }, { $set: { endedAt } }).then(() => undefined, () => undefined);

  /**
   * Claims the end; once it is made (by this call, or before it: `session.endedAt`, the mark's
   * time), the document's `endedAt` copy is written where missing. Its failure does not fail the
   * end (the mark decides it): the cap then finds the end by the mark (endedWithoutCopy).
   */
  const end = async (session: { id: string; expiresAt: Date; endedAt?: Date }, at: Date): Promise<boolean> => {
    const won = await claimEnd(session, at);
    const endedAt = won ? at : session.endedAt;
    if (endedAt) await copyEnd([session.id], endedAt);
    return won;
  };

  /**
   * The user's unexpired sessions other than `keep` that have ended though their document has no
   * `endedAt` copy (see above), found by their marks, their copies written again: so that none
   * keeps its place while a live one loses its own. Read only when a live one would go (the user
   * holds about the cap of sessions, none past it ended as far as the copies say): the user's
   * sessions without the copy, by userId_1_endedAt_1__id_1, and their marks.
   */
  const endedWithoutCopy = async (unexpired: Filter<StoredDoc>, keep: string): Promise<string[]> => {
    const docs = await sessions
      .find({ $and: [unexpired, { endedAt: null, _id: { $ne: keep } }] }, { projection: { _id: 1 } })
      .hint(ENDED_INDEX)
      .toArray();
    const marks = await ctx.marks.getMany(docs.map((doc) => endedMark(doc._id)));
    const found = docs.map((doc) => doc._id).filter((id) => marks.has(endedMark(id)));
    await Promise.all(found.map((id) => copyEnd([id], marks.get(endedMark(id))!)));
    return found;
  };

  // The user's unexpired sessions past the cap count, ended or not (pastCap, by
  // userId_1_createdAt_-1__id_-1), once the new one is stored; as many are deleted, the ended
  // ones first (by their `endedAt` copy, read by userId_1_endedAt_1__id_1: a read only when the
  // cap is passed), then the oldest live ones: their refresh tokens first, then the sessions (a
  // failure between the two leaves sessions no refresh can renew, which the next creation
  // deletes). Each end is claimed first (its `session-ended` mark); answers those whose claim this
  // call won.
  const deletePastCap = async (session: NewSession, cap: number): Promise<string[]> => {
    const unexpired: Filter<StoredDoc> = { userId: session.userId, expiresAt: { $gt: session.createdAt } };
    const docs = await pastCap(sessions, unexpired, session.id, cap, "createdAt", CAP_INDEX);
    if (docs.length === 0) return [];
    const ended = await sessions
      .find({ ...unexpired, endedAt: { $ne: null }, _id: { $ne: session.id } }, { projection: { _id: 1 } })
      .sort({ endedAt: 1, _id: 1 })
      .hint(ENDED_INDEX)
      .limit(docs.length)
      .toArray();
    // A live one would go: first the ended ones whose copy is missing are found by their marks.
    const uncopied = ended.length < docs.length ? await endedWithoutCopy(unexpired, session.id) : [];
    const ids = endedFirst(
      docs.map((doc) => doc._id),
      [...ended.map((doc) => doc._id), ...uncopied],
    );
    // Each end claimed before its delete, as a logout claims it: of a logout and this cap (or two
    // creations) ending the same session, the one whose claim wins ended it and alone reports it.
    // (Read marks, then a delete: a logout claiming between the two was told it ended the session,
    // and the cap reported it too.) An ended one's claim fails: it is deleted, not reported.
    const expiry = new Map(docs.map((doc) => [doc._id, doc.expiresAt as Date]));
    const won = await Promise.all(ids.map((id) => claimEnd({ id, expiresAt: expiry.get(id) ?? session.expiresAt }, session.createdAt)));
    // The ends are made: a failed delete leaves ended sessions, which the next creation deletes
    // first (found by their marks, endedWithoutCopy), and fails no end this call reports.
    await refreshTokens
      .deleteMany({ sessionId: { $in: ids } })
      .then(() => Promise.all(ids.map((id) => sessions.deleteOne({ _id: id }))))
      .catch(() => undefined);
    return ids.filter((_, i) => won[i]);
  };

  return {
    // Two inserts, the session first, each acknowledged (the connection's write concern), so
    // nothing is left to wait for. No transaction (FerretDB 1.x has none, and a standalone
    // MongoDB neither): when the second fails, the call fails with its error and the session's
    // document stays, without a refresh token. No token of it went out, so nothing can use it;
    // the login ends it (core/errors.ts storedOrWithdrawn), so that it takes no place under the
    // user's cap, and housekeeping deletes it at its expiry. A clash is named by the key of the collection it is
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
    endAllForUser: (userId, at, outdatedBy) =>
      ctx.run(ID, async () => {
        const docs = await sessions.find(outdatedBy === undefined ? { userId } : { userId, ...outdatedFilter(outdatedBy, "createdAt") }).toArray();
        const won = await Promise.all(docs.map((doc) => claimEnd({ id: doc._id, expiresAt: doc.expiresAt as Date }, at)));
        // The copies of those it ended by one update (one write rather than one each).
        const ended = docs.filter((_, i) => won[i]).map((doc) => doc._id);
        await copyEnd(ended, at);
        return ended.length;
      }),
    // The session's marks carry its expiresAt: housekeeping drops them with the expired refresh
    // tokens' (Marks.deleteExpired).
    deleteExpired: (before, limit) =>
      ctx.run(ID, async () => (await deleteBatch(sessions, { expiresAt: { $lt: before } }, limit)).deleted),
  };
}
