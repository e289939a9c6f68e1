// The ApiTokens core against each real store, with a manual clock: validation messages, the
// hash-only storage, the checksum gate, the lookup cache and its revocation bound, and the
// coalesced last_used writes.
import assert from "node:assert/strict";
import { apiTokenChecksum, generateApiTokenSecret } from "../../src/core/api-token-secret.js";
import { ApiTokens, type ApiTokensDeps } from "../../src/core/api-tokens.js";
import { ManualClock } from "../../src/core/clock.js";
import { AuthError } from "../../src/core/errors.js";
import { hashSecret } from "../../src/core/secrets.js";
import { createLogger } from "../../src/logger.js";
import type { Store } from "../../src/store/ports.js";
import { storesUnderTest } from "../support/server.js";
import { spyOn } from "../support/spy.js";
import { freshStores, type OpenedStore } from "../support/store.js";

const config = { lastUsedIntervalSeconds: 60, apiTokenCacheSeconds: 2, maxApiTokensPerAccount: 1000 };

async function rejectsWith(p: Promise<unknown>, code: string, message: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AuthError, String(e));
    assert.equal(e.code, code);
    assert.equal(e.message, message);
    return true;
  });
}

/** A secret with a valid shape and checksum that was never issued. */
function unissuedSecret(): string {
  return generateApiTokenSecret();
}

for (const kind of storesUnderTest()) {
  describe(`ApiTokens core (${kind})`, () => {
    const stores = freshStores(kind);
    let opened: OpenedStore;
    let store: Store;
    let clock: ManualClock;
    let logs: string[];
    const make = (over: Partial<ApiTokensDeps> = {}) =>
      new ApiTokens({ apiTokens: store.apiTokens, clock, logger: createLogger("debug", (l) => logs.push(l)), config, ...over });

    beforeEach(async () => {
      opened = await stores.open();
      store = opened.store;
      clock = new ManualClock(Date.UTC(2015, 9, 10, 12, 12, 30));
      logs = [];
    });
    afterEach(async () => opened.close());

    describe("validation (before any store call)", () => {
      it("lists every missing field in declaration order", async () => {
        const tokens = make();
        const create = spyOn(store.apiTokens, "create");
        await rejectsWith(tokens.create({ accountId: "", description: "" }), "invalid_argument", "Missing fields: [account_id, description]");
        await rejectsWith(tokens.create({ accountId: "15", description: "  " }), "invalid_argument", "Missing fields: [description]");
        await rejectsWith(tokens.create({ accountId: "", description: "d" }), "invalid_argument", "Missing fields: [account_id]");
        await rejectsWith(tokens.updateDescription("", ""), "invalid_argument", "Missing fields: [token_link, description]");
        await rejectsWith(tokens.revoke("", ""), "invalid_argument", "Missing fields: [account_id, token_link]");
        await rejectsWith(tokens.list("", "active"), "invalid_argument", "Missing fields: [account_id]");
        assert.equal(create.calls.length, 0);
      });

      it("refuses over-long fields naming the field", async () => {
        await rejectsWith(make().create({ accountId: "15", description: "x".repeat(1025) }), "invalid_argument", "description is too long (at most 1024 characters)");
        await rejectsWith(make().create({ accountId: "a".repeat(256), description: "d" }), "invalid_argument", "account_id is too long (at most 255 characters)");
      });

      it("state is active (default) or revoked, case-insensitive; anything else 400", async () => {
        const tokens = make();
        for (const s of ["", "active", "ACTIVE", "Active", "revoked", "REVOKED"]) await tokens.list("15", s);
        await rejectsWith(tokens.list("15", "all"), "invalid_argument", 'state must be "active" or "revoked"');
      });
    });

    it("stores only the SHA-256 of the secret, under a UUID link", async () => {
      const { secret, token } = await make().create({ accountId: "15", description: "d", createdBy: "ops@example.com" });
      assert.match(token.link, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const stored = await store.apiTokens.findByHash(hashSecret(secret));
      assert.ok(stored);
      assert.equal(stored.link, token.link);
      assert.equal(stored.createdBy, "ops@example.com");
      assert.ok(!JSON.stringify(stored).includes(secret.slice(4)), "the secret is not stored");
      assert.ok(!logs.join("").includes(secret.slice(4)), "the secret is not logged");
    });

    describe("authenticate", () => {
      it("returns the account and link of an active token", async () => {
        const tokens = make();
        const { secret, token } = await tokens.create({ accountId: "GATEWAY_ACCOUNT_1", description: "d" });
        assert.deepEqual(await tokens.authenticate(secret), { accountId: "GATEWAY_ACCOUNT_1", tokenLink: token.link });
      });

      it("refuses a broken checksum, a wrong prefix or garbage without a store call", async () => {
        const tokens = make();
        const { secret } = await tokens.create({ accountId: "15", description: "d" });
        const lookups = spyOn(store.apiTokens, "findByHash");
        const last = secret.at(-1) === "0" ? "1" : "0";
        for (const bad of [secret.slice(0, -1) + last, "tsx_" + secret.slice(4), secret.slice(0, 20), "", "Bearer", secret + secret]) {
          await rejectsWith(tokens.authenticate(bad), "unauthenticated", "invalid API token");
        }
        assert.equal(lookups.calls.length, 0);
        // The same secret, intact, does reach the store.
        await tokens.authenticate(secret);
        assert.equal(lookups.calls.length, 1);
        assert.deepEqual(lookups.calls[0], [hashSecret(secret)]);
      });

      it("refuses an unknown well-formed token (after one lookup by hash)", async () => {
        const lookups = spyOn(store.apiTokens, "findByHash");
        const random = "A".repeat(32);
        await rejectsWith(make().authenticate(`tsr_${random}${apiTokenChecksum(random)}`), "unauthenticated", "invalid API token");
        await rejectsWith(make().authenticate(unissuedSecret()), "unauthenticated", "invalid API token");
        assert.equal(lookups.calls.length, 2);
      });

      it("caches a lookup for TESSERA_API_TOKEN_CACHE_SECONDS", async () => {
        const tokens = make();
        const { secret } = await tokens.create({ accountId: "15", description: "d" });
        const lookups = spyOn(store.apiTokens, "findByHash");
        for (let i = 0; i < 10; i++) await tokens.authenticate(secret);
        assert.equal(lookups.calls.length, 1);
        clock.advance(1999);
        await tokens.authenticate(secret);
        assert.equal(lookups.calls.length, 1);
        clock.advance(1);
        await tokens.authenticate(secret);
        assert.equal(lookups.calls.length, 2);
      });

      it("shares one lookup between concurrent calls with a cold token", async () => {
        const tokens = make();
        const { secret } = await tokens.create({ accountId: "15", description: "d" });
        const lookups = spyOn(store.apiTokens, "findByHash");
        await Promise.all(Array.from({ length: 20 }, () => tokens.authenticate(secret)));
        assert.equal(lookups.calls.length, 1);
      });

      it("with the cache off (0 seconds) looks up every time", async () => {
        const tokens = make({ config: { ...config, apiTokenCacheSeconds: 0 } });
        const { secret } = await tokens.create({ accountId: "15", description: "d" });
        const lookups = spyOn(store.apiTokens, "findByHash");
        for (let i = 0; i < 3; i++) await tokens.authenticate(secret);
        assert.equal(lookups.calls.length, 3);
      });

      it("keeps the cache bounded, evicting the least recently used", async () => {
        const tokens = make({ cacheEntries: 2 });
        const secrets = [];
        for (let i = 0; i < 3; i++) secrets.push((await tokens.create({ accountId: "15", description: `t${i}` })).secret);
        const lookups = spyOn(store.apiTokens, "findByHash");
        await tokens.authenticate(secrets[0]);
        await tokens.authenticate(secrets[1]);
        await tokens.authenticate(secrets[0]); // hit: secrets[1] is now the least recently used
        await tokens.authenticate(secrets[2]); // evicts secrets[1]
        assert.equal(lookups.calls.length, 3);
        await tokens.authenticate(secrets[0]);
        await tokens.authenticate(secrets[2]);
        assert.equal(lookups.calls.length, 3);
        await tokens.authenticate(secrets[1]);
        assert.equal(lookups.calls.length, 4);
      });
    });

    describe("revocation", () => {
      it("is refused at once on the revoking instance, even with the lookup cached", async () => {
        const tokens = make();
        const { secret, token } = await tokens.create({ accountId: "15", description: "d" });
        await tokens.authenticate(secret); // cached now
        const revoked = await tokens.revoke("15", token.link);
        assert.equal(revoked.revokedAt?.getTime(), clock.now().getTime());
        await rejectsWith(tokens.authenticate(secret), "unauthenticated", "invalid API token");
      });

      it("is refused on another instance within TESSERA_API_TOKEN_CACHE_SECONDS", async () => {
        const a = make();
        const b = make();
        const { secret, token } = await a.create({ accountId: "15", description: "d" });
        await b.authenticate(secret); // b caches the active token
        await a.revoke("15", token.link);
        clock.advance(1000);
        await b.authenticate(secret); // still inside b's cache TTL: the documented bound
        clock.advance(1000);
        await rejectsWith(b.authenticate(secret), "unauthenticated", "invalid API token");
      });

      it("is refused on another instance within TESSERA_API_TOKEN_CACHE_SECONDS, the clock stepped back an hour meanwhile", async () => {
        const a = make();
        const b = make();
        const { secret, token } = await a.create({ accountId: "15", description: "d" });
        await b.authenticate(secret); // b caches the active token
        await a.revoke("15", token.link);
        clock.advance(-60 * 60_000); // an NTP step back: the cached lookup's age cannot be told
        clock.advance(2000);
        await rejectsWith(b.authenticate(secret), "unauthenticated", "invalid API token");
      });

      it("a lookup that raced the revocation does not refill the cache", async () => {
        const tokens = make();
        const { secret, token } = await tokens.create({ accountId: "15", description: "d" });
        const original = store.apiTokens.findByHash.bind(store.apiTokens);
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        const slow = spyOn(store.apiTokens, "findByHash", async (hash: string) => {
          const record = await original(hash); // read before the revocation...
          await gate; // ...answered after it
          return record;
        });
        const racing = tokens.authenticate(secret);
        await new Promise((r) => setTimeout(r, 20));
        await tokens.revoke("15", token.link);
        slow.restore();
        await rejectsWith(tokens.authenticate(secret), "unauthenticated", "invalid API token");
        release();
        await racing; // it was concurrent with the revocation: either answer is fine
        await rejectsWith(tokens.authenticate(secret), "unauthenticated", "invalid API token");
      });

      it("404 Could not revoke token: unknown, already revoked, other account, not a UUID", async () => {
        const tokens = make();
        const { token } = await tokens.create({ accountId: "15", description: "d" });
        await rejectsWith(tokens.revoke("16", token.link), "not_found", "Could not revoke token");
        await tokens.revoke("15", token.link);
        await rejectsWith(tokens.revoke("15", token.link), "not_found", "Could not revoke token");
        await rejectsWith(tokens.revoke("15", "550e8400-e29b-41d4-a716-446655440000"), "not_found", "Could not revoke token");
        await rejectsWith(tokens.revoke("15", "nope"), "not_found", "Could not revoke token");
      });

      it("404 Could not update token description: unknown or revoked", async () => {
        const tokens = make();
        const { token } = await tokens.create({ accountId: "15", description: "d" });
        assert.equal((await tokens.updateDescription(token.link, "new")).description, "new");
        await tokens.revoke("15", token.link);
        await rejectsWith(tokens.updateDescription(token.link, "newer"), "not_found", "Could not update token description");
        await rejectsWith(tokens.updateDescription("550e8400-e29b-41d4-a716-446655440000", "x"), "not_found", "Could not update token description");
      });
    });

    describe("last_used", () => {
      it("writes at most once per token per TESSERA_LAST_USED_INTERVAL_SECONDS", async () => {
        const tokens = make();
        const { secret, token } = await tokens.create({ accountId: "15", description: "d" });
        const touches = spyOn(store.apiTokens, "touchLastUsed");
        const first = clock.now();
        for (let i = 0; i < 50; i++) await tokens.authenticate(secret);
        assert.equal(touches.calls.length, 1);
        await tokens.drain();
        assert.equal((await store.apiTokens.findByHash(token.hash))?.lastUsedAt?.getTime(), first.getTime());

        clock.advance(59_000);
        for (let i = 0; i < 10; i++) await tokens.authenticate(secret);
        assert.equal(touches.calls.length, 1, "still inside the interval");
        clock.advance(1_000);
        await tokens.authenticate(secret);
        assert.equal(touches.calls.length, 1, "exactly one interval later: not yet");
        clock.advance(1);
        await tokens.authenticate(secret);
        await tokens.authenticate(secret);
        assert.equal(touches.calls.length, 2);
        await tokens.drain();
        assert.equal((await store.apiTokens.findByHash(token.hash))?.lastUsedAt?.getTime(), first.getTime() + 60_001);
      });

      it("another instance does not write while the stored last_used is recent", async () => {
        const a = make();
        const b = make();
        const { secret } = await a.create({ accountId: "15", description: "d" });
        await a.authenticate(secret);
        await a.drain();
        const touches = spyOn(store.apiTokens, "touchLastUsed");
        clock.advance(10_000);
        for (let i = 0; i < 5; i++) await b.authenticate(secret);
        assert.equal(touches.calls.length, 0);
      });

      it("a failing write is logged, never thrown nor left unhandled", async () => {
        const tokens = make();
        const { secret } = await tokens.create({ accountId: "15", description: "d" });
        const unhandled: unknown[] = [];
        const onUnhandled = (e: unknown) => unhandled.push(e);
        process.on("unhandledRejection", onUnhandled);
        const touches = spyOn(store.apiTokens, "touchLastUsed", (async () => {
          throw new Error("store down");
        }) as never);
        const sync = make({ clock: new ManualClock(clock.now().getTime() + 120_000) });
        try {
          assert.equal((await tokens.authenticate(secret)).accountId, "15");
          // A store method that throws synchronously is contained too.
          touches.restore();
          spyOn(store.apiTokens, "touchLastUsed", (() => {
            throw new Error("sync failure");
          }) as never);
          assert.equal((await sync.authenticate(secret)).accountId, "15");
          await tokens.drain();
          await sync.drain();
          await new Promise((r) => setImmediate(r));
          assert.deepEqual(unhandled, []);
          const warnings = logs.filter((l) => l.includes("last_used write failed"));
          assert.equal(warnings.length, 2);
          assert.ok(!warnings.join("").includes(secret.slice(4)));
        } finally {
          process.off("unhandledRejection", onUnhandled);
        }
      });
    });

    it("lists newest first, in the requested state", async () => {
      const tokens = make();
      const links: string[] = [];
      for (let i = 0; i < 3; i++) {
        links.push((await tokens.create({ accountId: "15", description: `t${i}` })).token.link);
        clock.advance(60_000);
      }
      await tokens.create({ accountId: "16", description: "other account" });
      assert.deepEqual((await tokens.list("15", "")).map((t) => t.link), [...links].reverse());
      await tokens.revoke("15", links[1]);
      assert.deepEqual((await tokens.list("15", "active")).map((t) => t.link), [links[2], links[0]]);
      assert.deepEqual((await tokens.list("15", "Revoked")).map((t) => t.link), [links[1]]);
    });
  });
}
