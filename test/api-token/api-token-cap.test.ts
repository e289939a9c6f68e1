// Seed 001 (ApiTokenService): an account holds at most TESSERA_MAX_API_TOKENS_PER_ACCOUNT active
// tokens. One more is refused (400, FAILED_PRECONDITION, reason TOO_MANY_TOKENS), never made room
// for by ending another; a revoked token frees its place. Through real clients, on each store.
import assert from "node:assert/strict";
import { loadConfig } from "../../src/config.js";
import { expectCode, expectOk, protocols, type Protocol } from "../support/api.js";
import { bearer, rest } from "../support/clients.js";
import { decodedBody, tesseraDetails } from "../support/error-details.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { admin } from "../support/users.js";
import { apiTokenApi, type ApiTokenApi } from "./api.js";

const full = "an account holds at most 3 active API tokens; revoke one first";

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

      it(`over ${protocol}: keeps ${store === "sqlite" ? "exactly" : "at most"} 3 of 10 concurrent creations; each refused one is TOO_MANY_TOKENS and not listed`, () =>
        over(protocol, async (api) => {
          const accountId = newAccount();
          const outcomes = await Promise.all(Array.from({ length: 10 }, (_, i) => create(api, accountId, `burst ${i}`)));
          const kept = outcomes.filter((o) => o.code === "ok");
          if (store === "sqlite") assert.equal(kept.length, 3);
          else assert.ok(kept.length <= 3, `${kept.length} kept`);
          for (const o of outcomes) if (o.code !== "ok") expectCode(o, "failed_precondition", full, "TOO_MANY_TOKENS");
          const { tokens } = expectOk(await api.listTokens(accountId, undefined, admin));
          assert.equal(tokens.length, kept.length);
          for (const o of kept) assert.equal(expectOk(await api.authenticate(bearer(o.data!.token))).account_id, accountId);
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
}
