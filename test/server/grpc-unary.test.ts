// Unary gRPC calls are answered by src/server/grpc-unary.ts, not by connect-es's streaming gRPC
// handler: the two must give the same answer, byte for byte. Each request below is sent twice
// over HTTP/2 on one server: plain (the unary path) and with `grpc-encoding: gzip` (an
// uncompressed envelope, which gRPC allows) and `grpc-accept-encoding: identity`, which the
// unary path leaves to connect-es; status, headers (but the date), trailers and body must agree.
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { CreateUserRequestSchema } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { GetSessionRequestSchema } from "../../gen/tessera/session/v1/session_pb.js";
import { grpcUnaryAnswered } from "../../src/server/grpc-unary.js";
import { grpcFrame, h2request, type H2Answer } from "../hostile/support.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { startSession, signUp, uniqueEmail } from "../support/users.js";

const paths = {
  version: "/tessera.jwt.v1.JwtService/GetVersion",
  session: "/tessera.session.v1.SessionService/GetSession",
  createUser: "/tessera.jwt.v1.JwtService/CreateUser",
};

function comparable(a: H2Answer) {
  const { date: _d, ...headers } = a.headers;
  return { headers, trailers: a.trailers, body: a.data.toString("hex") };
}

describe("server: unary gRPC answered outside connect-es's stream pipeline", function () {
  this.timeout(30000);
  let server: TestServer;
  let session: http2.ClientHttp2Session;
  let token: string;
  before(async () => {
    server = await startTestServer();
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
    {
      name: "a missing field: INVALID_ARGUMENT with BadRequest details",
      path: "createUser",
      body: () => grpcFrame(toBinary(CreateUserRequestSchema, create(CreateUserRequestSchema))),
      grpcStatus: Code.InvalidArgument,
    },
  ];

  for (const c of cases) {
    it(`${c.name}: the same answer on both paths`, async () => {
      const headers = { ":method": "POST", ":path": paths[c.path], "content-type": "application/grpc", te: "trailers", "x-request-id": "grpc-unary-test", ...c.headers?.() };
      const before = grpcUnaryAnswered.count;
      const fast = await h2request(session, headers, c.body());
      assert.equal(grpcUnaryAnswered.count, before + 1, "the plain request took the unary path");
      const viaConnect = await h2request(session, { ...headers, "grpc-encoding": "gzip", "grpc-accept-encoding": "identity" }, c.body());
      assert.equal(grpcUnaryAnswered.count, before + 1, "the gzip-labelled request was left to connect-es");
      assert.equal(Number(fast.trailers["grpc-status"]), c.grpcStatus, JSON.stringify(fast.trailers));
      assert.deepEqual(comparable(fast), comparable(viaConnect));
    });
  }

  it("a request over the size limit is left to connect-es: RESOURCE_EXHAUSTED", async () => {
    const before = grpcUnaryAnswered.count;
    const big = grpcFrame(Buffer.alloc(server.config.bodyLimitBytes + 10));
    const a = await h2request(session, { ":method": "POST", ":path": paths.version, "content-type": "application/grpc", te: "trailers" }, big);
    assert.equal(grpcUnaryAnswered.count, before);
    assert.equal(Number(a.trailers["grpc-status"] ?? a.headers["grpc-status"]), Code.ResourceExhausted);
  });
});
