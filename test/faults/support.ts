// Shared pieces of the fault suites: Tessera as a real child process (the compiled entry, as
// `npm start` runs it, so a crash is a crash and RSS/heap are the server's own), a keep-alive HTTP
// client with a per-call deadline, and a tally that sorts every answer into "ok",
// "unavailable" (503 / UNAVAILABLE) or a failure.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import { ferretdbBinary } from "../support/ferretdb.js";
import { compiledEntry } from "../support/process.js";
import { freePort } from "../support/net.js";
import { pollLast } from "../support/poll.js";

export const faultClientId = "fault-client";
export const faultAdminToken = "fault-admin-token-0123456789abcdef";

export interface MemorySample {
  at: number;
  rss: number;
  heapUsed: number;
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Whether the process has exited. */
  hasExited(): boolean;
  /** Log lines at warn or error level (the server logs one JSON line per request at info). */
  readonly problems: string[];
  /** Resolves when a stdout log line matches `re` (from now on). */
  logged(re: RegExp): Promise<string>;
  /** Everything written on stderr. */
  stderr(): string;
  /** Memory figures sent every 200 ms by heap-probe.cjs. */
  readonly memory: MemorySample[];
  /** RSS from /proc, MiB (works without the probe). */
  rssMiB(): number;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

/**
 * Starts Tessera from its compiled entry (compiledEntry) with cheap argon2 parameters (override with
 * `env`), on a free port, and resolves once /readyz answers 200 (or, with `waitReady: false`,
 * once /healthz does).
 */
export async function startServerProcess(env: Record<string, string>, opts: { waitReady?: boolean; nodeArgs?: string[] } = {}): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [...(opts.nodeArgs ?? []), "--require", "./test/faults/heap-probe.cjs", await compiledEntry()],
    {
      env: {
        ...process.env,
        MONGODB_URI: "",
        HOST: "127.0.0.1",
        PORT: String(port),
        TESSERA_LOG_LEVEL: "info",
        TESSERA_CLIENT_IDS: faultClientId,
        TESSERA_ADMIN_TOKEN: faultAdminToken,
        TESSERA_ARGON2_MEMORY_KIB: "1024",
        TESSERA_ARGON2_ITERATIONS: "1",
        // One process: the heap probe reports that process's own memory over IPC.
        TESSERA_WORKERS: "1",
        // The load signs many users up from 127.0.0.1: sign-up limits are not under test here.
        TESSERA_SIGNUP_MAX_PER_ADDRESS: "1000000",
        // Hashes at the process's own CPU priority, not lowered: a test's in-flight logins are
        // not left behind other work on a busy machine.
        TESSERA_HASH_NICE: "0",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    },
  );
  let exitedNow = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      exitedNow = true;
      resolve({ code, signal });
    }),
  );
  const problems: string[] = [];
  const memory: MemorySample[] = [];
  let err = "";
  let pending = "";
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  child.stdout!.on("data", (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) {
      if (/"level":"(warn|error)"/.test(line)) problems.push(line);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i].re.test(line)) waiters.splice(i, 1)[0].resolve(line);
      }
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()));
  child.on("message", (m: { probe?: string; at: number; rss: number; heapUsed: number }) => {
    if (m?.probe === "memory") memory.push({ at: m.at, rss: m.rss, heapUsed: m.heapUsed });
  });
  const url = `http://127.0.0.1:${port}`;
  const probe = opts.waitReady === false ? "/healthz" : "/readyz";
  const up = await pollLast(() => fetch(url + probe).then((r) => r.ok, () => false), (ok) => ok || exitedNow, { limitMs: 30000, intervalMs: 100 });
  if (!up && exitedNow) throw new Error(`the server exited during start-up: ${err}`);
  if (!up) {
    child.kill("SIGKILL");
    throw new Error(`the server did not start within 30 s: ${err}`);
  }
  const pid = child.pid!;
  return {
    child,
    url,
    port,
    pid,
    exited,
    hasExited: () => exitedNow,
    problems,
    logged: (re) => new Promise((resolve) => waiters.push({ re, resolve })),
    stderr: () => err,
    memory,
    rssMiB() {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      return m ? Number(m[1]) / 1024 : NaN;
    },
    async stop() {
      if (exitedNow) return;
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** With CI=true a missing FerretDB binary fails the suite; elsewhere the suite is skipped. */
export function requireFerretDb(ctx: Mocha.Context): void {
  if (ferretdbBinary()) return;
  if (process.env.CI === "true") throw new Error("CI=true but the FerretDB binary is missing (FERRETDB_BIN)");
  ctx.skip();
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** Parsed when the answer is JSON. */
  body: any;
  /** Whether the request went over a kept-alive connection (not a fresh one). */
  reused: boolean;
}

/** A transport error of httpRequest; `reused` as in HttpAnswer. */
export type HttpRequestError = Error & { reused?: boolean };

/**
 * One HTTP/1.1 request on a keep-alive agent. Rejects on a transport error or when no complete
 * answer arrives within `timeoutMs` (a hang is a failure, not a slow success).
 */
export function httpRequest(
  baseUrl: string,
  o: { method?: string; path: string; headers?: Record<string, string>; json?: unknown; agent?: http.Agent; timeoutMs?: number },
): Promise<HttpAnswer> {
  const u = new URL(baseUrl);
  const body = o.json === undefined ? undefined : Buffer.from(JSON.stringify(o.json));
  const headers: Record<string, string> = { ...o.headers };
  if (body) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(body.length);
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method: o.method ?? "GET", path: o.path, headers, agent: o.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString();
        let parsed: unknown = text;
        if ((res.headers["content-type"] ?? "").includes("json") && text.length > 0) {
          try {
            parsed = JSON.parse(text);
          } catch {
            // leave the text: the caller records the answer as a failure
          }
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, body: parsed, reused: req.reusedSocket });
      });
      res.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${o.timeoutMs ?? 10000} ms`)), o.timeoutMs ?? 10000);
    req.on("error", (e: HttpRequestError) => {
      clearTimeout(timer);
      e.reused = req.reusedSocket;
      reject(e);
    });
    req.end(body);
  });
}

export type Verdict = "ok" | "unavailable" | "failure";

export interface Tally {
  /** Per operation name: ok / unavailable / failure counts. */
  readonly counts: Map<string, { ok: number; unavailable: number; failure: number }>;
  /** The first failures, described (operation, answer). */
  readonly failures: string[];
  /** Every answer with its time, to find when calls succeed again. */
  readonly timeline: { at: number; verdict: Verdict }[];
  record(op: string, verdict: Verdict, detail?: string): Verdict;
  total(verdict: Verdict): number;
}

export function newTally(): Tally {
  const counts = new Map<string, { ok: number; unavailable: number; failure: number }>();
  const failures: string[] = [];
  const timeline: { at: number; verdict: Verdict }[] = [];
  return {
    counts,
    failures,
    timeline,
    record(op, verdict, detail) {
      let c = counts.get(op);
      if (!c) counts.set(op, (c = { ok: 0, unavailable: 0, failure: 0 }));
      c[verdict]++;
      timeline.push({ at: Date.now(), verdict });
      if (verdict === "failure" && failures.length < 50) failures.push(`${op}: ${detail ?? "?"}`);
      return verdict;
    },
    total(verdict) {
      let n = 0;
      for (const c of counts.values()) n += c[verdict];
      return n;
    },
  };
}

/** A REST answer's verdict: 2xx ok; 503 with a JSON `unavailable` body; anything else a failure. */
export function restVerdict(res: HttpAnswer, okStatus?: number): { verdict: Verdict; detail: string } {
  const detail = `${res.status} ${res.text.slice(0, 160)}`;
  if (okStatus !== undefined ? res.status === okStatus : res.status >= 200 && res.status < 300) return { verdict: "ok", detail };
  if (res.status === 503 && res.body?.code === "unavailable") return { verdict: "unavailable", detail };
  return { verdict: "failure", detail };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const mib = (bytes: number) => bytes / 1024 / 1024;

/** A summary table of the tally, for the test log. */
export function formatTally(t: Tally): string {
  const rows = [...t.counts.entries()].sort(([a], [b]) => a.localeCompare(b));
  return rows.map(([op, c]) => `  ${op.padEnd(28)} ok ${String(c.ok).padStart(6)}  unavailable ${String(c.unavailable).padStart(5)}  failure ${c.failure}`).join("\n");
}
