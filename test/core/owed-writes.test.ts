// A start's writes refused for a full disk are owed (core/owed-writes.ts): retried every second
// until made, and stopped before the store closes. A start that fails after one was owed closes
// its store: the owed write is not tried again on it. A retry that fails for another reason is
// logged at warn once, and again only when its reason changes.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { loadConfig } from "../../src/config.js";
import { ManualClock } from "../../src/core/clock.js";
import { createCore } from "../../src/core/index.js";
import { OWED_WRITE_RETRY_MS, OwedWrites } from "../../src/core/owed-writes.js";
import { silentLogger, type Logger } from "../../src/logger.js";
import { StoreError, StoreUnavailableError } from "../../src/store/ports/errors.js";
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

  it("a retry that fails for another reason than a full disk: logged at warn once, naming the write and the error, again only when the error changes; then made", async () => {
    const lines: Array<[string, string, Record<string, unknown> | undefined]> = [];
    const record =
      (level: string) =>
      (msg: string, fields?: Record<string, unknown>) =>
        lines.push([level, msg, fields]);
    const logger: Logger = { debug: record("debug"), info: record("info"), warn: record("warn"), error: record("error") };
    const ioerr = new StoreError("embedded store failed (SQLITE_IOERR): disk I/O error");
    const corrupt = new StoreError("embedded store failed (SQLITE_CORRUPT): database disk image is malformed");
    const outcomes: Array<Error | undefined> = [full(), ioerr, ioerr, ioerr, full(), corrupt, corrupt, undefined];
    let tries = 0;
    const owed = new OwedWrites(logger, 10);
    try {
      await owed.run("the test write", () => {
        const outcome = outcomes[tries++];
        return outcome === undefined ? Promise.resolve() : Promise.reject(outcome);
      });
      for (let i = 0; i < 200 && tries < outcomes.length; i++) await sleep(10);
      await sleep(50);
    } finally {
      await owed.close();
    }
    assert.equal(tries, outcomes.length);
    const failed = "the test write, owed since start-up, failed for another reason than a full disk; it is tried again every second";
    assert.deepEqual(lines, [
      [
        "warn",
        "the test write met a full disk at start-up; the start goes on without it, and it is made once space is back (tried every second)",
        { error: "embedded store unavailable (SQLITE_FULL)" },
      ],
      ["warn", failed, { error: ioerr.message }],
      ["warn", failed, { error: corrupt.message }],
      ["info", "the test write, owed since start-up, made", undefined],
    ]);
  });
});
