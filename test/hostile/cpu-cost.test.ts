/**
 * Requests that cost a server far more CPU than their size: input whose reading took time
 * quadratic (or worse) in its length held the event loop for seconds, every other call waiting,
 * without any credential. Each is answered as before, within a second.
 */
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import net from "node:net";
import { brotliDecompressSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ServerReflection, ServerReflectionRequestSchema, ServerReflectionResponseSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { GetVersionResponseSchema } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { decodedBody, tesseraDetails } from "../support/error-details.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { connectEnvelopes, grpcFrame, grpcStatus, grpcWebTrailer, h2request, raw, type RawAnswer } from "./support.js";

/** Some ten times what the slowest of these requests takes now, a third of what the quickest took. */
const limitMs = 1000;
/**
 * For a request in 30 000 pieces: Node's own cost of a chunk (some 10 us, 0.2 to 0.5 s in all on
 * a loaded machine) is left, a third of what the quickest of them took.
 */
const piecesLimitMs = 2000;

describe("requests that cost more CPU than their size", function () {
  this.timeout(120_000);
  let server: TestServer;
  before(async () => {
    // A body limit above the default's 64 KiB, as an operator may set one: the cost of what grew
    // faster than its length shows the sooner.
    server = await startTestServer({ env: { TESSERA_BODY_LIMIT_BYTES: String(256 * 1024) } });
  });
  after(() => server?.close());

  /** The answer, failing the test when it took `limitMs` or more. */
  async function timed(what: string, request: () => Promise<RawAnswer>, limit = limitMs): Promise<RawAnswer> {
    const started = performance.now();
    const answer = await request();
    const ms = Math.round(performance.now() - started);
    assert.ok(ms < limit, `${what} took ${ms} ms`);
    return answer;
  }

  function assertError(answer: RawAnswer, status: number, code: string, message: string, reason: string, fields?: Record<string, string>): void {
    assert.equal(answer.status, status, answer.text);
    assert.deepEqual(decodedBody(JSON.parse(answer.text)), { code, message, details: tesseraDetails(reason, fields) });
  }

  it("GET /jwt/token, a multipart part whose Content-Transfer-Encoding line holds 3000 spaces before a lone LF (7 s): no such header, the form read", async () => {
    const body = `--x\r\nContent-Disposition: form-data; name="user"\r\nContent-Transfer-Encoding:${" ".repeat(3000)}x\n\r\n\r\nada\r\n--x--\r\n`;
    const answer = await timed("the request", () => raw(server.url, "GET", "/jwt/token", { host: "localhost", "content-type": "multipart/form-data; boundary=x" }, body));
    const missing = "pass is required (or user must be a refresh token)";
    assertError(answer, 400, "invalid_argument", missing, "MISSING_FIELDS", { pass: missing });
  });

  it("POST /session, a refused login of a letter, 80 Ki dots and a letter (its audit event looked through for a credential: 9 s): 401", async () => {
    const body = JSON.stringify({ account_type: "traditional", email: `a${".".repeat(80 * 1024)}a`, password: "not the password" });
    const answer = await timed("the login", () => raw(server.url, "POST", "/session", { host: "localhost", "x-koms-clientid": testClientId, "content-type": "application/json" }, body));
    assertError(answer, 401, "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
  });

  it("gRPC-Web text, GetVersion: a 30 000-byte message in as many base64 segments of one byte each (connect-es's decoder: over 10 s): answered", async () => {
    // Unknown fields (15, varint 1), which the call ignores.
    const message = Buffer.from(Array.from({ length: 15_000 }, () => [0x78, 0x01]).flat());
    const text = [...grpcFrame(message)].map((byte) => Buffer.from([byte]).toString("base64")).join("");
    const answer = await timed("the call", () =>
      raw(server.url, "POST", "/tessera.jwt.v1.JwtService/GetVersion", { host: "localhost", "content-type": "application/grpc-web-text", "x-grpc-web": "1" }, text),
      piecesLimitMs,
    );
    assert.equal(answer.status, 200, answer.text);
    const body = Buffer.from(answer.text, "base64");
    assert.equal(grpcWebTrailer(body)["grpc-status"], "0");
    assert.match(fromBinary(GetVersionResponseSchema, body.subarray(5, 5 + body.readUInt32BE(1))).version, /^\d+\.\d+\.\d+/);
  });

  it("Connect streaming, Health/Watch: a 30 000-byte request in one-byte HTTP/1.1 chunks (connect-es's decoder: 5 s): SERVICE_UNKNOWN at once", async () => {
    const request = toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "s".repeat(30_000 - 3) }));
    const enveloped = grpcFrame(request);
    const chunks = [...enveloped].map((byte) => `1\r\n${String.fromCharCode(byte)}\r\n`).join("");
    const head = `POST /${Health.typeName}/Watch HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/connect+proto\r\ntransfer-encoding: chunked\r\n\r\n`;
    const started = performance.now();
    const socket = net.connect(server.port, "127.0.0.1");
    try {
      // The answer's first message, out of its chunked body.
      const first = await new Promise<Buffer>((resolve, reject) => {
        let got = Buffer.alloc(0);
        socket.on("error", reject);
        socket.on("close", () => reject(new Error(`closed before a message: ${got.toString("latin1")}`)));
        socket.on("data", (d: Buffer) => {
          got = Buffer.concat([got, d]);
          const text = got.toString("latin1");
          const body = text.indexOf("\r\n\r\n");
          if (body < 0) return;
          assert.match(text, /^HTTP\/1\.1 200 /);
          const size = /^([0-9a-f]+)\r\n/.exec(text.slice(body + 4));
          if (size === null || got.length < body + 4 + size[0].length + parseInt(size[1]!, 16)) return;
          resolve(got.subarray(body + 4 + size[0].length, body + 4 + size[0].length + parseInt(size[1]!, 16)));
        });
        socket.write(Buffer.from(head + chunks + "0\r\n\r\n", "latin1"));
      });
      const ms = Math.round(performance.now() - started);
      assert.ok(ms < piecesLimitMs, `the first message took ${ms} ms`);
      assert.equal(first[0], 0, "a message envelope");
      assert.equal(fromBinary(Health.method.watch.output, first.subarray(5, 5 + first.readUInt32BE(1))).status, Status.SERVICE_UNKNOWN);
    } finally {
      socket.destroy();
    }
  });

  // A reflection stream (served without a credential) asking 30 times for the descriptors of
  // JwtService's file and its imports (some 70 KB): 1 KB sent. As grpc-go answers, the imports
  // go in the first answer only (the stream has them); each next one is the file alone (19 KB).
  const reflectionRequest = toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, { messageRequest: { case: "fileContainingSymbol", value: "tessera.jwt.v1.JwtService" } }));
  const reflectionCalls = [
    { protocol: "gRPC", headers: { "content-type": "application/grpc", te: "trailers", "grpc-accept-encoding": "br" }, encodingHeader: "grpc-encoding", end: [] as Buffer[] },
    { protocol: "Connect streaming", headers: { "content-type": "application/connect+proto", "connect-accept-encoding": "br" }, encodingHeader: "connect-content-encoding", end: [grpcFrame(Buffer.from("{}"), 2)] },
  ];
  for (const call of reflectionCalls) {
    it(`${call.protocol} reflection, 30 answers of JwtService's descriptors (some 70 KB, then its file alone, 19 KB) asked for in br (compressed at brotli's default quality 11: some 0.1 s of CPU each, 3.6 s in all): all answered, in br, within 1.5 s of CPU`, async () => {
      const session = http2.connect(server.url);
      session.on("error", () => {});
      try {
        const path = `/${ServerReflection.typeName}/${ServerReflection.method.serverReflectionInfo.name}`;
        const body = Buffer.concat([...Array.from({ length: 30 }, () => grpcFrame(reflectionRequest)), ...call.end]);
        // The process's CPU, libuv's threads (where zlib compresses) included: a loaded machine
        // stretches wall time, not this.
        const before = process.cpuUsage();
        const answer = await h2request(session, { ":method": "POST", ":path": path, ...call.headers }, body, { timeoutMs: 60_000 });
        const used = process.cpuUsage(before);
        const cpuMs = Math.round((used.user + used.system) / 1000);
        assert.equal(answer.headers[":status"], 200);
        assert.equal(answer.headers[call.encodingHeader], "br");
        const files: string[] = [];
        const counts: number[] = [];
        let at = 0;
        for (; at < answer.data.length && answer.data[at] === 1; at += 5 + answer.data.readUInt32BE(at + 1)) {
          const message = fromBinary(ServerReflectionResponseSchema, brotliDecompressSync(answer.data.subarray(at + 5, at + 5 + answer.data.readUInt32BE(at + 1))));
          assert.equal(message.messageResponse.case, "fileDescriptorResponse");
          files.push(fromBinary(FileDescriptorProtoSchema, message.messageResponse.value.fileDescriptorProto[0]!).name);
          counts.push(message.messageResponse.value.fileDescriptorProto.length);
        }
        assert.deepEqual(files, Array.from({ length: 30 }, () => "tessera/jwt/v1/jwt.proto"));
        assert.deepEqual(counts, [8, ...Array.from({ length: 29 }, () => 1)], "the file and its 7 imports, then the file alone");
        if (call.protocol === "gRPC") {
          assert.equal(at, answer.data.length);
          assert.equal(grpcStatus(answer), 0, JSON.stringify(answer.trailers));
        } else {
          // The end of the stream, without an error (under 1 KiB: not compressed).
          assert.deepEqual(connectEnvelopes(answer.data.subarray(at)), [[2, "{}"]]);
        }
        assert.ok(cpuMs < 1500, `30 answers took ${cpuMs} ms of CPU`);
      } finally {
        session.close();
      }
    });
  }
});
