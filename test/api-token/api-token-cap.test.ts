// Seed 001 (ApiTokenService): an account holds at most TESSERA_MAX_API_TOKENS_PER_ACCOUNT active
// tokens. One more is refused (400, FAILED_PRECONDITION, reason TOO_MANY_TOKENS), never made room
// for by ending another; a revoked token frees its place. Through real clients, on each store,
// and on two instances sharing one: creations racing for the last places keep as many as there
// was room for (src/store/README.md, "API tokens per account"), where on MongoDB they could all
// withdraw themselves and keep fewer; one issued on an instance whose clock is behind, for an
// account the other instance filled, is refused.
import assert from "node:assert/strict";
import { Collection } from "mongodb";
import { loadConfig } from "../../src/config.js";
import type { Clock } from "../../src/core/clock.js";
import { hashSecret } from "../../src/core/secrets.js";
import type { NewApiToken } from "../../src/store/ports.js";
import { expectCode, expectOk, protocols, type Outcome, type Protocol } from "../support/api.js";
import { bearer, rest } from "../support/clients.js";
import { decodedBody, tesseraDetails } from "../support/error-details.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { admin } from "../support/users.js";
import { gate, insertsHeldTogether, startServerPair, type ServerPair } from "../credentials/support.js";
import { apiTokenApi, type ApiTokenApi } from "./api.js";

const full = "an account holds at most 3 active API tokens; revoke one first";

/** A token as the store was given it to create: its link, issue time (ms) and description. */
interface Issued {
  link: string;
  at: number;
  description: string;
}

/** Records the tokens `servers` create from now on, by hash, in the order of the calls. */
function recordIssued(servers: readonly TestServer[]): Map<string, Issued> {
  const issued = new Map<string, Issued>();
  for (const server of servers) {
    const tokens = server.tessera.store.apiTokens;
    const create = tokens.create;
    tokens.create = (token: NewApiToken, maxActive: number) => {
      issued.set(token.hash, { link: token.link, at: token.issuedAt.getTime(), description: token.description });
      return create.call(tokens, token, maxActive);
    };
  }
  return issued;
}

/** `tokens` in the order MongoDB keeps them by: issue time, then link. */
const byIssue = (tokens: Iterable<Issued>): Issued[] => [...tokens].sort((x, y) => x.at - y.at || (x.link < y.link ? -1 : x.link > y.link ? 1 : 0));

/**
 * Checks the outcomes of creations at once for one account that had room for `room`: each refused
 * one TOO_MANY_TOKENS; SQLite keeps exactly `room`, MongoDB at least `room` (more only where
 * creations overlap: src/store/README.md); with `first` (MongoDB, each inserted before any
 * counts) exactly the `room` issued first among them (`issued`: what the store was given). Answers
 * the secrets of those kept.
 */
function keptOfBurst(store: string, outcomes: ReadonlyArray<Outcome<{ token: string }>>, room: number, shown: string, first?: Map<string, Issued>): string[] {
  for (const o of outcomes) if (o.code !== "ok") expectCode(o, "failed_precondition", full, "TOO_MANY_TOKENS");
  const kept = outcomes.filter((o) => o.code === "ok").map((o) => o.data!.token);
  if (store === "sqlite" || first) assert.equal(kept.length, room, `${shown}: ${kept.length} kept`);
  else assert.ok(kept.length >= room, `${shown}: ${kept.length} kept, fewer than the ${room} places`);
  if (first) {
    assert.equal(first.size, outcomes.length);
    const earliest = byIssue(first.values()).slice(0, room).map((t) => t.link);
    assert.deepEqual(kept.map((secret) => first.get(hashSecret(secret))!.link).sort(), earliest.sort(), `${shown}: the ${room} issued first are kept`);
  }
  return kept;
}

describe("TESSERA_MAX_API_TOKENS_PER_ACCOUNT", () => {
  it("is 1000 unless set", () => {
    assert.equal(loadConfig({}).maxApiTokensPerAccount, 1000);
    assert.equal(loadConfig({ TESSERA_MAX_API_TOKENS_PER_ACCOUNT: "3" }).maxApiTokensPerAccount, 3);
  });

  it("refuses what is not a whole number of at least 1, naming the variable", () => {
    assert.throws(() => loadConfig({ TESSERA_MAX_API_TOKENS_PER_ACCOUNT: "0" }), /^ConfigError: TESSERA_MAX_API_TOKENS_PER_ACCOUNT: must be between 1 and 1000000, got 0$/);
    assert.throws(() => loadConfig({ TESSERA_MAX_API_TOKENS_PER_ACCOUNT: "many" }), /^ConfigError: TESSERA_MAX_API_TOKENS_PER_ACCOUNT: must be a whole number, got "many"$/);
  });
});

for (const store of storesUnderTest()) {
  describe(`API tokens per account, at most 3 (TESSERA_MAX_API_TOKENS_PER_ACCOUNT), on ${store}`, function () {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store, env: { TESSERA_MAX_API_TOKENS_PER_ACCOUNT: "3" } });
    });
    after(async () => {
      await server?.close();
    });

    let accounts = 0;
    const newAccount = () => `CAPPED_ACCOUNT_${++accounts}`;
    /** Runs `test` with a client of `protocol`, closed after it. */
    async function over(protocol: Protocol, test: (api: ApiTokenApi) => Promise<void>): Promise<void> {
      const api = apiTokenApi(protocol, server.url);
      try {
        await test(api);
      } finally {
        api.close();
      }
    }
    const create = (api: ApiTokenApi, account_id: string, description = "Token description") => api.createToken({ account_id, description }, admin);

    for (const protocol of protocols) {
      it(`over ${protocol}: refuses a fourth active token with FAILED_PRECONDITION TOO_MANY_TOKENS; a revoked token frees a place; another account has its own`, () =>
        over(protocol, async (api) => {
          const accountId = newAccount();
          const secrets: string[] = [];
          for (const d of ["first", "second", "third"]) secrets.push(expectOk(await create(api, accountId, d)).token);
          expectCode(await create(api, accountId, "fourth"), "failed_precondition", full, "TOO_MANY_TOKENS");
          // Nothing was ended to make room: the three still authenticate, and are listed.
          for (const secret of secrets) assert.equal(expectOk(await api.authenticate(bearer(secret))).account_id, accountId);
          const { tokens } = expectOk(await api.listTokens(accountId, undefined, admin));
          assert.deepEqual(tokens.map((t) => t.description).sort(), ["first", "second", "third"]);

          expectOk(await create(api, newAccount(), "elsewhere"));

          const second = tokens.find((t) => t.description === "second")!.token_link;
          expectOk(await api.revokeToken(accountId, { token_link: second }, admin));
          const fourth = expectOk(await create(api, accountId, "fourth")).token;
          assert.equal(expectOk(await api.authenticate(bearer(fourth))).account_id, accountId);
          expectCode(await create(api, accountId, "fifth"), "failed_precondition", full, "TOO_MANY_TOKENS");
        }));

      it(`over ${protocol}: keeps ${store === "sqlite" ? "exactly" : "at least"} 3 of 10 concurrent creations; each refused one is TOO_MANY_TOKENS and not listed`, () =>
        over(protocol, async (api) => {
          const accountId = newAccount();
          const outcomes = await Promise.all(Array.from({ length: 10 }, (_, i) => create(api, accountId, `burst ${i}`)));
          const kept = keptOfBurst(store, outcomes, 3, "burst");
          const { tokens } = expectOk(await api.listTokens(accountId, undefined, admin));
          assert.equal(tokens.length, kept.length);
          for (const secret of kept) assert.equal(expectOk(await api.authenticate(bearer(secret))).account_id, accountId);
          assert.deepEqual(expectOk(await api.listTokens(accountId, "revoked", admin)), { tokens: [] });
        }));
    }

    it("REST: POST /v1/frontend/auth on a full account answers 400 with the JSON error, its ErrorInfo reason TOO_MANY_TOKENS", async () => {
      const json = { account_id: "CAPPED_ACCOUNT_rest_body", description: "Token description" };
      for (let i = 0; i < 3; i++) assert.equal((await rest(server.url, "POST", "/v1/frontend/auth", { json, headers: admin })).status, 200);
      const refused = await rest(server.url, "POST", "/v1/frontend/auth", { json, headers: admin });
      assert.equal(refused.status, 400, refused.text);
      assert.match(refused.headers.get("content-type") ?? "", /^application\/json/);
      assert.deepEqual(decodedBody(refused.body), { code: "failed_precondition", message: full, details: tesseraDetails("TOO_MANY_TOKENS") });
    });
  });

  describe(`API tokens per account, at most 3, created at once on two instances sharing one store, on ${store}`, function () {
    this.timeout(120_000);
    const ROUNDS = 20;
    let pair: ServerPair;
    let issued: Map<string, Issued>;
    let onA: ApiTokenApi;
    let onB: ApiTokenApi;
    before(async () => {
      pair = await startServerPair(store, { TESSERA_MAX_API_TOKENS_PER_ACCOUNT: "3", ...(store === "mongo" && { TESSERA_STORE_TIMEOUT_MS: "10000" }) });
      issued = recordIssued([pair.a, pair.b]);
      onA = apiTokenApi("rest", pair.a.url);
      onB = apiTokenApi("grpc", pair.b.url);
    });
    after(async () => {
      onA?.close();
      onB?.close();
      await pair?.close();
    });
    let accounts = 0;
    const newAccount = () => `RACING_ACCOUNT_${++accounts}_${Date.now()}`;

    it(`${ROUNDS} times, 2 held and 2 created at once, one on each instance: exactly one is created, the other refused FAILED_PRECONDITION TOO_MANY_TOKENS${store === "mongo" ? " (every other round both inserted before either counts: the one issued first is kept)" : ""}`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const account_id = newAccount();
        for (const description of ["first", "second"]) expectOk(await onA.createToken({ account_id, description }, admin));
        const closest = store === "mongo" && round % 2 === 0;
        const release = closest ? insertsHeldTogether("api_tokens", 2) : undefined;
        issued.clear();
        let outcomes: Array<Outcome<{ token: string }>>;
        try {
          outcomes = await Promise.all([onA, onB].map((api, i) => api.createToken({ account_id, description: `racing ${i}` }, admin)));
        } finally {
          release?.();
        }
        const shown = `round ${round}: ${outcomes.map((o) => o.code).join(", ")}`;
        const kept = keptOfBurst(store, outcomes, 1, shown, closest ? issued : undefined);
        for (const secret of kept) assert.equal(expectOk(await onB.authenticate(bearer(secret))).account_id, account_id);
        const { tokens } = expectOk(await onB.listTokens(account_id, undefined, admin));
        assert.equal(tokens.length, 2 + kept.length, `${shown}: ${tokens.length} listed`);
      }
    });

    if (store === "mongo") {
      it("2 held and 2 created at once, both inserted before either counts, the later one's withdrawal slow (held until the other has answered): the one issued first is still created", async () => {
        for (let round = 0; round < 5; round++) {
          const account_id = newAccount();
          for (const description of ["first", "second"]) expectOk(await onA.createToken({ account_id, description }, admin));
          issued.clear();
          // Each creation's answer, by its description.
          const answered = new Map([0, 1].map((i) => [`racing ${i}`, gate()]));
          const deleteOne = Collection.prototype.deleteOne;
          Collection.prototype.deleteOne = async function (this: Collection, ...args: Parameters<Collection["deleteOne"]>) {
            const link = (args[0] as { _id?: unknown } | undefined)?._id;
            const [earlier, later] = byIssue(issued.values());
            if (this.collectionName === "api_tokens" && later !== undefined && link === later.link) await answered.get(earlier!.description)!.pass();
            return deleteOne.apply(this, args);
          } as Collection["deleteOne"];
          const release = insertsHeldTogether("api_tokens", 2);
          let outcomes: Array<Outcome<{ token: string }>>;
          try {
            outcomes = await Promise.all(
              [onA, onB].map(async (api, i) => {
                const outcome = await api.createToken({ account_id, description: `racing ${i}` }, admin);
                answered.get(`racing ${i}`)!.open();
                return outcome;
              }),
            );
          } finally {
            release();
            Collection.prototype.deleteOne = deleteOne;
            for (const a of answered.values()) a.open();
          }
          keptOfBurst(store, outcomes, 1, `round ${round}: ${outcomes.map((o) => o.code).join(", ")}`, issued);
        }
      });
    }

    it(`${ROUNDS} times, 10 created at once on both instances for an account holding none: ${store === "sqlite" ? "exactly" : "at least"} 3 are kept, the others refused TOO_MANY_TOKENS${store === "mongo" ? " (every other round all inserted before any counts: exactly the 3 issued first)" : ""}`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const account_id = newAccount();
        const closest = store === "mongo" && round % 2 === 0;
        const release = closest ? insertsHeldTogether("api_tokens", 10) : undefined;
        issued.clear();
        let outcomes: Array<Outcome<{ token: string }>>;
        try {
          outcomes = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? onA : onB).createToken({ account_id, description: `burst ${i}` }, admin)));
        } finally {
          release?.();
        }
        const kept = keptOfBurst(store, outcomes, 3, `round ${round}`, closest ? issued : undefined);
        assert.equal(expectOk(await onA.listTokens(account_id, undefined, admin)).tokens.length, kept.length);
      }
    });
  });

  describe(`API tokens per account, at most 3, on two instances sharing one store whose clocks are 2 s apart, on ${store}`, function () {
    this.timeout(60_000);
    let pair: ServerPair;
    // a is behind: a token it issues is older than one b issued a moment before.
    const behind: Clock = { now: () => new Date(Date.now() - 2_000) };
    const ahead: Clock = { now: () => new Date() };
    before(async () => {
      pair = await startServerPair(store, { TESSERA_MAX_API_TOKENS_PER_ACCOUNT: "3" }, [behind, ahead]);
    });
    after(async () => {
      await pair?.close();
    });

    it("a creation on the instance behind, for an account the instance ahead just filled, is refused TOO_MANY_TOKENS though issued before the tokens there; a revocation makes room", async () => {
      const onA = apiTokenApi("rest", pair.a.url);
      const onB = apiTokenApi("rest", pair.b.url);
      try {
        const account_id = `SKEWED_ACCOUNT_${Date.now()}`;
        for (const description of ["first", "second", "third"]) expectOk(await onB.createToken({ account_id, description }, admin));
        expectCode(await onA.createToken({ account_id, description: "behind" }, admin), "failed_precondition", full, "TOO_MANY_TOKENS");
        expectCode(await onA.createToken({ account_id, description: "behind again" }, admin), "failed_precondition", full, "TOO_MANY_TOKENS");
        const active = expectOk(await onA.listTokens(account_id, undefined, admin)).tokens;
        assert.deepEqual(active.map((t) => t.description).sort(), ["first", "second", "third"]);
        expectOk(await onB.revokeToken(account_id, { token_link: active.find((t) => t.description === "third")!.token_link }, admin));
        expectOk(await onA.createToken({ account_id, description: "behind, after a revocation" }, admin));
        expectCode(await onB.createToken({ account_id, description: "ahead" }, admin), "failed_precondition", full, "TOO_MANY_TOKENS");
        expectCode(await onA.createToken({ account_id, description: "behind once more" }, admin), "failed_precondition", full, "TOO_MANY_TOKENS");
      } finally {
        onA.close();
        onB.close();
      }
    });
  });
}
