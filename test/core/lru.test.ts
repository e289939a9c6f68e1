// The core's one cache: bounded, least recently used evicted first, optional expiry, time from
// the caller.
import assert from "node:assert/strict";
import { Lru } from "../../src/core/lru.js";

describe("core: Lru", () => {
  it("evicts the least recently used entry beyond maxEntries; a hit makes an entry the most recent", () => {
    const lru = new Lru<string, number>({ maxEntries: 2 });
    lru.set("a", 1, 0);
    lru.set("b", 2, 0);
    assert.equal(lru.get("a", 0), 1); // "b" is now the least recently used
    lru.set("c", 3, 0);
    assert.equal(lru.size, 2);
    assert.equal(lru.get("b", 0), undefined);
    assert.equal(lru.get("a", 0), 1);
    assert.equal(lru.get("c", 0), 3);
    lru.set("d", 4, 0); // "a" was used before "c": it goes
    assert.equal(lru.get("a", 0), undefined);
    assert.deepEqual([lru.get("c", 0), lru.get("d", 0)], [3, 4]);
  });

  it("the same key hit again and again stays the most recent (the hot-key shortcut keeps order right)", () => {
    const lru = new Lru<string, number>({ maxEntries: 2 });
    lru.set("hot", 1, 0);
    lru.set("cold", 2, 0);
    for (let i = 0; i < 3; i++) assert.equal(lru.get("hot", 0), 1);
    lru.set("new", 3, 0);
    assert.equal(lru.get("cold", 0), undefined);
    assert.equal(lru.get("hot", 0), 1);
    lru.delete("hot");
    assert.equal(lru.get("hot", 0), undefined);
    lru.set("other", 4, 0); // "new" and "other" fit: nothing stale about "hot" remains
    assert.deepEqual([lru.get("new", 0), lru.get("other", 0)], [3, 4]);
  });

  it("an entry set later than the time asked at (the clock was stepped back since) is gone: its age cannot be told", () => {
    const lru = new Lru<string, string>({ maxEntries: 10, ttlMs: 1000 });
    lru.set("a", "x", 5_000);
    assert.equal(lru.get("a", 5_000), "x");
    assert.equal(lru.get("a", 5_000 - 3_600_000), undefined);
    assert.equal(lru.get("a", 5_500), undefined, "dropped, not kept for when the clock catches up");
    const untimed = new Lru<string, string>({ maxEntries: 10 });
    untimed.set("b", "y", 5_000, 9_000);
    assert.equal(untimed.get("b", 4_000), undefined);
  });

  it("an entry expires ttlMs after it was set, or at its own expiry if sooner; the time is the caller's", () => {
    const lru = new Lru<string, string>({ maxEntries: 10, ttlMs: 1000 });
    lru.set("a", "x", 5_000);
    assert.equal(lru.get("a", 5_999), "x");
    assert.equal(lru.get("a", 6_000), undefined);
    assert.equal(lru.size, 0, "an expired entry is dropped when met");
    lru.set("b", "y", 5_000, 5_500);
    assert.equal(lru.get("b", 5_499), "y");
    assert.equal(lru.get("b", 5_500), undefined);
    lru.set("c", "z", 5_000, 9_000); // the TTL (6000) comes first
    assert.equal(lru.get("c", 6_000), undefined);
  });

  it("without ttlMs an entry lives until evicted, or until its own expiry", () => {
    const lru = new Lru<string, string>({ maxEntries: 10 });
    lru.set("a", "x", 0);
    assert.equal(lru.get("a", Number.MAX_SAFE_INTEGER), "x");
    lru.set("b", "y", 0, 100);
    assert.equal(lru.get("b", 99), "y");
    assert.equal(lru.get("b", 100), undefined);
  });

  it("keeps nothing when maxEntries or ttlMs is 0", () => {
    for (const lru of [new Lru<string, number>({ maxEntries: 0 }), new Lru<string, number>({ maxEntries: 5, ttlMs: 0 })]) {
      assert.equal(lru.enabled, false);
      lru.set("a", 1, 0);
      assert.equal(lru.get("a", 0), undefined);
      assert.equal(lru.size, 0);
    }
  });

  it("clear() empties it", () => {
    const lru = new Lru<string, number>({ maxEntries: 3 });
    lru.set("a", 1, 0);
    lru.set("b", 2, 0);
    lru.clear();
    assert.equal(lru.size, 0);
    assert.equal(lru.get("a", 0), undefined);
  });
});
