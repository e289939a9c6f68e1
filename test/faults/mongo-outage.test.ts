// Faults 1 and 2: the MongoDB server stops in the middle of a steady mixed load and comes back;
// fault 3: the database behind it (FerretDB's PostgreSQL) does.
// Every answer is a success or UNAVAILABLE/503 (nothing else: no 500, no 401 for a good token,
// no hang, no reset), the server process lives through it, its memory stays bounded, it serves
// again within seconds of the database's return without a restart, and every write it
// acknowledged — before, during or after the outage — is there afterwards.
//
// The database is a private FerretDB (PrivateFerretDb: its own port and PostgreSQL database),
// never the shared one. With CI=true a missing FerretDB binary fails the suite.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { openStore } from "../../src/store/index.js";
import type { Store } from "../../src/store/ports.js";
import { PrivateFerretDb } from "../support/ferretdb.js";
import { mixedLoad, verifyLedger } from "./mixed-load.js";
import { formatTally, mib, newTally, requireFerretDb, sleep, startServerProcess, type ServerProcess } from "./support.js";

const BEFORE_MS = 4000;
/** Calls that must have succeeded before the fault begins, waited for up to WARM_UP_LIMIT_MS more. */
const OK_BEFORE = 50;
const WARM_UP_LIMIT_MS = 20_000;
const OUTAGE_MS = 4000;
const AFTER_MS = 6000;
/** A call may wait this long for the database (TESSERA_STORE_TIMEOUT_MS) before answering 503. */
const STORE_TIMEOUT_MS = 1000;
/** The service must serve again within this long after the database listens again. */
const RECOVERY_MS = 5000;

interface Fault {
  name: string;
  begin(db: PrivateFerretDb): Promise<void> | void;
  end(db: PrivateFerretDb): Promise<void> | void;
  /** Longest a call may take before it counts as a hang (a failure). */
  callTimeoutMs: number;
  /** FerretDB reaches PostgreSQL through a relay the fault cuts. */
  backendLink?: boolean;
}

const faults: Fault[] = [
  // The server process dies: connections are reset, new ones refused.
  { name: "the MongoDB server stops (killed) and restarts", begin: (db) => db.stop(), end: (db) => db.resume(), callTimeoutMs: 10000 },
  // The server hangs (SIGSTOP): connections stay open and nothing answers, as in a network
  // partition. In-flight operations wait on their sockets; the driver's socket timeout bounds them.
  { name: "the MongoDB server freezes (SIGSTOP) and thaws", begin: (db) => db.pause(), end: (db) => db.unpause(), callTimeoutMs: 15000 },
  // The server stays up and its own storage goes away: FerretDB's PostgreSQL is cut off (its
  // connections reset, new ones refused), so FerretDB answers every operation with an error
  // (InternalError naming the lost connection) until PostgreSQL is reachable again.
  {
    name: "the database behind the MongoDB server (FerretDB's PostgreSQL) goes away and returns",
    begin: (db) => db.cutBackend(),
    end: (db) => db.restoreBackend(),
    callTimeoutMs: 10000,
    backendLink: true,
  },
];

for (const fault of faults) {
  describe(`faults: ${fault.name} under mixed load`, function () {
    this.timeout(60000);
    let db: PrivateFerretDb | undefined;
    let server: ServerProcess | undefined;
    let store: Store | undefined;

    before(function () {
      requireFerretDb(this);
    });

    after(async () => {
      await store?.close();
      await server?.stop();
      await db?.destroy();
    });

    it("answers success or UNAVAILABLE throughout, stays up and bounded, recovers by itself, and loses no acknowledged write", async () => {
      db = await PrivateFerretDb.start({ backendLink: fault.backendLink ?? false });
      const dbName = `tessera_fault_${randomBytes(5).toString("hex")}`;
      server = await startServerProcess({ MONGODB_URI: db.uri, TESSERA_MONGODB_DATABASE: dbName, TESSERA_STORE_TIMEOUT_MS: String(STORE_TIMEOUT_MS) });
      const tally = newTally();
      const load = mixedLoad(server.url, tally, { timeoutMs: fault.callTimeoutMs });
      const running = load.run(12);

      await sleep(BEFORE_MS);
      // The load must be under way before the fault: on a loaded machine the first calls (argon2
      // sign-ups and logins among them) take longer, so wait for them rather than for a time.
      for (const until = Date.now() + WARM_UP_LIMIT_MS; tally.total("ok") <= OK_BEFORE && Date.now() < until; ) await sleep(250);
      const okBefore = tally.total("ok");
      const warm = server.memory.filter((m) => m.at >= Date.now() - 1500);
      const outageStart = Date.now();
      await fault.begin(db);
      await sleep(OUTAGE_MS);
      const unavailableDuring = tally.total("unavailable");
      await fault.end(db);
      const resumedAt = Date.now();
      await sleep(AFTER_MS);
      load.stop();
      await running;
      load.close();

      // When did the last 503 come back, and did calls succeed after it?
      const lastUnavailable = Math.max(0, ...tally.timeline.filter((e) => e.verdict === "unavailable").map((e) => e.at));
      const recoveryMs = Math.max(0, lastUnavailable - resumedAt);
      const okAfter = tally.timeline.filter((e) => e.verdict === "ok" && e.at > Math.max(lastUnavailable, resumedAt)).length;
      const peak = server.memory.filter((m) => m.at >= outageStart);
      const warmRss = Math.max(...warm.map((m) => m.rss));
      const warmHeap = Math.max(...warm.map((m) => m.heapUsed));
      const peakRss = Math.max(...peak.map((m) => m.rss));
      const peakHeap = Math.max(...peak.map((m) => m.heapUsed));
      // What happened, for any assertion below that fails.
      const figures = [
        formatTally(tally),
        `  ok before the outage ${okBefore}, 503s ${tally.total("unavailable")} (${unavailableDuring} by the outage's end), ok after the last 503 ${okAfter}`,
        `  recovery: last 503 ${recoveryMs} ms after the database listened again`,
        `  server RSS ${mib(warmRss).toFixed(0)} MiB before, peak ${mib(peakRss).toFixed(0)} MiB after; heap ${mib(warmHeap).toFixed(0)} -> peak ${mib(peakHeap).toFixed(0)} MiB`,
        // An answer that is neither: the server's log line for it names the error's cause.
        ...server.problems.filter((line) => /"internal error"|INTERNAL/.test(line)).slice(0, 3).map((line) => `  server: ${line}`),
      ].join("\n");

      assert.deepEqual(tally.failures, [], `every answer is a success or UNAVAILABLE/503\n${figures}`);
      assert.equal(server.hasExited(), false, "the server process is still running");
      assert.ok(okBefore > OK_BEFORE, `calls succeeded before the outage\n${figures}`);
      assert.ok(unavailableDuring > 0, `the outage was seen (some calls answered UNAVAILABLE)\n${figures}`);
      assert.ok(recoveryMs <= RECOVERY_MS, `calls succeed again within ${RECOVERY_MS} ms of the database's return\n${figures}`);
      assert.ok(okAfter > 50, `calls succeed after the recovery\n${figures}`);
      // Memory: the outage's backlog (bounded by the closed-loop concurrency) must not pile up.
      assert.ok(warm.length > 0 && peak.length > 0, "memory samples from the server");
      assert.ok(peakRss < warmRss + 64 * 1024 * 1024, `RSS grew by ${mib(peakRss - warmRss).toFixed(0)} MiB during and after the outage\n${figures}`);
      assert.ok(peakHeap < warmHeap + 48 * 1024 * 1024, `heap grew by ${mib(peakHeap - warmHeap).toFixed(0)} MiB during and after the outage\n${figures}`);
      assert.deepEqual(server.problems.filter((l) => /"level":"error"/.test(l)), [], "no error-level log lines (INTERNAL answers)");

      // Every acknowledged write is there: store ports (a second connection to the same
      // database) and the API. Wait out the API token cache so revocations are seen through the API.
      store = await openStore({ mongodbUri: db.uri, mongoDbName: dbName, dataDir: "", warn: () => {} });
      await sleep(2100);
      const { problems, checked } = await verifyLedger(server.url, store, load.ledger);
      assert.deepEqual(problems, [], `every acknowledged write is present after the outage (checked ${JSON.stringify(checked)})`);
      // Each kind several times over (a loaded machine, its argon2 sign-ups slower, has made as few as 9 API tokens in the run).
      assert.ok((checked.users ?? 0) > 5 && (checked.sessions ?? 0) > 5 && (checked["api tokens"] ?? 0) > 5, `the ledger covers real work: ${JSON.stringify(checked)}`);
      assert.equal(server.hasExited(), false);
    });
  });
}
