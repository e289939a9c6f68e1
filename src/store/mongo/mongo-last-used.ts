import type { Collection, Db } from "mongodb";
import { touchBucket } from "../ports.js";
import type { StoredDoc } from "./mongo-context.js";
import { deleteByIds, findByIds } from "./mongo-by-id.js";
import { upsertOne } from "./mongo-inserts.js";
import type { Marks } from "./mongo-marks.js";

/**
 * Last-use times of the documents of `owners` (API tokens, user tokens), kept apart from them so
 * that their last-writer-wins updates can never overwrite anything else. Writes are coalesced
 * through a mark per document and interval (touchBucket).
 */
export class LastUsed {
  private readonly times: Collection<StoredDoc>;

  constructor(
    db: Db,
    collection: string,
    private readonly owners: Collection<StoredDoc>,
    private readonly marks: Marks,
    private readonly kind: string,
  ) {
    this.times = db.collection<StoredDoc>(collection);
  }

  async get(id: string): Promise<Date | null> {
    return ((await this.times.findOne({ _id: id }))?.lastUsedAt as Date | undefined) ?? null;
  }

  async getMany(ids: string[]): Promise<Map<string, Date>> {
    const docs = await findByIds(this.times, ids);
    return new Map(docs.map((doc) => [doc._id, doc.lastUsedAt as Date]));
  }

  /**
   * Writes at most once per id per interval, and only for a document that exists; the read
   * first keeps the common case to one query.
   */
  async touch(id: string, at: Date, minIntervalMs: number): Promise<boolean> {
    if ((await this.owners.countDocuments({ _id: id }, { limit: 1 })) === 0) return false;
    const bucket = touchBucket(at, minIntervalMs);
    const last = await this.get(id);
    if (last && last.getTime() >= bucket) return false;
    const expiresAt = new Date(bucket + 2 * Math.max(minIntervalMs, 1000));
    if (!(await this.marks.claim(`${this.kind}:${id}:${bucket}`, at, expiresAt))) return false;
    // Two first-ever uses in different intervals may race to create the document.
    await upsertOne(this.times, { _id: id }, { $set: { lastUsedAt: at } });
    return true;
  }

  async delete(ids: string[]): Promise<void> {
    await deleteByIds(this.times, ids);
  }
}
