// Where a call's time goes: Tessera (compiled, one worker; tsc's modules unbundled, so that each
// function keeps its file) under `node --cpu-prof` while h2load drives one call type, then the
// functions with the most self time (main thread, samples taken while the load ran) and the
// share of each package. One server per call type.
// Run: npm run bench -- profile   (BENCH_ONLY=<substring of a case name> for one)
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { argonConcurrency, benchClientId, loginBenchEnv, signUpAndLogIn, startServerProcess } from "./lib.js";
import { benchSeconds, emptyGrpcFrame, grpcHeaders, h2load, requireH2load, warmSeconds, type H2loadCase } from "./h2load.js";

requireH2load();
interface ProfileNode {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const where = (url: string) => {
  const u = url.replace("file://", "");
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)/.exec(u);
  if (m) return { pkg: m[1], file: `${m[1]}/${m[2]}` };
  const own = /\/(dist\/)?(src\/.*|gen\/.*)/.exec(u);
  if (own) return { pkg: "tessera", file: own[2] };
  return { pkg: u.startsWith("node:") ? "node" : u === "" ? "(native/vm)" : "other", file: u };
};

function top(profile: Profile, fromUs: number, toUs: number, n = 20): string {
  const nodes = new Map(profile.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  const byPkg = new Map<string, number>();
  let t = profile.startTime;
  let total = 0;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i];
    if (t < fromUs || t > toUs) return;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const node = nodes.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const w = where(url);
    const key = `${functionName || "(anonymous)"}  ${w.file}${url ? `:${lineNumber + 1}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    byPkg.set(w.pkg, (byPkg.get(w.pkg) ?? 0) + dt);
    total += dt;
  });
  const pct = (x: number) => ((100 * x) / total).toFixed(1).padStart(5) + " %";
  const lines = [...self].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `  ${pct(v)}  ${k}`);
  // Inclusive time per function of Tessera's own code (src/): what each interceptor, the
  // transcoder and the handlers cost a call, whatever they call.
  const parent = new Map<number, number>();
  for (const x of profile.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  const inclusive = new Map<string, number>();
  t = profile.startTime;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i];
    if (t < fromUs || t > toUs) return;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const { functionName, url, lineNumber } = nodes.get(n)!.callFrame;
      const w = where(url);
      if (w.pkg !== "tessera" || !w.file.startsWith("src/")) continue;
      const key = `${functionName || "(anonymous)"}  ${w.file}:${lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
    }
  });
  lines.push("  Tessera's own functions, inclusive:");
  for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 14)) lines.push(`  ${pct(v)}  ${k}`);
  const pkgs = [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${pct(v).trim()}`);
  return [...lines, `  by package: ${pkgs.join(", ")}`].join("\n");
}

const cases: Array<{ name: string; env?: Record<string, string>; load: (url: string, token: string) => H2loadCase }> = [
  { name: "no-op REST GET /jwt/version", load: (u) => ({ url: `${u}/jwt/version`, h1: true }) },
  { name: "no-op gRPC GetVersion", load: (u) => ({ url: `${u}/tessera.jwt.v1.JwtService/GetVersion`, headers: grpcHeaders, body: emptyGrpcFrame }) },
  { name: "token check REST GET /session", load: (u, tok) => ({ url: `${u}/session`, h1: true, headers: [`authorization: Bearer ${tok}`, `x-koms-clientid: ${benchClientId}`] }) },
  {
    name: "token check gRPC GetSession",
    load: (u, tok) => ({ url: `${u}/tessera.session.v1.SessionService/GetSession`, headers: [...grpcHeaders, `authorization: Bearer ${tok}`, `x-koms-clientid: ${benchClientId}`], body: emptyGrpcFrame }),
  },
  {
    // The production argon2id parameters: the main thread's share is a login's cost beside its hash.
    name: "password login REST POST /session",
    env: loginBenchEnv,
    load: (u) => ({
      url: `${u}/session`,
      h1: true,
      connections: argonConcurrency,
      headers: ["content-type: application/json", `x-koms-clientid: ${benchClientId}`],
      body: JSON.stringify({ account_type: "traditional", email: "prof@example.com", password: "violet-kettle-harbour-29" }),
    }),
  },
];

for (const c of cases.filter((c) => !process.env.BENCH_ONLY || c.name.includes(process.env.BENCH_ONLY))) {
  const dir = mkdtempSync(join(tmpdir(), "tessera-prof-"));
  const server = await startServerProcess(c.env ?? {}, { nodeArgs: ["--cpu-prof", "--cpu-prof-dir", dir], modules: true });
  let window: [number, number];
  try {
    const access_token = await signUpAndLogIn(server.url, "prof@example.com");
    const start = performance.timeOrigin + performance.now();
    const r = await h2load(c.load(server.url, access_token));
    window = [start, performance.timeOrigin + performance.now()];
    console.log(`\n${c.name}: ${r.rps.toFixed(0)}/s over ${benchSeconds} s (${r.errors} errors)`);
  } finally {
    await server.stop();
  }
  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) throw new Error("no profile written");
  const profile = JSON.parse(readFileSync(join(dir, file), "utf8")) as Profile;
  // The profile's clock is microseconds of process uptime: place the load window on it by the
  // profile's end (the server stopped right after the load) rather than by wall time.
  const endUs = profile.startTime + profile.timeDeltas.reduce((s, x) => s + x, 0);
  const stopMs = performance.timeOrigin + performance.now() - window[1];
  const toUs = endUs - stopMs * 1000;
  // Skip h2load's warm-up (BENCH_WARM seconds, which its figures leave out too) and half a second more.
  const fromUs = toUs - (window[1] - window[0]) * 1000 + (warmSeconds + 0.5) * 1_000_000;
  console.log(top(profile, fromUs, toUs));
}
