// With TLS configured, one port serves HTTP/2 (ALPN h2: gRPC) and HTTP/1.1 (ALPN http/1.1).
import assert from "node:assert/strict";
import https from "node:https";
import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { h2request } from "../hostile/support.js";
import { errorInfoJson } from "../support/error-details.js";
import { makeTestCertificate, type TestCertificate } from "../support/net.js";
import { startTestServer, type TestServer } from "../support/server.js";

describe("server: TLS with ALPN", function () {
  this.timeout(30000);
  let cert: TestCertificate;
  let server: TestServer;
  let ca: Buffer;

  before(async () => {
    cert = makeTestCertificate();
    ca = cert.ca;
    server = await startTestServer({ env: cert.env });
  });
  after(async () => {
    await server?.close();
    cert?.remove();
  });

  it("serves HTTP/1.1 over TLS", async () => {
    assert.match(server.url, /^https:/);
    const res = await new Promise<{ status: number; body: string; httpVersion: string }>((resolve, reject) => {
      const req = https.get(`${server.url}/healthz`, { ca }, (r) => {
        let body = "";
        r.on("data", (c) => (body += c));
        r.on("end", () => resolve({ status: r.statusCode!, body, httpVersion: r.httpVersion }));
      });
      req.on("error", reject);
    });
    assert.equal(res.status, 200);
    assert.equal(res.httpVersion, "1.1");
    assert.deepEqual(JSON.parse(res.body), { status: "SERVING" });
  });

  it("serves HTTP/2 over TLS (ALPN h2)", async () => {
    const session = http2.connect(server.url, { ca });
    try {
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ":path": "/healthz" });
        let status = 0;
        let body = "";
        req.on("response", (h) => (status = Number(h[":status"])));
        req.on("data", (c) => (body += c));
        req.on("end", () => resolve({ status, body }));
        req.on("error", reject);
      });
      assert.equal(res.status, 200);
      assert.equal(session.alpnProtocol, "h2");
    } finally {
      session.close();
    }
  });

  it("over HTTP/2, a Host that differs from the :authority is a 400 MALFORMED_REQUEST; the same Host is served", async () => {
    const session = http2.connect(server.url, { ca });
    const get = async (host: string) => {
      const a = await h2request(session, { ":path": "/jwt/version", ":authority": `localhost:${server.port}`, host });
      return { status: a.headers[":status"], body: a.data.toString() };
    };
    try {
      const refused = await get("other.example");
      assert.equal(refused.status, 400);
      assert.deepEqual(JSON.parse(refused.body), {
        code: "invalid_argument",
        message: `the Host header "other.example" differs from the :authority "localhost:${server.port}": an HTTP/2 request's Host, if sent, must name the same host and port`,
        details: [errorInfoJson("MALFORMED_REQUEST")],
      });
      assert.equal((await get(`localhost:${server.port}`)).status, 200);
      assert.equal(session.alpnProtocol, "h2");
    } finally {
      session.close();
    }
  });

  it("answers a @grpc/grpc-js client over TLS", async () => {
    const Ctor = grpc.makeGenericClientConstructor(
      {
        Check: {
          path: "/grpc.health.v1.Health/Check",
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      "Health",
    );
    const client = new Ctor(`localhost:${server.port}`, grpc.credentials.createSsl(ca));
    try {
      const reply = await new Promise<Buffer>((resolve, reject) =>
        (client as unknown as { Check: Function }).Check(Buffer.alloc(0), (err: Error | null, res: Buffer) => (err ? reject(err) : resolve(res))),
      );
      assert.deepEqual([...reply], [0x08, 0x01]); // status: SERVING
    } finally {
      client.close();
    }
  });
});
