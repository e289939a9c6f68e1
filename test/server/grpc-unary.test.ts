// Unary gRPC, gRPC-Web and Connect calls are answered by src/server/grpc-unary.ts, not by connect-es's
// streaming handlers: the two must give the same answer, byte for byte. Each request below is
// sent twice on one server: plain (the unary path) and with `grpc-encoding: gzip` (an
// uncompressed envelope, which gRPC allows) and `grpc-accept-encoding: identity`, which the
// unary path leaves to connect-es (Connect: with `content-encoding: identity`); status, headers
// (but the date and HTTP/1.1's framing), trailers and body must agree. gRPC over HTTP/2;
// gRPC-Web and Connect over HTTP/2 and HTTP/1.1.
import { strict as assert } from "node:assert";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { gunzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { CreateUserRequestSchema } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { GetSessionRequestSchema } from "../../gen/tessera/session/v1/session_pb.js";
import { ManualClock } from "../../src/core/clock.js";
import { unaryInvoked } from "../../src/server/grpc-unary.js";
import { AuditService, ListAuditEventsRequestSchema, ListAuditEventsResponseSchema } from "../../gen/tessera/audit/v1/audit_pb.js";
import { GrpcJsClient } from "../support/clients.js";
import { grpcFrame, h2request, type H2Answer } from "../hostile/support.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { admin, startSession, signUp, uniqueEmail } from "../support/users.js";

const paths = {
  version: "/tessera.jwt.v1.JwtService/GetVersion",
  session: "/tessera.session.v1.SessionService/GetSession",
  createUser: "/tessera.jwt.v1.JwtService/CreateUser",
};

function comparable(a: H2Answer) {
  const { date: _d, "transfer-encoding": _t, connection: _c, "keep-alive": _k, traceparent, ...headers } = a.headers;
  // Each call is a span of its own: the trace it continues is what both answers share.
  return { headers, trace: String(traceparent).split("-")[1], trailers: a.trailers, body: a.data.toString("hex") };
}

/** One HTTP/1.1 request, its answer in H2Answer's shape (no trailers). */
function h1request(url: string, headers: Record<string, string>, body: Buffer): Promise<H2Answer> {
  const { ":method": method, ":path": path, ...rest } = headers;
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, url), { method, headers: rest, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ headers: { ...res.headers, ":status": res.statusCode } as http2.IncomingHttpHeaders, trailers: {}, data: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** grpc-status of a gRPC-Web answer: from the trailer envelope that ends its body. */
function webStatus(a: H2Answer): number {
  let pos = 0;
  while (pos + 5 <= a.data.length) {
    const len = a.data.readUInt32BE(pos + 1);
    if (a.data[pos]! & 0x80) return Number(/grpc-status: (\d+)/.exec(a.data.subarray(pos + 5, pos + 5 + len).toString("latin1"))?.[1]);
    pos += 5 + len;
  }
  throw new Error("no trailer envelope");
}

describe("server: unary gRPC answered outside connect-es's stream pipeline", function () {
  this.timeout(30000);
  let server: TestServer;
  let session: http2.ClientHttp2Session;
  let token: string;
  before(async () => {
    // A clock that stands still: a token check's expires_in counts down in whole seconds, and the
    // two requests of a pair must not straddle a second.
    server = await startTestServer({ clock: new ManualClock() });
    session = http2.connect(server.url);
    const email = uniqueEmail("grpc-unary");
    await signUp(server, email);
    token = (await startSession(server, email)).access_token;
  });
  after(async () => {
    session.close();
    await server.close();
  });

  const cases: Array<{ name: string; path: keyof typeof paths; headers?: () => Record<string, string>; body: () => Buffer; grpcStatus: number }> = [
    { name: "a no-op (GetVersion)", path: "version", body: () => grpcFrame(new Uint8Array()), grpcStatus: 0 },
    {
      name: "a token check (GetSession) with a live session",
      path: "session",
      headers: () => ({ authorization: `Bearer ${token}`, "x-koms-clientid": testClientId }),
      body: () => grpcFrame(toBinary(GetSessionRequestSchema, create(GetSessionRequestSchema))),
      grpcStatus: 0,
    },
    {
      name: "no credential: UNAUTHENTICATED with its challenge and details",
      path: "session",
      headers: () => ({ "x-koms-clientid": testClientId }),
      body: () => grpcFrame(new Uint8Array()),
      grpcStatus: Code.Unauthenticated,
    },
    { name: "protobuf that does not parse: INVALID_ARGUMENT", path: "version", body: () => grpcFrame(Buffer.from([0x0a, 0x7f])), grpcStatus: Code.InvalidArgument },
    // A deadline that has passed on arrival ends the call at once, as connect-es's handlers end it.
    { name: "a deadline already passed (grpc-timeout 0m): DEADLINE_EXCEEDED", path: "version", headers: () => ({ "grpc-timeout": "0m" }), body: () => grpcFrame(new Uint8Array()), grpcStatus: Code.DeadlineExceeded },
    // Deadlines are kept in whole ms, rounded down: one under a millisecond has passed on arrival.
    ...["1n", "1u", "999u", "999999n"].map((t) => ({ name: `a deadline under a millisecond (grpc-timeout ${t}): DEADLINE_EXCEEDED`, path: "version" as const, headers: () => ({ "grpc-timeout": t }), body: () => grpcFrame(new Uint8Array()), grpcStatus: Code.DeadlineExceeded })),
    {
      name: "a missing field: INVALID_ARGUMENT with BadRequest details",
      path: "createUser",
      body: () => grpcFrame(toBinary(CreateUserRequestSchema, create(CreateUserRequestSchema))),
      grpcStatus: Code.InvalidArgument,
    },
  ];

  const transports = [
    { name: "gRPC over HTTP/2", contentType: "application/grpc", send: (h: Record<string, string>, b: Buffer) => h2request(session, h, b), status: (a: H2Answer) => Number(a.trailers["grpc-status"]) },
    { name: "gRPC-Web over HTTP/2", contentType: "application/grpc-web+proto", send: (h: Record<string, string>, b: Buffer) => h2request(session, h, b), status: webStatus },
    { name: "gRPC-Web over HTTP/1.1", contentType: "application/grpc-web+proto", send: (h: Record<string, string>, b: Buffer) => h1request(server.url, h, b), status: webStatus },
  ];
  for (const t of transports) {
    for (const c of cases) {
      it(`${t.name}, ${c.name}: the same answer on both paths`, async () => {
        const headers: Record<string, string> = { ":method": "POST", ":path": paths[c.path], "content-type": t.contentType, te: "trailers", "x-request-id": "grpc-unary-test", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", ...c.headers?.() };
        const before = unaryInvoked.count;
        const fast = await t.send(headers, c.body());
        assert.equal(unaryInvoked.count, before + 1, "the plain request took the unary path");
        const viaConnect = await t.send({ ...headers, "grpc-encoding": "gzip", "grpc-accept-encoding": "identity" }, c.body());
        assert.equal(unaryInvoked.count, before + 1, "the gzip-labelled request was left to connect-es");
        assert.equal(t.status(fast), c.grpcStatus, `${JSON.stringify(fast.trailers)} ${fast.data.toString("latin1")}`);
        assert.deepEqual(comparable(fast), comparable(viaConnect));
      });
    }
  }

  const connectCases: Array<{ name: string; path: keyof typeof paths; contentType: string; headers?: () => Record<string, string>; body: Buffer; status: number }> = [
    { name: "a no-op (GetVersion), JSON", path: "version", contentType: "application/json", body: Buffer.from("{}"), status: 200 },
    { name: "a no-op (GetVersion), binary", path: "version", contentType: "application/proto", body: Buffer.alloc(0), status: 200 },
    {
      name: "a token check (GetSession) with a live session",
      path: "session",
      contentType: "application/json",
      headers: () => ({ authorization: `Bearer ${token}`, "x-koms-clientid": testClientId }),
      body: Buffer.from("{}"),
      status: 200,
    },
    { name: "no credential: 401 with its challenge and details", path: "session", contentType: "application/json", headers: () => ({ "x-koms-clientid": testClientId }), body: Buffer.from("{}"), status: 401 },
    { name: "JSON that does not parse: 400", path: "createUser", contentType: "application/json", body: Buffer.from('{"user":'), status: 400 },
    { name: "protobuf that does not parse: 400", path: "version", contentType: "application/proto", body: Buffer.from([0x0a, 0x7f]), status: 400 },
    { name: "a deadline already passed (connect-timeout-ms 0): 504", path: "version", contentType: "application/json", headers: () => ({ "connect-timeout-ms": "0" }), body: Buffer.from("{}"), status: 504 },
    { name: "a missing field: 400 with BadRequest details", path: "createUser", contentType: "application/json", body: Buffer.from("{}"), status: 400 },
  ];
  const connectTransports = [
    { name: "Connect over HTTP/2", send: (h: Record<string, string>, b: Buffer) => h2request(session, h, b) },
    { name: "Connect over HTTP/1.1", send: (h: Record<string, string>, b: Buffer) => h1request(server.url, h, b) },
  ];
  for (const t of connectTransports) {
    for (const c of connectCases) {
      it(`${t.name}, ${c.name}: the same answer on both paths`, async () => {
        const headers: Record<string, string> = { ":method": "POST", ":path": paths[c.path], "content-type": c.contentType, "x-request-id": "grpc-unary-test", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", ...c.headers?.() };
        const before = unaryInvoked.count;
        const fast = await t.send(headers, c.body);
        assert.equal(unaryInvoked.count, before + 1, "the plain request took the unary path");
        const viaConnect = await t.send({ ...headers, "content-encoding": "identity" }, c.body);
        assert.equal(unaryInvoked.count, before + 1, "a request with a content-encoding was left to connect-es");
        assert.equal(fast.headers[":status"], c.status, fast.data.toString());
        assert.deepEqual(comparable(fast), comparable(viaConnect));
      });
    }
  }

  it("REST: a call the transcoder routes is invoked directly too (its wire is test/wire's golden record)", async () => {
    const before = unaryInvoked.count;
    const res = await fetch(`${server.url}/jwt/version`);
    assert.equal(res.status, 200);
    assert.equal(unaryInvoked.count, before + 1);
  });

  // Node's HTTP/1.1 request emits 'error' (ECONNRESET, "aborted") before 'close' when its client
  // leaves mid-body: that was logged as "rpc answer failed", level error, with a stack.
  for (const contentType of ["application/json", "application/proto", "application/grpc-web+proto"]) {
    it(`HTTP/1.1, ${contentType}: a client that leaves before its body ends is nothing to report (no error logged)`, async () => {
      const logged = server.logs.length;
      const { port } = new URL(server.url);
      const socket = net.connect(Number(port), "127.0.0.1");
      await new Promise((resolve) => socket.once("connect", resolve));
      socket.write(`POST ${paths.version} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${contentType}\r\nContent-Length: 100\r\n\r\n0123456789`);
      await new Promise((r) => setTimeout(r, 100));
      socket.destroy();
      await new Promise((r) => setTimeout(r, 300));
      const errors = server.logs.slice(logged).filter((l) => (JSON.parse(l) as { level: string }).level === "error");
      assert.deepEqual(errors, []);
    });
  }

  // An answer of at least compressMinBytes (1 KiB) goes out compressed when the client accepts an
  // encoding the server has (grpc-js sends `grpc-accept-encoding: identity,deflate,gzip` on every
  // call), and `grpc-encoding` names it whatever the size: what connect-es's gRPC and gRPC-Web
  // handlers send. Before, the unary path answered every call uncompressed.
  describe("answer compression, as connect-es's handlers compress", () => {
    const audit = "/tessera.audit.v1.AuditService/ListAuditEvents";
    before(async () => {
      // A page of audit events well over 1 KiB (the sign-ups: listing them adds an event of
      // another type, so the page stays the same).
      for (let i = 0; i < 8; i++) await signUp(server, uniqueEmail("grpc-unary-gzip"));
    });
    const signups = { type: "signup" };
    const answers = [
      { name: "an answer over 1 KiB (ListAuditEvents)", path: audit, headers: admin, body: () => grpcFrame(toBinary(ListAuditEventsRequestSchema, create(ListAuditEventsRequestSchema, signups))), compressed: true },
      { name: "a small answer (GetVersion)", path: paths.version, headers: {}, body: () => grpcFrame(new Uint8Array()), compressed: false },
    ];
    for (const t of transports) {
      for (const accept of ["identity,deflate,gzip", "gzip"]) {
        for (const c of answers) {
          it(`${t.name}, grpc-accept-encoding ${accept}, ${c.name}: ${c.compressed ? "compressed" : "not compressed"}, grpc-encoding gzip; the same answer on both paths`, async () => {
            const headers: Record<string, string> = { ":method": "POST", ":path": c.path, "content-type": t.contentType, te: "trailers", "x-request-id": "grpc-unary-test", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "grpc-accept-encoding": accept, ...c.headers };
            const before = unaryInvoked.count;
            const fast = await t.send(headers, c.body());
            assert.equal(unaryInvoked.count, before + 1, "the plain request took the unary path");
            const viaConnect = await t.send({ ...headers, "grpc-encoding": "gzip" }, c.body());
            assert.equal(unaryInvoked.count, before + 1, "the gzip-labelled request was left to connect-es");
            assert.equal(t.status(fast), 0, `${JSON.stringify(fast.trailers)} ${fast.data.toString("latin1")}`);
            assert.equal(fast.headers["grpc-encoding"], "gzip");
            assert.equal(fast.data[0], c.compressed ? 1 : 0, "the message envelope's compressed flag");
            const message = fast.data.subarray(5, 5 + fast.data.readUInt32BE(1));
            assert.equal((c.compressed ? gunzipSync(message) : message).length >= 1024, c.compressed, "compressed from 1 KiB on");
            assert.deepEqual(comparable(fast), comparable(viaConnect));
          });
        }
      }
    }

    it("@grpc/grpc-js: the answer over 1 KiB crosses the wire compressed (fewer bytes than the message), and decodes", async () => {
      const { port } = new URL(server.url);
      let down = 0;
      const sockets = new Set<net.Socket>();
      const proxy = net.createServer((client) => {
        const upstream = net.connect(Number(port), "127.0.0.1");
        sockets.add(client).add(upstream);
        upstream.on("data", (d: Buffer) => (down += d.length));
        client.pipe(upstream).pipe(client);
        client.on("error", () => upstream.destroy());
        upstream.on("error", () => client.destroy());
      });
      await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
      const client = new GrpcJsClient(AuditService, `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`);
      const direct = new GrpcJsClient(AuditService, server.url);
      try {
        const reference = await direct.call("ListAuditEvents", signups, admin);
        const size = toBinary(ListAuditEventsResponseSchema, reference.message).length;
        assert.ok(size > 1536, `a page of ${size} bytes`);
        const before = unaryInvoked.count;
        const r = await client.call("ListAuditEvents", signups, admin);
        assert.equal(unaryInvoked.count, before + 1, "the call took the unary path");
        assert.equal(r.error, undefined);
        assert.deepEqual(r.message, reference.message);
        assert.ok(down < size, `${down} bytes from the server for a ${size}-byte message`);
      } finally {
        client.close();
        direct.close();
        for (const s of sockets) s.destroy();
        proxy.close();
      }
    });
  });

  it("a request over the size limit is left to connect-es: RESOURCE_EXHAUSTED", async () => {
    const before = unaryInvoked.count;
    const big = grpcFrame(Buffer.alloc(server.config.bodyLimitBytes + 10));
    const a = await h2request(session, { ":method": "POST", ":path": paths.version, "content-type": "application/grpc", te: "trailers" }, big);
    assert.equal(unaryInvoked.count, before);
    assert.equal(Number(a.trailers["grpc-status"] ?? a.headers["grpc-status"]), Code.ResourceExhausted);
  });
});
