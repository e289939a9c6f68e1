/**
 * Unknown fields of a request message are skipped, not kept. protobuf-es keeps each one it
 * reads (an object and a copy of its bytes), and nothing in Tessera reads them: 64 KiB of
 * two-byte unknown fields sent to GetVersion, a call open to anyone, made protobuf-es keep
 * 32 500 of them, some fifteen times the CPU of the call without them. The handler below
 * answers whether the message it was given holds any, on every path the dispatcher serves a
 * protobuf message by: the unary paths of grpc-unary.ts (gRPC, gRPC-Web, Connect unary) and
 * connect-es's own handlers (a compressed gRPC call, a Connect stream).
 */
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import type net from "node:net";
import { gzipSync } from "node:zlib";
import { create, fromBinary, toBinary, type Message } from "@bufbuild/protobuf";
import { createContextValues } from "@connectrpc/connect";
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { createLogger } from "../../src/logger.js";
import { createDispatcher } from "../../src/server/dispatch.js";
import { connectEnvelopes, grpcFrame, grpcStatus, grpcWebTrailer, h2request } from "./support.js";

/** SERVING when the request message holds no unknown field, NOT_SERVING when it keeps some. */
const statusOf = (req: Message) => ((req.$unknown?.length ?? 0) === 0 ? Status.SERVING : Status.NOT_SERVING);

/** A HealthCheckRequest naming no service, followed by 1000 unknown fields (number 15, varint 1). */
const request = Buffer.concat([
  toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, {})),
  Buffer.from(Array.from({ length: 1000 }, () => [0x78, 0x01]).flat()),
]);

describe("hostile: unknown fields of a request message are not kept", () => {
  let server: http2.Http2Server;
  let session: http2.ClientHttp2Session;
  const check = `/${Health.typeName}/${Health.method.check.name}`;
  const watch = `/${Health.typeName}/${Health.method.watch.name}`;
  before(async () => {
    const dispatcher = createDispatcher({
      routes(router) {
        router.service(Health, {
          check: (req) => ({ status: statusOf(req) }),
          async *watch(req) {
            yield { status: statusOf(req) };
          },
        });
      },
      contextValues: () => createContextValues(),
      logger: createLogger("error", () => {}),
    });
    server = http2.createServer(
      dispatcher.listener((_req, res) => {
        res.statusCode = 404;
        res.end();
      }),
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    session = http2.connect(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  });
  after(async () => {
    session.close();
    await new Promise((r) => server.close(r));
  });

  const statusIn = (bytes: Buffer) => fromBinary(Health.method.check.output, bytes).status;
  /** The first message of a gRPC or gRPC-Web answer body. */
  const firstMessage = (data: Buffer) => data.subarray(5, 5 + data.readUInt32BE(1));

  it("gRPC (the unary path): the handler is given the message without them", async () => {
    const a = await h2request(session, { ":method": "POST", ":path": check, "content-type": "application/grpc", te: "trailers" }, grpcFrame(request));
    assert.equal(grpcStatus(a), 0, JSON.stringify(a.trailers));
    assert.equal(statusIn(firstMessage(a.data)), Status.SERVING);
  });

  it("gRPC-Web (the unary path): the handler is given the message without them", async () => {
    const a = await h2request(session, { ":method": "POST", ":path": check, "content-type": "application/grpc-web+proto" }, grpcFrame(request));
    assert.equal(grpcWebTrailer(a.data)["grpc-status"], "0");
    assert.equal(statusIn(firstMessage(a.data)), Status.SERVING);
  });

  it("Connect unary (the unary path): the handler is given the message without them", async () => {
    const a = await h2request(session, { ":method": "POST", ":path": check, "content-type": "application/proto" }, request);
    assert.equal(a.headers[":status"], 200, a.data.toString());
    assert.equal(statusIn(a.data), Status.SERVING);
  });

  it("gRPC, its message gzip-compressed (connect-es's handler): the handler is given the message without them", async () => {
    const a = await h2request(
      session,
      { ":method": "POST", ":path": check, "content-type": "application/grpc", te: "trailers", "grpc-encoding": "gzip" },
      grpcFrame(gzipSync(request), 1),
    );
    assert.equal(grpcStatus(a), 0, JSON.stringify(a.trailers));
    assert.equal(statusIn(firstMessage(a.data)), Status.SERVING);
  });

  it("Connect streaming, Watch (connect-es's handler): the handler is given the message without them", async () => {
    const a = await h2request(session, { ":method": "POST", ":path": watch, "content-type": "application/connect+proto" }, grpcFrame(request));
    assert.equal(a.headers[":status"], 200);
    assert.equal(statusIn(firstMessage(a.data)), Status.SERVING);
    assert.deepEqual(connectEnvelopes(a.data.subarray(5 + a.data.readUInt32BE(1))), [[2, "{}"]]);
  });
});
