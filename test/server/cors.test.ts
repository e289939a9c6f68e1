// Browsers on every protocol: one CORS policy (TESSERA_CORS_ORIGINS) for REST, Connect and
// gRPC-Web. Each protocol's preflight, as a browser client of it sends it (connect-web, grpc-web,
// fetch), and a cross-origin call after it: the answer names the origin, exposes the headers
// browser code needs (WWW-Authenticate, Retry-After, the gRPC-Web status trailers), and every
// answer varies with Origin.
import assert from "node:assert/strict";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { connectClient, connectError, grpcWebClient } from "../support/clients.js";
import { connectDetails, errorInfoJson } from "../support/error-details.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";

const app = "https://app.example";
const evil = "https://evil.example";

/** What each protocol's browser client asks a preflight for. */
const preflights = {
  rest: { path: "/session", method: "POST", headers: "content-type, x-koms-clientid" },
  connect: {
    path: `/${SessionService.typeName}/CreateSession`,
    method: "POST",
    headers: "connect-protocol-version, connect-timeout-ms, content-type, x-koms-clientid",
  },
  "grpc-web": {
    path: `/${SessionService.typeName}/GetSession`,
    method: "POST",
    headers: "authorization, content-type, grpc-timeout, x-grpc-web, x-koms-clientid, x-user-agent",
  },
} as const;

const exposed = [
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
  "content-encoding",
  "connect-content-encoding",
  "www-authenticate",
  "retry-after",
  "x-request-id",
  "traceparent",
];

function preflight(url: string, path: string, origin: string, method: string, headers: string): Promise<Response> {
  return fetch(url + path, { method: "OPTIONS", headers: { origin, "access-control-request-method": method, "access-control-request-headers": headers } });
}

/** `vary`: a Connect GET answer also varies with Accept-Encoding (its compression). */
function assertCorsAnswer(h: Headers, vary = "Origin"): void {
  assert.equal(h.get("access-control-allow-origin"), app);
  assert.equal(h.get("access-control-allow-credentials"), "true");
  assert.deepEqual(h.get("access-control-expose-headers")?.split(", "), exposed);
  assert.equal(h.get("vary"), vary);
}

describe("server: CORS on every protocol", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { TESSERA_CORS_ORIGINS: app } });
  });
  after(async () => server.close());

  for (const [protocol, p] of Object.entries(preflights)) {
    it(`${protocol}: a preflight from an allowed origin is 204 and allows what the protocol sends`, async () => {
      const res = await preflight(server.url, p.path, app, p.method, p.headers);
      assert.equal(res.status, 204);
      assert.equal(await res.text(), "");
      assert.equal(res.headers.get("access-control-allow-origin"), app);
      assert.equal(res.headers.get("access-control-allow-credentials"), "true");
      assert.equal(res.headers.get("access-control-allow-methods"), "GET, POST, PUT, PATCH, DELETE");
      assert.equal(res.headers.get("access-control-max-age"), "7200");
      assert.equal(res.headers.get("vary"), "Origin");
      const allowed = res.headers.get("access-control-allow-headers")!.split(", ");
      for (const h of p.headers.split(", ")) assert.ok(allowed.includes(h), `${h} allowed`);
    });

    it(`${protocol}: a preflight from another origin is 403 ORIGIN_NOT_ALLOWED`, async () => {
      const res = await preflight(server.url, p.path, evil, p.method, p.headers);
      assert.equal(res.status, 403);
      assert.equal(res.headers.get("access-control-allow-origin"), null);
      assert.equal(res.headers.get("vary"), "Origin");
      assert.deepEqual(await res.json(), { code: "permission_denied", message: `origin ${evil} is not allowed`, details: [errorInfoJson("ORIGIN_NOT_ALLOWED")] });
    });
  }

  it("the allowed headers are a fixed list: the Connect, gRPC-Web and Tessera headers, a request id, and trace context", async () => {
    const res = await preflight(server.url, "/session", app, "PUT", "x-something-else");
    assert.equal(res.status, 204);
    assert.equal(
      res.headers.get("access-control-allow-headers"),
      "content-type, connect-protocol-version, connect-timeout-ms, connect-content-encoding, connect-accept-encoding, content-encoding, accept-encoding, grpc-message-type, x-grpc-web, x-user-agent, grpc-timeout, authorization, x-koms-clientid, x-request-id, traceparent, tracestate",
    );
  });

  it("REST: a cross-origin error exposes WWW-Authenticate", async () => {
    const res = await fetch(`${server.url}/session`, { headers: { origin: app, "x-koms-clientid": testClientId } });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("www-authenticate"), "Bearer");
    assertCorsAnswer(res.headers);
  });

  it("Connect: a cross-origin call, and a cross-origin error read with its details", async () => {
    let header = new Headers();
    const version = await connectClient(JwtService, server.url).getVersion({}, { headers: { origin: app }, onHeader: (h) => (header = h) });
    assert.match(version.version, /^\d+\.\d+\.\d+/);
    assertCorsAnswer(header);
    const e = await connectError(connectClient(SessionService, server.url).getSession({}, { headers: { origin: app, "x-koms-clientid": testClientId } }));
    assertCorsAnswer(e.metadata);
    assert.equal(e.metadata.get("www-authenticate"), "Bearer");
    assert.equal(connectDetails(e).reason, "MISSING_CREDENTIAL");
  });

  it("Connect GET: a simple cross-origin request (no preflight needed) for a side-effect-free method", async () => {
    const res = await fetch(`${server.url}/${JwtService.typeName}/GetVersion?connect=v1&encoding=json&message=%7B%7D`, { headers: { origin: app } });
    assert.equal(res.status, 200);
    assertCorsAnswer(res.headers, "Origin, Accept-Encoding");
    assert.match(((await res.json()) as { version: string }).version, /^\d+\.\d+\.\d+/);
  });

  it("gRPC-Web: a cross-origin error, read with its details", async () => {
    const e = await connectError(grpcWebClient(SessionService, server.url).getSession({}, { headers: { origin: app, "x-koms-clientid": testClientId } }));
    assertCorsAnswer(e.metadata);
    assert.equal(connectDetails(e).reason, "MISSING_CREDENTIAL");
    // As a browser's fetch sees it: the CORS headers on the response, the status in the
    // trailer envelope of the body.
    const raw = await fetch(`${server.url}/${SessionService.typeName}/GetSession`, {
      method: "POST",
      headers: { origin: app, "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "x-koms-clientid": testClientId },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    assert.equal(raw.status, 200);
    assertCorsAnswer(raw.headers);
    assert.match(Buffer.from(await raw.arrayBuffer()).toString("latin1"), /grpc-status: ?16\r\n/);
  });

  it("answers to another origin, or to no Origin, carry no CORS headers but Vary: Origin", async () => {
    for (const headers of [{ origin: evil }, {}] as Array<Record<string, string>>) {
      for (const path of ["/jwt/version", `/${JwtService.typeName}/GetVersion?connect=v1&encoding=json&message=%7B%7D`, "/healthz"]) {
        const res = await fetch(server.url + path, { headers });
        assert.equal(res.status, 200, path);
        assert.equal(res.headers.get("access-control-allow-origin"), null);
        assert.equal(res.headers.get("access-control-expose-headers"), null);
        assert.equal(res.headers.get("vary"), path.includes("?connect=v1") ? "Origin, Accept-Encoding" : "Origin", path);
      }
    }
  });
});

describe("server: CORS off (no TESSERA_CORS_ORIGINS)", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => server.close());

  it("no CORS headers and no Vary; a preflight is no route (405 on an RPC path, REST's own answer elsewhere)", async () => {
    const res = await fetch(`${server.url}/jwt/version`, { headers: { origin: app } });
    assert.equal(res.headers.get("access-control-allow-origin"), null);
    assert.equal(res.headers.get("vary"), null);
    const pre = await preflight(server.url, `/${JwtService.typeName}/GetVersion`, app, "POST", "content-type");
    assert.equal(pre.status, 405);
    assert.equal(pre.headers.get("access-control-allow-origin"), null);
  });
});
