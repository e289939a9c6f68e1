// Trace correlation: a W3C `traceparent` is accepted on every protocol (REST, Connect, gRPC,
// gRPC-Web); each call gets a span id of its own, answered in `traceparent`; every log line and
// audit event of the call carries `trace_id` and `span_id`. With OTEL_EXPORTER_OTLP_ENDPOINT the
// spans of calls, store operations and hashing are exported over OTLP/HTTP (received here by a
// small OTLP server); without it none of the OpenTelemetry SDK is loaded.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { GrpcJsClient, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { admin, clientIdHeader, password, signUp, uniqueEmail } from "../support/users.js";
import { auditApi } from "../audit/api.js";
import { expectOk } from "../support/api.js";

const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const parentSpan = "00f067aa0ba902b7";
const traceparent = `00-${traceId}-${parentSpan}-01`;
const answered = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The log lines of one request. */
const linesOf = (server: TestServer, requestId: string) =>
  server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.requestId === requestId);

/** The trace and span id a call answered with, checked against its log lines. */
function checkCall(server: TestServer, requestId: string, header: string | null | undefined, expectedTrace: string | undefined): { trace: string; span: string } {
  const m = answered.exec(header ?? "");
  assert.ok(m, `traceparent answered: ${header}`);
  const [, trace, span] = m as unknown as [string, string, string];
  if (expectedTrace !== undefined) assert.equal(trace, expectedTrace);
  assert.notEqual(span, parentSpan, "the call has a span id of its own");
  const lines = linesOf(server, requestId);
  assert.ok(lines.some((l) => l.msg === "rpc"), `no rpc line for ${requestId}`);
  for (const l of lines) assert.deepEqual([l.trace_id, l.span_id], [trace, span], JSON.stringify(l));
  return { trace, span };
}

for (const store of storesUnderTest()) {
  describe(`trace correlation on ${store}`, function () {
    this.timeout(30_000);
    let server: TestServer;
    before(async () => (server = await startTestServer({ store })));
    after(() => server?.close());

    it("REST: the caller's trace continues; a new span id comes back in traceparent and is in every log line", async () => {
      const r = await rest(server.url, "GET", "/jwt/version", { headers: { traceparent, tracestate: "vendor=abc", "x-request-id": "trace-rest" } });
      assert.equal(r.status, 200);
      checkCall(server, "trace-rest", r.headers.get("traceparent"), traceId);
    });

    it("Connect: likewise", async () => {
      const res = await fetch(`${server.url}/tessera.jwt.v1.JwtService/GetVersion`, {
        method: "POST",
        headers: { "content-type": "application/json", traceparent, "x-request-id": "trace-connect" },
        body: "{}",
      });
      assert.equal(res.status, 200);
      checkCall(server, "trace-connect", res.headers.get("traceparent"), traceId);
    });

    it("gRPC (@grpc/grpc-js): traceparent in the metadata, both ways", async () => {
      const client = new GrpcJsClient(JwtService, server.url);
      try {
        const r = await client.call("GetVersion", {}, { traceparent, "x-request-id": "trace-grpc" });
        assert.equal(r.error, undefined);
        checkCall(server, "trace-grpc", r.header?.get("traceparent")[0] as string | undefined, traceId);
      } finally {
        client.close();
      }
    });

    it("gRPC-Web: likewise", async () => {
      let header: string | null = null;
      const client = createClient(JwtService, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }));
      await client.getVersion({}, { headers: { traceparent, "x-request-id": "trace-grpc-web" }, onHeader: (h) => (header = h.get("traceparent")) });
      checkCall(server, "trace-grpc-web", header, traceId);
    });

    it("a new span id for every call of one trace; a new trace without (or with an invalid) traceparent", async () => {
      const spans = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const r = await rest(server.url, "GET", "/jwt/version", { headers: { traceparent, "x-request-id": `trace-same-${i}` } });
        spans.add(checkCall(server, `trace-same-${i}`, r.headers.get("traceparent"), traceId).span);
      }
      assert.equal(spans.size, 3);
      const invalid = ["", "garbage", `ff-${traceId}-${parentSpan}-01`, `00-${"0".repeat(32)}-${parentSpan}-01`, `00-${traceId}-${"0".repeat(16)}-01`, `00-${traceId.toUpperCase()}-${parentSpan}-01`, `00-${traceId}-${parentSpan}-01-extra`];
      const traces = new Set<string>();
      for (const [i, sent] of invalid.entries()) {
        const r = await rest(server.url, "GET", "/jwt/version", { headers: { ...(sent && { traceparent: sent }), "x-request-id": `trace-new-${i}` } });
        const { trace } = checkCall(server, `trace-new-${i}`, r.headers.get("traceparent"), undefined);
        assert.notEqual(trace, traceId, sent);
        traces.add(trace);
      }
      assert.equal(traces.size, invalid.length, "each call starts a trace of its own");
    });

    it("trace flags: the caller's sampled flag comes back; flags this version does not define are answered as zero (W3C: vendors MUST)", async () => {
      for (const [i, [sent, back]] of [["01", "01"], ["00", "00"], ["ff", "01"], ["fe", "00"], ["03", "01"]].entries()) {
        const r = await rest(server.url, "GET", "/jwt/version", { headers: { traceparent: `00-${traceId}-${parentSpan}-${sent}`, "x-request-id": `trace-flags-${i}` } });
        checkCall(server, `trace-flags-${i}`, r.headers.get("traceparent"), traceId);
        assert.equal(answered.exec(r.headers.get("traceparent")!)![3], back, `flags ${sent}`);
      }
    });

    it("audit events carry the call's trace_id and span_id", async () => {
      const email = uniqueEmail("traced");
      await signUp(server, email);
      const r = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: { ...clientIdHeader, traceparent, "x-request-id": "trace-audit" } });
      assert.equal(r.status, 200);
      const { span } = checkCall(server, "trace-audit", r.headers.get("traceparent"), traceId);
      const events = expectOk(await auditApi("rest", server.url).listAuditEvents({ type: "login" }, admin)).events.filter((e) => e.request_id === "trace-audit");
      assert.deepEqual(events.map((e) => [e.trace_id, e.span_id]), [[traceId, span]]);
    });
  });
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
}

describe("trace export: OTEL_EXPORTER_OTLP_ENDPOINT", function () {
  this.timeout(60_000);
  let collector: http.Server;
  let endpoint: string;
  const received: Array<{ path: string; contentType: string; body: string }> = [];
  before(async () => {
    collector = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        received.push({ path: req.url ?? "", contentType: req.headers["content-type"] ?? "", body });
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
      });
    });
    await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
    endpoint = `http://127.0.0.1:${(collector.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((r) => collector.close(() => r())));

  const spans = (): OtlpSpan[] =>
    received.flatMap((r) => {
      assert.equal(r.path, "/v1/traces");
      assert.match(r.contentType, /^application\/json/);
      const doc = JSON.parse(r.body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
      return doc.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
    });

  it("exports the call's span (child of the caller's), its store operations and its hashing (children of the call's)", async () => {
    const server = await startTestServer({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } });
    let span: string;
    try {
      assert.equal(server.tessera.server.listener.secure, false);
      const email = uniqueEmail("exported");
      const r = await rest(server.url, "POST", "/user", { json: { email, password }, headers: { ...clientIdHeader, traceparent, "x-request-id": "trace-export" } });
      assert.equal(r.status, 201);
      span = checkCall(server, "trace-export", r.headers.get("traceparent"), traceId).span;
    } finally {
      await server.close(); // flushes the batch
    }
    const all = spans();
    const call = all.find((s) => s.spanId === span);
    assert.ok(call, `the call's span was not exported: ${JSON.stringify(all.map((s) => s.name))}`);
    assert.deepEqual([call.traceId, call.parentSpanId, call.name], [traceId, parentSpan, "tessera.session.v1.UserService/CreateUser"]);
    const children = all.filter((s) => s.parentSpanId === span).map((s) => s.name);
    assert.ok(children.includes("argon2id"), `children: ${children.join(", ")}; all: ${JSON.stringify(all)}`);
    assert.ok(children.includes("store users.findByLogin"), `children: ${children.join(", ")}`);
    assert.ok(children.includes("store users.create"), `children: ${children.join(", ")}`);
    for (const s of all.filter((x) => x.parentSpanId === span)) assert.equal(s.traceId, traceId);
  });

  it("a request that reaches no method is exported as its HTTP method alone: never its path (which may hold a credential, and has no bound)", async () => {
    const server = await startTestServer({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } });
    const secret = "hand-off-token-in-the-path-0123456789";
    const sent: Array<[string, string, number, string]> = [
      ["DELETE", `/api/authenticationtoken/${secret}`, 405, "DELETE"],
      ["GET", `/api/authenticationtoken/${secret}?bogus=1`, 400, "GET"],
      ["GET", `/nowhere/${secret}`, 404, "GET"],
      ["PROPFIND", `/${secret}`, 404, "HTTP"], // OpenTelemetry: a method it does not know is named HTTP
    ];
    const ids: string[] = [];
    try {
      for (const [method, path, status] of sent) {
        const r = await rest(server.url, method, path);
        assert.equal(r.status, status, `${method} ${path}`);
        ids.push(answered.exec(r.headers.get("traceparent") ?? "")![2]!);
      }
    } finally {
      await server.close(); // flushes the batch
    }
    const all = spans();
    assert.deepEqual(
      ids.map((id) => all.find((s) => s.spanId === id)?.name),
      sent.map(([, , , name]) => name),
    );
    assert.deepEqual(all.filter((s) => s.name.includes(secret)), []);
  });

  /** The module URLs a process that starts Tessera and makes one call resolved. */
  const loadedBy = async (env: Record<string, string>): Promise<string[]> => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-loads-"));
    const log = join(dir, "loads.txt");
    try {
      const child = spawn(process.execPath, ["--import", "tsx", "--import", "./test/server/fixtures/record-loads.mjs", "test/server/fixtures/start-and-call.ts"], {
        env: { ...process.env, LOAD_LOG: log, MONGODB_URI: "", ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      await new Promise((resolve) => child.once("exit", resolve));
      assert.equal(stdout.trim(), "status 201", stderr);
      return readFileSync(log, "utf8").split("\n").filter(Boolean);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const sdk = /\/@opentelemetry\/(sdk-trace|exporter-trace-otlp-http|resources|otlp-exporter-base|otlp-transformer|core)\//;

  it("without it, no module of the OpenTelemetry SDK is loaded (with it, they are)", async () => {
    const without = await loadedBy({});
    assert.ok(without.some((u) => u.includes("/src/tessera.ts")), "the recorder saw the server's modules");
    assert.deepEqual(without.filter((u) => sdk.test(u)), []);
    const withEndpoint = await loadedBy({ OTLP_ENDPOINT: endpoint });
    assert.ok(withEndpoint.some((u) => /\/@opentelemetry\/sdk-trace\//.test(u)), "the SDK was loaded with an endpoint");
  });
});
