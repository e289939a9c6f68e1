// An instance's caches keep a revocation made on another instance on one store unseen for at
// most their documented bound (README, "Credential lifetime" and the configuration table): an
// API token lookup for TESSERA_API_TOKEN_CACHE_SECONDS, the key list for 30 s. The bound counts
// from the store read a cache entry rests on, not from when that read answered: a read that
// began before the revocation and answered late (a slow store) still shows the credential live.
// Each read below is held after it has read, while the other instance revokes and the clock
// moves on.
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { expectCode, expectOk, type Outcome } from "../support/api.js";
import { bearer, rest } from "../support/clients.js";
import { scrape, value } from "../support/metrics.js";
import { pollUntil } from "../support/poll.js";
import { storesUnderTest, type TestServer } from "../support/server.js";
import { admin, createJwtUser, jwtLogin } from "../support/users.js";
import { apiTokenApi } from "../api-token/api.js";
import { jwtApi } from "../jwt/api.js";
import { assertRefused, holdAfter, startServerPair, type ServerPair } from "./support.js";

/** How long to wait for what b does (generous: the machine may be loaded), and how often to look. */
const pace = { limitMs: 20_000, intervalMs: 20 };

/** Revokes, on `server`, the key that signed `token`. */
async function revokeKeyOf(server: TestServer, token: string): Promise<void> {
  const { kid } = JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString()) as { kid: string };
  const revoked = await rest(server.url, "POST", `/v1/admin/keys/${kid}:revoke`, { headers: admin, json: {} });
  assert.equal(revoked.status, 200, revoked.text);
}

for (const store of storesUnderTest()) {
  describe(`Caches of another instance on ${store} keep a revocation unseen no longer than their bound`, function () {
    this.timeout(60_000);
    const clock = new ManualClock(Date.now());
    let pair: ServerPair;
    before(async () => (pair = await startServerPair(store, { TESSERA_API_TOKEN_CACHE_SECONDS: "2" }, clock)));
    after(() => pair.close());

    it("an API token whose lookup read it before its revocation and answered 10 s later: refused once TESSERA_API_TOKEN_CACHE_SECONDS (2) have passed since that read", async () => {
      const { a, b } = pair;
      const created = await rest(a.url, "POST", "/v1/frontend/auth", { headers: admin, json: { account_id: "acct-cache-bound", description: "cache bound" } });
      assert.equal(created.status, 200, created.text);
      const token = bearer(created.body.token as string);
      const held = holdAfter(b.tessera.store.apiTokens, "findByHash");
      try {
        const calling = rest(b.url, "GET", "/v1/api/auth", { headers: token });
        await held.reached;
        const link = (await rest(a.url, "GET", "/v1/api/auth", { headers: token })).body.token_link as string;
        const revoked = await rest(a.url, "DELETE", "/v1/frontend/auth/acct-cache-bound", { headers: admin, json: { token_link: link } });
        assert.equal(revoked.status, 200, revoked.text);
        clock.advance(10_000);
        held.open();
        // Read before the revocation: answered as it read.
        assert.equal((await calling).status, 200);
        assertRefused(await rest(b.url, "GET", "/v1/api/auth", { headers: token }), 401, "invalid API token", "INVALID_TOKEN");
      } finally {
        held.restore();
        held.open();
      }
    });

    for (const protocol of ["rest", "grpc"] as const) {
      it(`over ${protocol}: an API token asked for 10 s after a lookup of it began, before its revocation, while that lookup is under way: refused (a lookup older than TESSERA_API_TOKEN_CACHE_SECONDS is not shared)`, async () => {
        const { a, b } = pair;
        const accountId = `acct-shared-lookup-${protocol}`;
        const created = await rest(a.url, "POST", "/v1/frontend/auth", { headers: admin, json: { account_id: accountId, description: "shared lookup" } });
        assert.equal(created.status, 200, created.text);
        const token = bearer(created.body.token as string);
        const onB = apiTokenApi(protocol, b.url);
        const misses = async () => value(await scrape(`${b.url}/metrics`), "tessera_cache_misses_total", { cache: "api_token" });
        const held = holdAfter(b.tessera.store.apiTokens, "findByHash");
        try {
          const first = onB.authenticate(token);
          await held.reached;
          const link = (await rest(a.url, "GET", "/v1/api/auth", { headers: token })).body.token_link as string;
          const revoked = await rest(a.url, "DELETE", `/v1/frontend/auth/${accountId}`, { headers: admin, json: { token_link: link } });
          assert.equal(revoked.status, 200, revoked.text);
          clock.advance(10_000);
          const before = await misses();
          const second = onB.authenticate(token);
          // The second call has missed the cache (and found the first lookup under way) before that lookup answers.
          await pollUntil("the second call's cache miss on b", async () => (await misses()) > before, pace);
          held.open();
          // Begun before the revocation: answered as it read.
          expectOk(await first);
          expectCode(await second, "unauthenticated", "invalid API token", "INVALID_TOKEN");
        } finally {
          held.restore();
          held.open();
          onB.close();
        }
      });
    }

    /**
     * `check` on b once its key list is due, its read of the list held once made, while a revokes
     * the key that signed `access`: the check (`calling`), and the hold, to be opened.
     */
    async function revokedWhileListRead<T>(access: string, check: () => Promise<T>): Promise<{ held: ReturnType<typeof holdAfter>; calling: Promise<T> }> {
      clock.advance(30_000);
      const held = holdAfter(pair.b.tessera.store.keys, "list");
      try {
        const calling = check();
        await held.reached;
        await revokeKeyOf(pair.a, access);
        return { held, calling };
      } catch (e) {
        held.restore();
        held.open();
        throw e;
      }
    }

    it("a signing key whose list was read before its revocation and answered 29 s later: its tokens are refused once 30 s have passed since that read", async () => {
      const { a, b } = pair;
      const access = await jwtLogin(a, await createJwtUser(a));
      const check = () => rest(b.url, "GET", "/jwt/check", { headers: bearer(access) });
      assert.equal((await check()).status, 200);
      const { held, calling } = await revokedWhileListRead(access, check);
      try {
        clock.advance(29_000);
        held.open();
        // Read before the revocation: answered as it read.
        assert.equal((await calling).status, 200);
        clock.advance(1_000);
        assertRefused(await check(), 400, "token signed by a revoked key", "INVALID_TOKEN");
      } finally {
        held.restore();
        held.open();
      }
    });

    for (const protocol of ["rest", "grpc"] as const) {
      it(`over ${protocol}: a signing key whose list is being read since before its revocation: a token of it checked 31 s after that read began is refused, and the read's late answer does not bring the key back`, async () => {
        const { a, b } = pair;
        const access = await jwtLogin(a, await createJwtUser(a));
        const onB = jwtApi(protocol, b.url);
        const revokedKey = (outcome: Outcome<unknown>) => expectCode(outcome, "invalid_argument", "token signed by a revoked key", "INVALID_TOKEN");
        const check = () => onB.check({ access_token: access });
        expectOk(await check());
        const { held, calling: first } = await revokedWhileListRead(access, check);
        try {
          clock.advance(31_000);
          let answered = false;
          const second = check().finally(() => (answered = true));
          // Answered while the read begun 31 s before it is still held: it did not wait for that read.
          await pollUntil("the second check's answer on b, the read begun 31 s before it still held", () => answered, pace);
          revokedKey(await second);
          held.open();
          revokedKey(await first);
          revokedKey(await check());
        } finally {
          held.restore();
          held.open();
          onB.close();
        }
      });
    }
  });
}
