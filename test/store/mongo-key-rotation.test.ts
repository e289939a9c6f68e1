// Two rotations in a row, decided by two instances: the second instance lists the keys after the
// first one's insert (the new next key) and before its follow-up writes (the promotion and the
// retirement), so both write to the key between them, the first promoting it and the second
// retiring it. FerretDB applies an update as a read and a write-back of the whole document (src/store/README.md),
// so two such updates of one document at once keep one of them: the key lost its promotion (it
// signed from its placeholder time) or its retirement (it verified, and stayed in the JWKS, for
// good). Both must be kept.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Collection, type Document, type Filter } from "mongodb";
import { Marks } from "../../src/store/mongo/mongo-marks.js";
import { SIGNING_KEYS } from "../../src/store/mongo/mongo-signing-keys.js";
import type { Store } from "../../src/store/ports.js";
import { storesUnderTest } from "../support/server.js";
import { newSigningKey, storeHarness, type StoreHarness } from "../support/store.js";
import { gate } from "../credentials/support.js";

const t0 = new Date("2026-01-02T03:04:05.678Z");
const at = (offsetMs: number): Date => new Date(t0.getTime() + offsetMs);

const newKey = (generation: number) => newSigningKey(generation, at(generation));

describe("mongo store: two rotations in a row from two instances", function () {
  this.timeout(30_000);
  let harness: StoreHarness;
  let a: Store;
  let b: Store;
  const updateOne = Collection.prototype.updateOne;

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    harness = storeHarness("mongo");
    const name = `rot${randomUUID().slice(0, 8)}`;
    a = await harness.open(name);
    b = await harness.open(name);
  });
  after(async () => {
    Collection.prototype.updateOne = updateOne;
    await harness?.cleanup();
  });

  it("the key between them keeps the first one's promotion and the second one's retirement", async () => {
    const keys = [newKey(1), newKey(2)];
    await a.keys.insertGeneration(keys[0]!);
    await a.keys.insertGeneration(keys[1]!);
    const expected = new Map<string, Record<string, unknown>>(keys.map((k) => [k.kid, { ...k }]));
    // Three rounds: each keeps both writes on FerretDB only by chance (about 1 in 25) when they
    // are made at once.
    for (let round = 0; round < 3; round++) {
      const g = keys.length; // the signing key is keys[g - 2], the next key keys[g - 1]
      const [signing, next] = [keys[g - 2]!, keys[g - 1]!];
      const first = newKey(g + 1);
      const second = newKey(g + 2);
      const firstAt = at(1000 * (round + 1));
      const secondAt = at(1000 * (round + 1) + 600);
      // The first rotation's promotion of `next` waits for the second's retirement of it: both
      // are then sent at once.
      const promotion = gate();
      const retirement = gate();
      Collection.prototype.updateOne = async function (this: Collection, filter: Filter<Document>, ...rest: unknown[]) {
        if (this.collectionName === SIGNING_KEYS && (filter as Document)._id === next.kid) {
          if ("retiredAt" in filter) retirement.open();
          else {
            void promotion.pass();
            await retirement.pass();
          }
        }
        return (updateOne as (...args: unknown[]) => Promise<unknown>).call(this, filter, ...rest);
      } as Collection["updateOne"];
      try {
        const firstRotation = a.keys.rotate(first, {
          promote: { kid: next.kid, activatedAt: firstAt },
          retire: { kid: signing.kid, retiredAt: firstAt, notAfter: at(1_000_000 + round) },
        });
        await promotion.reached;
        // The second instance decides from a list that holds `first` already.
        const secondRotation = b.keys.rotate(second, {
          promote: { kid: first.kid, activatedAt: secondAt },
          retire: { kid: next.kid, retiredAt: secondAt, notAfter: at(2_000_000 + round) },
        });
        assert.deepEqual(await Promise.all([firstRotation, secondRotation]), [true, true]);
      } finally {
        Collection.prototype.updateOne = updateOne;
      }
      Object.assign(expected.get(signing.kid)!, { retiredAt: firstAt, notAfter: at(1_000_000 + round) });
      Object.assign(expected.get(next.kid)!, { activatedAt: firstAt, retiredAt: secondAt, notAfter: at(2_000_000 + round) });
      expected.set(first.kid, { ...first, activatedAt: secondAt });
      expected.set(second.kid, { ...second });
      keys.push(first, second);
      for (const store of [a, b]) assert.deepEqual(await store.keys.list(), keys.map((k) => expected.get(k.kid)), `round ${round + 1}`);
    }
  });

  it("housekeeping keeps an expired key while a key its rotation promoted or retired stays (its in-place writes lost)", async () => {
    const g = [newKey(101), newKey(102), newKey(103), newKey(104), newKey(105)];
    await a.keys.insertGeneration(g[0]!);
    await a.keys.insertGeneration(g[1]!);
    // Every in-place write lost: only the rotations' inserts tell.
    Collection.prototype.updateOne = async function (this: Collection, ...args: unknown[]) {
      if (this.collectionName === SIGNING_KEYS) return { acknowledged: true, matchedCount: 1, modifiedCount: 1, upsertedCount: 0, upsertedId: null };
      return (updateOne as (...args: unknown[]) => Promise<unknown>).apply(this, args);
    } as Collection["updateOne"];
    try {
      // The token lifetimes were shortened before the third rotation: g[2] expires before g[1].
      assert.equal(await a.keys.rotate(g[2]!, { promote: { kid: g[1]!.kid, activatedAt: at(100) }, retire: { kid: g[0]!.kid, retiredAt: at(100), notAfter: at(10_000) } }), true);
      assert.equal(await b.keys.rotate(g[3]!, { promote: { kid: g[2]!.kid, activatedAt: at(200) }, retire: { kid: g[1]!.kid, retiredAt: at(200), notAfter: at(20_000) } }), true);
      assert.equal(await a.keys.rotate(g[4]!, { promote: { kid: g[3]!.kid, activatedAt: at(300) }, retire: { kid: g[2]!.kid, retiredAt: at(300), notAfter: at(15_000) } }), true);
    } finally {
      Collection.prototype.updateOne = updateOne;
    }
    const mine = async () => (await a.keys.list()).filter((k) => k.generation > 100);
    // g[0] goes; g[2], past its notAfter too, holds g[1]'s promotion: it stays while g[1] does.
    assert.equal(await b.keys.deleteExpired(at(16_000), at(16_000)), 1);
    assert.deepEqual((await mine()).map((k) => k.kid), [g[1]!.kid, g[2]!.kid, g[3]!.kid, g[4]!.kid]);
    assert.deepEqual((await mine())[0], { ...g[1], activatedAt: at(100), retiredAt: at(200), notAfter: at(20_000) });
    assert.equal(await b.keys.deleteExpired(at(20_001), at(20_001)), 2);
    assert.deepEqual((await mine()).map((k) => k.kid), [g[3]!.kid, g[4]!.kid]);
  });

  it("housekeeping keeps a revoked next key while the key its rotation promoted stays, then deletes it", async () => {
    const g = [newKey(201), newKey(202), newKey(203), newKey(204)];
    await a.keys.insertGeneration(g[0]!);
    // g[1]'s document holds g[0]'s promotion; g[1] is revoked as the next key, g[2] published above it.
    assert.equal(await a.keys.rotate(g[1]!, { promote: { kid: g[0]!.kid, activatedAt: at(10) } }), true);
    assert.equal(await a.keys.revoke(g[1]!.kid, at(20)), true);
    await a.keys.insertGeneration(g[2]!);
    const mine = async () => (await a.keys.list()).filter((k) => k.generation > 200);
    assert.equal(await b.keys.deleteExpired(at(100), at(1000)), 0);
    assert.deepEqual((await mine()).map((k) => k.kid), g.slice(0, 3).map((k) => k.kid));
    assert.equal((await mine())[0]?.activatedAt.getTime(), at(10).getTime());
    // A rotation retires g[0]; past its notAfter both go.
    assert.equal(await a.keys.rotate(g[3]!, { promote: { kid: g[2]!.kid, activatedAt: at(30) }, retire: { kid: g[0]!.kid, retiredAt: at(30), notAfter: at(500) } }), true);
    assert.equal(await b.keys.deleteExpired(at(501), at(1000)), 2);
    assert.deepEqual((await mine()).map((k) => k.kid), [g[2]!.kid, g[3]!.kid]);
    // Its revocation mark went with it: a key stored under that kid again is not revoked.
    assert.equal(await a.keys.insertGeneration({ ...g[1]!, generation: 205 }), true);
    assert.equal((await mine()).find((k) => k.kid === g[1]!.kid)?.revokedAt, undefined);
  });
});

// A revoked signing key deleted by housekeeping on one instance while another instance lists the
// keys: MongoDB reads the key documents, then their revocation marks, and housekeeping deletes
// a key's document, then its mark. A list that read the documents before the delete and the
// marks after it held the revoked key without its revocation, which that instance's key ring
// then took for a live key until its next read of the list (up to 30 s).
describe("mongo store: a revoked key deleted by housekeeping while another instance lists the keys", function () {
  this.timeout(30_000);
  let harness: StoreHarness;
  let a: Store;
  let b: Store;
  const getMany = Marks.prototype.getMany;

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    harness = storeHarness("mongo");
    const name = `kdel${randomUUID().slice(0, 8)}`;
    a = await harness.open(name);
    b = await harness.open(name);
  });
  afterEach(() => {
    Marks.prototype.getMany = getMany;
  });
  after(async () => {
    await harness?.cleanup();
  });

  it("the list held between its read of the keys and of their marks, the revoked next key deleted meanwhile: it is not listed (as after the delete), never listed unrevoked", async () => {
    const [signing, revoked, next] = [newKey(1), newKey(2), newKey(3)];
    await a.keys.insertGeneration(signing);
    await a.keys.insertGeneration(revoked);
    // The next key revoked; another published above it.
    assert.equal(await a.keys.revoke(revoked.kid, at(100)), true);
    await a.keys.insertGeneration(next);
    const held = gate();
    Marks.prototype.getMany = async function (this: Marks, ids: string[]) {
      Marks.prototype.getMany = getMany;
      await held.pass();
      return getMany.call(this, ids);
    };
    const listing = b.keys.list();
    await held.reached;
    // Past every cut-off: the revoked key goes (document, then mark); the others stay.
    assert.equal(await a.keys.deleteExpired(at(1_000_000), at(1_000_000)), 1);
    held.open();
    const listed = await listing;
    assert.deepEqual(
      listed.map((k) => `${k.kid} ${k.revokedAt === undefined ? "live" : "revoked"}`),
      [signing.kid, next.kid].map((kid) => `${kid} live`),
    );
    assert.deepEqual(
      (await b.keys.list()).map((k) => k.kid),
      [signing.kid, next.kid],
    );
  });
});
