// What collecting metrics costs: the no-op RPC (JwtService/GetVersion over gRPC and over REST)
// against two servers, one with TESSERA_METRICS=on and one with off, in interleaved rounds
// (which server goes first alternates). Printed: each side's median throughput and the median
// of the per-round ratios on/off (target >= 0.95). A neighbour's burst on a shared machine slows
// one round, not the median.
// Run: `npm run bench -- metrics` (BENCH_QUICK=1 for short rounds).
import { create, toBinary } from "@bufbuild/protobuf";
import { GetVersionRequestSchema } from "../gen/tessera/jwt/v1/jwt_pb.js";
import { grpcUnary, httpCall, load, median, startServerProcess } from "./lib.js";

const quick = Boolean(process.env.BENCH_QUICK);
const rounds = quick ? 3 : 15;
const roundMs = quick ? 400 : 2000;
const concurrency = 32;

const on = await startServerProcess({ TESSERA_METRICS: "on" });
const off = await startServerProcess({ TESSERA_METRICS: "off" });
try {
  const request = toBinary(GetVersionRequestSchema, create(GetVersionRequestSchema));
  const sides = [
    { name: "on", server: on },
    { name: "off", server: off },
  ].map((s) => ({
    ...s,
    grpc: grpcUnary(s.server.url, "/tessera.jwt.v1.JwtService/GetVersion", request),
    rest: httpCall(s.server.url, { path: "/jwt/version" }),
  }));
  for (const protocol of ["grpc", "rest"] as const) {
    const rps: Record<string, number[]> = { on: [], off: [] };
    const ratios: number[] = [];
    for (const s of sides) await load("warm-up", { concurrency, durationMs: roundMs / 2 }, protocol === "grpc" ? s.grpc.call : s.rest);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      const got: Record<string, number> = {};
      for (const s of order) {
        const r = await load(`${protocol} ${s.name}`, { concurrency, durationMs: roundMs }, protocol === "grpc" ? s.grpc.call : s.rest);
        if (r.errors > 0) throw new Error(`${r.errors} errors with metrics ${s.name}`);
        got[s.name] = r.rps;
        rps[s.name]!.push(r.rps);
      }
      ratios.push(got.on! / got.off!);
    }
    console.log(
      `no-op RPC over ${protocol.padEnd(4)}  metrics on ${median(rps.on!).toFixed(0).padStart(6)} req/s  off ${median(rps.off!).toFixed(0).padStart(6)} req/s  ` +
        `median ratio on/off ${median(ratios).toFixed(3)} (target >= 0.95; ${rounds} rounds of ${roundMs} ms)`,
    );
  }
  for (const s of sides) s.grpc.close();
} finally {
  await Promise.all([on.stop(), off.stop()]);
}
