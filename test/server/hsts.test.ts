// Under TLS every answer carries Strict-Transport-Security (TESSERA_HSTS_MAX_AGE_SECONDS, one year
// by default; 0: none), so that a browser that has once reached the service over HTTPS does not
// send its credentials or cookie over plain HTTP; never without TLS. The seeds' answers are
// otherwise unchanged.
import assert from "node:assert/strict";
import https from "node:https";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { http1Answer, makeTestCertificate, type TestCertificate } from "../support/net.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { password, uniqueEmail } from "../support/users.js";

interface Answer {
  status: number;
  hsts: string | undefined;
  body: string;
}

function request(server: TestServer, ca: Buffer, method: string, path: string, headers: Record<string, string>, json?: unknown): Promise<Answer> {
  const body = json === undefined ? undefined : JSON.stringify(json);
  return new Promise((resolve, reject) => {
    const req = https.request(`${server.url}${path}`, { method, ca, headers: { ...headers, ...(body !== undefined && { "content-type": "application/json" }) } }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, hsts: res.headers["strict-transport-security"] as string | undefined, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** What `socket` (connected) is sent back for `bytes`, until the server closes the connection (latin1). */
function exchange(socket: net.Socket, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => (received += d));
    socket.on("close", () => resolve(received));
    socket.on("error", reject);
    socket.write(bytes);
  });
}

/** The one HTTP/1.1 answer to `bytes` sent over TLS (ALPN http/1.1) to `server`. */
async function tlsAnswer(server: TestServer, ca: Buffer, bytes: string) {
  const socket = tls.connect({ host: "127.0.0.1", port: server.port, servername: "localhost", ca, ALPNProtocols: ["http/1.1"] });
  await new Promise((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
  return http1Answer(await exchange(socket, bytes));
}

describe("server: Strict-Transport-Security under TLS", function () {
  this.timeout(30000);
  let cert: TestCertificate;
  before(() => (cert = makeTestCertificate()));
  after(() => cert?.remove());

  describe("by default", () => {
    let server: TestServer;
    before(async () => (server = await startTestServer({ env: cert.env })));
    after(async () => server?.close());

    it("REST answers over HTTP/1.1, successes and errors alike, carry max-age of one year", async () => {
      const created = await request(server, cert.ca, "POST", "/user", { "x-koms-clientid": testClientId }, { email: uniqueEmail("hsts"), password });
      assert.equal(created.status, 201);
      assert.equal(created.hsts, "max-age=31536000");
      const refused = await request(server, cert.ca, "POST", "/session", { "x-koms-clientid": testClientId }, { account_type: "traditional", email: uniqueEmail("hsts"), password });
      assert.equal(refused.status, 401);
      assert.equal(refused.hsts, "max-age=31536000");
      const missing = await request(server, cert.ca, "GET", "/no/such/path", {});
      assert.equal(missing.status, 404);
      assert.equal(missing.hsts, "max-age=31536000");
    });

    it("answers over HTTP/2 carry it too", async () => {
      const session = http2.connect(server.url, { ca: cert.ca });
      try {
        const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          const req = session.request({ ":path": "/healthz" });
          req.on("response", resolve);
          req.on("error", reject);
          req.resume();
        });
        assert.equal(headers[":status"], 200);
        assert.equal(headers["strict-transport-security"], "max-age=31536000");
      } finally {
        session.close();
      }
    });

    it("the answers the listener makes itself, before any handler, carry it too: bytes the parser refuses, a header block over the bound, an Expect not met, CONNECT, an HTTP/2.0 request line", async () => {
      const cases: [string, number, string][] = [
        ["GARBAGE\r\n\r\n", 400, "MALFORMED_REQUEST"],
        [`GET /healthz HTTP/1.1\r\nHost: localhost\r\nx-big: ${"a".repeat(70_000)}\r\n\r\n`, 431, "REQUEST_TOO_LARGE"],
        ["GET /healthz HTTP/1.1\r\nHost: localhost\r\nExpect: teapot\r\n\r\n", 417, "MALFORMED_REQUEST"],
        ["CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, "METHOD_NOT_ALLOWED"],
        ["GET /healthz HTTP/2.0\r\nHost: localhost\r\n\r\n", 505, "UNIMPLEMENTED"],
      ];
      for (const [bytes, status, reason] of cases) {
        const answer = await tlsAnswer(server, cert.ca, bytes);
        assert.equal(answer.status, status, bytes.slice(0, 40));
        assert.equal(JSON.parse(answer.body.toString()).details[0].debug.reason, reason);
        assert.equal(answer.headers["strict-transport-security"], "max-age=31536000", `the ${status}`);
      }
      const session = http2.connect(server.url, { ca: cert.ca });
      try {
        for (const [headers, status] of [[{ ":path": "/healthz", expect: "teapot" }, 417], [{ ":method": "CONNECT", ":authority": "example.com:443" }, 405]] as const) {
          const answer = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
            const req = session.request(headers, headers[":method"] === "CONNECT" ? {} : { endStream: true });
            req.on("response", resolve);
            req.on("error", reject);
            req.resume();
          });
          assert.equal(answer[":status"], status);
          assert.equal(answer["strict-transport-security"], "max-age=31536000", `the ${status} over HTTP/2`);
        }
      } finally {
        session.close();
      }
      // Plain HTTP sent to the TLS port is told so in plain HTTP, where the header means nothing.
      const plain = http1Answer(await exchange(net.connect(server.port, "127.0.0.1"), "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"));
      assert.equal(plain.status, 400);
      assert.equal(plain.headers["strict-transport-security"], undefined);
    });
  });

  it("TESSERA_HSTS_MAX_AGE_SECONDS sets max-age; 0 sends none", async () => {
    for (const [value, expected] of [["600", "max-age=600"], ["0", undefined]] as const) {
      const server = await startTestServer({ env: { ...cert.env, TESSERA_HSTS_MAX_AGE_SECONDS: value } });
      try {
        const r = await request(server, cert.ca, "GET", "/healthz", {});
        assert.equal(r.status, 200);
        assert.equal(r.hsts, expected);
      } finally {
        await server.close();
      }
    }
  });

  it("without TLS no answer carries it", async () => {
    const server = await startTestServer();
    try {
      const r = await fetch(`${server.url}/healthz`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("strict-transport-security"), null);
    } finally {
      await server.close();
    }
  });
});
