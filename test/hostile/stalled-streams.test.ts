/**
 * A stream whose answer waits for flow control (its client reads nothing: INITIAL_WINDOW_SIZE 0)
 * and is then reset, by its client or by the server once it has not moved for the idle timeout,
 * ends on the server: the handler's iterator is closed and the call is logged (and counted in
 * the RPC metrics, fed at the same moment) as canceled, on h2c and on h2 over TLS. The answer
 * here is reflection's (grpc.reflection.v1, a bidirectional stream): a file's descriptor and its
 * dependencies, larger than the 16 KiB a stream buffers before its writer waits for room.
 * connect-node's writer waited for "drain" or "error" only, and a reset stream emits neither:
 * the call never ended, nothing was logged, and the handler's generator was left suspended.
 */
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { ServerReflection, ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { makeTestCertificate, type TestCertificate } from "../support/net.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { eventually, grpcFrame } from "./support.js";

const reflectionPath = `/${ServerReflection.typeName}/${ServerReflection.method.serverReflectionInfo.name}`;
const procedure = reflectionPath.slice(1);
const request = grpcFrame(
  toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, { messageRequest: { case: "fileContainingSymbol", value: "tessera.jwt.v1.JwtService" } })),
);

describe("hostile: a stream stalled by flow control, then reset", function () {
  this.timeout(30_000);

  for (const transport of ["h2c", "h2 over TLS"] as const) {
    describe(transport, () => {
      let server: TestServer;
      let cert: TestCertificate | undefined;

      before(async () => {
        cert = transport === "h2c" ? undefined : makeTestCertificate();
        server = await startTestServer({ env: { TESSERA_IDLE_TIMEOUT_MS: "1000", TESSERA_HEADERS_TIMEOUT_MS: "1000", TESSERA_REQUEST_TIMEOUT_MS: "1500", ...cert?.env } });
      });
      after(async () => {
        await server?.close();
        cert?.remove();
      });

      /** The codes of the reflection calls logged from `from` on. */
      const loggedCodes = (from: number) =>
        server.logs
          .slice(from)
          .map((l) => JSON.parse(l) as { msg: string; procedure?: string; code?: string })
          .filter((l) => l.msg === "rpc" && l.procedure === procedure)
          .map((l) => l.code);

      /** A reflection call on a connection whose client reads nothing; resolves once answered in part. */
      async function stalledCall(): Promise<{ session: http2.ClientHttp2Session; stream: http2.ClientHttp2Stream }> {
        const session = http2.connect(server.url, { settings: { initialWindowSize: 0 }, ...(cert && { ca: cert.ca }) });
        session.on("error", () => {});
        const stream = session.request({ ":method": "POST", ":path": reflectionPath, "content-type": "application/grpc", te: "trailers" });
        stream.on("error", () => {});
        stream.write(request);
        await new Promise((r) => stream.once("response", r));
        // The handler has answered by now: its answer waits for a window the client never opens.
        await new Promise((r) => setTimeout(r, 200));
        return { session, stream };
      }

      it("the client resets it: the call ends, logged as canceled", async () => {
        const from = server.logs.length;
        const { session, stream } = await stalledCall();
        try {
          assert.deepEqual(loggedCodes(from), [], "the call ended before the client reset it");
          stream.close(http2.constants.NGHTTP2_CANCEL);
          assert.ok(await eventually(() => loggedCodes(from).length > 0, 3000), "the call never ended: nothing was logged");
          assert.deepEqual(loggedCodes(from), ["canceled"]);
        } finally {
          session.destroy();
        }
      });

      it("the server resets it after the idle timeout (1 s) without progress: the call ends, logged as canceled", async () => {
        const from = server.logs.length;
        const { session, stream } = await stalledCall();
        try {
          const reset = new Promise<number>((r) => stream.once("close", () => r(stream.rstCode ?? -1)));
          assert.equal(await reset, http2.constants.NGHTTP2_CANCEL, "the server reset the stalled stream");
          assert.ok(await eventually(() => loggedCodes(from).length > 0, 3000), "the call never ended: nothing was logged");
          assert.deepEqual(loggedCodes(from), ["canceled"]);
        } finally {
          session.destroy();
        }
      });
    });
  }
});
