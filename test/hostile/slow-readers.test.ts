/**
 * Clients that do not read their answers, over HTTP/1.1: a client that pipelines requests and
 * leaves before their answers ends every one of its calls.
 * The answers pipelined here are Swagger UI's bundle (about 1.4 MB each): a few fill the
 * kernel's socket buffers on both sides, so the server's output truly backs up.
 */
import { strict as assert } from "node:assert";
import net from "node:net";
import tls from "node:tls";
import { create, toBinary } from "@bufbuild/protobuf";
import { HealthCheckRequestSchema } from "../../gen/health/v1/health_pb.js";
import { grpcFrame } from "./support.js";
import { makeTestCertificate, type TestCertificate } from "../support/net.js";
import { startTestServer, type TestServer } from "../support/server.js";

const timeouts = { TESSERA_HEADERS_TIMEOUT_MS: "1000", TESSERA_REQUEST_TIMEOUT_MS: "1500", TESSERA_IDLE_TIMEOUT_MS: "1000" };
const big = "/docs/swagger-ui-bundle.js";

/** Polls `check` every 50 ms until it holds; false if it has not within `limitMs`. */
async function eventually(check: () => boolean, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

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
});
