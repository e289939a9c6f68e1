// TESSERA_STORE_START_WAIT_SECONDS (README, "Configuration"): a start whose MongoDB cannot be
// reached yet (the service and its database coming up together) keeps trying to open the store for
// that long, logging each failure at warn with its cause, then fails as a start without the wait
// does (one line, exit 1). A refusal no retry mends (the credentials, the connection string, a TLS
// certificate the driver refuses, a TLS handshake that fails for a mismatch) fails at once; SIGTERM during the wait stops the start at once, as a stop during a start does (exit 0).
// Under TESSERA_WORKERS the first worker waits alone: the others are forked once it listens, and
// none once a stop has begun.
// Through the compiled service and a private FerretDB started after it.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { ConfigError, loadConfig } from "../../src/config.js";
import { silentLogger } from "../../src/logger.js";
import { projectRoot } from "../../src/project-files.js";
import { openStoreWaiting } from "../../src/store-start-wait.js";
import { OpenStopped, type Store } from "../../src/store/ports.js";
import { rest } from "../support/clients.js";
import { ferretdbBinary, PrivateFerretDb } from "../support/ferretdb.js";
import { makeCertificateWith, makeTestCertificate, type TestCertificate } from "../support/net.js";
import { buildCompiledEntry, entryArgv } from "../support/process.js";
import { sideBySide } from "../support/side-by-side.js";
import { testAdminToken } from "../support/server.js";

interface Launched {
  child: ChildProcess;
  /** The JSON lines written so far on stdout. */
  lines: () => Array<Record<string, unknown>>;
  stderr: () => string;
  /** The exit code, once every process of the tree has closed its stdout and stderr (all read), and when it exited (performance.now()). */
  ended: Promise<{ code: number | null; at: number }>;
  startedAt: number;
}

/**
 * The store's bound on each try (TESSERA_STORE_TIMEOUT_MS): the cause a try is failed with is the
 * server's answer (a refused connection, password or certificate) only when that answer is read
 * within it, and on a loaded machine the process can stall for longer than 500 ms between a try's
 * start and reading the answer: with 500 ms, the cause logged and written was "Server selection
 * timed out after 500 ms". A try against a port that refuses lasts this long whole (server
 * selection waits out its bound).
 */
const storeTimeoutMs = 5000;

/** The compiled service started with `env` (test credentials, cheap hashing, storeTimeoutMs); it may fail. */
async function launch(env: Record<string, string>): Promise<Launched> {
  const startedAt = performance.now();
  const child = spawn(process.execPath, await entryArgv("compiled"), {
    cwd: projectRoot,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      PORT: "0",
      TESSERA_WORKERS: "1",
      TESSERA_LOG_LEVEL: "info",
      TESSERA_CLIENT_IDS: "web",
      TESSERA_ADMIN_TOKEN: testAdminToken,
      TESSERA_ARGON2_MEMORY_KIB: "1024",
      TESSERA_ARGON2_ITERATIONS: "1",
      TESSERA_STORE_TIMEOUT_MS: String(storeTimeoutMs),
      ...env,
    },
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exitedAt = new Promise<number>((resolve) => child.once("exit", () => resolve(performance.now())));
  // "close": the process has exited and both pipes have ended, so that lines() and stderr() hold
  // all they will (at "exit", Node may not have read the last of them yet).
  const closed = new Promise<number | null>((resolve) => child.once("close", (code: number | null) => resolve(code)));
  return {
    child,
    lines: () =>
      out
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stderr: () => err,
    ended: Promise.all([closed, exitedAt]).then(([code, at]) => ({ code, at })),
    startedAt,
  };
}

/** The processes whose parent is `pid` (Linux: /proc/<pid>/stat, after the command's closing parenthesis). */
function childrenOf(pid: number): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid;
      } catch {
        return false; // exited meanwhile
      }
    })
    .map(Number);
}

/** Resolves once `condition()` holds; fails after `timeoutMs` (a start on a loaded machine took over 10 s). */
async function until(condition: () => boolean, what: string, timeoutMs = 45000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

before(buildCompiledEntry);

const waitWarning = "MongoDB could not be reached; the start tries again (TESSERA_STORE_START_WAIT_SECONDS)";
const warnings = (l: Launched) => l.lines().filter((line) => line.msg === waitWarning);
const password = "pw-Secret-7f3a9c";
/** A MongoDB that is not there: nothing listens on port 1. */
const nowhere = `mongodb://tessera:${password}@127.0.0.1:1/db`;
const refused = "MongoDB unavailable: connect ECONNREFUSED 127.0.0.1:1";

describe("config: TESSERA_STORE_START_WAIT_SECONDS", () => {
  it("0 (no wait) unless set; at most 600", () => {
    assert.equal(loadConfig({}).storeStartWaitSeconds, 0);
    assert.equal(loadConfig({ TESSERA_STORE_START_WAIT_SECONDS: "600" }).storeStartWaitSeconds, 600);
    assert.throws(() => loadConfig({ TESSERA_STORE_START_WAIT_SECONDS: "601" }), new ConfigError("TESSERA_STORE_START_WAIT_SECONDS: must be between 0 and 600, got 601"));
  });
});

describe("openStoreWaiting: a stop as a try succeeds", () => {
  it("the store opened as the stop came is closed, and the open rejects with OpenStopped", async () => {
    const stop = new AbortController();
    let closed = 0;
    const store = { close: () => Promise.resolve(void closed++) } as unknown as Store;
    const opened = openStoreWaiting(
      { mongodbUri: "mongodb://127.0.0.1:1/db", dataDir: "unused" },
      {
        waitSeconds: 60,
        logger: silentLogger,
        stopped: stop.signal,
        // The try succeeds, and the stop (which closes the client under it) comes before the open returns.
        open: (config) => {
          assert.equal(config.stopped, stop.signal);
          stop.abort();
          return Promise.resolve(store);
        },
      },
    );
    await assert.rejects(opened, OpenStopped);
    assert.equal(closed, 1);
  });
});

describe("start: TESSERA_STORE_START_WAIT_SECONDS, a MongoDB that comes up after the service", function () {
  this.timeout(120000);
  const dbs: PrivateFerretDb[] = [];
  const services: Launched[] = [];
  before(function () {
    if (!ferretdbBinary()) {
      if (process.env.CI === "true") throw new Error("CI=true but the FerretDB binary is missing (FERRETDB_BIN)");
      this.skip();
    }
  });
  after(async () => {
    for (const s of services) s.child.kill("SIGKILL");
    for (const db of dbs) await db.destroy();
  });

  const lates = [
    {
      what: "FerretDB started after the service",
      prepare: () => PrivateFerretDb.prepare(),
      comes: (db: PrivateFerretDb) => db.resume(),
      cause: (db: PrivateFerretDb) => new RegExp(`^MongoDB unavailable: connect ECONNREFUSED 127\\.0\\.0\\.1:${db.port}$`),
    },
    {
      what: "FerretDB up, its PostgreSQL reachable only after the service started",
      prepare: async () => {
        const db = await PrivateFerretDb.start({ backendLink: true });
        await db.cutBackend();
        return db;
      },
      comes: (db: PrivateFerretDb) => db.restoreBackend(),
      cause: () => /^MongoDB unavailable: .*failed to connect to `user=postgres database=tessera_fdb_[0-9a-f]+`.*connection refused/,
    },
  ];
  // Each its own FerretDB, database and process: their waits pass side by side.
  const cameLate = sideBySide(
    lates.map((late) => async () => {
      const db = await late.prepare();
      dbs.push(db);
      const s = await launch({ MONGODB_URI: db.uri, TESSERA_MONGODB_DATABASE: `tessera_wait_${randomBytes(4).toString("hex")}`, TESSERA_STORE_START_WAIT_SECONDS: "60" });
      services.push(s);
      // Two tries failed: the database comes only now (a refused try lasts storeTimeoutMs).
      await until(() => warnings(s).length === 2, "two failed tries", 4 * storeTimeoutMs + 20000);
      await late.comes(db);
      await until(() => s.lines().some((l) => l.msg === "listening"), "listening");
      const warned = warnings(s);
      for (const w of warned) {
        assert.deepEqual([w.level, w.component], ["warn", "store"]);
        assert.match(w.error as string, late.cause(db));
      }
      // 0.5 s, then twice the last pause.
      assert.deepEqual(warned.slice(0, 2).map((w) => w.retryInMs), [500, 1000]);
      assert.equal(s.stderr(), "");
      const port = /:(\d+)$/.exec(s.lines().find((l) => l.msg === "listening")!.url as string)![1];
      const base = `http://127.0.0.1:${port}`;
      const created = await rest(base, "POST", "/jwt/user", { json: { user: "late-store", pass: "a long enough passphrase" } });
      assert.equal(created.status, 201, created.text);
      const token = await rest(base, "GET", `/jwt/token?user=late-store&pass=${encodeURIComponent("a long enough passphrase")}`);
      assert.equal(token.status, 200, token.text);
      s.child.kill("SIGTERM");
      assert.equal((await s.ended).code, 0);
    }),
  );
  lates.forEach((late, i) => {
    it(`${late.what}: the start waits for it, logging each failed try at warn with its cause; then the service serves a sign-up and a login`, () => cameLate[i]!());
  });
});

describe("start: TESSERA_STORE_START_WAIT_SECONDS that runs out", function () {
  this.timeout(60000);
  const counts = ["1", "2"];
  // Each start is its own process: their waits pass side by side.
  const ranOut = sideBySide(
    counts.map((workers) => async () => {
      // Long enough for two tries (storeTimeoutMs each, the first also loading the MongoDB driver)
      // and the pause between them, with 9.5 s to spare for what they take beyond their bounds on
      // a loaded machine.
      const waitMs = 4 * storeTimeoutMs;
      const l = await launch({ MONGODB_URI: nowhere, TESSERA_STORE_START_WAIT_SECONDS: String(waitMs / 1000), TESSERA_WORKERS: workers });
      const { code, at } = await l.ended;
      assert.equal(code, 1, l.stderr());
      assert.equal(l.stderr(), `tessera: failed to start: ${refused}\n`);
      // The wait has passed (how long the process took beyond it to start, try once more and
      // exit is the machine's speed: under load, over 12 s for a wait of 6 s).
      assert.ok(at - l.startedAt >= waitMs, `${at - l.startedAt} ms`);
      assert.ok(warnings(l).length >= 2);
      for (const w of warnings(l)) assert.equal(w.error, refused);
      assert.ok(!(JSON.stringify(l.lines()) + l.stderr()).includes(password));
    }),
  );
  counts.forEach((workers, i) => {
    it(`TESSERA_WORKERS=${workers}: the one line of a start that fails, exit 1, once the wait has passed; the password never written`, () => ranOut[i]!());
  });
});

describe("start: TESSERA_STORE_START_WAIT_SECONDS, a mongodb+srv:// host whose DNS records are not found", function () {
  this.timeout(60000);
  it("is tried again, each try logged; once the wait has passed, the one line of a start without the wait, exit 1", async () => {
    // Long enough for a try to fail and be logged within it on a loaded machine too: the first
    // try loads the MongoDB driver (with 4 s, under load, its failure came after the wait).
    const l = await launch({ MONGODB_URI: `mongodb+srv://tessera:${password}@cluster0.example.invalid/db`, TESSERA_STORE_START_WAIT_SECONDS: "15" });
    const { code, at } = await l.ended;
    const line = /^MONGODB_URI: the DNS lookup of the mongodb\+srv host cluster0\.example\.invalid failed \(querySrv E[A-Z]+ _mongodb\._tcp\.cluster0\.example\.invalid\)$/;
    assert.equal(code, 1, l.stderr());
    assert.match(l.stderr(), new RegExp(`^tessera: failed to start: ${line.source.slice(1, -1)}\n$`));
    assert.ok(at - l.startedAt >= 15000, `${at - l.startedAt} ms`);
    assert.ok(warnings(l).length >= 1);
    for (const w of warnings(l)) assert.match(w.error as string, line);
    assert.ok(!(JSON.stringify(l.lines()) + l.stderr()).includes(password));
  });
});

describe("start: TESSERA_STORE_START_WAIT_SECONDS does not wait for what no retry mends", function () {
  this.timeout(60000);
  let db: PrivateFerretDb | undefined;
  after(async () => db?.destroy());

  it("credentials the server refuses -> exit 1 at once, as without the wait, no try again", async function () {
    if (!ferretdbBinary()) {
      if (process.env.CI === "true") throw new Error("CI=true but the FerretDB binary is missing (FERRETDB_BIN)");
      this.skip();
    }
    db = await PrivateFerretDb.start();
    const uri = `mongodb://tessera:${password}@127.0.0.1:${db.port}/db`;
    const without = await launch({ MONGODB_URI: uri });
    const withWait = await launch({ MONGODB_URI: uri, TESSERA_STORE_START_WAIT_SECONDS: "60" });
    const [a, b] = await Promise.all([without.ended, withWait.ended]);
    assert.equal(a.code, 1, without.stderr());
    assert.match(without.stderr(), /^tessera: failed to start: MongoDB unavailable: Unsupported authentication mechanism[^\n]*\n$/);
    assert.equal(b.code, 1, withWait.stderr());
    assert.equal(withWait.stderr(), without.stderr());
    // No try again: a try that is to be retried is logged first (when it ended is the machine's
    // speed: under load, a start that failed at once exited over 15 s after its spawn).
    assert.deepEqual(warnings(withWait), []);
    assert.ok(!(JSON.stringify(withWait.lines()) + withWait.stderr()).includes(password));
  });

  describe("a FerretDB listening with TLS", () => {
    const certificates: TestCertificate[] = [];
    const servers: PrivateFerretDb[] = [];
    after(async () => {
      for (const s of servers) await s.destroy();
      for (const c of certificates) c.remove();
    });
    /** A FerretDB presenting `certificate` (self-signed, for 127.0.0.1), and its certificate file. */
    async function withTls(certificate: TestCertificate): Promise<{ db: PrivateFerretDb; certFile: string }> {
      certificates.push(certificate);
      const { TESSERA_TLS_CERT_FILE: certFile, TESSERA_TLS_KEY_FILE: keyFile } = certificate.env;
      const db = await PrivateFerretDb.start({ tls: { certFile: certFile!, keyFile: keyFile! } });
      servers.push(db);
      return { db, certFile: certFile! };
    }
    for (const refused of [
      {
        what: "a self-signed certificate, no tlsCAFile",
        certificate: () => makeTestCertificate(),
        query: () => "tls=true",
        reason: "self-signed certificate",
      },
      {
        what: "an expired certificate, tlsCAFile naming it",
        // Valid for a year from two years ago.
        certificate: () => makeCertificateWith(["-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], new Date(Date.now() - 2 * 365 * 86_400_000)),
        query: (certFile: string) => `tls=true&tlsCAFile=${encodeURIComponent(certFile)}`,
        reason: "certificate has expired",
      },
    ]) {
      it(`${refused.what}: the driver refuses it -> exit 1 at once, naming it, as without the wait, no try again`, async function () {
        if (!ferretdbBinary()) {
          if (process.env.CI === "true") throw new Error("CI=true but the FerretDB binary is missing (FERRETDB_BIN)");
          this.skip();
        }
        const { db, certFile } = await withTls(refused.certificate());
        const uri = `mongodb://tessera:${password}@127.0.0.1:${db.port}/db?${refused.query(certFile)}`;
        const without = await launch({ MONGODB_URI: uri });
        const withWait = await launch({ MONGODB_URI: uri, TESSERA_STORE_START_WAIT_SECONDS: "30" });
        const [a, b] = await Promise.all([without.ended, withWait.ended]);
        assert.equal(a.code, 1, without.stderr());
        assert.equal(without.stderr(), `tessera: failed to start: MongoDB unavailable: ${refused.reason}\n`);
        assert.equal(b.code, 1, withWait.stderr());
        assert.equal(withWait.stderr(), without.stderr());
        assert.deepEqual(warnings(withWait), []);
        assert.ok(!(JSON.stringify(withWait.lines()) + withWait.stderr()).includes(password));
      });
    }

    it("a self-signed certificate, tlsCAFile naming it: the start succeeds, no try failed", async function () {
      if (!ferretdbBinary()) {
        if (process.env.CI === "true") throw new Error("CI=true but the FerretDB binary is missing (FERRETDB_BIN)");
        this.skip();
      }
      const { db, certFile } = await withTls(makeTestCertificate());
      const l = await launch({
        MONGODB_URI: `mongodb://127.0.0.1:${db.port}/?tls=true&tlsCAFile=${encodeURIComponent(certFile)}`,
        TESSERA_MONGODB_DATABASE: `tessera_wait_${randomBytes(4).toString("hex")}`,
        TESSERA_STORE_START_WAIT_SECONDS: "30",
      });
      try {
        await until(() => l.lines().some((line) => line.msg === "listening"), "listening");
        assert.deepEqual(warnings(l), []);
        l.child.kill("SIGTERM");
        assert.equal((await l.ended).code, 0, l.stderr());
        assert.equal(l.stderr(), "");
      } finally {
        l.child.kill("SIGKILL");
      }
    });
  });

  describe("a server whose TLS the driver cannot agree with", () => {
    const certificates: TestCertificate[] = [];
    const servers: Server[] = [];
    after(async () => {
      for (const s of servers) await new Promise((resolve) => s.close(resolve));
      for (const c of certificates) c.remove();
    });
    async function listening(server: Server): Promise<number> {
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return (server.address() as AddressInfo).port;
    }
    for (const mismatch of [
      {
        what: "tls=true against a plaintext port (an HTTP server answers the handshake)",
        listen: async () => `127.0.0.1:${await listening(createHttpServer((_, res) => res.end()))}/db?tls=true`,
        reason: /^tessera: failed to start: MongoDB unavailable: [0-9A-F]+:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:[^\n]*\n$/,
      },
      {
        what: "a server that offers only TLS 1.0 and 1.1 (the driver takes 1.2 and later)",
        listen: async () => {
          const certificate = makeTestCertificate();
          certificates.push(certificate);
          const { TESSERA_TLS_CERT_FILE: certFile, TESSERA_TLS_KEY_FILE: keyFile } = certificate.env;
          const server = createTlsServer(
            { cert: readFileSync(certFile!), key: readFileSync(keyFile!), minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" },
            (socket) => socket.end(),
          ).on("tlsClientError", () => {});
          return `127.0.0.1:${await listening(server)}/db?tls=true&tlsCAFile=${encodeURIComponent(certFile!)}`;
        },
        reason: /^tessera: failed to start: MongoDB unavailable: [0-9A-F]+:error:0A00042E:SSL routines:ssl3_read_bytes:tlsv1 alert protocol version:[^\n]*\n$/,
      },
    ]) {
      it(`${mismatch.what}: the handshake fails -> exit 1 at once, naming it, as without the wait, no try again`, async () => {
        const uri = `mongodb://tessera:${password}@${await mismatch.listen()}`;
        const without = await launch({ MONGODB_URI: uri });
        const withWait = await launch({ MONGODB_URI: uri, TESSERA_STORE_START_WAIT_SECONDS: "30" });
        const [a, b] = await Promise.all([without.ended, withWait.ended]);
        assert.equal(a.code, 1, without.stderr());
        assert.match(without.stderr(), mismatch.reason);
        assert.equal(b.code, 1, withWait.stderr());
        // OpenSSL's message begins with the id of the thread that failed: each process has its own.
        const anyThread = (line: string) => line.replace(/: [0-9A-F]+:error:/, ": <thread>:error:");
        assert.equal(anyThread(withWait.stderr()), anyThread(without.stderr()));
        assert.deepEqual(warnings(withWait), []);
        assert.ok(!(JSON.stringify(withWait.lines()) + withWait.stderr()).includes(password));
      });
    }
  });

  it("a connection string the driver cannot parse -> exit 2 at once, MONGODB_URI named", async () => {
    const l = await launch({ MONGODB_URI: `mongodb://tessera:${password}@127.0.0.1:notaport/db`, TESSERA_STORE_START_WAIT_SECONDS: "60" });
    const { code } = await l.ended;
    assert.equal(code, 2, l.stderr());
    assert.equal(l.stderr(), "tessera: configuration error: MONGODB_URI: not a usable connection string: Unable to parse 127.0.0.1:notaport with URL\n");
    assert.deepEqual(warnings(l), []);
  });
});

describe("start: SIGTERM during TESSERA_STORE_START_WAIT_SECONDS", function () {
  this.timeout(90000);
  const counts = ["1", "2"];
  // Each start is its own process: their waits pass side by side.
  const stopped = sideBySide(
    counts.map((workers) => async () => {
      // A MongoDB that takes connections and never answers: a try lasts the store's bound whole
      // (60 s, the most there is), and the connection it makes says that it is under way.
      const sockets: Socket[] = [];
      let tried!: () => void;
      const underWay = new Promise<void>((resolve) => (tried = resolve));
      const silent = createNetServer((socket) => {
        sockets.push(socket.on("error", () => {}));
        tried();
      });
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      const { port } = silent.address() as AddressInfo;
      const l = await launch({ MONGODB_URI: `mongodb://tessera:${password}@127.0.0.1:${port}/db`, TESSERA_STORE_START_WAIT_SECONDS: "600", TESSERA_STORE_TIMEOUT_MS: "60000", TESSERA_WORKERS: workers });
      try {
        await underWay;
        // The others are forked once the first listens: none while it waits.
        assert.deepEqual(childrenOf(l.child.pid!), []);
        l.child.kill("SIGTERM");
        const { code, at } = await l.ended;
        assert.equal(code, 0, l.stderr());
        // The try under way began after the spawn and would have lasted 60 s: the stop did not wait for it.
        assert.ok(at - l.startedAt < 60000, `${at - l.startedAt} ms`);
        assert.equal(l.stderr(), "");
        const first = (line: Record<string, unknown>) => line.worker === undefined || line.worker === 1;
        assert.deepEqual(
          l.lines().filter((line) => first(line) && (line.msg === "stopping" || line.msg === "stopped")).map((line) => [line.msg, line.signal]),
          [
            ["stopping", "SIGTERM"],
            ["stopped", undefined],
          ],
        );
        assert.deepEqual(l.lines().filter((line) => line.msg === "listening" || line.msg === "worker exited"), []);
        // Nor once the stop began: no other worker wrote a line.
        assert.deepEqual(l.lines().filter((line) => !first(line)), []);
      } finally {
        l.child.kill("SIGKILL");
        for (const socket of sockets) socket.destroy();
        silent.close();
      }
    }),
  );
  counts.forEach((workers, i) => {
    it(`TESSERA_WORKERS=${workers}: stops at once, in the middle of a try, as a stop during a start does: exit 0, nothing on stderr`, () => stopped[i]!());
  });
});
