// The server's durations against a wall clock that steps (an NTP step, an operator setting the
// time): a call's deadline is a duration from its arrival, whatever the calendar says meanwhile.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { callEnded, runInCall, timeLeftMs, type CallScope } from "../../src/call-scope.js";
import { createDeadlineInterceptor } from "../../src/server/deadline-interceptor.js";
import { callInFlight } from "../support/net.js";
import { killService, startService } from "../support/process.js";

/** Runs `fn` with Date.now reading `ms` later (or earlier) than it does. */
function withClockStepped<T>(ms: number, fn: () => T): T {
  const real = Date.now;
  Date.now = () => real() + ms;
  try {
    return fn();
  } finally {
    Date.now = real;
  }
}

const hour = 60 * 60_000;

describe("clock steps: a call's deadline", () => {
  /** What the store and the hash pool see inside a call with a 5 s deadline, the clock stepped by `step` after it arrived. */
  async function seenAfterStep(step: number): Promise<{ ended: boolean; left: number | undefined }> {
    const scope: CallScope = { requestId: "r" };
    const interceptor = createDeadlineInterceptor();
    let seen: { ended: boolean; left: number | undefined } | undefined;
    const next = (async () => {
      seen = withClockStepped(step, () => ({ ended: callEnded(), left: timeLeftMs() }));
      return { stream: false, message: {} };
    }) as never;
    const req = { header: new Headers({ "content-type": "application/json", "connect-timeout-ms": "5000", "grpc-timeout": "5S" }), signal: new AbortController().signal, stream: false };
    await runInCall(scope, () => interceptor(next)(req as never));
    return seen!;
  }

  it("a clock stepped forward an hour mid-call does not end the call: its store calls still get what is left of the 5 s", async () => {
    const { ended, left } = await seenAfterStep(hour);
    assert.equal(ended, false);
    assert.ok(left !== undefined && left > 0 && left <= 5000, `time left ${left} ms`);
  });

  it("a clock stepped back an hour mid-call does not give its store calls an hour more", async () => {
    const { ended, left } = await seenAfterStep(-hour);
    assert.equal(ended, false);
    assert.ok(left !== undefined && left > 0 && left <= 5000, `time left ${left} ms`);
  });
});

describe("clock steps: TESSERA_WORKERS, a worker lost after the clock stepped back", function () {
  this.timeout(60_000);
  it("is replaced after at most a second (the respawn spacing), not the hour the clock went back", async () => {
    const preloadDir = mkdtempSync(join(tmpdir(), "tessera-clock-preload-"));
    // The leader's Date.now steps back an hour on SIGUSR2 (the followers' stays as it is).
    const preload = join(preloadDir, "step-back.cjs");
    writeFileSync(
      preload,
      `if (!process.env.TESSERA_WORKER_ID) {
  const real = Date.now;
  let offset = 0;
  Date.now = () => real() + offset;
  process.on("SIGUSR2", () => { offset -= ${hour}; process.stdout.write(JSON.stringify({ msg: "stepped back" }) + "\\n"); });
}
`,
    );
    const cluster = await startService("compiled", { TESSERA_WORKERS: "2" }, { listeners: 2, nodeArgs: ["--require", preload] });
    try {
      const worker2 = () => cluster.lines().filter((l) => l.msg === "listening" && l.worker === 2);
      const exits = () => cluster.lines().filter((l) => l.msg === "worker exited");
      // A first loss sets the respawn spacing's mark; its replacement is lost after the step.
      process.kill(worker2()[0]!.pid as number, "SIGKILL");
      await until(() => worker2().length === 2, "worker 2 replaced");
      cluster.child.kill("SIGUSR2");
      await until(() => cluster.lines().some((l) => l.msg === "stepped back"), "the leader's clock stepped back");
      process.kill(worker2()[1]!.pid as number, "SIGKILL");
      await until(() => exits().length === 2, "worker 2 lost again");
      const wait = exits()[1]!.restartInMs as number;
      assert.ok(wait >= 0 && wait <= 1000, `restartInMs ${wait}`);
      await until(() => worker2().length === 3, "worker 2 replaced again");
    } finally {
      await killService(cluster);
      rmSync(preloadDir, { recursive: true, force: true });
    }
  });
});

/** A preload whose Date.now steps by `stepMs` 300 ms after the process is sent SIGTERM. */
function steppedOnStop(dir: string, stepMs: number): string {
  const preload = join(dir, "step-on-stop.cjs");
  writeFileSync(
    preload,
    `const real = Date.now;
let offset = 0;
Date.now = () => real() + offset;
process.on("SIGTERM", () => setTimeout(() => { offset += ${stepMs}; }, 300).unref());
`,
  );
  return preload;
}

describe("clock steps: the stop's grace period", function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "tessera-clock-stop-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("a clock stepped forward an hour while the stop waits does not cut a call in flight short of TESSERA_SHUTDOWN_GRACE_SECONDS", async () => {
    const service = await startService("compiled", { TESSERA_DATA_DIR: dir, TESSERA_WORKERS: "1", TESSERA_SHUTDOWN_GRACE_SECONDS: "10" }, { nodeArgs: ["--require", steppedOnStop(dir, hour)] });
    try {
      const call = callInFlight(service.port, "/grpc.health.v1.Health/Check", JSON.stringify({ service: "" }));
      await new Promise((r) => setTimeout(r, 200));
      service.child.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 1000)); // the step has come meanwhile
      call.finish();
      const res = await call.answer;
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.text), { status: "SERVING" });
      assert.equal(await service.exited, 0);
    } finally {
      await killService(service);
    }
  });

  it("a clock stepped back an hour while the stop waits: a call that never ends is still cut at the grace period's end, and the process exits 0", async () => {
    const service = await startService("compiled", { TESSERA_DATA_DIR: dir, TESSERA_WORKERS: "1", TESSERA_SHUTDOWN_GRACE_SECONDS: "1" }, { nodeArgs: ["--require", steppedOnStop(dir, -hour)] });
    try {
      const call = callInFlight(service.port, "/grpc.health.v1.Health/Check", JSON.stringify({ service: "" }));
      call.answer.catch(() => {}); // cut by the stop
      await new Promise((r) => setTimeout(r, 200));
      service.child.kill("SIGTERM");
      // The suite's timeout (30 s) is the bound: before, the stop waited for the clock to catch up.
      assert.equal(await service.exited, 0);
    } finally {
      await killService(service);
    }
  });
});

async function until(done: () => boolean, what: string, ms = 20_000): Promise<void> {
  for (const end = performance.now() + ms; !done(); await new Promise((r) => setTimeout(r, 50))) {
    if (performance.now() > end) assert.fail(`timed out waiting for: ${what}`);
  }
}
