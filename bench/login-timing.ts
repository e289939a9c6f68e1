// Seed 000 login timing: an unknown email and a wrong password for a known one, at the server's
// production argon2id parameters with login protection off (every attempt runs the hash). Prints
// both medians and their ratio (target: close to 1, so timing does not tell which emails exist).
// Run: `npx tsx bench/login-timing.ts` (BENCH_QUICK=1 for fewer rounds).
import http from "node:http";
import { benchClientId, httpCall, loginBenchEnv, startServerProcess } from "./lib.js";

const email = "timing@example.com";
const password = "violet-kettle-harbour-29";
const rounds = process.env.BENCH_QUICK ? 15 : 60;

const server = await startServerProcess({ ...loginBenchEnv, TESSERA_LOGIN_PROTECTION: "false" });
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
try {
  const headers = { "content-type": "application/json", "x-koms-clientid": benchClientId };
  await httpCall(server.url, { method: "POST", path: "/user", headers, body: JSON.stringify({ email, password }), expect: 201 })();
  const attempt = (login: string) =>
    httpCall(server.url, { method: "POST", path: "/session", headers, body: JSON.stringify({ account_type: "traditional", email: login, password: "wrong-password-xyz" }), expect: 401 }, agent);
  const time = async (login: string): Promise<number> => {
    const t = process.hrtime.bigint();
    await attempt(login)();
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  let n = 0;
  const unknownEmail = () => `nobody-${n++}@example.com`;
  for (let i = 0; i < 5; i++) await time(unknownEmail()); // warm-up
  // Interleaved, so both see the same machine load.
  const known: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < rounds; i++) {
    known.push(await time(email));
    unknown.push(await time(unknownEmail()));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`wrong password, known email: median ${median(known).toFixed(1)} ms (${rounds} attempts)`);
  console.log(`unknown email:               median ${median(unknown).toFixed(1)} ms (${rounds} attempts)`);
  console.log(`unknown / known:             ${(median(unknown) / median(known)).toFixed(2)}  (target 0.8 .. 1.25)`);
} finally {
  agent.destroy();
  await server.stop();
}
