/**
 * Clients that do not read their answers, over HTTP/1.1 (plain and TLS): a connection whose
 * output has made no progress for the idle timeout (1 s here) is closed, while one whose client
 * reads slowly but steadily, and a quiet stream whose client does read (a gRPC-Web
 * Health/Watch over HTTP/1.1, sending nothing between changes), are kept for as long as the
 * client wants them. A client that leaves ends every call it pipelined. A pipelined request is
 * served once the answers before it have been sent, so a connection holds one answer at a time
 * (a quiet stream's requests behind it hold no answers made in advance).
 * The answers pipelined here are Swagger UI's bundle (about 1.4 MB each): a few fill the
 * kernel's socket buffers on both sides, so the server's output truly backs up.
 */
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus } from "../../gen/health/v1/health_pb.js";
import { eventually, watchCall } from "./support.js";
import { grpcWebClient } from "../support/clients.js";
import { makeTestCertificate, type TestCertificate } from "../support/net.js";
import { killService, startService, type ServiceProcess } from "../support/process.js";
import { startTestServer, type TestServer } from "../support/server.js";

const timeouts = { TESSERA_HEADERS_TIMEOUT_MS: "1000", TESSERA_REQUEST_TIMEOUT_MS: "1500", TESSERA_IDLE_TIMEOUT_MS: "1000" };
const big = "/docs/swagger-ui-bundle.js";

/** A connection (TCP, or TLS with ALPN http/1.1) whose client reads nothing until `readAll()`. */
async function nonReader(port: number, ca?: Buffer): Promise<{ socket: net.Socket; readAll(limitMs: number): Promise<{ text: string; ended: boolean }> }> {
  const socket = ca
    ? tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost", ALPNProtocols: ["http/1.1"] })
    : net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once(ca ? "secureConnect" : "connect", () => resolve());
    socket.once("error", reject);
  });
  socket.pause();
  socket.on("error", () => {}); // a reset once the server has closed it
  let ended = false;
  socket.once("close", () => (ended = true));
  return {
    socket,
    async readAll(limitMs) {
      const chunks: Buffer[] = [];
      socket.on("data", (d: Buffer) => chunks.push(d));
      socket.resume();
      await eventually(() => ended, limitMs);
      return { text: Buffer.concat(chunks).toString("latin1"), ended };
    },
  };
}

/** The status of GET /healthz on a connection of its own (TLS trusting `ca`). */
function healthz(url: string, ca?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith("https:") ? https.get : http.get;
    const req = get(`${url}/healthz`, { ca, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on("error", reject);
  });
}

const statusLines = (text: string) => text.match(/HTTP\/1\.1 \d{3} /g) ?? [];

const watchRequest = watchCall();

/** The log lines of the calls of `procedure` that have ended. */
const rpcLines = (server: TestServer, procedure: string) =>
  server.logs.map((l) => JSON.parse(l) as { msg: string; procedure?: string; code?: string }).filter((l) => l.msg === "rpc" && l.procedure === procedure);

describe("HTTP/1.1 clients that do not read (idle timeout 1 s)", function () {
  this.timeout(60_000);
  let cert: TestCertificate;
  let plainServer: TestServer;
  let tlsServer: TestServer;

  before(async () => {
    cert = makeTestCertificate();
    plainServer = await startTestServer({ env: timeouts });
    tlsServer = await startTestServer({ env: { ...timeouts, ...cert.env } });
  });
  after(async () => {
    await plainServer?.close();
    await tlsServer?.close();
    cert?.remove();
  });

  for (const transport of ["plain", "TLS"] as const) {
    const server = () => (transport === "plain" ? plainServer : tlsServer);
    const ca = () => (transport === "plain" ? undefined : cert.ca);

    it(`${transport}: 30 pipelined requests for a 1.4 MB answer, never read: the connection is closed once its output has not moved for the idle timeout`, async () => {
      const { length } = Buffer.from(await (await fetch(`${plainServer.url}${big}`)).arrayBuffer());
      const c = await nonReader(server().port, ca());
      try {
        c.socket.write(`GET ${big} HTTP/1.1\r\nhost: x\r\n\r\n`.repeat(30));
        // The server has taken the requests (their answers are under way) ...
        assert.ok(await eventually(() => server().tessera.server.listener.inFlight() > 0, 10_000), "the requests were not taken");
        // ... and lets go of them: the answers it could not send are dropped with the connection.
        assert.ok(await eventually(() => server().tessera.server.listener.inFlight() === 0, 20_000), `still answering: ${server().tessera.server.listener.inFlight()} answers in flight`);
        const got = await c.readAll(20_000);
        assert.ok(got.ended, "the connection is still open");
        // What had left before the stall arrives; the rest never does.
        assert.ok(got.text.length < 30 * length, `all ${statusLines(got.text).length} answers were sent`);
        assert.equal(await healthz(server().url, ca()), 200, "the server goes on serving");
      } finally {
        c.socket.destroy();
      }
    });
  }

  it("a client that reads slowly but steadily keeps its connection: 5 pipelined 1.4 MB answers read 64 KiB every 50 ms, longer than the idle timeout (3 s here) in all", async () => {
    const server = await startTestServer({ env: { ...timeouts, TESSERA_IDLE_TIMEOUT_MS: "3000" } });
    try {
      const { length } = Buffer.from(await (await fetch(`${server.url}${big}`)).arrayBuffer());
      const c = await nonReader(server.port);
      c.socket.write(`GET ${big} HTTP/1.1\r\nhost: x\r\n\r\n`.repeat(5));
      let received = 0;
      const head: Buffer[] = [];
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          const chunk = c.socket.read(64 * 1024) as Buffer | null;
          if (chunk) {
            if (received === 0) head.push(chunk);
            received += chunk.length;
          }
          if (c.socket.destroyed || received >= 5 * length) {
            clearInterval(t);
            resolve();
          }
        }, 50);
      });
      assert.ok(!c.socket.destroyed, `the connection was closed after ${received} bytes`);
      assert.match(Buffer.concat(head).toString("latin1"), /^HTTP\/1\.1 200 /);
      c.socket.destroy();
    } finally {
      await server.close();
    }
  });

  it("a client that pipelines requests and leaves before their answers: every request ends, and those behind the stalled answer were never served (no Watch goes on for no one)", async () => {
    const server = plainServer;
    const watches = () => rpcLines(server, "grpc.health.v1.Health/Watch");
    const before = watches().length;
    const c = await nonReader(server.port);
    // The answers back up (the client reads nothing); the last ones wait behind the first.
    c.socket.write(Buffer.concat([Buffer.from(`GET ${big} HTTP/1.1\r\nhost: x\r\n\r\n`.repeat(10)), watchRequest, watchRequest]));
    assert.ok(await eventually(() => server.tessera.server.listener.inFlight() >= 3, 10_000), "the requests were not taken");
    c.socket.destroy();
    assert.ok(await eventually(() => server.tessera.server.listener.inFlight() === 0, 20_000), `${server.tessera.server.listener.inFlight()} requests still in flight`);
    assert.equal(watches().length, before, "a pipelined Watch was served behind the stalled answer");
    assert.deepEqual(server.logs.filter((l) => /"level":"error"/.test(l)), []);
  });

  it("a pipelined request is served only once the answers before it are sent: 98 GET /.well-known/jwks.json behind a quiet Watch are not answered while it is open, then all are, in order", async () => {
    const server = plainServer;
    const jwks = () => rpcLines(server, "tessera.key.v1.KeyService/GetJwks").length;
    const before = jwks();
    const c = await nonReader(server.port);
    try {
      // The Watch sends its first status, then nothing until its deadline (2 s); the client reads
      // all it is sent.
      c.socket.write(Buffer.concat([watchCall("2S"), Buffer.from("GET /.well-known/jwks.json HTTP/1.1\r\nhost: x\r\n\r\n".repeat(98))]));
      const got = c.readAll(20_000);
      assert.ok(await eventually(() => server.tessera.server.listener.inFlight() === 99, 10_000), `${server.tessera.server.listener.inFlight()} requests taken`);
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(jwks() - before, 0, "answers were made while the Watch before them was open");
      // A well-behaved client meanwhile is served at once.
      assert.equal(await healthz(server.url), 200);
      // The Watch ends at its deadline; the requests behind it are served, in order.
      assert.ok(await eventually(() => jwks() - before === 98, 10_000), `${jwks() - before} of the 98 pipelined requests served after the Watch ended`);
      c.socket.end();
      const { text } = await got;
      const statuses = statusLines(text);
      assert.equal(statuses.length, 99);
      assert.deepEqual([...new Set(statuses)], ["HTTP/1.1 200 "]);
      // The Watch's answer first, ended at its deadline (DEADLINE_EXCEEDED), then the JWKS.
      const ended = text.indexOf("grpc-status: 4\r\n");
      assert.ok(ended > 0 && ended < text.indexOf("content-type: application/json"), "the Watch did not end, first, at its deadline");
    } finally {
      c.socket.destroy();
    }
  });

  it("a quiet stream whose client reads is kept: gRPC-Web Health/Watch over HTTP/1.1, nothing sent for 3 idle timeouts", async () => {
    const health = grpcWebClient(Health, plainServer.url);
    const abort = new AbortController();
    const stream = health.watch(create(HealthCheckRequestSchema, { service: "" }), { signal: abort.signal })[Symbol.asyncIterator]();
    try {
      const first = await stream.next();
      assert.equal(first.value?.status, HealthCheckResponse_ServingStatus.SERVING);
      // The store stays up: nothing more is sent. The stream must still be open 3 s later.
      const next = stream.next().then(
        (r) => (r.done ? "ended" : "message"),
        (e: unknown) => `failed: ${String(e)}`,
      );
      const outcome = await Promise.race([next, new Promise<string>((r) => setTimeout(() => r("open"), 3000))]);
      assert.equal(outcome, "open");
    } finally {
      abort.abort();
    }
  });
});

/**
 * In a child process of its own, heap measured after a garbage collection: 10 connections, each
 * a gRPC-Web Health/Watch (a quiet stream: its answer never ends) followed by 98 pipelined
 * GET /metrics (an answer of some 15 KB, made anew for each request). Their clients read all
 * they are sent. The server holds their requests, not 980 answers made in advance.
 */
const heldAnswersChild = `
import net from "node:net";
import { performance } from "node:perf_hooks";
const { startTestServer } = await import("./test/support/server.ts");
const { watchCall } = await import("./test/hostile/support.ts");
const server = await startTestServer({ env: { TESSERA_LOG_LEVEL: "error" } });
const listener = server.tessera.server.listener;
const heap = () => {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
};
// Warm: the first scrape builds what every later one reuses.
for (let i = 0; i < 3; i++) await (await fetch(server.url + "/metrics")).text();
const before = heap();
const sockets = [];
for (let i = 0; i < 10; i++) {
  const socket = net.connect(server.port, "127.0.0.1");
  await new Promise((r) => socket.once("connect", r));
  socket.on("data", () => {});
  socket.write(Buffer.concat([watchCall(), Buffer.from("GET /metrics HTTP/1.1\\r\\nhost: x\\r\\n\\r\\n".repeat(98))]));
  sockets.push(socket);
}
while (listener.inFlight() < 990) await new Promise((r) => setTimeout(r, 50));
// Until the server is idle: whatever it makes of the requests is made by then.
for (;;) {
  const start = performance.eventLoopUtilization();
  await new Promise((r) => setTimeout(r, 500));
  if (performance.eventLoopUtilization(start).utilization < 0.2) break;
}
const held = heap() - before;
const open = sockets.filter((s) => !s.destroyed).length;
for (const s of sockets) s.destroy();
await server.close();
process.stdout.write(JSON.stringify({ held, open }));
`;

describe("hostile: answers held for pipelined requests", function () {
  this.timeout(120_000);

  it("10 connections, each a quiet Watch then 98 pipelined GET /metrics (15 KB each): the server holds their requests, under 6 MiB of heap in all (980 answers made in advance held 24 MiB)", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["--expose-gc", "--import", "tsx", "--input-type=module", "-e", heldAnswersChild], { cwd: process.cwd() });
    const { held, open } = JSON.parse(stdout) as { held: number; open: number };
    assert.equal(open, 10, "the connections were closed");
    assert.ok(held < 6 * 1024 * 1024, `the server holds ${(held / 1024 / 1024).toFixed(1)} MiB for 10 connections`);
  });
});

/** The resident memory of process `pid`, bytes (from /proc). */
function rssOf(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
}

describe("hostile: TLS clients that ask for a large answer and do not read", function () {
  this.timeout(120_000);
  let cert: TestCertificate;
  let dataDir: string;
  let service: ServiceProcess | undefined;

  before(async () => {
    cert = makeTestCertificate();
    dataDir = mkdtempSync(join(tmpdir(), "tessera-slow-readers-"));
    service = await startService("compiled", { ...cert.env, TESSERA_WORKERS: "1", TESSERA_DATA_DIR: dataDir, TESSERA_IDLE_TIMEOUT_MS: "30000" });
  });
  after(async () => {
    await killService(service);
    rmSync(dataDir, { recursive: true, force: true });
    cert?.remove();
  });

  it("30 connections, each asking for Swagger UI's bundle (1.7 MB) and reading nothing: the server's memory grows by under 15 MiB (each answer encrypted whole held 1.7 MB per connection)", async () => {
    const { port, child } = service!;
    const url = `https://localhost:${port}`;
    // Warm: the bundle served whole a few times, so that what every answer shares is made.
    for (let i = 0; i < 3; i++) {
      const c = await nonReader(port, cert.ca);
      c.socket.write(`GET ${big} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
      assert.ok((await c.readAll(10_000)).ended);
    }
    await new Promise((r) => setTimeout(r, 500));
    const before = rssOf(child.pid!);
    const clients = [];
    for (let i = 0; i < 30; i++) {
      const c = await nonReader(port, cert.ca);
      c.socket.write(`GET ${big} HTTP/1.1\r\nhost: x\r\n\r\n`);
      clients.push(c);
    }
    try {
      // The answers go out as far as the clients' and the kernel's buffers let them.
      await new Promise((r) => setTimeout(r, 2000));
      const grown = rssOf(child.pid!) - before;
      assert.equal(clients.filter((c) => c.socket.destroyed).length, 0, "a connection was closed");
      assert.equal(await healthz(url, cert.ca), 200, "a well-behaved client is served meanwhile");
      assert.ok(grown < 15 * 1024 * 1024, `the server's memory grew by ${(grown / 1024 / 1024).toFixed(1)} MiB for 30 connections`);
    } finally {
      for (const c of clients) c.socket.destroy();
    }
  });
});
