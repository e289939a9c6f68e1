// Under TLS every answer carries Strict-Transport-Security (TESSERA_HSTS_MAX_AGE_SECONDS, one year
// by default; 0: none), so that a browser that has once reached the service over HTTPS does not
// send its credentials or cookie over plain HTTP; never without TLS. The seeds' answers are
// otherwise unchanged.
import assert from "node:assert/strict";
import https from "node:https";
import http2 from "node:http2";
import { makeTestCertificate, type TestCertificate } from "../support/net.js";
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
