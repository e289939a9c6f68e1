// Token verification: jose's jwtVerify (WebCrypto, which runs on libuv's thread pool) against
// Tessera's TokenVerifier (node:crypto on the calling thread, jose's claim checks without
// cryptography), per call when idle, and while argon2id hashes keep the thread pool busy (as a
// flood of logins or sign-ups does). The verified-token cache is off: every call checks a
// signature. Run: `npm run bench -- verify` (BENCH_QUICK=1 for short runs).
import argon2 from "argon2";
import { generateKeyPair, jwtVerify, SignJWT, type CryptoKey } from "jose";
import { systemClock } from "../src/core/clock.js";
import type { SigningAlg, VerificationKey } from "../src/core/key-ring.js";
import { TokenVerifier } from "../src/core/token-verifier.js";
import { argonParams } from "./lib.js";

const quick = Boolean(process.env.BENCH_QUICK);
const idleCalls = quick ? 5_000 : 30_000;
const loadedCalls = quick ? 300 : 2_000;
/** argon2 hashes kept in flight during the loaded runs: twice libuv's default 4 threads. */
const hashesInFlight = 8;

interface Figures {
  name: string;
  perCallUs: number;
  p50Ms: number;
  p99Ms: number;
}

async function main(): Promise<void> {
  const results: Figures[] = [];
  for (const alg of ["EdDSA", "ES256"] as const) {
    const pair = alg === "EdDSA" ? await generateKeyPair("EdDSA", { crv: "Ed25519" }) : await generateKeyPair("ES256");
    const kid = `bench-${alg}`;
    const token = await new SignJWT({ sub: "user", aud: "bench", iss: "tessera" })
      .setProtectedHeader({ alg, kid, typ: "JWT" })
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(pair.privateKey);
    const key: VerificationKey = { kid, alg, publicKey: pair.publicKey as CryptoKey };
    const verifier = new TokenVerifier({
      ring: { algorithms: [alg] as readonly SigningAlg[], keyFor: async (k: string) => (k === kid ? key : undefined) },
      clock: systemClock,
      cacheEntries: 0,
    });
    const options = { audience: "bench", issuer: "tessera", algorithms: [alg], requiredClaims: ["exp"] };
    const ways: Array<[string, () => Promise<unknown>]> = [
      [`${alg} jose jwtVerify (WebCrypto)`, () => jwtVerify(token, pair.publicKey, options)],
      [`${alg} TokenVerifier (node:crypto)`, () => verifier.verify(token, { audience: "bench", issuer: "tessera" })],
    ];
    for (const [name, call] of ways) {
      const perCallUs = await idle(call);
      const { p50Ms, p99Ms } = await underHashing(call);
      results.push({ name, perCallUs, p50Ms, p99Ms });
    }
  }
  console.log(`per call: sequential, idle (${idleCalls} calls); latency: one call at a time while ${hashesInFlight} argon2id hashes run (${argonParams.memoryCost} KiB, t=${argonParams.timeCost})`);
  for (const r of results) {
    console.log(`${r.name.padEnd(36)} ${r.perCallUs.toFixed(1).padStart(7)} µs/call idle   under hashing: p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms`);
  }
}

/** Mean µs per call, one after another. */
async function idle(call: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 500; i++) await call();
  const t = performance.now();
  for (let i = 0; i < idleCalls; i++) await call();
  return ((performance.now() - t) * 1000) / idleCalls;
}

/** Latency of one call at a time while `hashesInFlight` argon2id hashes keep libuv's pool busy. */
async function underHashing(call: () => Promise<unknown>): Promise<{ p50Ms: number; p99Ms: number }> {
  let running = true;
  const hasher = async () => {
    while (running) await argon2.hash("violet-kettle-harbour-29", { type: argon2.argon2id, ...argonParams });
  };
  const hashers = Array.from({ length: hashesInFlight }, hasher);
  await new Promise((r) => setTimeout(r, 200));
  const latencies: number[] = [];
  for (let i = 0; i < loadedCalls; i++) {
    const t = performance.now();
    await call();
    latencies.push(performance.now() - t);
  }
  running = false;
  await Promise.all(hashers);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!;
  return { p50Ms: pct(0.5), p99Ms: pct(0.99) };
}

await main();
