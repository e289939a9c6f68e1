// tessera_rpc_requests_total counts a call to one of the server's methods refused before the
// method ran (a message, body, content type or timeout header refused, by the dispatcher, by
// connect-es or by the REST transcoder) once, under that method, its protocol and the code its
// client got; such a call observes no latency (tessera_rpc_duration_seconds times methods). A
// call the interceptors saw is counted by them alone, and a call to a method no service has
// makes no series of the names it sent.
import assert from "node:assert/strict";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import * as grpc from "@grpc/grpc-js";
import { fromBinary } from "@bufbuild/protobuf";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { grpcFrame, grpcStatus, h2request } from "../hostile/support.js";
import { grpcMethodDefinition, rest } from "../support/clients.js";
import { histogramCount, scrape, value, type Families } from "../support/metrics.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { clientIdHeader } from "../support/users.js";

const jwt = "tessera.jwt.v1.JwtService";
const getVersion = { service: jwt, method: "GetVersion" };
const createSession = { service: "tessera.session.v1.SessionService", method: "CreateSession" };
/** Protobuf bytes that do not parse: field 1, length-delimited, its length cut short. */
const badProto = Buffer.from([0x0a, 0x7f]);
const bodyLimit = 1024;

for (const store of storesUnderTest()) {
  describe(`metrics: calls refused before their method, on ${store}`, function () {
    this.timeout(30_000);
    let server: TestServer;
    let session: http2.ClientHttp2Session;
    before(async () => {
      server = await startTestServer({ store, env: { TESSERA_BODY_LIMIT_BYTES: String(bodyLimit) } });
      session = http2.connect(server.url);
    });
    after(async () => {
      session?.close();
      await server?.close();
    });

    /** The requests counted and the latencies observed while `act` ran, for `labels` (service, method, protocol) and `code`. */
    const counted = async (labels: Record<string, string>, code: string, act: () => Promise<void>) => {
      const before = await scrape(`${server.url}/metrics`);
      await act();
      const after = await scrape(`${server.url}/metrics`);
      const requests = (f: Families) => value(f, "tessera_rpc_requests_total", { ...labels, code });
      const all = (f: Families) => value(f, "tessera_rpc_requests_total");
      const timed = (f: Families) => histogramCount(f, "tessera_rpc_duration_seconds");
      return { requests: requests(after) - requests(before), all: all(after) - all(before), timed: timed(after) - timed(before) };
    };
    const grpcCall = (path: string, body: Buffer, headers: http2.OutgoingHttpHeaders = {}) =>
      h2request(session, { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers }, body);

    it("gRPC (grpc-js): a message that does not parse is counted as invalid_argument, once, untimed", async () => {
      const m = JwtService.method.getVersion;
      const Client = grpc.makeGenericClientConstructor({ GetVersion: { ...grpcMethodDefinition(m), requestSerialize: () => badProto, responseDeserialize: (b: Buffer) => fromBinary(m.output, b) } }, "JwtService");
      const client = new Client(server.url.replace(/^https?:\/\//, ""), grpc.credentials.createInsecure());
      try {
        const seen = await counted({ ...getVersion, protocol: "grpc" }, "invalid_argument", async () => {
          const error = await new Promise<grpc.ServiceError | null>((resolve) => (client as unknown as Record<string, Function>).GetVersion!({}, (e: grpc.ServiceError | null) => resolve(e)));
          assert.equal(error?.code, grpc.status.INVALID_ARGUMENT);
        });
        assert.deepEqual(seen, { requests: 1, all: 1, timed: 0 });
      } finally {
        client.close();
      }
    });

    it("gRPC (HTTP/2): a message over the body limit is resource_exhausted, a timeout header that does not parse invalid_argument", async () => {
      const over = await counted({ ...getVersion, protocol: "grpc" }, "resource_exhausted", async () => {
        assert.equal(grpcStatus(await grpcCall(`/${jwt}/GetVersion`, grpcFrame(Buffer.alloc(bodyLimit + 1)))), grpc.status.RESOURCE_EXHAUSTED);
      });
      assert.deepEqual(over, { requests: 1, all: 1, timed: 0 });
      const timeout = await counted({ ...getVersion, protocol: "grpc" }, "invalid_argument", async () => {
        assert.equal(grpcStatus(await grpcCall(`/${jwt}/GetVersion`, grpcFrame(Buffer.alloc(0)), { "grpc-timeout": "soon" })), grpc.status.INVALID_ARGUMENT);
      });
      assert.deepEqual(timeout, { requests: 1, all: 1, timed: 0 });
    });

    it("gRPC: a call that reaches its method is counted once, as it ends (ok), and timed", async () => {
      const seen = await counted({ ...getVersion, protocol: "grpc" }, "ok", async () => {
        assert.equal(grpcStatus(await grpcCall(`/${jwt}/GetVersion`, grpcFrame(Buffer.alloc(0)))), grpc.status.OK);
      });
      assert.deepEqual(seen, { requests: 1, all: 1, timed: 1 });
    });

    it("gRPC: a call refused by the interceptors on connect-es's path (a compressed message) is counted once, by them, and timed", async () => {
      const seen = await counted({ service: "tessera.session.v1.SessionService", method: "GetSession", protocol: "grpc" }, "unauthenticated", async () => {
        const answer = await grpcCall("/tessera.session.v1.SessionService/GetSession", grpcFrame(gzipSync(Buffer.alloc(0)), 1), { "grpc-encoding": "gzip", ...clientIdHeader });
        assert.equal(grpcStatus(answer), grpc.status.UNAUTHENTICATED);
      });
      assert.deepEqual(seen, { requests: 1, all: 1, timed: 1 });
    });

    it("gRPC-Web: a message that does not parse is invalid_argument, binary (HTTP/1.1) and text", async () => {
      for (const [type, body] of [
        ["application/grpc-web+proto", grpcFrame(badProto)],
        ["application/grpc-web-text", Buffer.from(grpcFrame(badProto).toString("base64"))],
      ] as const) {
        const seen = await counted({ ...getVersion, protocol: "grpc-web" }, "invalid_argument", async () => {
          const res = await fetch(`${server.url}/${jwt}/GetVersion`, { method: "POST", body, headers: { "content-type": type, "x-grpc-web": "1" } });
          assert.equal(res.status, 200);
          const bytes = Buffer.from(await res.arrayBuffer());
          const frames = type.endsWith("text") ? Buffer.from(bytes.toString("latin1"), "base64") : bytes;
          assert.match(frames.subarray(5).toString("latin1"), /grpc-status: ?3\r\n/i, type);
        });
        assert.deepEqual(seen, { requests: 1, all: 1, timed: 0 }, type);
      }
    });

    it("Connect: JSON that does not parse is invalid_argument; a timeout header that does not parse too; an unknown content type (415) too", async () => {
      const post = (body: string, headers: Record<string, string>) => fetch(`${server.url}/${jwt}/GetVersion`, { method: "POST", body, headers: { "connect-protocol-version": "1", ...headers } });
      const json = await counted({ ...getVersion, protocol: "connect" }, "invalid_argument", async () => {
        const res = await post("{", { "content-type": "application/json" });
        assert.equal(res.status, 400);
        assert.equal(((await res.json()) as { code: string }).code, "invalid_argument");
      });
      assert.deepEqual(json, { requests: 1, all: 1, timed: 0 });
      const timeout = await counted({ ...getVersion, protocol: "connect" }, "invalid_argument", async () => {
        const res = await post("{}", { "content-type": "application/json", "connect-timeout-ms": "soon" });
        assert.equal(res.status, 400);
        await res.body?.cancel();
      });
      assert.deepEqual(timeout, { requests: 1, all: 1, timed: 0 });
      const media = await counted({ ...getVersion, protocol: "connect" }, "invalid_argument", async () => {
        const res = await post("{}", { "content-type": "text/plain" });
        assert.equal(res.status, 415);
        assert.equal(((await res.json()) as { code: string }).code, "invalid_argument");
      });
      assert.deepEqual(media, { requests: 1, all: 1, timed: 0 });
    });

    it("REST: a JSON body that does not parse (400), one over the limit (413), an unsupported content type (415), a timeout header that does not parse", async () => {
      const labels = { ...createSession, protocol: "rest" };
      const json = await counted(labels, "invalid_argument", async () => {
        const res = await rest(server.url, "POST", "/session", { body: "{", headers: { ...clientIdHeader, "content-type": "application/json" } });
        assert.equal(res.status, 400, res.text);
      });
      assert.deepEqual(json, { requests: 1, all: 1, timed: 0 });
      const large = await counted(labels, "resource_exhausted", async () => {
        const res = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email: "x".repeat(bodyLimit), password: "p" }, headers: clientIdHeader });
        assert.equal(res.status, 413, res.text);
      });
      assert.deepEqual(large, { requests: 1, all: 1, timed: 0 });
      const media = await counted(labels, "invalid_argument", async () => {
        const res = await rest(server.url, "POST", "/session", { body: "account_type", headers: { ...clientIdHeader, "content-type": "text/plain" } });
        assert.equal(res.status, 415, res.text);
      });
      assert.deepEqual(media, { requests: 1, all: 1, timed: 0 });
      const timeout = await counted({ ...getVersion, protocol: "rest" }, "invalid_argument", async () => {
        const res = await rest(server.url, "GET", "/jwt/version", { headers: { "connect-timeout-ms": "soon" } });
        assert.equal(res.status, 400, res.text);
      });
      assert.deepEqual(timeout, { requests: 1, all: 1, timed: 0 });
    });

    it("a call to a method no service has, or a route none has, makes no series (its names are the client's)", async () => {
      const before = await scrape(`${server.url}/metrics`);
      assert.equal(grpcStatus(await grpcCall(`/${jwt}/NoSuchMethod`, grpcFrame(badProto))), grpc.status.UNIMPLEMENTED);
      assert.equal(grpcStatus(await grpcCall("/no.such.Service/Method", grpcFrame(badProto))), grpc.status.UNIMPLEMENTED);
      assert.equal((await rest(server.url, "POST", "/no-such-route", { body: "{", headers: { "content-type": "application/json" } })).status, 404);
      const after = await scrape(`${server.url}/metrics`);
      assert.equal(value(after, "tessera_rpc_requests_total") - value(before, "tessera_rpc_requests_total"), 0);
      assert.doesNotMatch(after.text ?? "", /NoSuchMethod|no\.such\.Service/);
    });
  });
}
