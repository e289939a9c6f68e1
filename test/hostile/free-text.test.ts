// Free text a caller stores is refused with a named 400 when it holds control characters (NUL
// above all: a PostgreSQL-backed store cannot hold it, and the fuzzer found it answering 500).
import assert from "node:assert/strict";
import { basic, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, testAdminToken, testClientId, type TestServer } from "../support/server.js";


for (const store of storesUnderTest()) {
  describe(`hostile: control characters in stored free text (${store})`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store });
      const created = await rest(server.url, "POST", "/user", {
        headers: { "x-koms-clientid": testClientId },
        json: { email: "text@example.com", password: "violet-kettle-harbour-29" },
      });
      assert.equal(created.status, 201, created.text);
    });
    after(async () => server.close());

    for (const bad of ["\u0000", "a\u0000b", "bell\u0007", "esc\u001b[0m"]) {
      it(`POST /auth/login note ${JSON.stringify(bad)} -> 400 naming note`, async () => {
        const res = await rest(server.url, "POST", "/auth/login", {
          headers: basic("text@example.com", "violet-kettle-harbour-29"),
          json: { note: bad },
        });
        assert.equal(res.status, 400, res.text);
        assert.deepEqual(res.body, { code: "invalid_argument", message: "note must not contain control characters", details: [] });
      });

      it(`POST /v1/frontend/auth description ${JSON.stringify(bad)} -> 400 naming description`, async () => {
        const res = await rest(server.url, "POST", "/v1/frontend/auth", {
          headers: { authorization: `Bearer ${testAdminToken}` },
          json: { account_id: "acct", description: bad + "x" },
        });
        assert.equal(res.status, 400, res.text);
        assert.equal(res.body.message, "description must not contain control characters");
      });
    }

    // An account id holding a control character cannot exist (creating one is refused above), so
    // listing it finds nothing and revoking under it finds nothing, without asking the store (a
    // PostgreSQL-backed one cannot even compare such a value: the fuzzer found these answering 500).
    it("GET /v1/frontend/auth/{account_id} with a NUL in the account id -> 200 with no tokens", async () => {
      const res = await rest(server.url, "GET", "/v1/frontend/auth/a%00b", { headers: { authorization: `Bearer ${testAdminToken}` } });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { tokens: [] });
    });

    it("DELETE /v1/frontend/auth/{account_id} with a NUL in the account id -> 404 Could not revoke token", async () => {
      const res = await rest(server.url, "DELETE", "/v1/frontend/auth/a%00b", {
        headers: { authorization: `Bearer ${testAdminToken}` },
        json: { token_link: "550e8400-e29b-41d4-a716-446655440000" },
      });
      assert.equal(res.status, 404, res.text);
      assert.deepEqual(res.body, { code: "not_found", message: "Could not revoke token", details: [] });
    });

    it("tabs and line breaks are ordinary text", async () => {
      const res = await rest(server.url, "POST", "/auth/login", {
        headers: basic("text@example.com", "violet-kettle-harbour-29"),
        json: { note: "line one\n\tline two\r\n" },
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.note, "line one\n\tline two\r\n");
    });
  });
}
