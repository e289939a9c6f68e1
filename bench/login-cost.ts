// Where a password login's CPU goes, per thread of the server: its event loop (everything but the
// hash) and libuv's pool (the argon2id verify, the fsyncs). Logs one user in from `argonConcurrency`
// clients for a while at the production parameters and reads each thread's CPU from /proc, so the
// figure holds whatever else the machine runs. Prints CPU per login by thread kind.
// Run: `npm run bench -- login-cost` (BENCH_DURATION_MS to change the 10 s window; BENCH_CHECKOUT
// to run another build's dist/, e.g. a worktree of an earlier commit; BENCH_CHEAP_HASH=1, lib.ts).
import http from "node:http";
import { readdirSync, readFileSync } from "node:fs";
import { argonConcurrency, benchClientId, httpCall, loginBenchEnv, startServerProcess } from "./lib.js";

const email = "cost@example.com";
const password = "violet-kettle-harbour-29";
const durationMs = Number(process.env.BENCH_DURATION_MS ?? 10000);
const tick = 1000 / 100; // ms per clock tick (USER_HZ)

/** CPU ms of each thread of `pid`, by thread id. */
function threadCpu(pid: number): Map<number, { name: string; ms: number }> {
  const out = new Map<number, { name: string; ms: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(tid), { name, ms: (Number(fields[11]) + Number(fields[12])) * tick });
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
  await run(2000); // warm-up
  const before = threadCpu(server.pid);
  const t0 = process.hrtime.bigint();
  const n = await run(durationMs);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = threadCpu(server.pid);
  let loop = 0;
  let pool = 0;
  let other = 0;
  for (const [tid, a] of after) {
    const used = a.ms - (before.get(tid)?.ms ?? 0);
    if (tid === server.pid) loop += used;
    else if (a.name.startsWith("libuv-worker")) pool += used;
    else other += used;
  }
  console.log(`${n} logins in ${seconds.toFixed(1)} s: ${(n / seconds).toFixed(1)}/s`);
  // Some builds of Node name libuv's threads "libuv-worker"; others leave every thread "node", and
  // the pool's time is then among the other threads'.
  const named = [...after.values()].some((a) => a.name.startsWith("libuv-worker"));
  console.log(
    named
      ? `CPU per login: event loop ${(loop / n).toFixed(2)} ms, pool ${(pool / n).toFixed(2)} ms, other threads ${(other / n).toFixed(2)} ms`
      : `CPU per login: event loop ${(loop / n).toFixed(2)} ms, other threads (libuv's pool, unnamed in this Node, and V8's) ${(other / n).toFixed(2)} ms`,
  );
} finally {
  agent.destroy();
  await server.stop();
}
