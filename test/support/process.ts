// Tessera as a process, started the two ways it runs: from the sources (`tsx src/main.ts`, as
// `npm run dev`) and compiled (`node dist/src/start.cjs`, as `npm start`, from a build of the
// current sources made once per test run: `npm run build`'s two steps into a scratch directory).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { projectRoot } from "../../src/project-files.js";
import { bearer } from "./clients.js";
import { pollUntil } from "./poll.js";
import { testAdminToken } from "./server.js";

const run = promisify(execFile);

export interface ServiceProcess {
  child: ChildProcess;
  port: number;
  /** The JSON lines written so far on stdout. */
  lines: () => Array<Record<string, unknown>>;
  /** What the process tree has written on stderr so far. */
  stderr: () => string;
  /**
   * The first worker's exit code, once it has exited and its stdout and stderr have ended: every
   * process of the tree has exited (the others share both pipes), and `lines()` and `stderr()`
   * hold all they wrote.
   */
  exited: Promise<number | null>;
}

let built: Promise<string> | undefined;

/**
 * The compiled entry, `<build>/dist/src/start.cjs`, built once per test run from the current
 * sources exactly as `npm run build` builds dist/ (tsc, then scripts/bundle.mjs). The build lies
 * inside the project, so that it finds package.json and node_modules as dist/ does. tsc emits
 * without type-checking (`--noCheck`): with isolatedModules each file's JavaScript is the same
 * either way, and the type check is `npm test`'s own `tsc -p .`, over these sources and more.
 */
export function compiledEntry(): Promise<string> {
  built ??= (async () => {
    const dir = mkdtempSync(join(projectRoot, ".test-build-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    const dist = join(dir, "dist");
    await run(join(projectRoot, "node_modules/.bin/tsc"), ["-p", "tsconfig.build.json", "--noCheck", "--outDir", dist], { cwd: projectRoot });
    await run(process.execPath, ["scripts/bundle.mjs", dist], { cwd: projectRoot });
    return join(dist, "src", "start.cjs");
  })();
  return built;
}

/**
 * A mocha `before` hook that builds the compiled entry under a time limit of its own: on a loaded
 * machine the build alone took over a minute, past the limit of the first test to start Tessera.
 */
export async function buildCompiledEntry(this: Mocha.Context): Promise<void> {
  this.timeout(300_000);
  await compiledEntry();
}

/** How to start Tessera: from the sources, or compiled (see compiledEntry). */
export type Entry = "sources" | "compiled";

export async function entryArgv(entry: Entry): Promise<string[]> {
  return entry === "sources" ? ["--import", "tsx", "src/main.ts"] : [await compiledEntry()];
}

/**
 * Starts Tessera on a free port with the test credentials and cheap argon2id, and resolves once
 * `listeners` processes (1, or TESSERA_WORKERS) have logged "listening". With `detached`, in a
 * process group of its own, so that a test can signal every process of it at once (as a
 * terminal's Ctrl-C, or a supervisor that stops a whole control group). With `openFiles`, under
 * that open-file limit (soft and hard, `ulimit -n`; prlimit(1) runs the process with it).
 */
export async function startService(
  entry: Entry,
  env: Record<string, string>,
  options: { listeners?: number; nodeArgs?: string[]; detached?: boolean; openFiles?: number } = {},
): Promise<ServiceProcess> {
  const argv = [process.execPath, ...(options.nodeArgs ?? []), ...(await entryArgv(entry))];
  if (options.openFiles !== undefined) argv.unshift("prlimit", `--nofile=${options.openFiles}:${options.openFiles}`);
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: projectRoot,
    detached: options.detached ?? false,
    env: {
      ...process.env,
      MONGODB_URI: "",
      PORT: "0",
      TESSERA_LOG_LEVEL: "info",
      TESSERA_ADMIN_TOKEN: testAdminToken,
      TESSERA_CLIENT_IDS: "test-client",
      TESSERA_ARGON2_MEMORY_KIB: "1024",
      TESSERA_ARGON2_ITERATIONS: "1",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const lines = () =>
    out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  // "close", not "exit": at "exit" the pipes may still hold what the process wrote last, unread
  // (Node's child_process: "the stdio streams might still be open"), and the other workers,
  // which write on the same pipes, may still be writing (as they stop once the first is gone).
  const exited = new Promise<number | null>((resolve) => child.once("close", (code: number | null) => resolve(code)));
  const listeners = options.listeners ?? 1;
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const listening = lines().filter((l) => l.msg === "listening");
      if (listening.length === listeners) {
        clearInterval(timer);
        resolve({ child, port: Number(/:(\d+)$/.exec(listening[0]!.url as string)![1]), lines, stderr: () => err, exited });
      }
    }, 20);
    child.once("close", (code: number | null) => {
      clearInterval(timer);
      reject(new Error(`exited early with ${code}: ${out}${err}`));
    });
  });
}

/**
 * Runs Tessera with `env` over the test credentials and cheap argon2id until it exits (a refused
 * start), SIGKILLed after 20 s: its exit code and output.
 */
export async function runUntilExit(entry: Entry, env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return run(process.execPath, await entryArgv(entry), {
    cwd: projectRoot,
    env: {
      ...process.env,
      MONGODB_URI: "",
      PORT: "0",
      TESSERA_WORKERS: "1",
      TESSERA_CLIENT_IDS: "web",
      TESSERA_ADMIN_TOKEN: "admin-token-0123456789",
      TESSERA_ARGON2_MEMORY_KIB: "1024",
      TESSERA_ARGON2_ITERATIONS: "1",
      TESSERA_STORE_TIMEOUT_MS: "500",
      ...env,
    },
    timeout: 20000,
    killSignal: "SIGKILL",
  }).then(
    (r) => ({ code: 0 as number | null, stderr: r.stderr, stdout: r.stdout }),
    (e: { code: number | null; stderr: string; stdout: string }) => ({ code: e.code, stderr: e.stderr, stdout: e.stdout }),
  );
}

/** Stops the process if it still runs (SIGKILL) and waits for it. */
export async function killService(service: ServiceProcess | undefined): Promise<void> {
  if (service && service.child.exitCode === null && service.child.signalCode === null) {
    service.child.kill("SIGKILL");
    await service.exited;
  }
}

/**
 * One request on its own connection (no keep-alive, so a cluster may hand it to any worker), as
 * the admin unless `headers` say otherwise. `json` is the body parsed when it is JSON.
 */
/** One request on a new connection, with the admin token unless `headers` names another authorization (or none: undefined). */
export function request(
  port: number,
  method: string,
  path: string,
  body?: unknown,
  headers: http.OutgoingHttpHeaders = {},
): Promise<{ status: number; json: any; text: string; headers: http.IncomingHttpHeaders }> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        agent: false,
        headers: Object.fromEntries(
          Object.entries({
            connection: "close",
            ...bearer(testAdminToken),
            ...(data !== undefined && { "content-type": "application/json", "content-length": Buffer.byteLength(data) }),
            ...headers,
          }).filter(([, value]) => value !== undefined),
        ),
      },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        const isJson = /^application\/json/.test(res.headers["content-type"] ?? "");
        res.on("end", () => resolve({ status: res.statusCode!, json: text && isJson ? JSON.parse(text) : undefined, text, headers: res.headers }));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

/**
 * Whether every thread of process `pid` is stopped (state T in /proc/<pid>/task/<tid>/stat; a
 * thread gone meanwhile is left out). Throws when the process itself is gone.
 */
function allThreadsStopped(pid: number): boolean {
  return readdirSync(`/proc/${pid}/task`).every((tid) => {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      return true; // exited meanwhile
    }
    // tid (comm) state ...: the name may hold spaces and parentheses, the state follows the last ")".
    return stat.charAt(stat.lastIndexOf(")") + 2) === "T";
  });
}

/**
 * Stops process `pid` (SIGSTOP) and waits until every thread of it is stopped: kill() returns
 * while the stop is pending, and until a thread of a multi-threaded process takes it up the
 * others run on (under load, up to some 250 ms), answering what was meant to find it stopped.
 */
export async function stopProcess(pid: number, what: string): Promise<void> {
  process.kill(pid, "SIGSTOP");
  await pollUntil(`every thread of ${what} stopped (SIGSTOP)`, () => allThreadsStopped(pid), { limitMs: 10_000, intervalMs: 5 });
}
