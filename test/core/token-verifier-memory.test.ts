// The verified-token cache remembers a token by a digest of its text, never the text: a refresh
// token (days) or an access token stays in the cache until its exp, revoked or not, and a heap
// dump or a core file of the process must not hand it to whoever reads it. Checked in a child
// process of its own (a small heap), from a V8 heap snapshot, which holds only what is reachable.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

// The child verifies one HS256 token, keeps only its signature reversed, then searches a heap
// snapshot for the signature (the token's own secret part).
const child = `
import { createHmac } from "node:crypto";
import { getHeapSnapshot } from "node:v8";
const { TokenVerifier } = await import("./src/core/token-verifier.ts");
const key = new Uint8Array(32).fill(7);
const ring = { algorithms: ["HS256"], keyFor: async (kid) => (kid === "k" ? { alg: "HS256", kid, publicKey: key } : undefined) };
const verifier = new TokenVerifier({ ring, clock: { now: () => new Date() } });
async function verifyOne() {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const input = part({ alg: "HS256", kid: "k", typ: "JWT" }) + "." + part({ sub: "x", iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 3600 });
  const signature = createHmac("sha256", key).update(input).digest("base64url");
  await verifier.verify(input + "." + signature);
  await verifier.verify(input + "." + signature); // a cache hit
  return [...signature].reverse().join("");
}
const reversed = await verifyOne();
const chunks = [];
for await (const c of getHeapSnapshot()) chunks.push(c);
const heap = Buffer.concat(chunks).toString("utf8");
process.stdout.write(JSON.stringify({ hits: verifier.cacheCounts().hits, held: heap.includes([...reversed].reverse().join("")) }));
`;

describe("core: the verified-token cache holds no token text", function () {
  this.timeout(60_000);

  it("after a token was verified (and hit), a heap snapshot does not contain it", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", child], { cwd: process.cwd() });
    const result = JSON.parse(stdout) as { hits: number; held: boolean };
    assert.equal(result.hits, 1, "the second check hit the cache");
    assert.equal(result.held, false, "the token's text is still in the heap");
  });
});
