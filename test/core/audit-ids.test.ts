// Audit event ids (src/core/audit.ts): events recorded within one millisecond must list in the
// order they were recorded (the listing sorts by time, then id), so ids are UUIDv7 with a
// counter within the millisecond.
import { strict as assert } from "node:assert";
import { SortableIds } from "../../src/core/audit.js";

describe("core: audit event ids", () => {
  it("ids made within one millisecond sort, as text, in the order they were made", () => {
    const ids = new SortableIds();
    const made = Array.from({ length: 5000 }, () => ids.next(1_767_225_600_000));
    assert.deepEqual([...made].sort(), made);
    assert.equal(new Set(made).size, made.length);
  });

  it("are RFC 9562 version 7 UUIDs carrying the millisecond", () => {
    const id = new SortableIds().next(1_767_225_600_123);
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(parseInt(id.replace(/-/g, "").slice(0, 12), 16), 1_767_225_600_123);
  });

  it("a clock that steps back does not break the order", () => {
    const ids = new SortableIds();
    const a = ids.next(2_000);
    const b = ids.next(1_000);
    assert.ok(b > a);
  });
});
