// TESSERA_WORKERS: several worker processes on the one port, over one embedded store. Every
// worker serves; writes from all of them land (SQLite across processes: WAL, busy timeout,
// IMMEDIATE write transactions); housekeeping runs in one worker only; SIGTERM drains them all.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testAdminToken } from "../support/server.js";
import { bearer } from "../support/clients.js";

interface Cluster {
  child: ChildProcess;
  port: number;
  lines: () => Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function startCluster(env: Record<string, string>): Promise<Cluster> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
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
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const lines = () =>
    out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const listening = lines().filter((l) => l.msg === "listening");
      if (listening.length === Number(env.TESSERA_WORKERS)) {
        clearInterval(timer);
        resolve({ child, port: Number(/:(\d+)$/.exec(listening[0]!.url as string)![1]), lines, exited });
      }
    }, 50);
    child.once("exit", (code) => {
      clearInterval(timer);
      reject(new Error(`exited early with ${code}: ${out}`));
    });
  });
}

/** One request on its own connection (no keep-alive), so the cluster may hand it to any worker. */
function request(port: number, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        agent: false,
        headers: {
          connection: "close",
          ...bearer(testAdminToken),
          ...(data !== undefined && { "content-type": "application/json", "content-length": Buffer.byteLength(data) }),
        },
      },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode!, json: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

describe("server: TESSERA_WORKERS worker processes on one port", function () {
  this.timeout(60000);
  let dataDir: string;
  let cluster: Cluster | undefined;
  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-"));
    cluster = await startCluster({ TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir, TESSERA_SHUTDOWN_GRACE_SECONDS: "5" });
  });
  after(async () => {
    if (cluster && cluster.child.exitCode === null) {
      cluster.child.kill("SIGKILL");
      await cluster.exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("starts two workers; exactly one of them runs housekeeping", () => {
    const listening = cluster!.lines().filter((l) => l.msg === "listening");
    assert.deepEqual(listening.map((l) => l.worker).sort(), [1, 2]);
    assert.deepEqual(listening.filter((l) => l.housekeeping === true).map((l) => l.worker), [1]);
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

  it("SIGTERM stops every worker gracefully and the primary exits 0", async () => {
    cluster!.child.kill("SIGTERM");
    assert.equal(await cluster!.exited, 0);
    const stopped = cluster!.lines().filter((l) => l.msg === "stopped");
    assert.deepEqual(stopped.map((l) => l.worker ?? "primary").sort(), [1, 2, "primary"]);
  });
});
