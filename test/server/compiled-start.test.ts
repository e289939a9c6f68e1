// `npm start` runs the compiled service: start.cjs lowers the hash threads' priority, loads
// main.bundle.cjs (tsc's output concatenated by scripts/bundle.mjs) with V8's code cache the build
// wrote beside it, and runs it. Tested on a build of the current sources (support/process.ts),
// through real clients: the native addons the bundle leaves to node_modules (argon2's,
// better-sqlite3's) load from it, and the embedded store never loads the MongoDB driver; with MONGODB_URI set, the
// bundle loads the driver from node_modules (README, "Run it") and serves from MongoDB; with
// OTEL_EXPORTER_OTLP_ENDPOINT set, it exports spans (README, "Traces").
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import http from "node:http";
import { dirname, join } from "node:path";
import { MongoClient } from "mongodb";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { packageVersion } from "../../src/project-files.js";
import { bearer, GrpcJsClient, rest } from "../support/clients.js";
import { compiledEntry, killService, startService, type ServiceProcess } from "../support/process.js";

describe("server: the compiled start (npm start's entry)", function () {
  this.timeout(90000);
  let dir: string;
  let service: ServiceProcess | undefined;
  let base: string;
  let stderr = "";
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tessera-compiled-"));
    // Preloaded: at exit, reports whether the MongoDB driver was ever loaded, and which JavaScript
    // was loaded from node_modules rather than the bundle (it touches no pool).
    const probe = join(dir, "modules-probe.cjs");
    writeFileSync(
      probe,
      `process.on("exit", () => { const files = Object.keys(require.cache); process.stderr.write("\\nmodules: " + JSON.stringify({ mongodb: files.some((f) => f.includes("/node_modules/mongodb/")) }) + "\\nscripts from node_modules: " + JSON.stringify(files.filter((f) => f.includes("/node_modules/") && /\\.[cm]?js$/.test(f))) + "\\n"); });`,
    );
    service = await startService("compiled", { TESSERA_WORKERS: "1", TESSERA_DATA_DIR: join(dir, "data"), TESSERA_HASH_NICE: "" }, { nodeArgs: ["--require", probe] });
    service.child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    base = `http://127.0.0.1:${service.port}`;
  });
  after(async () => {
    await killService(service);
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts from the bundle with the build's code cache, its hashing threads at nice 19, V8's interrupt budget lowered once listening", () => {
    const lines = service!.lines();
    const listening = lines.find((l) => l.msg === "listening");
    assert.equal(listening?.codeCache, "accepted");
    assert.equal(listening?.interruptBudget, 8192);
    assert.deepEqual(
      lines.filter((l) => l.msg === "password hashing threads").map((l) => l.nice),
      [19],
    );
  });

  it("serves REST and gRPC: a user is created (argon2id), logs in (signing), the version is Tessera's", async () => {
    assert.equal((await rest(base, "GET", "/healthz")).status, 200);
    const created = await rest(base, "POST", "/jwt/user", { json: { user: "compiled-start", pass: "a long enough passphrase" } });
    assert.equal(created.status, 201);
    const token = await rest(base, "GET", `/jwt/token?user=compiled-start&pass=${encodeURIComponent("a long enough passphrase")}`);
    assert.equal(token.status, 200);
    const me = await rest(base, "GET", "/jwt/user", { headers: bearer(token.text) });
    assert.equal(me.status, 200);
    const grpc = new GrpcJsClient(JwtService, base);
    try {
      const answer = await grpc.call("GetVersion");
      assert.equal(answer.error, undefined);
      assert.equal(answer.message.version, packageVersion);
    } finally {
      grpc.close();
    }
  });

  it("stops on SIGTERM with exit 0, never having loaded the MongoDB driver, nor any script from node_modules (argon2's and better-sqlite3's are in the bundle, their addons only from node_modules)", async () => {
    service!.child.kill("SIGTERM");
    assert.equal(await service!.exited, 0);
    assert.match(stderr, /modules: \{"mongodb":false\}/);
    assert.match(stderr, /scripts from node_modules: \[\]\n/);
  });
});

describe("server: the compiled start on MongoDB (MONGODB_URI set)", function () {
  this.timeout(90000);
  const uri = process.env.MONGODB_URI;
  // Short: FerretDB on PostgreSQL limits database name length.
  const database = `tessera_test_${randomBytes(4).toString("hex")}_compiled`;
  let dir: string;
  let service: ServiceProcess | undefined;
  before(function () {
    if (!uri) {
      if (process.env.CI === "true") throw new Error("CI=true but MONGODB_URI is unset");
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), "tessera-compiled-mongo-"));
  });
  after(async () => {
    await killService(service);
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (uri) {
      const client = new MongoClient(uri);
      try {
        await client.db(database).dropDatabase();
      } finally {
        await client.close();
      }
    }
  });

  let stderr = "";
  it("starts from the bundle with its code cache, loads the driver and serves a sign-up and a login from MongoDB", async () => {
    // Preloaded: at exit, reports whether the embedded store's driver (better-sqlite3) was ever loaded.
    const probe = join(dir, "modules-probe.cjs");
    writeFileSync(
      probe,
      `process.on("exit", () => process.stderr.write("\\nmodules: " + JSON.stringify({ betterSqlite3: Object.keys(require.cache).some((f) => f.includes("/node_modules/better-sqlite3/")) }) + "\\n"));`,
    );
    service = await startService("compiled", { TESSERA_WORKERS: "1", TESSERA_DATA_DIR: join(dir, "data"), TESSERA_HASH_NICE: "", MONGODB_URI: uri!, TESSERA_MONGODB_DATABASE: database }, { nodeArgs: ["--require", probe] });
    service.child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const lines = service.lines();
    assert.equal(lines.find((l) => l.msg === "listening")?.codeCache, "accepted");
    assert.equal(lines.find((l) => l.msg === "store")?.kind, "mongodb");
    const base = `http://127.0.0.1:${service.port}`;
    const created = await rest(base, "POST", "/jwt/user", { json: { user: "compiled-mongo", pass: "a long enough passphrase" } });
    assert.equal(created.status, 201);
    const token = await rest(base, "GET", `/jwt/token?user=compiled-mongo&pass=${encodeURIComponent("a long enough passphrase")}`);
    assert.equal(token.status, 200);
    const client = new MongoClient(uri!);
    try {
      assert.equal(await client.db(database).collection("users").countDocuments({ login: "compiled-mongo" }), 1);
    } finally {
      await client.close();
    }
  });

  it("stops on SIGTERM with exit 0, never having loaded the embedded store's better-sqlite3", async () => {
    service!.child.kill("SIGTERM");
    assert.equal(await service!.exited, 0);
    assert.match(stderr, /modules: \{"betterSqlite3":false\}/);
  });
});

describe("server: the compiled start's bundles", function () {
  this.timeout(90000);

  it("the OpenTelemetry SDK is in otel.bundle.cjs only, loaded with tracing; the service's bundle holds the one @opentelemetry/api", async () => {
    const src = dirname(await compiledEntry());
    const read = (name: string) => readFileSync(join(src, name), "latin1");
    // esbuild names each module it bundles by its path in a comment.
    const packages = (code: string) => [...new Set(code.match(/node_modules\/@opentelemetry\/[a-z-]+\//g))].sort();
    const main = packages(read("main.bundle.cjs"));
    const otel = packages(read("otel.bundle.cjs"));
    assert.deepEqual(main, ["node_modules/@opentelemetry/api/"]);
    assert.ok(otel.includes("node_modules/@opentelemetry/sdk-trace/"), otel.join());
    assert.ok(otel.includes("node_modules/@opentelemetry/exporter-trace-otlp-http/"), otel.join());
    assert.ok(!otel.includes("node_modules/@opentelemetry/api/"), otel.join());
  });
});

describe("server: the compiled start exports spans (OTEL_EXPORTER_OTLP_ENDPOINT set)", function () {
  this.timeout(90000);
  let dir: string;
  let collector: http.Server;
  let service: ServiceProcess | undefined;
  const received: string[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tessera-compiled-otlp-"));
    collector = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        received.push(`${req.method} ${req.url} ${body}`);
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
      });
    });
    await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
  });
  after(async () => {
    await killService(service);
    await new Promise<void>((r) => collector.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("a call's span reaches the collector (flushed on SIGTERM)", async () => {
    const endpoint = `http://127.0.0.1:${(collector.address() as { port: number }).port}`;
    service = await startService("compiled", { TESSERA_WORKERS: "1", TESSERA_DATA_DIR: join(dir, "data"), TESSERA_HASH_NICE: "", OTEL_EXPORTER_OTLP_ENDPOINT: endpoint });
    assert.equal(service.lines().find((l) => l.msg === "listening")?.codeCache, "accepted");
    const version = await rest(`http://127.0.0.1:${service.port}`, "GET", "/jwt/version");
    assert.equal(version.status, 200);
    service.child.kill("SIGTERM");
    assert.equal(await service.exited, 0);
    const exported = received.filter((r) => r.startsWith("POST /v1/traces ") && r.includes('"tessera.jwt.v1.JwtService/GetVersion"'));
    assert.equal(exported.length, 1, `received: ${JSON.stringify(received)}`);
  });
});
