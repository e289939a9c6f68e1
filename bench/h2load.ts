// h2load (nghttp2's load client, C: it costs the machine far less per request than a Node
// client would) run against a URL, its figures parsed; and the helpers the figure benchmarks
// share: interleaved rounds, medians, a quiet-machine check, one checked call per case.
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync, mkdtempSync, readFileSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const benchSeconds = Number(process.env.BENCH_DUR ?? (process.env.BENCH_QUICK ? 2 : 8));
export const warmSeconds = Number(process.env.BENCH_WARM ?? (process.env.BENCH_QUICK ? 1 : 2));
export const rounds = Number(process.env.BENCH_ROUNDS ?? (process.env.BENCH_QUICK ? 1 : 5));
export const inFlight = Number(process.env.BENCH_C ?? 16);

export interface H2loadCase {
  url: string;
  headers?: string[];
  /** HTTP/1.1 instead of h2c. */
  h1?: boolean;
  /** Request body (POST). */
  body?: Uint8Array | string;
  /** Connections (default inFlight) and streams per connection (default 1). */
  connections?: number;
  streams?: number;
}

export interface H2loadResult {
  rps: number;
  /** CPU time the measured process spent per answered call, ms (when a pid was given). */
  cpuMsPerCall?: number;
  ok: number;
  errors: number;
}

const scratch = mkdtempSync(join(tmpdir(), "tessera-h2load-"));
let bodies = 0;

/** The fields of /proc/<pid>/stat after the pid and the command: [0] is field 3 (the state), [1] the parent's pid. */
export function procStat(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** User + system CPU time of a process (and its reaped children), ms, from /proc. */
export function cpuMs(pid: number): number {
  const f = procStat(pid);
  // fields 14-17 (utime, stime, cutime, cstime), counted from 1 with the pid and comm cut off.
  return ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / clockTicks;
}
const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/**
 * One h2load run (warm-up, then BENCH_DUR seconds). With `pids`, the CPU those processes spent
 * over the measured seconds only (as bench/peers' Sampler takes it: from the end of the warm-up
 * to its end plus `seconds`, scaled to `seconds` when the timers ran late) divided by the calls
 * answered in them, which are all h2load counts: a figure that a busy machine disturbs far less
 * than a rate.
 */
export async function h2load(c: H2loadCase, seconds = benchSeconds, pids: number[] = []): Promise<H2loadResult> {
  const argv = ["-c", String(c.connections ?? inFlight), "-m", String(c.streams ?? 1), "-t", "1", "-D", String(seconds), "--warm-up-time", String(warmSeconds)];
  if (c.h1) argv.push("--h1");
  for (const h of c.headers ?? []) argv.push("-H", h);
  if (c.body !== undefined) {
    const file = join(scratch, `body-${bodies++}`);
    writeFileSync(file, c.body);
    argv.push("-d", file);
  }
  argv.push(c.url);
  const child = spawn("h2load", argv, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const kill = setTimeout(() => child.kill(), (seconds + warmSeconds + 30) * 1000);
  const sleep = (ms: number) => Promise.race([new Promise((r) => setTimeout(r, ms)), exited]);
  const cpuOf = () => pids.reduce((s, p) => s + cpuMs(p), 0);
  let window: { cpu: number; ms: number } | undefined;
  try {
    if (pids.length > 0) {
      await sleep(warmSeconds * 1000);
      const cpu0 = cpuOf();
      const t0 = performance.now();
      await sleep(seconds * 1000);
      window = { cpu: cpuOf() - cpu0, ms: performance.now() - t0 };
    }
    await exited;
  } finally {
    clearTimeout(kill);
  }
  const rq = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const sc = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  if (!rq || !sc) throw new Error(`h2load output not understood (${c.url}):\n${out}${err}`);
  const ok = Number(rq[4]);
  const errors = Number(rq[5]) + Number(rq[6]) + Number(rq[7]) + Number(sc[3]) + Number(sc[4]);
  const total = Number(rq[3]);
  const cpuMsPerCall = window && total > 0 ? ((window.cpu / total) * seconds * 1000) / window.ms : undefined;
  return { rps: ok / seconds, ok, errors, cpuMsPerCall };
}

/** An empty protobuf message in one gRPC frame (flag 0, length 0). */
export const emptyGrpcFrame = new Uint8Array(5);
export const grpcHeaders = ["content-type: application/grpc", "te: trailers"];
export const grpcWebHeaders = ["content-type: application/grpc-web+proto", "x-grpc-web: 1"];

/** One call of a case, checked: HTTP 200 and, over gRPC, grpc-status 0. */
export async function checkCase(name: string, c: H2loadCase): Promise<void> {
  const headers = Object.fromEntries((c.headers ?? []).map((h) => [h.slice(0, h.indexOf(":")).toLowerCase(), h.slice(h.indexOf(":") + 1).trim()]));
  const u = new URL(c.url);
  const method = c.body !== undefined ? "POST" : "GET";
  if (c.h1) {
    const res = await fetch(c.url, { method, headers, body: c.body as string | undefined });
    const text = Buffer.from(await res.arrayBuffer());
    const grpcWebOk = !headers["content-type"]?.startsWith("application/grpc-web") || /grpc-status:\s*0/.test(text.toString("latin1"));
    if (res.status !== 200 || !grpcWebOk) throw new Error(`${name}: ${res.status} ${text.toString("latin1").slice(0, 300)}`);
    return;
  }
  const session = http2.connect(u.origin);
  try {
    await new Promise<void>((resolve, reject) => {
      const req = session.request({ ":method": method, ":path": u.pathname + u.search, ...headers });
      let status = 0;
      let grpcStatus: string | undefined;
      req.on("response", (h) => {
        status = Number(h[":status"]);
        grpcStatus ??= h["grpc-status"] as string | undefined;
      });
      req.on("trailers", (t) => (grpcStatus = t["grpc-status"] as string | undefined));
      req.on("data", () => {});
      req.on("end", () => (status === 200 && (grpcStatus === undefined || grpcStatus === "0") ? resolve() : reject(new Error(`${name}: ${status} grpc-status ${grpcStatus}`))));
      req.on("error", reject);
      req.end(c.body);
    });
  } finally {
    session.close();
  }
}

/** Percent of the machine busy over one second, from /proc/stat. */
async function machineBusyPercent(): Promise<number> {
  const read = () => readFileSync("/proc/stat", "utf8").split("\n")[0].split(/\s+/).slice(1).map(Number);
  const a = read();
  await new Promise((r) => setTimeout(r, 1000));
  const b = read();
  const d = b.map((x, i) => x - a[i]);
  const total = d.reduce((s, x) => s + x, 0);
  const idle = d[3] + d[4];
  return total > 0 ? (100 * (total - idle)) / total : 0;
}

/** Waits (up to a minute) for the machine to be quiet; warns if it never is. */
export async function waitQuiet(maxBusy = Number(process.env.BENCH_QUIET ?? 15)): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const busy = await machineBusyPercent();
    if (busy <= maxBusy) return;
    if (i === 0) process.stdout.write(`  (waiting for a quiet machine: ${busy.toFixed(0)}% busy)\n`);
  }
  process.stdout.write("  WARNING: the machine stayed busy; figures are noisy\n");
}

export function requireH2load(): void {
  try {
    execFileSync("h2load", ["--version"], { stdio: "ignore" });
  } catch {
    console.error("h2load is needed (Debian: apt-get install nghttp2-client)");
    process.exit(2);
  }
}
