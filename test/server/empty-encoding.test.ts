// An empty coding header on a request with a body (`content-encoding:` on REST and Connect,
// `connect-content-encoding:` on a Connect stream, `grpc-encoding:` on gRPC and gRPC-Web) names no
// coding: identity, as connect-go (its compression pools take "" for identity) and grpc-go (`rc !=
// "" && rc != identity`) take it, and as a Connect GET's empty `compression=` is (connect-get.test.ts).
// connect-es answered it as the unknown compression "" (501 unimplemented; gRPC 12), the REST
// transcoder as an unsupported content encoding (415).
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { GetVersionRequestSchema } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { grpcFrame, h2request } from "../hostile/support.js";
import { RestH2c } from "../support/rest-h2c.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { password, uniqueEmail } from "../support/users.js";

const getVersion = "/tessera.jwt.v1.JwtService/GetVersion";
const emptyRequest = grpcFrame(toBinary(GetVersionRequestSchema, create(GetVersionRequestSchema, {})));

/**
 * One HTTP/1.1 request written as `head` (its header lines, without the blank line; Connection:
 * close added) and `body` on a raw socket: the status and body of the answer.
 */
function h1exchange(port: number, head: string, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(Buffer.concat([Buffer.from(`${head}\r\nconnection: close\r\n\r\n`, "latin1"), body])));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf("\r\n\r\n");
      const headText = all.subarray(0, end).toString("latin1");
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(headText)?.[1]);
      let rest = all.subarray(end + 4);
      if (!/\r\ntransfer-encoding: chunked/i.test(headText)) return resolve({ status, body: rest });
      const pieces: Buffer[] = [];
      for (let size = 1; size > 0; ) {
        const line = rest.indexOf("\r\n");
        size = parseInt(rest.subarray(0, line).toString("latin1"), 16);
        pieces.push(rest.subarray(line + 2, line + 2 + size));
        rest = rest.subarray(line + 2 + size + 2);
      }
      resolve({ status, body: Buffer.concat(pieces) });
    });
  });
}

/** The grpc-status a gRPC-Web body's trailer envelope (the last) carries. */
function webStatus(body: Buffer): string | undefined {
  let pos = 0;
  let status: string | undefined;
  while (pos + 5 <= body.length) {
    const length = body.readUInt32BE(pos + 1);
    if (body[pos]! & 0x80) status = /grpc-status: ?(\d+)/.exec(body.subarray(pos + 5, pos + 5 + length).toString("latin1"))?.[1];
    pos += 5 + length;
  }
  return status;
}

/** The message of the first data envelope of a gRPC or gRPC-Web body. */
function firstMessage(body: Buffer): Buffer {
  assert.ok(body.length >= 5 && (body[0]! & 0x80) === 0, `no data envelope first: ${body.toString("hex")}`);
  return body.subarray(5, 5 + body.readUInt32BE(1));
}

describe("server: an empty coding header is identity, on every protocol", function () {
  this.timeout(30_000);
  let server: TestServer;
  let version: string;
  let session: http2.ClientHttp2Session;
  before(async () => {
    server = await startTestServer();
    version = ((await (await fetch(`${server.url}/jwt/version`)).json()) as { version: string }).version;
    session = http2.connect(server.url);
  });
  after(async () => {
    session?.close();
    await server?.close();
  });

  it("gRPC (h2c), grpc-encoding empty: grpc-status 0 and the version", async () => {
    const a = await h2request(session, { ":method": "POST", ":path": getVersion, "content-type": "application/grpc", te: "trailers", "grpc-encoding": "" }, emptyRequest);
    assert.equal(a.headers[":status"], 200);
    assert.equal(a.trailers["grpc-status"] ?? a.headers["grpc-status"], "0", String(a.trailers["grpc-message"] ?? a.headers["grpc-message"]));
    assert.match(firstMessage(a.data).toString("latin1"), new RegExp(version.replace(/\./g, "\\.")));
  });

  it("gRPC-Web (h2c), grpc-encoding empty: grpc-status 0 and the version", async () => {
    const a = await h2request(session, { ":method": "POST", ":path": getVersion, "content-type": "application/grpc-web+proto", "grpc-encoding": "" }, emptyRequest);
    assert.equal(a.headers[":status"], 200);
    assert.equal(webStatus(a.data), "0", a.data.toString("latin1"));
    assert.match(firstMessage(a.data).toString("latin1"), new RegExp(version.replace(/\./g, "\\.")));
  });

  it("gRPC-Web (HTTP/1.1), grpc-encoding empty: grpc-status 0 and the version", async () => {
    const head = `POST ${getVersion} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/grpc-web+proto\r\ngrpc-encoding: \r\ncontent-length: ${emptyRequest.length}`;
    const a = await h1exchange(server.port, head, emptyRequest);
    assert.equal(a.status, 200, a.body.toString("latin1"));
    assert.equal(webStatus(a.body), "0", a.body.toString("latin1"));
    assert.match(firstMessage(a.body).toString("latin1"), new RegExp(version.replace(/\./g, "\\.")));
  });

  for (const type of ["application/json", "application/proto"] as const) {
    const body = type === "application/json" ? Buffer.from("{}") : Buffer.alloc(0);
    const check = (status: number, text: Buffer) => {
      assert.equal(status, 200, text.toString());
      if (type === "application/json") assert.deepEqual(JSON.parse(text.toString()), { version });
      else assert.match(text.toString("latin1"), new RegExp(version.replace(/\./g, "\\.")));
    };

    it(`Connect unary (h2c, ${type}), content-encoding empty: 200 and the version`, async () => {
      const a = await h2request(session, { ":method": "POST", ":path": getVersion, "content-type": type, "content-encoding": "" }, body);
      check(Number(a.headers[":status"]), a.data);
    });

    it(`Connect unary (HTTP/1.1, ${type}), content-encoding empty: 200 and the version`, async () => {
      const a = await h1exchange(server.port, `POST ${getVersion} HTTP/1.1\r\nhost: localhost\r\ncontent-type: ${type}\r\ncontent-encoding:\r\ncontent-length: ${body.length}`, body);
      check(a.status, a.body);
    });
  }

  it("Connect stream (h2c, Health/Watch), connect-content-encoding empty: the first message, SERVING", async () => {
    const request = grpcFrame(Buffer.from("{}"));
    const stream = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Watch", "content-type": "application/connect+json", "connect-content-encoding": "" });
    try {
      const [headers, first] = await new Promise<[http2.IncomingHttpHeaders, Buffer]>((resolve, reject) => {
        let headers: http2.IncomingHttpHeaders = {};
        let data = Buffer.alloc(0);
        stream.on("response", (h) => (headers = h));
        stream.on("data", (c: Buffer) => {
          data = Buffer.concat([data, c]);
          if (data.length >= 5 && data.length >= 5 + data.readUInt32BE(1)) resolve([headers, data]);
        });
        stream.on("end", () => resolve([headers, data]));
        stream.on("error", reject);
        stream.end(request);
      });
      assert.equal(headers[":status"], 200);
      assert.equal(first[0], 0, `a message first, not the end of the stream: ${first.subarray(5).toString()}`);
      assert.deepEqual(JSON.parse(first.subarray(5, 5 + first.readUInt32BE(1)).toString()), { status: "SERVING" });
    } finally {
      stream.close();
    }
  });

  const signUpBody = () => JSON.stringify({ email: uniqueEmail("empty-coding"), password });

  it("REST (HTTP/1.1), content-encoding empty: the sign-up is made (201)", async () => {
    const body = Buffer.from(signUpBody());
    const a = await h1exchange(server.port, `POST /user HTTP/1.1\r\nhost: localhost\r\nx-koms-clientid: ${testClientId}\r\ncontent-type: application/json\r\ncontent-encoding: \r\ncontent-length: ${body.length}`, body);
    assert.equal(a.status, 201, a.body.toString());
    assert.deepEqual(JSON.parse(a.body.toString()), { message: "User created" });
  });

  it("REST (h2c), content-encoding empty: the sign-up is made (201)", async () => {
    const h2c = new RestH2c(server.url);
    try {
      const res = await h2c.request("POST", "/user", { body: signUpBody(), headers: { "content-type": "application/json", "content-encoding": "", "x-koms-clientid": testClientId } });
      assert.equal(res.status, 201, res.text);
      assert.deepEqual(res.body, { message: "User created" });
    } finally {
      h2c.close();
    }
  });
});
