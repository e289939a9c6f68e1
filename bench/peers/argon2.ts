// Raw argon2id verify throughput at Tessera's configured parameters (TESSERA_ARGON2_*, read
// through its own config), with its own argon2 binding: the ceiling for password logins.
//   node --import tsx bench/peers/argon2.ts <concurrency> <seconds>
// Prints one JSON line.
import argon2 from "argon2";
import { loadConfig } from "../../src/config.js";

const [conc = "1", secs = "10"] = process.argv.slice(2);
const config = loadConfig({ ...process.env, MONGODB_URI: "" });
const params = { memoryCost: config.argon2MemoryKib, timeCost: config.argon2Iterations, parallelism: config.argon2Parallelism };
const password = "Perf-Bench-Passw0rd!x";
const hash = await argon2.hash(password, { ...params, type: argon2.argon2id });
let n = 0;
let stop = false;
const t0 = performance.now();
const lane = async () => {
  while (!stop) {
    if (!(await argon2.verify(hash, password))) throw new Error("verify failed");
    n++;
  }
};
setTimeout(() => (stop = true), Number(secs) * 1000);
await Promise.all(Array.from({ length: Number(conc) }, lane));
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({
  alg: "argon2id",
  m: params.memoryCost,
  t: params.timeCost,
  p: params.parallelism,
  concurrency: Number(conc),
  threadpool: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
  ops: n,
  seconds: +seconds.toFixed(2),
  ops_per_s: +(n / seconds).toFixed(2),
  ms_per_op: +((seconds * 1000) / n).toFixed(2),
}));
