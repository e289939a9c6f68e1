// Seed 001 on MongoDB: a rename (PUT /v1/frontend/auth) racing a revocation of the same token
// (DELETE /v1/frontend/auth/{account_id}) answers what it answers on SQLite, where each is one
// conditional UPDATE of the token's row: a rename the revocation overtook is refused as the
// rename of a revoked token (404 "Could not update token description") and leaves the revoked
// token's description as the revocation found it; a rename made before the revocation stands,
// and the token is listed revoked under the new description. On MongoDB the rename read the
// token (not revoked), then wrote its description in place: a revocation between the two was not
// seen, and the rename answered 200 and changed the description of the token just revoked. It now
// looks for the revocation's mark once written.
//
// Driven on the wire (support/holding-proxy.ts): the rename's write (the one command that
// carries the new description) is held while the revocation is made and answered, then released;
// or the revocation's claim of its mark is held while the rename is made and answered.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { behindHoldingProxy, type HoldingProxy } from "../support/holding-proxy.js";
import { expectCode, expectOk, type Outcome } from "../support/api.js";
import { storesUnderTest, type TestServer } from "../support/server.js";
import { admin, uniqueName } from "../support/users.js";
import { apiTokenApi, type ApiTokenApi } from "../api-token/api.js";

for (const store of storesUnderTest().filter((s) => s === "mongo")) {
  describe(`store: an API token's rename racing its revocation answers as one after the other (${store})`, function () {
    this.timeout(60_000);
    let proxy: HoldingProxy;
    let server: TestServer;
    let api: ApiTokenApi;
    behindHoldingProxy({ env: {} }, (p, s) => {
      [proxy, server] = [p, s];
      api = apiTokenApi("rest", server.url);
    });
    after(() => api?.close());

    /** A new account's one token: its account and link. */
    async function newToken(description: string): Promise<{ accountId: string; link: string }> {
      const accountId = uniqueName("acct");
      expectOk(await api.createToken({ account_id: accountId, description }, admin));
      const listed = expectOk(await api.listTokens(accountId, undefined, admin));
      return { accountId, link: listed.tokens[0]!.token_link };
    }

    /** The account's tokens in `state`: link and description. */
    async function listed(accountId: string, state: "active" | "revoked"): Promise<Array<{ token_link: string; description: string }>> {
      return expectOk(await api.listTokens(accountId, state, admin)).tokens.map(({ token_link, description }) => ({ token_link, description }));
    }

    /** Runs `first` with the commands matching `match` held from their first on; `second` while it is held; then releases it. */
    async function whileHeld<T>(match: readonly string[], first: () => Promise<T>, second: () => Promise<void>): Promise<T> {
      proxy.hold = match;
      let answer: Promise<T> | undefined;
      try {
        answer = first();
        await proxy.held();
        // Held on its connection: nothing else is.
        proxy.hold = undefined;
        await second();
      } finally {
        proxy.release();
      }
      return answer;
    }

    it("PUT whose write is held while DELETE revokes the token: 404 Could not update token description, the revoked token's description unchanged", async () => {
      const { accountId, link } = await newToken("before");
      const renamed = `renamed-${randomUUID()}`;
      const rename: Outcome<unknown> = await whileHeld(
        [renamed],
        () => api.updateToken({ token_link: link, description: renamed }, admin),
        async () => void expectOk(await api.revokeToken(accountId, { token_link: link }, admin)),
      );
      // The answer a PUT after the revocation gets.
      expectCode(rename, "not_found", "Could not update token description", "TOKEN_NOT_FOUND");
      assert.deepEqual(await listed(accountId, "revoked"), [{ token_link: link, description: "before" }]);
      assert.deepEqual(await listed(accountId, "active"), []);
      // Revoked, as the DELETE answered.
      expectCode(await api.revokeToken(accountId, { token_link: link }, admin), "not_found", "Could not revoke token", "TOKEN_NOT_FOUND");
    });

    // The refused rename puts back the description its own write replaced, not the one it read
    // first: a rename made and answered between the two, before the revocation, stands.
    it("PUT whose write is held while another PUT renames the token and DELETE revokes it: the second PUT 200, the first 404, the token listed revoked under the second's description", async () => {
      const { accountId, link } = await newToken("before");
      const held = `held-${randomUUID()}`;
      const rename: Outcome<unknown> = await whileHeld(
        [held],
        () => api.updateToken({ token_link: link, description: held }, admin),
        async () => {
          assert.deepEqual(expectOk(await api.updateToken({ token_link: link, description: "second" }, admin)), { token_link: link, description: "second" });
          expectOk(await api.revokeToken(accountId, { token_link: link }, admin));
        },
      );
      expectCode(rename, "not_found", "Could not update token description", "TOKEN_NOT_FOUND");
      assert.deepEqual(await listed(accountId, "revoked"), [{ token_link: link, description: "second" }]);
      assert.deepEqual(await listed(accountId, "active"), []);
    });

    it("DELETE whose claim of the revocation is held while PUT renames the token: PUT 200, DELETE 200, the token listed revoked under the new description", async () => {
      const { accountId, link } = await newToken("before");
      const revocation = await whileHeld(
        ["insert\0", `api-revoked:${link}`],
        () => api.revokeToken(accountId, { token_link: link }, admin),
        async () => assert.deepEqual(expectOk(await api.updateToken({ token_link: link, description: "after" }, admin)), { token_link: link, description: "after" }),
      );
      expectOk(revocation);
      assert.deepEqual(await listed(accountId, "revoked"), [{ token_link: link, description: "after" }]);
      assert.deepEqual(await listed(accountId, "active"), []);
    });
  });
}
