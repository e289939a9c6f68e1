// What src/server/dispatch.ts answers that connect-es alone does not, pinned both ways: the
// raw connect-es behaviour (so an upgrade that changes it is noticed, and the correction
// revisited) and Tessera's documented answer, in every protocol.
// - Protobuf bytes that do not parse: connect-es says INTERNAL "parse binary: ..."; Tessera says
//   INVALID_ARGUMENT (as connect-go does), whatever the chunking of the request.
// - grpc-message: connect-node percent-encodes ":" and "," (grpc-js then shows %3A %2C); Tessera
//   encodes it as the gRPC spec says, so grpc-js reads the message verbatim.
// - A request with no usable authority (no Host on HTTP/1.0, a Host or :authority that is no URL
//   authority): connect-node's adapter throws out of the request listener, which ends the
//   process; Tessera answers 400.
import { strict as assert } from "node:assert";
import { EventEmitter } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { MethodOptions_IdempotencyLevel as Idempotency } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError, createClient, createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Health } from "../../gen/health/v1/health_pb.js";
import { ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { connectError, GrpcJsClient } from "../support/clients.js";
import { errorInfoJson, statusDetailsBin } from "../support/error-details.js";
import { startTestServer, testAdminToken, type TestServer } from "../support/server.js";
import { fcParams, grpcFrame, grpcStatus, h2request, healthy } from "../hostile/support.js";
import { universalRequest } from "../../src/server/dispatch.js";

const check = "/grpc.health.v1.Health/Check";
const watch = "/grpc.health.v1.Health/Watch";
const reflectionInfo = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
/** HealthCheckRequest field 1 (string) announcing 127 bytes, none following. */
const badProto = Buffer.from([0x0a, 0x7f]);
const parseError = "parse binary: premature EOF";
const malformed = statusDetailsBin(Code.InvalidArgument, parseError, "MALFORMED_REQUEST");
const seed001Message = "Missing fields: [account_id, description]";

/** The gRPC-Web trailer frame (flag 0x80) at the end of a body, as header lines. */
function webTrailer(body: Buffer): Record<string, string> {
  let pos = 0;
  while (pos + 5 <= body.length) {
    const flags = body[pos]!;
    const len = body.readUInt32BE(pos + 1);
    if (flags & 0x80) {
      const out: Record<string, string> = {};
      for (const line of body.subarray(pos + 5, pos + 5 + len).toString("latin1").split("\r\n")) {
        const i = line.indexOf(":");
        if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
      }
      return out;
    }
    pos += 5 + len;
  }
  throw new Error(`no trailer frame in ${body.toString("hex")}`);
}

/** Connect streaming envelopes of a body: [flags, payload text]. */
function envelopes(body: Buffer): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  let pos = 0;
  while (pos + 5 <= body.length) {
    const len = body.readUInt32BE(pos + 1);
    out.push([body[pos]!, body.subarray(pos + 5, pos + 5 + len).toString("utf8")]);
    pos += 5 + len;
  }
  assert.equal(pos, body.length, "the body ends on an envelope boundary");
  return out;
}

const pause = () => new Promise((r) => setTimeout(r, 15));

/** Bytes split into one piece per byte: each written (and sent) on its own. */
const bytewise = (b: Buffer) => [...b].map((x) => Buffer.from([x]));

/** An HTTP/2 request whose body goes out in separate DATA frames, one per piece. */
async function h2pieces(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, pieces: Buffer[]) {
  const stream = session.request(headers);
  const answer = new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; data: Buffer }>((resolve, reject) => {
    let h: http2.IncomingHttpHeaders = {};
    let t: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (x) => (h = x));
    stream.on("trailers", (x) => (t = x));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", reject);
    stream.on("close", () => resolve({ headers: h, trailers: t, data: Buffer.concat(chunks) }));
  });
  for (const p of pieces) {
    stream.write(p);
    await pause();
  }
  stream.end();
  return answer;
}

/** An HTTP/1.1 request with a chunked body, one chunk (and one TCP write) per piece. */
async function h1pieces(baseUrl: string, path: string, headers: Record<string, string>, pieces: Buffer[]) {
  const u = new URL(baseUrl);
  const req = http.request({ host: u.hostname, port: u.port, method: "POST", path, headers, agent: false });
  const answer = new Promise<{ status: number; headers: http.IncomingHttpHeaders; data: Buffer }>((resolve, reject) => {
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, data: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
  });
  req.flushHeaders();
  for (const p of pieces) {
    req.write(p);
    await pause();
  }
  req.end();
  return answer;
}

/** A grpc-js client for Health/Check whose request bytes are `bytes`, whatever the message. */
function rawGrpcJsCheck(url: string, bytes: Buffer): Promise<grpc.ServiceError | null> {
  const Ctor = grpc.makeGenericClientConstructor(
    {
      Check: {
        path: check,
        requestStream: false,
        responseStream: false,
        requestSerialize: () => bytes,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    "Health",
  );
  const client = new Ctor(url.replace(/^https?:\/\//, ""), grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    (client as unknown as { Check: Function }).Check({}, (err: grpc.ServiceError | null) => {
      client.close();
      resolve(err);
    });
  });
}

describe("dispatch: connect-es alone (pinned)", () => {
  let server: http2.Http2Server;
  let url: string;
  let session: http2.ClientHttp2Session;
  before(async () => {
    server = http2.createServer(
      connectNodeAdapter({
        routes(router) {
          router.service(Health, {
            check() {
              throw new ConnectError(seed001Message, Code.InvalidArgument);
            },
            async *watch() {},
          });
        },
      }),
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    session = http2.connect(url);
  });
  after(async () => {
    session.close();
    await new Promise((r) => server.close(r));
  });

  it("answers INTERNAL 'parse binary' for protobuf that does not parse, in every protocol", async () => {
    const grpcAnswer = await h2request(session, { ":method": "POST", ":path": check, "content-type": "application/grpc", te: "trailers" }, grpcFrame(badProto));
    assert.equal(grpcStatus(grpcAnswer), Code.Internal);
    assert.equal(grpcAnswer.trailers["grpc-message"], encodeURIComponent(parseError));

    const web = await h2request(session, { ":method": "POST", ":path": check, "content-type": "application/grpc-web+proto" }, grpcFrame(badProto));
    assert.deepEqual(webTrailer(web.data), { "grpc-status": "13", "grpc-message": encodeURIComponent(parseError) });

    const unary = await h2request(session, { ":method": "POST", ":path": check, "content-type": "application/proto" }, badProto);
    assert.equal(unary.headers[":status"], 500);
    assert.deepEqual(JSON.parse(unary.data.toString()), { code: "internal", message: parseError });

    const stream = await h2request(session, { ":method": "POST", ":path": watch, "content-type": "application/connect+proto" }, grpcFrame(badProto));
    assert.equal(stream.headers[":status"], 200);
    assert.deepEqual(envelopes(stream.data), [[2, JSON.stringify({ error: { code: "internal", message: parseError } })]]);
  });

  it("answers 415 to a gRPC or gRPC-Web content type with a parameter (application/grpc; charset=utf-8)", async () => {
    for (const type of ["application/grpc; charset=utf-8", "application/grpc-web+proto;charset=utf-8"]) {
      const a = await h2request(session, { ":method": "POST", ":path": check, "content-type": type, te: "trailers" }, grpcFrame(new Uint8Array()));
      assert.equal(a.headers[":status"], 415, type);
    }
  });

  it("percent-encodes ':' and ',' in grpc-message, which grpc-js then shows as %3A and %2C", async () => {
    const a = await h2request(session, { ":method": "POST", ":path": check, "content-type": "application/grpc", te: "trailers" }, grpcFrame(new Uint8Array()));
    assert.equal(grpcStatus(a), Code.InvalidArgument);
    assert.equal(a.trailers["grpc-message"], "Missing%20fields%3A%20%5Baccount_id%2C%20description%5D");
    const client = new GrpcJsClient(Health, url);
    try {
      const { error } = await client.call("Check", {});
      assert.equal(error?.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(error?.details, "Missing fields%3A [account_id%2C description]");
    } finally {
      client.close();
    }
  });
});

describe("dispatch: Tessera's answers", function () {
  this.timeout(30_000);
  let server: TestServer;
  let session: http2.ClientHttp2Session;
  before(async () => {
    server = await startTestServer();
    session = http2.connect(server.url);
  });
  after(async () => {
    session?.close();
    await server?.close();
  });

  describe("protobuf that does not parse is INVALID_ARGUMENT", () => {
    it("gRPC: a @grpc/grpc-js client sending bytes that do not parse", async () => {
      const error = await rawGrpcJsCheck(server.url, badProto);
      assert.equal(error?.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(error?.details, parseError);
    });

    it("gRPC: the envelope split across HTTP/2 DATA frames, one byte each", async () => {
      const a = await h2pieces(session, { ":method": "POST", ":path": check, "content-type": "application/grpc", te: "trailers" }, bytewise(grpcFrame(badProto)));
      assert.equal(a.headers[":status"], 200);
      assert.equal(a.trailers["grpc-status"], String(Code.InvalidArgument));
      assert.equal(a.trailers["grpc-message"], parseError);
    });

    it("gRPC server streaming (Health/Watch)", async () => {
      const a = await h2request(session, { ":method": "POST", ":path": watch, "content-type": "application/grpc", te: "trailers" }, grpcFrame(badProto));
      assert.equal(grpcStatus(a), Code.InvalidArgument);
      assert.equal(a.trailers["grpc-message"], parseError);
      assert.equal(a.data.length, 0);
    });

    it("gRPC bidi streaming (reflection): a message that does not parse after one that did", async () => {
      const stream = session.request({ ":method": "POST", ":path": reflectionInfo, "content-type": "application/grpc", te: "trailers" });
      const chunks: Buffer[] = [];
      let trailers: http2.IncomingHttpHeaders = {};
      stream.on("trailers", (t) => (trailers = t));
      const closed = new Promise((r) => stream.on("close", r));
      const first = new Promise((r) => stream.once("data", r));
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.write(grpcFrame(toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }))));
      await first; // the first answer is out before the bad message is sent
      stream.end(grpcFrame(Buffer.from([0xff, 0xff, 0xff])));
      await closed;
      assert.ok(Buffer.concat(chunks).includes(Buffer.from("grpc.health.v1.Health")), "the first answer lists the services");
      assert.equal(trailers["grpc-status"], String(Code.InvalidArgument));
      assert.match(String(trailers["grpc-message"]), /^parse binary: /);
    });

    it("gRPC-Web over HTTP/1.1: the envelope split across TCP writes, one byte each", async () => {
      const a = await h1pieces(server.url, check, { "content-type": "application/grpc-web+proto" }, bytewise(grpcFrame(badProto)));
      assert.equal(a.status, 200);
      assert.deepEqual(webTrailer(a.data), { "grpc-status": String(Code.InvalidArgument), "grpc-message": parseError, "grpc-status-details-bin": malformed });
    });

    it("gRPC-Web server streaming (Health/Watch) over HTTP/2", async () => {
      const a = await h2request(session, { ":method": "POST", ":path": watch, "content-type": "application/grpc-web+proto" }, grpcFrame(badProto));
      assert.deepEqual(webTrailer(a.data), { "grpc-status": String(Code.InvalidArgument), "grpc-message": parseError, "grpc-status-details-bin": malformed });
    });

    it("Connect unary: 400 with a Connect error body", async () => {
      const a = await h1pieces(server.url, check, { "content-type": "application/proto" }, bytewise(badProto));
      assert.equal(a.status, 400);
      assert.equal(a.headers["content-type"], "application/json");
      assert.equal(Number(a.headers["content-length"]), a.data.length);
      assert.deepEqual(JSON.parse(a.data.toString()), { code: "invalid_argument", message: parseError, details: [errorInfoJson("MALFORMED_REQUEST")] });
    });

    it("Connect streaming (Health/Watch): the end-stream message, the envelope split across TCP writes", async () => {
      const a = await h1pieces(server.url, watch, { "content-type": "application/connect+proto" }, bytewise(grpcFrame(badProto)));
      assert.equal(a.status, 200);
      assert.deepEqual(envelopes(a.data), [[2, JSON.stringify({ error: { code: "invalid_argument", message: parseError, details: [errorInfoJson("MALFORMED_REQUEST")] } })]]);
    });

    it("Connect bidi streaming (reflection): the end-stream after an answer", async () => {
      const ok = toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }));
      const a = await h2pieces(session, { ":method": "POST", ":path": reflectionInfo, "content-type": "application/connect+proto" }, [grpcFrame(ok), grpcFrame(Buffer.from([0xff, 0xff, 0xff]))]);
      const env = envelopes(a.data);
      assert.equal(env.length, 2);
      assert.equal(env[0]![0], 0);
      assert.equal(env[1]![0], 2);
      assert.equal(JSON.parse(env[1]![1]).error.code, "invalid_argument");
      assert.match(JSON.parse(env[1]![1]).error.message, /^parse binary: /);
    });
  });

  describe("grpc-message is encoded as the gRPC spec says", () => {
    const name = "ünï 100%: [a, b]";
    const message = `unknown service ${name}`;

    it("a @grpc/grpc-js client reads ':' ',' '%' and non-ASCII verbatim", async () => {
      const client = new GrpcJsClient(Health, server.url);
      try {
        const { error } = await client.call("Check", { service: name });
        assert.equal(error?.code, grpc.status.NOT_FOUND);
        assert.equal(error?.details, message);
      } finally {
        client.close();
      }
    });

    it("on the wire: only '%', and bytes outside 0x20-0x7E, are escaped (gRPC and gRPC-Web)", async () => {
      const body = grpcFrame(toBinary(Health.method.check.input, create(Health.method.check.input, { service: name })));
      const encoded = "unknown service %C3%BCn%C3%AF 100%25: [a, b]";
      const a = await h2request(session, { ":method": "POST", ":path": check, "content-type": "application/grpc", te: "trailers" }, body);
      assert.equal(grpcStatus(a), Code.NotFound);
      assert.equal(a.trailers["grpc-message"], encoded);
      const web = await h2request(session, { ":method": "POST", ":path": check, "content-type": "application/grpc-web+proto" }, body);
      assert.deepEqual(webTrailer(web.data), { "grpc-status": String(Code.NotFound), "grpc-message": encoded, "grpc-status-details-bin": statusDetailsBin(Code.NotFound, message, "SERVICE_NOT_FOUND") });
    });

    it("a connect-es gRPC-Web client reads it verbatim too", async () => {
      const client = createClient(Health, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }));
      const e = await connectError(client.check({ service: name }));
      assert.equal(e.code, Code.NotFound);
      assert.equal(e.rawMessage, message);
    });
  });

  describe("an unknown method or service over gRPC and gRPC-Web is the protocol's UNIMPLEMENTED, with its ErrorInfo", () => {
    // What a client with a newer stub than the server calls: a method the service lacks, or a
    // service the server lacks. Not the REST fallback's 404 JSON, which grpc-go and grpc-js
    // read as a transport failure with no details.
    const ghost = (typeName: string, name: string) => {
      const service = { ...Health, typeName } as Record<string, unknown>;
      const method = { ...Health.method.check, name, localName: "ghost", parent: service };
      return Object.assign(service, { methods: [method], method: { ghost: method } }) as unknown as typeof Health;
    };
    const cases = [
      { service: "grpc.health.v1.Health", method: "Nope", message: "unknown method Nope for service grpc.health.v1.Health" },
      { service: "no.such.Service", method: "Method", message: "unknown service no.such.Service" },
    ];
    for (const c of cases) {
      it(`gRPC (@grpc/grpc-js): /${c.service}/${c.method}`, async () => {
        const client = new GrpcJsClient(ghost(c.service, c.method), server.url);
        try {
          const { error, trailer } = await client.call(c.method, {});
          assert.equal(error?.code, grpc.status.UNIMPLEMENTED, `${error?.code} ${error?.details}`);
          assert.equal(error?.details, c.message);
          const bin = trailer?.get("grpc-status-details-bin")[0];
          assert.equal(bin && Buffer.from(bin as Buffer).toString("base64").replace(/=+$/, ""), statusDetailsBin(Code.Unimplemented, c.message, "UNIMPLEMENTED"));
        } finally {
          client.close();
        }
      });

      it(`gRPC-Web (connect-es, HTTP/1.1): /${c.service}/${c.method}`, async () => {
        const client = createClient(ghost(c.service, c.method), createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }));
        const e = await connectError((client as unknown as { ghost(r: object): Promise<unknown> }).ghost({}));
        assert.equal(e.code, Code.Unimplemented, e.message);
        assert.equal(e.rawMessage, c.message);
        assert.deepEqual(e.findDetails(ErrorInfoSchema).map((i) => [i.reason, i.domain]), [["UNIMPLEMENTED", "tessera"]]);
      });

      // Connect answered the REST fallback's 404 JSON, code not_found "no route for POST
      // /S/*": a connect-es client read NOT_FOUND. The Connect protocol's answer to an unknown
      // procedure is unimplemented, HTTP 404 for a unary call (and a GET), an end-stream error
      // for a stream; and gRPC over HTTP/1.1 (served by connect-es for a method it has) got the
      // REST 404 too.
      const transports = [
        ["gRPC-Web (connect-es, HTTP/2)", () => createGrpcWebTransport({ baseUrl: server.url, httpVersion: "2" })],
        ["Connect (connect-es, HTTP/1.1)", () => createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" })],
        ["Connect (connect-es, HTTP/2)", () => createConnectTransport({ baseUrl: server.url, httpVersion: "2" })],
        ["Connect JSON (connect-es, HTTP/1.1)", () => createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", useBinaryFormat: false })],
        ["Connect GET (connect-es, HTTP/1.1)", () => createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", useHttpGet: true })],
        ["Connect GET (connect-es, HTTP/2)", () => createConnectTransport({ baseUrl: server.url, httpVersion: "2", useHttpGet: true })],
      ] as const;
      for (const [name, transport] of transports) {
        it(`${name}: /${c.service}/${c.method}`, async () => {
          const service = ghost(c.service, c.method);
          ((service.method as unknown as { ghost: { idempotency: Idempotency } }).ghost).idempotency = Idempotency.NO_SIDE_EFFECTS;
          const client = createClient(service, transport());
          const e = await connectError((client as unknown as { ghost(r: object): Promise<unknown> }).ghost({}));
          assert.equal(e.code, Code.Unimplemented, e.message);
          assert.equal(e.rawMessage, c.message);
          assert.deepEqual(e.findDetails(ErrorInfoSchema).map((i) => [i.reason, i.domain]), [["UNIMPLEMENTED", "tessera"]]);
        });
      }

      it(`Connect streaming (connect-es, HTTP/1.1), a server stream: /${c.service}/${c.method}`, async () => {
        const service = { ...Health, typeName: c.service } as Record<string, unknown>;
        const method = { ...Health.method.watch, name: c.method, localName: "ghost", parent: service };
        Object.assign(service, { methods: [method], method: { ghost: method } });
        const client = createClient(service as unknown as typeof Health, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
        const e = await connectError((async () => {
          for await (const _ of (client as unknown as { ghost(r: object): AsyncIterable<unknown> }).ghost({})) void _;
        })());
        assert.equal(e.code, Code.Unimplemented, e.message);
        assert.equal(e.rawMessage, c.message);
        assert.deepEqual(e.findDetails(ErrorInfoSchema).map((i) => [i.reason, i.domain]), [["UNIMPLEMENTED", "tessera"]]);
      });

      it(`gRPC over HTTP/1.1 (no client speaks it: raw): /${c.service}/${c.method} is trailers-only, grpc-status 12 in the headers`, async () => {
        const a = await h1pieces(server.url, `/${c.service}/${c.method}`, { "content-type": "application/grpc", te: "trailers" }, [grpcFrame(new Uint8Array())]);
        assert.equal(a.status, 200);
        assert.equal(a.headers["content-type"], "application/grpc");
        assert.equal(a.headers["grpc-status"], String(Code.Unimplemented));
        assert.equal(decodeURIComponent(String(a.headers["grpc-message"])), c.message);
        assert.equal(String(a.headers["grpc-status-details-bin"]).replace(/=+$/, ""), statusDetailsBin(Code.Unimplemented, c.message, "UNIMPLEMENTED"));
        assert.equal(a.data.length, 0);
      });
    }

    it("Connect unary over raw HTTP/1.1, with Connect-Protocol-Version: a known service's unknown method is 404 unimplemented", async () => {
      const a = await h1pieces(server.url, "/grpc.health.v1.Health/Nope", { "content-type": "application/json", "connect-protocol-version": "1" }, [Buffer.from("{}")]);
      assert.equal(a.status, 404);
      assert.equal(a.headers["content-type"], "application/json");
      assert.deepEqual(JSON.parse(a.data.toString()), { code: "unimplemented", message: "unknown method Nope for service grpc.health.v1.Health", details: [errorInfoJson("UNIMPLEMENTED")] });
    });

    // A name is quoted only as a protobuf name (what a client with a newer stub sends), at most
    // 256 characters: a secret behind a comma, or a name of 5000 characters, was quoted whole.
    const unquotedNames = [
      [`/grpc.health.v1.Health/Nope,${testAdminToken}`, "unknown method * for service grpc.health.v1.Health"],
      [`/grpc.health.v1.Health/${"N".repeat(5000)}`, "unknown method * for service grpc.health.v1.Health"],
      [`/no.such.${"S".repeat(300)}/Method`, "unknown service *"],
    ] as const;
    for (const [path, message] of unquotedNames) {
      const named = path.replace(testAdminToken, "<admin token>");
      const shown = named.length > 60 ? `${named.slice(0, 60)}...` : named;
      it(`Connect unary, ${shown}: ${message}`, async () => {
        const a = await h1pieces(server.url, path, { "content-type": "application/json", "connect-protocol-version": "1" }, [Buffer.from("{}")]);
        assert.equal(a.status, 404);
        assert.equal(a.data.toString(), JSON.stringify({ code: "unimplemented", message, details: [errorInfoJson("UNIMPLEMENTED")] }));
      });
      it(`gRPC over HTTP/1.1, ${shown}: ${message}`, async () => {
        const a = await h1pieces(server.url, path, { "content-type": "application/grpc", te: "trailers" }, [grpcFrame(new Uint8Array())]);
        assert.equal(a.headers["grpc-status"], String(Code.Unimplemented));
        assert.equal(decodeURIComponent(String(a.headers["grpc-message"])), message);
      });
    }

    // Without a Connect mark nothing tells it from a REST request, even under a known service:
    // the REST 404, which quotes no segment after the first (a token sent as the method).
    it("REST: a POST of JSON to a known service's unknown method without a Connect marker keeps the REST 404", async () => {
      const a = await h1pieces(server.url, "/grpc.health.v1.Health/Nope", { "content-type": "application/json" }, [Buffer.from("{}")]);
      assert.equal(a.status, 404);
      assert.equal(a.data.toString(), JSON.stringify({ code: "not_found", message: "no route for POST /grpc.health.v1.Health/*", details: [errorInfoJson("ROUTE_NOT_FOUND")] }));
    });

    // Nothing tells such a request from a REST one: it keeps the REST 404, byte for byte.
    it("REST: a POST of JSON to /no.such.Service/Method without a Connect marker keeps the REST 404", async () => {
      const a = await h1pieces(server.url, "/no.such.Service/Method", { "content-type": "application/json" }, [Buffer.from("{}")]);
      assert.equal(a.status, 404);
      assert.equal(a.data.toString(), JSON.stringify({ code: "not_found", message: "no route for POST /no.such.Service/*", details: [errorInfoJson("ROUTE_NOT_FOUND")] }));
    });

    it("REST: under a JWT API mounted at a dotted path, a request with Connect's marks is REST's (its 400, its 404)", async () => {
      const dotted = await startTestServer({ env: { TESSERA_JWT_BASE_PATH: "/tessera.jwt" } });
      try {
        const u = new URL(dotted.url);
        const get = await fetch(`${u.origin}/tessera.jwt/version?connect=v1`, { headers: { "connect-protocol-version": "1" } });
        // REST's own answer: the route takes no "connect" parameter.
        assert.equal(get.status, 400);
        assert.equal(((await get.json()) as { message: string }).message, 'unknown query parameter "connect"');
        const a = await h1pieces(dotted.url, "/tessera.jwt/nothing", { "content-type": "application/proto", "connect-protocol-version": "1" }, [Buffer.alloc(0)]);
        assert.equal(a.status, 404);
        assert.equal(a.data.toString(), JSON.stringify({ code: "not_found", message: "no route for POST /tessera.jwt/nothing", details: [errorInfoJson("ROUTE_NOT_FOUND")] }));
      } finally {
        await dotted.close();
      }
    });
  });

  describe("a client that leaves before its request body ends", () => {
    for (const [name, headers] of [
      ["gRPC", { "content-type": "application/grpc", te: "trailers" }],
      ["Connect", { "content-type": "application/proto" }],
    ] as const) {
      it(`${name}: is no error of the server (nothing logged), and the server keeps serving`, async () => {
        const before = server.logs.length;
        const stream = session.request({ ":method": "POST", ":path": check, ...headers });
        stream.on("error", () => {});
        // Half an envelope announcing 10 bytes, then the client resets the stream.
        stream.write(Buffer.from([0, 0, 0, 0, 10, 0x0a]));
        await new Promise((r) => setTimeout(r, 50));
        stream.close(http2.constants.NGHTTP2_CANCEL);
        await new Promise((r) => setTimeout(r, 100));
        const errors = server.logs.slice(before).filter((l) => (JSON.parse(l) as { level: string }).level === "error");
        assert.deepEqual(errors, []);
        await healthy(server.url);
      });
    }

    // Over HTTP/1.1 Node fails the request body's read with ECONNRESET "aborted" (over HTTP/2,
    // ERR_STREAM_PREMATURE_CLOSE): a stream's handler saw it as an unexpected error, logged at
    // level error with its stack, as if the server had failed.
    for (const [name, path, type] of [
      ["gRPC-Web, Health/Watch", watch, "application/grpc-web+proto"],
      ["gRPC-Web with a deadline, Health/Watch", watch, "application/grpc-web+proto\r\ngrpc-timeout: 10S"],
      ["Connect streaming, Health/Watch", watch, "application/connect+proto"],
      ["gRPC-Web, Health/Check", check, "application/grpc-web+proto"],
    ] as const) {
      it(`HTTP/1.1, ${name}: is no error of the server (nothing logged), and the server keeps serving`, async () => {
        const before = server.logs.length;
        const socket = net.connect(server.port, "127.0.0.1");
        socket.on("error", () => {});
        await new Promise((r) => socket.once("connect", r));
        // Half an envelope announcing 10 bytes of a body of 100, then the client resets.
        socket.write(`POST ${path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: ${type}\r\ncontent-length: 100\r\n\r\n`);
        socket.write(Buffer.from([0, 0, 0, 0, 10, 0x0a]));
        await new Promise((r) => setTimeout(r, 100));
        socket.resetAndDestroy();
        await new Promise((r) => setTimeout(r, 200));
        const errors = server.logs.slice(before).filter((l) => (JSON.parse(l) as { level: string }).level === "error");
        assert.deepEqual(errors, []);
        await healthy(server.url);
      });
    }
  });

  // PROTOCOL-HTTP2's Content-Type has no parameters, but grpc-go serves "application/grpc;..."
  // as protobuf (grpcutil.ContentSubtype takes what follows ';' as a codec name it then does not
  // find) and grpc-js serves any type that starts with "application/grpc"; connect-es answered
  // 415, which a gRPC client reads as a transport failure. A binary gRPC or gRPC-Web type with
  // parameters is served as that type; the answer says application/grpc(-web)+proto.
  describe("a gRPC or gRPC-Web content type with parameters is served as the type", () => {
    const version = "/tessera.jwt.v1.JwtService/GetVersion";
    for (const type of ["application/grpc; charset=utf-8", "application/grpc;charset=UTF-8", "application/grpc+proto; foo=bar", "Application/gRPC; charset=utf-8"]) {
      for (const path of [version, check]) {
        it(`gRPC, ${JSON.stringify(type)}, ${path}: grpc-status 0`, async () => {
          const a = await h2request(session, { ":method": "POST", ":path": path, "content-type": type, te: "trailers" }, grpcFrame(new Uint8Array()));
          assert.equal(a.headers[":status"], 200, a.data.toString());
          assert.equal(a.headers["content-type"], "application/grpc+proto");
          assert.equal(grpcStatus(a), 0, JSON.stringify(a.trailers));
        });
      }
    }
    for (const type of ["application/grpc-web; charset=utf-8", "application/grpc-web+proto; foo=bar"]) {
      it(`gRPC-Web over HTTP/1.1, ${JSON.stringify(type)}: grpc-status 0`, async () => {
        const a = await h1pieces(server.url, version, { "content-type": type }, [grpcFrame(new Uint8Array())]);
        assert.equal(a.status, 200, a.data.toString());
        assert.equal(a.headers["content-type"], "application/grpc-web+proto");
        assert.equal(webTrailer(a.data)["grpc-status"], "0");
      });
    }
    // Encoding names are matched as sent, as grpc-go (encoding.GetCompressor, a map lookup) and
    // grpc-js (a switch on "identity", "deflate", "gzip") match them.
    it("grpc-encoding GZIP is no encoding Tessera has: UNIMPLEMENTED, grpc-accept-encoding naming what it has", async () => {
      const a = await h2request(session, { ":method": "POST", ":path": version, "content-type": "application/grpc", te: "trailers", "grpc-encoding": "GZIP" }, grpcFrame(new Uint8Array()));
      assert.equal(grpcStatus(a), Code.Unimplemented);
      assert.equal(a.trailers["grpc-accept-encoding"], "gzip,br");
    });
    it("gRPC+JSON keeps connect-es's rule: charset=utf-8 is served, another charset is 415", async () => {
      const ok = await h2request(session, { ":method": "POST", ":path": version, "content-type": "application/grpc+json; charset=utf-8", te: "trailers" }, grpcFrame(Buffer.from("{}")));
      assert.equal(grpcStatus(ok), 0);
      const refused = await h2request(session, { ":method": "POST", ":path": version, "content-type": "application/grpc+json; charset=latin1", te: "trailers" }, grpcFrame(Buffer.from("{}")));
      assert.equal(refused.headers[":status"], 415);
    });
  });

  describe("a request with no usable authority is a 400, and the server stays up", () => {
    const send = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(server.port, "127.0.0.1", () => socket.end(text));
        let out = "";
        socket.on("data", (d) => (out += d.toString("latin1")));
        socket.on("close", () => resolve(out));
        socket.on("error", reject);
      });

    it("HTTP/1.0 without a Host header, on an RPC path", async () => {
      const answer = await send(`POST ${check} HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
      assert.match(answer, /^HTTP\/1\.1 400 /);
      assert.equal(
        answer.slice(answer.indexOf("\r\n\r\n") + 4),
        JSON.stringify({ code: "invalid_argument", message: "the request has no valid Host header or :authority", details: [errorInfoJson("MALFORMED_REQUEST")] }),
      );
      await healthy(server.url);
    });

    it("HTTP/1.1 with a Host that is no URL authority", async () => {
      const answer = await send(`POST ${check} HTTP/1.1\r\nhost: a b\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
      assert.match(answer, /^HTTP\/1\.1 400 /);
      await healthy(server.url);
    });

    it("HTTP/2 with an :authority that is no URL authority", async () => {
      const a = await h2request(session, { ":method": "POST", ":path": check, ":authority": "[::1", "content-type": "application/json" }, Buffer.from("{}"));
      assert.equal(a.headers[":status"], 400);
      // Refused before the dispatcher, as an HTTP/1.1 Host that is no authority is (hostProblem).
      assert.deepEqual(JSON.parse(a.data.toString()), { code: "invalid_argument", message: 'the :authority "[::1" is not a host with an optional port', details: [errorInfoJson("MALFORMED_REQUEST")] });
      await healthy(server.url);
    });

    // RFC 9113 8.3.1: a server SHOULD treat a request as malformed if its Host identifies another
    // entity than its :authority (node:http2 sends both as given; curl and gRPC clients never do).
    const differing = { code: "invalid_argument", message: 'the Host header "other.example" differs from the :authority "localhost": an HTTP/2 request\'s Host, if sent, must name the same host and port', details: [errorInfoJson("MALFORMED_REQUEST")] };

    it("HTTP/2 with a Host that differs from its :authority: 400 on REST", async () => {
      const a = await h2request(session, { ":method": "GET", ":path": "/jwt/version", ":authority": "localhost", host: "other.example" });
      assert.equal(a.headers[":status"], 400);
      assert.deepEqual(JSON.parse(a.data.toString()), differing);
      await healthy(server.url);
    });

    it("HTTP/2 with a Host that differs from its :authority: the same 400 on gRPC, which a gRPC client reads as INTERNAL", async () => {
      const a = await h2request(session, { ":method": "POST", ":path": check, ":authority": "localhost", host: "other.example", "content-type": "application/grpc", te: "trailers" }, grpcFrame(new Uint8Array()));
      assert.equal(a.headers[":status"], 400);
      assert.deepEqual(JSON.parse(a.data.toString()), differing);
      assert.equal(grpcStatus(a), undefined);
      const client = new GrpcJsClient(Health, server.url);
      try {
        const r = await client.call("Check", {}, { host: "other.example" });
        assert.equal(r.error?.code, grpc.status.INTERNAL);
        assert.match(r.error?.details ?? "", /^Received HTTP status code 400/);
      } finally {
        client.close();
      }
    });

    it("HTTP/2 with a Host that names its :authority's host and port is served (case, an empty or default port aside)", async () => {
      const port = String(server.port);
      for (const [authority, host] of [
        [`localhost:${port}`, `localhost:${port}`],
        [`localhost:${port}`, `LocalHost:${port}`],
        ["localhost", "localhost:80"],
        ["localhost:", "localhost"],
      ]) {
        const a = await h2request(session, { ":method": "GET", ":path": "/jwt/version", ":authority": authority, host });
        assert.equal(a.headers[":status"], 200, `${authority} / ${host}: ${a.data.toString()}`);
      }
      const other = await h2request(session, { ":method": "GET", ":path": "/jwt/version", ":authority": "localhost", host: "localhost:443" });
      assert.equal(other.headers[":status"], 400);
    });
  });
});

describe("dispatch: a call's URL", () => {
  /** An HTTP/2 request for `target` to `authority`, over TLS or not, as universalRequest reads one. */
  const request = (authority: string, target: string, encrypted: boolean) =>
    ({ httpVersionMajor: 2, httpVersion: "2.0", method: "POST", authority, url: target, headers: {}, socket: { encrypted } }) as unknown as http2.Http2ServerRequest;
  const urlOf = (authority: string, target: string, encrypted = false, routerPath = true) =>
    universalRequest(request(authority, target, encrypted), new EventEmitter() as unknown as http2.Http2ServerResponse, createContextValues(), routerPath).url;

  it("is the URL parser's for a router path, whatever the authority's form (host case, port, IPv4 shorthand, IPv6)", () => {
    for (const [authority, encrypted, url] of [
      ["localhost:8080", false, `http://localhost:8080${check}`],
      ["LocalHost:80", false, `http://localhost${check}`],
      ["Example.COM:443", true, `https://example.com${check}`],
      ["example.com:443", false, `http://example.com:443${check}`],
      ["127.1:08080", false, `http://127.0.0.1:8080${check}`],
      ["[0:0::1]:443", true, `https://[::1]${check}`],
    ] as const) {
      // Twice: the second from what the first learnt of the authority.
      assert.equal(urlOf(authority, check, encrypted), url, authority);
      assert.equal(urlOf(authority, check, encrypted), url, authority);
      assert.equal(urlOf(authority, check, encrypted, false), url, `${authority}, parsed whole`);
    }
  });

  it("is the URL parser's for any authority a client may send (userinfo, IPv6 zone, percent-encoding, case, trailing dot, port 0, a path, a query)", () => {
    // Pieces of hostile authorities, joined in any order: each one's URL, from the origin cache
    // (asked twice, the second from what the first learnt), is new URL(path, base)'s, or both throw.
    const piece = fc.oneof(
      fc.constantFrom("example.com", "EXAMPLE.com", "example.com.", "127.1", "0x7f.0.0.1", "[::1]", "[fe80::1%25eth0]", "[fe80::1%eth0]", "[::ffff:127.0.0.1]", "xn--bcher-kva.ch", "b\u00fccher.ch", "\u212a.com"),
      fc.constantFrom(":0", ":80", ":443", ":08080", ":65535", ":65536", ":", ":-1", ":+1", ":1e3"),
      fc.constantFrom("user@", "user:pass@", "a@b@", "%40@", "@", ":@"),
      fc.constantFrom("/", "/x/..", "\\", "?", "#", "?q=1", "#f", "%2F", "%41", "%", "%zz", "%2e", "..", ".", " ", "\t", "\n", "\u0000", "[", "]", "|", "^", "<", ">"),
      fc.string({ maxLength: 6 }),
    );
    const authority = fc.array(piece, { minLength: 1, maxLength: 5 }).map((pieces) => pieces.join(""));
    const parsed = (target: string, base: string): string | TypeError => {
      try {
        return new URL(target, base).href;
      } catch (e) {
        return e as TypeError;
      }
    };
    const cached = (a: string, target: string, encrypted: boolean): string | Error => {
      try {
        return urlOf(a, target, encrypted);
      } catch (e) {
        return e as TypeError;
      }
    };
    fc.assert(
      fc.property(authority, fc.boolean(), fc.constantFrom(check, watch, "/tessera.jwt.v1.JwtService/Check"), (a, encrypted, target) => {
        const expected = parsed(target, `${encrypted ? "https" : "http"}://${a}`);
        for (let i = 0; i < 2; i++) {
          const url = cached(a, target, encrypted);
          if (typeof expected === "string") assert.equal(url, expected, JSON.stringify(a));
          else assert.ok(url instanceof Error, `${JSON.stringify(a)}: ${String(url)} where the parser throws`);
        }
      }),
      fcParams(3000),
    );
  });

  it("throws for an authority the URL parser refuses, as the whole parse throws", () => {
    assert.throws(() => urlOf("[::1", check), TypeError);
    assert.throws(() => urlOf("[::1", check, false, false), TypeError);
  });
});
