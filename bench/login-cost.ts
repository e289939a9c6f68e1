// Where a password login's CPU goes, per thread of the server: its event loop (everything but the
// hash) and libuv's pool (the argon2id verify, the fsyncs). Logs one user in from `argonConcurrency`
// clients for a while at the production parameters and reads each thread's CPU from /proc, so the
// figure holds whatever else the machine runs. Prints CPU per login by thread kind.
// Run: `npm run bench -- login-cost` (BENCH_DURATION_MS to change the 10 s window, BENCH_WARMUP_MS
// the 2 s warm-up; BENCH_CHECKOUT to run another build's dist/, e.g. a worktree of an earlier
// commit; BENCH_CHEAP_HASH=1, lib.ts).
import http from "node:http";
import { readdirSync, readFileSync } from "node:fs";
import { argonConcurrency, benchClientId, httpCall, loginBenchEnv, startServerProcess } from "./lib.js";

const email = "cost@example.com";
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

const server = await startServerProcess(loginBenchEnv, { checkout: process.env.BENCH_CHECKOUT });
const agent = new http.Agent({ keepAlive: true, maxSockets: argonConcurrency });
try {
  const headers = { "content-type": "application/json", "x-koms-clientid": benchClientId };
  await httpCall(server.url, { method: "POST", path: "/user", headers, body: JSON.stringify({ email, password }), expect: 201 })();
  const login = httpCall(server.url, { method: "POST", path: "/session", headers, body: JSON.stringify({ account_type: "traditional", email, password }), expect: 200 }, agent);
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
  const t0 = process.hrtime.bigint();
  const n = await run(durationMs);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = threadCpu(server.pid);
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
  console.log(`${n} logins in ${seconds.toFixed(1)} s: ${(n / seconds).toFixed(1)}/s`);
  console.log(
    told
      ? `CPU per login: event loop ${f(kinds.loop)}, pool ${f(kinds.pool)}, other threads ${f(kinds.other)}`
      : `CPU per login: event loop ${f(kinds.loop)}, other threads (libuv's pool, unnamed in this Node and at the process's priority, and V8's) ${f({ ms: kinds.pool.ms + kinds.other.ms, sysMs: kinds.pool.sysMs + kinds.other.sysMs, minflt: kinds.pool.minflt + kinds.other.minflt })}`,
  );
} finally {
  agent.destroy();
  await server.stop();
}
