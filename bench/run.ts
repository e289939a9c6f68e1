// `npm run bench`: every benchmark in turn, each starting its own server, each printing its
// figures and its ratios against baselines measured in the same run. `npm run bench -- NAME...`
// runs only those (floor, profile, baseline, transcode, session, login-timing, login-cost, api-token, jwt, load, verify,
// flood, burst, verifier, metrics, audit, h2-compat; `peers PHASE` for bench/peers; `ab DIR_A DIR_B` for two
// builds side by side). BENCH_QUICK=1 shortens every run.
// Benchmarks never fail on a time: they print.
import { spawnSync } from "node:child_process";

// `npm run bench -- peers PHASE [--rounds N]`: side by side with Supabase Auth, or Tessera scaled
// out (bench/peers/README.md); a Python driver around h2load and a Go load client.
if (process.argv[2] === "peers") {
  if (spawnSync("npm", ["run", "build", "--silent"], { stdio: "inherit" }).status !== 0) process.exit(1);
  const r = spawnSync("python3", ["bench/peers/bench.py", ...process.argv.slice(3)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}

// `npm run bench -- ab DIR_A DIR_B`: two builds side by side (bench/ab.ts); each side is built by
// whoever made it, so nothing is built here.
if (process.argv[2] === "ab") {
  const r = spawnSync(process.execPath, ["--import", "tsx", "bench/ab.ts", ...process.argv.slice(3)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}

const all = ["floor", "profile", "baseline", "transcode", "session", "login-timing", "login-cost", "api-token", "jwt", "load", "verify", "flood", "burst", "verifier", "metrics", "audit", "h2-compat"];
const chosen = process.argv.slice(2).length > 0 ? process.argv.slice(2) : all;
for (const name of chosen) {
  if (!all.includes(name)) {
    console.error(`unknown benchmark "${name}"; choose from ${all.join(", ")}`);
    process.exit(2);
  }
}
// The benchmarks run Tessera as `npm start` does: compiled.
if (spawnSync("npm", ["run", "build", "--silent"], { stdio: "inherit" }).status !== 0) process.exit(1);
let failed = 0;
for (const name of chosen) {
  console.log(`\n=== bench/${name}.ts ===`);
  const r = spawnSync(process.execPath, ["--import", "tsx", `bench/${name}.ts`], { stdio: "inherit" });
  if (r.status !== 0) {
    failed++;
    console.log(`bench/${name}.ts exited with ${r.status ?? r.signal}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
