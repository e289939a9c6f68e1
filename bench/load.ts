// A realistic mix held at the highest rate the server sustains with p99 under 50 ms, on the
// embedded store with the production argon2 parameters (the default configuration):
//   90% token checks, split across GET /v1/api/auth (REST), SessionService/GetSession (gRPC)
//       and GET /jwt/check (REST);
//    8% session refreshes (PUT /session);
//    2% logins (POST /session: one argon2id verification each — the expensive part, on purpose).
// A short ramp over closed-loop concurrencies finds the highest rate whose p99 stays under 50 ms
// with no error; the mix is then held for 60 s (BENCH_QUICK=1: 10 s) at that concurrency.
// Reported: requests/s, p50/p99 (overall and per kind), errors (must be 0), server RSS after
// warm-up and at the end (growth must stay under 10%), and the rate as a ratio of the no-op
// baseline (bench/baseline.ts: gRPC Health/Check, same server, same run, same concurrency).
// Run: `npx tsx bench/load.ts` (BENCH_QUICK=1 for a short run; BENCH_CPU_PROF=dir profiles the
// server with node --cpu-prof into dir).
import http from "node:http";
import { create, toBinary } from "@bufbuild/protobuf";
import { GetSessionRequestSchema } from "../gen/tessera/session/v1/session_pb.js";
import { measureBaseline } from "./baseline.js";
import { benchAdminToken, benchClientId, formatResult, grpcUnary, isMain, load, startServerProcess, type BenchServer, type LoadResult } from "./lib.js";

const quick = process.env.BENCH_QUICK !== undefined;
const HOLD_MS = quick ? 10_000 : 60_000;
const RAMP_MS = quick ? 2_000 : 5_000;
const WARMUP_MS = quick ? 1_000 : 3_000;
const P99_TARGET_MS = 50;
const RAMP = [1, 2, 4, 8, 12, 16, 24, 32, 48, 64];
/** A ramp step is short: keep this much headroom under the target for the hold. */
const RAMP_HEADROOM = 0.8;
const password = "violet-kettle-harbour-29";

type Kind = "apiAuth" | "getSession" | "jwtCheck" | "refresh" | "login";

interface Answer {
  status: number;
  text: string;
}

function request(agent: http.Agent, url: string, o: { method?: string; path: string; headers?: Record<string, string>; json?: unknown }): Promise<Answer> {
  const u = new URL(url);
  const body = o.json === undefined ? undefined : Buffer.from(JSON.stringify(o.json));
  const headers = { ...o.headers, ...(body ? { "content-type": "application/json", "content-length": String(body.length) } : {}) };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method: o.method ?? "GET", path: o.path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

const ok = (a: Answer, what: string): Answer => {
  if (a.status < 200 || a.status >= 300) throw new Error(`${what}: ${a.status} ${a.text.slice(0, 160)}`);
  return a;
};

interface Session {
  access: string;
  refresh: string;
}

/** The users, sessions and tokens the mix uses, made once before the ramp. */
async function prepare(server: BenchServer, agent: http.Agent) {
  const client = { "x-koms-clientid": benchClientId };
  const emails = Array.from({ length: 8 }, (_, i) => `load-${i}@example.com`);
  for (const email of emails) ok(await request(agent, server.url, { method: "POST", path: "/user", headers: client, json: { email, password } }), "sign-up");
  const login = async (email: string): Promise<Session> => {
    const a = ok(await request(agent, server.url, { method: "POST", path: "/session", headers: client, json: { account_type: "traditional", email, password } }), "login");
    const body = JSON.parse(a.text) as { access_token: string; refresh_token: string };
    return { access: body.access_token, refresh: body.refresh_token };
  };
  // GetSession uses sessions that are never refreshed (a refresh retires the access token);
  // refreshes take a session from their own pool, one caller at a time.
  const checked: Session[] = [];
  const refreshable: Session[] = [];
  for (const email of emails) checked.push(await login(email));
  for (let i = 0; i < 64; i++) refreshable.push(await login(emails[i % emails.length]));
  const apiTokens: string[] = [];
  for (let i = 0; i < 8; i++) {
    const a = ok(await request(agent, server.url, { method: "POST", path: "/v1/frontend/auth", headers: { authorization: `Bearer ${benchAdminToken}` }, json: { account_id: `acct-${i}`, description: "load" } }), "api token");
    apiTokens.push((JSON.parse(a.text) as { token: string }).token);
  }
  const jwtTokens: string[] = [];
  for (let i = 0; i < 8; i++) {
    const user = `load-jwt-${i}`;
    ok(await request(agent, server.url, { method: "POST", path: "/jwt/user", json: { user, pass: password } }), "jwt user");
    jwtTokens.push(ok(await request(agent, server.url, { path: `/jwt/token?${new URLSearchParams({ user, pass: password })}` }), "jwt token").text);
  }
  return { emails, checked, refreshable, apiTokens, jwtTokens };
}

export interface MixFigures {
  result: LoadResult;
  perKind: Record<Kind, { n: number; p50: number; p99: number }>;
}

/** The mix as one call for lib.load, recording per-kind latencies while `recording` is on. */
function mix(server: BenchServer, agent: http.Agent, world: Awaited<ReturnType<typeof prepare>>) {
  const client = { "x-koms-clientid": benchClientId };
  const getSession = world.checked.map((s) =>
    grpcUnary(server.url, "/tessera.session.v1.SessionService/GetSession", toBinary(GetSessionRequestSchema, create(GetSessionRequestSchema)), { ...client, authorization: `Bearer ${s.access}` }),
  );
  const idle = [...world.refreshable];
  let n = 0;
  const latencies: Record<Kind, number[]> = { apiAuth: [], getSession: [], jwtCheck: [], refresh: [], login: [] };
  let recording = false;
  const calls: Record<Kind, () => Promise<unknown>> = {
    apiAuth: async () => ok(await request(agent, server.url, { path: "/v1/api/auth", headers: { authorization: `Bearer ${world.apiTokens[n % world.apiTokens.length]}` } }), "GET /v1/api/auth"),
    getSession: () => getSession[n % getSession.length].call(),
    jwtCheck: async () => ok(await request(agent, server.url, { path: "/jwt/check", headers: { authorization: `Bearer ${world.jwtTokens[n % world.jwtTokens.length]}` } }), "GET /jwt/check"),
    refresh: async () => {
      const s = idle.pop();
      if (!s) throw new Error("no idle session to refresh (concurrency above the pool)");
      try {
        const a = ok(await request(agent, server.url, { method: "PUT", path: "/session", headers: { ...client, authorization: `Bearer ${s.access}` }, json: { refresh_token: s.refresh } }), "PUT /session");
        const body = JSON.parse(a.text) as { access_token: string; refresh_token: string };
        s.access = body.access_token;
        s.refresh = body.refresh_token;
      } finally {
        idle.push(s);
      }
    },
    login: async () => ok(await request(agent, server.url, { method: "POST", path: "/session", headers: client, json: { account_type: "traditional", email: world.emails[n % world.emails.length], password } }), "POST /session"),
  };
  const pickKind = (): Kind => {
    const r = Math.random() * 100;
    if (r < 30) return "apiAuth";
    if (r < 60) return "getSession";
    if (r < 90) return "jwtCheck";
    if (r < 98) return "refresh";
    return "login";
  };
  return {
    call: async () => {
      n++;
      const kind = pickKind();
      const t = performance.now();
      await calls[kind]();
      if (recording) latencies[kind].push(performance.now() - t);
    },
    record(on: boolean) {
      recording = on;
      if (on) for (const k of Object.keys(latencies) as Kind[]) latencies[k] = [];
    },
    perKind(): MixFigures["perKind"] {
      const out = {} as MixFigures["perKind"];
      for (const [k, xs] of Object.entries(latencies) as [Kind, number[]][]) {
        const s = [...xs].sort((a, b) => a - b);
        const pct = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(s.length * p))] : NaN);
        out[k] = { n: s.length, p50: pct(0.5), p99: pct(0.99) };
      }
      return out;
    },
    close() {
      for (const g of getSession) g.close();
    },
  };
}

export async function runLoad(): Promise<void> {
  const profDir = process.env.BENCH_CPU_PROF;
  // Production argon2 parameters: the defaults of src/config.ts (nothing set here).
  const server = await startServerProcess({}, profDir ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${profDir}`] } : {});
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  try {
    const world = await prepare(server, agent);
    const m = mix(server, agent, world);

    console.log(`ramp (${RAMP_MS / 1000} s each, keep p99 < ${P99_TARGET_MS * RAMP_HEADROOM} ms for a ${P99_TARGET_MS} ms target, 0 errors):`);
    let best: { concurrency: number; result: LoadResult } | undefined;
    for (const concurrency of RAMP) {
      const r = await load(`mix @ concurrency ${concurrency}`, { concurrency, durationMs: RAMP_MS, warmupMs: 500 }, m.call);
      console.log(`  ${formatResult(r)}`);
      if (r.errors > 0 || r.p99Ms >= P99_TARGET_MS * RAMP_HEADROOM) break;
      if (!best || r.rps > best.result.rps) best = { concurrency, result: r };
    }
    if (!best) {
      // A bench prints figures: hold at the lowest step anyway; the targets line says MISSED.
      console.log(`  even concurrency ${RAMP[0]} misses the ramp target (a busy machine?): holding at ${RAMP[0]}`);
      best = { concurrency: RAMP[0], result: undefined as never };
    }

    // Hold: warm up, then measure for HOLD_MS with RSS at the start and at the end.
    await load("warm-up", { concurrency: best.concurrency, durationMs: WARMUP_MS }, m.call);
    const rssStart = server.rssMiB();
    const rssSamples: number[] = [];
    const sampler = setInterval(() => rssSamples.push(server.rssMiB()), 1000);
    m.record(true);
    const held = await load(`mix held ${HOLD_MS / 1000} s @ concurrency ${best.concurrency}`, { concurrency: best.concurrency, durationMs: HOLD_MS }, m.call);
    m.record(false);
    clearInterval(sampler);
    const rssEnd = server.rssMiB();
    const growth = (rssEnd - rssStart) / rssStart;

    // The no-op baseline on the same server, same run, same concurrency.
    const baseline = await measureBaseline(server, best.concurrency);
    m.close();

    console.log("\nheld:");
    console.log(`  ${formatResult(held, baseline.grpc)}`);
    for (const [k, f] of Object.entries(m.perKind())) console.log(`    ${k.padEnd(11)} ${String(f.n).padStart(7)} calls  p50 ${f.p50.toFixed(2)} ms  p99 ${f.p99.toFixed(2)} ms`);
    console.log(`  server RSS ${rssStart.toFixed(1)} MiB after warm-up, ${rssEnd.toFixed(1)} MiB at the end (${(growth * 100).toFixed(1)}%; max ${Math.max(...rssSamples).toFixed(1)} MiB)`);
    console.log("baseline (same run, same concurrency):");
    for (const r of [baseline.grpc, baseline.connectJson, baseline.healthz]) console.log(`  ${formatResult(r)}`);
    const verdicts = [
      [held.errors === 0, `errors ${held.errors} (must be 0)`],
      [held.p99Ms < P99_TARGET_MS, `p99 ${held.p99Ms.toFixed(2)} ms (< ${P99_TARGET_MS})`],
      [growth < 0.1, `RSS growth ${(growth * 100).toFixed(1)}% (< 10%)`],
    ] as const;
    console.log(`targets: ${verdicts.map(([pass, what]) => `${pass ? "met" : "MISSED"}: ${what}`).join("; ")}`);
  } finally {
    agent.destroy();
    await server.stop();
  }
}

if (isMain(import.meta.url)) await runLoad();
