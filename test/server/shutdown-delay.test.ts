// TESSERA_SHUTDOWN_DELAY_SECONDS: a lame-duck period before the graceful stop. On SIGTERM/SIGINT
// readiness fails at once (GET /readyz, grpc.health.v1.Health) while the listener stays open and
// every other call is served as before, so that a load balancer takes the instance out before
// its listener closes; then the graceful stop runs as without it. A second signal cuts the delay
// short. Under TESSERA_WORKERS every worker fails readiness at once and none stops before the
// delay ends. Real processes, real clients (HTTP/1.1, @grpc/grpc-js, connect-node over h2c).
import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { packageVersion } from "../../src/project-files.js";
import { connectGrpcClient, GrpcJsClient } from "../support/clients.js";
import { connectionRefused } from "../support/net.js";
import { killService, request, startService, type ServiceProcess } from "../support/process.js";

/** Resolves once `ok()` holds (checked every 20 ms); fails after `ms`. */
async function until(ok: () => boolean, what: string, ms = 15000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const messages = (s: ServiceProcess, msg: string) => s.lines().filter((l) => l.msg === msg);

/**
 * Asks GET /readyz, each time on a new connection, until it no longer answers 200 (the signal
 * handled). A connection refused fails the test: the listener must stay open.
 */
async function readinessFailed(s: ServiceProcess): Promise<void> {
  for (const end = Date.now() + 15000; (await request(s.port, "GET", "/readyz")).status === 200; ) {
    if (Date.now() > end) throw new Error("readiness still passes");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What a worker that is draining answers on new connections: readiness fails, the rest is served. */
async function assertDraining(s: ServiceProcess): Promise<void> {
  const ready = await request(s.port, "GET", "/readyz");
  assert.deepEqual([ready.status, ready.text], [503, JSON.stringify({ status: "NOT_SERVING" })]);
  const live = await request(s.port, "GET", "/healthz");
  assert.deepEqual([live.status, live.text], [200, JSON.stringify({ status: "SERVING" })]);
  const version = await request(s.port, "GET", "/jwt/version");
  assert.deepEqual([version.status, version.json], [200, { version: packageVersion }]);
}

describe("server: TESSERA_SHUTDOWN_DELAY_SECONDS (a lame-duck period before the stop)", function () {
  this.timeout(60000);
  let service: ServiceProcess | undefined;
  afterEach(async () => {
    await killService(service);
    service = undefined;
  });

  it("SIGTERM: readiness fails at once on every protocol while new connections are still served; after the delay the graceful stop runs and the process exits 0", async () => {
    service = await startService("sources", { TESSERA_WORKERS: "1", TESSERA_SHUTDOWN_DELAY_SECONDS: "2", TESSERA_SHUTDOWN_GRACE_SECONDS: "2" });
    const s = service;
    const url = `http://127.0.0.1:${s.port}`;
    // A Watch stream opened before the signal: SERVING first, then told NOT_SERVING.
    const stream = new AbortController();
    const watch = connectGrpcClient(Health, url).watch({ service: "" }, { signal: stream.signal })[Symbol.asyncIterator]();
    assert.equal((await watch.next()).value?.status, Status.SERVING);

    s.child.kill("SIGTERM");
    await readinessFailed(s);
    // Every call below is made on a connection opened after the signal.
    await assertDraining(s);
    const health = new GrpcJsClient(Health, url);
    const jwt = new GrpcJsClient(JwtService, url);
    try {
      assert.equal((await health.call("Check", { service: "" })).message?.status, Status.NOT_SERVING);
      const listed = (await health.call("List", {})).message?.statuses as Record<string, { status: Status }>;
      assert.ok(Object.keys(listed).length > 1);
      assert.deepEqual(new Set(Object.values(listed).map((v) => v.status)), new Set([Status.NOT_SERVING]));
      assert.equal((await jwt.call("GetVersion", {})).message?.version, packageVersion);
      const connect = createClient(JwtService, (await import("@connectrpc/connect-node")).createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
      assert.equal((await connect.getVersion({})).version, packageVersion);
    } finally {
      health.close();
      jwt.close();
    }
    assert.equal((await watch.next()).value?.status, Status.NOT_SERVING);
    stream.abort();
    // Nothing of the stop has begun while the calls above were served.
    assert.deepEqual(messages(s, "stopping"), []);
    const [draining] = messages(s, "draining");
    assert.deepEqual([draining?.level, draining?.signal, draining?.delaySeconds], ["info", "SIGTERM", 2]);

    assert.equal(await s.exited, 0);
    assert.deepEqual(
      s.lines().filter((l) => ["draining", "stopping", "stopped"].includes(l.msg as string)).map((l) => l.msg),
      ["draining", "stopping", "stopped"],
    );
  });

  it("a second signal during the delay starts the graceful stop at once", async () => {
    // The longest delay there is: only the second signal can end it within the test's time.
    service = await startService("sources", { TESSERA_WORKERS: "1", TESSERA_SHUTDOWN_DELAY_SECONDS: "600", TESSERA_SHUTDOWN_GRACE_SECONDS: "2" });
    const s = service;
    s.child.kill("SIGINT");
    await readinessFailed(s);
    await assertDraining(s);
    s.child.kill("SIGTERM");
    assert.equal(await s.exited, 0);
    assert.deepEqual(messages(s, "draining").map((l) => [l.signal, l.delaySeconds]), [["SIGINT", 600]]);
    assert.equal(messages(s, "stopping").length, 1);
  });

  it("unset (0, the default): SIGTERM closes the listener at once, without a draining line", async () => {
    service = await startService("sources", { TESSERA_WORKERS: "1", TESSERA_SHUTDOWN_GRACE_SECONDS: "2" });
    const s = service;
    s.child.kill("SIGTERM");
    assert.equal(await s.exited, 0);
    assert.equal(await connectionRefused(s.port), true);
    assert.deepEqual(messages(s, "draining"), []);
    assert.equal(messages(s, "stopping").length, 1);
  });

  for (const to of ["the first worker", "the process group"] as const) {
    it(`TESSERA_WORKERS=2, SIGTERM to ${to}: every worker fails readiness at once and serves until the delay ends; the second stops after the first`, async () => {
      service = await startService(
        "sources",
        { TESSERA_WORKERS: "2", TESSERA_SHUTDOWN_DELAY_SECONDS: "2", TESSERA_SHUTDOWN_GRACE_SECONDS: "2" },
        { listeners: 2, detached: to === "the process group" },
      );
      const s = service;
      const pid = s.child.pid!;
      process.kill(to === "the process group" ? -pid : pid, "SIGTERM");
      await readinessFailed(s);
      await until(() => messages(s, "draining").length === 2, "both workers draining");
      const seen = s.lines().length;
      // Each connection goes to the next worker in turn: both are asked, twice.
      for (let i = 0; i < 4; i++) await assertDraining(s);
      // (an rpc line is written once its answer has gone)
      const served = () =>
        s
          .lines()
          .slice(seen)
          .filter((l) => l.msg === "rpc" && l.procedure === "tessera.jwt.v1.JwtService/GetVersion")
          .map((l) => l.worker);
      await until(() => served().length === 4, "four rpc lines");
      assert.deepEqual([...new Set(served())].sort(), [1, 2], "both workers served calls during the delay");
      assert.deepEqual(messages(s, "stopping"), [], "no worker stops before the delay ends");
      assert.equal(await s.exited, 0);
      // Each worker batches its lines per event-loop turn, so their order on the shared stdout
      // may differ from the order they were logged in: the times tell.
      const at = (msg: string, worker: number) => Date.parse(messages(s, msg).find((l) => l.worker === worker)!.time as string);
      assert.ok(at("stopping", 2) >= at("stopping", 1), "the second worker began to stop once the first had");
      assert.ok(at("stopped", 1) >= at("stopped", 2), "the first worker stopped last");
    });
  }
});
