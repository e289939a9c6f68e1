// Two instances' key rings on one store: they learn about each other's rotations on the injected
// clock's schedule (a reload every 30 s before signing; on an unknown kid at once, at most every
// 2 s), never on the wall clock's.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeProtectedHeader } from "jose";
import { loadConfig } from "../../src/config.js";
import { ManualClock } from "../../src/core/clock.js";
import { AuthError } from "../../src/core/errors.js";
import { KeyRing } from "../../src/core/key-ring.js";
import { TokenVerifier } from "../../src/core/token-verifier.js";
import { silentLogger } from "../../src/logger.js";
import { openStore } from "../../src/store/index.js";
import type { Store } from "../../src/store/ports.js";

describe("core: key ring across instances, on the injected clock", () => {
  let dir: string;
  let store: Store;
  let clock: ManualClock;
  // Rotations promote at once here (the publication lead is covered in test/credentials).
  const config = loadConfig({ TESSERA_CLIENT_IDS: "c", TESSERA_KEY_PUBLISH_SECONDS: "0" });
  const open = () => KeyRing.open({ keys: store.keys, config, clock, logger: silentLogger });
  const kidOf = (token: string) => decodeProtectedHeader(token).kid;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "tessera-ring-"));
    store = await openStore({ dataDir: dir });
    clock = new ManualClock(Date.parse("2032-02-02T00:00:00Z"));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("signs with another instance's rotated key once 30 s of its clock have passed", async () => {
    const [a, b] = [await open(), await open()];
    const before = kidOf(await a.sign({ sub: "x" }, 60));
    const rotated = await b.rotate();
    assert.notEqual(rotated, before);
    clock.advance(29_000);
    assert.equal(kidOf(await a.sign({ sub: "x" }, 60)), before, "within the interval: no reload");
    clock.advance(1_000);
    assert.equal(kidOf(await a.sign({ sub: "x" }, 60)), rotated);
  });

  it("verifies a token of an unknown kid after one reload, and reloads for another at most every 2 s of its clock", async () => {
    const [a, b] = [await open(), await open()];
    const verifier = new TokenVerifier({ ring: a, clock });
    // Two rotations: b then signs with a key published after a read the list.
    await b.rotate();
    await b.rotate();
    assert.equal((await verifier.verify(await b.sign({ sub: "first" }, 600))).sub, "first");
    await b.rotate();
    await b.rotate();
    const second = await b.sign({ sub: "second" }, 600);
    await assert.rejects(verifier.verify(second), (e: unknown) => e instanceof AuthError && e.reason === "INVALID_TOKEN" && /unknown key/.test(e.message));
    clock.advance(2_000);
    assert.equal((await verifier.verify(second)).sub, "second");
  });

  it("a clock moved back counts as time passed: the next signature reloads", async () => {
    const [a, b] = [await open(), await open()];
    const rotated = await b.rotate();
    clock.advance(-1_000);
    assert.equal(kidOf(await a.sign({ sub: "x" }, 60)), rotated);
  });
});
