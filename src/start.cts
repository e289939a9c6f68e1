// The process entry (`npm start`, and every worker the first one forks under TESSERA_WORKERS):
// lowers the CPU priority of libuv's thread pool, where argon2id hashes, then loads the compiled
// service (main.bundle.cjs, through bundle-loader.cts) and runs it.
//
// Password hashing is deliberately expensive (~50 ms of a core each) and needs no credential, so
// a flood of logins or sign-ups keeps every hasher busy. The hash pool (core/hash-pool.ts)
// bounds how many run at once; this keeps those that run from taking the CPU away from the event
// loop, which answers every other call (token checks, refreshes, health). Linux's nice value is
// per thread: libuv creates its pool's threads on the pool's first use, all at once, before that
// use returns; so the pool is used here first, before anything else can, and the threads that
// appeared are set to TESSERA_HASH_NICE. The event loop and V8's threads keep the process's
// priority. Raising another thread's nice value of one's own process needs no privilege.
//
// Everything else libuv's pool runs (file reads, DNS lookups, WebCrypto signing) shares that
// priority: under contention it waits, as the hashes do; on an idle machine nice changes nothing.
// Where /proc/self/task is missing (not Linux), the pool keeps the process's priority.
import { readdirSync, stat } from "node:fs";
import { setPriority } from "node:os";
import { join } from "node:path";
import { loadBundle, NotABundleError } from "./bundle-loader.cjs";
import { threadPoolSize } from "./thread-pool-size.cjs";

/** What happened, for run.ts to log: the nice value the pool runs at, or why it was not set. */
export interface PoolPriority {
  nice: number;
  applied: boolean;
  reason?: string;
}

const priorityKey = Symbol.for("tessera.threadPoolPriority");
const codeCacheKey = Symbol.for("tessera.codeCache");

function lowerPoolPriority(): PoolPriority {
  const raw = process.env.TESSERA_HASH_NICE;
  const nice = raw === undefined || raw === "" ? 19 : Number(raw);
  // An invalid value is left to the configuration, which refuses it by name.
  if (!Number.isInteger(nice) || nice < 0 || nice > 19) return { nice: 0, applied: false, reason: "TESSERA_HASH_NICE is invalid" };
  if (nice === 0) return { nice: 0, applied: false, reason: "TESSERA_HASH_NICE=0" };
  let before: Set<string>;
  try {
    before = new Set(readdirSync("/proc/self/task"));
  } catch {
    return { nice: 0, applied: false, reason: "no /proc/self/task (not Linux)" };
  }
  stat(".", () => {}); // the pool's first use: its threads exist when this returns
  const pool = readdirSync("/proc/self/task").filter((tid) => !before.has(tid));
  // The pool is created once: if something used it before this ran (a module loaded with
  // --import or --require), its threads have the process's priority, and nothing was lowered.
  if (pool.length === 0) return { nice: 0, applied: false, reason: "libuv's pool existed before start.cjs ran (loaded with --import or --require?)" };
  const size = threadPoolSize(process.env);
  if (pool.length !== size) return { nice: 0, applied: false, reason: `${pool.length} threads started with the pool, not UV_THREADPOOL_SIZE (${size})` };
  try {
    for (const tid of pool) setPriority(Number(tid), nice);
  } catch {
    return { nice: 0, applied: false, reason: "setpriority was refused" };
  }
  return { nice, applied: true };
}

const priority = lowerPoolPriority();
let bundle: ReturnType<typeof loadBundle>;
try {
  bundle = loadBundle(join(__dirname, "main.bundle.cjs"));
} catch (e) {
  if (e instanceof NotABundleError) process.stderr.write(`tessera: ${e.message}\n`);
  else if ((e as NodeJS.ErrnoException).code === "ENOENT") process.stderr.write(`tessera: ${(e as NodeJS.ErrnoException).path} is missing: run npm run build\n`);
  else throw e;
  process.exit(1);
}
const globals = globalThis as Record<symbol, unknown>;
globals[priorityKey] = priority;
globals[codeCacheKey] = bundle.codeCache;
(bundle.exports.run as () => void)();
