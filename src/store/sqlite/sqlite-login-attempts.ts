import type Database from "better-sqlite3";
import {
  failSlot,
  giveBackSlot,
  heldSlot,
  steppedBack,
  takeSlot,
  type AttemptRule,
  type AttemptSlot,
  type AttemptState,
  type HeldSlot,
  type LoginAttemptStore,
  type Reservation,
} from "../ports.js";
import { batchDelete } from "./sqlite-batches.js";
import { sqliteCalls } from "./sqlite-durability.js";
import { fromMs, toMs } from "./sqlite-values.js";

// Column names are those of the first schema: `failures` counts failures, `held` slots taken
// (see ports/login-attempts.ts), `first_failure_at` is when the window opened and
// `last_failure_at` the last attempt; `pending_from` and `pending_until` are the pending slots'
// group and lease (NULL in rows from before leases).
interface LoginAttemptRow {
  key: string;
  held: number;
  failures: number;
  first_failure_at: number;
  last_failure_at: number;
  locked_until: number | null;
  pending_from: number | null;
  pending_until: number | null;
}

function toState(row: LoginAttemptRow | undefined): AttemptState | null {
  if (!row) return null;
  return {
    held: row.held,
    failures: row.failures,
    windowStart: fromMs(row.first_failure_at),
    lastAttemptAt: fromMs(row.last_failure_at),
    lockedUntil: row.locked_until === null ? undefined : fromMs(row.locked_until),
    pendingFrom: row.pending_from === null ? undefined : fromMs(row.pending_from),
    pendingUntil: row.pending_until === null ? undefined : fromMs(row.pending_until),
  };
}

export function sqliteLoginAttempts(db: Database.Database): LoginAttemptStore {
  const { call, cheaply } = sqliteCalls(db);
  const get = db.prepare("SELECT * FROM login_attempts WHERE key = ?");
  const put = db.prepare(`INSERT INTO login_attempts (key, held, failures, first_failure_at, last_failure_at, locked_until, pending_from, pending_until)
    VALUES (@key, @held, @failures, @windowStart, @lastAttemptAt, @lockedUntil, @pendingFrom, @pendingUntil)
    ON CONFLICT (key) DO UPDATE SET held = excluded.held, failures = excluded.failures,
      first_failure_at = excluded.first_failure_at, last_failure_at = excluded.last_failure_at,
      locked_until = excluded.locked_until, pending_from = excluded.pending_from, pending_until = excluded.pending_until`);
  // A slot given back changes the slot count alone (giveBackSlot): the other columns (last_failure_at's index
  // among them) are left as they are, so its commit rewrites the row's page and no index's.
  const setHeld = db.prepare("UPDATE login_attempts SET held = ? WHERE key = ?");
  const deleteStale = batchDelete(db, "login_attempts", "last_failure_at < ? AND (locked_until IS NULL OR locked_until <= ?)");
  const remember = db.prepare(`INSERT INTO known_logins (hash, expires_at) VALUES (?, ?)
    ON CONFLICT (hash) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`);
  const remembered = db.prepare("SELECT expires_at FROM known_logins WHERE hash = ?");
  const forget = batchDelete(db, "known_logins", "expires_at < ?");

  const write = (key: string, state: AttemptState) =>
    put.run({
      key,
      held: state.held,
      failures: state.failures,
      windowStart: toMs(state.windowStart),
      lastAttemptAt: toMs(state.lastAttemptAt),
      lockedUntil: state.lockedUntil ? toMs(state.lockedUntil) : null,
      pendingFrom: state.pendingFrom ? toMs(state.pendingFrom) : null,
      pendingUntil: state.pendingUntil ? toMs(state.pendingUntil) : null,
    });
  const stateOf = (key: string) => toState(get.get(key) as LoginAttemptRow | undefined);

  // Each method is one IMMEDIATE transaction: read the states, then write. Another process on
  // the same file waits for the write lock, so no two of them interleave.
  const reserve = db.transaction((slots: readonly AttemptSlot[], at: Date, rule: AttemptRule): Reservation => {
    const next: Array<{ key: string; limit: number; state: AttemptState }> = [];
    let refused = false;
    let lockedUntil = 0;
    for (const { key, limit } of slots) {
      const step = takeSlot(stateOf(key), limit, at, rule);
      if ("refused" in step) {
        refused = true;
        lockedUntil = Math.max(lockedUntil, step.lockedUntil?.getTime() ?? 0);
      } else {
        next.push({ key, limit, state: step.state });
      }
    }
    if (refused) {
      // States the clock was stepped back under, moved with it: stored even though refused, so
      // that a lock runs down from now (ports/login-attempts.ts).
      for (const { key } of slots) {
        const current = stateOf(key);
        const moved = current && steppedBack(current, at);
        if (moved) write(key, moved);
      }
      return lockedUntil > 0 ? { granted: false, lockedUntil: fromMs(lockedUntil) } : { granted: false };
    }
    for (const { key, state } of next) write(key, state);
    return { granted: true, slots: next.map(({ key, limit, state }): HeldSlot => heldSlot(key, limit, state, at)) };
  });
  const recordFailure = db.transaction((slots: readonly HeldSlot[], at: Date, rule: AttemptRule) => {
    for (const slot of slots) {
      const state = failSlot(stateOf(slot.key), slot, at, rule);
      if (state) write(slot.key, state);
    }
  });
  const release = db.transaction((slots: readonly HeldSlot[]) => {
    for (const slot of slots) {
      const state = giveBackSlot(stateOf(slot.key), slot);
      if (state) setHeld.run(state.held, slot.key);
    }
  });

  // Counters and remembered logins: answered without waiting for an fsync (see cheaply()).
  return {
    reserve: (slots, at, rule) => call(() => cheaply(() => reserve.immediate(slots, at, rule))),
    recordFailure: (slots, at, rule) => call(() => cheaply(() => recordFailure.immediate(slots, at, rule))),
    release: (slots) => call(() => cheaply(() => release.immediate(slots))),
    deleteStale: (lastAttemptBefore, now, limit) => call(() => deleteStale.run(toMs(lastAttemptBefore), toMs(now), limit).changes),
    rememberLogin: (hash, until) =>
      call(() => {
        cheaply(() => remember.run(hash, toMs(until)));
      }),
    rememberedUntil: (hash) =>
      call(() => {
        const row = remembered.get(hash) as { expires_at: number } | undefined;
        return row ? fromMs(row.expires_at) : null;
      }),
    forgetExpiredLogins: (now, limit) => call(() => forget.run(toMs(now), limit).changes),
  };
}
