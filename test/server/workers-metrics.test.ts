// TESSERA_WORKERS: a scrape sums every worker's counters and histograms. A worker that dies is
// replaced by one whose figures start at zero: the sum must not go down with it (Prometheus reads
// a counter that goes down as a reset, and its rate() counts the whole new value as an increase),
// so what the dead worker had counted, as last gathered, stays in the sum; and one draining its
// connections is gathered until it exits. A scrape waiting for a worker that dies is answered
// at its exit; one waiting for a worker that does not answer fails after its bound, naming it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { callInFlight } from "../support/net.js";
import { pollUntil } from "../support/poll.js";
import { killService, request, startService, stopProcess, type ServiceProcess } from "../support/process.js";

describe("server: TESSERA_WORKERS, the metrics of a worker that dies", function () {
  this.timeout(60000);
  const cluster = clusterOf(2, { TESSERA_SHUTDOWN_GRACE_SECONDS: "3" });

  it("its counters and histograms stay in the sum once it is replaced: no counter goes down", async () => {
    const c = cluster();
    const n = 8;
    // (one at a time, each on its own connection: round-robin, half of them worker 2's)
    for (let i = 0; i < n; i++) assert.equal((await request(c.port, "GET", "/jwt/version")).status, 200);
    await pollUntil(`${n} rpc lines`, () => c.lines().filter((l) => l.msg === "rpc").length === n, { limitMs: 20000, intervalMs: 50 });
    assert.deepEqual([...new Set(c.lines().filter((l) => l.msg === "rpc").map((l) => l.worker))].sort(), [1, 2]);
    const before = await scrape(c);
    assert.equal(served(before), String(n), before);
    assert.equal(durations(before), String(n), before);

    const second = c.lines().find((l) => l.msg === "listening" && l.worker === 2)!.pid as number;
    process.kill(second, "SIGKILL");
    await pollUntil("a second worker 2", () => c.lines().filter((l) => l.msg === "listening" && l.worker === 2).length === 2, { limitMs: 20000, intervalMs: 50 });

    const after = await scrape(c);
    assert.equal(served(after), String(n), after);
    assert.equal(durations(after), String(n), after);
  });

  it("one draining its connections (SIGTERM to it alone) is still gathered until it exits: the sum does not dip meanwhile", async () => {
    const c = cluster();
    const second = c.lines().filter((l) => l.msg === "listening" && l.worker === 2).at(-1)!.pid as number;
    // Two calls held in flight on connections one after the other: one in each worker, which
    // keeps worker 2 draining until its grace period ends.
    const body = JSON.stringify({ service: "" });
    const held = [0, 1].map(() => callInFlight(c.port, "/grpc.health.v1.Health/Check", body));
    for (const h of held) h.answer.catch(() => {}); // worker 2's is cut when its grace period ends
    await new Promise((r) => setTimeout(r, 300));
    const seen = c.lines().length;
    for (let i = 0; i < 4; i++) assert.equal((await request(c.port, "GET", "/jwt/version")).status, 200);
    await pollUntil("four rpc lines", () => c.lines().slice(seen).filter((l) => l.msg === "rpc").length === 4, { limitMs: 20000, intervalMs: 50 });
    assert.deepEqual(c.lines().slice(seen).filter((l) => l.msg === "rpc").map((l) => l.worker).sort(), [1, 1, 2, 2]);
    assert.equal(served(await scrape(c)), "12");

    process.kill(second, "SIGTERM");
    await pollUntil("worker 2 stopping", () => c.lines().some((l) => l.msg === "stopping" && l.worker === 2), { limitMs: 20000, intervalMs: 50 });
    for (let i = 0; i < 2; i++) assert.equal((await request(c.port, "GET", "/jwt/version")).status, 200);
    const draining = await scrape(c);
    assert.equal(served(draining), "14", draining);
    assert.equal(durations(draining), "14", draining);

    await pollUntil("a third worker 2", () => c.lines().filter((l) => l.msg === "listening" && l.worker === 2).length === 3, { limitMs: 30000, intervalMs: 50 });
    for (const h of held) h.finish();
    assert.equal(served(await scrape(c)), "14");
  });

  it("one that dies while a scrape waits for it: the scrape is answered at its exit, with what it had counted, not after the bound (10 s)", async () => {
    const c = cluster();
    const third = c.lines().filter((l) => l.msg === "listening" && l.worker === 2).at(-1)!.pid as number;
    assert.equal(served(await scrape(c)), "14");
    await stopProcess(third, "worker 2");
    const asked = performance.now();
    const waiting = scrape(c);
    await new Promise((r) => setTimeout(r, 500));
    process.kill(third, "SIGKILL");
    const text = await waiting;
    assert.equal(served(text), "14", text);
    // The bound began after `asked`: an answer at the bound comes 10 s or more after it.
    assert.ok(performance.now() - asked < 10_000, `answered ${Math.round(performance.now() - asked)} ms after the scrape was sent`);
  });

  it("one that does not answer (its event loop blocked): the scrape answers 503 after 10 s, naming it", async () => {
    const c = cluster();
    await pollUntil("a fourth worker 2", () => c.lines().filter((l) => l.msg === "listening" && l.worker === 2).length === 4, { limitMs: 30000, intervalMs: 50 });
    const fourth = c.lines().filter((l) => l.msg === "listening" && l.worker === 2).at(-1)!.pid as number;
    await stopProcess(fourth, "worker 2");
    try {
      const began = performance.now();
      const r = await request(metricsPortOf(c), "GET", "/metrics");
      const tookMs = performance.now() - began;
      assert.deepEqual([r.status, r.text], [503, "metrics unavailable: worker 2 did not answer\n"]);
      // Not before the bound (10 s); the upper bound only tells the bound from no answer at all.
      assert.ok(tookMs >= 9900 && tookMs < 25_000, `answered after ${Math.round(tookMs)} ms`);
    } finally {
      process.kill(fourth, "SIGCONT");
    }
  });
});

/** A cluster of `workers` (from the sources, with TESSERA_METRICS_PORT) for the suite, on a data directory of its own. */
function clusterOf(workers: number, env: Record<string, string> = {}): () => ServiceProcess {
  let dataDir: string | undefined;
  let service: ServiceProcess | undefined;
  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "tessera-workers-metrics-"));
    service = await startService("sources", { TESSERA_WORKERS: String(workers), TESSERA_DATA_DIR: dataDir, TESSERA_METRICS_PORT: "0", ...env }, { listeners: workers });
  });
  after(async () => {
    await killService(service);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  return () => service!;
}

describe("server: TESSERA_WORKERS, a worker that dies during a scrape, after it answered", function () {
  this.timeout(60000);
  const cluster = clusterOf(3);

  it("its counts are in the sum once, not once as it answered and again as kept for it", async () => {
    const c = cluster();
    for (let i = 0; i < 6; i++) assert.equal((await request(c.port, "GET", "/jwt/version")).status, 200);
    await pollUntil("six rpc lines", () => c.lines().filter((l) => l.msg === "rpc").length === 6, { limitMs: 20000, intervalMs: 50 });
    assert.deepEqual(c.lines().filter((l) => l.msg === "rpc").map((l) => l.worker).sort(), [1, 1, 2, 2, 3, 3]);
    assert.equal(served(await scrape(c)), "6");

    const pidOf = (worker: number) => c.lines().find((l) => l.msg === "listening" && l.worker === worker)!.pid as number;
    // Worker 3 stopped: the scrape waits for it, worker 2 having answered; then worker 2 dies.
    await stopProcess(pidOf(3), "worker 3");
    const waiting = scrape(c);
    await new Promise((r) => setTimeout(r, 500));
    process.kill(pidOf(2), "SIGKILL");
    await pollUntil("worker 2 exited", () => c.lines().some((l) => l.msg === "worker exited" && l.worker === 2), { limitMs: 20000, intervalMs: 50 });
    process.kill(pidOf(3), "SIGCONT");
    const text = await waiting;
    assert.equal(served(text), "6", text);
    assert.equal(served(await scrape(c)), "6");
  });
});

/** The first worker's TESSERA_METRICS_PORT (the main port's connections are left to the calls). */
function metricsPortOf(c: ServiceProcess): number {
  return c.lines().find((l) => l.msg === "listening" && l.worker === 1)!.metricsPort as number;
}

/** A scrape of it, answered 200. */
async function scrape(c: ServiceProcess): Promise<string> {
  const r = await request(metricsPortOf(c), "GET", "/metrics");
  assert.equal(r.status, 200, r.text);
  return r.text;
}

function served(text: string): string | undefined {
  return /^tessera_rpc_requests_total\{service="tessera\.jwt\.v1\.JwtService",method="GetVersion",protocol="rest",code="ok"\} (\d+)$/m.exec(text)?.[1];
}

function durations(text: string): string | undefined {
  return /^tessera_rpc_duration_seconds_count\{service="tessera\.jwt\.v1\.JwtService",method="GetVersion",protocol="rest"(?:,code="ok")?\} (\d+)$/m.exec(text)?.[1];
}
