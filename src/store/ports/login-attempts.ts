// Login abuse protection, shared across instances: attempt counters per key (a login, a client
// address) with their locks, and the logins remembered as having succeeded from an address.
//
// A password is checked only by an attempt that holds a slot: `reserve` takes one slot in every
// window the attempt counts in, atomically, BEFORE any hashing, so a burst of concurrent attempts
// cannot all pass a check that only counts finished ones: a window holds at most `limit` slots
// (failures, and attempts still being checked). A failed attempt keeps its slot and counts as a
// failure (`recordFailure`), which locks the key once failures reach the limit; a successful one
// gives its slot back (`release`).
//
// A slot still being checked is held on a lease (`AttemptRule.leaseMs`, surely longer than a
// check may take: the core gives a login's check half of it, and withholds a later verdict,
// core/login-throttle.ts): an attempt
// that never ends (its process killed mid-check, or its release given up: owed-releases.ts)
// stops holding its slot once the lease of the newest attempt pending in its window has passed,
// instead of refusing its login as busy until the window passes. Failures are not leased: they
// count until the window passes. A late end of an attempt whose slot no longer counts cannot
// drive the counters wrong: its release gives nothing back, its failure still counts (taking a
// slot again), and neither touches a new window.

import { randomUUID } from "node:crypto";

/** One window an attempt counts in. */
export interface AttemptSlot {
  /** e.g. "login:<hash of the login key>", "addr:<address>", "signup:<address>". */
  key: string;
  /** Failures the window may count before the key locks, and attempts it may hold at once. */
  limit: number;
}

/** The window and lock schedule, the same for every key of one reservation. */
export interface AttemptRule {
  /** A window opens at the first attempt counted and lasts this long; the next attempt after it opens a new one. */
  windowMs: number;
  /** The lock set when a window's failures reach the limit. */
  lockMs: number;
  /** Every failure past the limit doubles the lock, up to this. */
  maxLockMs: number;
  /**
   * How long a slot still being checked counts, from when it was taken: pending slots taken
   * this long ago, none since, count no more.
   */
  leaseMs: number;
}

/** A slot held: enough to count it as a failure, or give it back, in the window it was taken from. */
export interface HeldSlot {
  key: string;
  limit: number;
  /** When the window the slot was taken in opened. */
  windowStart: Date;
  /** When the slot was taken (heldSlot below): it counts in the group of pending slots that started by then. */
  takenAt: Date;
  /**
   * The slot's own name (heldSlot below): MongoDB's release of it is a document of this `_id`, so
   * a release tried again after a failure (owed-releases.ts) that had landed after all is not
   * counted twice.
   */
  id?: string;
}

export type Reservation =
  | { readonly granted: true; readonly slots: readonly HeldSlot[] }
  /**
   * `lockedUntil`: the latest lock among the keys that refused; absent when no key is locked but
   * one is full of attempts still being checked (retry in a moment).
   */
  | { readonly granted: false; readonly lockedUntil?: Date };

export interface LoginAttemptStore {
  /**
   * Takes one slot in each key's window, all or none, each key in one atomic step (in SQLite
   * one transaction for all keys; in MongoDB a versioned insert per key, giving back the slots
   * already taken when a later key refuses). The rule, per key at `at`, is takeSlot's below.
   * A refusal writes nothing, but the states of its keys that steppedBack moves (the clock was
   * stepped back since they were written): those are stored moved, so that a lock runs down
   * from the refusal's time instead of being moved again from every later attempt's.
   */
  reserve(slots: readonly AttemptSlot[], at: Date, rule: AttemptRule): Promise<Reservation>;
  /**
   * The attempts failed (a sign-up: happened): each slot stays taken and counts as a failure of
   * its window (failSlot's rule below). A lock only ever grows until it has passed, whatever
   * order these writes arrive in.
   */
  recordFailure(slots: readonly HeldSlot[], at: Date, rule: AttemptRule): Promise<void>;
  /**
   * Gives slots back (a successful attempt, or one that checked nothing): giveBackSlot's rule
   * (in MongoDB each release is a document of its own, named by the slot's id, counted by the
   * same rule). Once per reservation, and again only after a failure (owed-releases.ts): in
   * SQLite a release that failed committed nothing (one made twice would give back twice); in
   * MongoDB one that landed unseen is found by its id, and the one made again gives nothing
   * more back (but for the case mongo-login-attempts.ts tells).
   */
  release(slots: readonly HeldSlot[]): Promise<void>;
  /**
   * Housekeeping: deletes the counters whose last attempt is before `lastAttemptBefore` and that
   * are not locked at `now` (their window has long passed: they can never count again), at most
   * `limit` records (documents) of them (one batch, see ports.ts). Returns how many it deleted.
   */
  deleteStale(lastAttemptBefore: Date, now: Date, limit: number): Promise<number>;

  /** Remembers a successful login under `hash` until `until` (a later `until` wins). */
  rememberLogin(hash: string, until: Date): Promise<void>;
  /** Until when `hash` is remembered, or null. */
  rememberedUntil(hash: string): Promise<Date | null>;
  /** Housekeeping: forgets at most `limit` logins remembered until before `now` (one batch, see ports.ts); returns how many. */
  forgetExpiredLogins(now: Date, limit: number): Promise<number>;
}

/** A key's window as both adapters keep it. */
export interface AttemptState {
  /** Slots taken in the window: failures, and attempts still being checked (pending). */
  held: number;
  /** Failures counted in the window. */
  failures: number;
  windowStart: Date;
  lastAttemptAt: Date;
  lockedUntil?: Date | undefined;
  /**
   * The pending slots' group: they were taken at or after `pendingFrom`, and count until
   * `pendingUntil` (the lease of the newest of them), then no longer (all of them at once).
   * Absent in a state stored before leases: every slot of its window is in the group, and it
   * lasts the lease from `lastAttemptAt`.
   */
  pendingFrom?: Date | undefined;
  pendingUntil?: Date | undefined;
}

/** The lock for the `excess`-th failure past the limit (0: the one that reached it). */
function lockMs(rule: AttemptRule, excess: number): number {
  return Math.min(rule.maxLockMs, rule.lockMs * 2 ** Math.min(30, excess));
}

/** Whether `slot` is one of `current`'s pending slots: still counted, and not yet failed nor given back. */
function pending(current: AttemptState, slot: HeldSlot): boolean {
  const from = current.pendingFrom;
  return current.held > current.failures && (from === undefined || slot.takenAt.getTime() >= from.getTime());
}

/**
 * How far a stored time may be ahead of the clock reading it before the clock is taken to have
 * been stepped back since it was written (an NTP step, an operator setting the time): how long
 * ago it was can no longer be told. A minute, far beyond the skew between instances' clocks
 * (README, "Clocks": within 5 s), so that skew is never read as a step: were it, attempts
 * alternating between an instance whose clock is behind and one whose clock is ahead would each
 * move a lock back by the skew, wearing it down (steppedBack), and a refresh retried on an
 * instance a few seconds behind the one that stored the spend would be reuse (core/clock.ts
 * withinWindow). Housekeeping takes a forward jump past it as a step too.
 */
export const CLOCK_STEP_MS = 60_000;

/**
 * `current` as of `at` when the clock reading it has been stepped back since it was written (its
 * last attempt more than CLOCK_STEP_MS ahead of `at`): every time in it moved back by
 * that much, as if the last attempt were now. Its window, lock and lease then have left what they
 * had at the last attempt, and run down on the clock as it reads now: without this a lock set
 * before a step back of an hour would last that hour more (its Retry-After too). Null when the
 * state needs no moving. A slot taken before the step and still being checked is of the window
 * before the move: its end then counts nothing (a release or failure of a passed window).
 */
export function steppedBack(current: AttemptState, at: Date): AttemptState | null {
  const ahead = current.lastAttemptAt.getTime() - at.getTime();
  if (ahead <= CLOCK_STEP_MS) return null;
  const back = (d: Date | undefined) => (d === undefined ? undefined : new Date(d.getTime() - ahead));
  return {
    held: current.held,
    failures: current.failures,
    windowStart: back(current.windowStart)!,
    lastAttemptAt: at,
    lockedUntil: back(current.lockedUntil),
    pendingFrom: back(current.pendingFrom),
    pendingUntil: back(current.pendingUntil),
  };
}

/**
 * Where a new group starts when the group before it (`current`'s) ended with its lease still
 * running (all its slots given back or failed): at `now`, but never at or before a slot that
 * group took. A slot's takenAt (heldSlot) is its grant's time or the group's start, whichever
 * is later, and every grant pushes the group's `pendingUntil` (`leaseEnd`) to at least its own
 * time plus the lease: no slot of the group was taken after the later of `leaseEnd - leaseMs`
 * and `pendingFrom`. One taken by an instance whose clock is ahead may be after `now`: the new
 * group then starts just after it (by at most that skew, or a millisecond when it was taken
 * at `now`), so that slot's release, which MongoDB counts against the group its takenAt falls
 * in, is of the ended group, never of the new one (where it would free a slot nobody gave
 * back). The new group's lease still runs from `now`. This holds while instances share the
 * lease (`TESSERA_REQUEST_TIMEOUT_MS`, core/login-throttle.ts).
 */
function firstAfter(current: AttemptState, leaseEnd: number, now: number, rule: AttemptRule): number {
  const lastTaken = Math.max(leaseEnd - rule.leaseMs, current.pendingFrom?.getTime() ?? -Infinity);
  return Math.max(now, lastTaken + 1);
}

/**
 * `reserve`'s rule for one key at `at`:
 * - a state written before the clock was stepped back is first moved back with it
 *   (steppedBack; a refusal stores the moved state: see reserve);
 * - locked (lockedUntil > at): refused with the lock, nothing else written;
 * - a window older than `rule.windowMs` counts as empty (a new one opens at `at`);
 * - pending slots whose lease has passed (`pendingUntil` <= at) count no more: the window holds
 *   its failures only, and the slot taken now starts a new group (pendingFrom = at);
 * - no slot of the group pending (every one taken given back or failed: held = failures): the
 *   slot taken now starts a new group too, from just after the latest slot the group can have
 *   taken (firstAfter), so that a slot of the ended group is never of the new one. What a
 *   group's end writes then stays bounded by the slots of one group, not by every success of
 *   the window (MongoDB counts a group's releases: mongo-login-attempts.ts);
 * - fewer than `limit` slots held: the slot is taken, and the group's lease runs until at least
 *   `at + rule.leaseMs`;
 * - all held, and failures have reached the limit (the lock they caused has passed): one more
 *   attempt takes a slot and, at once, locks the key as its failure would (so a burst after a
 *   lockout evaluates one guess, and the lockout doubles);
 * - all held by failures and attempts still being checked: refused without a lock.
 */
export function takeSlot(
  stored: AttemptState | null,
  limit: number,
  at: Date,
  rule: AttemptRule,
): { state: AttemptState } | { refused: true; lockedUntil?: Date } {
  const now = at.getTime();
  const current = (stored === null ? null : steppedBack(stored, at)) ?? stored;
  const locked = current?.lockedUntil;
  if (locked && locked.getTime() > now) return { refused: true, lockedUntil: locked };
  const open = current !== null && current.windowStart.getTime() > now - rule.windowMs;
  const failures = open ? current.failures : 0;
  const leaseEnd = open ? (current.pendingUntil ?? new Date(current.lastAttemptAt.getTime() + rule.leaseMs)).getTime() : now;
  const leased = open && leaseEnd > now;
  // A group whose lease runs on but whose slots have all ended holds nothing: a new one starts.
  const sameGroup = leased && current.held > current.failures;
  const held = sameGroup ? current.held : failures;
  const from = sameGroup ? undefined : leased ? firstAfter(current, leaseEnd, now, rule) : now;
  const state: AttemptState = {
    held: held + 1,
    failures,
    windowStart: open ? current.windowStart : at,
    lastAttemptAt: at,
    lockedUntil: locked,
    pendingFrom: from === undefined ? current!.pendingFrom : new Date(from),
    pendingUntil: new Date(Math.max(sameGroup ? leaseEnd : 0, now + rule.leaseMs)),
  };
  if (held < limit) return { state };
  if (failures < limit) return { refused: true };
  // Any lock still in force refused above: this one replaces only a lock that has passed.
  state.lockedUntil = new Date(now + lockMs(rule, failures + 1 - limit));
  return { state };
}

/**
 * The slot a reservation holds once `state` (takeSlot's) is stored. Its `takenAt` is never
 * before the group's start (an instance whose clock is behind joins the group it found).
 */
export function heldSlot(key: string, limit: number, state: AttemptState, at: Date): HeldSlot {
  const from = state.pendingFrom?.getTime() ?? 0;
  return { key, limit, windowStart: state.windowStart, takenAt: new Date(Math.max(at.getTime(), from)), id: randomUUID() };
}

/**
 * `recordFailure`'s rule for one slot: null when its window has passed (nothing to count). A
 * slot still pending becomes a failure; one that no longer counts (its lease passed, and a later
 * attempt started a new group) counts as a failure all the same, taking a slot again: a failure
 * is never lost in its window, and `held` never falls below `failures`.
 */
export function failSlot(current: AttemptState | null, slot: HeldSlot, at: Date, rule: AttemptRule): AttemptState | null {
  if (!current || current.windowStart.getTime() !== slot.windowStart.getTime()) return null;
  const failures = current.failures + 1;
  let lockedUntil = current.lockedUntil;
  if (failures >= slot.limit) {
    const until = at.getTime() + lockMs(rule, failures - slot.limit);
    if (!lockedUntil || until > lockedUntil.getTime()) lockedUntil = new Date(until);
  }
  const held = pending(current, slot) ? current.held : current.held + 1;
  return { ...current, held, failures, lastAttemptAt: at, lockedUntil };
}

/**
 * `release`'s rule for one slot: held - 1 when it is still pending in the window it was taken
 * from; null: nothing to give back (the window has passed, or the slot's lease has and a later
 * attempt started a new group: it counts no more).
 */
export function giveBackSlot(current: AttemptState | null, slot: HeldSlot): AttemptState | null {
  if (!current || current.windowStart.getTime() !== slot.windowStart.getTime() || !pending(current, slot)) return null;
  return { ...current, held: current.held - 1 };
}
