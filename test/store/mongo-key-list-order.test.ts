// A key list reads the keys' documents, then their revocation marks (mongo-signing-keys.ts). The
// other order loses a revocation: instance B revokes the published next key and publishes another
// above it (its revocation's rotation) between A's two reads. Read marks first, A's list holds
// B's new key beside the revoked one unrevoked, and A's key ring, due to promote the next key,
// signs with the revoked one (tokens every instance then refuses). Read documents first, every
// mark set before a document A read is in A's list: A sees the revocation. The reads after the
// first (the marks, one read per key) are held until B is done.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Collection, type AbstractCursor, type Document, type Filter } from "mongodb";
import { decodeProtectedHeader } from "jose";
import { loadConfig } from "../../src/config.js";
import { ManualClock } from "../../src/core/clock.js";
import { KeyRing } from "../../src/core/key-ring.js";
import { silentLogger } from "../../src/logger.js";
import { MARKS } from "../../src/store/mongo/mongo-marks.js";
import { SIGNING_KEYS } from "../../src/store/mongo/mongo-signing-keys.js";
import type { Store } from "../../src/store/ports.js";
import { storesUnderTest } from "../support/server.js";
import { storeHarness, type StoreHarness } from "../support/store.js";
import { gate } from "../credentials/support.js";

describe("mongo store: a key list while another instance revokes the next key and publishes another", function () {
  this.timeout(30_000);
  let harness: StoreHarness;
  let a: Store;
  let b: Store;
  const find = Collection.prototype.find;

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    harness = storeHarness("mongo");
    const name = `ord${randomUUID().slice(0, 8)}`;
    a = await harness.open(name);
    b = await harness.open(name);
  });
  after(async () => {
    Collection.prototype.find = find;
    await harness?.cleanup();
  });

  it("A's key ring, due to promote the next key, signs with the signing key, never the revoked next key", async () => {
    const clock = new ManualClock(Date.parse("2032-02-02T00:00:00Z"));
    const config = loadConfig({ TESSERA_CLIENT_IDS: "c" });
    const ringA = await KeyRing.open({ keys: a.keys, config, clock, logger: silentLogger });
    const ringB = await KeyRing.open({ keys: b.keys, config, clock, logger: silentLogger });
    const [signing, next] = (await a.keys.list()).map((k) => k.kid);
    clock.advance(3600_000);
    // A's reads of the keys and their marks: the first runs, those after it wait for B.
    const held = gate();
    let reads = 0;
    const wait = <T>(read: () => Promise<T>) => async () => {
      await held.pass();
      return read();
    };
    Collection.prototype.find = function (this: Collection, filter?: Filter<Document>, ...rest: unknown[]) {
      const cursor = (find as (...args: unknown[]) => AbstractCursor).call(this, filter, ...rest);
      if ((this.collectionName === SIGNING_KEYS || this.collectionName === MARKS) && ++reads >= 2) {
        cursor.toArray = wait(cursor.toArray.bind(cursor));
        cursor.next = wait(cursor.next.bind(cursor));
      }
      return cursor;
    } as Collection["find"];
    const signed = ringA.sign({ sub: "x" }, 60);
    await held.reached;
    Collection.prototype.find = find;
    await ringB.revoke(next!);
    held.open();
    assert.equal(decodeProtectedHeader(await signed).kid, signing);
  });
});
