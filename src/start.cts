// The process entry (`npm start`, and every cluster worker): lowers the CPU priority of libuv's
// thread pool, where argon2id hashes, then runs main.js.
//
// Password hashing is deliberately expensive (~50 ms of a core each) and needs no credential, so
// a flood of logins or sign-ups keeps every hasher busy. The hash pool (core/hash-pool.ts)
// bounds how many run at once; this keeps those that run from taking the CPU away from the event
// loop, which answers every other call (token checks, refreshes, health). Linux's nice value is
// per thread and a thread starts with its creator's: libuv creates its pool on first use, so the
// pool is created here, by a short-lived worker thread that first raises its own nice value to
// TESSERA_HASH_NICE, before anything else can use it (loading main.js, an ES module, already
// does). The event loop and V8's threads keep the process's priority. Raising one's nice value
// needs no privilege.
//
// Everything else libuv's pool runs (file reads, DNS lookups, WebCrypto signing) shares that
// priority: under contention it waits, as the hashes do; on an idle machine nice changes nothing.
// Where /proc/thread-self is missing (not Linux), the pool keeps the process's priority.
import cluster from "node:cluster";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

/** What happened, for main.ts to log: the nice value the pool runs at, or why it was not set. */
export interface PoolPriority {
  nice: number;
  applied: boolean;
  reason?: string;
}

const priorityKey = Symbol.for("tessera.threadPoolPriority");

/** The worker that created the pool; main.js is loaded once it has ended. */
let creator: Worker | undefined;

function lowerPoolPriority(): PoolPriority {
  const raw = process.env.TESSERA_HASH_NICE;
  const nice = raw === undefined || raw === "" ? 19 : Number(raw);
  // An invalid value is left to the configuration, which refuses it by name.
  if (!Number.isInteger(nice) || nice < 0 || nice > 19) return { nice: 0, applied: false, reason: "TESSERA_HASH_NICE is invalid" };
  if (nice === 0) return { nice: 0, applied: false, reason: "TESSERA_HASH_NICE=0" };
  // A cluster's primary hashes nothing (main.ts forks the workers, which come through here).
  const workers = process.env.TESSERA_WORKERS ? Number(process.env.TESSERA_WORKERS) : availableParallelism();
  if (cluster.isPrimary && workers > 1) return { nice: 0, applied: false, reason: "the cluster's primary hashes nothing" };
  try {
    readlinkSync("/proc/thread-self");
  } catch {
    return { nice: 0, applied: false, reason: "no /proc/thread-self (not Linux)" };
  }
  // [0]: 1 once the pool exists, 2 on failure; [1]: the worker's own thread id.
  const signal = new Int32Array(new SharedArrayBuffer(8));
  const worker = (creator = new Worker(
    `const { workerData: [signal, nice] } = require("node:worker_threads");
     const { readlinkSync, stat } = require("node:fs");
     const { setPriority } = require("node:os");
     const done = (v) => { Atomics.store(signal, 0, v); Atomics.notify(signal, 0); };
     try {
       const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
       Atomics.store(signal, 1, tid);
       setPriority(tid, nice);
       stat(".", () => done(1)); // the first use of the pool creates it, from this thread
     } catch {
       done(2);
     }`,
    { eval: true, workerData: [signal, nice] },
  ));
  const waited = Atomics.wait(signal, 0, 0, 5000);
  void worker.terminate(); // it has nothing left to do (the pool outlives it)
  if (waited === "timed-out") return { nice: 0, applied: false, reason: "the pool's creation did not finish within 5 s" };
  if (Atomics.load(signal, 0) !== 1) return { nice: 0, applied: false, reason: "setpriority was refused" };
  // The pool is created once: if something used it before this ran (a module loaded with
  // --import or --require), its threads have the process's priority, and nothing was lowered.
  if (threadsAt(nice, Atomics.load(signal, 1)) === 0) return { nice: 0, applied: false, reason: "libuv's pool existed before start.cjs ran (loaded with --import or --require?)" };
  return { nice, applied: true };
}

/** Threads of this process at nice value `nice`, but `except`. */
function threadsAt(nice: number, except: number): number {
  let n = 0;
  for (const tid of readdirSync("/proc/self/task")) {
    if (Number(tid) === except) continue;
    try {
      // Field 19 of stat is the nice value; the command name before it is in parentheses and may hold spaces.
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]) === nice) n++;
    } catch {
      // the thread has ended
    }
  }
  return n;
}

(globalThis as Record<symbol, unknown>)[priorityKey] = lowerPoolPriority();
// Once the worker's thread is gone (a few milliseconds), so that no thread of the process but the
// pool's runs at the lowered priority.
void (creator ? new Promise((ended) => creator!.once("exit", ended)) : Promise.resolve()).then(() => import("./main.js"));
