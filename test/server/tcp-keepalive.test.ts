// TESSERA_TCP_KEEPALIVE_SECONDS: every accepted connection has TCP keepalive on, so a client
// that vanished during a quiet stream is noticed. Observed as the kernel reports it: the server
// side of each test connection in /proc/net/tcp, whose timer column reads "02:<when>" (the
// keepalive timer, due in <when> clock ticks) when keepalive is on, "00:..." (no timer) on an
// idle connection without it. Plain HTTP/1.1, h2c, TLS, and connections handed to another
// worker under TESSERA_WORKERS.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { makeTestCertificate } from "../support/net.js";
import { killService, startService } from "../support/process.js";
import { startTestServer } from "../support/server.js";

const ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());

/** The timer of the TCP socket 127.0.0.1:`local` -> 127.0.0.1:`remote`, from /proc/net/tcp. */
function timerOf(local: number, remote: number): { kind: number; dueInSeconds: number } {
  const hex = (port: number) => `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const row = readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .find((f) => f[1] === hex(local) && f[2] === hex(remote));
  assert.ok(row, `no socket ${local} -> ${remote} in /proc/net/tcp`);
  const [kind, when] = row[5]!.split(":");
  return { kind: Number.parseInt(kind!, 16), dueInSeconds: Number.parseInt(when!, 16) / ticksPerSecond };
}

const keepalive = 2;
const retransmit = 1;

/** The socket's timer once what the server sent last has been acknowledged (the retransmit timer is gone). */
async function settledTimerOf(local: number, remote: number): Promise<{ kind: number; dueInSeconds: number }> {
  let t = timerOf(local, remote);
  for (let i = 0; i < 100 && t.kind === retransmit; i++) {
    await new Promise((r) => setTimeout(r, 50));
    t = timerOf(local, remote);
  }
  return t;
}

/** A plain connection that has been answered once (so the server has surely taken it), left open. */
async function answeredConnection(port: number, requestId = "keepalive"): Promise<net.Socket> {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  await new Promise<void>((resolve) => s.once("connect", () => resolve()));
  s.write(`GET /jwt/version HTTP/1.1\r\nhost: x\r\nx-request-id: ${requestId}\r\n\r\n`);
  await new Promise<void>((resolve) => s.once("data", () => resolve()));
  return s;
}

describe("server: TCP keepalive on accepted connections", function () {
  this.timeout(60_000);

  it("HTTP/1.1 and h2c: keepalive on, its first probe due within TESSERA_TCP_KEEPALIVE_SECONDS (30)", async () => {
    const server = await startTestServer({ env: { TESSERA_TCP_KEEPALIVE_SECONDS: "30" } });
    const session = http2.connect(server.url);
    try {
      const s = await answeredConnection(server.port);
      const t = await settledTimerOf(server.port, s.localPort!);
      assert.equal(t.kind, keepalive);
      assert.ok(t.dueInSeconds > 0 && t.dueInSeconds <= 30, `due in ${t.dueInSeconds} s`);
      s.destroy();

      await new Promise<void>((resolve, reject) => {
        const req = session.request({ ":path": "/healthz" });
        req.on("response", () => resolve());
        req.on("error", reject);
        req.resume();
        req.end();
      });
      const h2 = await settledTimerOf(server.port, (session.socket as net.Socket).localPort!);
      assert.equal(h2.kind, keepalive);
      assert.ok(h2.dueInSeconds > 0 && h2.dueInSeconds <= 30, `due in ${h2.dueInSeconds} s`);
    } finally {
      session.close();
      await server.close();
    }
  });

  it("TLS: keepalive on the TCP connection under it; 60 s by default", async () => {
    const cert = makeTestCertificate();
    const server = await startTestServer({ env: cert.env });
    try {
      const s = tls.connect({ host: "127.0.0.1", port: server.port, ca: cert.ca, servername: "localhost", ALPNProtocols: ["http/1.1"] });
      s.on("error", () => {});
      await new Promise<void>((resolve) => s.once("secureConnect", () => resolve()));
      s.write("GET /jwt/version HTTP/1.1\r\nhost: x\r\n\r\n");
      await new Promise<void>((resolve) => s.once("data", () => resolve()));
      const t = await settledTimerOf(server.port, s.localPort!);
      assert.equal(t.kind, keepalive);
      assert.ok(t.dueInSeconds > 30 && t.dueInSeconds <= 60, `due in ${t.dueInSeconds} s`);
      s.destroy();
    } finally {
      await server.close();
      cert.remove();
    }
  });

  it("TESSERA_TCP_KEEPALIVE_SECONDS=0: off (no timer on an idle connection)", async () => {
    const server = await startTestServer({ env: { TESSERA_TCP_KEEPALIVE_SECONDS: "0" } });
    try {
      const s = await answeredConnection(server.port);
      assert.equal((await settledTimerOf(server.port, s.localPort!)).kind, 0);
      s.destroy();
    } finally {
      await server.close();
    }
  });

  it("TESSERA_WORKERS=2: on every connection, those handed to the second worker too", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-keepalive-"));
    const cluster = await startService("compiled", { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir, TESSERA_TCP_KEEPALIVE_SECONDS: "30" }, { listeners: 2 });
    const sockets: net.Socket[] = [];
    try {
      // Handed round-robin: one at a time, each answered before the next.
      for (let i = 0; i < 4; i++) sockets.push(await answeredConnection(cluster.port, `keepalive-${i}`));
      const workerOf = (i: number) => cluster.lines().find((l) => l.msg === "rpc" && l.requestId === `keepalive-${i}`)?.worker;
      for (let i = 0; i < 50 && sockets.some((_, n) => workerOf(n) === undefined); i++) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual([...new Set(sockets.map((_, i) => workerOf(i)))].sort(), [1, 2]);
      for (const s of sockets) {
        const t = await settledTimerOf(cluster.port, s.localPort!);
        assert.equal(t.kind, keepalive, `the connection served by worker ${workerOf(sockets.indexOf(s))} has no keepalive`);
        assert.ok(t.dueInSeconds > 0 && t.dueInSeconds <= 30, `due in ${t.dueInSeconds} s`);
      }
    } finally {
      for (const s of sockets) s.destroy();
      await killService(cluster);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
