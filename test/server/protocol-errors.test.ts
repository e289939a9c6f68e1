// The response correction of src/server/protocol-errors.ts on connect-es's own output, cut into
// chunks at every position: where a chunk ends must not change the answer. And the envelope
// scanner under it (src/server/final-envelope.ts) on arbitrary envelopes and chunkings.
import { strict as assert } from "node:assert";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, createConnectRouter } from "@connectrpc/connect";
import { createAsyncIterable, readAllBytes, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import { compressionGzip } from "@connectrpc/connect-node";
import fc from "fast-check";
import { Health } from "../../gen/health/v1/health_pb.js";
import { ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { FinalEnvelopeScanner, rewriteFinalEnvelope } from "../../src/server/final-envelope.js";
import { createResponseCorrection } from "../../src/server/protocol-errors.js";
import { reflectionServices } from "../../src/server/reflection.js";
import { fcParams, grpcFrame } from "../hostile/support.js";
import { errorInfoJson, grpcStatusDetails, jsonDetails, statusDetailsBin } from "../support/error-details.js";

const check = "/grpc.health.v1.Health/Check";
const reflectionInfo = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
const badProto = Buffer.from([0x0a, 0x7f]);
const parseError = "parse binary: premature EOF";
const listServices = grpcFrame(toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } })));

/** An envelope: flags, 32-bit big-endian length, data. */
const envelope = (flags: number, data: Uint8Array) => grpcFrame(data, flags);

/** Every way to cut `bytes` in two, and one byte per chunk. */
function chunkings(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [];
  for (let k = 0; k <= bytes.length; k++) out.push([bytes.subarray(0, k), bytes.subarray(k)]);
  out.push([...bytes].map((b) => Buffer.from([b])));
  return out;
}

/** Calls one connect-es handler in-process. */
async function call(path: string, header: Record<string, string>, body: Buffer, opts: { compressMinBytes?: number; readMaxBytes?: number } = {}): Promise<UniversalServerResponse> {
  const router = createConnectRouter({ acceptCompression: [compressionGzip], compressMinBytes: opts.compressMinBytes, readMaxBytes: opts.readMaxBytes });
  router.service(Health, { check: () => ({}) });
  for (const r of reflectionServices([Health])) router.service(r.service, r.impl);
  const h = router.handlers.find((x) => x.requestPath === path)!;
  return h({ httpVersion: "2.0", url: `http://localhost${path}`, method: "POST", header: new Headers(header), body: createAsyncIterable([body]), signal: new AbortController().signal });
}

const all = (body: AsyncIterable<Uint8Array> | undefined) => readAllBytes(body!, 0xffffffff).then((b) => Buffer.from(b));

/** The envelopes of a body: [flags, payload]. */
function envelopes(body: Buffer): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  let pos = 0;
  while (pos + 5 <= body.length) {
    const len = body.readUInt32BE(pos + 1);
    out.push([body[pos]!, body.subarray(pos + 5, pos + 5 + len)]);
    pos += 5 + len;
  }
  assert.equal(pos, body.length);
  return out;
}

/** A gRPC-Web trailer block ("name: value\r\n" lines) as an object. */
function lines(block: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of block.toString("latin1").split("\r\n")) {
    if (line === "") continue;
    const i = line.indexOf(": ");
    out[line.slice(0, i)] = line.slice(i + 2);
  }
  return out;
}

const correct = createResponseCorrection({ compressions: [compressionGzip] });

/** Feeds connect-es's answer to the correction in each chunking; returns each corrected body. */
async function correctedBodies(res: UniversalServerResponse): Promise<Buffer[]> {
  const bytes = await all(res.body);
  const out: Buffer[] = [];
  for (const pieces of chunkings(bytes)) {
    const fixed = await correct({ ...res, header: new Headers(res.header), body: createAsyncIterable(pieces) });
    out.push(await all(fixed.body));
  }
  return out;
}

describe("protocol errors: connect-es's answers corrected, whatever the chunking", () => {
  it("gRPC-Web: the trailer envelope says INVALID_ARGUMENT, after a data envelope too", async () => {
    for (const [path, body] of [
      [check, grpcFrame(badProto)],
      [reflectionInfo, Buffer.concat([listServices, grpcFrame(Buffer.from([0xff, 0xff, 0xff]))])],
    ] as const) {
      const res = await call(path, { "content-type": "application/grpc-web+proto" }, body);
      const original = envelopes(await all((await call(path, { "content-type": "application/grpc-web+proto" }, body)).body));
      for (const fixed of await correctedBodies(res)) {
        const env = envelopes(fixed);
        assert.deepEqual(env.slice(0, -1), original.slice(0, -1), "data envelopes pass unchanged");
        assert.equal(env.at(-1)![0], 0x80);
        const trailer = lines(env.at(-1)![1]);
        assert.deepEqual(Object.keys(trailer).sort(), ["grpc-message", "grpc-status", "grpc-status-details-bin"]);
        assert.equal(trailer["grpc-status"], "3");
        assert.match(trailer["grpc-message"]!, /^parse binary: /);
        assert.equal(grpcStatusDetails(trailer["grpc-status-details-bin"]!).reason, "MALFORMED_REQUEST");
      }
    }
  });

  it("gRPC-Web: a compressed trailer envelope is read, and sent back uncompressed", async () => {
    const res = await call(check, { "content-type": "application/grpc-web+proto", "grpc-accept-encoding": "gzip" }, grpcFrame(badProto), { compressMinBytes: 1 });
    assert.equal(res.header?.get("grpc-encoding"), "gzip");
    for (const fixed of await correctedBodies(res)) {
      const env = envelopes(fixed);
      assert.deepEqual(env.map(([flags]) => flags), [0x80]);
      assert.deepEqual(lines(env[0]![1]), { "grpc-status": "3", "grpc-message": parseError, "grpc-status-details-bin": statusDetailsBin(3, parseError, "MALFORMED_REQUEST") });
    }
  });

  it("Connect streaming: the end-stream message says invalid_argument, after a data envelope too", async () => {
    for (const [path, body] of [
      [reflectionInfo, grpcFrame(Buffer.from([0xff, 0xff, 0xff]))],
      [reflectionInfo, Buffer.concat([listServices, grpcFrame(Buffer.from([0xff, 0xff, 0xff]))])],
    ] as const) {
      const res = await call(path, { "content-type": "application/connect+proto" }, body);
      for (const fixed of await correctedBodies(res)) {
        const env = envelopes(fixed);
        assert.equal(env.at(-1)![0], 0x02);
        const end = JSON.parse(env.at(-1)![1].toString());
        assert.equal(end.error.code, "invalid_argument");
        assert.match(end.error.message, /^parse binary: /);
        assert.deepEqual(jsonDetails(end.error.details), { reason: "MALFORMED_REQUEST", domain: "tessera", metadata: {} });
        assert.ok(env.slice(0, -1).every(([flags]) => flags === 0));
      }
    }
  });

  it("Connect streaming: a compressed end-stream message", async () => {
    const res = await call(reflectionInfo, { "content-type": "application/connect+proto", "connect-accept-encoding": "gzip" }, grpcFrame(Buffer.from([0xff, 0xff, 0xff])), { compressMinBytes: 1 });
    assert.equal(res.header?.get("connect-content-encoding"), "gzip");
    for (const fixed of await correctedBodies(res)) {
      const env = envelopes(fixed);
      assert.equal(env.length, 1);
      assert.equal(env[0]![0], 0x02);
      assert.equal(JSON.parse(env[0]![1].toString()).error.code, "invalid_argument");
    }
  });

  it("Connect unary: a 500 parse error becomes a 400, compressed or not", async () => {
    for (const compressed of [false, true]) {
      const header = { "content-type": "application/proto", ...(compressed ? { "accept-encoding": "gzip" } : {}) };
      const res = await call(check, header, badProto, { compressMinBytes: 1 });
      assert.equal(res.status, 500);
      assert.equal(res.header?.get("content-encoding"), compressed ? "gzip" : null);
      const fixed = await correct(res);
      const body = await all(fixed.body);
      assert.equal(fixed.status, 400);
      assert.equal(fixed.header?.get("content-encoding"), null);
      assert.equal(fixed.header?.get("content-length"), String(body.length));
      assert.deepEqual(JSON.parse(body.toString()), { code: "invalid_argument", message: parseError, details: [errorInfoJson("MALFORMED_REQUEST", { metadata: false })] });
    }
  });

  it("Connect unary: every error connect-es raises itself gets the ErrorInfo of its code (a message over the size limit)", async () => {
    const res = await call(check, { "content-type": "application/json" }, Buffer.from(JSON.stringify({ service: "x".repeat(100) })), { readMaxBytes: 50 });
    assert.equal(res.status, 429);
    const fixed = await correct(res);
    const body = JSON.parse((await all(fixed.body)).toString());
    assert.equal(fixed.status, 429);
    assert.equal(body.code, "resource_exhausted");
    assert.deepEqual(body.details, [errorInfoJson("REQUEST_TOO_LARGE", { metadata: false })]);
  });

  it("gRPC: an error connect-es raises itself gets the ErrorInfo of its code (an unknown compression)", async () => {
    const res = await call(check, { "content-type": "application/grpc", "grpc-encoding": "zstd" }, grpcFrame(new Uint8Array()));
    const fixed = correct(res) as UniversalServerResponse;
    await all(fixed.body);
    assert.equal(fixed.trailer?.get("grpc-status"), String(Code.Unimplemented));
    assert.equal(grpcStatusDetails(fixed.trailer!.get("grpc-status-details-bin")!).reason, "UNIMPLEMENTED");
  });

  it("gRPC: the trailers, read once the body is drained, say INVALID_ARGUMENT", async () => {
    const res = await call(reflectionInfo, { "content-type": "application/grpc" }, Buffer.concat([listServices, grpcFrame(Buffer.from([0xff, 0xff, 0xff]))]));
    const fixed = correct(res) as UniversalServerResponse;
    assert.equal(envelopes(await all(fixed.body)).length, 1);
    assert.equal(fixed.trailer?.get("grpc-status"), String(Code.InvalidArgument));
    assert.match(fixed.trailer?.get("grpc-message") ?? "", /^parse binary: /);
    assert.equal(grpcStatusDetails(fixed.trailer!.get("grpc-status-details-bin")!).reason, "MALFORMED_REQUEST");
  });

  it("a success passes as it is: the same gRPC trailer, the same Connect unary response", async () => {
    const grpcRes = await call(check, { "content-type": "application/grpc" }, grpcFrame(new Uint8Array()));
    const fixed = correct(grpcRes) as UniversalServerResponse;
    await all(fixed.body);
    assert.equal(fixed.trailer, grpcRes.trailer);
    assert.deepEqual([...fixed.trailer!], [["grpc-status", "0"]]);
    const unary = await call(check, { "content-type": "application/proto" }, Buffer.alloc(0));
    assert.equal(correct(unary), unary);
  });
});

describe("final envelope scanner", () => {
  const payload = fc.uint8Array({ maxLength: 40 });
  const body = fc.record({
    data: fc.array(fc.tuple(fc.constantFrom(0, 1), payload), { maxLength: 5 }),
    final: fc.option(payload, { nil: undefined }),
    cuts: fc.array(fc.nat(), { maxLength: 8 }),
  });
  const cut = (bytes: Buffer, at: number[]) => {
    const points = [...new Set(at.map((n) => n % (bytes.length + 1)))].sort((a, b) => a - b);
    const out: Buffer[] = [];
    let prev = 0;
    for (const p of [...points, bytes.length]) {
      out.push(bytes.subarray(prev, p));
      prev = p;
    }
    return out;
  };

  it("passes every byte through unchanged, and hands over the final envelope whole", async () => {
    await fc.assert(
      fc.asyncProperty(body, async ({ data, final, cuts }) => {
        const head = Buffer.concat(data.map(([f, d]) => envelope(f, d)));
        const tail = final === undefined ? Buffer.alloc(0) : envelope(0x80, final);
        const bytes = Buffer.concat([head, tail]);
        const seen: Array<{ flags: number; data: Uint8Array }> = [];
        const same = await all(rewriteFinalEnvelope(createAsyncIterable(cut(bytes, cuts)), 0x80, async (e) => (seen.push(e), undefined)));
        assert.deepEqual(same, bytes);
        assert.deepEqual(seen.map((e) => [e.flags, Buffer.from(e.data)]), final === undefined ? [] : [[0x80, Buffer.from(final)]]);
        const replaced = await all(rewriteFinalEnvelope(createAsyncIterable(cut(bytes, cuts)), 0x80, async () => Buffer.from("new")));
        assert.deepEqual(replaced, final === undefined ? bytes : Buffer.concat([head, Buffer.from("new")]));
      }),
      fcParams(300),
    );
  });

  it("sends a truncated final envelope, or a cut prefix at the end, as it is", () => {
    for (const bytes of [Buffer.from([0x80, 0, 0, 0, 9, 1, 2]), Buffer.from([0, 0, 0, 0, 1, 7, 0x80, 0])]) {
      const s = new FinalEnvelopeScanner(0x80);
      const sent = s.push(bytes);
      const { held, envelope: e } = s.end();
      assert.equal(e, undefined);
      assert.deepEqual(Buffer.concat([sent, held]), bytes);
    }
  });
});
