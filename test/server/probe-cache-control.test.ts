// The probes' answers are never stored by a cache: GET and HEAD /healthz and /readyz carry
// `Cache-Control: no-store` and `Pragma: no-cache` when they answer 200 SERVING, as their 503 does.
// A 200 without Cache-Control may be stored by a shared cache with a heuristic freshness (RFC 9111
// 4.2.2; a proxy's default TTL), which would then answer SERVING for an instance that is out.
import assert from "node:assert/strict";
import http from "node:http";
import https from "node:https";
import http2 from "node:http2";
import { makeTestCertificate, type TestCertificate } from "../support/net.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";

interface ProbeAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request over HTTP/1.1 (http, or https trusting `ca`). */
function http1(url: string, method: string, path: string, ca?: Buffer): Promise<ProbeAnswer> {
  return new Promise((resolve, reject) => {
    const req = (ca === undefined ? http : https).request(`${url}${path}`, { method, agent: false, ...(ca !== undefined && { ca }) }, (r) => {
      let body = "";
      r.on("data", (c) => (body += c));
      r.on("end", () => resolve({ status: r.statusCode!, headers: r.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** One request over HTTP/2 (h2c, or ALPN h2 trusting `ca`). */
function h2(url: string, method: string, path: string, ca?: Buffer): Promise<ProbeAnswer> {
  const session = http2.connect(url, ca === undefined ? {} : { ca });
  return new Promise<ProbeAnswer>((resolve, reject) => {
    session.on("error", reject);
    const req = session.request({ ":method": method, ":path": path });
    let headers: http2.IncomingHttpHeaders = {};
    let body = "";
    req.on("response", (h) => (headers = h));
    req.on("data", (c) => (body += c));
    req.on("end", () => resolve({ status: Number(headers[":status"]), headers, body }));
    req.on("error", reject);
    req.end();
  }).finally(() => session.close());
}

function checkProbes(transport: string, send: (method: string, path: string) => Promise<ProbeAnswer>): void {
  for (const path of ["/healthz", "/readyz"]) {
    for (const method of ["GET", "HEAD"]) {
      it(`${transport}: ${method} ${path} answers 200 SERVING, no-store`, async () => {
        const res = await send(method, path);
        assert.equal(res.status, 200, "status");
        assert.equal(res.body, method === "GET" ? '{"status":"SERVING"}' : "", "body");
        assert.equal(res.headers["cache-control"], "no-store", "Cache-Control");
        assert.equal(res.headers["pragma"], "no-cache", "Pragma");
      });
    }
  }
}

// Plain (HTTP/1.1 and h2c) on every store under test, and TLS (HTTP/1.1 and ALPN h2).
const targets = [...storesUnderTest().map((store) => ({ store, tls: false })), { store: "sqlite" as const, tls: true }];

for (const { store, tls } of targets) {
  describe(`Probe answers are not cacheable on ${store}${tls ? " over TLS" : ""}`, () => {
    let cert: TestCertificate | undefined;
    let server: TestServer;
    before(async () => {
      cert = tls ? makeTestCertificate() : undefined;
      server = await startTestServer({ store, ...(cert && { env: cert.env }) });
    });
    after(async () => {
      await server?.close();
      cert?.remove();
    });
    checkProbes(tls ? "HTTP/1.1 over TLS" : "HTTP/1.1", (method, path) => http1(server.url, method, path, cert?.ca));
    checkProbes(tls ? "HTTP/2 over TLS (ALPN h2)" : "h2c", (method, path) => h2(server.url, method, path, cert?.ca));
  });
}
