// A/B of two builds of Tessera: both servers up at once (compiled, one worker each, fresh data
// directories, started afresh each round), one token check driven by h2load against each in
// turn, interleaved rounds (the order alternating), then the medians of calls/s and CPU per call
// and the ratio B/A per round.
// Each side is a checkout that `npm run build` has built; for an earlier commit:
//   git worktree add /tmp/base REV && ln -s "$PWD/node_modules" /tmp/base/node_modules && (cd /tmp/base && npm run build)
// Run: npm run bench -- ab DIR_A DIR_B   (AB_CASE, default grpc: grpc for GetSession over 16 h2c
// connections, grpc-noop for GetVersion over the same, rest for GET /session over HTTP/1.1; a
// comma-separated list measures each in every round, on the same servers; AB_WORKERS:
// TESSERA_WORKERS of both, default 1; BENCH_ROUNDS, default 5; BENCH_DUR seconds). CPU per call
// counts every worker's process.
import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import { benchClientId, median, signUpAndLogIn, startServerProcess, type BenchServer } from "./lib.js";
import { benchSeconds, emptyGrpcFrame, grpcHeaders, h2load, procStat, requireH2load, rounds, type H2loadCase } from "./h2load.js";

interface Side {
  dir: string;
  /** Per case: each round's figure. */
  rps: Record<string, number[]>;
  cpu: Record<string, number[]>;
}

const dirs = process.argv.slice(2).map((d) => resolve(d));
if (dirs.length !== 2) {
  console.error("usage: npm run bench -- ab DIR_A DIR_B (two built checkouts)");
  process.exit(2);
}
requireH2load();
const caseNames = { grpc: "gRPC GetSession (h2c)", "grpc-noop": "gRPC GetVersion (h2c)", rest: "REST GET /session" } as const;
type Kind = keyof typeof caseNames;
const kinds = (process.env.AB_CASE ?? "grpc").split(",").map((k) => k.trim()) as Kind[];
for (const kind of kinds) {
  if (!(kind in caseNames)) {
    console.error(`AB_CASE must be one or more of ${Object.keys(caseNames).join(", ")} (comma-separated), not ${kind}`);
    process.exit(2);
  }
}

const workers = process.env.AB_WORKERS ?? "1";

/** `pid` and every process below it (a service's workers). */
function processTree(pid: number): number[] {
  const children = readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return Number(procStat(Number(p))[1]) === pid;
      } catch {
        return false; // gone meanwhile
      }
    });
  return [pid, ...children.flatMap((p) => processTree(Number(p)))];
}

async function start(dir: string): Promise<{ server: BenchServer; token: string }> {
  const server = await startServerProcess({ TESSERA_WORKERS: workers }, { checkout: dir });
  try {
    // Every worker ready before the round (the first answers as soon as it listens).
    if (workers !== "1") await new Promise((r) => setTimeout(r, 2000));
    return { server, token: await signUpAndLogIn(server.url, "ab@example.com") };
  } catch (e) {
    await server.stop();
    throw e;
  }
}

const call = (kind: Kind, server: BenchServer, token: string): H2loadCase => {
  const auth = [`authorization: Bearer ${token}`, `x-koms-clientid: ${benchClientId}`];
  switch (kind) {
    case "grpc":
      return { url: `${server.url}/tessera.session.v1.SessionService/GetSession`, headers: [...grpcHeaders, ...auth], body: emptyGrpcFrame };
    case "grpc-noop":
      return { url: `${server.url}/tessera.jwt.v1.JwtService/GetVersion`, headers: grpcHeaders, body: emptyGrpcFrame };
    case "rest":
      return { url: `${server.url}/session`, h1: true, headers: auth };
  }
};

// Both servers are started afresh for every round, the first to start alternating with the
// round: a pair of servers kept up for the whole run measured the one started second slower
// whichever build it ran (an A/A run of one build: B/A 0.867 over 7 rounds, REST), so a result
// kept each server's start order and its bias; started in turn, each build is the first one up
// in half the rounds, as it is the first loaded.
const sides: Side[] = dirs.map((dir) => ({ dir, rps: Object.fromEntries(kinds.map((k) => [k, []])), cpu: Object.fromEntries(kinds.map((k) => [k, []])) }));
console.log(`${kinds.map((k) => caseNames[k]).join("; ")}, ${workers} worker(s), ${rounds} interleaved rounds of ${benchSeconds} s`);
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? sides : [...sides].reverse();
  const up: Array<{ side: Side; server: BenchServer; token: string }> = [];
  try {
    for (const side of order) up.push({ side, ...(await start(side.dir)) });
    for (const kind of kinds) {
      for (const { side, server, token } of up) {
        const res = await h2load(call(kind, server, token), benchSeconds, processTree(server.pid));
        if (res.errors > 0) throw new Error(`${side.dir}: ${res.errors} calls failed`);
        side.rps[kind]!.push(res.rps);
        side.cpu[kind]!.push(res.cpuMsPerCall!);
        console.log(`  round ${r + 1}  ${kind}  ${side.dir}: ${res.rps.toFixed(0)}/s, ${res.cpuMsPerCall!.toFixed(3)} ms CPU per call`);
      }
    }
  } finally {
    for (const { server } of up) await server.stop();
  }
}
const [a, b] = sides;
for (const kind of kinds) {
  console.log(caseNames[kind]);
  for (const s of sides) console.log(`  ${s.dir}: median ${median(s.rps[kind]!).toFixed(0)}/s, ${median(s.cpu[kind]!).toFixed(3)} ms CPU per call`);
  const [ar, br, ac, bc] = [a.rps[kind]!, b.rps[kind]!, a.cpu[kind]!, b.cpu[kind]!];
  console.log(
    `  B/A: calls/s ${(median(br) / median(ar)).toFixed(3)}, CPU per call ${(median(bc) / median(ac)).toFixed(3)}; ` +
      `per round calls/s ${ar.map((x, i) => (br[i]! / x).toFixed(2)).join(", ")}, CPU per call ${ac.map((x, i) => (bc[i]! / x).toFixed(2)).join(", ")}`,
  );
}
