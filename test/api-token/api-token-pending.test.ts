// Seed 001 on MongoDB: an API token whose creation has not answered (still `pending`: inserted,
// not yet counted and kept, or its creation died between the insert and the clear, or its
// withdrawal failed) was never handed out. It is not listed (in either state), does not
// authenticate (INVALID_TOKEN, as a token never issued), a rename or revocation of its link is
// refused as that of an unknown link (404, audited alike, the token unchanged), and once
// abandoned (pending for PENDING_ABANDONED_AFTER_MS) no longer counts towards its account's
// bound and is deleted by housekeeping. A creation whose clearing of `pending` fails withdraws its token. The embedded
// store has no pending state: housekeeping deletes none of its tokens. Through REST, on each store
// (src/store/README.md, "API tokens per account").
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Collection, FindCursor, MongoClient, MongoNetworkError, type Db, type Document, type Filter, type UpdateResult } from "mongodb";
import { generateApiTokenSecret } from "../../src/core/api-token-secret.js";
import { Housekeeping } from "../../src/core/housekeeping.js";
import { hashSecret } from "../../src/core/secrets.js";
import { createLogger } from "../../src/logger.js";
import { PENDING_ABANDONED_AFTER_MS } from "../../src/store/ports.js";
import { expectCode, expectOk } from "../support/api.js";
import { bearer } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { freshStores } from "../support/store.js";
import { admin } from "../support/users.js";
import { gate, type Gate } from "../credentials/support.js";
import { auditApi } from "../audit/api.js";
import { apiTokenApi, type ApiTokenApi } from "./api.js";

const full = "an account holds at most 2 active API tokens; revoke one first";
const minute = 60_000;
const unavailable = "the store is unavailable, try again shortly";

/** The `api_tokens` update of a creation that clears its token's `pending` flag. */
const clearsPending = (collection: Collection, update: unknown): boolean =>
  collection.collectionName === "api_tokens" && typeof update === "object" && update !== null && "$unset" in update && "pending" in (update.$unset as object);

/** How a creation's clearing of `pending` is made instead: given the clear itself, its collection and filter. */
type Clear = (clear: () => Promise<UpdateResult>, collection: Collection, filter: Filter<Document>) => Promise<UpdateResult>;

/** Runs `test` with every clearing of `pending` made by `clear` (other updates as they are); put back after. */
async function onClear(clear: Clear, test: () => Promise<void>): Promise<void> {
  const updateOne = Collection.prototype.updateOne;
  Collection.prototype.updateOne = function (this: Collection, ...args: Parameters<Collection["updateOne"]>) {
    const original = () => updateOne.apply(this, args);
    return clearsPending(this, args[1]) ? clear(original, this, args[0]) : original();
  } as Collection["updateOne"];
  try {
    await test();
  } finally {
    Collection.prototype.updateOne = updateOne;
  }
}

for (const store of storesUnderTest()) {
  describe(`API tokens whose creation has not answered, at most 2 per account, on ${store}`, function () {
    this.timeout(30_000);
    // The server's clock: a test moves it past PENDING_ABANDONED_AFTER_MS.
    let shiftMs = 0;
    const clock = { now: () => new Date(Date.now() + shiftMs) };
    const { databases } = freshStores(store);
    let server: TestServer;
    let api: ApiTokenApi;
    let client: MongoClient | undefined;
    let db: Db;
    // A creation a test holds at its clear of `pending` is a store call under way for as long as
    // the test's calls meanwhile take: on a loaded machine that was past the default bound (2 s),
    // and the creation answered 503. The bound a test is about is its own server's (givenUp).
    const bound: Record<string, string> = store === "mongo" ? { TESSERA_STORE_TIMEOUT_MS: "20000" } : {};
    beforeEach(async () => {
      shiftMs = 0;
      server = await startTestServer({ store, clock, databases, env: { TESSERA_MAX_API_TOKENS_PER_ACCOUNT: "2", ...bound } });
      api = apiTokenApi("rest", server.url);
      if (store === "mongo") {
        client = new MongoClient(server.config.mongodbUri!, { serverSelectionTimeoutMS: 5000 });
        db = client.db(server.config.mongodbDatabase);
      }
    });
    afterEach(async () => {
      api?.close();
      await client?.close();
      await server?.close();
    });

    const account = () => `PENDING_ACCOUNT_${randomUUID()}`;
    const create = (account_id: string, description: string) => api.createToken({ account_id, description }, admin);
    const descriptions = async (account_id: string, state?: string) => expectOk(await api.listTokens(account_id, state, admin)).tokens.map((t) => t.description).sort();
    /** The account's documents in `api_tokens`: description and whether pending. */
    const stored = async (accountId: string) =>
      (await db.collection("api_tokens").find({ accountId }).toArray()).map((d) => `${d.description}${d.pending === true ? " (pending)" : ""}`).sort();
    /** A token as a creation leaves it between its insert and its clear (one that died there, issued `ageMs` before the server's now): its secret. */
    async function insertPending(accountId: string, description: string, ageMs: number): Promise<string> {
      const secret = generateApiTokenSecret();
      await db.collection("api_tokens").insertOne({ _id: randomUUID() as never, hash: hashSecret(secret), accountId, description, issuedAt: new Date(clock.now().getTime() - ageMs), pending: true });
      return secret;
    }
    /** Creates a token whose clearing of `pending` waits until `held` (run while it is pending) has settled: the creation's answer. */
    async function whileClearHeld(accountId: string, description: string, held: () => Promise<void>): Promise<Awaited<ReturnType<typeof create>>> {
      const gated = gate();
      let creating!: ReturnType<typeof create>;
      await onClear(
        async (clear) => {
          await gated.pass();
          return clear();
        },
        async () => {
          creating = create(accountId, description);
          await gated.reached;
          try {
            await held();
          } finally {
            gated.open();
          }
          await creating;
        },
      );
      return creating;
    }
    /**
     * A creation of a token "given up" through a second instance on the same database whose store
     * calls are bounded at 300 ms, held at `held` until it has answered 503; then it goes on in
     * the background, and this waits until the account holds just the one token it held before.
     * Its start tries again while its store calls run past that bound (on a loaded machine its
     * index checks did, and the start failed).
     */
    async function givenUp(accountId: string, held: Gate): Promise<void> {
      const bounded = await startTestServer({
        store,
        env: {
          TESSERA_MAX_API_TOKENS_PER_ACCOUNT: "2",
          TESSERA_STORE_TIMEOUT_MS: "300",
          TESSERA_STORE_START_WAIT_SECONDS: "20",
          TESSERA_MONGODB_DATABASE: server.config.mongodbDatabase!,
        },
      });
      const boundedApi = apiTokenApi("rest", bounded.url);
      try {
        const creating = boundedApi.createToken({ account_id: accountId, description: "given up" }, admin);
        await held.reached;
        expectCode(await creating, "unavailable", unavailable, "STORE_UNAVAILABLE");
        held.open();
        for (let i = 0; i < 100 && (await stored(accountId)).length > 1; i++) await new Promise((r) => setTimeout(r, 50));
      } finally {
        boundedApi.close();
        await bounded.tessera.close(); // not bounded.close(): the database is the first instance's, dropped with it
      }
    }
    /** The audit trail's events about the token `link`, oldest first: type, outcome and reason. */
    async function audited(link: string): Promise<string[]> {
      const audit = auditApi("rest", server.url);
      try {
        const { events } = expectOk(await audit.listAuditEvents({ page_size: 500 }, admin));
        return events.filter((e) => e.subject === link).reverse().map((e) => [e.type, e.outcome, e.reason].filter(Boolean).join(" "));
      } finally {
        audit.close();
      }
    }
    /** One housekeeping pass at the server's clock: what it removed, and its log line's fields. */
    async function housekeeping(): Promise<{ removed: Record<string, number>; logged: Record<string, unknown> | undefined }> {
      const lines: string[] = [];
      const removed = await new Housekeeping({ store: server.tessera.store, clock, logger: createLogger("info", (l) => lines.push(l)) }).runOnce();
      const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "housekeeping");
      return { removed, logged };
    }

    if (store === "sqlite") {
      it("housekeeping deletes no API token (none is ever stored before it is kept): abandonedApiTokens 0", async () => {
        const accountId = account();
        const secret = expectOk(await create(accountId, "kept")).token;
        shiftMs = PENDING_ABANDONED_AFTER_MS + minute;
        assert.equal((await housekeeping()).removed.abandonedApiTokens, 0);
        assert.deepEqual(await descriptions(accountId), ["kept"]);
        assert.equal(expectOk(await api.authenticate(bearer(secret))).account_id, accountId);
      });
      return;
    }

    it("a token whose creation has not cleared `pending` yet is not listed, in either state, until its creation answers", async () => {
      const accountId = account();
      expectOk(await create(accountId, "kept"));
      const creation = await whileClearHeld(accountId, "in flight", async () => {
        assert.deepEqual(await stored(accountId), ["in flight (pending)", "kept"]);
        assert.deepEqual(await descriptions(accountId), ["kept"]);
        assert.deepEqual(await descriptions(accountId, "revoked"), []);
      });
      assert.equal(expectOk(await api.authenticate(bearer(expectOk(creation).token))).account_id, accountId);
      assert.deepEqual(await descriptions(accountId), ["in flight", "kept"]);
    });

    it("a pending token's link is refused by a rename and a revocation as an unknown link is (404, audited alike), and neither changes it: its creation keeps it, active, as described", async () => {
      const accountId = account();
      const unknown = randomUUID();
      let link = "";
      const creation = await whileClearHeld(accountId, "in flight", async () => {
        link = (await db.collection("api_tokens").findOne({ accountId, pending: true }))!._id as unknown as string;
        for (const target of [link, unknown]) {
          expectCode(await api.updateToken({ token_link: target, description: "renamed" }, admin), "not_found", "Could not update token description", "TOKEN_NOT_FOUND");
          expectCode(await api.revokeToken(accountId, { token_link: target }, admin), "not_found", "Could not revoke token", "TOKEN_NOT_FOUND");
        }
        const doc = await db.collection("api_tokens").findOne({ _id: link as never });
        assert.deepEqual([doc?.description, doc?.pending, doc?.revokedAt], ["in flight", true, undefined]);
        assert.equal(await db.collection("marks").countDocuments({ _id: `api-revoked:${link}` as never }), 0);
      });
      assert.equal(expectOk(await api.authenticate(bearer(expectOk(creation).token))).token_link, link);
      const refused = ["api_token.described failure TOKEN_NOT_FOUND", "api_token.revoked failure TOKEN_NOT_FOUND"];
      assert.deepEqual(await audited(unknown), refused);
      assert.deepEqual(await audited(link), [...refused, "api_token.created success"]);
      assert.deepEqual(await descriptions(accountId), ["in flight"]);
      assert.deepEqual(await descriptions(accountId, "revoked"), []);
    });

    it("a pending token does not authenticate (INVALID_TOKEN, as one never issued) and, while its creation may still answer, counts and is kept by housekeeping", async () => {
      const accountId = account();
      expectOk(await create(accountId, "kept"));
      const secret = await insertPending(accountId, "in flight", minute);
      expectCode(await api.authenticate(bearer(secret)), "unauthenticated", "invalid API token", "INVALID_TOKEN");
      expectCode(await api.authenticate(bearer(generateApiTokenSecret())), "unauthenticated", "invalid API token", "INVALID_TOKEN");
      assert.deepEqual(await descriptions(accountId), ["kept"]);
      expectCode(await create(accountId, "one too many"), "failed_precondition", full, "TOO_MANY_TOKENS");
      assert.equal((await housekeeping()).removed.abandonedApiTokens, 0);
      assert.deepEqual(await stored(accountId), ["in flight (pending)", "kept"]);
    });

    it("a token whose creation died before clearing `pending` is abandoned: not listed, not authenticating, not counted towards the bound, and deleted by housekeeping (counted in its log line)", async () => {
      const accountId = account();
      expectOk(await create(accountId, "kept"));
      const secret = await insertPending(accountId, "died", PENDING_ABANDONED_AFTER_MS + minute);
      assert.deepEqual(await descriptions(accountId), ["kept"]);
      assert.deepEqual(await descriptions(accountId, "revoked"), []);
      expectCode(await api.authenticate(bearer(secret)), "unauthenticated", "invalid API token", "INVALID_TOKEN");
      const second = expectOk(await create(accountId, "second")).token;
      assert.equal(expectOk(await api.authenticate(bearer(second))).account_id, accountId);
      expectCode(await create(accountId, "third"), "failed_precondition", full, "TOO_MANY_TOKENS");
      const { removed, logged } = await housekeeping();
      assert.equal(removed.abandonedApiTokens, 1);
      assert.equal(logged?.abandonedApiTokens, 1);
      assert.deepEqual(await stored(accountId), ["kept", "second"]);
      assert.deepEqual(await descriptions(accountId), ["kept", "second"]);
    });

    it("a creation whose clearing of `pending` fails after the write landed answers UNAVAILABLE and withdraws its token: not listed, not stored, no place taken", async () => {
      const accountId = account();
      expectOk(await create(accountId, "kept"));
      await onClear(
        async (clear) => {
          await clear();
          throw new MongoNetworkError("connection reset");
        },
        async () => expectCode(await create(accountId, "answer lost"), "unavailable", unavailable, "STORE_UNAVAILABLE"),
      );
      assert.deepEqual(await stored(accountId), ["kept"]);
      assert.deepEqual(await descriptions(accountId), ["kept"]);
      expectOk(await create(accountId, "second"));
    });

    it("a creation given up before it kept its token (the store call's bound passed: 503) withdraws it once it goes on: nothing stored, listed or counted", async () => {
      const accountId = account();
      expectOk(await create(accountId, "kept"));
      const held = gate();
      const toArray = FindCursor.prototype.toArray;
      let holding = true;
      FindCursor.prototype.toArray = async function (this: FindCursor) {
        if (holding && this.namespace.collection === "api_tokens") {
          holding = false;
          await held.pass();
        }
        return toArray.call(this);
      } as FindCursor["toArray"];
      try {
        await givenUp(accountId, held);
      } finally {
        FindCursor.prototype.toArray = toArray;
      }
      assert.deepEqual(await stored(accountId), ["kept"]);
      assert.deepEqual(await descriptions(accountId), ["kept"]);
      expectOk(await create(accountId, "second"));
    });

    it("a creation given up while it cleared `pending` (the store call's bound passed during that write: 503) withdraws its token once the write lands: nothing stored, listed or counted", async () => {
      const accountId = account();
      expectOk(await create(accountId, "kept"));
      const held = gate();
      await onClear(
        async (clear) => {
          await held.pass();
          return clear();
        },
        () => givenUp(accountId, held),
      );
      assert.deepEqual(await stored(accountId), ["kept"]);
      assert.deepEqual(await descriptions(accountId), ["kept"]);
      expectOk(await create(accountId, "second"));
    });

    it("a creation whose token was deleted as abandoned before its clear (an instance's clock far ahead) answers UNAVAILABLE, not a token that does not exist", async () => {
      const accountId = account();
      expectOk(await create(accountId, "kept"));
      await onClear(
        async (clear, collection, filter) => {
          await collection.deleteOne(filter);
          return clear();
        },
        async () => expectCode(await create(accountId, "deleted"), "unavailable", unavailable, "STORE_UNAVAILABLE"),
      );
      assert.deepEqual(await stored(accountId), ["kept"]);
      assert.deepEqual(await descriptions(accountId), ["kept"]);
    });

    it("a creation whose clearing of `pending` and withdrawal both fail leaves its token pending: not listed; abandoned past the bound, it no longer counts and housekeeping deletes it", async () => {
      const accountId = account();
      expectOk(await create(accountId, "kept"));
      const deleteOne = Collection.prototype.deleteOne;
      Collection.prototype.deleteOne = function (this: Collection, ...args: Parameters<Collection["deleteOne"]>) {
        if (this.collectionName === "api_tokens") return Promise.reject(new MongoNetworkError("connection reset"));
        return deleteOne.apply(this, args);
      } as Collection["deleteOne"];
      try {
        await onClear(
          () => Promise.reject(new MongoNetworkError("connection reset")),
          async () => expectCode(await create(accountId, "stuck"), "unavailable", unavailable, "STORE_UNAVAILABLE"),
        );
      } finally {
        Collection.prototype.deleteOne = deleteOne;
      }
      assert.deepEqual(await stored(accountId), ["kept", "stuck (pending)"]);
      assert.deepEqual(await descriptions(accountId), ["kept"]);
      expectCode(await create(accountId, "while it may answer"), "failed_precondition", full, "TOO_MANY_TOKENS");
      shiftMs = PENDING_ABANDONED_AFTER_MS + minute;
      expectOk(await create(accountId, "second"));
      assert.equal((await housekeeping()).removed.abandonedApiTokens, 1);
      assert.deepEqual(await stored(accountId), ["kept", "second"]);
    });
  });
}
