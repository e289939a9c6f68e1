// A logged-out user token deleted by housekeeping on one instance (its retention passed) while
// another instance checks it: MongoDB reads the token's document, then its logout mark, and
// housekeeping deletes the document, then the mark. A check that read the document before the
// delete and the mark after it found no logout: the token, logged out a retention ago, was
// enabled again for that check (a user token without an expiry is refused by nothing else).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Collection } from "mongodb";
import { Marks } from "../../src/store/mongo/mongo-marks.js";
import { USER_TOKENS } from "../../src/store/mongo/mongo-user-tokens.js";
import type { Store } from "../../src/store/ports.js";
import { storesUnderTest } from "../support/server.js";
import { storeHarness, type StoreHarness } from "../support/store.js";
import { gate } from "../credentials/support.js";

describe("mongo store: a logged-out user token deleted by housekeeping while another instance checks it", function () {
  this.timeout(30_000);
  let harness: StoreHarness;
  let a: Store;
  let b: Store;
  const get = Marks.prototype.get;
  const findOne = Collection.prototype.findOne;

  before(async function () {
    if (!storesUnderTest().includes("mongo")) this.skip();
    harness = storeHarness("mongo");
    const name = `utdel${randomUUID().slice(0, 8)}`;
    a = await harness.open(name);
    b = await harness.open(name);
  });
  afterEach(() => {
    Marks.prototype.get = get;
    Collection.prototype.findOne = findOne;
  });
  after(async () => {
    await harness?.cleanup();
  });

  for (const [name, read] of [
    ["findByHashWithUser", (store: Store, token: { id: string; hash: string }) => store.userTokens.findByHashWithUser(token.hash).then((found) => found?.token ?? null)],
    ["findById", (store: Store, token: { id: string; hash: string }) => store.userTokens.findById(token.id)],
  ] as const) {
    it(`${name} held between its read of the token and of its logout mark, the token deleted meanwhile: not enabled`, async () => {
      const token = { id: randomUUID(), hash: randomUUID(), userId: randomUUID(), createdAt: new Date(Date.UTC(2026, 0, 1)) };
      await a.userTokens.create(token);
      assert.equal(await a.userTokens.disable(token.id, new Date(Date.UTC(2026, 0, 2))), true);
      const held = gate();
      Marks.prototype.get = async function (this: Marks, id: string) {
        if (id !== `ut-disabled:${token.id}`) return get.call(this, id);
        Marks.prototype.get = get;
        await held.pass();
        return get.call(this, id);
      };
      // findById reads the document and the mark at once: the delete waits for the document's
      // read to have answered, as it would have before it.
      const docReads: Array<Promise<unknown>> = [];
      Collection.prototype.findOne = function (this: Collection, ...args: unknown[]) {
        const found = (findOne as (...a: unknown[]) => Promise<unknown>).apply(this, args);
        if (this.collectionName === USER_TOKENS) docReads.push(found);
        return found;
      } as typeof findOne;
      const reading = read(b, token);
      await held.reached;
      Collection.prototype.findOne = findOne;
      await Promise.all(docReads);
      // Its retention passed: housekeeping deletes the token, then its mark.
      assert.equal(await a.userTokens.deleteEndedBefore(new Date(Date.UTC(2026, 1, 1)), 1000), 1);
      held.open();
      const found = await reading;
      assert.equal(found?.enabled, false, `read as ${JSON.stringify(found)}`);
      assert.equal(await read(b, token), null);
    });
  }
});
