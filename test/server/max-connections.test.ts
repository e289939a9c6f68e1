// TESSERA_MAX_CONNECTIONS: each worker serves at most that many connections at once; a further
// one is closed as it is accepted, before a byte of it is read, and counted
// (tessera_connections_refused_total; tessera_connections_open counts those open, summed over
// workers). Under TESSERA_WORKERS a connection counts where it is served: one handed to a worker
// that has no room is served by the first worker if it has room, else closed.
// Metrics are read on TESSERA_METRICS_PORT, whose connections the limit counts apart.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { scrape, value } from "../support/metrics.js";
import { slowClient } from "../support/net.js";
import { killService, startService } from "../support/process.js";
import { startTestServer } from "../support/server.js";

/** A connection answered once (GET `path`, /jwt/version by default, `requestId`), left open. */
async function held(port: number, requestId: string, path = "/jwt/version"): Promise<net.Socket> {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  await new Promise<void>((resolve) => s.once("connect", () => resolve()));
  s.write(`GET ${path} HTTP/1.1\r\nhost: x\r\nx-request-id: ${requestId}\r\n\r\n`);
  const head = await new Promise<string>((resolve) => s.once("data", (d: Buffer) => resolve(d.toString("latin1"))));
  assert.match(head, /^HTTP\/1\.1 200 /);
  return s;
}

/** What a connection with one request gets back before the server closes it ("... still open" if it has not in 10 s). */
async function refused(port: number): Promise<string> {
  let socket: net.Socket | undefined;
  const limit = setTimeout(() => socket?.destroy(), 10_000);
  const r = await slowClient(port, (s) => {
    socket = s;
    s.write("GET /jwt/version HTTP/1.1\r\nhost: x\r\n\r\n");
  });
  clearTimeout(limit);
  return r.closedAfterMs >= 10_000 ? `${r.received} ... still open` : r.received;
}

describe("server: TESSERA_MAX_CONNECTIONS", function () {
  this.timeout(60_000);

  // Unset, it was no limit: idle connections from one client took every file descriptor, and
  // the connections after them were reset unanswered (libuv's EMFILE fallback), uncounted and
  // unlogged, while the store could open none.
  it("unset: a quarter of the open-file limit (ulimit -n 256: 64); beyond, closed, counted and logged once; the clients served keep being served", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-max-connections-"));
    const service = await startService("compiled", { TESSERA_WORKERS: "1", TESSERA_DATA_DIR: dataDir, TESSERA_METRICS_PORT: "0" }, { openFiles: 256 });
    const metricsPort = service.lines().find((l) => l.msg === "listening")!.metricsPort as number;
    const sockets: net.Socket[] = [];
    try {
      for (let i = 0; i < 64; i++) sockets.push(await held(service.port, `held-${i}`));
      const answers = await Promise.all(Array.from({ length: 200 }, () => refused(service.port)));
      assert.deepEqual(new Set(answers), new Set([""]));
      const m = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(value(m, "tessera_connections_refused_total"), 200);
      assert.equal(value(m, "tessera_connections_open"), 64);
      const logged = service.lines().filter((l) => l.msg === "connections refused: TESSERA_MAX_CONNECTIONS reached");
      assert.deepEqual(
        logged.map(({ level, port, refused, maxConnections }) => ({ level, port, refused, maxConnections })),
        [{ level: "warn", port: "main", refused: 1, maxConnections: 64 }],
      );
      // A client already served is served on.
      const last = sockets.at(-1)!;
      last.write("GET /jwt/version HTTP/1.1\r\nhost: x\r\n\r\n");
      assert.match(await new Promise<string>((resolve) => last.once("data", (d: Buffer) => resolve(d.toString("latin1")))), /^HTTP\/1\.1 200 /);
    } finally {
      for (const s of sockets) s.destroy();
      await killService(service);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  // Set past what the open-file limit holds (or 0, no limit), nothing said so: the connections
  // past the limit were reset unanswered, uncounted and unlogged, as with no limit at all.
  it("set past the open-file limit (ulimit -n 256), or 0: one warning at start naming the variable, its value and the limit; the start goes on", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-max-connections-"));
    const warning = "TESSERA_MAX_CONNECTIONS beyond the open-file limit";
    try {
      for (const [env, expected] of [
        [{ TESSERA_MAX_CONNECTIONS: "300" }, [{ level: "warn", variable: "TESSERA_MAX_CONNECTIONS", value: 300, openFileLimit: 256 }]],
        [{ TESSERA_MAX_CONNECTIONS: "0" }, [{ level: "warn", variable: "TESSERA_MAX_CONNECTIONS", value: 0, openFileLimit: 256 }]],
        // Twice 200 with TESSERA_METRICS_PORT, whose connections are counted apart.
        [{ TESSERA_MAX_CONNECTIONS: "200", TESSERA_METRICS_PORT: "0" }, [{ level: "warn", variable: "TESSERA_MAX_CONNECTIONS", value: 200, openFileLimit: 256 }]],
        [{ TESSERA_MAX_CONNECTIONS: "200" }, []],
        [{}, []],
      ] as const) {
        const service = await startService("compiled", { TESSERA_WORKERS: "1", TESSERA_DATA_DIR: dataDir, ...env }, { openFiles: 256 });
        try {
          const logged = service.lines().filter((l) => l.msg === warning);
          assert.deepEqual(
            logged.map(({ level, variable, value, openFileLimit }) => ({ level, variable, value, openFileLimit })),
            expected,
            JSON.stringify(env),
          );
          const s = await held(service.port, "after-start");
          s.destroy();
        } finally {
          await killService(service);
        }
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("one process, at most 2: a third connection is closed unanswered and counted; once one closes, a new one is served", async () => {
    const server = await startTestServer({ env: { TESSERA_MAX_CONNECTIONS: "2", TESSERA_METRICS_PORT: "0" } });
    const metricsUrl = `http://127.0.0.1:${server.tessera.server.metricsPort}/metrics`;
    const sockets: net.Socket[] = [];
    try {
      sockets.push(await held(server.port, "a"), await held(server.port, "b"));
      assert.equal(await refused(server.port), "");
      let m = await scrape(metricsUrl);
      assert.equal(value(m, "tessera_connections_refused_total"), 1);
      assert.equal(value(m, "tessera_connections_open"), 2);
      sockets.shift()!.destroy();
      for (let i = 0; i < 100 && server.tessera.server.listener.connections() > 1; i++) await new Promise((r) => setTimeout(r, 20));
      sockets.push(await held(server.port, "c"));
      m = await scrape(metricsUrl);
      assert.equal(value(m, "tessera_connections_refused_total"), 1);
      assert.equal(value(m, "tessera_connections_open"), 2);
    } finally {
      for (const s of sockets) s.destroy();
      await server.close();
    }
  });

  // A flood of refusals is a line an interval (a minute; shortened here), not one a connection:
  // the first at once, then how many the interval saw; an interval that saw none ends that, and
  // the next refusal is logged at once again.
  it("200 refused: one warn line at once (refused 1), one after the interval (refused 199), none in the next, quiet interval; a refusal after it is logged at once", async () => {
    const intervalMs = 3000;
    const server = await startTestServer({ env: { TESSERA_MAX_CONNECTIONS: "2" }, refusalLogIntervalMs: intervalMs });
    const msg = "connections refused: TESSERA_MAX_CONNECTIONS reached";
    const lines = () => server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);
    const logged = () => lines().map(({ level, msg, port, refused, maxConnections }) => ({ level, msg, port, refused, maxConnections }));
    const line = (refused: number) => ({ level: "warn", msg, port: "main", refused, maxConnections: 2 });
    const sockets: net.Socket[] = [];
    try {
      sockets.push(await held(server.port, "a"), await held(server.port, "b"));
      const started = performance.now();
      assert.equal(await refused(server.port), "");
      assert.deepEqual(logged(), [line(1)]);
      const answers = await Promise.all(Array.from({ length: 199 }, () => refused(server.port)));
      assert.deepEqual(new Set(answers), new Set([""]));
      const flood = performance.now() - started;
      assert.ok(flood < intervalMs, `the 200 refusals took ${flood} ms, more than the ${intervalMs} ms interval`);
      assert.deepEqual(logged(), [line(1)]);
      for (let i = 0; i < 200 && lines().length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(logged(), [line(1), line(199)]);
      const [first, summary] = lines().map((l) => Date.parse(l.time as string));
      // The timer's clock and the log's may round a millisecond apart.
      assert.ok(summary! - first! >= intervalMs - 1 && summary! - first! < 2 * intervalMs, `the summary came ${summary! - first!} ms after the first line`);
      // The next interval, nothing refused in it; waited out with 2 s to spare, as a loaded
      // machine runs the timer that ends it late (a refusal before it ran would be counted for
      // its line, not logged at once).
      await new Promise((r) => setTimeout(r, intervalMs + 2000));
      assert.deepEqual(logged(), [line(1), line(199)]);
      assert.equal(await refused(server.port), "");
      assert.deepEqual(logged(), [line(1), line(199), line(1)]);
    } finally {
      for (const s of sockets) s.destroy();
      await server.close();
    }
  });

  // The refusals after the first line of an interval were logged only when the interval ended:
  // a stop within it (a minute) lost them from the log, and those of TESSERA_METRICS_PORT,
  // which no metric counts, from everywhere.
  it("a stop logs, for each port, how many it refused since its last line, as the interval's end would", async () => {
    const server = await startTestServer({ env: { TESSERA_MAX_CONNECTIONS: "2", TESSERA_METRICS_PORT: "0" } });
    const metricsPort = server.tessera.server.metricsPort!;
    const msg = "connections refused: TESSERA_MAX_CONNECTIONS reached";
    const logged = () =>
      server.logs
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.msg === msg)
        .map(({ level, port, refused, maxConnections }) => ({ level, port, refused, maxConnections }));
    const line = (port: string, refused: number) => ({ level: "warn", port, refused, maxConnections: 2 });
    const sockets: net.Socket[] = [];
    let closed = false;
    try {
      sockets.push(await held(server.port, "a"), await held(server.port, "b"));
      sockets.push(await held(metricsPort, "c", "/metrics"), await held(metricsPort, "d", "/metrics"));
      for (let i = 0; i < 3; i++) assert.equal(await refused(server.port), "");
      for (let i = 0; i < 4; i++) assert.equal(await refused(metricsPort), "");
      assert.deepEqual(logged(), [line("main", 1), line("metrics", 1)]);
      await server.close();
      closed = true;
      assert.deepEqual(logged(), [line("main", 1), line("metrics", 1), line("main", 2), line("metrics", 3)]);
    } finally {
      for (const s of sockets) s.destroy();
      if (!closed) await server.close();
    }
  });

  it("TESSERA_WORKERS=2, at most 1 each: a connection handed to the full worker is served by the first when it has room, closed when it has none; counted where served", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-max-connections-"));
    const cluster = await startService("compiled", { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir, TESSERA_MAX_CONNECTIONS: "1", TESSERA_METRICS_PORT: "0" }, { listeners: 2 });
    const metricsPort = cluster.lines().find((l) => l.msg === "listening" && l.worker === 1)!.metricsPort as number;
    const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    const workerOf = async (requestId: string) => {
      for (let i = 0; i < 100; i++) {
        const line = cluster.lines().find((l) => l.msg === "rpc" && l.requestId === requestId);
        if (line) return line.worker;
        await new Promise((r) => setTimeout(r, 20));
      }
      return undefined;
    };
    const open = async () => value(await scrape(metricsUrl), "tessera_connections_open");
    const sockets = new Map<number, net.Socket>();
    try {
      const a = await held(cluster.port, "a");
      const b = await held(cluster.port, "b");
      const workers = [await workerOf("a"), await workerOf("b")];
      assert.deepEqual([...workers].sort(), [1, 2]);
      sockets.set(workers[0] as number, a);
      sockets.set(workers[1] as number, b);
      // Both full: the next connection, whichever worker it is handed to, is closed.
      assert.equal(await refused(cluster.port), "");
      // The first worker has room again, twice in a row: one of the two connections is handed
      // to worker 2 (round-robin), which has none; both are served by the first.
      for (const id of ["c", "d"]) {
        sockets.get(1)!.destroy();
        for (let i = 0; i < 100 && (await open()) !== 1; i++) await new Promise((r) => setTimeout(r, 20));
        sockets.set(1, await held(cluster.port, id));
        assert.equal(await workerOf(id), 1);
      }
      // Full again: two more connections, one handed to each worker, are both closed.
      assert.equal(await refused(cluster.port), "");
      assert.equal(await refused(cluster.port), "");
      const m = await scrape(metricsUrl);
      assert.equal(value(m, "tessera_connections_refused_total"), 3);
      assert.equal(value(m, "tessera_connections_open"), 2);
    } finally {
      for (const s of sockets.values()) s.destroy();
      await killService(cluster);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
