// What the audit trail costs a login: seed 004 password logins (GET /jwt/token, argon2id at the
// production cost, login protection on) against two servers, one with TESSERA_AUDIT=on (every
// login writes its event to the store and the log) and one with off, in interleaved rounds.
// Printed: each side's median throughput and the median of the per-round ratios on/off.
// Run: `npm run bench -- audit` (BENCH_QUICK=1 for short rounds).
import { argonConcurrency, httpCall, load, loginBenchEnv, median, startServerProcess } from "./lib.js";

const quick = Boolean(process.env.BENCH_QUICK);
const rounds = quick ? 3 : 11;
const roundMs = quick ? 1000 : 4000;
const user = "bench-audit";
const pass = "violet-kettle-harbour-29";

const on = await startServerProcess({ ...loginBenchEnv, TESSERA_AUDIT: "on" });
const off = await startServerProcess({ ...loginBenchEnv, TESSERA_AUDIT: "off" });
try {
  const sides = [
    { name: "on", server: on },
    { name: "off", server: off },
  ].map((s) => ({ ...s, login: httpCall(s.server.url, { path: `/jwt/token?${new URLSearchParams({ user, pass })}` }) }));
  for (const s of sides) {
    await httpCall(s.server.url, { method: "POST", path: "/jwt/user", headers: { "content-type": "application/json" }, body: JSON.stringify({ user, pass }) })();
    await load("warm-up", { concurrency: argonConcurrency, durationMs: roundMs / 2 }, s.login);
  }
  const rps: Record<string, number[]> = { on: [], off: [] };
  const ratios: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    const got: Record<string, number> = {};
    for (const s of order) {
      const r = await load(`login, audit ${s.name}`, { concurrency: argonConcurrency, durationMs: roundMs }, s.login);
      if (r.errors > 0) throw new Error(`${r.errors} errors with audit ${s.name}`);
      got[s.name] = r.rps;
      rps[s.name]!.push(r.rps);
    }
    ratios.push(got.on! / got.off!);
  }
  console.log(
    `password login (GET /jwt/token)  audit on ${median(rps.on!).toFixed(1)} logins/s  off ${median(rps.off!).toFixed(1)} logins/s  ` +
      `median ratio on/off ${median(ratios).toFixed(3)} (${rounds} rounds of ${roundMs} ms)`,
  );
} finally {
  await Promise.all([on.stop(), off.stop()]);
}
