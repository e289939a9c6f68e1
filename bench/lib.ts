// Shared benchmark tooling: Tessera in its own process (so the load generator does not share
// its event loop), bounded closed-loop load over gRPC (@grpc/grpc-js) or HTTP/1.1 keep-alive,
// and figures: requests/s, p50/p99 latency, errors, server RSS. Loopback only; every loop is
// bounded in time.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { variables } from "../src/config.js";

export interface BenchServer {
  url: string;
  port: number;
  pid: number;
  /** The server's TESSERA_DATA_DIR (its SQLite store). */
  dataDir: string;
  /** Resident set size of the server process, MiB. */
  rssMiB(): number;
  stop(): Promise<void>;
}

export const benchClientId = "bench-client";
export const benchAdminToken = "bench-admin-token-0123456789abcdef";

/**
 * Starts Tessera as `npm start` does (the compiled `dist/src/start.cjs`: bench/run.ts builds it
 * first) in a child process on a free port with a fresh data directory. `nodeArgs` go before
 * the script (e.g. `--cpu-prof`, which NODE_OPTIONS does not allow). `modules`: tsc's modules as
 * they are (`dist/src/main.js`) instead of the bundle, so that a profile tells them apart.
 * `checkout`: another built checkout to run (bench/ab.ts), instead of this one.
 */
export async function startServerProcess(
  env: Record<string, string> = {},
  opts: { nodeArgs?: string[]; modules?: boolean; checkout?: string } = {},
): Promise<BenchServer> {
  const script = opts.modules ? "dist/src/main.js" : compiledMain(opts.checkout);
  const dataDir = mkdtempSync(join(tmpdir(), "tessera-bench-"));
  const port = await freePort();
  // Request logs stay on (info), as in production; they go to /dev/null.
  const child: ChildProcess = spawn(process.execPath, [...(opts.nodeArgs ?? []), script], {
    cwd: opts.checkout,
    env: {
      ...process.env,
      MONGODB_URI: "",
      PORT: String(port),
      TESSERA_DATA_DIR: dataDir,
      TESSERA_LOG_LEVEL: "info",
      TESSERA_CLIENT_IDS: benchClientId,
      TESSERA_ADMIN_TOKEN: benchAdminToken,
      TESSERA_LOGIN_PROTECTION: "false",
      TESSERA_WORKERS: "1",
      // What package.json's start script sets (test/server/hash-memory.test.ts checks it there).
      GLIBC_TUNABLES: [npmStartTunables, process.env.GLIBC_TUNABLES].filter(Boolean).join(":"),
      ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  let exited = false;
  child.once("exit", () => (exited = true));
  const deadline = Date.now() + 30000;
  for (;;) {
    if (exited) throw new Error("the server exited during start-up");
    if (Date.now() > deadline) throw new Error("the server did not start within 30 s");
    const up = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = child.pid!;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid,
    dataDir,
    rssMiB() {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      return m ? Number(m[1]) / 1024 : NaN;
    },
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The GLIBC_TUNABLES `npm start` puts before the caller's own (README: a hash's memory in huge pages). */
export const npmStartTunables = "glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1";

/** dist/src/start.cjs (the entry `npm start` runs), which `npm run build` writes (bench/run.ts runs it before any benchmark). */
export function compiledMain(checkout = "."): string {
  const main = "dist/src/start.cjs";
  if (!existsSync(join(checkout, main))) throw new Error(`${join(checkout, main)} is missing: run npm run build (npm run bench does)`);
  return main;
}

export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** True when `meta` (import.meta.url) is the script node was asked to run. */
export function isMain(meta: string): boolean {
  return process.argv[1] !== undefined && meta === pathToFileURL(resolve(process.argv[1])).href;
}

export interface LoadOptions {
  concurrency: number;
  durationMs: number;
  warmupMs?: number;
}

export interface LoadResult {
  name: string;
  requests: number;
  errors: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

/** Closed-loop load: `concurrency` workers call `call` back to back for `durationMs`. */
export async function load(name: string, o: LoadOptions, call: () => Promise<unknown>): Promise<LoadResult> {
  const runFor = async (ms: number, record: boolean) => {
    const latencies: number[] = [];
    let errors = 0;
    const end = performance.now() + ms;
    const worker = async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          await call();
          if (record) latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    return { latencies, errors, elapsed: performance.now() - t0 };
  };
  if (o.warmupMs) await runFor(o.warmupMs, false);
  const { latencies, errors, elapsed } = await runFor(o.durationMs, true);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] : NaN);
  return { name, requests: latencies.length, errors, rps: (latencies.length / elapsed) * 1000, p50Ms: pct(0.5), p99Ms: pct(0.99) };
}

/** A unary gRPC call with raw protobuf bytes through @grpc/grpc-js; rejects on any error. */
export function grpcUnary(url: string, path: string, request: Uint8Array, metadata: Record<string, string> = {}): { call: () => Promise<Buffer>; close(): void } {
  const Ctor = grpc.makeGenericClientConstructor(
    { M: { path, requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b } },
    "Bench",
  );
  const client = new Ctor(url.replace(/^https?:\/\//, ""), grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  const buf = Buffer.from(request);
  const m = (client as unknown as { M: Function }).M.bind(client);
  return {
    call: () => new Promise<Buffer>((resolve, reject) => m(buf, md, (err: Error | null, res: Buffer) => (err ? reject(err) : resolve(res)))),
    close: () => client.close(),
  };
}

/** An HTTP/1.1 keep-alive request; rejects unless the status is `expect` (default 2xx). */
/** Signs `email` up on seed 000 (POST /user) and logs in (POST /session): the access token. */
export async function signUpAndLogIn(url: string, email: string, password = "violet-kettle-harbour-29"): Promise<string> {
  const headers = { "content-type": "application/json", "x-koms-clientid": benchClientId };
  await httpCall(url, { method: "POST", path: "/user", headers, body: JSON.stringify({ email, password }) })();
  const login = await httpCall(url, { method: "POST", path: "/session", headers, body: JSON.stringify({ account_type: "traditional", email, password }) })();
  return (JSON.parse(login) as { access_token: string }).access_token;
}

export function httpCall(
  url: string,
  o: { method?: string; path: string; headers?: Record<string, string>; body?: string; expect?: number },
  agent = new http.Agent({ keepAlive: true, maxSockets: 256 }),
): () => Promise<string> {
  const u = new URL(url);
  const body = o.body === undefined ? undefined : Buffer.from(o.body);
  const headers = { ...o.headers, ...(body ? { "content-length": String(body.length) } : {}) };
  return () =>
    new Promise<string>((resolve, reject) => {
      const req = http.request({ host: u.hostname, port: u.port, method: o.method ?? "GET", path: o.path, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const ok = o.expect !== undefined ? res.statusCode === o.expect : res.statusCode! >= 200 && res.statusCode! < 300;
          const text = Buffer.concat(chunks).toString();
          ok ? resolve(text) : reject(new Error(`status ${res.statusCode}: ${text.slice(0, 200)}`));
        });
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
}

export function formatResult(r: LoadResult, baseline?: LoadResult): string {
  const ratio = baseline ? `  ratio ${(r.rps / baseline.rps).toFixed(2)} of ${baseline.name}` : "";
  return `${r.name.padEnd(44)} ${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  errors ${r.errors}${ratio}`;
}

/** The median (the mean of the two middle values of an even count). */
export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Standard durations, shortened with BENCH_QUICK=1. */
export const durations = process.env.BENCH_QUICK ? { durationMs: 2000, warmupMs: 500 } : { durationMs: 8000, warmupMs: 2000 };

/** The default (production, OWASP) argon2id parameters, as the server uses them. */
export const argonParams = {
  memoryCost: variables.argon2MemoryKib.fallback,
  timeCost: variables.argon2Iterations.fallback,
  parallelism: variables.argon2Parallelism.fallback,
};

/**
 * Server environment with login protection on and the argon2 parameters above. The benchmarks
 * log one user in `argonConcurrency` times at once, from one address: with the default limit
 * (5), attempts beyond the fifth in flight would be refused (429), so the limit is raised; the
 * protection's work (a reservation and a release per login) is still done.
 */
export const loginBenchEnv: Record<string, string> = {
  TESSERA_LOGIN_PROTECTION: "true",
  TESSERA_LOGIN_MAX_FAILURES: "1000",
  TESSERA_ARGON2_MEMORY_KIB: String(argonParams.memoryCost),
  TESSERA_ARGON2_ITERATIONS: String(argonParams.timeCost),
  TESSERA_ARGON2_PARALLELISM: String(argonParams.parallelism),
  // BENCH_CHEAP_HASH=1: argon2id at its smallest (1 MiB, 1 pass), so that the event loop, not the
  // hash, bounds the login rate: for measuring what a login costs beside its hash. BENCH_CHEAP_ITER
  // (with it) sets the passes: a slow hash that touches 1 MiB only, to tell what the login rate
  // costs the event loop from what argon2id's memory traffic does.
  ...(process.env.BENCH_CHEAP_HASH && { TESSERA_ARGON2_MEMORY_KIB: "1024", TESSERA_ARGON2_ITERATIONS: process.env.BENCH_CHEAP_ITER ?? "1" }),
};

/**
 * argon2 runs on libuv's thread pool (4 threads). Raw hashing and login RPCs are measured at the
 * same concurrency, high enough (2 per thread) that the pool stays busy while a login request is
 * on the wire or in the store: the figures are throughput at saturation for both.
 */
export const argonConcurrency = 8;
