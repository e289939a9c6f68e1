// What the embedded store's read of a token check costs (SessionStore.findWithUser), and what each
// part of it costs: the store call as the service makes it, then its statement and variants of it
// on a connection opened as the store opens its own, and the other statements a call runs. Each
// figure is the median of BENCH_REPS runs of BENCH_CALLS calls, in µs a call; "hot" runs the
// calls back to back, "cold" walks COLD_MB (default 4) of memory before each call (as a loaded server
// runs its other work between two checks: HTTP/2, the JWT's verification), each call timed alone.
// GC: scavenges and their time per 1000 calls (hot runs).
// The store's figure runs this checkout's sqlite-sessions.ts; the statements are the same on any.
// Run: npx tsx bench/store-read.ts   (BENCH_USERS, default 5000, with 3 sessions each; BENCH_CALLS,
// default 50000; BENCH_REPS, default 5; BENCH_ONLY, a substring of one figure's name). Not part of
// `npm run bench`: it starts no server, and its figures move by a fifth between runs on a busy machine.
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PerformanceObserver } from "node:perf_hooks";
import Database from "better-sqlite3";
import { openSqliteStore, SQLITE_FILE_NAME, BUSY_TIMEOUT_MS } from "../src/store/sqlite/sqlite-store.js";
import { userStandingColumns } from "../src/store/sqlite/sqlite-users.js";

const users = Number(process.env.BENCH_USERS ?? 5000);
const calls = Number(process.env.BENCH_CALLS ?? 50000);
const reps = Number(process.env.BENCH_REPS ?? 5);
const coldMb = Number(process.env.COLD_MB ?? 4);
const only = process.env.BENCH_ONLY;

const dir = mkdtempSync(join(tmpdir(), "tessera-store-read-"));
const store = await openSqliteStore(dir);
const file = join(dir, SQLITE_FILE_NAME);
// A second connection, opened as openSqliteStore opens its own.
const db = new Database(file);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
db.pragma("foreign_keys = ON");

// Realistic rows: users with an argon2id hash, e-mails as JSON; three sessions each.
const hash = "$argon2id$v=19$m=19456,t=2,p=1$" + "c2FsdHNhbHRzYWx0c2FsdA" + "$" + "h".repeat(43);
const now = Date.now();
const fill = db.transaction(() => {
  const u = db.prepare(`INSERT INTO users (id, login, login_key, emails, password_hash, active, created_at, password_changed_at, version, credential_epoch)
    VALUES (?, ?, ?, ?, ?, 1, ?, ?, 0, 0)`);
  const s = db.prepare(`INSERT INTO sessions (id, user_id, client_id, access_jti, created_at, expires_at, credential_epoch) VALUES (?, ?, ?, ?, ?, ?, 0)`);
  for (let i = 0; i < users; i++) {
    const id = randomUUID();
    const login = `user${i}@example.com`;
    u.run(id, login, login, JSON.stringify([login]), hash, now, now);
    for (let k = 0; k < 3; k++) s.run(randomUUID(), id, "bench-client", randomUUID(), now, now + 30 * 86400_000);
  }
});
fill();
db.pragma("wal_checkpoint(TRUNCATE)");

// The checked user and session, made through the store as a sign-up and a login make them (in the log).
const user = await store.users.create({ id: randomUUID(), login: "ab@example.com", loginKey: "ab@example.com", emails: ["ab@example.com"], passwordHash: hash, createdAt: new Date() });
const sessionId = randomUUID();
const created = await store.sessions.createThenSync(
  { id: sessionId, userId: user.id, clientId: "bench-client", accessJti: randomUUID(), createdAt: new Date(), expiresAt: new Date(Date.now() + 86400_000), credentialEpoch: 0 },
  { hash: randomUUID(), sessionId, createdAt: new Date(), expiresAt: new Date(Date.now() + 86400_000) },
);
await created.durable();

let gcCount = 0;
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcCount++;
    gcMs += e.duration;
  }
}).observe({ entryTypes: ["gc"] });

const cold = new Float64Array((coldMb * 1024 * 1024) / 8);
let sink = 0;
function thrash(): void {
  for (let i = 0; i < cold.length; i += 8) sink += cold[i]!++;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function time(fn: () => unknown, n: number, isAsync = false): Promise<number> {
  const t0 = process.hrtime.bigint();
  if (isAsync) for (let i = 0; i < n; i++) await fn();
  else for (let i = 0; i < n; i++) sink += fn() === undefined ? 0 : 1;
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

/** Each call timed alone, after the walk of `cold` (not timed): µs a call. */
async function timeCold(fn: () => unknown, n: number, isAsync = false): Promise<number> {
  let total = 0n;
  for (let i = 0; i < n; i++) {
    thrash();
    const t0 = process.hrtime.bigint();
    if (isAsync) await fn();
    else sink += fn() === undefined ? 0 : 1;
    total += process.hrtime.bigint() - t0;
  }
  return Number(total) / 1000 / n;
}

const coldCalls = Math.max(200, Math.floor(calls / 50));
// The timer's own cost, taken off the cold figures.
const timerUs = median(await Promise.all([0, 1, 2].map(() => timeCold(() => 1, coldCalls))));

async function measure(name: string, fn: () => unknown, isAsync = false): Promise<void> {
  if (only !== undefined && !name.includes(only)) return;
  await time(fn, Math.min(calls, 5000), isAsync);
  const hot: number[] = [];
  const gcBefore = gcCount;
  const gcMsBefore = gcMs;
  for (let r = 0; r < reps; r++) hot.push(await time(fn, calls, isAsync));
  await new Promise((r) => setTimeout(r, 50));
  const gcPer1000 = ((gcCount - gcBefore) * 1000) / (calls * reps);
  const gcMsPer1000 = ((gcMs - gcMsBefore) * 1000) / (calls * reps);
  const colds: number[] = [];
  for (let r = 0; r < reps; r++) colds.push((await timeCold(fn, coldCalls, isAsync)) - timerUs);
  console.log(`${name.padEnd(58)} hot ${median(hot).toFixed(2).padStart(6)} µs   cold ${median(colds).toFixed(2).padStart(6)} µs   GC ${gcPer1000.toFixed(2)} scavenges, ${(gcMsPer1000 * 1000).toFixed(0)} µs /1000 calls`);
}

const userId = user.id;
const sel = (cols: string) => `SELECT ${cols} FROM sessions s LEFT JOIN users u ON u.id = @userId WHERE s.id = @id`;
const selPos = (cols: string) => `SELECT ${cols} FROM sessions s LEFT JOIN users u ON u.id = ? WHERE s.id = ?`;
const needed = "s.id, s.user_id, s.client_id, s.access_jti, s.created_at, s.expires_at, s.ended_at, s.credential_epoch, u.active, u.credential_epoch, u.password_changed_at";
const withUser = db.prepare(sel(`s.*, ${userStandingColumns}`));
const namedRaw = db.prepare(sel(needed)).raw();
const narrowRaw = db.prepare(selPos(needed)).raw();
const starBoth = db.prepare(sel("s.*, u.*"));
const sessionOnly = db.prepare("SELECT * FROM sessions WHERE id = ?");
const userOnly = db.prepare("SELECT * FROM users WHERE id = ?");
const oneColumn = db.prepare("SELECT s.access_jti FROM sessions s WHERE s.id = ?").pluck();
const totalChanges = db.prepare("SELECT total_changes()").pluck();
const dataVersion = db.prepare("PRAGMA data_version").pluck();
const selectOne = db.prepare("SELECT 1").pluck();
const inTransaction = db.transaction(() => withUser.get({ id: sessionId, userId }));

console.log(`embedded store, ${users} users, ${users * 3} sessions; ${calls} calls x ${reps} (hot), ${coldCalls} x ${reps} each after a ${coldMb} MB walk (cold, each call timed alone, the timer's ${timerUs.toFixed(2)} µs taken off)`);
console.log(`plan: ${(db.prepare(`EXPLAIN QUERY PLAN ${sel(`s.*, ${userStandingColumns}`)}`).all({ id: sessionId, userId }) as Array<{ detail: string }>).map((r) => r.detail).join("; ")}`);
await measure("store: sessions.findWithUser (awaited)", () => store.sessions.findWithUser(sessionId, userId), true);
await measure("store: sessions.findById (awaited)", () => store.sessions.findById(sessionId), true);
await measure("findWithUser's statement: s.*, user standing (named)", () => withUser.get({ id: sessionId, userId }));
await measure("the same inside BEGIN..COMMIT (db.transaction)", () => inTransaction());
await measure("s.*, u.* (every column of both)", () => starBoth.get({ id: sessionId, userId }));
await measure("the same 11 columns, raw() (named)", () => namedRaw.get({ id: sessionId, userId }));
await measure("the same 11 columns, raw(), positional", () => narrowRaw.get(userId, sessionId));
await measure("two statements: SELECT * sessions, SELECT * users", () => [sessionOnly.get(sessionId), userOnly.get(userId)]);
// What findWithUser makes of the row: the session's record and the user's standing.
const record = (r: unknown[]) => ({
  session: { id: r[0], userId: r[1], clientId: r[2], accessJti: r[3], createdAt: new Date(r[4] as number), expiresAt: new Date(r[5] as number), credentialEpoch: r[7] },
  user: r[8] === null ? null : { id: userId, active: r[8] === 1, credentialEpoch: r[9], passwordChangedAt: new Date(r[10] as number) },
});
await measure("the same, raw(), positional, + record and standing", () => record(narrowRaw.get(userId, sessionId) as unknown[]));
await measure("one column of the session, pluck()", () => oneColumn.get(sessionId));
await measure("SELECT total_changes() (call() runs 2 a call)", () => totalChanges.get());
await measure("PRAGMA data_version (a read transaction)", () => dataVersion.get());
await measure("SELECT 1 (a statement, no transaction)", () => selectOne.get());
// What a cache of rows validated by data_version and total_changes() would cost on a hit.
const cache = new Map<string, unknown[]>([[sessionId, narrowRaw.get(userId, sessionId) as unknown[]]]);
const cachedVersion = dataVersion.get();
const cachedChanges = totalChanges.get();
await measure("cache hit: data_version + total_changes + Map + record", () => {
  if (dataVersion.get() !== cachedVersion || totalChanges.get() !== cachedChanges) throw new Error("moved");
  return record(cache.get(sessionId)!);
});
if (sink === 0.5) console.log(sink);
db.close();
await store.close();
rmSync(dir, { recursive: true, force: true });
