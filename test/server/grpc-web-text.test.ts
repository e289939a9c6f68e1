// gRPC-Web's text mode (`application/grpc-web-text`, the grpc-web library's default): the request
// body and the answer are base64 of gRPC-Web's binary framing. connect-es does not serve it: the
// answer was 415. The request's base64 may arrive cut anywhere (one character per write here)
// and in padded segments; the answer is base64 chunk by chunk (each padded, as Envoy sends it),
// which the grpc-web library decodes as it arrives.
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { GetVersionResponseSchema } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { grpcFrame, grpcWebTrailer } from "../hostile/support.js";
import { startTestServer, type TestServer } from "../support/server.js";

const version = "/tessera.jwt.v1.JwtService/GetVersion";
const watch = `/${Health.typeName}/Watch`;

interface TextAnswer {
  status: number;
  contentType: string | undefined;
  /** The body, base64-decoded segment by segment (padding may end any segment). */
  body: Buffer;
}

/** Decodes base64 made of padded segments (each a multiple of 4 characters). */
function decodeSegments(text: string): Buffer {
  return Buffer.concat((text.match(/[^=]*=*/g) ?? []).filter((s) => s.length > 0).map((s) => Buffer.from(s, "base64")));
}

/** POSTs `pieces` (written one by one) over HTTP/2 with `headers`; the answer decoded. */
function post(server: TestServer, path: string, headers: Record<string, string>, pieces: string[]): Promise<TextAnswer> {
  const session = http2.connect(server.url);
  return new Promise<TextAnswer>((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc-web-text", "x-grpc-web": "1", ...headers });
    let status = 0;
    let contentType: string | undefined;
    let text = "";
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      contentType = h["content-type"];
    });
    stream.setEncoding("latin1");
    stream.on("data", (c: string) => (text += c));
    stream.on("close", () => resolve({ status, contentType, body: decodeSegments(text) }));
    stream.on("error", reject);
    const write = (i: number): void => {
      if (i === pieces.length) {
        stream.end();
        return;
      }
      stream.write(pieces[i]!, "latin1", () => setImmediate(() => write(i + 1)));
    };
    write(0);
  }).finally(() => session.close());
}

/** The data envelopes (flag 0) of a gRPC-Web body. */
function messages(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let pos = 0; pos + 5 <= body.length; pos += 5 + body.readUInt32BE(pos + 1)) {
    if (body[pos] === 0) out.push(body.subarray(pos + 5, pos + 5 + body.readUInt32BE(pos + 1)));
  }
  return out;
}

describe("server: gRPC-Web text mode (application/grpc-web-text)", function () {
  this.timeout(20_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server?.close());

  it("a unary call whose base64 arrives one character per write: the answer in base64, content type grpc-web-text+proto", async () => {
    const a = await post(server, version, {}, [...grpcFrame(new Uint8Array()).toString("base64")]);
    assert.equal(a.status, 200);
    assert.equal(a.contentType, "application/grpc-web-text+proto");
    const [message] = messages(a.body);
    assert.ok(message, a.body.toString("latin1"));
    assert.match(fromBinary(GetVersionResponseSchema, message).version, /^\d+\.\d+\.\d+/);
    assert.equal(grpcWebTrailer(a.body)["grpc-status"], "0");
  });

  it("a server stream (Health/Watch, grpc-timeout 300m) in padded base64 segments: SERVING, then DEADLINE_EXCEEDED", async () => {
    const request = grpcFrame(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "" })));
    // Two padded segments, as a client that encodes each write sends them.
    const a = await post(server, watch, { "grpc-timeout": "300m" }, [request.subarray(0, 4).toString("base64"), request.subarray(4).toString("base64")]);
    assert.equal(a.status, 200);
    assert.equal(a.contentType, "application/grpc-web-text+proto");
    const [message] = messages(a.body);
    assert.ok(message, a.body.toString("latin1"));
    assert.equal(fromBinary(Health.method.watch.output, message).status, Status.SERVING);
    assert.equal(grpcWebTrailer(a.body)["grpc-status"], "4");
  });

  for (const [name, pieces] of [
    ["a character outside base64", ["AAAA*AAA"]],
    ["base64 cut short (not a multiple of 4 characters)", ["AAAAAAA"]],
  ] as const) {
    it(`${name}: grpc-status 3 (INVALID_ARGUMENT) naming it`, async () => {
      const a = await post(server, version, {}, [...pieces]);
      assert.equal(a.status, 200);
      assert.equal(a.contentType, "application/grpc-web-text+proto");
      const trailer = grpcWebTrailer(a.body);
      assert.equal(trailer["grpc-status"], "3", JSON.stringify(trailer));
      assert.equal(decodeURIComponent(trailer["grpc-message"] ?? ""), "the gRPC-Web text body is not base64");
    });
  }
});
