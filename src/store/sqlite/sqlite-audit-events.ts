import type Database from "better-sqlite3";
import { refusalOutcomes, StoreUnavailableError, type AuditEventRecord, type AuditEventStore, type SuppressedEvents } from "../ports.js";
import { batchDelete } from "./sqlite-batches.js";
import { sqliteCalls } from "./sqlite-durability.js";
import { callLater, mapSqliteError } from "./sqlite-errors.js";
import { fromMs, setIfPresent, toMs } from "./sqlite-values.js";

interface AuditRow {
  id: string;
  time: number;
  type: string;
  outcome: string;
  user_id: string | null;
  login: string | null;
  api: string | null;
  client_id: string | null;
  client_address: string | null;
  user_agent: string | null;
  request_id: string | null;
  trace_id: string | null;
  span_id: string | null;
  subject: string | null;
  reason: string | null;
  suppressed: string | null;
}

/** Optional record fields and their columns. */
const optional = [
  ["userId", "user_id"],
  ["login", "login"],
  ["api", "api"],
  ["clientId", "client_id"],
  ["clientAddress", "client_address"],
  ["userAgent", "user_agent"],
  ["requestId", "request_id"],
  ["traceId", "trace_id"],
  ["spanId", "span_id"],
  ["subject", "subject"],
  ["reason", "reason"],
] as const;

function toRecord(row: AuditRow): AuditEventRecord {
  const event: AuditEventRecord = { id: row.id, time: fromMs(row.time), type: row.type, outcome: row.outcome };
  for (const [field, column] of optional) setIfPresent(event, field, row[column]);
  if (row.suppressed !== null) {
    const s = JSON.parse(row.suppressed) as Omit<SuppressedEvents, "since"> & { since: number };
    event.suppressed = { ...s, since: fromMs(s.since) };
  }
  return event;
}

/** Whether a batch of events with these outcomes must be committed with an fsync: unless all are refusals. */
export function batchNeedsSync(outcomes: readonly string[]): boolean {
  return !outcomes.every((o) => refusalOutcomes.has(o));
}

interface PendingAppend {
  row: Record<string, unknown>;
  /** AppendOptions.syncedByNextWrite: resolved once committed; its call's next event syncs it. */
  carried: boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * The audit store of the embedded store, and `flush()`, which writes what is waiting (the store
 * calls it before it closes).
 *
 * Appends are group-committed: the events appended during one turn of the event loop are
 * written in one transaction when the turn's I/O has been handled (setImmediate), and each
 * append resolves once that transaction is on disk (the fsync that follows its commit, see
 * sqlite-durability.ts). One commit per turn instead of one per event: a flood of refused
 * logins or sign-ups, each audited, arrives in bursts, and committing each event on its own held
 * the event loop for a quarter of a millisecond each.
 * When the batch fails, each event is written on its own, so one bad event loses no other.
 *
 * A batch of refusals only (outcomes locked, throttled and shed: calls refused before any
 * password was checked, what a flood is made of) is answered without waiting for an fsync, as
 * the login counters are (see cheaply() in sqlite-durability.ts): a power cut may lose the last
 * of them, never a success or a failure.
 *
 * An event appended syncedByNextWrite (seed 000's successful login) is answered once committed:
 * its call's next event (session.started, appended after it: committed in the same batch or a
 * later one) waits for an fsync that starts after that commit, which makes both durable, and a
 * call that fails before it, or whose next event is not stored, waits for `synced()`. Nor does
 * it make its batch wait for an fsync: a batch of such events and refusals is committed alone.
 */
export function sqliteAuditEvents(db: Database.Database): AuditEventStore & { flush(): void } {
  const insert = db.prepare(`INSERT INTO audit_events (id, time, type, outcome, ${optional.map(([, c]) => c).join(", ")}, suppressed)
    VALUES (@id, @time, @type, @outcome, ${optional.map(([f]) => `@${f}`).join(", ")}, @suppressed)`);
  const insertAll = db.transaction((rows: Array<Record<string, unknown>>) => {
    for (const row of rows) insert.run(row);
  });
  const prune = batchDelete(db, "audit_events", "time < ?");
  const { call, cheaply, synced, refusal, writeFailed } = sqliteCalls(db);
  let pending: PendingAppend[] = [];
  const flush = () => {
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    // The connection has failed for good, or waits for its start-up checkpoint (see
    // sqlite-durability.ts): nothing is written.
    const failed = refusal();
    if (failed) return batch.forEach((p) => p.reject(failed));
    const needsSync = batchNeedsSync(batch.filter((p) => !p.carried).map((p) => p.row.outcome as string));
    const written: PendingAppend[] = [];
    try {
      const rows = batch.map((p) => p.row);
      if (needsSync) insertAll(rows);
      else cheaply(() => insertAll(rows));
      written.push(...batch);
    } catch {
      for (const p of batch) {
        try {
          insert.run(p.row);
          written.push(p);
        } catch (e) {
          // Refused for a full disk: counted as a call's write is (readiness, the other workers).
          writeFailed(e);
          p.reject(mapSqliteError(e));
        }
      }
    }
    const waiting = needsSync ? written.filter((p) => !p.carried) : [];
    for (const p of written) if (!needsSync || p.carried) p.resolve();
    if (waiting.length > 0) {
      synced().then(
        () => waiting.forEach((p) => p.resolve()),
        (e: unknown) => waiting.forEach((p) => p.reject(e)),
      );
    }
  };
  return {
    flush,
    append: (event, options) =>
      callLater(() => {
        const row: Record<string, unknown> = { id: event.id, time: toMs(event.time), type: event.type, outcome: event.outcome };
        for (const [field] of optional) row[field] = event[field] ?? null;
        row.suppressed = event.suppressed ? JSON.stringify({ ...event.suppressed, since: toMs(event.suppressed.since) }) : null;
        if (!db.open) return Promise.reject(new StoreUnavailableError("embedded store is closed"));
        return new Promise<void>((resolve, reject) => {
          if (pending.push({ row, carried: options?.syncedByNextWrite === true, resolve, reject }) === 1) setImmediate(flush);
        });
      }),
    // Not through callLater: a call whose deadline has passed still waits for its events.
    synced: () => {
      flush();
      return synced();
    },
    list: (q) =>
      call(() => {
        // Each listing reads its index from the top of its page down, never the events above it
        // (this runs on the event loop). So the page's upper bound is one range on the index:
        // the cursor as a row value (an OR of its two parts is no range: SQLite read every newer
        // event of the index to reach it), or `until` where that is lower, never both (SQLite
        // takes one upper bound only). And with user_id and type both given, the user's index:
        // the events of one user are what that user did, where those of one type can be any
        // number of refused calls of anyone (`+type` keeps SQLite off the type's index, which it
        // took, reading every event of the type to find the user's).
        const where: string[] = [];
        const args: unknown[] = [];
        if (q.userId !== undefined) (where.push("user_id = ?"), args.push(q.userId));
        if (q.type !== undefined) (where.push(q.userId === undefined ? "type = ?" : "+type = ?"), args.push(q.type));
        if (q.since !== undefined) (where.push("time >= ?"), args.push(toMs(q.since)));
        const cursorBelowUntil = q.after !== undefined && (q.until === undefined || q.after.time.getTime() < q.until.getTime());
        if (q.after !== undefined && cursorBelowUntil) (where.push("(time, id) < (?, ?)"), args.push(toMs(q.after.time), q.after.id));
        else if (q.until !== undefined) (where.push("time < ?"), args.push(toMs(q.until)));
        flush(); // a listing sees every event appended before it
        const sql = `SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY time DESC, id DESC LIMIT ?`;
        return (db.prepare(sql).all(...args, q.limit) as AuditRow[]).map(toRecord);
      }),
    deleteOlderThan: (before, limit) =>
      call(() => {
        flush();
        return prune.run(toMs(before), limit).changes;
      }),
  };
}
