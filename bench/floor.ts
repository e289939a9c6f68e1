// Tessera against the framework's floor (bench/floor-server.ts: connect-node serving the same
// RPCs with nothing around them), per protocol, for the no-op (GetVersion) and the token check
// (GetSession with a live session), h2load at BENCH_C in flight, BENCH_ROUNDS interleaved
// rounds, medians of the per-round ratios. Also the one-port listener (HTTP/1.1 and h2c on one
// socket) against a native h2c listener, both serving the floor's handler, and the price of
// running each call in an AsyncLocalStorage scope.
// Targets: no-op >= 0.9 x the floor on every protocol; token checks >= 0.8 x; one port >= 0.9 x native.
// Run: npm run bench -- floor   (BENCH_QUICK=1: one short round)
import { spawn } from "node:child_process";
import { once } from "node:events";
import { benchClientId, freePort, median, signUpAndLogIn, startServerProcess } from "./lib.js";
import { checkCase, emptyGrpcFrame, grpcHeaders, grpcWebHeaders, h2load, inFlight, requireH2load, rounds, waitQuiet, type H2loadCase } from "./h2load.js";

requireH2load();
const tessera = await startServerProcess();
const token = await signUpAndLogIn(tessera.url, "floor@example.com");

const [h2cPort, h1Port, onePort, alsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
const floor = spawn(process.execPath, ["--import", "tsx", "bench/floor-server.ts", String(h2cPort), String(h1Port), String(onePort), String(alsPort), tessera.dataDir, `${tessera.url}/.well-known/jwks.json`], {
  stdio: ["ignore", "pipe", "inherit"],
});
await once(floor.stdout!, "data");

const auth = [`authorization: Bearer ${token}`, `x-koms-clientid: ${benchClientId}`];
const connectJson = ["content-type: application/json"];
const noop = "/tessera.jwt.v1.JwtService/GetVersion";
const check = "/tessera.session.v1.SessionService/GetSession";
const getQuery = "?encoding=json&message=%7B%7D&connect=v1";
const t = tessera.url;
const f2 = `http://127.0.0.1:${h2cPort}`;
const f1 = `http://127.0.0.1:${h1Port}`;
const one = `http://127.0.0.1:${onePort}`;
const als = `http://127.0.0.1:${alsPort}`;

interface Pair {
  name: string;
  target: number;
  /** The Tessera side runs in the floor's process (the listener and call-scope figures). */
  oursInFloor?: boolean;
  ours: H2loadCase;
  floor: H2loadCase;
}
const pairs: Pair[] = [
  { name: "no-op, gRPC (h2c)", target: 0.9, ours: { url: t + noop, headers: grpcHeaders, body: emptyGrpcFrame }, floor: { url: f2 + noop, headers: grpcHeaders, body: emptyGrpcFrame } },
  { name: "no-op, gRPC-Web (HTTP/1.1)", target: 0.9, ours: { url: t + noop, h1: true, headers: grpcWebHeaders, body: emptyGrpcFrame }, floor: { url: f1 + noop, h1: true, headers: grpcWebHeaders, body: emptyGrpcFrame } },
  { name: "no-op, Connect JSON (HTTP/1.1)", target: 0.9, ours: { url: t + noop, h1: true, headers: connectJson, body: "{}" }, floor: { url: f1 + noop, h1: true, headers: connectJson, body: "{}" } },
  { name: "no-op, REST GET /jwt/version vs Connect GET", target: 0.9, ours: { url: `${t}/jwt/version`, h1: true }, floor: { url: f1 + noop + getQuery, h1: true } },
  { name: "token check, gRPC (h2c)", target: 0.8, ours: { url: t + check, headers: [...grpcHeaders, ...auth], body: emptyGrpcFrame }, floor: { url: f2 + check, headers: [...grpcHeaders, ...auth], body: emptyGrpcFrame } },
  { name: "token check, gRPC-Web (HTTP/1.1)", target: 0.8, ours: { url: t + check, h1: true, headers: [...grpcWebHeaders, ...auth], body: emptyGrpcFrame }, floor: { url: f1 + check, h1: true, headers: [...grpcWebHeaders, ...auth], body: emptyGrpcFrame } },
  { name: "token check, Connect JSON (HTTP/1.1)", target: 0.8, ours: { url: t + check, h1: true, headers: [...connectJson, ...auth], body: "{}" }, floor: { url: f1 + check, h1: true, headers: [...connectJson, ...auth], body: "{}" } },
  { name: "token check, REST GET /session vs Connect GET", target: 0.8, ours: { url: `${t}/session`, h1: true, headers: auth }, floor: { url: f1 + check + getQuery, h1: true, headers: auth } },
  { name: "one-port listener vs native h2c: gRPC no-op", target: 0.9, oursInFloor: true, ours: { url: one + noop, headers: grpcHeaders, body: emptyGrpcFrame }, floor: { url: f2 + noop, headers: grpcHeaders, body: emptyGrpcFrame } },
  { name: "one-port listener vs native h2c: gRPC token check", target: 0.9, oursInFloor: true, ours: { url: one + check, headers: [...grpcHeaders, ...auth], body: emptyGrpcFrame }, floor: { url: f2 + check, headers: [...grpcHeaders, ...auth], body: emptyGrpcFrame } },
  { name: "AsyncLocalStorage call scope vs none: gRPC no-op", target: 0.95, oursInFloor: true, ours: { url: als + noop, headers: grpcHeaders, body: emptyGrpcFrame }, floor: { url: f2 + noop, headers: grpcHeaders, body: emptyGrpcFrame } },
];

try {
  for (const p of pairs) {
    await checkCase(`${p.name} (Tessera side)`, p.ours);
    await checkCase(`${p.name} (floor)`, p.floor);
  }
  const chosen = process.env.BENCH_ONLY ? pairs.filter((p) => p.name.includes(process.env.BENCH_ONLY!)) : pairs;
  console.log(`${inFlight} in flight, ${rounds} interleaved rounds; per round the two sides alternate`);
  const results = chosen.map(() => ({ ours: [] as number[], floor: [] as number[], ratio: [] as number[], cpuOurs: [] as number[], cpuFloor: [] as number[], errors: 0 }));
  for (let r = 0; r < rounds; r++) {
    for (const [i, p] of chosen.entries()) {
      await waitQuiet();
      const oursPid = p.oursInFloor ? floor.pid! : tessera.pid;
      const [a, b] = r % 2 === 0 ? [p.ours, p.floor] : [p.floor, p.ours];
      const [pa, pb] = r % 2 === 0 ? [oursPid, floor.pid!] : [floor.pid!, oursPid];
      const ra = await h2load(a, undefined, [pa]);
      await waitQuiet();
      const rb = await h2load(b, undefined, [pb]);
      const [ours, fl] = r % 2 === 0 ? [ra, rb] : [rb, ra];
      const res = results[i];
      res.ours.push(ours.rps);
      res.floor.push(fl.rps);
      res.ratio.push(ours.rps / fl.rps);
      res.cpuOurs.push(ours.cpuMsPerCall ?? NaN);
      res.cpuFloor.push(fl.cpuMsPerCall ?? NaN);
      res.errors += ours.errors + fl.errors;
    }
  }
  console.log("\n| figure | Tessera (or one port) /s | floor /s | ratio (median of rounds) | target | CPU ms/call Tessera : floor |");
  console.log("|---|---|---|---|---|---|");
  for (const [i, p] of chosen.entries()) {
    const r = results[i];
    const ratio = median(r.ratio);
    console.log(
      `| ${p.name} | ${median(r.ours).toFixed(0)} | ${median(r.floor).toFixed(0)} | ${ratio.toFixed(2)} ${ratio >= p.target ? "" : "(below)"} | ${p.target} | ${median(r.cpuOurs).toFixed(3)} : ${median(r.cpuFloor).toFixed(3)} |` +
        (r.errors ? ` ${r.errors} errors` : ""),
    );
  }
} finally {
  floor.kill();
  await tessera.stop();
}
