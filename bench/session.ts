// Seed 000 figures: GetSession requests/s over gRPC as a ratio of the no-op baseline (health
// Check over gRPC, same run, same server), CreateSession requests/s as a ratio of raw argon2id
// verifications/s at the server's parameters (measured in this process, same run), and the
// server's RSS under load. Run: `npx tsx bench/session.ts` (BENCH_QUICK=1 for short runs).
import { create, toBinary } from "@bufbuild/protobuf";
import argon2 from "argon2";
import { HealthCheckRequestSchema } from "../gen/health/v1/health_pb.js";
import { CreateSessionRequestSchema, GetSessionRequestSchema } from "../gen/tessera/session/v1/session_pb.js";
import { benchClientId, durations, formatResult, grpcUnary, httpCall, load, startServerProcess, type LoadResult, argonConcurrency, argonParams, loginBenchEnv } from "./lib.js";

const email = "bench@example.com";
const password = "violet-kettle-harbour-29";

const server = await startServerProcess(loginBenchEnv);
const rss: Array<[string, number]> = [["start", server.rssMiB()]];
try {
  const headers = { "content-type": "application/json", "x-koms-clientid": benchClientId };
  await httpCall(server.url, { method: "POST", path: "/user", headers, body: JSON.stringify({ email, password }) })();
  const session = JSON.parse(
    await httpCall(server.url, { method: "POST", path: "/session", headers, body: JSON.stringify({ account_type: "traditional", email, password }) })(),
  ) as { access_token: string };

  const results: LoadResult[] = [];
  const run = async (name: string, concurrency: number, call: () => Promise<unknown>) => {
    const r = await load(name, { concurrency, ...durations }, async () => {
      await call();
    });
    rss.push([name, server.rssMiB()]);
    results.push(r);
    return r;
  };

  const health = grpcUnary(server.url, "/grpc.health.v1.Health/Check", toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema)));
  const baseline = await run("baseline: gRPC Health/Check", 32, health.call);
  health.close();

  const get = grpcUnary(server.url, "/tessera.session.v1.SessionService/GetSession", toBinary(GetSessionRequestSchema, create(GetSessionRequestSchema)), {
    "x-koms-clientid": benchClientId,
    authorization: `Bearer ${session.access_token}`,
  });
  const getSession = await run("gRPC GetSession", 32, get.call);
  get.close();

  // The machine may be shared: interleave short rounds of both, so both see the same load.
  const hash = await argon2.hash(password, { type: argon2.argon2id, ...argonParams });
  const login = grpcUnary(
    server.url,
    "/tessera.session.v1.SessionService/CreateSession",
    toBinary(CreateSessionRequestSchema, create(CreateSessionRequestSchema, { accountType: "traditional", email, password })),
    { "x-koms-clientid": benchClientId },
  );
  const rawName = `raw argon2id verify (${argonParams.memoryCost} KiB, t=${argonParams.timeCost}, p=${argonParams.parallelism})`;
  const rounds = 3;
  const rawRounds: LoadResult[] = [];
  const createRounds: LoadResult[] = [];
  const round = { durationMs: durations.durationMs / rounds, warmupMs: durations.warmupMs / rounds };
  for (let i = 0; i < rounds; i++) {
    rawRounds.push(
      await load(rawName, { concurrency: argonConcurrency, ...round }, async () => {
        if (!(await argon2.verify(hash, password))) throw new Error("verify failed");
      }),
    );
    createRounds.push(await load("gRPC CreateSession", { concurrency: argonConcurrency, ...round }, async () => void (await login.call())));
    rss.push([`CreateSession round ${i + 1}`, server.rssMiB()]);
  }
  login.close();
  const combine = (rs: LoadResult[]): LoadResult => ({
    ...rs[0],
    requests: rs.reduce((a, r) => a + r.requests, 0),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    rps: rs.reduce((a, r) => a + r.rps, 0) / rs.length,
    p50Ms: rs.map((r) => r.p50Ms).sort((a, b) => a - b)[Math.floor(rs.length / 2)],
    p99Ms: Math.max(...rs.map((r) => r.p99Ms)),
  });
  const raw = combine(rawRounds);
  const createSession = combine(createRounds);

  console.log(formatResult(baseline));
  console.log(formatResult(getSession, baseline));
  console.log(formatResult(raw));
  console.log(formatResult(createSession, raw));
  console.log(`GetSession / baseline:        ${(getSession.rps / baseline.rps).toFixed(2)}  (target >= 0.6)`);
  console.log(`CreateSession / raw argon2id: ${(createSession.rps / raw.rps).toFixed(2)}  (target >= 0.9)`);
  console.log(`server RSS (MiB): ${rss.map(([k, v]) => `${k}: ${v.toFixed(1)}`).join(", ")}`);
} finally {
  await server.stop();
}
