// The baselines every other figure is divided by, measured in the same run as the figure:
// - no-op RPC: JwtService/GetVersion (full interceptor chain, no store, no crypto), over gRPC
//   (@grpc/grpc-js), Connect JSON and REST (GET /jwt/version through the transcoder);
// - health: grpc.health.v1 Health/Check (one trivial store ping) over gRPC and Connect JSON;
// - GET /healthz, answered before the router (the HTTP floor, no RPC at all).
import { create, toBinary } from "@bufbuild/protobuf";
import { HealthCheckRequestSchema } from "../gen/health/v1/health_pb.js";
import { GetVersionRequestSchema } from "../gen/tessera/jwt/v1/jwt_pb.js";
import { durations, formatResult, grpcUnary, httpCall, isMain, load, startServerProcess, type BenchServer, type LoadResult } from "./lib.js";

export interface Baseline {
  /** gRPC Health/Check. */
  grpc: LoadResult;
  /** Connect JSON Health/Check. */
  connectJson: LoadResult;
  /** gRPC no-op (GetVersion). */
  grpcNoop: LoadResult;
  /** Connect JSON no-op (GetVersion). */
  connectNoop: LoadResult;
  /** REST no-op: GET /jwt/version. */
  restNoop: LoadResult;
  /** GET /healthz. */
  healthz: LoadResult;
}

export async function measureBaseline(server: BenchServer, concurrency = 32): Promise<Baseline> {
  const grpcCall = async (name: string, path: string, bytes: Uint8Array) => {
    const g = grpcUnary(server.url, path, bytes);
    try {
      return await load(name, { concurrency, ...durations }, g.call);
    } finally {
      g.close();
    }
  };
  const post = (path: string) => httpCall(server.url, { method: "POST", path, headers: { "content-type": "application/json" }, body: "{}" });
  const grpc = await grpcCall("baseline: gRPC Health/Check", "/grpc.health.v1.Health/Check", toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema)));
  const grpcNoop = await grpcCall("baseline: gRPC no-op (GetVersion)", "/tessera.jwt.v1.JwtService/GetVersion", toBinary(GetVersionRequestSchema, create(GetVersionRequestSchema)));
  const connectJson = await load("baseline: Connect JSON Health/Check", { concurrency, ...durations }, post("/grpc.health.v1.Health/Check"));
  const connectNoop = await load("baseline: Connect JSON no-op (GetVersion)", { concurrency, ...durations }, post("/tessera.jwt.v1.JwtService/GetVersion"));
  const restNoop = await load("baseline: REST no-op (GET /jwt/version)", { concurrency, ...durations }, httpCall(server.url, { path: "/jwt/version" }));
  const healthz = await load("baseline: GET /healthz", { concurrency, ...durations }, httpCall(server.url, { path: "/healthz" }));
  return { grpc, connectJson, grpcNoop, connectNoop, restNoop, healthz };
}

if (isMain(import.meta.url)) {
  const server = await startServerProcess();
  try {
    const rss0 = server.rssMiB();
    const b = await measureBaseline(server);
    for (const r of [b.grpcNoop, b.grpc, b.connectNoop, b.connectJson, b.restNoop, b.healthz]) console.log(formatResult(r));
    console.log(`server RSS: ${rss0.toFixed(1)} MiB at start, ${server.rssMiB().toFixed(1)} MiB after load`);
  } finally {
    await server.stop();
  }
}
