// A/B of two builds of Tessera: both servers up at once (compiled, one worker each, fresh data
// directories), one token check driven by h2load against each in turn, interleaved rounds (the
// order alternating), then the medians of calls/s and CPU per call and the ratio B/A per round.
// Each side is a checkout that `npm run build` has built; for an earlier commit:
//   git worktree add /tmp/base REV && ln -s "$PWD/node_modules" /tmp/base/node_modules && (cd /tmp/base && npm run build)
// Run: npm run bench -- ab DIR_A DIR_B   (AB_CASE=grpc|rest, default grpc: GetSession over 16
// h2c connections, or GET /session over HTTP/1.1; BENCH_ROUNDS, default 5; BENCH_DUR seconds)
import { resolve } from "node:path";
import { benchClientId, median, signUpAndLogIn, startServerProcess, type BenchServer } from "./lib.js";
import { benchSeconds, emptyGrpcFrame, grpcHeaders, h2load, requireH2load, rounds, type H2loadCase } from "./h2load.js";

interface Side {
  dir: string;
  server: BenchServer;
  token: string;
  rps: number[];
  cpu: number[];
}

const dirs = process.argv.slice(2).map((d) => resolve(d));
if (dirs.length !== 2) {
  console.error("usage: npm run bench -- ab DIR_A DIR_B (two built checkouts)");
  process.exit(2);
}
requireH2load();
const kind = process.env.AB_CASE ?? "grpc";
if (kind !== "grpc" && kind !== "rest") {
  console.error(`AB_CASE must be grpc or rest, not ${kind}`);
  process.exit(2);
}

async function start(dir: string): Promise<Side> {
  const server = await startServerProcess({}, { checkout: dir });
  return { dir, server, token: await signUpAndLogIn(server.url, "ab@example.com"), rps: [], cpu: [] };
}

const call = (s: Side): H2loadCase => {
  const auth = [`authorization: Bearer ${s.token}`, `x-koms-clientid: ${benchClientId}`];
  return kind === "grpc"
    ? { url: `${s.server.url}/tessera.session.v1.SessionService/GetSession`, headers: [...grpcHeaders, ...auth], body: emptyGrpcFrame }
    : { url: `${s.server.url}/session`, h1: true, headers: auth };
};

const sides: Side[] = [];
try {
  for (const dir of dirs) sides.push(await start(dir));
  console.log(`${kind === "grpc" ? "gRPC GetSession (h2c)" : "REST GET /session"}, ${rounds} interleaved rounds of ${benchSeconds} s`);
  for (let r = 0; r < rounds; r++) {
    for (const s of r % 2 === 0 ? sides : [...sides].reverse()) {
      const res = h2load(call(s), benchSeconds, [s.server.pid]);
      if (res.errors > 0) throw new Error(`${s.dir}: ${res.errors} calls failed`);
      s.rps.push(res.rps);
      s.cpu.push(res.cpuMsPerCall!);
      console.log(`  round ${r + 1}  ${s.dir}: ${res.rps.toFixed(0)}/s, ${res.cpuMsPerCall!.toFixed(3)} ms CPU per call`);
    }
  }
  const [a, b] = sides;
  for (const s of sides) console.log(`${s.dir}: median ${median(s.rps).toFixed(0)}/s, ${median(s.cpu).toFixed(3)} ms CPU per call`);
  console.log(
    `B/A: calls/s ${(median(b.rps) / median(a.rps)).toFixed(3)}, CPU per call ${(median(b.cpu) / median(a.cpu)).toFixed(3)}; ` +
      `per round ${a.rps.map((x, i) => (b.rps[i] / x).toFixed(2)).join(", ")}`,
  );
} finally {
  for (const s of sides) await s.server.stop();
}
