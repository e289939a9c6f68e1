// The process entry (src/start.cts, `npm start`) creates libuv's thread pool, where argon2id
// hashes, at the nice value TESSERA_HASH_NICE (default 19) before anything else can, and leaves
// the event loop at the process's priority. The entry is compiled here as the build compiles it
// and run in front of a probe standing in for the service, which uses the pool and reports the nice
// value of every thread of its process. (The compiled project beside it is not used: the probe
// stands in for the bundle start.cjs loads, main.bundle.cjs.)
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

interface Report {
  pid: number;
  threads: Array<{ tid: number; nice: number }>;
  priority: { nice: number; applied: boolean; reason?: string };
}

// In the shape scripts/bundle.mjs writes: a build id line, then Node's CommonJS wrapper (no code
// cache is made for this id).
const probe = `// tessera bundle 00000000000000000000000000000000
(function (exports, require, module, __filename, __dirname) {
const { readdirSync, readFileSync, stat } = require("node:fs");
exports.run = () => stat(".", () => {
  const threads = readdirSync("/proc/self/task").map((tid) => {
    const s = readFileSync("/proc/self/task/" + tid + "/stat", "utf8");
    return { tid: Number(tid), nice: Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[16]) };
  });
  process.stdout.write(JSON.stringify({ pid: process.pid, threads, priority: globalThis[Symbol.for("tessera.threadPoolPriority")] }));
});
})
`;

describe("server: password hashing threads run at a lower CPU priority (start.cts)", function () {
  this.timeout(20000);
  let dir: string;
  before(async () => {
    const out = mkdtempSync(join(tmpdir(), "tessera-start-"));
    await run("node_modules/.bin/tsc", ["--ignoreConfig", "src/start.cts", "--rootDir", ".", "--outDir", out, "--module", "nodenext", "--target", "es2022", "--types", "node", "--skipLibCheck"]);
    dir = join(out, "src");
    // what start.cjs loads and runs, in place of the service
    writeFileSync(join(dir, "main.bundle.cjs"), probe);
    writeFileSync(join(dir, "pool-first.cjs"), `require("node:fs").stat(".", () => {});`);
  });
  after(() => rmSync(join(dir, ".."), { recursive: true, force: true }));

  /** Runs the entry; a variable given as undefined is left out of the environment. */
  async function start(env: Record<string, string | undefined>, nodeArgs: string[] = []): Promise<Report> {
    const merged: Record<string, string | undefined> = { ...process.env, UV_THREADPOOL_SIZE: "3", TESSERA_WORKERS: "1", ...env };
    for (const [name, value] of Object.entries(merged)) if (value === undefined) delete merged[name];
    const { stdout } = await run(process.execPath, [...nodeArgs, join(dir, "start.cjs")], { env: merged });
    return JSON.parse(stdout) as Report;
  }
  const niceOf = (r: Report, tid: number) => r.threads.find((t) => t.tid === tid)?.nice;

  it("by default: the pool's 3 threads (UV_THREADPOOL_SIZE) at nice 19, the event loop's thread at 0", async () => {
    const r = await start({ TESSERA_HASH_NICE: "" });
    assert.deepEqual(r.priority, { nice: 19, applied: true });
    assert.equal(niceOf(r, r.pid), 0);
    assert.equal(r.threads.filter((t) => t.nice === 19).length, 3, JSON.stringify(r.threads));
    assert.equal(r.threads.filter((t) => t.nice !== 19 && t.nice !== 0).length, 0);
  });

  it("UV_THREADPOOL_SIZE unset: libuv's default 4 threads at nice 19", async () => {
    const r = await start({ UV_THREADPOOL_SIZE: undefined });
    assert.deepEqual(r.priority, { nice: 19, applied: true });
    assert.equal(r.threads.filter((t) => t.nice === 19).length, 4, JSON.stringify(r.threads));
    assert.equal(niceOf(r, r.pid), 0);
  });

  it("UV_THREADPOOL_SIZE read as libuv's atoi reads it: 2^32 + 1 is its one thread, at nice 19", async () => {
    const r = await start({ UV_THREADPOOL_SIZE: "4294967297" });
    assert.deepEqual(r.priority, { nice: 19, applied: true });
    assert.equal(r.threads.filter((t) => t.nice === 19).length, 1, JSON.stringify(r.threads));
    assert.equal(niceOf(r, r.pid), 0);
  });

  it("TESSERA_HASH_NICE=7: the pool at 7", async () => {
    const r = await start({ TESSERA_HASH_NICE: "7" });
    assert.deepEqual(r.priority, { nice: 7, applied: true });
    assert.equal(niceOf(r, r.pid), 0);
    assert.equal(r.threads.filter((t) => t.nice === 7).length, 3);
  });

  it("TESSERA_HASH_NICE=0: every thread at the process's priority", async () => {
    const r = await start({ TESSERA_HASH_NICE: "0" });
    assert.deepEqual(r.priority, { nice: 0, applied: false, reason: "TESSERA_HASH_NICE=0" });
    assert.deepEqual(r.threads.filter((t) => t.nice !== 0), []);
  });

  it("TESSERA_WORKERS above 1: the process started (the first worker, which serves and hashes) lowers its pool too", async () => {
    const r = await start({ TESSERA_WORKERS: "2" });
    assert.deepEqual(r.priority, { nice: 19, applied: true });
    assert.equal(niceOf(r, r.pid), 0);
    assert.equal(r.threads.filter((t) => t.nice === 19).length, 3, JSON.stringify(r.threads));
  });

  it("a pool created before the entry ran (a module loaded with --require) is reported, not claimed lowered", async () => {
    const r = await start({}, ["--require", join(dir, "pool-first.cjs")]);
    assert.deepEqual(r.priority, { nice: 0, applied: false, reason: "libuv's pool existed before start.cjs ran (loaded with --import or --require?)" });
    assert.deepEqual(r.threads.filter((t) => t.nice !== 0), []);
  });

  it("without its bundle (dist built by tsc alone): exit 1, naming the file and the build to run", async () => {
    const bare = join(dir, "..", "bare");
    mkdirSync(bare);
    for (const f of ["start.cjs", "bundle-loader.cjs", "thread-pool-size.cjs"]) copyFileSync(join(dir, f), join(bare, f));
    const failed = await run(process.execPath, [join(bare, "start.cjs")], { env: { ...process.env, TESSERA_WORKERS: "1" } }).then(
      () => undefined,
      (e: { code?: number; stderr?: string }) => e,
    );
    assert.equal(failed?.code, 1);
    assert.equal(failed?.stderr, `tessera: ${join(bare, "main.bundle.cjs")} is missing: run npm run build\n`);
  });

  it("with a bundle of another build (plain CommonJS, not in the build's wrapper): exit 1, naming the file and the build to run", async () => {
    const stale = join(dir, "..", "stale");
    mkdirSync(stale);
    for (const f of ["start.cjs", "bundle-loader.cjs", "thread-pool-size.cjs"]) copyFileSync(join(dir, f), join(stale, f));
    writeFileSync(join(stale, "main.bundle.cjs"), `// tessera bundle 00000000000000000000000000000000\nexports.run = () => process.stdout.write("ran");\n`);
    const failed = await run(process.execPath, [join(stale, "start.cjs")], { env: { ...process.env, TESSERA_WORKERS: "1" } }).then(
      () => undefined,
      (e: { code?: number; stdout?: string; stderr?: string }) => e,
    );
    assert.equal(failed?.code, 1);
    assert.equal(failed?.stdout, "");
    assert.equal(failed?.stderr, `tessera: ${join(stale, "main.bundle.cjs")} is not a bundle of this build: run npm run build\n`);
  });
});
