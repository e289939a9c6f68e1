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
import { OwedWrites } from "../../src/core/owed-writes.js";
import { TokenVerifier } from "../../src/core/token-verifier.js";
import { silentLogger } from "../../src/logger.js";
import { openStore } from "../../src/store/index.js";
import { StoreUnavailableError, type SigningKeyStore, type Store } from "../../src/store/ports.js";
import Database from "better-sqlite3";
import { storesUnderTest } from "../support/server.js";
import { spyOn } from "../support/spy.js";
import { storeHarness, type StoreHarness } from "../support/store.js";

const kidOf = (token: string) => decodeProtectedHeader(token).kid;

describe("core: key ring across instances, on the injected clock", () => {
  let dir: string;
  let store: Store;
  let clock: ManualClock;
  // Rotations promote at once here (the publication lead is covered in test/credentials).
  const config = loadConfig({ TESSERA_CLIENT_IDS: "c", TESSERA_KEY_PUBLISH_SECONDS: "0" });
  const open = () => KeyRing.open({ keys: store.keys, config, clock, logger: silentLogger });

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

  it("a revocation holds at once on the revoking instance, even beside a reload that read the key list before it", async () => {
    // A token check's reload (30 s on) reads the key list, then is held; the revocation is
    // written meanwhile. Held: the reload's answer, which no longer says how the keys stand.
    let hold: { reached: () => void; released: Promise<void> } | undefined;
    let revokedInStore!: () => void;
    const revoked = new Promise<void>((resolve) => (revokedInStore = resolve));
    const keys: SigningKeyStore = {
      ...store.keys,
      async list() {
        const records = await store.keys.list();
        const h = hold;
        hold = undefined;
        if (h) {
          h.reached();
          await h.released;
        }
        return records;
      },
      async revoke(kid, at) {
        const done = await store.keys.revoke(kid, at);
        revokedInStore();
        return done;
      },
    };
    const ring = await KeyRing.open({ keys, config, clock, logger: silentLogger });
    const verifier = new TokenVerifier({ ring, clock });
    const token = await ring.sign({ sub: "x" }, 600);
    const kid = kidOf(token)!;
    assert.equal((await verifier.verify(token)).sub, "x");

    clock.advance(30_000);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const reached = new Promise<void>((resolve) => (hold = { reached: resolve, released }));
    const check = verifier.verify(token); // began before the revocation: it may still pass
    await reached;
    const revoking = ring.revoke(kid);
    await revoked;
    await new Promise((resolve) => setTimeout(resolve, 20)); // the revocation now waits for a reload
    release();
    await check;
    const { signingKid } = await revoking;

    assert.notEqual(signingKid, kid, "the revoked key no longer signs");
    assert.notEqual(kidOf(await ring.sign({ sub: "x" }, 600)), kid);
    await assert.rejects(verifier.verify(token), (e: unknown) => e instanceof AuthError && e.reason === "INVALID_TOKEN" && /revoked key/.test(e.message));
    assert.ok(!(await ring.jwks()).some((k) => k.kid === kid), "the revoked key left the JWKS");
  });

  it("a reload on news that fails leaves the key list stale: the next use reads it again, and a key revoked elsewhere verifies nothing", async () => {
    let unreachable = false;
    const down = new StoreUnavailableError("MongoDB unavailable: connection reset");
    const keys: SigningKeyStore = { ...store.keys, list: () => (unreachable ? Promise.reject(down) : store.keys.list()) };
    const told = await KeyRing.open({ keys, config, clock, logger: silentLogger });
    const verifier = new TokenVerifier({ ring: told, clock });
    const other = await open();
    const token = await told.sign({ sub: "x" }, 600);
    assert.equal((await verifier.verify(token)).sub, "x");

    await other.revoke(kidOf(token)!);
    unreachable = true;
    await assert.rejects(told.reloadNow(), (e: unknown) => e === down);
    unreachable = false;
    // Not a second of its clock later: only the failed reload can make it read the list again.
    await assert.rejects(verifier.verify(token), (e: unknown) => e instanceof AuthError && e.reason === "INVALID_TOKEN" && /revoked key/.test(e.message));
  });

  describe("a change whose write the store took, then failing here (the store unreachable from then on)", () => {
    const down = new StoreUnavailableError("MongoDB unavailable: connection reset");
    /** The store's keys, every read of the list refused once `write` has been made. */
    const failingAfter = (write: "revoke" | "rotate" | "insertGeneration"): SigningKeyStore => {
      let unreachable = false;
      const keys: SigningKeyStore = { ...store.keys, list: () => (unreachable ? Promise.reject(down) : store.keys.list()) };
      const made = store.keys[write] as (...args: unknown[]) => Promise<unknown>;
      (keys as unknown as Record<string, unknown>)[write] = async (...args: unknown[]) => {
        const done = await made.apply(store.keys, args);
        unreachable = true;
        return done;
      };
      return keys;
    };
    /** A ring on `keys`, whose changes another worker's ring (on the store as it is) is told of. */
    const told = async (keys: SigningKeyStore) => {
      const other = await open(); // first: the store's keys are made
      const ring = await KeyRing.open({ keys, config, clock, logger: silentLogger });
      const news: string[] = [];
      ring.onChange(() => {
        news.push("keys changed");
        return other.reloadNow();
      });
      return { ring, other, news };
    };

    it("a revocation whose re-read of the list fails still tells the other workers: they verify nothing with the key", async () => {
      const { ring, other, news } = await told(failingAfter("revoke"));
      const token = await other.sign({ sub: "x" }, 600);
      const verifier = new TokenVerifier({ ring: other, clock });
      assert.equal((await verifier.verify(token)).sub, "x");

      await assert.rejects(ring.revoke(kidOf(token)!), (e: unknown) => e === down);
      assert.deepEqual(news, ["keys changed"]);
      await assert.rejects(verifier.verify(token), (e: unknown) => e instanceof AuthError && e.reason === "INVALID_TOKEN" && /revoked key/.test(e.message));
    });

    it("a revocation of the next key whose replacement the store refuses still tells the other workers", async () => {
      const { ring, other, news } = await told(store.keys);
      const [, next] = await store.keys.list();
      const refused = spyOn(store.keys, "insertGeneration", async () => {
        throw down;
      });
      try {
        await assert.rejects(ring.revoke(next!.kid), (e: unknown) => e === down);
      } finally {
        refused.restore();
      }
      assert.deepEqual(news, ["keys changed"]);
      assert.ok(!(await other.jwks()).some((k) => k.kid === next!.kid), "the revoked next key left the other worker's JWKS");
      assert.ok(!(await ring.jwks()).some((k) => k.kid === next!.kid), "and this worker's own JWKS");
    });

    it("a rotation whose re-read of the list fails still tells the other workers: they sign with the promoted key", async () => {
      const { ring, other, news } = await told(failingAfter("rotate"));
      const before = kidOf(await other.sign({ sub: "x" }, 60));

      await assert.rejects(ring.rotate(), (e: unknown) => e === down);
      assert.deepEqual(news, ["keys changed"]);
      const promoted = (await store.keys.list()).at(-2)!.kid;
      assert.notEqual(promoted, before);
      assert.equal(kidOf(await other.sign({ sub: "x" }, 60)), promoted);
    });

    it("a change that fails before anything is written tells no one", async () => {
      let unreachable = false;
      const { ring, news } = await told({ ...store.keys, list: () => (unreachable ? Promise.reject(down) : store.keys.list()) });
      unreachable = true;
      await assert.rejects(ring.rotate(), (e: unknown) => e === down);
      await assert.rejects(ring.revoke("some-kid"), (e: unknown) => e === down);
      assert.deepEqual(news, []);
    });
  });

  it("a clock moved back counts as time passed: the next signature reloads", async () => {
    const [a, b] = [await open(), await open()];
    const rotated = await b.rotate();
    clock.advance(-1_000);
    assert.equal(kidOf(await a.sign({ sub: "x" }, 60)), rotated);
  });

  describe("a start whose key write the store refuses", () => {
    /** The store's keys, their writes refused with `refusal` while it is set (a full disk: diskFull). */
    let refusal: StoreUnavailableError | undefined;
    const refusing = (): SigningKeyStore => {
      const refuse = <A extends unknown[], R>(write: (...args: A) => Promise<R>) => (...args: A) => (refusal ? Promise.reject(refusal) : write(...args));
      return { ...store.keys, insertGeneration: refuse(store.keys.insertGeneration), rotate: refuse(store.keys.rotate), revoke: refuse(store.keys.revoke) };
    };
    const full = new StoreUnavailableError("embedded store unavailable (SQLITE_FULL)", { diskFull: true });
    let owed: OwedWrites;
    const openOwing = () => KeyRing.open({ keys: refusing(), config, clock, logger: silentLogger, owed });
    beforeEach(() => {
      refusal = undefined;
      owed = new OwedWrites(silentLogger, 10);
    });
    afterEach(() => owed.close());

    it("for a full disk, a single stored key (from before next keys existed) signs until space is back; then it is promoted and the next key published, by itself", async () => {
      const first = await open();
      const [signing, next] = (await store.keys.list()).map((r) => r.kid);
      const db = new Database(join(dir, "tessera.db"));
      db.prepare("DELETE FROM signing_keys WHERE kid = ?").run(next);
      db.close();
      refusal = full;
      const ring = await openOwing();
      assert.equal(kidOf(await ring.sign({ sub: "x" }, 60)), signing);
      assert.equal(kidOf(await first.sign({ sub: "x" }, 60)), signing);
      assert.deepEqual((await store.keys.list()).map((r) => r.kid), [signing]);

      refusal = undefined;
      let records = await store.keys.list();
      for (let i = 0; i < 100 && records.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 10));
        records = await store.keys.list();
      }
      assert.deepEqual(records.map((r) => r.generation), [1, 2], "the next key published");
      assert.equal(records[0]!.kid, signing);
      assert.equal(records[0]!.activatedAt.getTime(), clock.now().getTime(), "the stored key promoted as the start's write does");
      assert.equal(kidOf(await ring.sign({ sub: "x" }, 60)), signing);
    });

    it("for a full disk with no key stored (a first start), fails with the store's refusal", async () => {
      refusal = full;
      await assert.rejects(openOwing(), full);
      assert.deepEqual(await store.keys.list(), []);
    });

    it("for another reason than a full disk, fails as before", async () => {
      await open();
      const [, next] = (await store.keys.list()).map((r) => r.kid);
      const db = new Database(join(dir, "tessera.db"));
      db.prepare("DELETE FROM signing_keys WHERE kid = ?").run(next);
      db.close();
      const down = new StoreUnavailableError("MongoDB unavailable");
      refusal = down;
      await assert.rejects(openOwing(), down);
    });
  });
});

for (const kind of storesUnderTest()) {
  describe(`core: a start publishes a next key whenever none is (${kind})`, () => {
    let harness: StoreHarness;
    const config = loadConfig({ TESSERA_CLIENT_IDS: "c" });
    beforeEach(() => (harness = storeHarness(kind)));
    afterEach(() => harness.cleanup());

    it("the next key revoked and its replacement refused by the store: the next start publishes one above it, and the key that signed still signs", async () => {
      const store = await harness.open("nextkey");
      const clock = new ManualClock(Date.parse("2032-02-02T00:00:00Z"));
      const open = () => KeyRing.open({ keys: store.keys, config, clock, logger: silentLogger });
      const ring = await open();
      const [signing, next] = await store.keys.list();
      const refused = spyOn(store.keys, "insertGeneration", async () => {
        throw new StoreUnavailableError("MongoDB unavailable: connection reset");
      });
      await assert.rejects(ring.revoke(next!.kid), /connection reset/);
      refused.restore();
      const revoked = await store.keys.list();
      assert.deepEqual(revoked.map((r) => [r.kid, r.revokedAt !== undefined]), [[signing!.kid, false], [next!.kid, true]], "no next key published");

      const started = await open();
      const records = await store.keys.list();
      assert.deepEqual(records.slice(0, 2), revoked, "nothing else changes");
      assert.equal(records.length, 3);
      assert.deepEqual([records[2]!.generation, records[2]!.revokedAt], [3, undefined]);
      assert.deepEqual((await started.jwks()).map((k) => k.kid), [records[2]!.kid, signing!.kid], "published");
      assert.equal(kidOf(await started.sign({ sub: "x" }, 60)), signing!.kid);
      await open();
      assert.equal((await store.keys.list()).length, 3, "a start with a next key published adds none");
    });
  });

  describe(`core: a change of TESSERA_JWT_ALG retires the keys of the algorithm before (${kind})`, () => {
    let harness: StoreHarness;
    const env = { TESSERA_CLIENT_IDS: "c", TESSERA_ACCESS_TOKEN_TTL_SECONDS: "60", TESSERA_REFRESH_TOKEN_TTL_SECONDS: "120" };
    beforeEach(() => (harness = storeHarness(kind)));
    afterEach(() => harness.cleanup());

    it("the key that signed ends as a rotation ends it: it verifies until its notAfter, then leaves the JWKS and is deleted; switching back makes a new key", async () => {
      const store = await harness.open("algchange");
      const clock = new ManualClock(Date.parse("2032-02-02T00:00:00Z"));
      const open = (alg: string) => KeyRing.open({ keys: store.keys, config: loadConfig({ ...env, TESSERA_JWT_ALG: alg }), clock, logger: silentLogger });
      const es = await open("ES256");
      const token = await es.sign({ sub: "x" }, 60);
      const oldKid = kidOf(token)!;
      const esKids = (await store.keys.list()).map((r) => r.kid);
      clock.advance(1_000);

      const ed = await open("EdDSA");
      const changedAt = clock.now().getTime();
      const verifier = new TokenVerifier({ ring: ed, clock });
      const old = (await store.keys.list()).find((r) => r.kid === oldKid)!;
      // 120 s, the longer token lifetime, plus the 30 s in which other instances may still sign with it.
      assert.deepEqual([old.retiredAt?.getTime(), old.notAfter?.getTime()], [changedAt, changedAt + 150_000], "retired by the change");
      assert.equal(decodeProtectedHeader(await ed.sign({ sub: "x" }, 60)).alg, "EdDSA");
      assert.equal((await verifier.verify(token, { allowExpired: true })).sub, "x", "verifies until its notAfter");
      assert.ok((await ed.jwks()).some((k) => k.kid === oldKid));
      assert.deepEqual(
        (await store.keys.list()).filter((r) => r.alg === "ES256" && r.retiredAt === undefined).map((r) => r.kid),
        [],
        "no key of the algorithm before is left without an end",
      );

      clock.advance(150_000);
      await assert.rejects(verifier.verify(token, { allowExpired: true }), (e: unknown) => e instanceof AuthError && e.reason === "INVALID_TOKEN");
      assert.ok(!(await ed.jwks()).some((k) => k.kid === oldKid), "gone from the JWKS");
      clock.advance(1_000);
      await store.keys.deleteExpired(clock.now(), new Date(0));
      assert.ok(!(await store.keys.list()).some((r) => r.kid === oldKid), "deleted by housekeeping");

      const back = await open("ES256");
      const kid = kidOf(await back.sign({ sub: "x" }, 60))!;
      assert.ok(!esKids.includes(kid), "a new key of that algorithm signs, not one stored before the change");
    });

    it("two instances starting at once with the new algorithm retire both keys before it and sign with one key", async () => {
      const store = await harness.open("algchange2");
      const clock = new ManualClock(Date.parse("2032-02-02T00:00:00Z"));
      const open = (alg: string) => KeyRing.open({ keys: store.keys, config: loadConfig({ ...env, TESSERA_JWT_ALG: alg }), clock, logger: silentLogger });
      await open("ES256");
      clock.advance(1_000);
      const [a, b] = await Promise.all([open("EdDSA"), open("EdDSA")]);
      const at = clock.now().getTime();
      const records = await store.keys.list();
      assert.deepEqual(
        records.map((r) => [r.generation, r.alg, r.retiredAt?.getTime(), r.notAfter?.getTime()]),
        [
          [1, "ES256", at, at + 150_000],
          [2, "ES256", at, at + 150_000],
          [3, "EdDSA", undefined, undefined],
          [4, "EdDSA", undefined, undefined],
        ],
      );
      assert.equal(kidOf(await a.sign({ sub: "x" }, 60)), records[2]!.kid);
      assert.equal(kidOf(await b.sign({ sub: "x" }, 60)), records[2]!.kid);
    });
  });
}

// Under HS256 the tokens' header names "hs256" whatever the secret; a verification names the key
// by the secret's id ("hs256:" and 16 characters), which what is made from a token records.
// That id ends with its secret (another secret, another algorithm); "hs256" alone (recorded before
// secrets had ids) names no secret; and an EdDSA or ES256 key, none of which verifies under
// HS256, a revoked one included, is as ended there (README, Emergency revocation).
describe("core: key ring, the ids of HS256 secrets", () => {
  let dir: string;
  let store: Store;
  const clock = new ManualClock(Date.parse("2032-02-02T00:00:00Z"));
  const ring = (env: Record<string, string>) => KeyRing.open({ keys: store.keys, config: loadConfig({ TESSERA_CLIENT_IDS: "c", ...env }), clock, logger: silentLogger });
  const hs256 = (secret: string) => ring({ TESSERA_JWT_ALG: "HS256", TESSERA_JWT_SECRET: secret });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "tessera-ring-"));
    store = await openStore({ dataDir: dir });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a token's kid is the secret's id once verified; it ends with the secret, and under EdDSA; an EdDSA kid is ended under HS256", async () => {
    const first = await hs256("the first HS256 secret, long enough: 0123456789");
    const token = await first.sign({ sub: "x" }, 60);
    assert.equal(kidOf(token), "hs256");
    const { kid } = await new TokenVerifier({ ring: first, clock }).verifyKeyed(token);
    assert.match(kid, /^hs256:[\w-]{16}$/);
    assert.equal(await first.anyRevoked([kid]), false);
    assert.equal(await first.anyRevoked(["hs256"]), false);

    const second = await hs256("the second HS256 secret, long enough: 9876543210");
    assert.equal(await second.anyRevoked([kid]), true, "another secret");
    assert.equal(await second.anyRevoked(["hs256"]), false, "no secret in particular");

    const eddsa = await ring({ TESSERA_JWT_ALG: "EdDSA" });
    assert.equal(await eddsa.anyRevoked([kid]), true, "another algorithm");
    assert.equal(await eddsa.anyRevoked(["hs256"]), false, "no secret in particular");
    const edKid = kidOf(await eddsa.sign({ sub: "x" }, 60))!;
    assert.equal(await eddsa.anyRevoked([edKid]), false);
    assert.equal(await first.anyRevoked([edKid]), true, "an EdDSA key verifies nothing under HS256");
  });
});
