// A start's writes refused for a full disk are owed (core/owed-writes.ts): retried every second
// until made, and stopped before the store closes. A start that fails after one was owed closes
// its store: the owed write is not tried again on it.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { loadConfig } from "../../src/config.js";
import { ManualClock } from "../../src/core/clock.js";
import { createCore } from "../../src/core/index.js";
import { OWED_WRITE_RETRY_MS } from "../../src/core/owed-writes.js";
import { silentLogger } from "../../src/logger.js";
import { StoreUnavailableError } from "../../src/store/ports/errors.js";
import type { Store } from "../../src/store/ports.js";
import { openTestStore, type OpenedStore } from "../support/store.js";

const cheap = { TESSERA_ARGON2_MEMORY_KIB: "1024", TESSERA_ARGON2_ITERATIONS: "1", TESSERA_CLIENT_IDS: "c" };
const full = () => new StoreUnavailableError("embedded store unavailable (SQLITE_FULL)", { diskFull: true });

describe("core: the start's owed writes", function () {
  this.timeout(20000);
  let opened: OpenedStore;

  beforeEach(async () => {
    opened = await openTestStore("sqlite");
  });
  afterEach(() => opened.close());

  it("a first start on a full disk fails, and the login keys it owed are not tried again once it has failed", async () => {
    let backfills = 0;
    const refused = () => Promise.reject(full());
    const store: Store = {
      ...opened.store,
      users: {
        ...opened.store.users,
        backfillLoginKeys: () => {
          backfills++;
          return refused();
        },
      },
      keys: { ...opened.store.keys, insertGeneration: refused, rotate: refused },
    };
    await assert.rejects(createCore({ config: loadConfig(cheap), store, clock: new ManualClock(Date.now()), logger: silentLogger }), /SQLITE_FULL/);
    assert.equal(backfills, 1);
    await sleep(OWED_WRITE_RETRY_MS * 2.5);
    assert.equal(backfills, 1, "the owed backfill was tried again after the start failed");
  });
});
