import type { Filter } from "mongodb";
import type { AuditEventRecord, AuditEventStore } from "../ports.js";
import { deleteBatch } from "./mongo-batches.js";
import { fromDoc, toDoc, waitedForMs, type MongoContext, type StoredDoc } from "./mongo-context.js";

export const AUDIT_EVENTS = "audit_events";
const ID = "id";

// Events are inserted once and never updated: nothing here races (the id is a random UUID).
export function mongoAuditEvents(ctx: MongoContext): AuditEventStore {
  const events = ctx.db.collection<StoredDoc>(AUDIT_EVENTS);
  return {
    append: (event) =>
      ctx.run(ID, async () => {
        await events.insertOne(toDoc(event, ID));
      }),
    // An append resolves once the database acknowledged it (the connection's write concern):
    // syncedByNextWrite changes nothing, and nothing is left to wait for.
    synced: () => Promise.resolve(),
    list: (q) =>
      ctx.run(ID, async () => {
        const and: Array<Filter<StoredDoc>> = [];
        if (q.userId !== undefined) and.push({ userId: q.userId });
        if (q.type !== undefined) and.push({ type: q.type });
        if (q.since !== undefined) and.push({ time: { $gte: q.since } });
        if (q.until !== undefined) and.push({ time: { $lt: q.until } });
        if (q.after !== undefined) {
          and.push({ $or: [{ time: { $lt: q.after.time } }, { time: q.after.time, _id: { $lt: q.after.id } }] });
        }
        const filter: Filter<StoredDoc> = and.length === 0 ? {} : and.length === 1 ? and[0]! : { $and: and };
        // The only read here whose cost the data decides (a type filter reads the time index
        // until it has found a page; FerretDB reads and sorts the whole collection): MongoDB
        // stops it when its caller stops waiting.
        const cursor = events.find(filter).sort({ time: -1, _id: -1 }).limit(q.limit);
        const waitMs = waitedForMs();
        const docs = await (waitMs === undefined ? cursor : cursor.maxTimeMS(waitMs)).toArray();
        return docs.map((doc) => fromDoc<AuditEventRecord>(doc, ID));
      }),
    deleteOlderThan: (before, limit) =>
      ctx.run(ID, async () => (await deleteBatch(events, { time: { $lt: before } }, limit)).deleted),
  };
}
