import type { NewSession, SessionRecord, SessionStore } from "../ports.js";
import { fromDoc, fromDocOrNull, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";

export const SESSIONS = "sessions";
const ID = "id";

export function mongoSessions(ctx: MongoContext): SessionStore {
  const sessions = ctx.db.collection<StoredDoc>(SESSIONS);
  return {
    create: (session: NewSession) =>
      ctx.run(ID, async () => {
        const doc = toDoc(session, ID);
        await sessions.insertOne({ ...doc });
        return fromDoc<SessionRecord>(doc, ID);
      }),
    findById: (id) => ctx.run(ID, async () => fromDocOrNull<SessionRecord>(await sessions.findOne({ _id: id }), ID)),
    setAccessJti: (id, expectedJti, newJti) =>
      ctx.run(ID, async () => {
        const result = await sessions.updateOne(
          { _id: id, accessJti: expectedJti, endedAt: null },
          { $set: { accessJti: newJti } },
        );
        return result.matchedCount === 1;
      }),
    end: (id, at) =>
      ctx.run(ID, async () => {
        const result = await sessions.updateOne({ _id: id, endedAt: null }, { $set: { endedAt: at } });
        return result.matchedCount === 1;
      }),
    endAllForUser: (userId, at) =>
      ctx.run(ID, async () => {
        const result = await sessions.updateMany({ userId, endedAt: null }, { $set: { endedAt: at } });
        return result.matchedCount;
      }),
  };
}
