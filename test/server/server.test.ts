// The foundation through real clients: one port for gRPC (@grpc/grpc-js), Connect, gRPC-Web
// and plain HTTP; health and reflection; logs.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { entryArgv } from "../support/process.js";
import { promisify } from "node:util";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { connectClient, connectGrpcClient, GrpcJsClient, grpcWebClient } from "../support/clients.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { Code, ConnectError } from "@connectrpc/connect";

const run = promisify(execFile);

describe("server: one port for every protocol", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.close();
  });

  it("answers a @grpc/grpc-js client (gRPC over h2c)", async () => {
    const client = new GrpcJsClient(Health, server.url);
    try {
      const res = await client.call("Check", { service: "" });
      assert.equal(res.error, undefined);
      assert.equal(res.message?.status, Status.SERVING);
    } finally {
      client.close();
    }
  });

  it("answers Connect over HTTP/1.1 (JSON and binary) and HTTP/2, gRPC-Web and connect-node gRPC on the same port", async () => {
    for (const client of [
      connectClient(Health, server.url),
      connectClient(Health, server.url, { binary: true }),
      connectClient(Health, server.url, { http2: true }),
      grpcWebClient(Health, server.url),
      connectGrpcClient(Health, server.url),
    ]) {
      const res = await client.check({ service: "tessera.session.v1.SessionService" });
      assert.equal(res.status, Status.SERVING);
    }
  });

  it("answers plain HTTP: GET /healthz and GET /readyz", async () => {
    const live = await fetch(`${server.url}/healthz`);
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { status: "SERVING" });
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: "SERVING" });
    const post = await fetch(`${server.url}/healthz`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
  });

  it("health answers NOT_FOUND for an unknown service", async () => {
    await assert.rejects(connectClient(Health, server.url).check({ service: "no.such.Service" }), (e: unknown) => {
      assert.ok(e instanceof ConnectError);
      assert.equal(e.code, Code.NotFound);
      return true;
    });
  });

  // The name is quoted back up to 256 characters: whole, an unknown name of 20000 made trailers
  // (grpc-message, and grpc-status-details-bin with it) larger than a client takes, and grpc-js
  // answered INTERNAL "Received RST_STREAM with code 6".
  it("health answers NOT_FOUND for an unknown service name of 20000 characters, the name cut to 256 in the message", async () => {
    const service = "\u00e9".repeat(20_000);
    const message = `unknown service ${"\u00e9".repeat(256)}... (20000 characters)`;
    const client = new GrpcJsClient(Health, server.url);
    try {
      const { error } = await client.call("Check", { service });
      assert.deepEqual([error?.code, error?.details], [Code.NotFound, message]);
    } finally {
      client.close();
    }
    await assert.rejects(connectClient(Health, server.url).check({ service }), (e: unknown) => {
      assert.ok(e instanceof ConnectError);
      assert.deepEqual([e.code, e.rawMessage], [Code.NotFound, message]);
      return true;
    });
  });

  it("enforces the access option before any handler: no client id is UNAUTHENTICATED over gRPC", async () => {
    const client = new GrpcJsClient(SessionService, server.url);
    try {
      const res = await client.call("GetSession", {});
      assert.equal(res.error?.code, 16); // UNAUTHENTICATED
      assert.match(res.error?.details ?? "", /x-koms-clientid/);
    } finally {
      client.close();
    }
  });

  it("buf curl lists the services by reflection (v1) and calls the health check", async () => {
    const buf = "node_modules/.bin/buf";
    const list = await run(buf, ["curl", "--http2-prior-knowledge", "--list-services", server.url]);
    const services = list.stdout.trim().split("\n");
    for (const s of [
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "tessera.session.v1.SessionService",
      "tessera.session.v1.UserService",
      "tessera.apitoken.v1.ApiTokenService",
      "tessera.usertoken.v1.UserTokenService",
      "tessera.authtoken.v1.AuthenticationTokenService",
      "tessera.jwt.v1.JwtService",
      "tessera.key.v1.KeyService",
    ]) {
      assert.ok(services.includes(s), `${s} listed`);
    }
    const check = await run(buf, ["curl", "--http2-prior-knowledge", "--protocol", "grpc", `${server.url}/grpc.health.v1.Health/Check`, "-d", "{}"]);
    assert.deepEqual(JSON.parse(check.stdout), { status: "SERVING" });
  });

  it("buf curl works with reflection v1alpha too, and describes Tessera methods", async () => {
    const buf = "node_modules/.bin/buf";
    const methods = await run(buf, ["curl", "--http2-prior-knowledge", "--reflect-protocol", "grpc-v1alpha", "--list-methods", server.url]);
    assert.match(methods.stdout, /^tessera\.session\.v1\.SessionService\/CreateSession$/m);
    assert.match(methods.stdout, /^tessera\.jwt\.v1\.JwtService\/Check$/m);
  });

  it("logs one JSON line per call with procedure, protocol, code and duration, and no credentials", async () => {
    const before = server.logs.length;
    const secret = "Bearer this-is-a-secret-token-value";
    await fetch(`${server.url}/tessera.session.v1.SessionService/GetSession`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: secret, "x-koms-clientid": testClientId },
      body: "{}",
    });
    const lines = server.logs.slice(before).map((l) => JSON.parse(l));
    const rpc = lines.find((l) => l.msg === "rpc" && l.procedure === "tessera.session.v1.SessionService/GetSession");
    assert.ok(rpc, "a request line was logged");
    assert.equal(rpc.protocol, "connect");
    assert.equal(typeof rpc.code, "string");
    assert.equal(typeof rpc.durationMs, "number");
    assert.ok(!server.logs.join("").includes("this-is-a-secret-token-value"));
  });
});

describe("server: a data directory that cannot be made stops the start with one clear line", () => {
  it("TESSERA_DATA_DIR under /proc (mkdir answers ENOENT with the parent there) -> exit 1 naming it, no spin", async function () {
    this.timeout(30000);
    // Node 20's recursive mkdir retries such a path forever on the event loop (100% CPU, deaf to SIGTERM).
    const r = await run(process.execPath, await entryArgv("compiled"), {
      env: { ...process.env, MONGODB_URI: "", TESSERA_WORKERS: "1", TESSERA_CLIENT_IDS: "web", TESSERA_ADMIN_TOKEN: "change-me-0123456789", TESSERA_DATA_DIR: "/proc/tessera-data" },
      timeout: 20000,
      killSignal: "SIGKILL",
    }).then(
      () => ({ code: 0 as number | null, stderr: "" }),
      (e: { code: number | null; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^tessera: failed to start: TESSERA_DATA_DIR: cannot create the directory \/proc\/tessera-data \(ENOENT\)$/m);
  });
});

describe("server: configuration errors stop the process with one clear line", () => {
  const start = async (env: Record<string, string>) =>
    run(process.execPath, await entryArgv("compiled"), { env: { ...process.env, MONGODB_URI: "", ...env }, timeout: 20000 }).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );

  for (const [env, expected] of [
    [{ PORT: "eighty" }, /PORT: must be a whole number/],
    [{ PORT: "70000" }, /PORT: must be between 0 and 65535/],
    [{ TESSERA_JWT_ALG: "RS1" }, /TESSERA_JWT_ALG: must be one of EdDSA, ES256, HS256/],
    [{ TESSERA_JWT_ALG: "HS256" }, /TESSERA_JWT_SECRET: required when TESSERA_JWT_ALG=HS256/],
    [{ TESSERA_ADMIN_TOKEN: "short" }, /TESSERA_ADMIN_TOKEN: must be at least 16 bytes/],
    [{ MONGODB_URI: "postgres://x" }, /MONGODB_URI: must be a mongodb:\/\//],
    [
      { MONGODB_URI: "mongodb://127.0.0.1:1/alpha", TESSERA_MONGODB_DATABASE: "beta" },
      /^tessera: configuration error: MONGODB_URI and TESSERA_MONGODB_DATABASE: the URI names the database "alpha", the variable "beta"/,
    ],
    [{ NODE_ENV: "production" }, /TESSERA_KEY_ENCRYPTION_KEY: required when NODE_ENV=production/],
    [{ TESSERA_TRUSTED_PROXIES: "10.0.0.0/8, 10.0.0.0/33" }, /TESSERA_TRUSTED_PROXIES: "10\.0\.0\.0\/33": the prefix length must be 0 to 32/],
    [{ TESSERA_TRUSTED_PROXIES: "proxy.internal" }, /TESSERA_TRUSTED_PROXIES: "proxy\.internal" is not an IP address or CIDR/],
    [{ TESSERA_TRUSTED_PROXIES: "::ffff:10.0.0.0/80" }, /^tessera: configuration error: TESSERA_TRUSTED_PROXIES: "::ffff:10\.0\.0\.0\/80": the prefix length of an IPv4-mapped address must be 96 to 128$/],
    // A /0 trusts every address: any client names its own in X-Forwarded-For (and so its login-limit window).
    [{ TESSERA_TRUSTED_PROXIES: "10.0.0.1, 0.0.0.0/0" }, /^tessera: configuration error: TESSERA_TRUSTED_PROXIES: "0\.0\.0\.0\/0" trusts every address, so any client could name its own address; list the proxies' addresses or subnets$/],
    [{ TESSERA_TRUSTED_PROXIES: "::/0" }, /^tessera: configuration error: TESSERA_TRUSTED_PROXIES: "::\/0" trusts every address, so any client could name its own address; list the proxies' addresses or subnets$/],
    // An IPv4-mapped /96 is the IPv4 /0: every IPv4 client (and every mapped one) trusted alike.
    [{ TESSERA_TRUSTED_PROXIES: "::ffff:0.0.0.0/96" }, /^tessera: configuration error: TESSERA_TRUSTED_PROXIES: "::ffff:0\.0\.0\.0\/96" trusts every address, so any client could name its own address; list the proxies' addresses or subnets$/],
    [{ TESSERA_REQUEST_TIMEOUT_MS: "3000" }, /TESSERA_HEADERS_TIMEOUT_MS and TESSERA_REQUEST_TIMEOUT_MS: the headers timeout \(10000 ms\) cannot exceed the request timeout \(3000 ms\)/],
    [{ TESSERA_CORS_ORIGINS: "https://app.example.com, app.example.com" }, /^tessera: configuration error: TESSERA_CORS_ORIGINS: "app\.example\.com" is not a web origin \(scheme:\/\/host\[:port\], as a browser sends it\) or \*$/],
    [{ TESSERA_CORS_ORIGINS: "https://app.example.com/login" }, /^tessera: configuration error: TESSERA_CORS_ORIGINS: "https:\/\/app\.example\.com\/login" is not a web origin/],
    [{ HOST: "::ffff:zz" }, /^tessera: configuration error: HOST: must be an IP address or a host name, got "::ffff:zz"$/],
    [{ PORT: "18080", TESSERA_METRICS_PORT: "18080" }, /^tessera: configuration error: TESSERA_METRICS_PORT: must differ from PORT \(18080\), which serves the API$/],
    [
      { MONGODB_URI: "mongodb://127.0.0.1:1/", TESSERA_MONGODB_DATABASE: "a/b" },
      /^tessera: configuration error: TESSERA_MONGODB_DATABASE: must be a MongoDB database name \(1 to 63 bytes, none of \/ \\ \. " \$, a space or a control character\), got "a\/b"$/,
    ],
    // Booleans are documented as on/off (TESSERA_METRICS, TESSERA_AUDIT) or true/false: the message names both.
    [{ TESSERA_METRICS: "maybe" }, /^tessera: configuration error: TESSERA_METRICS: must be true or false \(on or off\), got "maybe"$/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }, /^tessera: configuration error: OTEL_EXPORTER_OTLP_ENDPOINT: must be an http or https URL, got "collector:4318"$/],
  ] as const) {
    it(`${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")} -> exit 2`, async () => {
      const r = await start(env);
      assert.equal(r.code, 2);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], expected);
      assert.ok(!r.stderr.includes("short"), "a secret value is not echoed");
    });
  }
});
