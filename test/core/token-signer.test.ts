// Tokens are signed with node:crypto on the event loop, byte for byte as jose's SignJWT signs
// them, and never wait for libuv's pool (where the password hashes run).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, read, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeProtectedHeader, generateKeyPair, jwtVerify, SignJWT } from "jose";
import { loadConfig } from "../../src/config.js";
import { ManualClock } from "../../src/core/clock.js";
import { KeyRing } from "../../src/core/key-ring.js";
import { signJwt, type SigningKey } from "../../src/core/token-signer.js";
import { silentLogger } from "../../src/logger.js";
import { openStore } from "../../src/store/index.js";
import type { Store } from "../../src/store/ports.js";

const claims = { sub: "user-1", sid: "session-1", jti: "jti-1", aud: "client", iss: "tessera", iat: 1_900_000_000, exp: 1_900_000_900, name: "Zoë 😀" };

const joseSigned = (key: SigningKey) => new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" }).sign(key.privateKey);

describe("core: token signer", () => {
  it("EdDSA: the same bytes as jose's SignJWT (Ed25519 signatures are deterministic)", async () => {
    const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const key: SigningKey = { kid: "k-ed", alg: "EdDSA", privateKey };
    const token = signJwt(key, claims);
    assert.equal(token, await joseSigned(key));
    assert.deepEqual((await jwtVerify(token, publicKey, { currentDate: new Date(1_900_000_100_000) })).payload, claims);
  });

  it("HS256: the same bytes as jose's SignJWT", async () => {
    const key: SigningKey = { kid: "hs256", alg: "HS256", privateKey: new TextEncoder().encode("a-shared-secret-of-some-length-0123456789") };
    assert.equal(signJwt(key, claims), await joseSigned(key));
  });

  it("ES256: a signature jose verifies, the header and payload as jose writes them", async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const key: SigningKey = { kid: "k-es", alg: "ES256", privateKey };
    const token = signJwt(key, claims);
    const ours = token.split(".");
    const theirs = (await joseSigned(key)).split(".");
    assert.deepEqual(ours.slice(0, 2), theirs.slice(0, 2));
    assert.equal(Buffer.from(ours[2], "base64url").length, 64, "r||s, as JWS has it");
    const verified = await jwtVerify(token, publicKey, { currentDate: new Date(1_900_000_100_000) });
    assert.deepEqual(verified.payload, claims);
    assert.deepEqual(verified.protectedHeader, { alg: "ES256", kid: "k-es", typ: "JWT" });
  });

  describe("the key ring signs while every thread of libuv's pool is busy", () => {
    let dir: string;
    let store: Store;
    let fifo: number | undefined;
    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), "tessera-signer-"));
      store = await openStore({ dataDir: dir });
    });
    afterEach(async () => {
      if (fifo !== undefined) closeSync(fifo);
      fifo = undefined;
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });

    for (const alg of ["EdDSA", "ES256"] as const) {
      it(`${alg}: the token is signed without waiting for the pool`, async () => {
        const clock = new ManualClock(Date.parse("2032-02-02T00:00:00Z"));
        const config = loadConfig({ TESSERA_CLIENT_IDS: "c", TESSERA_JWT_ALG: alg });
        const ring = await KeyRing.open({ keys: store.keys, config, clock, logger: silentLogger });
        await ring.sign({ sub: "warm" }, 60);
        // Every pool thread blocks reading a FIFO nobody writes to (O_RDWR: the open itself does
        // not wait for a writer), until the test writes one byte per read.
        const path = join(dir, "hold");
        execFileSync("mkfifo", [path]);
        fifo = openSync(path, "r+");
        const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
        const held = Array.from({ length: threads }, () => new Promise((resolve) => read(fifo!, Buffer.alloc(1), 0, 1, null, resolve)));
        try {
          const signed = ring.sign({ sub: "while-held" }, 60);
          const outcome = await Promise.race([signed, new Promise((resolve) => setTimeout(resolve, 2000, "still waiting"))]);
          assert.notEqual(outcome, "still waiting", "the signature waited for the pool");
          assert.equal(decodeProtectedHeader(outcome as string).alg, alg);
        } finally {
          writeSync(fifo, Buffer.alloc(threads));
          await Promise.all(held);
        }
      });
    }
  });
});
