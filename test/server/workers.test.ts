// TESSERA_WORKERS: several worker processes on the one port, over one embedded store. Every
// worker serves; writes from all of them land (SQLite across processes: WAL, busy timeout,
// IMMEDIATE write transactions); housekeeping runs in one worker only; SIGTERM drains them all.
// The process started is the first worker (no process that only supervises): it forks the
// others, hands them connections and replaces one that dies; none outlives it.
//
// Compiled (`npm start`), every case. From the sources (`npm run dev`), where every worker loads
// src/ through tsx (the ones forked with the node flags they inherit, `--import tsx`), the first
// block's cluster (less the replacement of a worker, the same fork as at the start): what differs
// between the two is the entry each worker runs, not how the workers share the port, stop or fail.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve as resolvePath } from "node:path";
import { projectRoot } from "../../src/project-files.js";
import { callInFlight, connectionRefused, makeTestCertificate } from "../support/net.js";
import { pollUntil } from "../support/poll.js";
import { entryArgv, killService, request, startService, stopProcess, type Entry, type ServiceProcess } from "../support/process.js";
import { testAdminToken } from "../support/server.js";
import { sideBySide } from "../support/side-by-side.js";

for (const entry of ["sources", "compiled"] as Entry[]) {
  describe(`server: TESSERA_WORKERS worker processes on one port (${entry})`, function () {
    this.timeout(60000);
    let dataDir: string;
    let cluster: ServiceProcess | undefined;
    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
      cluster = await startService(entry, { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir, TESSERA_SHUTDOWN_GRACE_SECONDS: "5" }, { listeners: 2 });
    });
    after(async () => {
      await killService(cluster);
      rmSync(dataDir, { recursive: true, force: true });
    });

    it("starts two workers; exactly one of them runs housekeeping", () => {
      const listening = cluster!.lines().filter((l) => l.msg === "listening");
      assert.deepEqual(listening.map((l) => l.worker).sort(), [1, 2]);
      assert.deepEqual(listening.filter((l) => l.housekeeping === true).map((l) => l.worker), [1]);
    });

    it("the process started is the first worker and serves; the second is its child (no process that only supervises)", () => {
      const listening = cluster!.lines().filter((l) => l.msg === "listening");
      const pidOf = (worker: number) => listening.find((l) => l.worker === worker)!.pid as number;
      assert.equal(pidOf(1), cluster!.child.pid);
      assert.equal(parentOf(pidOf(2)), cluster!.child.pid);
      // It runs the first's node flags (from the sources: --import tsx) and entry (its path resolved).
      const [node, ...args] = commandLine(pidOf(1));
      assert.deepEqual(commandLine(pidOf(2)), [node, ...args.slice(0, -1), resolvePath(projectRoot, args.at(-1)!)]);
      assert.equal(listening.find((l) => l.worker === 2)!.url, listening.find((l) => l.worker === 1)!.url);
    });

    it("every worker serves, and concurrent writes from both all land in the one store", async () => {
      const account = `acct-${process.pid}`;
      const n = 60;
      const created = await Promise.all(
        Array.from({ length: n }, (_, i) => request(cluster!.port, "POST", "/v1/frontend/auth", { account_id: account, description: `token ${i}` })),
      );
      assert.deepEqual(created.map((r) => r.status), Array(n).fill(200));
      const served = new Set(
        cluster!
          .lines()
          .filter((l) => l.msg === "rpc" && l.procedure === "tessera.apitoken.v1.ApiTokenService/CreateToken")
          .map((l) => l.worker),
      );
      assert.deepEqual([...served].sort(), [1, 2]);
      const listed = await request(cluster!.port, "GET", `/v1/frontend/auth/${account}`);
      assert.equal(listed.status, 200);
      assert.equal(listed.json.tokens.length, n);
    });

    if (entry === "compiled")
      it("a worker that dies is replaced, and the new one is handed connections", async () => {
        const before = cluster!.lines().filter((l) => l.msg === "listening" && l.worker === 2);
        process.kill(before[0]!.pid as number, "SIGKILL");
        await until(() => cluster!.lines().filter((l) => l.msg === "listening" && l.worker === 2).length === 2, "a second worker 2");
        const died = cluster!.lines().filter((l) => l.msg === "worker exited");
        assert.deepEqual(died.map((l) => [l.worker, l.code, l.signal]), [[2, null, "SIGKILL"]]);
        const seen = cluster!.lines().length;
        // (one at a time, each on its own connection)
        for (let i = 0; i < 6; i++) assert.equal((await request(cluster!.port, "GET", "/jwt/version")).status, 200);
        const calls = () =>
          cluster!
            .lines()
            .slice(seen)
            .filter((l) => l.msg === "rpc");
        await until(() => calls().length === 6, "six rpc lines");
        const served = calls().map((l) => l.worker);
        // round-robin: every other connection each
        assert.deepEqual([served.filter((w) => w === 1).length, served.filter((w) => w === 2).length], [3, 3]);
      });

    it("SIGTERM stops every worker gracefully and the first exits 0, last", async () => {
      cluster!.child.kill("SIGTERM");
      assert.equal(await cluster!.exited, 0);
      const stopped = cluster!.lines().filter((l) => l.msg === "stopped");
      assert.deepEqual(stopped.map((l) => l.worker), [2, 1]);
    });
  });
}

// Everything else, compiled only (see the top).
const entry: Entry = "compiled";

describe(`server: TESSERA_WORKERS, a graceful stop with calls in flight (${entry})`, function () {
  this.timeout(60000);
  it("SIGTERM while each worker has a call in flight: no new connection is taken, both calls finish, exit 0", async () => {
    await withCluster(entry, { TESSERA_WORKERS: "2", TESSERA_SHUTDOWN_GRACE_SECONDS: "10" }, { listeners: 2 }, async (cluster) => {
      // Two calls whose bodies are still arriving when the signal comes, on two connections:
      // handed round-robin, one to each worker.
      const body = JSON.stringify({ service: "" });
      const calls = [0, 1].map(() => callInFlight(cluster.port, "/grpc.health.v1.Health/Check", body));
      await new Promise((r) => setTimeout(r, 300));
      cluster.child.kill("SIGTERM");
      await until(() => cluster.lines().filter((l) => l.msg === "stopping").length === 2, "both workers stopping");
      assert.equal(await connectionRefused(cluster.port), true, "new connections are refused while the workers drain");
      for (const c of calls) c.finish();
      for (const c of calls) assert.deepEqual(await c.answer, { status: 200, text: JSON.stringify({ status: "SERVING" }) });
      assert.equal(await cluster.exited, 0);
      const served = cluster.lines().filter((l) => l.msg === "rpc" && l.procedure === "grpc.health.v1.Health/Check");
      assert.deepEqual(served.map((l) => l.worker).sort(), [1, 2]);
    });
  });
});

describe(`server: TESSERA_WORKERS with TESSERA_METRICS_PORT (${entry})`, function () {
  this.timeout(60000);
  it("the first worker alone serves the metrics port, with the calls every worker served", async () => {
    await withCluster(entry, { TESSERA_WORKERS: "2", TESSERA_METRICS_PORT: "0" }, { listeners: 2 }, async (cluster) => {
      const listening = cluster.lines().filter((l) => l.msg === "listening");
      const metricsPort = listening.find((l) => l.worker === 1)!.metricsPort as number;
      assert.equal(listening.find((l) => l.worker === 2)!.metricsPort, undefined);
      const n = 8;
      for (let i = 0; i < n; i++) assert.equal((await request(cluster.port, "GET", "/jwt/version")).status, 200);
      await until(() => cluster.lines().filter((l) => l.msg === "rpc").length === n, `${n} rpc lines`);
      assert.deepEqual([...new Set(cluster.lines().filter((l) => l.msg === "rpc").map((l) => l.worker))].sort(), [1, 2]);
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const served = /^tessera_rpc_requests_total\{service="tessera\.jwt\.v1\.JwtService",method="GetVersion",protocol="rest",code="ok"\} (\d+)$/m.exec(text);
      assert.equal(served?.[1], String(n), text);
      assert.equal((await request(cluster.port, "GET", "/metrics")).status, 404);
    });
  });
});

describe(`server: TESSERA_WORKERS, a worker stopped on its own (${entry})`, function () {
  this.timeout(60000);
  it("SIGTERM to one worker alone: while it drains it is handed no new connection (calls begun then outlive its grace period); it is replaced", async () => {
    await withCluster(entry, { TESSERA_WORKERS: "2", TESSERA_SHUTDOWN_GRACE_SECONDS: "2" }, { listeners: 2 }, async (cluster) => {
      const second = cluster.lines().find((l) => l.msg === "listening" && l.worker === 2)!.pid as number;
      // The first connection is handed to worker 2: a call in flight there, never finished,
      // keeps it draining until its grace period ends.
      const body = JSON.stringify({ service: "" });
      const held = callInFlight(cluster.port, "/grpc.health.v1.Health/Check", body);
      held.answer.catch(() => {}); // cut when worker 2's grace period ends
      await new Promise((r) => setTimeout(r, 300));
      process.kill(second, "SIGTERM");
      await until(() => cluster.lines().some((l) => l.msg === "stopping" && l.worker === 2), "worker 2 stopping");
      const seen = cluster.lines().length;
      // Calls on new connections while it drains: two still under way when its grace period
      // ends, and six answered at once.
      const slow = [0, 1].map(() => callInFlight(cluster.port, "/grpc.health.v1.Health/Check", body));
      await new Promise((r) => setTimeout(r, 100));
      for (let i = 0; i < 6; i++) assert.equal((await request(cluster.port, "GET", "/jwt/version")).status, 200);
      const calls = () => cluster.lines().slice(seen).filter((l) => l.msg === "rpc" && l.procedure === "tessera.jwt.v1.JwtService/GetVersion");
      await until(() => cluster.lines().some((l) => l.msg === "worker exited"), "worker 2 gone");
      for (const c of slow) c.finish();
      assert.deepEqual(await Promise.all(slow.map((c) => c.answer.catch((e: Error) => e.message))), Array(2).fill({ status: 200, text: JSON.stringify({ status: "SERVING" }) }));
      await until(() => calls().length === 6, "six rpc lines");
      assert.deepEqual(calls().map((l) => l.worker), Array(6).fill(1), "calls made while worker 2 drains are served by worker 1");
      await until(() => cluster.lines().filter((l) => l.msg === "listening" && l.worker === 2).length === 2, "a second worker 2");
      assert.deepEqual(cluster.lines().filter((l) => l.msg === "worker exited").map((l) => l.worker), [2]);
    });
  });
});

describe(`server: TESSERA_WORKERS, a worker that stops taking connections (${entry})`, function () {
  this.timeout(60000);
  it("one that has not taken a connection handed to it a second ago is handed no more: the others serve them until it takes it", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
    const cluster = await startService(entry, { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir }, { listeners: 2 });
    const second = cluster.lines().find((l) => l.msg === "listening" && l.worker === 2)!.pid as number;
    try {
      const get = "GET /jwt/version HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
      // Worker 2's event loop is blocked (here: stopped) with the first connection handed to it.
      await stopProcess(second, "worker 2");
      const first = rawCall(cluster.port, get, 20000);
      await new Promise((r) => setTimeout(r, 1500));
      const seen = cluster.lines().length;
      const calls: Array<Promise<string>> = [];
      for (let i = 0; i < 6; i++) {
        calls.push(rawCall(cluster.port, get, 5000));
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual((await Promise.all(calls)).map((head) => head.split("\r\n", 1)[0]), Array(6).fill("HTTP/1.1 200 OK"));
      await until(() => cluster.lines().slice(seen).filter((l) => l.msg === "rpc").length === 6, "six rpc lines");
      assert.deepEqual(cluster.lines().slice(seen).filter((l) => l.msg === "rpc").map((l) => l.worker), Array(6).fill(1));
      // Running again, it serves the connection it was handed, and is handed connections again.
      process.kill(second, "SIGCONT");
      assert.equal((await first).split("\r\n", 1)[0], "HTTP/1.1 200 OK");
      // Its rpc line is written once its answer has gone: wait for it, so that it is not taken
      // for one of the four below.
      await until(() => cluster.lines().slice(seen).filter((l) => l.msg === "rpc").length === 7, "the first call's rpc line");
      const again = cluster.lines().length;
      for (let i = 0; i < 4; i++) assert.equal((await request(cluster.port, "GET", "/jwt/version")).status, 200);
      await until(() => cluster.lines().slice(again).filter((l) => l.msg === "rpc").length === 4, "four rpc lines");
      assert.deepEqual(cluster.lines().slice(again).filter((l) => l.msg === "rpc").map((l) => l.worker).sort(), [1, 1, 2, 2]);
    } finally {
      if (alive(second)) process.kill(second, "SIGCONT");
      await killService(cluster);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe(`server: TESSERA_WORKERS, a worker that dies with connections handed to it (${entry})`, function () {
  this.timeout(60000);
  it("the connections it had not taken yet are served by another worker: none is left hanging", async () => {
    await withCluster(entry, { TESSERA_WORKERS: "2" }, { listeners: 2 }, async (cluster) => {
      const second = cluster.lines().find((l) => l.msg === "listening" && l.worker === 2)!.pid as number;
      // Worker 2 stops reading its channel (a blocked event loop), so the connections handed
      // to it wait there: the first on the channel, the next ones behind it.
      await stopProcess(second, "worker 2");
      const calls: Array<Promise<string>> = [];
      for (let i = 0; i < 6; i++) {
        calls.push(rawCall(cluster.port, "GET /jwt/version HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", 10000));
        await new Promise((r) => setTimeout(r, 100)); // accepted one at a time, round-robin
      }
      process.kill(second, "SIGKILL");
      assert.deepEqual((await Promise.all(calls)).map((head) => head.split("\r\n", 1)[0]), Array(6).fill("HTTP/1.1 200 OK"));
      assert.deepEqual(cluster.lines().filter((l) => l.msg === "worker exited").map((l) => [l.worker, l.signal]), [[2, "SIGKILL"]]);
    });
  });
});

describe(`server: TESSERA_WORKERS, a worker that cannot receive a connection handed to it (${entry})`, function () {
  this.timeout(60000);
  it("a connection that never reaches it (no file descriptor left there) is served by another worker, and it is handed connections again once it can take them", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
    const cluster = await startService(entry, { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir }, { listeners: 2 });
    const second = cluster.lines().find((l) => l.msg === "listening" && l.worker === 2)!.pid as number;
    const get = "GET /jwt/version HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    const limit = openFilesLimit(second);
    try {
      // Worker 2 has no descriptor left (as under a flood of connections at its RLIMIT_NOFILE):
      // a socket sent to it cannot be received there, and Node drops the message.
      setOpenFilesLimit(second, lowestFreeDescriptor(second), limit.hard);
      const seen = cluster.lines().length;
      const calls: Array<Promise<string>> = [];
      for (let i = 0; i < 4; i++) {
        calls.push(rawCall(cluster.port, get, 6000));
        await new Promise((r) => setTimeout(r, 100)); // accepted one at a time, round-robin
      }
      assert.deepEqual((await Promise.all(calls)).map((head) => head.split("\r\n", 1)[0]), Array(4).fill("HTTP/1.1 200 OK"));
      await until(() => cluster.lines().slice(seen).filter((l) => l.msg === "rpc").length === 4, "four rpc lines");
      assert.deepEqual(cluster.lines().slice(seen).filter((l) => l.msg === "rpc").map((l) => l.worker), Array(4).fill(1));
      // With descriptors again, it is handed its turns again.
      setOpenFilesLimit(second, limit.soft, limit.hard);
      await new Promise((r) => setTimeout(r, 1500));
      const again = cluster.lines().length;
      for (let i = 0; i < 4; i++) assert.equal((await request(cluster.port, "GET", "/jwt/version")).status, 200);
      await until(() => cluster.lines().slice(again).filter((l) => l.msg === "rpc").length === 4, "four rpc lines");
      assert.deepEqual(cluster.lines().slice(again).filter((l) => l.msg === "rpc").map((l) => l.worker).sort(), [1, 1, 2, 2]);
    } finally {
      if (alive(second)) setOpenFilesLimit(second, limit.soft, limit.hard);
      await killService(cluster);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

// Three clusters whose tests mostly wait (a grace period and the kill after it, the other workers
// seeing the first gone, a replacement's pauses of 1, 2 and 4 s), each with its own processes and
// data directory: they run side by side.
const [stuckWorker, firstKilled, cannotStart] = sideBySide([
  async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
    const cluster = await startService(entry, { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir, TESSERA_SHUTDOWN_GRACE_SECONDS: "1" }, { listeners: 2 });
    try {
      const second = cluster.lines().find((l) => l.msg === "listening" && l.worker === 2)!.pid as number;
      // Worker 2 stops running (a blocked event loop) with the first connection handed to it.
      await stopProcess(second, "worker 2");
      const handed = rawCall(cluster.port, "", 15000);
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      cluster.child.kill("SIGTERM");
      const exited = await Promise.race([cluster.exited, new Promise((r) => setTimeout(() => r("still running"), 15000))]);
      assert.equal(exited, 1);
      assert.ok(Date.now() - t0 < 10000, `exited after ${Date.now() - t0} ms`);
      assert.equal(alive(second), false);
      assert.deepEqual(cluster.lines().filter((l) => l.msg === "stopped").map((l) => l.worker), [1]);
      // Why the stop exits 1: the worker killed, and its exit.
      assert.deepEqual(
        cluster.lines().filter((l) => l.msg === "worker did not stop in time" || l.msg === "worker exited").map(({ level, msg, worker, afterSeconds, code, signal, restartInMs }) => ({ level, msg, worker, afterSeconds, code, signal, restartInMs })),
        [
          { level: "error", msg: "worker did not stop in time", worker: 2, afterSeconds: 6, code: undefined, signal: undefined, restartInMs: undefined },
          { level: "error", msg: "worker exited", worker: 2, afterSeconds: undefined, code: null, signal: "SIGKILL", restartInMs: undefined },
        ],
      );
      await handed;
    } finally {
      await killService(cluster);
      try {
        process.kill(Number(cluster.lines().find((l) => l.msg === "listening" && l.worker === 2)?.pid), "SIGKILL");
      } catch {}
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
  async () => {
    await withCluster(entry, { TESSERA_WORKERS: "3" }, { listeners: 3 }, async (cluster) => {
      const others = cluster.lines().filter((l) => l.msg === "listening" && l.worker !== 1).map((l) => l.pid as number);
      assert.equal(others.length, 2);
      cluster.child.kill("SIGKILL");
      await cluster.exited;
      await until(() => others.every((pid) => !alive(pid)), "workers 2 and 3 gone");
    });
  },
  async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
    const preloadDir = mkdtempSync(join(tmpdir(), "tessera-workers-preload-"));
    // Loaded before the entry by every process of the tree (fork passes node's flags on):
    // every worker but the first exits as it starts.
    const preload = join(preloadDir, "others-fail.cjs");
    writeFileSync(preload, "if (process.env.TESSERA_WORKER_ID) process.exit(3);\n");
    const cluster = await startService(entry, { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir }, { listeners: 1, nodeArgs: ["--require", preload] });
    try {
      const exits = () => cluster.lines().filter((l) => l.msg === "worker exited");
      await until(() => exits().length === 4, "worker 2 exited four times");
      assert.deepEqual(
        exits().map((l) => [l.worker, l.code, l.restartInMs]),
        [
          [2, 3, 0],
          [2, 3, 1000],
          [2, 3, 2000],
          [2, 3, 4000],
        ],
      );
      assert.equal((await request(cluster.port, "GET", "/jwt/version")).status, 200, "the first worker serves meanwhile");
      const t0 = Date.now();
      cluster.child.kill("SIGTERM");
      assert.equal(await cluster.exited, 0);
      assert.ok(Date.now() - t0 < 3000, `stopped after ${Date.now() - t0} ms, not after the 4 s wait`);
      assert.equal(exits().length, 4);
      assert.equal(cluster.lines().filter((l) => l.msg === "listening").length, 1, "no worker 2 was started by the stop");
    } finally {
      await killService(cluster);
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(preloadDir, { recursive: true, force: true });
    }
  },
]);

describe(`server: TESSERA_WORKERS, SIGTERM with a worker that does not stop (${entry})`, function () {
  this.timeout(60000);
  it("a worker stuck with a connection handed to it is killed after the grace period (and 5 s), logged; the first logs stopped and exits 1", () => stuckWorker!());
});

describe(`server: TESSERA_WORKERS, the first worker killed (${entry})`, function () {
  this.timeout(60000);
  it("the other workers stop too: none outlives the first", () => firstKilled!());
});

describe(`server: TESSERA_WORKERS, a worker that cannot start (${entry})`, function () {
  this.timeout(60000);
  it("is replaced at once, then after 1, 2, 4 s (twice its last wait while it dies young): no spin, no flood of the log; a stop meanwhile replaces it no more, exit 0", () => cannotStart!());
});

describe(`server: TESSERA_WORKERS, Ctrl-C while the workers start (${entry})`, function () {
  this.timeout(60000);
  it("SIGINT to the process group as the others are forked: none is replaced, every worker stops once started, exit 0", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
    // Its own process group, as a terminal's foreground job: a Ctrl-C reaches every process in it.
    const child = spawn(process.execPath, await entryArgv(entry), {
      cwd: projectRoot,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, MONGODB_URI: "", PORT: "0", TESSERA_WORKERS: "3", TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "info", TESSERA_ADMIN_TOKEN: testAdminToken, TESSERA_CLIENT_IDS: "test-client" },
    });
    let out = "";
    let signalled = false;
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      // The first worker forks the others as it listens, then logs "listening": the others are
      // still loading.
      if (!signalled && out.includes('"msg":"listening"')) {
        signalled = true;
        process.kill(-child.pid!, "SIGINT");
      }
    });
    child.stderr!.resume();
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const lines = () => out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    try {
      assert.equal(await exited, 0);
      assert.ok(signalled);
      assert.deepEqual(lines().filter((l) => l.msg === "worker exited"), []);
      // (those that had started, then the first, last)
      assert.equal(lines().filter((l) => l.msg === "stopped").at(-1)?.worker, 1);
    } finally {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {}
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe(`server: TESSERA_WORKERS, the first worker killed as it forks the others (${entry})`, function () {
  this.timeout(60000);
  it("the others, still starting, see it is gone: each says so and exits 1", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
    const child = spawn(process.execPath, await entryArgv(entry), {
      cwd: projectRoot,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, MONGODB_URI: "", PORT: "0", TESSERA_WORKERS: "3", TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "info", TESSERA_ADMIN_TOKEN: testAdminToken, TESSERA_CLIENT_IDS: "test-client" },
    });
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      // Logged once it has forked the others: they are still loading.
      if (out.includes('"msg":"listening"')) child.kill("SIGKILL");
    });
    // Written by every process of the tree: it ends once the others have exited too.
    const ended = new Promise<void>((resolve) => child.stderr!.on("data", (d: Buffer) => (err += d.toString())).once("end", resolve));
    try {
      await ended;
      assert.equal(err.match(/tessera: failed to start: the first worker is gone\n/g)?.length, 2, err);
    } finally {
      child.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe(`server: TESSERA_WORKERS, a start that fails (${entry})`, function () {
  this.timeout(60000);
  /** The whole tree's stderr (it ends once every process of it has exited) and the first worker's exit code. */
  const failedStart = async (env: Record<string, string>) => {
    const child = spawn(process.execPath, await entryArgv(entry), {
      cwd: projectRoot,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, MONGODB_URI: "", TESSERA_WORKERS: "3", TESSERA_LOG_LEVEL: "info", TESSERA_ADMIN_TOKEN: testAdminToken, TESSERA_CLIENT_IDS: "test-client", ...env },
    });
    let err = "";
    const ended = new Promise<void>((resolve) => child.stderr!.on("data", (d: Buffer) => (err += d.toString())).once("end", resolve));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const code = await exited;
      await ended;
      return { code, err };
    } finally {
      child.kill("SIGKILL");
    }
  };

  it("the port taken: one line naming it, exit 1 (the workers still starting add none)", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    try {
      const { code, err } = await failedStart({ PORT: String((taken.address() as net.AddressInfo).port), TESSERA_DATA_DIR: dataDir });
      assert.equal(code, 1);
      assert.match(err, /^tessera: failed to start: PORT: listen EADDRINUSE[^\n]*\n$/);
    } finally {
      taken.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("a data directory that cannot be made: one line naming it, exit 1 (not one per worker)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
    const file = join(dir, "a-file");
    writeFileSync(file, "");
    try {
      const { code, err } = await failedStart({ PORT: "0", TESSERA_DATA_DIR: join(file, "data") });
      assert.equal(code, 1);
      assert.match(err, /^tessera: failed to start: TESSERA_DATA_DIR: [^\n]*\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe(`server: TESSERA_WORKERS, a worker whose start fails while the first serves (${entry})`, function () {
  this.timeout(60000);
  it("is logged as worker exited with its error, and writes nothing on stderr", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
    const preloadDir = mkdtempSync(join(tmpdir(), "tessera-workers-preload-"));
    // Every worker but the first is given a data directory it cannot make.
    const preload = join(preloadDir, "others-no-dir.cjs");
    writeFileSync(preload, `if (process.env.TESSERA_WORKER_ID) process.env.TESSERA_DATA_DIR = ${JSON.stringify(join(preload, "data"))};\n`);
    const cluster = await startService(entry, { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir }, { listeners: 1, nodeArgs: ["--require", preload] });
    try {
      await until(() => cluster.lines().some((l) => l.msg === "worker exited"), "worker 2 exited");
      const exited = cluster.lines().find((l) => l.msg === "worker exited")!;
      assert.deepEqual([exited.worker, exited.code, exited.restartInMs], [2, 1, 0]);
      assert.match(exited.error as string, /^TESSERA_DATA_DIR: cannot create the directory .*others-no-dir\.cjs\/data \(ENOTDIR\)$/);
      assert.equal(cluster.stderr(), "");
    } finally {
      await killService(cluster);
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(preloadDir, { recursive: true, force: true });
    }
  });
});

describe(`server: TESSERA_WORKERS, a worker whose configuration is refused while the first serves (${entry})`, function () {
  this.timeout(60000);
  it("a renewal half written (the certificate, not yet its key) as a worker is replaced: logged as worker exited with the refusal, nothing on stderr", async () => {
    const served = makeTestCertificate();
    const renewal = makeTestCertificate();
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
    const { TESSERA_TLS_CERT_FILE: cert, TESSERA_TLS_KEY_FILE: key } = served.env as { TESSERA_TLS_CERT_FILE: string; TESSERA_TLS_KEY_FILE: string };
    const cluster = await startService(entry, { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir, TESSERA_TLS_RELOAD_SECONDS: "0", ...served.env }, { listeners: 2 });
    try {
      const second = cluster.lines().find((l) => l.msg === "listening" && l.worker === 2)!.pid as number;
      // The renewal's certificate written over the served one; its key not yet.
      writeFileSync(cert, readFileSync(renewal.env.TESSERA_TLS_CERT_FILE!));
      process.kill(second, "SIGKILL");
      await until(() => cluster.lines().filter((l) => l.msg === "worker exited").length === 2, "the replacement exited");
      const exited = cluster.lines().filter((l) => l.msg === "worker exited")[1]!;
      assert.deepEqual([exited.worker, exited.code, exited.error], [2, 2, `TESSERA_TLS_KEY_FILE (${key}): not the private key of the first certificate in TESSERA_TLS_CERT_FILE (${cert})`]);
      assert.equal(cluster.stderr(), "");
    } finally {
      await killService(cluster);
      served.remove();
      renewal.remove();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe(`server: TESSERA_WORKERS, the embedded store after a failed fsync (${entry})`, function () {
  this.timeout(60000);
  it("one worker's failed fsync fails every worker's store: writes 503 and /readyz and /healthz 503 on every worker, on a replacement too; reads answer; logged once", async () => {
    const preloadDir = mkdtempSync(join(tmpdir(), "tessera-workers-preload-"));
    // Loaded before the entry by every process of the tree: fs.fsync fails with EIO in the
    // process whose pid the trigger file holds, as a disk whose writeback failed answers.
    const trigger = join(preloadDir, "fail-fsync-of");
    const preload = join(preloadDir, "failing-fsync.cjs");
    writeFileSync(
      preload,
      `const fs = require("node:fs");
const fsync = fs.fsync;
fs.fsync = (fd, done) => {
let pid = "";
try { pid = fs.readFileSync(${JSON.stringify(trigger)}, "utf8"); } catch {}
if (pid === String(process.pid)) return process.nextTick(done, Object.assign(new Error("EIO: i/o error, fsync"), { errno: -5, code: "EIO", syscall: "fsync" }));
fsync(fd, done);
};
require("node:module").syncBuiltinESMExports();
`,
    );
    try {
      await withCluster(entry, { TESSERA_WORKERS: "2" }, { listeners: 2, nodeArgs: ["--require", preload] }, async (cluster) => {
        const second = cluster.lines().find((l) => l.msg === "listening" && l.worker === 2)!.pid as number;
        const account = `acct-${process.pid}`;
        const create = async () => (await request(cluster.port, "POST", "/v1/frontend/auth", { account_id: account, description: "a token" })).status;
        const each = async (n: number, call: () => Promise<number>) => {
          const statuses = [];
          for (let i = 0; i < n; i++) statuses.push(await call());
          return statuses;
        };
        const status = (path: string) => async () => (await request(cluster.port, "GET", path)).status;
        assert.deepEqual(await each(2, create), [200, 200]);
        writeFileSync(trigger, String(second));
        // Every other connection is worker 2's: its write fails, and the other worker hears of it.
        for (let i = 0; (await create()) !== 503; i++) assert.ok(i < 4, "no write refused");
        await pollUntil("both workers unready", async () => (await each(2, status("/readyz"))).join() === "503,503", { limitMs: 10000, intervalMs: 0 });
        const seen = cluster.lines().length;
        assert.deepEqual(await each(4, create), [503, 503, 503, 503]);
        assert.deepEqual(await each(4, status("/readyz")), [503, 503, 503, 503]);
        assert.deepEqual(await each(4, status("/healthz")), [503, 503, 503, 503]);
        assert.deepEqual(await each(4, status(`/v1/frontend/auth/${account}`)), [200, 200, 200, 200]);
        const refusedBy = () => cluster.lines().slice(seen).filter((l) => l.msg === "rpc" && l.procedure === "tessera.apitoken.v1.ApiTokenService/CreateToken").map((l) => l.worker);
        await until(() => refusedBy().length === 4, "four rpc lines");
        assert.deepEqual(refusedBy().sort(), [1, 1, 2, 2]);

        // A worker started after the failure (its descriptor of the log sees no error) is told at once.
        process.kill(second, "SIGKILL");
        await until(() => cluster.lines().filter((l) => l.msg === "listening" && l.worker === 2).length === 2, "a second worker 2");
        assert.deepEqual(await each(4, create), [503, 503, 503, 503]);
        assert.deepEqual(await each(4, status("/readyz")), [503, 503, 503, 503]);
        await until(() => refusedBy().length === 8, "eight rpc lines");
        assert.deepEqual(refusedBy().slice(4).sort(), [1, 1, 2, 2]);
        assert.deepEqual(
          cluster.lines().filter((l) => l.msg === "store failed").map((l) => [l.worker, l.level, l.error]),
          [[2, "error", "embedded store could not sync its log (EIO); it refuses writes until restarted"]],
        );
      });
    } finally {
      rmSync(preloadDir, { recursive: true, force: true });
    }
  });
});

/**
 * Runs `use` on a cluster started on a fresh data directory; then stops it (SIGKILL, if it still
 * runs) and removes the directory.
 */
async function withCluster(entry: Entry, env: Record<string, string>, options: { listeners?: number; nodeArgs?: string[] }, use: (cluster: ServiceProcess) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
  let cluster: ServiceProcess | undefined;
  try {
    cluster = await startService(entry, { ...env, TESSERA_DATA_DIR: dataDir }, options);
    await use(cluster);
  } finally {
    await killService(cluster);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The parent process id of `pid` (Linux: /proc/<pid>/stat, after the command's closing parenthesis). */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** The command line of `pid` (Linux: /proc/<pid>/cmdline, NUL-terminated arguments). */
function commandLine(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);
}

/**
 * Sends `text` on a connection of its own and resolves with what came back before the server
 * closed it, or "no answer" after `ms`.
 */
function rawCall(port: number, text: string, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(text));
    let received = "";
    const timer = setTimeout(() => {
      s.destroy();
      resolve("no answer");
    }, ms);
    s.on("data", (d: Buffer) => (received += d.toString("latin1")));
    s.on("error", () => {});
    s.on("close", () => {
      clearTimeout(timer);
      resolve(received === "" ? "closed without an answer" : received);
    });
  });
}

/** RLIMIT_NOFILE of `pid` (Linux: /proc/<pid>/limits). */
function openFilesLimit(pid: number): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, "utf8").split("\n").find((l) => l.startsWith("Max open files"))!;
  const [soft, hard] = line.slice("Max open files".length).trim().split(/\s+/).map(Number) as [number, number];
  return { soft, hard };
}

/** Sets RLIMIT_NOFILE of `pid` (util-linux prlimit). */
function setOpenFilesLimit(pid: number, soft: number, hard: number): void {
  execFileSync("prlimit", ["--pid", String(pid), `--nofile=${soft}:${hard}`]);
}

/** The descriptor `pid` would open next: with its soft limit set to this, it can open none. */
function lowestFreeDescriptor(pid: number): number {
  const open = new Set(readdirSync(`/proc/${pid}/fd`).map(Number));
  let fd = 0;
  while (open.has(fd)) fd++;
  return fd;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(done: () => boolean, what: string, ms = 20000): Promise<void> {
  await pollUntil(what, done, { limitMs: ms, intervalMs: 50 });
}
