import { MongoServerError } from "mongodb";
import type { LoginAttemptRecord, LoginAttemptStore } from "../ports.js";
import { fromDoc, fromDocOrNull, type MongoContext, type StoredDoc } from "./mongo-context.js";

export const LOGIN_ATTEMPTS = "login_attempts";
const ID = "key";

export function mongoLoginAttempts(ctx: MongoContext): LoginAttemptStore {
  const attempts = ctx.db.collection<StoredDoc>(LOGIN_ATTEMPTS);
  return {
    recordFailure: (key, at, windowMs) =>
      ctx.run(ID, async () => {
        const windowStart = new Date(at.getTime() - windowMs);
        // Update pipelines are not available on FerretDB, so the window logic is three
        // conditional single-document writes tried in turn. Each is atomic and their filters are
        // disjoint, so concurrent callers never lose a count: whoever misses one case retries.
        for (let attempt = 0; attempt < 10; attempt++) {
          const counted = await attempts.findOneAndUpdate(
            { _id: key, firstFailureAt: { $gt: windowStart } },
            { $inc: { failures: 1 }, $set: { lastFailureAt: at } },
            { returnDocument: "after" },
          );
          if (counted) return fromDoc<LoginAttemptRecord>(counted, ID);
          const restarted = await attempts.findOneAndUpdate(
            { _id: key, firstFailureAt: { $lte: windowStart } },
            { $set: { failures: 1, firstFailureAt: at, lastFailureAt: at } },
            { returnDocument: "after" },
          );
          if (restarted) return fromDoc<LoginAttemptRecord>(restarted, ID);
          try {
            const doc = { _id: key, failures: 1, firstFailureAt: at, lastFailureAt: at };
            await attempts.insertOne(doc);
            return fromDoc<LoginAttemptRecord>(doc, ID);
          } catch (error) {
            if (!(error instanceof MongoServerError && error.code === 11000)) throw error;
            // Another instance created it between our reads: count again.
          }
        }
        throw new Error("login attempt counter did not settle after 10 tries");
      }),
    get: (key) =>
      ctx.run(ID, async () => fromDocOrNull<LoginAttemptRecord>(await attempts.findOne({ _id: key }), ID)),
    reset: (key) =>
      ctx.run(ID, async () => {
        await attempts.deleteOne({ _id: key });
      }),
    setLockedUntil: (key, until) =>
      ctx.run(ID, async () => {
        await attempts.updateOne({ _id: key }, { $set: { lockedUntil: until } });
      }),
  };
}
