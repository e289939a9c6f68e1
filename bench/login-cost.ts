// Where a password login's CPU goes, per thread of the server: its event loop (everything but the
// hash) and libuv's pool (the argon2id verify, the fsyncs). Logs one user in from `argonConcurrency`
// clients for a while at the production parameters and reads each thread's CPU from /proc, so the
// figure holds whatever else the machine runs. Prints CPU per login by thread kind.
// Run: `npm run bench -- login-cost` (BENCH_DURATION_MS to change the 10 s window, BENCH_WARMUP_MS
// the 2 s warm-up; BENCH_CHECKOUT to run another build's dist/, e.g. a worktree of an earlier
// commit; BENCH_CHEAP_HASH=1, lib.ts; BENCH_LOGIN=jwt-token for seed 004's GET /jwt/token,
// BENCH_LOGIN=user-token for seed 002's POST /auth/login (HTTP Basic), instead of seed 000's
// POST /session). One user logs in throughout: past its first 500 logins, each seed 000 or 002
// login is at TESSERA_MAX_SESSIONS_PER_USER (TESSERA_MAX_USER_TOKENS_PER_USER) and ends its oldest.
import http from "node:http";
import { readdirSync, readFileSync } from "node:fs";
import { argonConcurrency, benchClientId, httpCall, loginBenchEnv, startServerProcess } from "./lib.js";

const email = "cost@example.com";
const endpoint = process.env.BENCH_LOGIN ?? "session";
if (endpoint !== "session" && endpoint !== "jwt-token" && endpoint !== "user-token") throw new Error(`BENCH_LOGIN must be session, jwt-token or user-token, not ${endpoint}`);
const password = "violet-kettle-harbour-29";
const durationMs = Number(process.env.BENCH_DURATION_MS ?? 10000);
// V8 is still optimizing the login path's functions minutes into a run (a few every hundred
// logins): the shorter the warm-up, the more of that compilation (V8's threads) and of unoptimized
// code (the event loop) a login is charged with.
const warmupMs = Number(process.env.BENCH_WARMUP_MS ?? 2000);
const tick = 1000 / 100; // ms per clock tick (USER_HZ)

interface ThreadStat {
  name: string;
  /** user + system CPU, ms */
  ms: number;
  /** system CPU, ms */
  sysMs: number;
  /** minor page faults */
  minflt: number;
  nice: number;
}

/** CPU ms of each thread of `pid`, by thread id. */
function threadCpu(pid: number): Map<number, ThreadStat> {
  const out = new Map<number, ThreadStat>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(tid), {
        name,
        ms: (Number(fields[11]) + Number(fields[12])) * tick,
        sysMs: Number(fields[12]) * tick,
        minflt: Number(fields[7]),
        nice: Number(fields[16]),
      });
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** The context switches of the event loop (the process's first thread) so far. */
function loopSwitches(pid: number): { voluntary: number; involuntary: number } {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, "utf8");
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
  return { voluntary: field("voluntary_ctxt_switches"), involuntary: field("nonvoluntary_ctxt_switches") };
}

const server = await startServerProcess(loginBenchEnv, { checkout: process.env.BENCH_CHECKOUT });
const agent = new http.Agent({ keepAlive: true, maxSockets: argonConcurrency });
try {
  const headers = { "content-type": "application/json", "x-koms-clientid": benchClientId };
  let login: () => Promise<string>;
  if (endpoint === "session") {
    await httpCall(server.url, { method: "POST", path: "/user", headers, body: JSON.stringify({ email, password }), expect: 201 })();
    login = httpCall(server.url, { method: "POST", path: "/session", headers, body: JSON.stringify({ account_type: "traditional", email, password }), expect: 200 }, agent);
  } else if (endpoint === "user-token") {
    await httpCall(server.url, { method: "POST", path: "/user", headers, body: JSON.stringify({ email, password }), expect: 201 })();
    const basic = `Basic ${Buffer.from(`${email}:${password}`).toString("base64")}`;
    login = httpCall(server.url, { method: "POST", path: "/auth/login", headers: { authorization: basic }, expect: 200 }, agent);
  } else {
    await httpCall(server.url, { method: "POST", path: "/jwt/user", headers: { "content-type": "application/json" }, body: JSON.stringify({ user: email, pass: password }) })();
    login = httpCall(server.url, { path: `/jwt/token?${new URLSearchParams({ user: email, pass: password })}`, expect: 200 }, agent);
  }
  const run = async (ms: number) => {
    let n = 0;
    const end = Date.now() + ms;
    await Promise.all(
      Array.from({ length: argonConcurrency }, async () => {
        while (Date.now() < end) {
          await login();
          n++;
        }
      }),
    );
    return n;
  };
  await run(warmupMs);
  const before = threadCpu(server.pid);
  const switchesBefore = loopSwitches(server.pid);
  const t0 = process.hrtime.bigint();
  const n = await run(durationMs);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = threadCpu(server.pid);
  const switchesAfter = loopSwitches(server.pid);
  // By thread kind: the event loop (the process's first thread); libuv's pool (named
  // "libuv-worker" by some builds of Node; else told by its nice value, which start.cjs raised,
  // TESSERA_HASH_NICE); the other threads (V8's platform threads: GC, compilers).
  const named = [...after.values()].some((a) => a.name.startsWith("libuv-worker"));
  const kinds = { loop: { ms: 0, sysMs: 0, minflt: 0 }, pool: { ms: 0, sysMs: 0, minflt: 0 }, other: { ms: 0, sysMs: 0, minflt: 0 } };
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { ms: 0, sysMs: 0, minflt: 0 };
    const kind = tid === server.pid ? kinds.loop : (named ? a.name.startsWith("libuv-worker") : a.nice > 0) ? kinds.pool : kinds.other;
    kind.ms += a.ms - b.ms;
    kind.sysMs += a.sysMs - b.sysMs;
    kind.minflt += a.minflt - b.minflt;
  }
  const told = named || [...after.values()].some((a) => a.nice > 0);
  const f = (k: { ms: number; sysMs: number; minflt: number }) => `${(k.ms / n).toFixed(2)} ms (sys ${(k.sysMs / n).toFixed(2)}, ${(k.minflt / n).toFixed(0)} faults)`;
  console.log(`${endpoint}: ${n} logins in ${seconds.toFixed(1)} s: ${(n / seconds).toFixed(1)}/s`);
  console.log(
    told
      ? `CPU per login: event loop ${f(kinds.loop)}, pool ${f(kinds.pool)}, other threads ${f(kinds.other)}`
      : `CPU per login: event loop ${f(kinds.loop)}, other threads (libuv's pool, unnamed in this Node and at the process's priority, and V8's) ${f({ ms: kinds.pool.ms + kinds.other.ms, sysMs: kinds.pool.sysMs + kinds.other.sysMs, minflt: kinds.pool.minflt + kinds.other.minflt })}`,
  );
  // How often the event loop went to sleep (voluntary: it waited, for the next request, a hash, an
  // fsync) and was preempted: each sleep and wake costs it CPU too, the more for cold caches.
  console.log(
    `event loop switches per login: voluntary ${((switchesAfter.voluntary - switchesBefore.voluntary) / n).toFixed(2)}, involuntary ${((switchesAfter.involuntary - switchesBefore.involuntary) / n).toFixed(2)}`,
  );
} finally {
  agent.destroy();
  await server.stop();
}
