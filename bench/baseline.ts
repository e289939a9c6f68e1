// The baseline every other figure is divided by: the cheapest calls the server answers —
// grpc.health.v1 Health/Check (through the full interceptor chain, plus one trivial store ping)
// over gRPC and over Connect JSON, and GET /healthz (no RPC at all).
import { create, toBinary } from "@bufbuild/protobuf";
import { HealthCheckRequestSchema } from "../gen/health/v1/health_pb.js";
import { durations, isMain, formatResult, grpcUnary, httpCall, load, startServerProcess, type BenchServer, type LoadResult } from "./lib.js";

export interface Baseline {
  grpc: LoadResult;
  connectJson: LoadResult;
  healthz: LoadResult;
}

export async function measureBaseline(server: BenchServer, concurrency = 32): Promise<Baseline> {
  const g = grpcUnary(server.url, "/grpc.health.v1.Health/Check", toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema)));
  const grpcResult = await load("baseline: gRPC Health/Check", { concurrency, ...durations }, async () => {
    await g.call();
  });
  g.close();
  const connectJson = await load(
    "baseline: Connect JSON Health/Check",
    { concurrency, ...durations },
    httpCall(server.url, { method: "POST", path: "/grpc.health.v1.Health/Check", headers: { "content-type": "application/json" }, body: "{}" }),
  );
  const healthz = await load("baseline: GET /healthz", { concurrency, ...durations }, httpCall(server.url, { path: "/healthz" }));
  return { grpc: grpcResult, connectJson, healthz };
}

if (isMain(import.meta.url)) {
  const server = await startServerProcess();
  try {
    const rss0 = server.rssMiB();
    const b = await measureBaseline(server);
    for (const r of [b.grpc, b.connectJson, b.healthz]) console.log(formatResult(r));
    console.log(`server RSS: ${rss0.toFixed(1)} MiB at start, ${server.rssMiB().toFixed(1)} MiB after load`);
  } finally {
    await server.stop();
  }
}
