// SIGTERM: stop accepting, let in-flight calls finish, close the store, exit 0.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { entryArgv } from "../support/process.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Health, HealthCheckRequestSchema, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus as Status, type HealthCheckResponse } from "../../gen/health/v1/health_pb.js";
import { connectClient } from "../support/clients.js";
import { callInFlight, connectionRefused } from "../support/net.js";
import { pollLast } from "../support/poll.js";
import { startTestServer } from "../support/server.js";

async function startProcess(env: Record<string, string>): Promise<{ child: ChildProcess; port: number; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, await entryArgv("compiled"), {
    env: { ...process.env, MONGODB_URI: "", PORT: "0", TESSERA_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /"msg":"listening",(?:"worker":\d+,)?"url":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(out);
      if (m) resolve({ child, port: Number(m[1]), exited });
    });
    child.once("exit", (code) => reject(new Error(`exited early with ${code}: ${out}`)));
  });
}

describe("server: graceful shutdown", function () {
  this.timeout(30000);
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), "tessera-shutdown-"));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it("finishes an in-flight call, refuses new connections, and exits 0", async () => {
    const { child, port, exited } = await startProcess({ TESSERA_DATA_DIR: dataDir, TESSERA_SHUTDOWN_GRACE_SECONDS: "10" });
    // A call whose body is still arriving when the signal comes.
    const call = callInFlight(port, "/grpc.health.v1.Health/Check", JSON.stringify({ service: "" }));
    await new Promise((r) => setTimeout(r, 200));
    child.kill("SIGTERM");
    // The listener closes once the signal is handled (at once on an idle machine; later on a
    // loaded one): new connections are refused from then on, while the call is still held open.
    const refused = await pollLast(() => connectionRefused(port), (r) => r, { limitMs: 8000, intervalMs: 100 });
    assert.equal(refused, true, "new connections are refused while draining");
    call.finish();
    const res = await call.answer;
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { status: "SERVING" });
    assert.equal(await exited, 0);
  });

  it("exits 0 within the grace period even when a call never ends", async () => {
    const { child, port, exited } = await startProcess({ TESSERA_DATA_DIR: dataDir, TESSERA_SHUTDOWN_GRACE_SECONDS: "1" });
    // A call whose body never finishes (a Health/Watch stream ends as the stop begins).
    const call = callInFlight(port, "/grpc.health.v1.Health/Check", JSON.stringify({ service: "" }));
    call.answer.catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.ok(Date.now() - t0 < 5000, "exited within the grace period (+ margin)");
  });
});

describe("server: graceful stop with grpc.health.v1 Watch streams open", function () {
  this.timeout(60000);

  it("every Watch stream is told NOT_SERVING and ends OK as the stop begins: the stop does not wait out the grace period (20 s)", async () => {
    const server = await startTestServer({ env: { TESSERA_SHUTDOWN_GRACE_SECONDS: "20" } });
    const Ctor = grpc.makeGenericClientConstructor(
      {
        Watch: {
          path: `/${Health.typeName}/Watch`,
          requestStream: false,
          responseStream: true,
          requestSerialize: (m: Parameters<typeof toBinary<typeof HealthCheckRequestSchema>>[1]) => Buffer.from(toBinary(HealthCheckRequestSchema, m)),
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => fromBinary(HealthCheckResponseSchema, b),
        },
      },
      "Health",
    );
    const client = new Ctor(server.url.replace("http://", ""), grpc.credentials.createInsecure());
    const abandon = new AbortController();
    try {
      // @grpc/grpc-js over h2c, and connect-node's Connect protocol over HTTP/1.1.
      const grpcSeen: Status[] = [];
      let grpcFirst!: () => void;
      const grpcOpen = new Promise<void>((resolve) => (grpcFirst = resolve));
      const grpcEnd = new Promise<grpc.StatusObject>((resolve) => {
        const call = (client as unknown as { Watch: Function }).Watch(create(HealthCheckRequestSchema, { service: "" })) as grpc.ClientReadableStream<HealthCheckResponse>;
        call.on("data", (m: HealthCheckResponse) => {
          grpcSeen.push(m.status);
          grpcFirst();
        });
        call.on("error", () => {});
        call.on("status", resolve);
      });
      const connectWatch = connectClient(Health, server.url).watch({ service: "" }, { signal: abandon.signal })[Symbol.asyncIterator]();
      assert.equal((await connectWatch.next()).value?.status, Status.SERVING);
      await grpcOpen;

      const t0 = performance.now();
      const closed = server.close();
      assert.equal((await connectWatch.next()).value?.status, Status.NOT_SERVING);
      assert.equal((await connectWatch.next()).done, true, "the Connect stream ends, without an error");
      const end = await grpcEnd;
      assert.equal(end.code, grpc.status.OK, end.details);
      assert.deepEqual(grpcSeen, [Status.SERVING, Status.NOT_SERVING]);
      await closed;
      const ms = performance.now() - t0;
      assert.ok(ms < 5000, `the stop took ${Math.round(ms)} ms`);
      const lines = server.logs.map((l) => JSON.parse(l) as { msg: string; procedure?: string; code?: string }).filter((l) => l.msg === "rpc" && l.procedure === "grpc.health.v1.Health/Watch");
      assert.deepEqual(lines.map((l) => l.code), ["ok", "ok"]);
    } finally {
      abandon.abort();
      client.close();
    }
  });
});
