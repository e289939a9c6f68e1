import { MongoServerError } from "mongodb";
import type { LoginAttemptRecord, LoginAttemptStore } from "../ports.js";
import type { MongoContext } from "./mongo-context.js";

export const LOGIN_ATTEMPTS = "login_attempts";
const ID = "key";
const MAX_TRIES = 64;
// Old states are pruned, keeping this many: a writer would have to stall while this many others
// wrote to the same key to be confused by a pruned state. See below.
const KEEP = 64;

// A counter without atomic updates (see mongo-marks.ts): each state of a key is a new document
// {_id: "<key>#<n>", n}; the next state is computed from the latest and inserted as n+1. The unique
// _id makes that insert a compare-and-set: a writer who loses re-reads and tries again, so no
// failure is ever lost or counted twice.
interface AttemptState {
  failures: number;
  firstFailureAt: Date;
  lastFailureAt: Date;
  lockedUntil?: Date | undefined;
}

interface AttemptDoc extends AttemptState {
  _id: string;
  key: string;
  n: number;
}

function toRecord(doc: AttemptDoc): LoginAttemptRecord {
  const record: LoginAttemptRecord = {
    key: doc.key,
    failures: doc.failures,
    firstFailureAt: doc.firstFailureAt,
    lastFailureAt: doc.lastFailureAt,
  };
  if (doc.lockedUntil) record.lockedUntil = doc.lockedUntil;
  return record;
}

export function mongoLoginAttempts(ctx: MongoContext): LoginAttemptStore {
  const attempts = ctx.db.collection<AttemptDoc>(LOGIN_ATTEMPTS);
  const latest = (key: string) => attempts.find({ key }).sort({ n: -1 }).limit(1).next();

  /** Appends the state `next(current)`; null from `next` means "nothing to write". */
  const append = async (
    key: string,
    next: (current: AttemptDoc | null) => AttemptState | null,
  ): Promise<AttemptDoc | null> => {
    for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
      const current = await latest(key);
      const state = next(current);
      if (!state) return null;
      const n = (current?.n ?? 0) + 1;
      const doc: AttemptDoc = { _id: `${key}#${n}`, key, n, ...state };
      if (doc.lockedUntil === undefined) delete doc.lockedUntil;
      try {
        await attempts.insertOne(doc);
      } catch (error) {
        if (error instanceof MongoServerError && error.code === 11000) continue;
        throw error;
      }
      if (n % KEEP === 0) await attempts.deleteMany({ key, n: { $lte: n - KEEP } });
      return doc;
    }
    throw new Error("login attempt counter did not settle");
  };

  return {
    recordFailure: (key, at, windowMs) =>
      ctx.run(ID, async () => {
        const windowStart = at.getTime() - windowMs;
        const doc = await append(key, (current) => {
          const lockedUntil = current?.lockedUntil;
          if (current && current.firstFailureAt.getTime() > windowStart) {
            return { failures: current.failures + 1, firstFailureAt: current.firstFailureAt, lastFailureAt: at, lockedUntil };
          }
          return { failures: 1, firstFailureAt: at, lastFailureAt: at, lockedUntil };
        });
        return toRecord(doc!);
      }),
    get: (key) =>
      ctx.run(ID, async () => {
        const doc = await latest(key);
        return doc ? toRecord(doc) : null;
      }),
    reset: (key) =>
      ctx.run(ID, async () => {
        await attempts.deleteMany({ key });
      }),
    setLockedUntil: (key, until) =>
      ctx.run(ID, async () => {
        await append(key, (current) => (current ? { ...stateOf(current), lockedUntil: until } : null));
      }),
    // Per document: superseded states of a live key go too (the latest state carries the lock
    // and the window forward), and a key whose latest state is stale loses every state.
    deleteStale: (lastFailureBefore, now) =>
      ctx.run(ID, async () => {
        const r = await attempts.deleteMany({
          lastFailureAt: { $lt: lastFailureBefore },
          $or: [{ lockedUntil: { $exists: false } }, { lockedUntil: { $lte: now } }],
        });
        return r.deletedCount;
      }),
  };
}

function stateOf(doc: AttemptDoc): AttemptState {
  const { _id, n, key, ...state } = doc;
  return state;
}
