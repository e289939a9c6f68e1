// TESSERA_MAX_OPEN_STREAMS: the streams served without a credential (grpc.health.v1.Health/Watch,
// server reflection v1 and v1alpha) a worker holds open at once. Past it a stream is refused at
// once with RESOURCE_EXHAUSTED TOO_MANY_STREAMS; a stream's place is given back however it ends
// (its client cancels it, its deadline, its connection closes, it completes), so the bound is
// filled, emptied each way and filled again. Asked with @grpc/grpc-js over h2c, and with a bare
// node:http2 session for a connection that is torn down.
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Code } from "@connectrpc/connect";
import { connectClient, connectError, GrpcJsClient, grpcMethodDefinition } from "../support/clients.js";
import { connectDetails, grpcStatusDetails } from "../support/error-details.js";
import { scrape, value } from "../support/metrics.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";

const bound = 4;
const refusal = `this server already has ${bound} streams open (TESSERA_MAX_OPEN_STREAMS): close one, or retry later`;

/** A grpc-js client for Health/Watch and both reflection streams. */
function streamsClient(url: string): grpc.Client {
  const Ctor = grpc.makeGenericClientConstructor(
    {
      Watch: grpcMethodDefinition(Health.method.watch),
      ReflectV1: grpcMethodDefinition(v1.ServerReflection.method.serverReflectionInfo),
      ReflectV1alpha: grpcMethodDefinition(v1alpha.ServerReflection.method.serverReflectionInfo),
    },
    "Streams",
  );
  return new Ctor(url.replace(/^http:\/\//, ""), grpc.credentials.createInsecure());
}

type Kind = "Watch" | "ReflectV1" | "ReflectV1alpha";

interface OpenStream {
  call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>;
  /** The call's status, once it ends. */
  ended: Promise<grpc.StatusObject>;
}

/**
 * Opens a stream of `kind` and resolves once its first answer arrived (a reflection stream asks
 * listServices first), or rejects with the status the call ended with instead.
 */
function open(client: grpc.Client, kind: Kind, options: grpc.CallOptions = {}): Promise<OpenStream> {
  const methods = client as unknown as Record<Kind, Function>;
  const call =
    kind === "Watch"
      ? (methods.Watch.call(client, create(HealthCheckRequestSchema, { service: "" }), options) as grpc.ClientReadableStream<unknown>)
      : (methods[kind].call(client, options) as grpc.ClientDuplexStream<unknown, unknown>);
  call.on("error", () => {});
  const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
  if (kind !== "Watch") {
    const schema = kind === "ReflectV1" ? v1.ServerReflectionRequestSchema : v1alpha.ServerReflectionRequestSchema;
    (call as grpc.ClientDuplexStream<unknown, unknown>).write(create(schema, { messageRequest: { case: "listServices", value: "" } }));
  }
  return new Promise((resolve, reject) => {
    call.once("data", () => resolve({ call, ended }));
    ended.then((s) => reject(Object.assign(new Error(`${kind} ended before its first answer: ${grpc.status[s.code]} ${s.details}`), { status: s })));
  });
}

/** The status of a stream past the bound: refused before any answer. */
async function refused(client: grpc.Client, kind: Kind): Promise<grpc.StatusObject> {
  try {
    const s = await open(client, kind);
    s.call.cancel();
    throw new Error(`${kind} was served past TESSERA_MAX_OPEN_STREAMS=${bound}`);
  } catch (e) {
    const status = (e as { status?: grpc.StatusObject }).status;
    if (status === undefined) throw e;
    return status;
  }
}

function assertRefused(status: grpc.StatusObject): void {
  assert.equal(grpc.status[status.code], "RESOURCE_EXHAUSTED", status.details);
  assert.equal(status.details, refusal);
  const [bin] = status.metadata.get("grpc-status-details-bin");
  assert.ok(bin !== undefined, "grpc-status-details-bin is sent");
  assert.deepEqual(
    { reason: grpcStatusDetails(bin as Buffer).reason, domain: grpcStatusDetails(bin as Buffer).domain },
    { reason: "TOO_MANY_STREAMS", domain: "tessera" },
  );
}

/** Fills the bound (Watch and reflection streams, in turn), and checks one more of each kind is refused. */
async function fill(client: grpc.Client, options: grpc.CallOptions = {}): Promise<OpenStream[]> {
  const kinds: Kind[] = ["Watch", "ReflectV1", "Watch", "ReflectV1alpha"];
  const streams: OpenStream[] = [];
  for (let i = 0; i < bound; i++) streams.push(await open(client, kinds[i % kinds.length]!, options));
  for (const kind of ["Watch", "ReflectV1", "ReflectV1alpha"] as const) assertRefused(await refused(client, kind));
  return streams;
}

/**
 * Waits until the server holds no stream open (tessera_streams_open: it hears of an end, a reset
 * or a closed connection, a moment after the client), then fills the bound again: a place never
 * given back fails here.
 */
async function refill(server: TestServer, client: grpc.Client): Promise<void> {
  await emptied(server);
  const streams = await fill(client);
  for (const s of streams) s.call.cancel();
  await Promise.all(streams.map((s) => s.ended));
  await emptied(server);
}

async function emptied(server: TestServer): Promise<void> {
  const streamsOpen = async () => value(await scrape(`${server.url}/metrics`), "tessera_streams_open");
  const started = performance.now();
  while ((await streamsOpen()) !== 0) {
    if (performance.now() - started > 2000) assert.equal(await streamsOpen(), 0, "every stream's place is given back");
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const store of storesUnderTest()) {
  describe(`server: TESSERA_MAX_OPEN_STREAMS bounds the streams served without a credential, on ${store}`, function () {
    this.timeout(30000);
    let server: TestServer;
    let client: grpc.Client;
    before(async () => {
      server = await startTestServer({ store, env: { TESSERA_MAX_OPEN_STREAMS: String(bound) } });
      client = streamsClient(server.url);
    });
    after(async () => {
      client?.close();
      await server?.close();
    });

    it("past the bound a stream is refused at once, RESOURCE_EXHAUSTED naming the setting, and counted; unary calls are still served", async () => {
      const refusedBefore = value(await scrape(`${server.url}/metrics`), "tessera_rpc_requests_total", { service: Health.typeName, method: "Watch", protocol: "grpc", code: "resource_exhausted" });
      const streams = await fill(client);
      const health = new GrpcJsClient(Health, server.url);
      const check = await health.call("Check", { service: "" });
      health.close();
      assert.equal(check.message?.status, Status.SERVING, `Check is served with the streams full: ${check.error?.details}`);
      const refusedAfter = value(await scrape(`${server.url}/metrics`), "tessera_rpc_requests_total", { service: Health.typeName, method: "Watch", protocol: "grpc", code: "resource_exhausted" });
      assert.equal(refusedAfter - refusedBefore, 1);
      assert.equal(value(await scrape(`${server.url}/metrics`), "tessera_streams_open"), bound);
      // The bound is the process's, whatever the protocol: a Connect Watch over HTTP/1.1 too.
      const e = await connectError((async () => {
        for await (const m of connectClient(Health, server.url).watch({ service: "" })) throw new Error(`served past the bound: ${m.status}`);
      })());
      assert.deepEqual({ code: Code[e.code], message: e.rawMessage, reason: connectDetails(e).reason }, { code: "ResourceExhausted", message: refusal, reason: "TOO_MANY_STREAMS" });
      for (const s of streams) s.call.cancel();
      await Promise.all(streams.map((s) => s.ended));
      await emptied(server);
    });

    it("a place is given back when the client cancels its stream (RST_STREAM)", async () => {
      const streams = await fill(client);
      for (const s of streams) s.call.cancel();
      for (const s of streams) assert.equal(grpc.status[(await s.ended).code], "CANCELLED");
      await refill(server, client);
    });

    it("a place is given back at the stream's deadline", async () => {
      const streams = await fill(client, { deadline: Date.now() + 1500 });
      for (const s of streams) assert.equal(grpc.status[(await s.ended).code], "DEADLINE_EXCEEDED");
      await refill(server, client);
    });

    it("a place is given back when a reflection stream completes (its client ends its requests)", async () => {
      const streams = await Promise.all(Array.from({ length: bound }, (_, i) => open(client, i % 2 === 0 ? "ReflectV1" : "ReflectV1alpha")));
      assertRefused(await refused(client, "Watch"));
      for (const s of streams) (s.call as grpc.ClientDuplexStream<unknown, unknown>).end();
      for (const s of streams) assert.equal(grpc.status[(await s.ended).code], "OK");
      await refill(server, client);
    });

    it("a place is given back when the stream's connection closes (the TCP connection torn down, no reset sent)", async () => {
      const socket = net.connect(server.port, "127.0.0.1");
      const session = http2.connect(server.url, { createConnection: () => socket });
      session.on("error", () => {});
      const watches = await Promise.all(
        Array.from({ length: bound }, () => {
          const req = session.request({ ":method": "POST", ":path": `/${Health.typeName}/Watch`, "content-type": "application/grpc", te: "trailers" });
          req.on("error", () => {});
          req.end(Buffer.from([0, 0, 0, 0, 0])); // one empty HealthCheckRequest: service ""
          return new Promise<void>((resolve, reject) => {
            req.once("data", () => resolve());
            req.once("close", () => reject(new Error("a Watch on the bare session ended before its first answer")));
          });
        }),
      );
      assert.equal(watches.length, bound);
      assertRefused(await refused(client, "Watch"));
      socket.destroy();
      await refill(server, client);
    });
  });
}

describe("server: TESSERA_MAX_OPEN_STREAMS and the graceful stop", function () {
  this.timeout(30000);

  it("the Watch streams the stop ends (OK) give their places back", async () => {
    const server = await startTestServer({ env: { TESSERA_MAX_OPEN_STREAMS: String(bound) } });
    const client = streamsClient(server.url);
    const streamsOpen = async () => (await server.tessera.metrics!.registry.getSingleMetric("tessera_streams_open")!.get()).values[0]?.value;
    try {
      const streams = await Promise.all(Array.from({ length: bound }, () => open(client, "Watch")));
      assertRefused(await refused(client, "Watch"));
      assert.equal(await streamsOpen(), bound);
      const closed = server.close();
      for (const s of streams) assert.equal(grpc.status[(await s.ended).code], "OK");
      await closed;
      assert.equal(await streamsOpen(), 0, "every stream's place is given back");
    } finally {
      client.close();
    }
  });
});
