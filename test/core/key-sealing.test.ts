// Private signing keys at rest: sealed with TESSERA_KEY_ENCRYPTION_KEY, and useless without it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.js";
import { ManualClock, systemClock } from "../../src/core/clock.js";
import { KeySealer } from "../../src/core/key-sealing.js";
import { KeyRing } from "../../src/core/key-ring.js";
import { TokenVerifier } from "../../src/core/token-verifier.js";
import { createLogger, silentLogger } from "../../src/logger.js";
import { openStore } from "../../src/store/index.js";

const secret = "a-key-encryption-secret-of-32-bytes-or-more";
const jwk = JSON.stringify({ kty: "OKP", crv: "Ed25519", x: "pub", d: "private-part" });

describe("core: sealing private signing keys", () => {
  it("seals with AES-256-GCM and opens with the same secret and kid", () => {
    const sealer = new KeySealer(secret);
    const sealed = sealer.seal(jwk, "kid-1");
    assert.match(sealed, /^sealed:v1:[A-Za-z0-9_-]+$/);
    assert.ok(!sealed.includes("private-part"));
    assert.notEqual(sealer.seal(jwk, "kid-1"), sealed, "a fresh IV every time");
    assert.equal(sealer.open(sealed, "kid-1"), jwk);
  });

  it("refuses another secret, another kid (the record it was sealed for), or a truncated form", () => {
    const sealed = new KeySealer(secret).seal(jwk, "kid-1");
    assert.throws(() => new KeySealer("another-secret-that-is-32-bytes-long!!").open(sealed, "kid-1"), /not the secret it was sealed with/);
    assert.throws(() => new KeySealer(secret).open(sealed, "kid-2"), /cannot be unsealed/);
    assert.throws(() => new KeySealer(secret).open("sealed:v1:AAAA", "kid-1"), /truncated/);
  });

  it("asks for the secret when a sealed key is read without one, and passes plain keys through", () => {
    const sealed = new KeySealer(secret).seal(jwk, "kid-1");
    assert.throws(() => new KeySealer(undefined).open(sealed, "kid-1"), /set TESSERA_KEY_ENCRYPTION_KEY/);
    assert.equal(new KeySealer(undefined).seal(jwk, "kid-1"), jwk);
    assert.equal(new KeySealer(secret).open(jwk, "kid-1"), jwk, "keys stored before sealing was turned on still load");
  });

  it("stores sealed keys, signs and verifies across a restart, and will not start without the secret", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-sealed-"));
    try {
      const env = { TESSERA_DATA_DIR: dir, TESSERA_CLIENT_IDS: "c", TESSERA_ADMIN_TOKEN: "0123456789abcdef0123" };
      const sealedConfig = loadConfig({ ...env, TESSERA_KEY_ENCRYPTION_KEY: secret });
      let store = await openStore({ dataDir: dir });
      const keys = await KeyRing.open({ keys: store.keys, config: sealedConfig, clock: systemClock, logger: silentLogger });
      const token = await keys.sign({ sub: "u1" }, 60);
      const [record] = await store.keys.list();
      assert.match(record.privateJwk, /^sealed:v1:/);
      assert.ok(!record.privateJwk.includes('"d"'), "no private key material in the clear");
      await store.close();

      store = await openStore({ dataDir: dir });
      const again = await KeyRing.open({ keys: store.keys, config: sealedConfig, clock: systemClock, logger: silentLogger });
      assert.equal((await new TokenVerifier({ ring: again, clock: systemClock }).verify(token)).sub, "u1");
      await assert.rejects(
        KeyRing.open({ keys: store.keys, config: loadConfig(env), clock: systemClock, logger: silentLogger }),
        /set TESSERA_KEY_ENCRYPTION_KEY/,
      );
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("a start with another secret than the keys were sealed with is refused, naming TESSERA_KEY_ENCRYPTION_KEY", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-sealed-"));
    try {
      const env = { TESSERA_DATA_DIR: dir, TESSERA_CLIENT_IDS: "c", TESSERA_ADMIN_TOKEN: "0123456789abcdef0123" };
      const store = await openStore({ dataDir: dir });
      await KeyRing.open({ keys: store.keys, config: loadConfig({ ...env, TESSERA_KEY_ENCRYPTION_KEY: secret }), clock: systemClock, logger: silentLogger });
      await assert.rejects(
        KeyRing.open({ keys: store.keys, config: loadConfig({ ...env, TESSERA_KEY_ENCRYPTION_KEY: `${secret}-changed` }), clock: systemClock, logger: silentLogger }),
        /^Error: signing key \S+ cannot be unsealed: TESSERA_KEY_ENCRYPTION_KEY is not the secret it was sealed with$/,
      );
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an instance running without the secret (sealing being turned on instance by instance) keeps verifying when another stores sealed keys: the key is named in one error log, published and verified; signing with it is refused, named", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-sealed-"));
    try {
      const env = { TESSERA_DATA_DIR: dir, TESSERA_CLIENT_IDS: "c", TESSERA_ADMIN_TOKEN: "0123456789abcdef0123" };
      const store = await openStore({ dataDir: dir });
      const clock = new ManualClock(new Date());
      const logs: string[] = [];
      const plain = await KeyRing.open({ keys: store.keys, config: loadConfig(env), clock, logger: createLogger("info", (line) => logs.push(line)) });
      const sealed = await KeyRing.open({ keys: store.keys, config: loadConfig({ ...env, TESSERA_KEY_ENCRYPTION_KEY: secret }), clock, logger: silentLogger });
      await sealed.rotate(); // promotes the plain next key; the new next key is sealed
      clock.advance(601_000);
      await sealed.rotate(); // promotes the sealed key: it signs from now
      const token = await sealed.sign({ sub: "u1" }, 60);
      const sealedKid = JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString()).kid as string;

      await plain.reloadNow();
      assert.deepEqual((await plain.jwks()).map((k) => k.kid), (await sealed.jwks()).map((k) => k.kid));
      assert.equal((await new TokenVerifier({ ring: plain, clock }).verify(token)).sub, "u1");
      await assert.rejects(plain.sign({ sub: "u1" }, 60), new RegExp(`^Error: signing key ${sealedKid} is sealed: set TESSERA_KEY_ENCRYPTION_KEY to the secret it was sealed with$`));
      await plain.reloadNow();
      const errors = logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.level === "error");
      assert.equal(errors.length, 2, "one per sealed key, once");
      assert.ok(errors.every((line) => line.msg === "signing key cannot be unsealed: it verifies, and cannot sign" && /TESSERA_KEY_ENCRYPTION_KEY/.test(String(line.error))), JSON.stringify(errors));
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
