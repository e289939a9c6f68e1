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
import { openStore, StoreUnavailableError, type SigningKeyRecord, type Store } from "../../src/store/index.js";
import type { AuditInput } from "../../src/core/audit.js";
import { storesUnderTest } from "../support/server.js";
import { freshStores, type StoreHarness } from "../support/store.js";
import { spyOn } from "../support/spy.js";
import { landsThenFails } from "../support/doubtful-writes.js";
import { Collection, MongoNetworkError, type Document, type Filter } from "mongodb";
import { SIGNING_KEYS } from "../../src/store/mongo/mongo-signing-keys.js";

const secret = "a-key-encryption-secret-of-32-bytes-or-more";
const jwk = JSON.stringify({ kty: "OKP", crv: "Ed25519", x: "pub", d: "private-part" });
const previousSecret = "the-previous-key-encryption-secret-0123";
const previousUnneeded =
  'TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS opened no signing key at this start: it may be unset once no instance needs it to start (README "Upgrades", step 4)';

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

  it("opens with the previous secret too (TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS), and tells which keys are to be sealed again under the current one", () => {
    const both = new KeySealer(secret, previousSecret);
    const underPrevious = new KeySealer(previousSecret).seal(jwk, "kid-1");
    assert.deepEqual(both.unseal(underPrevious, "kid-1"), { privateJwk: jwk, reseal: true, previous: true });
    assert.deepEqual(both.unseal(new KeySealer(secret).seal(jwk, "kid-1"), "kid-1"), { privateJwk: jwk, reseal: false, previous: false });
    assert.deepEqual(both.unseal(jwk, "kid-1"), { privateJwk: jwk, reseal: true, previous: false }, "a key in the clear is sealed");
    assert.deepEqual(new KeySealer(secret).unseal(jwk, "kid-1"), { privateJwk: jwk, reseal: true, previous: false });
    assert.deepEqual(new KeySealer(undefined).unseal(jwk, "kid-1"), { privateJwk: jwk, reseal: false, previous: false }, "sealing off: nothing to seal");
    assert.throws(() => both.unseal(underPrevious, "kid-2"), /^Error: signing key kid-2 cannot be unsealed: neither TESSERA_KEY_ENCRYPTION_KEY nor TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS is the secret it was sealed with$/);
    assert.throws(
      () => both.unseal(new KeySealer("a-third-secret-neither-of-them-knows").seal(jwk, "kid-1"), "kid-1"),
      /^Error: signing key kid-1 cannot be unsealed: neither TESSERA_KEY_ENCRYPTION_KEY nor TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS is the secret it was sealed with$/,
    );
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

/** The kid a JWT names. */
const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString()) as { kid: string }).kid;

/** Whether `sealer` opens the stored form of `record`. */
const opens = (sealer: KeySealer, record: SigningKeyRecord) => {
  try {
    sealer.open(record.privateJwk, record.kid);
    return true;
  } catch {
    return false;
  }
};

for (const kind of storesUnderTest()) {
  describe(`core: a new TESSERA_KEY_ENCRYPTION_KEY, the old one as TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS (${kind})`, function () {
    this.timeout(30_000);
    const a = "secret-a-of-the-key-encryption-0123456789";
    const b = "secret-b-of-the-key-encryption-0123456789";
    const env = { TESSERA_CLIENT_IDS: "c", TESSERA_ADMIN_TOKEN: "0123456789abcdef0123" };
    const configOf = (extra: Record<string, string>) => loadConfig({ ...env, ...extra });
    const stores = freshStores(kind);
    let harness: StoreHarness;
    let clock: ManualClock;
    beforeEach(() => {
      harness = stores.harness();
      clock = new ManualClock(new Date());
    });
    afterEach(() => harness.cleanup());

    /** A key ring opened on `store` with `extra`, its log lines and the audit events it recorded. */
    async function open(store: Store, extra: Record<string, string>) {
      const lines: Array<Record<string, unknown>> = [];
      const events: AuditInput[] = [];
      const audit = { record: async (input: AuditInput) => (events.push(input), true) };
      const ring = await KeyRing.open({ keys: store.keys, config: configOf(extra), clock, logger: createLogger("info", (line) => lines.push(JSON.parse(line) as Record<string, unknown>)), audit });
      return { ring, lines, events, resealed: () => lines.filter((l) => l.msg === "signing key re-sealed").map((l) => l.kid as string).sort() };
    }

    /** Three keys (a retired one, the signing one, the next one) sealed under `extra`'s secret, and a token signed. */
    async function keysUnder(store: Store, extra: Record<string, string>) {
      const { ring } = await open(store, extra);
      await ring.rotate();
      clock.advance(601_000);
      const token = await ring.sign({ sub: "u1" }, 3600);
      return { token, before: await store.keys.list() };
    }

    it("keys sealed under A, started with KEY=B and PREVIOUS=A: they sign and verify, each is sealed again under B (logged by kid, audited as key.resealed); then B alone starts, A alone is refused", async () => {
      const store = await harness.open("reseal");
      const { token, before } = await keysUnder(store, { TESSERA_KEY_ENCRYPTION_KEY: a });
      assert.equal(before.length, 3);
      assert.ok(before.every((r) => opens(new KeySealer(a), r)));

      const { ring, lines, events, resealed } = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
      const kids = before.map((r) => r.kid).sort();
      assert.deepEqual(resealed(), kids);
      assert.ok(lines.filter((l) => l.msg === "signing key re-sealed").every((l) => l.level === "info" && Object.keys(l).sort().join() === "kid,level,msg,time"), JSON.stringify(lines));
      assert.deepEqual(events.map((e) => e.subject).sort(), kids);
      assert.ok(events.every((e) => e.type === "key.resealed" && e.outcome === "success"));
      assert.equal((await new TokenVerifier({ ring, clock }).verify(token)).sub, "u1");
      const signed = await ring.sign({ sub: "u2" }, 60);
      assert.equal(kidOf(signed), kidOf(token), "the same key signs");
      const output = JSON.stringify(lines);
      assert.ok(!output.includes(a) && !output.includes(b), "no secret in the logs");

      const after = await store.keys.list();
      assert.deepEqual(after.map(({ privateJwk: _, ...rest }) => rest), before.map(({ privateJwk: _, ...rest }) => rest), "nothing else of a key changes");
      for (const [i, record] of after.entries()) {
        assert.match(record.privateJwk, /^sealed:v1:/);
        assert.ok(opens(new KeySealer(b), record) && !opens(new KeySealer(a), record), `${record.kid} opens with B only`);
        assert.equal(new KeySealer(b).open(record.privateJwk, record.kid), new KeySealer(a).open(before[i]!.privateJwk, record.kid), "the same private key");
      }

      const alone = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b });
      assert.deepEqual(alone.resealed(), []);
      assert.deepEqual(alone.events, []);
      assert.equal((await new TokenVerifier({ ring: alone.ring, clock }).verify(signed)).sub, "u2");
      await assert.rejects(open(store, { TESSERA_KEY_ENCRYPTION_KEY: a }), /^Error: signing key \S+ cannot be unsealed: TESSERA_KEY_ENCRYPTION_KEY is not the secret it was sealed with$/);
    });

    it("TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS that opened no stored key at a start is logged once, at info: it may be unset", async () => {
      const unneeded = (lines: Array<Record<string, unknown>>) =>
        lines.filter((l) => l.msg === previousUnneeded).map(({ time: _, ...rest }) => rest);
      const once = [{ level: "info", msg: previousUnneeded }];
      const store = await harness.open("unneeded");
      await keysUnder(store, { TESSERA_KEY_ENCRYPTION_KEY: a });
      assert.deepEqual(unneeded((await open(store, { TESSERA_KEY_ENCRYPTION_KEY: a })).lines), [], "no previous secret");
      assert.deepEqual(unneeded((await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a })).lines), [], "the keys opened with it");
      const after = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
      assert.deepEqual(unneeded(after.lines), once);
      await after.ring.rotate();
      await after.ring.reloadNow();
      assert.deepEqual(unneeded(after.lines), once, "once, at the start");
      // Keys in the clear are sealed without it; a first start has none.
      const clear = await harness.open("unneededclear");
      await keysUnder(clear, {});
      assert.deepEqual(unneeded((await open(clear, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a })).lines), once);
      assert.deepEqual(unneeded((await open(await harness.open("unneededfirst"), { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a })).lines), once);
    });

    it("keys stored in the clear are sealed once TESSERA_KEY_ENCRYPTION_KEY is set, at that start", async () => {
      const store = await harness.open("clear");
      const { token, before } = await keysUnder(store, {});
      assert.ok(before.every((r) => !r.privateJwk.startsWith("sealed:")));
      const { ring, events, resealed } = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: a });
      assert.deepEqual(resealed(), before.map((r) => r.kid).sort());
      assert.deepEqual(events.map((e) => [e.type, e.subject]).sort(), before.map((r) => ["key.resealed", r.kid]).sort());
      assert.ok((await store.keys.list()).every((r) => r.privateJwk.startsWith("sealed:v1:") && opens(new KeySealer(a), r) && !r.privateJwk.includes('"d"')));
      assert.equal((await new TokenVerifier({ ring, clock }).verify(token)).sub, "u1");
      await assert.rejects(open(store, {}), /^Error: signing key \S+ is sealed: set TESSERA_KEY_ENCRYPTION_KEY to the secret it was sealed with$/);
    });

    it("a re-seal the store refuses does not stop the start: warned of by kid, audited as key.resealed error, the key left as it was, and sealed again at the next start", async () => {
      const store = await harness.open("refused");
      const { before } = await keysUnder(store, { TESSERA_KEY_ENCRYPTION_KEY: a });
      const refused = spyOn(store.keys, "reseal", async () => {
        throw new StoreUnavailableError("MongoDB unavailable: connection reset");
      });
      const first = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
      refused.restore();
      const warned = first.lines.filter((l) => l.msg === "signing key not re-sealed: it is tried again at the next start");
      assert.deepEqual(warned.map((l) => [l.level, l.kid, l.error]).sort(), before.map((r) => ["warn", r.kid, "MongoDB unavailable: connection reset"]).sort());
      assert.deepEqual(first.events.map((e) => [e.type, e.outcome, e.subject]).sort(), before.map((r) => ["key.resealed", "error", r.kid]).sort());
      assert.deepEqual(await store.keys.list(), before);
      assert.equal(kidOf(await first.ring.sign({ sub: "u1" }, 60)), before[1]!.kid, "it signs all the same");
      const next = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
      assert.deepEqual(next.resealed(), before.map((r) => r.kid).sort());
      assert.deepEqual(next.events.map((e) => [e.type, e.outcome, e.subject]).sort(), before.map((r) => ["key.resealed", "success", r.kid]).sort());
      assert.ok((await store.keys.list()).every((r) => opens(new KeySealer(b), r)));
    });

    it("a re-seal written, then answered with an error (its answer lost): logged and audited as key.resealed, as it landed; the next start has nothing to seal", async () => {
      const store = await harness.open("landed");
      const { before } = await keysUnder(store, { TESSERA_KEY_ENCRYPTION_KEY: a });
      const kids = before.map((r) => r.kid).sort();
      landsThenFails(store.keys, "reseal");
      const first = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
      assert.deepEqual(first.resealed(), kids);
      assert.deepEqual(first.events.map((e) => [e.type, e.outcome, e.subject]).sort(), kids.map((kid) => ["key.resealed", "success", kid]));
      assert.deepEqual(first.lines.filter((l) => l.level === "warn"), [], "no re-seal is said to have failed");
      assert.ok((await store.keys.list()).every((r) => opens(new KeySealer(b), r) && !opens(new KeySealer(a), r)));
      const next = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
      assert.deepEqual([next.resealed(), next.events], [[], []]);
    });

    if (kind === "mongo") {
      /** Opens a key ring on `store` that stops between each re-seal's mark and its write (the write to the key fails). */
      async function openStopping(store: Store, extra: Record<string, string>) {
        const updateOne = Collection.prototype.updateOne;
        Collection.prototype.updateOne = function (this: Collection, filter: Filter<Document>, update: unknown, ...rest: unknown[]) {
          if (this.collectionName === SIGNING_KEYS && "privateJwk" in filter) return Promise.reject(new Error("stopped"));
          return (updateOne as (...args: unknown[]) => Promise<unknown>).call(this, filter, update, ...rest);
        } as Collection["updateOne"];
        try {
          const stopped = await open(store, extra);
          assert.equal(stopped.lines.filter((l) => l.msg === "signing key not re-sealed: it is tried again at the next start").length, 3);
        } finally {
          Collection.prototype.updateOne = updateOne;
        }
      }

      it("the keys written, each mark that reports its re-seal refused by the store: each logged and audited as key.resealed all the same; the next start has nothing to seal", async () => {
        const store = await harness.open("unreported");
        const { before } = await keysUnder(store, { TESSERA_KEY_ENCRYPTION_KEY: a });
        const kids = before.map((r) => r.kid).sort();
        const insertOne = Collection.prototype.insertOne;
        Collection.prototype.insertOne = function (this: Collection, ...args: Parameters<Collection["insertOne"]>) {
          const id = (args[0] as Document)._id;
          if (this.collectionName === "marks" && typeof id === "string" && id.startsWith("key-resealed:") && id.endsWith(":reported")) {
            return Promise.reject(new MongoNetworkError("connection reset"));
          }
          return insertOne.apply(this, args);
        } as Collection["insertOne"];
        let first;
        try {
          first = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
        } finally {
          Collection.prototype.insertOne = insertOne;
        }
        assert.deepEqual(first.resealed(), kids);
        assert.deepEqual(first.events.map((e) => [e.type, e.outcome, e.subject]).sort(), kids.map((kid) => ["key.resealed", "success", kid]));
        assert.ok((await store.keys.list()).every((r) => opens(new KeySealer(b), r) && !opens(new KeySealer(a), r)));
        const next = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
        assert.deepEqual([next.resealed(), next.events], [[], []]);
      });

      it("an instance with another TESSERA_KEY_ENCRYPTION_KEY stopped between its re-seals' marks and their writes: a start with KEY=B does not finish them, names each key in an error and leaves it as it was", async () => {
        const store = await harness.open("mistyped");
        const { token, before } = await keysUnder(store, { TESSERA_KEY_ENCRYPTION_KEY: a });
        const mistyped = "secret-c-a-mistyped-key-encryption-0123";
        await openStopping(store, { TESSERA_KEY_ENCRYPTION_KEY: mistyped, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
        assert.deepEqual(await store.keys.list(), before);

        const { ring, lines, events, resealed } = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
        const msg = "signing key not re-sealed: another instance began to seal it under a secret that is not this instance's TESSERA_KEY_ENCRYPTION_KEY; it is left as it was";
        const refused = lines.filter((l) => l.msg === msg).map(({ time: _, ...rest }) => rest);
        const byKid = (x: Record<string, unknown>, y: Record<string, unknown>) => String(x.kid).localeCompare(String(y.kid));
        assert.deepEqual(refused.sort(byKid), before.map((r) => ({ level: "error", msg, kid: r.kid })).sort(byKid));
        assert.deepEqual(resealed(), []);
        assert.deepEqual(events, []);
        assert.deepEqual(await store.keys.list(), before, "every key still under A");
        const output = JSON.stringify(lines);
        assert.ok(![a, b, mistyped].some((secret) => output.includes(secret)), "no secret in the logs");
        assert.equal((await new TokenVerifier({ ring, clock }).verify(token)).sub, "u1");
        assert.equal(kidOf(await ring.sign({ sub: "u2" }, 60)), kidOf(token));
      });

      it("an instance with KEY=B stopped between its re-seals' marks and their writes: the next start with KEY=B finishes them, logged by kid and audited as key.resealed, once", async () => {
        const store = await harness.open("finished");
        const { before } = await keysUnder(store, { TESSERA_KEY_ENCRYPTION_KEY: a });
        await openStopping(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
        const kids = before.map((r) => r.kid).sort();
        const finisher = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
        assert.deepEqual(finisher.resealed(), kids);
        assert.deepEqual(finisher.events.map((e) => [e.type, e.outcome, e.subject]).sort(), kids.map((kid) => ["key.resealed", "success", kid]));
        assert.ok((await store.keys.list()).every((r) => opens(new KeySealer(b), r) && !opens(new KeySealer(a), r)));
        const alone = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b });
        assert.deepEqual([alone.resealed(), alone.events], [[], []]);
      });
    }

    it("two instances starting at once with KEY=B and PREVIOUS=A: each key sealed again once, none lost or changed, both sign and verify each other's tokens", async () => {
      const first = await harness.open("race");
      const second = await harness.open("race");
      const { token, before } = await keysUnder(first, { TESSERA_KEY_ENCRYPTION_KEY: a });
      // Each instance reads the keys before either writes: their re-seals are made at once.
      let waiting = 0;
      let release!: () => void;
      const both = new Promise<void>((resolve) => (release = resolve));
      for (const store of [first, second]) {
        const reseal = store.keys.reseal.bind(store.keys);
        spyOn(store.keys, "reseal", async (...args: Parameters<typeof reseal>) => {
          if (++waiting === 2) release();
          await both;
          return reseal(...args);
        });
      }
      const [x, y] = await Promise.all([first, second].map((store) => open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a })));
      const kids = before.map((r) => r.kid).sort();
      assert.deepEqual([...x!.resealed(), ...y!.resealed()].sort(), kids, "each key once");
      assert.deepEqual([...x!.events, ...y!.events].map((e) => e.subject).sort(), kids);
      const after = await second.keys.list();
      assert.equal(after.length, before.length);
      for (const [i, record] of after.entries()) {
        assert.ok(opens(new KeySealer(b), record) && !opens(new KeySealer(a), record), `${record.kid} opens with B only`);
        assert.equal(new KeySealer(b).open(record.privateJwk, record.kid), new KeySealer(a).open(before[i]!.privateJwk, record.kid));
      }
      const [fromX, fromY] = [await x!.ring.sign({ sub: "x" }, 60), await y!.ring.sign({ sub: "y" }, 60)];
      assert.equal((await new TokenVerifier({ ring: x!.ring, clock }).verify(fromY)).sub, "y");
      assert.equal((await new TokenVerifier({ ring: y!.ring, clock }).verify(fromX)).sub, "x");
      assert.equal((await new TokenVerifier({ ring: y!.ring, clock }).verify(token)).sub, "u1");
      assert.deepEqual((await open(second, { TESSERA_KEY_ENCRYPTION_KEY: b })).resealed(), []);
    });

    it("the rolling change: an instance with KEY=A and PREVIOUS=B (the first step) signs with keys that one with KEY=B and PREVIOUS=A stores, and the other way round; a start after the last old one re-seals what it stored", async () => {
      const store = await harness.open("rolling");
      const { before } = await keysUnder(store, { TESSERA_KEY_ENCRYPTION_KEY: a });
      const old = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: a, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: b });
      assert.deepEqual(old.resealed(), [], "nothing under B yet");
      const swapped = await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a });
      assert.deepEqual(swapped.resealed(), before.map((r) => r.kid).sort());
      // The swapped instance stores the next keys (sealed under B); once one signs, the old instance signs with it.
      await swapped.ring.rotate();
      clock.advance(601_000);
      await swapped.ring.rotate();
      await old.ring.reloadNow();
      const underB = await old.ring.sign({ sub: "old" }, 60);
      assert.ok(opens(new KeySealer(b), (await store.keys.list()).find((r) => r.kid === kidOf(underB))!));
      assert.equal((await new TokenVerifier({ ring: swapped.ring, clock }).verify(underB)).sub, "old");
      // The old instance rotates in turn (its new key sealed under A); the swapped one signs with it.
      clock.advance(601_000);
      await old.ring.rotate();
      clock.advance(601_000);
      await old.ring.rotate();
      await swapped.ring.reloadNow();
      const underA = await swapped.ring.sign({ sub: "swapped" }, 60);
      const storedUnderA = (await store.keys.list()).filter((r) => opens(new KeySealer(a), r)).map((r) => r.kid);
      assert.ok(storedUnderA.includes(kidOf(underA)));
      assert.equal((await new TokenVerifier({ ring: old.ring, clock }).verify(underA)).sub, "swapped");
      // After the last old instance: one more start with KEY=B and PREVIOUS=A seals those under B, and B alone starts.
      assert.deepEqual((await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: a })).resealed(), storedUnderA.sort());
      await open(store, { TESSERA_KEY_ENCRYPTION_KEY: b });
    });
  });
}
