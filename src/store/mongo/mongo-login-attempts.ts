import { randomBytes, randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import type { AttemptRule, AttemptSlot, AttemptState, HeldSlot, LoginAttemptStore, Reservation } from "../ports.js";
import { failSlot, heldSlot, OwedReleases, steppedBack, StoreUnavailableError, takeSlot } from "../ports.js";
import { deleteBatch } from "./mongo-batches.js";
import { deleteByIds } from "./mongo-by-id.js";
import { abandoned, abandonedCheck, type MongoContext } from "./mongo-context.js";
import { insertNextVersion, insertUnlessTaken, upsertOne } from "./mongo-inserts.js";

export const LOGIN_ATTEMPTS = "login_attempts";
export const LOGIN_ATTEMPT_RELEASES = "login_attempt_releases";
export const KNOWN_LOGINS = "known_logins";
const ID = "key";
// Refusals write nothing, so only grants compete for a key: a burst settles after `limit`
// writes. This bounds a writer that keeps losing to a stream of others on one key.
const MAX_TRIES = 256;
const BACKOFF_MS = 2;
// How many times a refusal of a full window reads the latest state again (latestDecision): each
// costs a refusal one read more.
const RECHECKS = 1;
// Old states are pruned, keeping this many: a writer would have to stall while this many others
// wrote to the same key to be confused by a pruned state. See below.
const KEEP = 64;

// Counters without atomic updates (see mongo-marks.ts):
// - slots taken and failures: each state of a key is a versioned insert {_id: "<key>#<n>", n}
//   computed from the latest (insertNextVersion), so of two writers who read the same state one
//   wins and the other reads again: no slot is granted twice, no failure is lost, and no write can
//   lower a lock another has set. `grants` counts the slots held in the window plus the
//   releases of its group still stored when it was written, `failures` the failures (a
//   document of the first layout has no `grants`: each of its failures held a slot).
//   `pendingFrom` and `pendingUntil` are the pending slots' group and lease
//   (ports/login-attempts.ts; absent in documents from before leases): when a lease passes, or
//   when every slot of the group has ended (given back or failed), the next grant starts a new
//   group, with `grants` its failures plus itself.
// - releases: a slot given back is an insert of its own {key, windowStart, takenAt} into
//   login_attempt_releases, which races with nothing. A window holds its grants minus the
//   releases of its current group (giveBackSlot's rule: taken at or after `pendingFrom`; all of
//   the window's in a document without one, and those of releases from before leases, which
//   have no `takenAt`). A release landing while a grant is being decided is not seen by it: that
//   grant then sees one slot too many taken, which can only refuse it, never let one more through;
//   and a grant that sees every slot of the group ended has seen each one's release (or
//   failure), so no slot of the group is pending when it starts the next. That group starts
//   after every slot the ended one took (firstAfter in ports/login-attempts.ts, whatever the
//   clock of the instance that took it), so no release of the ended group is ever counted in
//   it. Releases are counted only once a group's grants (less those `counted`) reach the limit.
//   The state a count leads to lists the releases it counted (`counted`, their ids), and once
//   it is stored they are deleted: a later count subtracts them all and reads again only those
//   still stored, so it reads the releases given back since the count before (and any whose
//   delete failed), not every release of a group that never ends (logins on the key
//   overlapping without a pause keep one going until its lease passes: each reservation
//   counted every release of that stretch before). The grant that starts a group deletes the
//   releases of the one it ended (forgetEnded), which nothing counts again. Both deletes run
//   after the grant has answered. A reader of the state before finds those releases gone and
//   counts their slots taken: a refusal of a full window (no lock) reads the latest state again
//   and decides from it when it is newer, or when this process was giving back slots of the key
//   (waited for first: latestDecision; once for the steps of one turn). An
//   instance of the layout before reads a document's `grants` less the releases stored, never
//   fewer slots taken than there are: it can only refuse more (FerretDB 1.x, which uses no index,
//   reads every release of the collection to count a key's: the deletes keep that short).
// - Within one process the writes to one key take turns (KeyedTurns): correctness comes from the
//   versioned inserts alone, but N writers racing on one key cost O(N^2) inserts, turns O(N), and
//   only instances race each other. The takes and failures that wait for a key's turn are made
//   together in it (`stepped`: one read, one more when a take of them is refused a full window
//   (latestDecision, once for them all), at most one insert; the deletes above once they are
//   answered), so a burst of N on one key costs a few turns, not N in a row; and the reads a
//   burst's reservations make first are shared (`readState`; a recheck is each one's own).
interface AttemptDoc {
  _id: string;
  key: string;
  n: number;
  grants?: number;
  failures: number;
  firstFailureAt: Date;
  lastFailureAt: Date;
  lockedUntil?: Date;
  pendingFrom?: Date;
  pendingUntil?: Date;
  /** The ids of the group's releases `grants` holds as given back (absent: none). */
  counted?: string[];
  /** The tag of the turn that wrote it: its own write, once uncertain, is told from another's (settleUncertain). */
  w?: string;
}

interface ReleaseDoc {
  _id: string;
  key: string;
  windowStart: Date;
  /** The slot's (HeldSlot.takenAt); absent in releases from before leases. */
  takenAt?: Date;
}

interface KnownLoginDoc {
  _id: string;
  until: Date;
}

/** A turn's tag (AttemptDoc.w). */
const newTag = () => randomBytes(9).toString("base64url");

/** What a take of one slot got: the slot, or its refusal (the key's lock, if locked). */
type Taken = { held: HeldSlot } | { refused: true; lockedUntil?: Date };

/** Whether a take refuses a slot of a full window (no lock): latestDecision reads again. */
function refusesFull(step: { state: AttemptState } | { refused: true; lockedUntil?: Date }): boolean {
  return "refused" in step && step.lockedUntil === undefined;
}

/** A key's state (stateOf), the ids of the releases its group has counted, and whether they were read. */
interface Counted {
  state: AttemptState;
  counted: string[];
  read: boolean;
}

/** A key's latest document and its state. */
interface Read {
  doc: AttemptDoc | null;
  current: Counted | null;
}

/**
 * A step of one key's state made from the state before it: the state after it (null:
 * unchanged), what its caller is answered, whether it took a slot, and whether it refused one
 * of a full window (refusesFull).
 */
interface Applied<T> {
  next: AttemptState | null;
  answer: T;
  took?: boolean;
  full?: boolean;
  holds?: Holding;
}

/** The slot a take holds once its state is stored, and its window's length. */
interface Holding {
  slot: HeldSlot;
  windowMs: number;
}

/**
 * A step of one key's state (a take of a slot, a failure) waiting for the key's turn, with its
 * caller's answer.
 */
interface Step {
  /** The limit its take needs the releases counted under (stateOf); Infinity: none. */
  limit: number;
  apply(state: AttemptState | null): Applied<unknown>;
  /** Whether it is not to be made: its caller was answered before its turn (a failure's never is). */
  givenUp(): boolean;
  resolve(answer: unknown): void;
  reject(error: unknown): void;
}

/** The refusal of a reservation: the latest lock among the keys that refused, if any is locked. */
function refusedBy(refusals: Array<{ lockedUntil?: Date }>): Reservation {
  const locks = refusals.flatMap((r) => (r.lockedUntil ? [r.lockedUntil.getTime()] : []));
  return locks.length > 0 ? { granted: false, lockedUntil: new Date(Math.max(...locks)) } : { granted: false };
}

/**
 * Jobs for one key run one after another; jobs for different keys run side by side. A job whose
 * operation was given up while it waited (its caller answered UNAVAILABLE: the database was slow)
 * is not run when its turn comes: run then, it would take a login slot that nobody gives back or
 * counts, after the database answers again, and the jobs queued behind it would wait for it.
 * But a job that is `owed` runs all the same: a failure's (its password was checked, whatever
 * its caller was told), lost otherwise, its slot freed by the lease and one more guess checked.
 */
class KeyedTurns {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, job: () => Promise<T>, owed = false): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(() => {
      if (!owed && abandoned()) throw new StoreUnavailableError("the login attempt was given up while it waited for its turn");
      return job();
    });
    const tail = result.then(
      () => {},
      () => {},
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

/** The login counters of `ctx`'s database, and the stop of their owed give-backs (before the client closes). */
export function mongoLoginAttempts(ctx: MongoContext): { attempts: LoginAttemptStore; close(): Promise<void> } {
  const attempts = ctx.db.collection<AttemptDoc>(LOGIN_ATTEMPTS);
  const releases = ctx.db.collection<ReleaseDoc>(LOGIN_ATTEMPT_RELEASES);
  const known = ctx.db.collection<KnownLoginDoc>(KNOWN_LOGINS);
  const latest = (key: string) => attempts.find({ key }).sort({ n: -1 }).limit(1).next();

  const grantsOf = (doc: AttemptDoc) => doc.grants ?? doc.failures;

  /**
   * The key's state from its latest document, and the releases its group has counted (their
   * ids, still stored when read). Releases are counted only when they can matter: while fewer
   * than `limit` slots are held at most, a slot is free whatever was given back (one read fewer
   * on the way to the limit), and those counted before are the document's. Without a limit
   * (Infinity), `held` is the slots held but for the releases not yet counted: more than the
   * slots pending when some were given back, which failSlot's rule allows for (a slot of the
   * group is pending until it ends).
   */
  const stateOf = async (doc: AttemptDoc | null, limit: number): Promise<Counted | null> => {
    if (!doc) return null;
    const grants = grantsOf(doc);
    let counted = doc.counted ?? [];
    let released = counted.length;
    const read = grants - released >= limit;
    if (read) {
      const group = doc.pendingFrom === undefined ? {} : { takenAt: { $gte: doc.pendingFrom } };
      const before = new Set(counted);
      counted = (await releases.find({ key: doc.key, windowStart: doc.firstFailureAt, ...group }, { projection: { _id: 1 } }).toArray()).map((r) => r._id);
      released += counted.filter((id) => !before.has(id)).length;
    }
    const state: AttemptState = {
      held: grants - released,
      failures: doc.failures,
      windowStart: doc.firstFailureAt,
      lastAttemptAt: doc.lastFailureAt,
      lockedUntil: doc.lockedUntil,
      pendingFrom: doc.pendingFrom,
      pendingUntil: doc.pendingUntil,
    };
    return { state, counted, read };
  };

  /**
   * The document of `state`, computed from `current`: its grants are the slots it holds plus
   * the releases of the same group counted against it (listed in `counted`).
   */
  const fields = (key: string, current: { state: AttemptState; counted: string[] } | null, state: AttemptState): Omit<AttemptDoc, "_id" | "n"> => {
    const sameGroup =
      current !== null &&
      current.state.windowStart.getTime() === state.windowStart.getTime() &&
      current.state.pendingFrom?.getTime() === state.pendingFrom?.getTime();
    const counted = sameGroup ? current.counted : [];
    return {
      key,
      grants: state.held + counted.length,
      failures: state.failures,
      firstFailureAt: state.windowStart,
      lastFailureAt: state.lastAttemptAt,
      ...(state.lockedUntil !== undefined && { lockedUntil: state.lockedUntil }),
      ...(state.pendingFrom !== undefined && { pendingFrom: state.pendingFrom }),
      ...(state.pendingUntil !== undefined && { pendingUntil: state.pendingUntil }),
      ...(counted.length > 0 && { counted }),
    };
  };

  /**
   * The give-backs of each key's slots under way in this process. A reservation given up while
   * its slots were being taken gives them back once they land (reserve below), just as the
   * database answers again, and logins coming then would otherwise count them taken, every one,
   * and be refused as busy (a right password answered 429) for the moment they take to land.
   * An entry is gone once its give-backs have ended.
   */
  const givingBackOn = new Map<string, Set<Promise<void>>>();
  const underWay = (key: string, giving: Promise<void>) => {
    let set = givingBackOn.get(key);
    if (!set) givingBackOn.set(key, (set = new Set()));
    set.add(giving);
    const ended = () => {
      set.delete(giving);
      if (set.size === 0 && givingBackOn.get(key) === set) givingBackOn.delete(key);
    };
    giving.then(ended, ended);
  };
  /** Waits for the give-backs of `key`'s slots under way (made or failed: a failed one is owed); false when there were none. */
  const givenBack = async (key: string): Promise<boolean> => {
    const set = givingBackOn.get(key);
    if (!set) return false;
    await Promise.allSettled([...set]);
    return true;
  };

  /**
   * `decide` made from `read` (the key's latest document, its state counted under `limit`), or,
   * when the decision refuses a full window (`refusesFull`: no lock), from the latest document
   * read again if a newer one was stored meanwhile (RECHECKS). The releases a newer state
   * counted are deleted once it is stored: a count from the one before, missing them, would see
   * their slots taken (stateOf).
   */
  const latestDecision = async <T>(key: string, read: Read, limit: number, decide: (state: AttemptState | null) => T, refusesFull: (decision: T) => boolean) => {
    let { doc, current } = read;
    for (let tries = 0; ; tries++) {
      const decision = decide(current?.state ?? null);
      if (!refusesFull(decision) || tries === RECHECKS) return { current, decision };
      // The key's slots this process is giving back are counted once given (givenBack): then
      // the same state is counted again, with them.
      const waited = await givenBack(key);
      const again = await latest(key);
      if (again?._id === doc?._id && !waited) return { current, decision };
      doc = again;
      current = await stateOf(doc, limit);
    }
  };

  const turns = new KeyedTurns();

  /**
   * Appends `next(latest)` as the key's next state (null: nothing to write); prunes old states.
   * Run in the key's turn. `uncertain`: insertNextVersion's. A prune that fails is left to the
   * next (its filter takes every older state too): the state is stored, and its steps are answered
   * as made (failing them would leave the slots taken held by nobody).
   */
  const appendNow = async (key: string, next: (current: AttemptDoc | null) => Promise<Omit<AttemptDoc, "_id" | "n"> | null>, uncertain?: (doc: AttemptDoc) => void) => {
    const doc = await insertNextVersion(attempts, {
      latest: () => latest(key),
      next,
      idOf: (n) => `${key}#${n}`,
      retry: true,
      maxTries: MAX_TRIES,
      backoffMs: BACKOFF_MS,
      what: "login attempt counter",
      ...(uncertain && { uncertain }),
    });
    if (doc && doc.n % KEEP === 0) await attempts.deleteMany({ key, n: { $lte: doc.n - KEEP } }).catch(() => {});
    return doc;
  };

  /** appendNow in the key's turn. `owed`: made even once its caller has been answered (KeyedTurns). */
  const append = (key: string, next: (current: AttemptDoc | null) => Promise<Omit<AttemptDoc, "_id" | "n"> | null>, owed = false) =>
    turns.run(key, () => appendNow(key, next), owed);

  /**
   * Deletes the releases that no state from `state` on counts: those of the group (or window)
   * `before` held, once `state` has started a new one. Only tidying (the count never reads
   * them: stateOf), but on FerretDB, which reads every release of the collection to count a
   * key's (mongo-indexes.ts), it keeps a count from reading them. A reader of an older state
   * that finds some of its releases gone counts too many slots taken: it can only refuse (and
   * reads again: latestDecision), and a grant from it loses to `state` (insertNextVersion).
   * Run once the grant has answered: a delete that fails is left to the next group's end in the
   * window, or to housekeeping (deleteStale).
   */
  const forgetEnded = async (key: string, before: AttemptState, state: AttemptState) => {
    const from = state.pendingFrom;
    const sameWindow = before.windowStart.getTime() === state.windowStart.getTime();
    if (sameWindow && (from === undefined || before.pendingFrom?.getTime() === from.getTime())) return;
    const ended = sameWindow ? { $or: [{ takenAt: { $lt: from } }, { takenAt: { $exists: false } }] } : {};
    await releases.deleteMany({ key, windowStart: before.windowStart, ...ended }).catch(() => {});
  };

  /**
   * The steps of each key waiting for its next turn. A step joins the batch of its key not yet
   * begun, or starts one and queues it (KeyedTurns): a burst on one key costs a few turns of one
   * read and at most one insert each, not a turn per attempt (each a read and an insert, the
   * last of 30 attempts then waiting for 29 turns and more past the store's time bound). An
   * entry is gone once its turn begins: the map holds no more keys than steps are waiting.
   */
  const waiting = new Map<string, Step[]>();

  /** `apply` made to the state of `key` in its turn, with the other steps of its batch. */
  const stepped = <T>(key: string, limit: number, owed: boolean, apply: (state: AttemptState | null) => Applied<T>) =>
    new Promise<T>((resolve, reject) => {
      const step: Step = { limit, apply, givenUp: owed ? () => false : abandonedCheck(), resolve: resolve as (answer: unknown) => void, reject };
      const batch = waiting.get(key);
      if (batch) {
        batch.push(step);
        return;
      }
      const steps = [step];
      waiting.set(key, steps);
      // Owed: a step given up is left out by applyAll, not its batch with it.
      void turns.run(key, () => applyAll(key, steps), true).catch((error: unknown) => {
        for (const s of steps) s.reject(error);
      });
    });

  /**
   * Makes `steps` in their key's turn, in their order, from one read of its state, and stores
   * the state after the last as one next state (insertNextVersion: on a lost race, all of them
   * are made again from the state that won). When a take of them is refused a full window, they
   * are all made again from the latest state if a newer one was stored meanwhile
   * (latestDecision, once for the batch). A step given up before the turn begins is left out.
   * The releases the stored state counted, and those of the group it ended, are deleted once
   * the steps are answered.
   */
  const applyAll = async (key: string, steps: Step[]) => {
    if (waiting.get(key) === steps) waiting.delete(key);
    let answers: Array<{ answer: unknown } | undefined> = [];
    // Set by the last `next` that ran: the state it decided from, and the one its last take led to.
    let before = undefined as Counted | null | undefined;
    let taken = undefined as AttemptState | undefined;
    // The steps still wanted as the turn begins (as KeyedTurns decides for a job of its own);
    // none: not even a read.
    // (A set: a batch is as long as a burst on one key, and each made() asks it of every step.)
    const live = new Set(steps.filter((s) => !s.givenUp()));
    // Releases are counted when the last step could be a take that finds every slot taken.
    let least = Infinity;
    for (const s of live) least = Math.min(least, s.limit);
    const limit = least - live.size + 1;
    const made = (state: AttemptState | null) => {
      let changed = false;
      let took = undefined as AttemptState | undefined;
      let full = false;
      const holding: Holding[] = [];
      const answered = steps.map((s) => {
        if (!live.has(s)) return undefined;
        const step = s.apply(state);
        if (step.next) [state, changed] = [step.next, true];
        if (step.took) took = step.next!;
        if (step.holds) holding.push(step.holds);
        full ||= step.full === true;
        return { answer: step.answer };
      });
      return { answered, state: changed ? state : null, took, full, holding };
    };
    // This turn's tag, and what its last `next` decided from and took.
    const tag = newTag();
    let basis: AttemptDoc | null = null;
    let holding: Holding[] = [];
    const doc =
      live.size === 0
        ? null
        : await appendNow(
            key,
            async (latestDoc) => {
              const { current, decision } = await latestDecision(key, { doc: latestDoc, current: await stateOf(latestDoc, limit) }, limit, made, (d) => d.full);
              [answers, before, taken, basis, holding] = [decision.answered, current, decision.took, latestDoc, decision.holding];
              return decision.state && { ...fields(key, current, decision.state), w: tag };
            },
            // The slots taken may be held once the write lands after all: settled (below) before
            // the next reservation, and every second, until it is known.
            (written) => {
              if (holding.length === 0) return;
              const slots = holding.map((h) => h.slot);
              uncertainWrites.set(slots, { key, id: written._id, n: written.n, tag, basis });
              uncertainTakes.owe(slots, Math.max(...holding.map((h) => h.windowMs)));
            },
          );
    steps.forEach((s, i) => {
      const answer = answers[i];
      if (answer) s.resolve(answer.answer);
      else s.reject(new StoreUnavailableError("the login attempt was given up while it waited for its turn"));
    });
    if (!doc || !taken || !before) return;
    // Tidying, once the steps have answered: nothing counts these releases again (the state
    // stored holds the counted ones as given back), and a delete that fails is done later.
    if (before.read && doc.counted) void deleteByIds(releases, doc.counted).catch(() => {});
    void forgetEnded(key, before.state, taken);
  };

  /** Takes one slot of `key` (one atomic step, with the others of its batch), or says why not. */
  const take = (key: string, limit: number, at: Date, rule: AttemptRule) =>
    stepped<Taken>(key, limit, false, (state) => {
      const step = takeSlot(state, limit, at, rule);
      // Refused: nothing written, but a state the clock was stepped back under (see moveBack).
      if ("refused" in step) return { next: state && steppedBack(state, at), answer: step, full: refusesFull(step) };
      const held = heldSlot(key, limit, step.state, at);
      return { next: step.state, answer: { held }, took: true, holds: { slot: held, windowMs: rule.windowMs } };
    });

  /**
   * The latest documents of `key` and their states read by the reservations under way (stateOf
   * under `limit`), one read shared by those that ask while it runs: a burst's reservations,
   * which all read before they take, cost one read of each key, not one each (a recheck,
   * latestDecision, is each one's own). An entry is gone once its read ends.
   */
  const reading = new Map<string, Promise<Read>>();
  const readState = (key: string, limit: number) => {
    const id = `${limit}\n${key}`;
    const shared = reading.get(id);
    if (shared) return shared;
    const read = (async () => {
      const doc = await latest(key);
      return { doc, current: await stateOf(doc, limit) };
    })();
    reading.set(id, read);
    void read.then(
      () => reading.delete(id),
      () => reading.delete(id),
    );
    return read;
  };

  /**
   * Stores the state of `key` moved back with the clock (steppedBack), when the clock was
   * stepped back since it was written: a refusal writes nothing else, and without this every
   * later attempt would move it again from its own time (a lock never running down).
   */
  const moveBack = (key: string, at: Date) =>
    append(key, async (latestDoc) => {
      const current = await stateOf(latestDoc, Infinity);
      const moved = current && steppedBack(current.state, at);
      return moved ? fields(key, current, moved) : null;
    });

  // One insertOne per slot (at most two): a bulk write would wrap a dropped connection in a
  // MongoBulkWriteError, which does not read as the database being unavailable. A slot's release
  // is the document named by the slot's id: a release tried again after a failure (owed, see
  // owed-releases.ts) waits for the one before it still under way (its caller answered at the
  // store's time bound), is made only when that one failed, and finds the document there (a
  // duplicate key) when it had landed after all; one counted and deleted meanwhile is inserted
  // again, and not counted again while the latest state lists its id (`counted`). A slot is given
  // back once, but for a release that landed unseen and was tried again only after two counts on
  // its key: one slot more for that group (the retry comes within a second of the store
  // answering again).
  const givingBack = new WeakMap<HeldSlot, Promise<void>>();
  const giveBackSlot = (slot: HeldSlot): Promise<void> => {
    const insert = async () => {
      await insertUnlessTaken(releases, { _id: slot.id ?? randomUUID(), key: slot.key, windowStart: slot.windowStart, takenAt: slot.takenAt });
    };
    const before = givingBack.get(slot);
    const giving = before ? before.catch(insert) : insert();
    givingBack.set(slot, giving);
    underWay(slot.key, giving);
    return giving;
  };
  const giveBack = async (slots: readonly HeldSlot[]) => {
    await Promise.all(slots.map(giveBackSlot));
  };
  // The slots a reservation took and could not give back itself (a later key failed, or its
  // caller was answered at the store's time bound and the store failed before they could be).
  // Each retry waits no longer than the store's time bound, a stop's last one included.
  const owedGiveBacks = new OwedReleases((slots) => ctx.run(ID, () => giveBack(slots)), () => Date.now());
  const giveBackOrOwe = (slots: readonly HeldSlot[], rule: AttemptRule) => giveBack(slots).catch(() => owedGiveBacks.owe(slots, rule.windowMs));

  // Takes whose state's write failed without telling whether it was made (insertNextVersion's
  // `uncertain`: a connection dropped, or the driver's pool cleared as the server stopped
  // answering, while the write was on the wire). The database may apply it still, or have
  // applied it: its slots then held by callers answered UNAVAILABLE, never given back, refusing
  // their login (or their address's every stranger) as busy for as long as attempts on the key
  // keep coming (the group's lease runs from its latest grant), up to the window. Each is settled
  // once the store answers, before the next reservation (as owed give-backs are) and every
  // second: its version's `_id` is taken by a copy of the state it was computed from (nothing
  // changed), so the write can never land later; if that finds the `_id` taken by the write
  // itself (its tag), it landed, and its slots are given back; by another writer's, it never will.
  // The copy follows that state only while it is stored as it was read (states are never changed
  // in place): once gone, housekeeping may have deleted every state of the key (deleteStale: its
  // last attempt a window old, as the state a key's first attempt of the day finds), and the key's
  // states started again from version 1 on any instance; a copy above them would be the key's
  // latest state, its window long closed, and their failures and lock lost. Gone, no copy is
  // inserted, and only the write's own `_id` is looked at (a write that landed later still would
  // be as it was before these copies; and a deletion with new states between the read of the
  // state and the copy's insert, one round trip, is not told).
  const uncertainWrites = new WeakMap<readonly HeldSlot[], { key: string; id: string; n: number; tag: string; basis: AttemptDoc | null }>();
  const settleUncertain = async (slots: readonly HeldSlot[]) => {
    const write = uncertainWrites.get(slots);
    if (!write) return;
    // Without a state before it, a closed window: as good as none (and housekeeping's to delete).
    const filler: AttemptDoc = write.basis
      ? { ...write.basis, _id: write.id, n: write.n, w: newTag() }
      : { _id: write.id, n: write.n, key: write.key, grants: 0, failures: 0, firstFailureAt: new Date(0), lastFailureAt: new Date(0), w: newTag() };
    const follows = write.basis === null || isDeepStrictEqual(await attempts.findOne({ _id: write.basis._id }), write.basis);
    if (follows && (await insertUnlessTaken(attempts, filler))) return;
    const found = await attempts.findOne({ _id: write.id }, { projection: { w: 1 } });
    if (found?.w === write.tag) await giveBack(slots);
  };
  const uncertainTakes = new OwedReleases((slots) => ctx.run(ID, () => settleUncertain(slots)), () => Date.now());

  const reserve = async (slots: readonly AttemptSlot[], at: Date, rule: AttemptRule): Promise<Reservation> => {
    // The slots owed (owedGiveBacks) are given back, and the uncertain takes settled, before
    // these are counted, not only by the retry every second: the store answering again, they no
    // longer hold a login's slot.
    await Promise.all([owedGiveBacks.settle(), uncertainTakes.settle()]);
    // A key that refuses does so without a write: a flood against it costs reads only.
    const decisions = await Promise.all(
      slots.map(async (slot) => latestDecision(slot.key, await readState(slot.key, slot.limit), slot.limit, (state) => takeSlot(state, slot.limit, at, rule), refusesFull)),
    );
    const states = decisions.map((d) => d.current?.state ?? null);
    const current = decisions.map((d) => d.decision);
    const refusals = current.flatMap((step) => ("refused" in step ? [step] : []));
    // On a refusal, the states read above that the clock was stepped back under are stored
    // moved: only those cost a write (a flood costs reads), and a state written since is of this
    // clock (moveBack looks again).
    const moveBackStepped = () => Promise.all(slots.map((slot, i) => (states[i] && steppedBack(states[i], at) ? moveBack(slot.key, at) : undefined)));
    if (refusals.length > 0) {
      await moveBackStepped();
      return refusedBy(refusals);
    }
    // One key at a time; when one refuses (a concurrent writer locked it meanwhile) or fails,
    // the slots already taken are given back (owed when the store fails that too).
    const held: HeldSlot[] = [];
    for (const slot of slots) {
      let taken: Taken;
      try {
        taken = await take(slot.key, slot.limit, at, rule);
      } catch (error) {
        await giveBackOrOwe(held, rule);
        throw error;
      }
      if ("refused" in taken) {
        await giveBackOrOwe(held, rule);
        await moveBackStepped();
        return refusedBy([taken]);
      }
      held.push(taken.held);
    }
    return { granted: true, slots: held };
  };

  const port: LoginAttemptStore = {
    reserve: (slots, at, rule) => {
      let reserving: Promise<Reservation> | undefined;
      return ctx.run(ID, () => (reserving = reserve(slots, at, rule))).catch((error: unknown) => {
        // The caller was told the store did not answer, and never learns of the slots this
        // reservation may still take: once it lands, they are given back (else they would stay
        // held, a login refused as busy, until its window passed).
        void reserving?.then((r) => (r.granted ? giveBackOrOwe(r.slots, rule) : undefined)).catch(() => {});
        throw error;
      });
    },
    recordFailure: (slots, at, rule) =>
      ctx.run(ID, async () => {
        await Promise.all(slots.map((slot) => stepped(slot.key, Infinity, true, (state) => ({ next: failSlot(state, slot, at, rule), answer: undefined }))));
      }),
    release: (slots) => ctx.run(ID, () => giveBack(slots)),
    // Per document: superseded states of a live key go too (the latest state carries the lock
    // and the window forward), a key whose latest state is stale loses every state, and the
    // releases of windows that opened before `lastAttemptBefore` (closed by now) go, in what is
    // left of the batch once no stale state is.
    deleteStale: (lastAttemptBefore, now, limit) =>
      ctx.run(ID, async () => {
        const states = await deleteBatch(
          attempts,
          { lastFailureAt: { $lt: lastAttemptBefore }, $or: [{ lockedUntil: { $exists: false } }, { lockedUntil: { $lte: now } }] },
          limit,
        );
        if (states.ids.length === limit) return states.deleted;
        const released = await deleteBatch(releases, { windowStart: { $lt: lastAttemptBefore } }, limit - states.ids.length);
        return states.deleted + released.deleted;
      }),
    // Last writer wins by design: writers only ever push `until` forward by about the same amount.
    rememberLogin: (hash, until) =>
      // Two first remembers at once: one inserts; the other then updates.
      ctx.run("hash", () => upsertOne(known, { _id: hash }, { $max: { until } })),
    rememberedUntil: (hash) =>
      ctx.run("hash", async () => {
        const doc = await known.findOne({ _id: hash });
        return doc ? doc.until : null;
      }),
    forgetExpiredLogins: (now, limit) =>
      ctx.run("hash", async () => (await deleteBatch(known, { until: { $lt: now } }, limit)).deleted),
  };
  return {
    attempts: port,
    close: async () => {
      await Promise.all([owedGiveBacks.close(), uncertainTakes.close()]);
    },
  };
}
