import type { LoginAttemptRecord, LoginAttemptStore } from "../ports.js";
import type { MongoContext } from "./mongo-context.js";
import { insertNextVersion } from "./mongo-inserts.js";

export const LOGIN_ATTEMPTS = "login_attempts";
const ID = "key";
const MAX_TRIES = 64;
// Old states are pruned, keeping this many: a writer would have to stall while this many others
// wrote to the same key to be confused by a pruned state. See below.
const KEEP = 64;

// A counter without atomic updates (see mongo-marks.ts): each state of a key is a versioned
// insert {_id: "<key>#<n>", n} (insertNextVersion), so no failure is ever lost or counted twice.
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
    const doc = await insertNextVersion(attempts, {
      latest: () => latest(key),
      next: (current) => {
        const state = next(current);
        if (!state) return null;
        const { lockedUntil, ...rest } = state;
        return { key, ...rest, ...(lockedUntil !== undefined && { lockedUntil }) };
      },
      idOf: (n) => `${key}#${n}`,
      retry: true,
      maxTries: MAX_TRIES,
      what: "login attempt counter",
    });
    if (doc && doc.n % KEEP === 0) await attempts.deleteMany({ key, n: { $lte: doc.n - KEEP } });
    return doc;
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
