// Bursts of wrong passwords sent at once to one login (POST /session, HTTP/1.1), at the default
// login protection (TESSERA_LOGIN_MAX_FAILURES=5) and the production argon2id cost: for each
// burst size, how many guesses were evaluated (401), refused before hashing (429) or refused as
// the hasher was full (503). Each burst targets a fresh account that has logged in once from
// this address, so only the login's own window counts (the address's is not what is measured).
// Run: `npm run bench -- burst`.
import http from "node:http";
import { benchClientId, startServerProcess } from "./lib.js";

const sizes = [1, 5, 10, 40, 100, 400];
const password = "violet-kettle-harbour-29";

const server = await startServerProcess({ TESSERA_LOGIN_PROTECTION: "true" });
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

function post(path: string, body: unknown): Promise<number> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${server.url}${path}`,
      { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data), "x-koms-clientid": benchClientId } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

try {
  console.log("burst size | evaluated (401) | refused before hashing (429) | hasher full (503) | other");
  console.log("---|---|---|---|---");
  for (const [i, size] of sizes.entries()) {
    const email = `burst-${i}@example.com`;
    if ((await post("/user", { email, password })) !== 201) throw new Error("sign-up failed");
    if ((await post("/session", { account_type: "traditional", email, password })) !== 200) throw new Error("login failed");
    const statuses = await Promise.all(
      Array.from({ length: size }, (_, j) => post("/session", { account_type: "traditional", email, password: `wrong-password-${j}` })),
    );
    const count = (s: number) => statuses.filter((x) => x === s).length;
    console.log(`${size} | ${count(401)} | ${count(429)} | ${count(503)} | ${size - count(401) - count(429) - count(503)}`);
  }
} finally {
  agent.destroy();
  await server.stop();
}
