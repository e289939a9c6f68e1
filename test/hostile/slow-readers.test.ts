/**
 * Clients that do not read their answers, over HTTP/1.1 (plain and TLS): a connection whose
 * output has made no progress for the idle timeout (1 s here) is closed, while one whose client
 * reads slowly but steadily, and a quiet stream whose client does read (a gRPC-Web
 * Health/Watch over HTTP/1.1, sending nothing between changes), are kept for as long as the
 * client wants them. A client that leaves ends every call it pipelined.
 * The answers pipelined here are Swagger UI's bundle (about 1.4 MB each): a few fill the
 * kernel's socket buffers on both sides, so the server's output truly backs up.
 */
import { strict as assert } from "node:assert";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { create, toBinary } from "@bufbuild/protobuf";
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus } from "../../gen/health/v1/health_pb.js";
import { eventually, grpcFrame } from "./support.js";
import { grpcWebClient } from "../support/clients.js";
import { makeTestCertificate, type TestCertificate } from "../support/net.js";
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

/** A gRPC-Web Health/Watch request (HTTP/1.1), to pipeline. */
const watchRequest = (() => {
  const body = grpcFrame(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "" })));
  return Buffer.concat([
    Buffer.from(`POST /grpc.health.v1.Health/Watch HTTP/1.1\r\nhost: x\r\ncontent-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\ncontent-length: ${body.length}\r\n\r\n`),
    body,
  ]);
})();

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

  it("a client that pipelines requests and leaves before their answers: every call ends, the pipelined ones too (a Health/Watch ends as canceled)", async () => {
    const server = plainServer;
    const watches = () => rpcLines(server, "grpc.health.v1.Health/Watch");
    const before = watches().length;
    const c = await nonReader(server.port);
    // The answers back up (the client reads nothing); the last ones wait behind the first.
    c.socket.write(Buffer.concat([Buffer.from(`GET ${big} HTTP/1.1\r\nhost: x\r\n\r\n`.repeat(10)), watchRequest, watchRequest]));
    assert.ok(await eventually(() => server.tessera.server.listener.inFlight() >= 3, 10_000), "the requests were not taken");
    c.socket.destroy();
    assert.ok(await eventually(() => server.tessera.server.listener.inFlight() === 0, 20_000), `${server.tessera.server.listener.inFlight()} requests still in flight`);
    assert.ok(await eventually(() => watches().length === before + 2, 20_000), "the pipelined Watch calls go on");
    assert.deepEqual(watches().slice(before).map((l) => l.code), ["canceled", "canceled"]);
    assert.deepEqual(server.logs.filter((l) => /"level":"error"/.test(l)), []);
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
