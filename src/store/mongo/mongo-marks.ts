import type { Collection, Db } from "mongodb";
import { deleteBatch } from "./mongo-batches.js";
import { deleteByIds, findByIds } from "./mongo-by-id.js";
import type { StoredDoc } from "./mongo-context.js";
import { insertUnlessTaken } from "./mongo-inserts.js";

export const MARKS = "marks";

/**
 * Insert-once marks: the Mongo adapter's only compare-and-set.
 *
 * FerretDB 1.x (on PostgreSQL) applies updates as read, modify in memory, write back the whole
 * document, with no lock: concurrent updates to one document lose writes, and a filtered
 * findOneAndUpdate/updateOne can succeed for several callers at once (measured: 20 concurrent
 * $inc -> 11; 20 concurrent conditional findOneAndUpdate -> 4 winners). Inserts into a unique
 * index and deletes ARE atomic there (and on MongoDB). So every state change that must happen
 * once (spent, consumed, revoked, ended, disabled, deactivated, a session's jti moved on, a
 * last-use write in this interval) is an insert of `{_id: "<kind>:<key>", at}`: the one insert that
 * succeeds wins; everybody else gets a duplicate-key error and loses.
 */
export class Marks {
  private readonly marks: Collection<StoredDoc>;

  constructor(db: Db) {
    // Marks are read on the primary at read concern "local", whatever the connection string
    // asks for: a caller that lost an insert reads the winner's mark right away, and the
    // primary holds it as soon as the insert has won. A majority read (or a secondary) could
    // miss a mark not yet replicated to a majority, and the loser would act as a second winner.
    this.marks = db.collection<StoredDoc>(MARKS, { readConcern: { level: "local" }, readPreference: "primary" });
  }

  /**
   * True when this call set the mark; false when it was already set. `expiresAt` lets
   * housekeeping drop it; `data` is kept with it (written once, with the mark).
   */
  async claim(id: string, at: Date, expiresAt?: Date, data?: string): Promise<boolean> {
    return insertUnlessTaken(this.marks, {
      _id: id,
      at,
      ...(expiresAt !== undefined && { expiresAt }),
      ...(data !== undefined && { data }),
    });
  }

  /** When the mark was set and the data set with it, or null. */
  async read(id: string): Promise<{ at: Date; data?: string } | null> {
    const doc = await this.marks.findOne({ _id: id });
    if (!doc) return null;
    return typeof doc.data === "string" ? { at: doc.at as Date, data: doc.data } : { at: doc.at as Date };
  }

  /** When the mark was set, or null. */
  async get(id: string): Promise<Date | null> {
    const doc = await this.marks.findOne({ _id: id });
    return doc ? (doc.at as Date) : null;
  }

  /** The ids of the marks whose id starts with `prefix`. */
  async idsStartingWith(prefix: string): Promise<string[]> {
    const docs = await this.marks.find({ _id: { $regex: `^${prefix.replace(/[^\w:-]/g, "\\$&")}` } }, { projection: { _id: 1 } }).toArray();
    return docs.map((doc) => doc._id);
  }

  /** The marks of `ids` that are set: one read by `_id` each, each started after the call (mongo-by-id.ts). */
  async getMany(ids: string[]): Promise<Map<string, Date>> {
    const docs = await findByIds(this.marks, ids);
    return new Map(docs.map((doc) => [doc._id, doc.at as Date]));
  }

  /** Deletes the mark set at `at` (a delete is atomic): whoever claims it next wins it. True when this call deleted it. */
  async release(id: string, at: Date): Promise<boolean> {
    return (await this.marks.deleteOne({ _id: id, at })).deletedCount === 1;
  }

  async deleteMany(ids: string[]): Promise<void> {
    await deleteByIds(this.marks, ids);
  }

  /** Housekeeping: deletes at most `limit` marks with expiresAt < before (one batch); returns how many. */
  async deleteExpired(before: Date, limit: number): Promise<number> {
    return (await deleteBatch(this.marks, { expiresAt: { $lt: before } }, limit)).deleted;
  }
}
