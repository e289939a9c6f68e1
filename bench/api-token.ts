/**
 * ApiTokenService.Authenticate, the platform's hot path, against the no-op baseline of the same
 * run, on the embedded store and (when MONGODB_URI is set) on MongoDB/FerretDB.
 *
 *     npx tsx bench/api-token.ts              # BENCH_QUICK=1 for short runs
 *     MONGODB_URI=mongodb://127.0.0.1:27017 npx tsx bench/api-token.ts
 *
 * Per store, in one server process (a child, so the load generator does not share its event
 * loop): gRPC Health/Check and a Connect JSON no-op as baselines (GET /healthz as the HTTP floor), then Authenticate over gRPC
 * (@grpc/grpc-js, bearer metadata) and over REST (`GET /v1/api/auth`), each with one hot token
 * and with 1000 tokens in rotation (more than the cache keeps warm at these rates: mostly store
 * lookups). REST also runs GET /.well-known/jwks.json as a reference: an in-memory RPC through
 * the same transcoder and interceptors, which /healthz bypasses. Each group runs interleaved,
 * twice; figures are means.
 * Prints requests/s, p50/p99, errors, the ratio to the baseline, and server RSS. Never fails on
 * a time: the target (>= 0.7 of baseline on the embedded store) is printed, not asserted.
 */
import { randomBytes } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { MongoClient } from "mongodb";
import { HealthCheckRequestSchema } from "../gen/health/v1/health_pb.js";
import { AuthenticateRequestSchema } from "../gen/tessera/apitoken/v1/api_token_pb.js";
import { benchAdminToken, durations, formatResult, grpcUnary, httpCall, load, startServerProcess, type BenchServer, type LoadResult } from "./lib.js";

const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
const TOKENS = 1000;

async function createTokens(server: BenchServer, count: number): Promise<string[]> {
  const create = httpCall(server.url, {
    method: "POST",
    path: "/v1/frontend/auth",
    headers: { "content-type": "application/json", authorization: `Bearer ${benchAdminToken}` },
    body: JSON.stringify({ account_id: "GATEWAY_ACCOUNT_1", description: "bench" }),
  });
  const tokens: string[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, count - i) }, () => create()));
    tokens.push(...batch.map((text) => (JSON.parse(text) as { token: string }).token));
  }
  return tokens;
}

/** Mean of `runs` results (requests/s and percentiles averaged; errors summed). */
function mean(name: string, runs: LoadResult[]): LoadResult {
  const avg = (f: (r: LoadResult) => number) => runs.reduce((s, r) => s + f(r), 0) / runs.length;
  return {
    name,
    requests: runs.reduce((s, r) => s + r.requests, 0),
    errors: runs.reduce((s, r) => s + r.errors, 0),
    rps: avg((r) => r.rps),
    p50Ms: avg((r) => r.p50Ms),
    p99Ms: avg((r) => r.p99Ms),
  };
}

interface Scenario {
  name: string;
  run: () => Promise<void>;
}

/** Runs the scenarios interleaved, `rounds` times; returns the mean of each. */
async function interleaved(scenarios: Scenario[], rounds = 2): Promise<LoadResult[]> {
  const results = scenarios.map(() => [] as LoadResult[]);
  for (let r = 0; r < rounds; r++) {
    for (const [i, s] of scenarios.entries()) results[i].push(await load(s.name, { concurrency, ...durations }, s.run));
  }
  return scenarios.map((s, i) => mean(s.name, results[i]));
}

async function benchStore(label: string, env: Record<string, string>): Promise<void> {
  const server = await startServerProcess(env);
  try {
    const rssStart = server.rssMiB();
    const tokens = await createTokens(server, TOKENS);
    const hot = tokens[0];
    let next = 0;
    const rotating = () => tokens[next++ % tokens.length];

    const health = grpcUnary(server.url, "/grpc.health.v1.Health/Check", toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema)));
    const authRequest = toBinary(AuthenticateRequestSchema, create(AuthenticateRequestSchema));
    const authHot = grpcUnary(server.url, "/tessera.apitoken.v1.ApiTokenService/Authenticate", authRequest, { authorization: `Bearer ${hot}` });
    const grpcRotating = grpcRotatingClient(server.url, authRequest);

    // The foundation's HTTP/JSON baseline: a no-op RPC over Connect JSON (bench/baseline.ts).
    const connectNoop = httpCall(server.url, { method: "POST", path: "/tessera.jwt.v1.JwtService/GetVersion", headers: { "content-type": "application/json" }, body: "{}" });
    const healthz = httpCall(server.url, { path: "/healthz" });
    // A reference: a public, in-memory RPC through the same transcoder and interceptors as
    // GET /v1/api/auth (/healthz bypasses both).
    const jwks = httpCall(server.url, { path: "/.well-known/jwks.json" });
    const restHot = httpCall(server.url, { path: "/v1/api/auth", headers: { accept: "application/json", authorization: `Bearer ${hot}` } });
    const restCalls = new Map<string, () => Promise<string>>();
    const restRotating = () => {
      const t = rotating();
      let c = restCalls.get(t);
      if (!c) restCalls.set(t, (c = httpCall(server.url, { path: "/v1/api/auth", headers: { accept: "application/json", authorization: `Bearer ${t}` } })));
      return c().then(() => undefined);
    };

    // Sanity: both forms answer the account before any timing.
    const check = JSON.parse(await restHot()) as { account_id: string };
    if (check.account_id !== "GATEWAY_ACCOUNT_1") throw new Error(`unexpected Authenticate answer ${JSON.stringify(check)}`);
    await authHot.call();

    const grpcResults = await interleaved([
      { name: `${label} baseline gRPC Health/Check`, run: () => health.call().then(() => undefined) },
      { name: `${label} gRPC Authenticate (1 hot token)`, run: () => authHot.call().then(() => undefined) },
      { name: `${label} gRPC Authenticate (${TOKENS} tokens)`, run: () => grpcRotating.call(rotating()) },
    ]);
    const restResults = await interleaved([
      { name: `${label} baseline Connect JSON no-op`, run: () => connectNoop().then(() => undefined) },
      { name: `${label} floor GET /healthz`, run: () => healthz().then(() => undefined) },
      { name: `${label} ref GET /.well-known/jwks.json`, run: () => jwks().then(() => undefined) },
      { name: `${label} GET /v1/api/auth (1 hot token)`, run: () => restHot().then(() => undefined) },
      { name: `${label} GET /v1/api/auth (${TOKENS} tokens)`, run: restRotating },
    ]);
    health.close();
    authHot.close();
    grpcRotating.close();

    console.log(`\n== ${label} (concurrency ${concurrency}, ${durations.durationMs / 1000}s x2 per scenario) ==`);
    const [grpcBaseline, ...grpcAuth] = grpcResults;
    console.log(formatResult(grpcBaseline));
    for (const r of grpcAuth) console.log(formatResult(r, grpcBaseline));
    const [restBaseline, floor, restRef, ...restAuth] = restResults;
    console.log(formatResult(restBaseline));
    console.log(formatResult(floor, restBaseline));
    console.log(formatResult(restRef, restBaseline));
    for (const r of restAuth) {
      console.log(`${formatResult(r, restBaseline)}; ${(r.rps / restRef.rps).toFixed(2)} of the jwks reference; ${(r.rps / floor.rps).toFixed(2)} of /healthz`);
    }
    console.log(`server RSS: ${rssStart.toFixed(1)} MiB at start, ${server.rssMiB().toFixed(1)} MiB after load`);
  } finally {
    await server.stop();
  }
}

/** gRPC Authenticate through one channel with the token chosen per call. */
function grpcRotatingClient(url: string, request: Uint8Array): { call(token: string): Promise<void>; close(): void } {
  const clients = new Map<string, ReturnType<typeof grpcUnary>>();
  // grpcUnary binds its metadata at creation: one client per token. grpc-js shares the
  // underlying connection (subchannel) between clients of the same target and options.
  return {
    async call(token) {
      let c = clients.get(token);
      if (!c) clients.set(token, (c = grpcUnary(url, "/tessera.apitoken.v1.ApiTokenService/Authenticate", request, { authorization: `Bearer ${token}` })));
      await c.call();
    },
    close() {
      for (const c of clients.values()) c.close();
    },
  };
}

await benchStore("sqlite", {});
if (process.env.MONGODB_URI) {
  const dbName = `tessera_bench_${randomBytes(4).toString("hex")}`;
  try {
    await benchStore("mongo", { MONGODB_URI: process.env.MONGODB_URI, TESSERA_MONGODB_DATABASE: dbName });
  } finally {
    const client = await MongoClient.connect(process.env.MONGODB_URI, { serverSelectionTimeoutMS: 2000 });
    await client.db(dbName).dropDatabase();
    await client.close();
  }
} else {
  console.log("\n(MONGODB_URI unset: MongoDB figures skipped)");
}
