// Private signing keys at rest: sealed with TESSERA_KEY_ENCRYPTION_KEY, and useless without it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.js";
import { systemClock } from "../../src/core/clock.js";
import { KeySealer } from "../../src/core/key-sealing.js";
import { KeyRing } from "../../src/core/key-ring.js";
import { TokenVerifier } from "../../src/core/token-verifier.js";
import { silentLogger } from "../../src/logger.js";
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
});
