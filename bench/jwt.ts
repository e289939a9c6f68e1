// Seed 004 figures: `GET /jwt/check` (REST) and JwtService/Check (gRPC) requests/s as a ratio of
// the no-op baseline on the same path (GET /healthz, gRPC Health/Check; same run, same server),
// and GetToken with a password as a ratio of raw argon2id verifications/s at the server's
// parameters (measured in this process, same run). Run: `npx tsx bench/jwt.ts`
// (BENCH_QUICK=1 for short runs).
import { create, toBinary } from "@bufbuild/protobuf";
import argon2 from "argon2";
import { HealthCheckRequestSchema } from "../gen/health/v1/health_pb.js";
import { CheckRequestSchema, GetTokenRequestSchema } from "../gen/tessera/jwt/v1/jwt_pb.js";
import { durations, formatResult, grpcUnary, httpCall, load, startServerProcess, type LoadResult, argonConcurrency, argonParams, loginBenchEnv } from "./lib.js";

const user = "bench-user";
const password = "violet-kettle-harbour-29";
const concurrency = 32;

const server = await startServerProcess(loginBenchEnv);
try {
  const json = { "content-type": "application/json" };
  await httpCall(server.url, { method: "POST", path: "/jwt/user", headers: json, body: JSON.stringify({ user, pass: password }) })();
  const query = new URLSearchParams({ user, pass: password }).toString();
  const accessToken = await httpCall(server.url, { path: `/jwt/token?${query}` })();

  const results: LoadResult[] = [];
  const run = async (name: string, n: number, call: () => Promise<unknown>) => {
    const r = await load(name, { concurrency: n, ...durations }, async () => {
      await call();
    });
    results.push(r);
    return r;
  };

  const restBaseline = await run("baseline: GET /healthz", concurrency, httpCall(server.url, { path: "/healthz" }));
  // The transcoded no-op: the same REST -> Connect pipeline as /jwt/check, without a token. It
  // separates the pipeline's cost from Check's own (signature, user lookup, claims).
  const restNoop = await run("GET /jwt/version (transcoded no-op)", concurrency, httpCall(server.url, { path: "/jwt/version" }));
  const restCheck = await run("GET /jwt/check", concurrency, httpCall(server.url, { path: `/jwt/check?access_token=${accessToken}` }));
  // The foundation's HTTP/JSON baseline: a no-op RPC over Connect JSON (bench/baseline.ts).
  const connectNoop = await run(
    "baseline: Connect JSON no-op (GetVersion)",
    concurrency,
    httpCall(server.url, { method: "POST", path: "/tessera.jwt.v1.JwtService/GetVersion", headers: json, body: "{}" }),
  );

  const health = grpcUnary(server.url, "/grpc.health.v1.Health/Check", toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema)));
  const grpcBaseline = await run("baseline: gRPC Health/Check", concurrency, health.call);
  health.close();
  const check = grpcUnary(server.url, "/tessera.jwt.v1.JwtService/Check", toBinary(CheckRequestSchema, create(CheckRequestSchema, { accessToken })));
  const grpcCheck = await run("gRPC JwtService/Check", concurrency, check.call);
  check.close();

  const hash = await argon2.hash(password, { type: argon2.argon2id, ...argonParams });
  const raw = await run(`raw argon2id verify (${argonParams.memoryCost} KiB, t=${argonParams.timeCost}, p=${argonParams.parallelism})`, argonConcurrency, async () => {
    if (!(await argon2.verify(hash, password))) throw new Error("verify failed");
  });
  const restToken = await run("GET /jwt/token (password)", argonConcurrency, httpCall(server.url, { path: `/jwt/token?${query}` }));
  const login = grpcUnary(
    server.url,
    "/tessera.jwt.v1.JwtService/GetToken",
    toBinary(GetTokenRequestSchema, create(GetTokenRequestSchema, { user, pass: password })),
  );
  const grpcToken = await run("gRPC JwtService/GetToken (password)", argonConcurrency, login.call);
  login.close();

  console.log(formatResult(restBaseline));
  console.log(formatResult(restNoop, restBaseline));
  console.log(formatResult(connectNoop));
  console.log(formatResult(restCheck, connectNoop));
  console.log(formatResult(grpcBaseline));
  console.log(formatResult(grpcCheck, grpcBaseline));
  console.log(formatResult(raw));
  console.log(formatResult(restToken, raw));
  console.log(formatResult(grpcToken, raw));
  console.log(`GET /jwt/check / Connect JSON no-op:  ${(restCheck.rps / connectNoop.rps).toFixed(2)}  (target >= 0.7)`);
  console.log(`GET /jwt/check / GET /jwt/version:     ${(restCheck.rps / restNoop.rps).toFixed(2)}  (stricter: the REST no-op)`);
  console.log(`GET /jwt/check / GET /healthz:        ${(restCheck.rps / restBaseline.rps).toFixed(2)}  (the HTTP floor, no RPC at all)`);
  console.log(`gRPC Check / gRPC Health/Check:       ${(grpcCheck.rps / grpcBaseline.rps).toFixed(2)}  (target >= 0.7)`);
  console.log(`GET /jwt/token / raw argon2id:        ${(restToken.rps / raw.rps).toFixed(2)}  (target >= 0.9)`);
  console.log(`gRPC GetToken / raw argon2id:         ${(grpcToken.rps / raw.rps).toFixed(2)}  (target >= 0.9)`);
  const errors = results.reduce((n, r) => n + r.errors, 0);
  if (errors > 0) console.log(`errors: ${errors} (see the rows above)`);
} finally {
  await server.stop();
}
