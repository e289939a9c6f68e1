// GET /metrics under a flood: it needs no credential and a rendering costs milliseconds of CPU,
// so the scrapes that arrive together share one rendering (GET and HEAD alike), /healthz is
// answered while they wait, and under TESSERA_WORKERS=2 the scrapes of both workers share one
// gathering of every worker's registry. Each answer is still read after its scrape arrived.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderingSpacingMs } from "../../src/server/metrics.js";
import { killService, startService, type ServiceProcess } from "../support/process.js";
import { RestH2c } from "../support/rest-h2c.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { spyOn } from "../support/spy.js";

/** GET (or HEAD) `path` on its own HTTP/1.1 connection; resolves with its status and body. */
function ownConnection(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

for (const store of storesUnderTest()) {
  describe(`metrics under a flood of scrapes on ${store}`, function () {
    this.timeout(60_000);
    let server: TestServer;
    before(async () => (server = await startTestServer({ store })));
    after(() => server?.close());

    it("scrapes arriving together share one rendering, GET and HEAD alike, and the next scrape reads anew", async () => {
      const h2 = new RestH2c(server.url);
      try {
        assert.equal((await h2.request("GET", "/metrics")).status, 200);
        const renderings = spyOn(server.tessera.metrics!.registry, "metrics");
        try {
          const n = 50;
          const answers = await Promise.all(Array.from({ length: n }, (_, i) => h2.request(i % 5 === 0 ? "HEAD" : "GET", "/metrics")));
          assert.deepEqual(answers.map((a) => a.status), Array(n).fill(200));
          assert.equal(renderings.calls.length, 1, `renderings for a burst of ${n} scrapes`);
          const gets = answers.filter((_, i) => i % 5 !== 0);
          const heads = answers.filter((_, i) => i % 5 === 0);
          assert.deepEqual([...new Set(gets.map((a) => a.text))].length, 1);
          assert.match(gets[0]!.text, /^tessera_build_info\{version="[^"]+"\} 1$/m);
          for (const a of answers) assert.match(a.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
          for (const a of heads) {
            assert.equal(a.text, "");
            assert.equal(a.headers.get("content-length"), String(Buffer.byteLength(gets[0]!.text)));
          }
          // A scrape after the burst's answers is rendered anew: it counts what happened since.
          assert.equal((await h2.request("GET", "/jwt/version")).status, 200);
          const after = await h2.request("GET", "/metrics");
          assert.equal(renderings.calls.length, 2);
          const served = (text: string) => Number(/^tessera_rpc_requests_total\{service="tessera\.jwt\.v1\.JwtService",method="GetVersion",protocol="rest",code="ok"\} (\d+)$/m.exec(text)?.[1] ?? 0);
          assert.equal(served(after.text), served(gets[0]!.text) + 1);
        } finally {
          renderings.restore();
        }
      } finally {
        h2.close();
      }
    });

    it("/healthz is answered while a burst of scrapes, each on its own connection, waits", async () => {
      const renderings = spyOn(server.tessera.metrics!.registry, "metrics");
      try {
        const n = 300;
        const start = performance.now();
        // At most one rendering begins in each renderingSpacingMs, the first at once.
        const bound = () => 1 + Math.floor((performance.now() - start) / renderingSpacingMs);
        const burst = Array.from({ length: n }, () => ownConnection(server.port, "/metrics"));
        const health = await ownConnection(server.port, "/healthz");
        const [renderedBeforeHealth, boundAtHealth] = [renderings.calls.length, bound()];
        const answers = await Promise.all(burst);
        const [rendered, boundAtEnd] = [renderings.calls.length, bound()];
        assert.equal(health.status, 200);
        assert.deepEqual(answers.map((a) => a.status), Array(n).fill(200));
        // /healthz, sent after the burst, waited for a few renderings, not for one per scrape before it.
        assert.ok(renderedBeforeHealth <= boundAtHealth, `${renderedBeforeHealth} renderings before /healthz was answered, ${boundAtHealth} at most`);
        assert.ok(rendered <= boundAtEnd, `${rendered} renderings for ${n} scrapes, ${boundAtEnd} at most`);
      } finally {
        renderings.restore();
      }
    });
  });
}

describe("metrics under a flood of scrapes, TESSERA_WORKERS=2", function () {
  this.timeout(60_000);
  let dataDir: string;
  let cluster: ServiceProcess | undefined;
  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "tessera-metrics-flood-"));
    cluster = await startService("compiled", { TESSERA_WORKERS: "2", TESSERA_DATA_DIR: dataDir }, { listeners: 2 });
  });
  after(async () => {
    await killService(cluster);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("the scrapes of both workers arriving together share one gathering of every worker's metrics", async () => {
    const url = `http://127.0.0.1:${cluster!.port}`;
    const sessions = [new RestH2c(url), new RestH2c(url)];
    try {
      // Each connection is served by one worker, handed to them in turn: one session each.
      const workers: unknown[] = [];
      for (const s of sessions) {
        const seen = cluster!.lines().filter((l) => l.msg === "rpc").length;
        assert.equal((await s.request("GET", "/jwt/version")).status, 200);
        workers.push(await rpcLineWorker(cluster!, seen));
      }
      assert.deepEqual(workers.sort(), [1, 2]);
      for (const s of sessions) assert.equal((await s.request("GET", "/metrics")).status, 200);
      const n = 20;
      const start = performance.now();
      const answers = await Promise.all(sessions.flatMap((s) => Array.from({ length: n }, () => s.request("GET", "/metrics"))));
      // At most one gathering begins in each renderingSpacingMs, the first at once: one, unless
      // the machine was so slow that the burst outlasted that (another begins no sooner).
      const bound = 1 + Math.floor((performance.now() - start) / renderingSpacingMs);
      assert.deepEqual(answers.map((a) => a.status), Array(2 * n).fill(200));
      // Every rendering differs from the one before (process_cpu_*, nodejs_heap_*): one text, one gathering.
      const gatherings = new Set(answers.map((a) => a.text)).size;
      assert.ok(gatherings <= bound, `${gatherings} gatherings for a burst of ${2 * n} scrapes on two workers, ${bound} at most`);
      assert.match(answers[0]!.text, /^tessera_rpc_requests_total\{service="tessera\.jwt\.v1\.JwtService",method="GetVersion",protocol="rest",code="ok"\} 2$/m);
    } finally {
      for (const s of sessions) s.close();
    }
  });
});

/** The worker that wrote the rpc line after the first `seen`. */
async function rpcLineWorker(cluster: ServiceProcess, seen: number): Promise<unknown> {
  for (let i = 0; i < 200; i++) {
    const line = cluster.lines().filter((l) => l.msg === "rpc")[seen];
    if (line) return line.worker;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("no rpc line");
}
