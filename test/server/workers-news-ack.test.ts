// Under TESSERA_WORKERS, a revocation is in effect in every worker before it answers (README,
// "Run it"): the worker that made it waits for each other worker's acknowledgement of the news
// (cluster.ts shareNews), at most 1.5 s for each; one that does not acknowledge in time is logged
// ("worker did not apply news in time") and counted (tessera_worker_news_unacknowledged_total),
// and the call still answers as made; a follower that made the change waits at most 2 s for the
// first worker, and counts it late only when it had not applied the change itself by then: each
// late worker is counted once, by the worker that waited for it. A worker whose handler of the
// news throws or rejects logs the error itself and says so at once: the worker waiting for it logs
// ("worker failed to apply news") and counts it (tessera_worker_news_failed_total) without
// waiting out the bound. The workers are preloaded with test/support/delayed-news.ts, which makes
// one or two of them apply the news they are sent late, or never, and
// test/support/failing-news.ts, which makes one's handler fail and send stray acknowledgements.
// Compiled (`npm start`), as they hook into Node's own modules (the channels' ChildProcess and
// process), loaded with tsx for themselves only; but where a handler fails (NEWS_FAILURES), from
// the sources: failing-news.ts replaces the handler in src/core/api-tokens.ts, of which the
// compiled bundle holds a copy of its own.
// Each request is on a new connection: the first worker hands connections to each worker in turn.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { scrape, value } from "../support/metrics.js";
import { killService, request, startService, type Entry, type ServiceProcess } from "../support/process.js";

const password = "correct horse battery staple";
/** Checks after each revocation, each on a new connection: half of them reach the second worker. */
const checks = 8;
/** Revocations of each kind, each answered by the first worker. */
const attempts = 3;
/** How long the first worker waits for a follower's acknowledgement (cluster.ts newsAckMs). */
const newsAckMs = 1500;
/** How long a follower waits for the first worker's (cluster.ts sentNewsAckMs). */
const sentNewsAckMs = 2000;
const revokeApiToken = "tessera.apitoken.v1.ApiTokenService/RevokeToken";
const revokeKey = "tessera.key.v1.KeyService/RevokeKey";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A cluster of `workers` workers, applying news as `delays` says ("worker:delay" pairs: test/support/delayed-news.ts),
 * and failing to as `env` says (NEWS_FAILURES, NEWS_EXTRA_ACKS: test/support/failing-news.ts).
 */
function cluster(delays: string, workers = 2, env: Record<string, string> = {}) {
  const state: { service?: ServiceProcess; dataDir?: string } = {};
  const entry: Entry = env.NEWS_FAILURES === undefined ? "compiled" : "sources";
  before(async () => {
    state.dataDir = mkdtempSync(join(tmpdir(), "tessera-news-ack-"));
    state.service = await startService(
      entry,
      // A long API-token cache: only the news can make a worker refuse a token it has cached.
      { TESSERA_WORKERS: String(workers), TESSERA_DATA_DIR: state.dataDir, TESSERA_API_TOKEN_CACHE_SECONDS: "60", NEWS_DELAYS: delays, ...env },
      { listeners: workers, nodeArgs: ["--import", "tsx", "--import", "./test/support/delayed-news.ts", "--import", "./test/support/failing-news.ts"] },
    );
  });
  after(async () => {
    await killService(state.service);
    if (state.dataDir) rmSync(state.dataDir, { recursive: true, force: true });
  });
  const port = () => state.service!.port;
  /** The workers that served `procedure`, in the order their log lines were written. */
  const servedBy = (procedure: string) => state.service!.lines().filter((l) => l.msg === "rpc" && l.procedure === procedure).map((l) => l.worker);
  /** The worker whose log line is the `n`th of `procedure` (0-based), once it is written. */
  const nthServedBy = async (procedure: string, n: number) => {
    for (let waited = 0; waited < 5000; waited += 10) {
      const worker = servedBy(procedure)[n];
      if (worker !== undefined) return worker;
      await sleep(10);
    }
    throw new Error(`no log line of ${procedure} #${n}`);
  };
  return {
    port,
    lines: () => state.service!.lines(),
    stderr: () => state.service!.stderr(),
    nthServedBy,
    /**
     * Makes `worker` the one the next connection is handed to: the workers take turns, so it is
     * the one that served the request `workers` requests back.
     */
    async workerNext(worker: number) {
      const procedure = "tessera.jwt.v1.JwtService/GetVersion";
      const from = servedBy(procedure).length;
      for (let n = from; ; n++) {
        assert.equal((await request(port(), "GET", "/jwt/version")).status, 200);
        await nthServedBy(procedure, n);
        if (n + 1 - workers >= from && servedBy(procedure)[n + 1 - workers] === worker) return;
      }
    },
    /**
     * Revokes a new API token of `account` through `worker` (the one the revocation is handed to),
     * checks its answer and returns how long it took, and the token.
     */
    async revokeThrough(worker: number, account: string) {
      const created = await request(port(), "POST", "/v1/frontend/auth", { account_id: account, description: "late" });
      assert.equal(created.status, 200, created.text);
      const bearer = { authorization: `Bearer ${created.json.token as string}` };
      const link = (await request(port(), "GET", "/v1/api/auth", undefined, bearer)).json.token_link as string;

      const n = servedBy(revokeApiToken).length;
      await this.workerNext(worker);
      const began = performance.now();
      const revoked = await request(port(), "DELETE", `/v1/frontend/auth/${account}`, { token_link: link });
      const tookMs = performance.now() - began;
      assert.equal(revoked.status, 200, revoked.text);
      // Answered as made: seed 001's {revoked}, its date as `DD Mon YYYY - HH:mm`.
      assert.deepEqual(Object.keys(revoked.json), ["revoked"]);
      assert.match(revoked.json.revoked as string, /^\d{2} [A-Z][a-z]{2} \d{4} - \d{2}:\d{2}$/);
      assert.equal(await nthServedBy(revokeApiToken, n), worker, "the revocation was handed to the worker named");
      return { tookMs, token: created.json.token as string };
    },
    /** tessera_worker_news_unacknowledged_total, of API-token revocations and in all. */
    async unacknowledged() {
      const families = await scrape(`http://127.0.0.1:${port()}/metrics`);
      return [value(families, "tessera_worker_news_unacknowledged_total", { kind: "api-token-revoked" }), value(families, "tessera_worker_news_unacknowledged_total")];
    },
    /** tessera_worker_news_failed_total, of API-token revocations and in all. */
    async failed() {
      const families = await scrape(`http://127.0.0.1:${port()}/metrics`);
      return [value(families, "tessera_worker_news_failed_total", { kind: "api-token-revoked" }), value(families, "tessera_worker_news_failed_total")];
    },
    /**
     * The lines of workers that failed to apply news (their handler threw or rejected) and of the
     * workers that were told so, once `count` of each have been written (and none more for half a
     * second).
     */
    async failures(count: number) {
      const failedHere = () => state.service!.lines().filter((l) => l.msg === "news handler failed");
      const toldOf = () => state.service!.lines().filter((l) => l.msg === "worker failed to apply news");
      for (let waited = 0; (failedHere().length < count || toldOf().length < count) && waited < 5000; waited += 10) await sleep(10);
      await sleep(500);
      return { failedHere: failedHere(), toldOf: toldOf().map((l) => ({ level: l.level, worker: l.worker, kind: l.kind, failedWorker: l.failedWorker })) };
    },
    /** The warnings about late workers, once `count` of them have been written (and none more for half a second). */
    async lateWarnings(count: number) {
      const warnings = () => state.service!.lines().filter((l) => l.msg === "worker did not apply news in time");
      for (let waited = 0; warnings().length < count && waited < 5000; waited += 10) await sleep(10);
      await sleep(500);
      return warnings().map((l) => ({ level: l.level, worker: l.worker, kind: l.kind, lateWorker: l.lateWorker }));
    },
    /** The statuses of `checks` requests, each on a new connection. */
    async statuses(path: string, headers: Record<string, string>) {
      const out: number[] = [];
      for (let i = 0; i < checks; i++) out.push((await request(port(), "GET", path, undefined, headers)).status);
      return out;
    },
  };
}

describe("server: TESSERA_WORKERS, a revocation is in effect in every worker when it answers", function () {
  this.timeout(120000);

  describe("a worker that applies news 1 s late", () => {
    const c = cluster("2:1000");

    it("a revoked API token: no worker accepts it once its revocation has answered", async () => {
      for (let attempt = 0; attempt < attempts; attempt++) {
        const account = `acct-ack-${attempt}`;
        const created = await request(c.port(), "POST", "/v1/frontend/auth", { account_id: account, description: "ack" });
        assert.equal(created.status, 200, created.text);
        const bearer = { authorization: `Bearer ${created.json.token as string}` };
        // Both workers have it cached.
        assert.deepEqual(await c.statuses("/v1/api/auth", bearer), Array(checks).fill(200));
        const link = (await request(c.port(), "GET", "/v1/api/auth", undefined, bearer)).json.token_link as string;

        await c.workerNext(1);
        const revoked = await request(c.port(), "DELETE", `/v1/frontend/auth/${account}`, { token_link: link });
        assert.equal(revoked.status, 200, revoked.text);
        assert.equal(await c.nthServedBy(revokeApiToken, attempt), 1, "the first worker answered the revocation");
        assert.deepEqual(await c.statuses("/v1/api/auth", bearer), Array(checks).fill(401), `attempt ${attempt + 1}`);
      }
    });

    it("a revoked signing key: no worker accepts a token it signed once its revocation has answered", async () => {
      assert.equal((await request(c.port(), "POST", "/jwt/user", { user: "ack", pass: password })).status, 201);
      for (let attempt = 0; attempt < attempts; attempt++) {
        const issued = await request(c.port(), "GET", `/jwt/token?user=ack&pass=${encodeURIComponent(password)}`);
        assert.equal(issued.status, 200, issued.text);
        const bearer = { authorization: `Bearer ${issued.text}` };
        assert.deepEqual(await c.statuses("/jwt/check", bearer), Array(checks).fill(200));

        const { kid } = JSON.parse(Buffer.from(issued.text.split(".")[0]!, "base64url").toString()) as { kid: string };
        await c.workerNext(1);
        const revoked = await request(c.port(), "POST", `/v1/admin/keys/${kid}:revoke`, {});
        assert.equal(revoked.status, 200, revoked.text);
        assert.equal(await c.nthServedBy(revokeKey, attempt), 1, "the first worker answered the revocation");
        assert.deepEqual(await c.statuses("/jwt/check", bearer), Array(checks).fill(400), `attempt ${attempt + 1}`);
      }
    });

    it("news applied within the bound is neither logged nor counted", async () => {
      assert.deepEqual(c.lines().filter((l) => l.msg === "worker did not apply news in time"), []);
      const families = await scrape(`http://127.0.0.1:${c.port()}/metrics`);
      assert.equal(value(families, "tessera_worker_news_unacknowledged_total"), 0);
    });
  });

  // Each revocation below is handed to `through`, waits `boundMs` in vain (newsAckMs for each
  // follower, on the first worker; sentNewsAckMs for the first, on a follower) and answers; the
  // late worker is logged and counted once, by the worker that waited for it.
  const late = [
    { title: "a worker that never applies news", delays: "2:never", workers: 2, through: 1, boundMs: newsAckMs, warning: { worker: 1, lateWorker: 2 } },
    { title: "a first worker that never applies a follower's news", delays: "1:never", workers: 2, through: 2, boundMs: sentNewsAckMs, warning: { worker: 2, lateWorker: 1 } },
    // The first worker applies it 1 s after it was sent, then waits 1.5 s for the third: its
    // acknowledgement comes after the follower's bound, and the first worker is not late itself.
    {
      title: "a first worker that applies a follower's news in time, then waits in vain for a third worker",
      delays: "1:1000,3:never",
      workers: 3,
      through: 2,
      boundMs: sentNewsAckMs,
      warning: { worker: 1, lateWorker: 3 },
    },
    // The first worker numbers its news in turn: the second's and the third's have neighbouring
    // ids. The third also acknowledges the ids next to its own (test/support/failing-news.ts), so
    // the second's too: an acknowledgement counts only from the worker the news was sent to.
    {
      title: "a worker that never applies news, and another that acknowledges the ids next to its own too",
      delays: "2:never",
      workers: 3,
      through: 1,
      boundMs: newsAckMs,
      warning: { worker: 1, lateWorker: 2 },
      env: { NEWS_NEIGHBOUR_ACKS: "3" },
      strays: ["failing-news: worker 3 acknowledged news with the ids next to its own too"],
    },
  ];
  for (const [i, { title, delays, workers, through, boundMs, warning, env, strays }] of late.entries()) {
    describe(title, () => {
      const c = cluster(delays, workers, env);

      it(`the revocation answers once the bound has passed (${boundMs} ms), and worker ${warning.lateWorker} alone is logged and counted, by worker ${warning.worker}`, async () => {
        const { tookMs } = await c.revokeThrough(through, `acct-late-${i}`);
        assert.ok(tookMs >= boundMs - 50 && tookMs < boundMs + 1000, `answered after ${Math.round(tookMs)} ms`);
        assert.deepEqual(await c.lateWarnings(1), [{ level: "warn", kind: "api-token-revoked", ...warning }]);
        assert.deepEqual(await c.unacknowledged(), [1, 1]);
        // The stray acknowledgements, when there are any, were sent.
        assert.deepEqual(c.stderr().split("\n").filter((l) => l.startsWith("failing-news:")), strays ?? []);
      });
    });
  }

  // A worker that dies while the first waits for its acknowledgement serves nothing from then
  // on (its replacement reads the store as it starts): the revocation answers at its exit, and
  // nothing is logged or counted late, as for a worker the news could not be sent to.
  describe("a worker that never applies news, killed while the first worker waits for it", () => {
    const c = cluster("2:never");

    it("the revocation answers at its exit, before the bound (1500 ms); no worker is logged or counted late", async () => {
      const account = "acct-gone";
      const created = await request(c.port(), "POST", "/v1/frontend/auth", { account_id: account, description: "gone" });
      assert.equal(created.status, 200, created.text);
      const bearer = { authorization: `Bearer ${created.json.token as string}` };
      const link = (await request(c.port(), "GET", "/v1/api/auth", undefined, bearer)).json.token_link as string;
      const second = c.lines().find((l) => l.msg === "listening" && l.worker === 2)!.pid as number;

      await c.workerNext(1);
      const began = performance.now();
      const revoking = request(c.port(), "DELETE", `/v1/frontend/auth/${account}`, { token_link: link });
      await sleep(300);
      process.kill(second, "SIGKILL");
      const revoked = await revoking;
      const tookMs = performance.now() - began;
      assert.equal(revoked.status, 200, revoked.text);
      assert.deepEqual(Object.keys(revoked.json), ["revoked"]);
      assert.equal(await c.nthServedBy(revokeApiToken, 0), 1, "the first worker answered the revocation");
      // The wait began after `began`: an answer after the bound comes newsAckMs or more after it.
      assert.ok(tookMs < newsAckMs, `answered after ${Math.round(tookMs)} ms`);
      assert.deepEqual(await c.lateWarnings(0), []);
      assert.deepEqual(await c.unacknowledged(), [0, 0]);
    });
  });

  // A worker whose handler of the news throws or rejects (test/support/failing-news.ts) logs the
  // error itself, once, and answers the worker waiting for it at once that it failed; that worker
  // logs and counts the failure (tessera_worker_news_failed_total), not a late worker, and the
  // revocation answers without waiting out the bound. The failing worker also sends each
  // acknowledgement twice, one for an id never sent, and the same one late without `failed`:
  // none of them is counted or logged, and the next news is handled as the first was.
  const failing = [
    { title: "a worker whose news handler throws", failures: "2:throw", workers: 2, through: 1, told: { worker: 1, failedWorker: 2 } },
    { title: "a worker whose news handler rejects", failures: "2:reject", workers: 2, through: 1, told: { worker: 1, failedWorker: 2 } },
    { title: "a first worker whose handler of a follower's news rejects", failures: "1:reject", workers: 2, through: 2, told: { worker: 2, failedWorker: 1 } },
    // The first worker passes the second's news on to the third, and reports it failing itself.
    { title: "a third worker whose handler of news passed on by the first throws", failures: "3:throw", workers: 3, through: 2, told: { worker: 1, failedWorker: 3 } },
  ];
  for (const [i, { title, failures, workers, through, told }] of failing.entries()) {
    describe(title, () => {
      const failingWorker = told.failedWorker;
      const c = cluster("", workers, { NEWS_FAILURES: failures, NEWS_EXTRA_ACKS: String(failingWorker) });

      it(`worker ${failingWorker} logs its error, worker ${told.worker} the failure and counts it, and the revocation answers at once`, async () => {
        const tokens: string[] = [];
        for (let n = 1; n <= 2; n++) {
          const { tookMs, token } = await c.revokeThrough(through, `acct-failed-${i}-${n}`);
          tokens.push(token);
          assert.ok(tookMs < 1000, `revocation ${n} answered after ${Math.round(tookMs)} ms`);
          const { failedHere, toldOf } = await c.failures(n);
          assert.deepEqual(toldOf, Array(n).fill({ level: "warn", kind: "api-token-revoked", ...told }));
          assert.equal(failedHere.length, n);
          for (const line of failedHere) {
            assert.equal(line.level, "error");
            assert.equal(line.worker, failingWorker);
            assert.equal(line.kind, "api-token-revoked");
            // The error's message, its hash masked, and where it was thrown.
            assert.match(line.error as string, /^Error: cannot forget the token "…" \(…\): NEWS_FAILURES$/);
            assert.match(line.stack as string, /failing-news\.ts/);
          }
          assert.deepEqual(await c.failed(), [n, n]);
          assert.deepEqual(await c.unacknowledged(), [0, 0]);
        }
        assert.deepEqual(await c.lateWarnings(0), []);
        assert.deepEqual(c.lines().filter((l) => l.msg === "worker exited"), [], "no worker died");
        // The duplicates, unknown ids and late acknowledgements were sent, and changed nothing.
        const extras = c.stderr().split("\n").filter((l) => l.startsWith("failing-news:"));
        assert.deepEqual(extras, Array(2).fill(`failing-news: worker ${failingWorker} acknowledged news as failed with extra acknowledgements`));
        // Never the token, nor its hash (the news's payload), in the log.
        const written = JSON.stringify(c.lines()) + c.stderr();
        for (const token of tokens) {
          assert.ok(!written.includes(token), "the token is not logged");
          assert.ok(!written.includes(createHash("sha256").update(token).digest("hex")), "its hash is not logged");
        }
      });
    });
  }
});
