// GET /metrics: the Prometheus text format (parsed here by parse-prometheus-text-format), on the
// main port by default, on TESSERA_METRICS_PORT alone when set, absent with TESSERA_METRICS=off.
// Counters move as calls are made over every protocol; logins, sign-ups, the hasher, the store,
// the caches and the signing keys are measured; under TESSERA_WORKERS=2 a scrape of either
// worker answers the sum of both.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { entryArgv } from "../support/process.js";
import { fsync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { callClock, runInCall } from "../../src/call-scope.js";
import { packageVersion } from "../../src/project-files.js";
import { createMetrics } from "../../src/server/metrics.js";
import { instrumentStore, watchingWait } from "../../src/store/instrumented.js";
import { DeadlineExceededError, DuplicateError, errorDurable, StoreUnavailableError, type Store } from "../../src/store/ports.js";
import { openSqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { dribble, slowClient } from "../support/net.js";
import { decodedBody, tesseraDetails } from "../support/error-details.js";
import { openTestStore } from "../support/store.js";
import { bearer, connectClient, GrpcJsClient, rest } from "../support/clients.js";
import { family, histogramCount, scrape, value, type Families } from "../support/metrics.js";
import { startTestServer, storesUnderTest, testAdminToken, type TestServer } from "../support/server.js";
import { clientIdHeader, createApiToken, password, signUp, startSession, uniqueEmail } from "../support/users.js";

const noop = { service: "tessera.jwt.v1.JwtService", method: "GetVersion" };

for (const store of storesUnderTest()) {
  describe(`metrics on ${store}`, function () {
    this.timeout(30_000);
    let server: TestServer;
    let metricsUrl: string;
    before(async () => {
      server = await startTestServer({ store });
      metricsUrl = `${server.url}/metrics`;
    });
    after(() => server?.close());

    const grow = async (act: () => Promise<void>): Promise<[Families, Families]> => {
      const before = await scrape(metricsUrl);
      await act();
      return [before, await scrape(metricsUrl)];
    };
    const delta = (pair: [Families, Families], name: string, labels: Record<string, string> = {}) => value(pair[1], name, labels) - value(pair[0], name, labels);

    it("counts each RPC by service, method, protocol and code, over every protocol, with its latency", async () => {
      const grpc = new GrpcJsClient(JwtService, server.url);
      const connect = connectClient(JwtService, server.url);
      const grpcWeb = createClient(JwtService, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }));
      try {
        const pair = await grow(async () => {
          for (let i = 0; i < 3; i++) assert.equal((await grpc.call("GetVersion", {})).error, undefined);
          for (let i = 0; i < 2; i++) await connect.getVersion({});
          await grpcWeb.getVersion({});
          for (let i = 0; i < 4; i++) assert.equal((await rest(server.url, "GET", "/jwt/version")).status, 200);
          // One refused call: an unknown refresh token over REST.
          assert.equal((await rest(server.url, "GET", "/jwt/token?user=a.b.c")).status, 401);
        });
        const counted = (protocol: string, code = "ok") => delta(pair, "tessera_rpc_requests_total", { ...noop, protocol, code });
        assert.deepEqual([counted("grpc"), counted("connect"), counted("grpc-web"), counted("rest")], [3, 2, 1, 4]);
        assert.equal(delta(pair, "tessera_rpc_requests_total", { service: noop.service, method: "GetToken", protocol: "rest", code: "unauthenticated" }), 1);
        const latency = (protocol: string) => histogramCount(pair[1], "tessera_rpc_duration_seconds", { ...noop, protocol }) - histogramCount(pair[0], "tessera_rpc_duration_seconds", { ...noop, protocol });
        assert.deepEqual([latency("grpc"), latency("connect"), latency("grpc-web"), latency("rest")], [3, 2, 1, 4]);
        const buckets = Object.keys(family(pair[1], "tessera_rpc_duration_seconds").metrics[0]!.buckets!).filter((b) => b !== "+Inf").map(Number).sort((a, b) => a - b);
        assert.equal(buckets[0], 0.001);
        assert.equal(buckets.at(-1), 10);
        // Buckets are cumulative: each counts the calls at or under its bound, +Inf all of them.
        for (const protocol of ["grpc", "connect", "grpc-web", "rest"]) {
          const counts = (pair[1].text ?? "")
            .split("\n")
            .filter((l) => l.startsWith("tessera_rpc_duration_seconds_bucket{") && l.includes(`method="${noop.method}"`) && l.includes(`protocol="${protocol}"`))
            .map((l) => Number(l.split(" ").at(-1)));
          assert.equal(counts.length, buckets.length + 1, protocol);
          for (let i = 1; i < counts.length; i++) assert.ok(counts[i]! >= counts[i - 1]!, `${protocol}: ${counts.join(" ")}`);
          assert.equal(counts.at(-1), histogramCount(pair[1], "tessera_rpc_duration_seconds", { ...noop, protocol }), protocol);
        }
      } finally {
        grpc.close();
      }
    });

    it("counts logins by API and outcome, sign-ups, and the hasher's waits", async () => {
      const email = uniqueEmail("metrics");
      const pair = await grow(async () => {
        await signUp(server, email);
        await startSession(server, email);
        const wrong = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password: "not the password" }, headers: clientIdHeader });
        assert.equal(wrong.status, 401);
        const jwt = await rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: "nobody-such", pass: "whatever-it-is" })}`);
        assert.equal(jwt.status, 401);
      });
      assert.equal(delta(pair, "tessera_signups_total", { api: "session", outcome: "success" }), 1);
      assert.equal(delta(pair, "tessera_logins_total", { api: "session", outcome: "success" }), 1);
      assert.equal(delta(pair, "tessera_logins_total", { api: "session", outcome: "failure" }), 1);
      assert.equal(delta(pair, "tessera_logins_total", { api: "jwt", outcome: "failure" }), 1);
      // One hash for the sign-up, one verification per login.
      assert.equal(histogramCount(pair[1], "tessera_hasher_wait_seconds") - histogramCount(pair[0], "tessera_hasher_wait_seconds"), 4);
      assert.equal(value(pair[1], "tessera_hasher_in_use"), 0);
      assert.equal(value(pair[1], "tessera_hasher_queue_depth"), 0);
      assert.equal(value(pair[1], "tessera_hasher_reserved"), 0, "every place admitted was used or given back");
    });

    it("times store operations by operation and store kind", async () => {
      const pair = await grow(async () => {
        await signUp(server, uniqueEmail("store"));
      });
      const kind = store === "mongo" ? "mongo" : "sqlite";
      const count = (operation: string) =>
        histogramCount(pair[1], "tessera_store_operation_duration_seconds", { operation, store: kind }) -
        histogramCount(pair[0], "tessera_store_operation_duration_seconds", { operation, store: kind });
      assert.equal(count("users.create"), 1);
      assert.ok(count("users.findByLogin") >= 1);
      assert.equal(value(pair[1], "tessera_store_unavailable_total"), 0);
    });

    it("counts API-token and verified-JWT cache hits and misses", async () => {
      const token = await createApiToken(server);
      const pair = await grow(async () => {
        for (let i = 0; i < 3; i++) assert.equal((await rest(server.url, "GET", "/v1/api/auth", { headers: bearer(token) })).status, 200);
      });
      assert.equal(delta(pair, "tessera_cache_misses_total", { cache: "api_token" }), 1);
      assert.equal(delta(pair, "tessera_cache_hits_total", { cache: "api_token" }), 2);
      const email = uniqueEmail("cache");
      await signUp(server, email);
      const { access_token } = await startSession(server, email);
      const jwtPair = await grow(async () => {
        for (let i = 0; i < 2; i++) {
          assert.equal((await rest(server.url, "GET", "/session", { headers: { ...clientIdHeader, ...bearer(access_token) } })).status, 200);
        }
      });
      assert.equal(delta(jwtPair, "tessera_cache_misses_total", { cache: "verified_jwt" }), 1);
      assert.equal(delta(jwtPair, "tessera_cache_hits_total", { cache: "verified_jwt" }), 1);
    });

    it("reports the signing keys, process metrics and the build", async () => {
      const families = await scrape(metricsUrl);
      // The signing key and the next key, published before it signs.
      assert.equal(value(families, "tessera_signing_keys_published"), 2);
      const age = value(families, "tessera_signing_key_age_seconds");
      assert.ok(age >= 0 && age < 600, `key age ${age}`);
      assert.equal(value(families, "tessera_build_info", { version: packageVersion }), 1);
      assert.ok(value(families, "process_cpu_user_seconds_total") > 0);
      family(families, "nodejs_eventloop_lag_seconds");
      const rotated = await rest(server.url, "POST", "/v1/admin/keys:rotate", { json: {}, headers: bearer(testAdminToken) });
      assert.equal(rotated.status, 200);
      // The key that signed (it signs until the promoted key has been published long enough),
      // the promoted key, and a new next key.
      assert.equal(value(await scrape(metricsUrl), "tessera_signing_keys_published"), 3);
    });
  });
}

describe("metrics: logins refused before any hashing", function () {
  this.timeout(60_000);

  it("a burst of correct logins: each answer counted once, as success (200), throttled (429: slots busy) or shed (503: hasher full)", async () => {
    // One hasher, no queue, the production argon2 cost (tens of ms a hash): a burst overlaps.
    const server = await startTestServer({
      env: { TESSERA_HASH_CONCURRENCY: "1", TESSERA_HASH_QUEUE_LIMIT: "0", TESSERA_ARGON2_MEMORY_KIB: "19456", TESSERA_ARGON2_ITERATIONS: "2", TESSERA_LOGIN_MAX_FAILURES: "2" },
    });
    try {
      const email = uniqueEmail("burst");
      await signUp(server, email);
      const before = await scrape(`${server.url}/metrics`);
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: clientIdHeader })),
      );
      const after = await scrape(`${server.url}/metrics`);
      const statuses = answers.map((a) => a.status);
      const count = (status: number) => statuses.filter((s) => s === status).length;
      assert.equal(count(200) + count(429) + count(503), 12, statuses.join(","));
      assert.ok(count(429) + count(503) > 0, "the burst overlapped");
      const moved = (outcome: string) => value(after, "tessera_logins_total", { api: "session", outcome }) - value(before, "tessera_logins_total", { api: "session", outcome });
      assert.deepEqual([moved("success"), moved("throttled"), moved("shed"), moved("locked"), moved("failure")], [count(200), count(429), count(503), 0, 0]);
    } finally {
      await server.close();
    }
  });
});

describe("metrics: the HELP of the login and sign-up counters", () => {
  it("names every outcome the counter takes (README Metrics: success, failure, locked, throttled, shed, canceled, error)", async () => {
    const text = await createMetrics().registry.metrics();
    const help = (name: string) => text.split("\n").find((l) => l.startsWith(`# HELP ${name} `)) ?? "";
    for (const outcome of ["success", "failure", "locked", "throttled", "shed", "canceled", "error"]) assert.match(help("tessera_logins_total"), new RegExp(`\\b${outcome}\\b`), outcome);
    // A sign-up is never "locked" (a sign-up lock is TOO_MANY_SIGNUPS: throttled).
    for (const outcome of ["success", "failure", "throttled", "shed", "canceled", "error"]) assert.match(help("tessera_signups_total"), new RegExp(`\\b${outcome}\\b`), outcome);
  });
});

describe("metrics: store operations that fail", function () {
  it("an unavailable store counts as an error and as unavailable, by operation; a duplicate key as neither", async () => {
    const opened = await openTestStore("sqlite");
    try {
      const metrics = createMetrics();
      const store = instrumentStore(opened.store, metrics.storeHook("sqlite"));
      const user = { id: "u-dup", login: "dup@example.com", loginKey: "dup@example.com", emails: [], passwordHash: "$argon2id$x", createdAt: new Date() };
      await store.users.create(user);
      await assert.rejects(store.users.create(user), DuplicateError);
      await opened.store.close();
      await assert.rejects(store.users.findById("u-dup"), StoreUnavailableError);
      const families = parsePrometheusTextFormat(await metrics.registry.metrics()) as Families;
      const op = (operation: string) => ({ operation, store: "sqlite" });
      assert.deepEqual(
        [value(families, "tessera_store_errors_total", op("users.create")), value(families, "tessera_store_unavailable_total", op("users.create"))],
        [0, 0],
      );
      assert.deepEqual(
        [value(families, "tessera_store_errors_total", op("users.findById")), value(families, "tessera_store_unavailable_total", op("users.findById"))],
        [1, 1],
      );
    } finally {
      await opened.close();
    }
  });
  it("a call given up at its caller's deadline while the store had not answered: timed, but neither an error nor unavailable", async () => {
    const metrics = createMetrics();
    const hook = metrics.storeHook("mongo");
    const scope = { requestId: "slow", deadline: callClock() + 50 };
    // What the MongoDB adapter does when the caller's deadline comes first (mongo-store.ts withDeadline).
    const givenUp = () => new Promise<never>((_, reject) => setTimeout(() => reject(new DeadlineExceededError()), 60));
    await assert.rejects(runInCall(scope, () => hook("users.findById", givenUp)), DeadlineExceededError);
    assert.deepEqual(await storeFigures(metrics, { operation: "users.findById", store: "mongo" }), { errors: 0, unavailable: 0, timed: 1 });
  });

  it("a call whose deadline passed before it reached the store (not made): neither an error nor unavailable, and not timed", async () => {
    const opened = await openTestStore("sqlite");
    try {
      const metrics = createMetrics();
      const store = instrumentStore(opened.store, metrics.storeHook("sqlite"));
      const late = { requestId: "late", deadline: callClock() - 1 };
      await assert.rejects(runInCall(late, () => store.users.findById("u-none")), DeadlineExceededError);
      assert.deepEqual(await storeFigures(metrics, { operation: "users.findById", store: "sqlite" }), { errors: 0, unavailable: 0, timed: 0 });
    } finally {
      await opened.close();
    }
  });
});

/** One store operation's errors, unavailability and timed calls, as `metrics` exposes them. */
async function storeFigures(metrics: ReturnType<typeof createMetrics>, op: { operation: string; store: string }) {
  const text = await metrics.registry.metrics();
  const families: Families = Object.assign(parsePrometheusTextFormat(text), { text });
  return {
    errors: value(families, "tessera_store_errors_total", op),
    unavailable: value(families, "tessera_store_unavailable_total", op),
    timed: histogramCount(families, "tessera_store_operation_duration_seconds", op),
  };
}

describe("metrics: a write's later wait for its fsync (the embedded store's ...ThenSync methods)", function () {
  const eio = Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO", syscall: "fsync" });
  let dir: string;
  let failing = false;
  let opened: Store;
  beforeEach(async () => {
    failing = false;
    dir = mkdtempSync(join(tmpdir(), "tessera-metrics-durable-"));
    opened = await openSqliteStore(dir, { fsync: (fd, done) => (failing ? setImmediate(done, eio) : fsync(fd, done)) });
  });
  afterEach(async () => {
    await opened.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const at = new Date();
  const later = new Date(at.getTime() + 3_600_000);
  const session = { id: "s1", userId: "u1", clientId: "c", accessJti: "j", createdAt: at, expiresAt: later };

  it("an fsync failure seen only by durable() counts as an error and as unavailable, under the operation that made the write", async () => {
    const metrics = createMetrics();
    const store = instrumentStore(opened, metrics.storeHook("sqlite"));
    const { durable } = await store.sessions.createThenSync(session, { hash: "rt-1", sessionId: "s1", createdAt: at, expiresAt: later });
    failing = true;
    await assert.rejects(durable(), StoreUnavailableError);
    const families = parsePrometheusTextFormat(await metrics.registry.metrics()) as Families;
    const op = { operation: "sessions.createThenSync", store: "sqlite" };
    assert.deepEqual([value(families, "tessera_store_errors_total", op), value(families, "tessera_store_unavailable_total", op)], [1, 1]);
  });

  it("so does one seen only by the wait on a duplicate's error (errorDurable): the duplicate itself counts as neither", async () => {
    const metrics = createMetrics();
    const store = instrumentStore(opened, metrics.storeHook("sqlite"));
    await store.sessions.createThenSync(session, { hash: "rt-1", sessionId: "s1", createdAt: at, expiresAt: later });
    const child = { hash: "rt-2", sessionId: "s1", createdAt: at, expiresAt: later };
    await store.refreshTokens.insertThenSync(child);
    const refused = await store.refreshTokens.insertThenSync(child).catch((e: unknown) => e);
    assert.ok(refused instanceof DuplicateError, String(refused));
    const op = { operation: "refreshTokens.insertThenSync", store: "sqlite" };
    const before = parsePrometheusTextFormat(await metrics.registry.metrics()) as Families;
    assert.deepEqual([value(before, "tessera_store_errors_total", op), value(before, "tessera_store_unavailable_total", op)], [0, 0]);
    failing = true;
    await assert.rejects(errorDurable(refused), StoreUnavailableError);
    const families = parsePrometheusTextFormat(await metrics.registry.metrics()) as Families;
    assert.deepEqual([value(families, "tessera_store_errors_total", op), value(families, "tessera_store_unavailable_total", op)], [1, 1]);
  });
});

describe("metrics: the store hook on every call (token checks make one or more per request)", () => {
  // A result without a later wait (nearly every call: reads, token checks) is given back as it
  // is: the same object, nothing wrapped or copied for it. One with a wait is a copy whose wait
  // reports a failure to the hook and still rejects.
  it("gives a result without a wait back as the same object, and wraps only a result's wait", async () => {
    const record = { id: "t1", hash: "h", userId: "u1", createdAt: new Date(), expiresAt: new Date() };
    const seen: unknown[] = [];
    const failed = (e: unknown) => void seen.push(e);
    assert.equal(watchingWait(record, failed), record);
    const refused = new StoreUnavailableError("fsync failed");
    const written = { record, durable: () => Promise.reject(refused) };
    const watched = watchingWait(written, failed);
    assert.notEqual(watched, written);
    assert.equal(watched.record, record);
    await assert.rejects(watched.durable(), refused);
    assert.deepEqual(seen, [refused]);
  });
});

describe("metrics: where they are served", function () {
  this.timeout(30_000);

  it("TESSERA_METRICS=off: no /metrics (404)", async () => {
    const server = await startTestServer({ env: { TESSERA_METRICS: "off" } });
    try {
      assert.equal((await rest(server.url, "GET", "/metrics")).status, 404);
      assert.equal(server.tessera.metrics, undefined);
    } finally {
      await server.close();
    }
  });

  it("TESSERA_METRICS_PORT: /metrics on that port alone, 404 on the main port", async () => {
    const server = await startTestServer({ env: { TESSERA_METRICS_PORT: "0" } });
    try {
      assert.equal((await rest(server.url, "GET", "/metrics")).status, 404);
      const port = server.tessera.server.metricsPort!;
      const families = await scrape(`http://127.0.0.1:${port}/metrics`);
      assert.equal(value(families, "tessera_build_info", { version: packageVersion }), 1);
    } finally {
      await server.close();
    }
  });

  // It answered "not found" in plain text, where its own 405 and the main port's 404 are the JSON error.
  it("TESSERA_METRICS_PORT: another path is 404 ROUTE_NOT_FOUND, the JSON error, over HTTP/1.1 and h2c; no segment after the first quoted", async () => {
    const server = await startTestServer({ env: { TESSERA_METRICS_PORT: "0" } });
    const port = server.tessera.server.metricsPort!;
    const expected = {
      code: "not_found",
      message: "no route for GET /no/*/*: this port serves GET /metrics alone",
      details: tesseraDetails("ROUTE_NOT_FOUND"),
    };
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const h1 = await fetch(`http://127.0.0.1:${port}/no/such/${"tsr_" + "a".repeat(38)}`);
      assert.equal(h1.status, 404);
      assert.equal(h1.headers.get("content-type"), "application/json");
      assert.equal(h1.headers.get("cache-control"), "no-store");
      assert.deepEqual(decodedBody((await h1.json()) as Parameters<typeof decodedBody>[0]), expected);
      const [status, type, body] = await new Promise<[unknown, unknown, string]>((resolve, reject) => {
        const stream = session.request({ ":method": "GET", ":path": "/no/such/route" });
        let head: http2.IncomingHttpHeaders = {};
        let text = "";
        stream.on("response", (h) => (head = h));
        stream.on("data", (d: Buffer) => (text += d.toString()));
        stream.on("end", () => resolve([head[":status"], head["content-type"], text]));
        stream.on("error", reject);
      });
      assert.deepEqual([status, type], [404, "application/json"]);
      assert.deepEqual(decodedBody(JSON.parse(body)), expected);
    } finally {
      session.close();
      await server.close();
    }
  });

  // It listed the main port's methods (POST, PUT, PATCH, DELETE), none of which the port takes.
  it("TESSERA_METRICS_PORT: CONNECT is 405 with Allow naming the methods that port takes", async () => {
    const server = await startTestServer({ env: { TESSERA_METRICS_PORT: "0" } });
    try {
      const port = server.tessera.server.metricsPort!;
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, "127.0.0.1", () => socket.write("CONNECT localhost:443 HTTP/1.1\r\nhost: localhost:443\r\n\r\n"));
        let data = "";
        socket.on("data", (b: Buffer) => (data += b.toString("latin1")));
        socket.on("close", () => resolve(data));
        socket.on("error", reject);
      });
      assert.match(answer, /^HTTP\/1\.1 405 /);
      assert.match(answer, /\r\nallow: GET, HEAD\r\n/i);
    } finally {
      await server.close();
    }
  });
  // The listener's own answers there (405 to CONNECT, 417, 505, and the JSON errors to bytes that
  // are no request) carried an x-request-id, the port's other answers none.
  it("TESSERA_METRICS_PORT: no answer carries an x-request-id, the listener's own (405, 417, 505, 400, 431) neither, over HTTP/1.1 and h2c", async () => {
    const server = await startTestServer({ env: { TESSERA_METRICS_PORT: "0" } });
    const port = server.tessera.server.metricsPort!;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      for (const [status, head] of [
        [200, "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-request-id: scrape-1\r\n\r\n"],
        [404, "GET /no/such HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-request-id: scrape-1\r\n\r\n"],
        [405, "CONNECT localhost:443 HTTP/1.1\r\nhost: localhost:443\r\nx-request-id: scrape-1\r\n\r\n"],
        [417, "GET /metrics HTTP/1.1\r\nhost: x\r\nexpect: 200-ok\r\nx-request-id: scrape-1\r\n\r\n"],
        [505, "GET /metrics HTTP/2.0\r\nhost: x\r\nx-request-id: scrape-1\r\n\r\n"],
        [400, "GET /metrics HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n"],
        [431, `GET /metrics HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(17 * 1024)}\r\n\r\n`],
      ] as const) {
        const answer = await new Promise<string>((resolve, reject) => {
          const socket = net.connect(port, "127.0.0.1", () => socket.write(head));
          let data = "";
          socket.on("data", (b: Buffer) => (data += b.toString("latin1")));
          socket.on("close", () => resolve(data));
          socket.on("error", reject);
        });
        const [statusLine, ...fields] = answer.slice(0, answer.indexOf("\r\n\r\n")).split("\r\n");
        assert.equal(statusLine!.split(" ")[1], String(status), head.slice(0, 40));
        assert.deepEqual(fields.filter((f) => /^x-request-id:/i.test(f)), [], `${status}`);
      }
      for (const [status, headers] of [
        [200, { ":method": "GET", ":path": "/metrics" }],
        [404, { ":method": "GET", ":path": "/no/such" }],
        [405, { ":method": "CONNECT", ":authority": "localhost:443" }],
        [417, { ":method": "GET", ":path": "/metrics", expect: "200-ok" }],
      ] as const) {
        const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          const stream = session.request({ ...headers, "x-request-id": "scrape-1" });
          stream.on("response", resolve);
          stream.on("error", reject);
          stream.resume();
        });
        assert.equal(head[":status"], status);
        assert.equal(head["x-request-id"], undefined, `h2c ${status}`);
      }
    } finally {
      session.close();
      await server.close();
    }
  });
});

describe("metrics: TESSERA_METRICS_PORT has the main port's timeouts and connection cap", function () {
  this.timeout(30_000);
  const timeouts = { TESSERA_HEADERS_TIMEOUT_MS: "1000", TESSERA_REQUEST_TIMEOUT_MS: "1500", TESSERA_IDLE_TIMEOUT_MS: "1000" };
  let server: TestServer;
  let port: number;

  before(async () => {
    server = await startTestServer({ env: { ...timeouts, TESSERA_METRICS_PORT: "0" } });
    port = server.tessera.server.metricsPort!;
  });
  after(async () => server?.close());

  const closedWithin = (r: { closedAfterMs: number }) => assert.ok(r.closedAfterMs >= 900 && r.closedAfterMs < 4000, `closed after ${r.closedAfterMs} ms`);

  it("a connection that sends nothing is closed after the headers timeout (1 s)", async () => {
    closedWithin(await slowClient(port, () => {}));
  });

  it("headers dribbled byte by byte are cut off at the headers timeout (1 s)", async () => {
    const r = await slowClient(port, (s) => dribble(s, "GET /metrics HTTP/1.1\r\nhost: x\r\nx-slow: " + "a".repeat(500), 20));
    closedWithin(r);
    assert.doesNotMatch(r.received, /200 OK/);
  });

  it("a body that never finishes is cut off at the request timeout (1.5 s)", async () => {
    // Answered at once (405: /metrics takes no POST), then the body is awaited, for so long.
    const r = await slowClient(port, (s) => s.write("POST /metrics HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nabc"));
    assert.match(r.received, /^HTTP\/1\.1 405 /);
    assert.ok(r.closedAfterMs >= 1400 && r.closedAfterMs < 4500, `closed after ${r.closedAfterMs} ms`);
  });

  it("an idle keep-alive connection is closed after the idle timeout (1 s)", async () => {
    const r = await slowClient(port, (s) => s.write("GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n"));
    assert.match(r.received, /^HTTP\/1\.1 200 OK\r\n/);
    closedWithin(r);
  });

  it("TESSERA_MAX_CONNECTIONS: beyond it a connection is closed unanswered, counted apart from the main port's", async () => {
    const capped = await startTestServer({ env: { TESSERA_MAX_CONNECTIONS: "2", TESSERA_METRICS_PORT: "0" } });
    const metricsPort = capped.tessera.server.metricsPort!;
    const sockets: net.Socket[] = [];
    /** A connection with one answered scrape, left open. */
    const held = async (to: number, path: string) => {
      const s = net.connect(to, "127.0.0.1");
      s.on("error", () => {});
      sockets.push(s);
      await new Promise<void>((resolve) => s.once("connect", () => resolve()));
      s.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`);
      assert.match(await new Promise<string>((resolve) => s.once("data", (d: Buffer) => resolve(d.toString("latin1")))), /^HTTP\/1\.1 200 /);
    };
    try {
      await held(metricsPort, "/metrics");
      await held(metricsPort, "/metrics");
      const refused = await slowClient(metricsPort, (s) => s.write("GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n"));
      assert.equal(refused.received, "");
      // Not counted, but logged as the main port's are, naming the port.
      const logged = capped.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "connections refused: TESSERA_MAX_CONNECTIONS reached");
      assert.deepEqual(
        logged.map(({ level, port, refused, maxConnections }) => ({ level, port, refused, maxConnections })),
        [{ level: "warn", port: "metrics", refused: 1, maxConnections: 2 }],
      );
      // The main port's two are its own.
      await held(capped.port, "/healthz");
      await held(capped.port, "/healthz");
      // Once one of its two closes, the metrics port serves a new connection.
      sockets.shift()!.destroy();
      let families: Families | undefined;
      for (let i = 0; i < 100 && !families; i++) {
        // Bounded: a connection accepted before the server saw the closed one is closed unanswered,
        // and undici's fetch can wait on it rather than fail.
        families = await scrape(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
        if (!families) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // The refusal above is not one of the main port's.
      assert.equal(value(families!, "tessera_connections_refused_total"), 0);
    } finally {
      for (const s of sockets) s.destroy();
      await capped.close();
    }
  });
});

describe("metrics under HS256: no signing key, no key age", function () {
  this.timeout(30_000);

  it("tessera_signing_key_age_seconds is absent (not 0, a key just made current), and no key is published", async () => {
    const server = await startTestServer({ env: { TESSERA_JWT_ALG: "HS256", TESSERA_JWT_SECRET: "an-hs256-secret-of-32-bytes-or-more" } });
    try {
      const families = await scrape(`${server.url}/metrics`);
      assert.deepEqual(families.filter((f) => f.name === "tessera_signing_key_age_seconds"), []);
      assert.equal(value(families, "tessera_signing_keys_published"), 0);
      family(families, "tessera_signing_keys_published");
    } finally {
      await server.close();
    }
  });
});

describe("metrics under TESSERA_WORKERS=2: one scrape answers every worker's", function () {
  this.timeout(60_000);
  let dataDir: string;
  let child: ReturnType<typeof spawn> | undefined;
  let port = 0;
  let out = "";

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "tessera-metrics-workers-"));
    child = spawn(process.execPath, await entryArgv("compiled"), {
      env: {
        ...process.env,
        MONGODB_URI: "",
        PORT: "0",
        TESSERA_WORKERS: "2",
        TESSERA_DATA_DIR: dataDir,
        TESSERA_LOG_LEVEL: "info",
        TESSERA_ADMIN_TOKEN: testAdminToken,
        TESSERA_CLIENT_IDS: "test-client",
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    const lines = () => out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const deadline = Date.now() + 30_000; ; ) {
      const listening = lines().filter((l) => l.msg === "listening");
      if (listening.length === 2) {
        port = Number(/:(\d+)$/.exec(listening[0]!.url as string)![1]);
        break;
      }
      assert.ok(Date.now() < deadline, `the cluster did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** One request on its own connection, so the cluster may hand it to either worker. */
  const get = (path: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      http
        .get({ host: "127.0.0.1", port, path, agent: false, headers: { connection: "close" } }, (res) => {
          let text = "";
          res.on("data", (c) => (text += c));
          res.on("end", () => resolve({ status: res.statusCode!, text }));
        })
        .on("error", reject);
    });

  it("counts the calls both workers served, and the build once", async () => {
    const n = 40;
    for (let i = 0; i < n; i++) assert.equal((await get("/jwt/version")).status, 200);
    const served = new Set(
      out
        .split("\n")
        .filter((l) => l.includes('"msg":"rpc"') && l.includes("GetVersion"))
        .map((l) => (JSON.parse(l) as { worker: number }).worker),
    );
    assert.deepEqual([...served].sort(), [1, 2], "both workers served calls");
    for (let i = 0; i < 4; i++) {
      const families = await scrape(`http://127.0.0.1:${port}/metrics`);
      assert.equal(value(families, "tessera_rpc_requests_total", { ...noop, protocol: "rest", code: "ok" }), n);
      assert.equal(value(families, "tessera_build_info", { version: packageVersion }), 1);
    }
  });
});

// The event loop delay monitor samples every 100 ms, not prom-client's 10 ms: its timer wakes an
// idle service at every sample. prom-client starts it with perf_hooks.monitorEventLoopDelay as
// the process's default metrics are first made (once per process, shared by every registry), so
// it is watched in a process of its own, where nothing made them before.
describe("metrics: the event loop delay monitor", () => {
  it("is started with a resolution of 100 ms", async () => {
    const script = `
      import perfHooks from "node:perf_hooks";
      const monitor = perfHooks.monitorEventLoopDelay;
      const started = [];
      perfHooks.monitorEventLoopDelay = (options) => (started.push(options), monitor(options));
      const { createMetrics } = await import(${JSON.stringify(new URL("../../src/server/metrics.ts", import.meta.url).href)});
      createMetrics();
      createMetrics();
      console.log(JSON.stringify(started));
      process.exit(0);
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "--eval", script], { timeout: 15_000 });
    assert.deepEqual(JSON.parse(stdout) as unknown, [{ resolution: 100 }], "one monitor for the process, at 100 ms");
  });
});
