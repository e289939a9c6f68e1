import type Database from "better-sqlite3";
import type { AuditEventRecord, AuditEventStore } from "../ports.js";
import { call } from "./sqlite-errors.js";
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
  return event;
}

export function sqliteAuditEvents(db: Database.Database): AuditEventStore {
  const insert = db.prepare(`INSERT INTO audit_events (id, time, type, outcome, ${optional.map(([, c]) => c).join(", ")})
    VALUES (@id, @time, @type, @outcome, ${optional.map(([f]) => `@${f}`).join(", ")})`);
  const prune = db.prepare("DELETE FROM audit_events WHERE time < ?");
  return {
    append: (event) =>
      call(() => {
        const row: Record<string, unknown> = { id: event.id, time: toMs(event.time), type: event.type, outcome: event.outcome };
        for (const [field] of optional) row[field] = event[field] ?? null;
        insert.run(row);
      }),
    list: (q) =>
      call(() => {
        const where: string[] = [];
        const args: unknown[] = [];
        if (q.userId !== undefined) (where.push("user_id = ?"), args.push(q.userId));
        if (q.type !== undefined) (where.push("type = ?"), args.push(q.type));
        if (q.since !== undefined) (where.push("time >= ?"), args.push(toMs(q.since)));
        if (q.until !== undefined) (where.push("time < ?"), args.push(toMs(q.until)));
        if (q.after !== undefined) {
          where.push("(time < ? OR (time = ? AND id < ?))");
          args.push(toMs(q.after.time), toMs(q.after.time), q.after.id);
        }
        const sql = `SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY time DESC, id DESC LIMIT ?`;
        return (db.prepare(sql).all(...args, q.limit) as AuditRow[]).map(toRecord);
      }),
    deleteOlderThan: (before) => call(() => prune.run(toMs(before)).changes),
  };
}
