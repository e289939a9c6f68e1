// Seed 001 (ApiTokenService) through real clients against a started server, on each store:
// REST (fetch) with the document's paths and JSON names, gRPC (@grpc/grpc-js) and Connect.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  ApiTokenService,
  type AuthenticateResponse,
  type CreateTokenResponse,
  type ListTokensResponse,
  type RevokeTokenResponse,
  type UpdateTokenResponse,
} from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { generateApiTokenSecret } from "../../src/core/api-token-secret.js";
import { ManualClock } from "../../src/core/clock.js";
import { hashSecret } from "../../src/core/secrets.js";
import { connectClient, GrpcJsClient, rest, type RestResponse } from "../support/clients.js";
import { startTestServer, testAdminToken, type TestServer } from "../support/server.js";
import { forEachStore, spyOn } from "./support.js";

const admin = { authorization: `Bearer ${testAdminToken}` };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const TOKEN_SHAPE = /^tsr_[0-9A-Za-z]{38}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The REST error body of the API map: `{code, message, details}`. */
function assertError(res: RestResponse, status: number, code: string, message: string): void {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(res.body, { code, message, details: [] });
}

forEachStore((kind) => {
  describe("ApiTokenService (seed 001)", function () {
    let server: TestServer;
    let clock: ManualClock;
    let grpcClient: GrpcJsClient<typeof ApiTokenService>;
    /** Every secret issued in this suite: none may appear in a log line. */
    const issued: string[] = [];
    let account = 0;
    const newAccount = () => `GATEWAY_ACCOUNT_${kind}_${++account}`;

    before(async () => {
      // 10 Oct 2015 12:12 UTC: the document's example date.
      clock = new ManualClock(Date.UTC(2015, 9, 10, 12, 12, 5));
      server = await startTestServer({ store: kind, clock, env: { TESSERA_LOG_LEVEL: "debug" } });
      grpcClient = new GrpcJsClient(ApiTokenService, server.url);
    });
    after(async () => {
      grpcClient?.close();
      await server?.close();
    });

    async function createToken(accountId: string, description = "Token description", extra: Record<string, string> = {}): Promise<string> {
      const res = await rest(server.url, "POST", "/v1/frontend/auth", { json: { account_id: accountId, description, ...extra }, headers: admin });
      assert.equal(res.status, 200, res.text);
      issued.push(res.body.token);
      return res.body.token as string;
    }

    async function listTokens(accountId: string, query = ""): Promise<RestResponse> {
      return rest(server.url, "GET", `/v1/frontend/auth/${encodeURIComponent(accountId)}${query}`, { headers: admin });
    }

    async function linkOf(accountId: string, description: string): Promise<string> {
      const res = await listTokens(accountId);
      const token = (res.body.tokens as Array<{ token_link: string; description: string }>).find((t) => t.description === description);
      assert.ok(token, `no token "${description}"`);
      return token.token_link;
    }

    describe("over REST", () => {
      it("POST /v1/frontend/auth -> 200 {token}", async () => {
        const res = await rest(server.url, "POST", "/v1/frontend/auth", {
          json: { account_id: "GATEWAY_ACCOUNT_1", description: "Token description" },
          headers: admin,
        });
        assert.equal(res.status, 200, res.text);
        assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
        assert.deepEqual(Object.keys(res.body), ["token"]);
        assert.match(res.body.token, TOKEN_SHAPE);
        issued.push(res.body.token);
      });

      it("GET /v1/api/auth -> 200 {account_id, token_link}", async () => {
        const accountId = newAccount();
        const token = await createToken(accountId);
        const res = await rest(server.url, "GET", "/v1/api/auth", { headers: { accept: "application/json", ...bearer(token) } });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body, { account_id: accountId, token_link: await linkOf(accountId, "Token description") });
        assert.match(res.body.token_link, UUID);
      });

      it("PUT /v1/frontend/auth -> 200 {token_link, description}", async () => {
        const accountId = newAccount();
        await createToken(accountId, "old");
        const link = await linkOf(accountId, "old");
        const res = await rest(server.url, "PUT", "/v1/frontend/auth", { json: { token_link: link, description: "New token description" }, headers: admin });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body, { token_link: link, description: "New token description" });
        assert.equal(await linkOf(accountId, "New token description"), link);
      });

      it("GET /v1/frontend/auth/{account_id} lists active tokens, newest first, with the documented fields", async () => {
        const accountId = newAccount();
        await createToken(accountId, "token 1 description", { created_by: "ops@example.com" });
        clock.advance(60_000);
        const second = await createToken(accountId, "token 2 description");
        await createToken(newAccount(), "another account's token");
        // Authenticate with the second: last_used appears (written asynchronously).
        assert.equal((await rest(server.url, "GET", "/v1/api/auth", { headers: bearer(second) })).status, 200);

        let res!: RestResponse;
        for (let i = 0; i < 100; i++) {
          res = await listTokens(accountId);
          if (res.body.tokens?.[0]?.last_used) break;
          await new Promise((r) => setTimeout(r, 10));
        }
        assert.equal(res.status, 200, res.text);
        const [newest, oldest] = res.body.tokens;
        assert.equal(res.body.tokens.length, 2);
        assert.deepEqual(Object.keys(newest).sort(), ["description", "issued_date", "last_used", "token_link"]);
        assert.equal(newest.description, "token 2 description");
        assert.equal(newest.issued_date, "10 Oct 2015 - 12:13");
        assert.equal(newest.last_used, "10 Oct 2015 - 12:13");
        assert.deepEqual(Object.keys(oldest).sort(), ["created_by", "description", "issued_date", "token_link"]);
        assert.equal(oldest.description, "token 1 description");
        assert.equal(oldest.issued_date, "10 Oct 2015 - 12:12");
        assert.equal(oldest.created_by, "ops@example.com");
        assert.match(oldest.token_link, UUID);

        // Same list with ?state=active, in any letter case.
        for (const q of ["?state=active", "?state=ACTIVE", "?state=Active"]) {
          assert.deepEqual((await listTokens(accountId, q)).body, res.body, q);
        }
      });

      it("DELETE /v1/frontend/auth/{account_id} -> 200 {revoked}; the token is then listed with ?state=revoked and refused", async () => {
        const accountId = newAccount();
        const token = await createToken(accountId, "to revoke");
        const link = await linkOf(accountId, "to revoke");
        assert.equal((await rest(server.url, "GET", "/v1/api/auth", { headers: bearer(token) })).status, 200);

        clock.set(Date.UTC(2015, 9, 10, 12, 12, 40));
        const res = await rest(server.url, "DELETE", `/v1/frontend/auth/${accountId}`, { json: { token_link: link }, headers: admin });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body, { revoked: "10 Oct 2015 - 12:12" });

        // Refused at once, although this instance had the lookup cached.
        assertError(await rest(server.url, "GET", "/v1/api/auth", { headers: bearer(token) }), 401, "unauthenticated", "invalid API token");

        assert.deepEqual((await listTokens(accountId)).body, { tokens: [] });
        const revoked = await listTokens(accountId, "?state=REVOKED");
        assert.equal(revoked.body.tokens.length, 1);
        assert.equal(revoked.body.tokens[0].token_link, link);
        assert.equal(revoked.body.tokens[0].revoked, "10 Oct 2015 - 12:12");
      });

      describe("errors", () => {
        it("400 Missing fields: lists every missing field", async () => {
          const post = (json: unknown) => rest(server.url, "POST", "/v1/frontend/auth", { json, headers: admin });
          assertError(await post({}), 400, "invalid_argument", "Missing fields: [account_id, description]");
          assertError(await post({ description: "Token description" }), 400, "invalid_argument", "Missing fields: [account_id]");
          assertError(await post({ account_id: "GATEWAY_ACCOUNT_1" }), 400, "invalid_argument", "Missing fields: [description]");
          assertError(await post({ account_id: " ", description: "" }), 400, "invalid_argument", "Missing fields: [account_id, description]");
          const put = (json: unknown) => rest(server.url, "PUT", "/v1/frontend/auth", { json, headers: admin });
          assertError(await put({}), 400, "invalid_argument", "Missing fields: [token_link, description]");
          assertError(await put({ token_link: "550e8400-e29b-41d4-a716-446655440000" }), 400, "invalid_argument", "Missing fields: [description]");
          assertError(
            await rest(server.url, "DELETE", "/v1/frontend/auth/15", { json: {}, headers: admin }),
            400,
            "invalid_argument",
            "Missing fields: [token_link]",
          );
        });

        it("404 Could not update token description: unknown or revoked link", async () => {
          const put = (token_link: string) =>
            rest(server.url, "PUT", "/v1/frontend/auth", { json: { token_link, description: "New token description" }, headers: admin });
          assertError(await put("550e8400-e29b-41d4-a716-446655440000"), 404, "not_found", "Could not update token description");
          assertError(await put("not-a-link"), 404, "not_found", "Could not update token description");
          const accountId = newAccount();
          await createToken(accountId, "revoked soon");
          const link = await linkOf(accountId, "revoked soon");
          assert.equal((await rest(server.url, "DELETE", `/v1/frontend/auth/${accountId}`, { json: { token_link: link }, headers: admin })).status, 200);
          assertError(await put(link), 404, "not_found", "Could not update token description");
        });

        it("404 Could not revoke token: unknown link, already revoked, another account's link", async () => {
          const accountId = newAccount();
          await createToken(accountId, "mine");
          const link = await linkOf(accountId, "mine");
          const del = (account: string, token_link: string) =>
            rest(server.url, "DELETE", `/v1/frontend/auth/${account}`, { json: { token_link }, headers: admin });
          assertError(await del(accountId, "550e8400-e29b-41d4-a716-446655440000"), 404, "not_found", "Could not revoke token");
          assertError(await del(newAccount(), link), 404, "not_found", "Could not revoke token");
          assert.equal((await del(accountId, link)).status, 200);
          assertError(await del(accountId, link), 404, "not_found", "Could not revoke token");
        });

        it("400 on an unknown state", async () => {
          assertError(await listTokens("15", "?state=all"), 400, "invalid_argument", 'state must be "active" or "revoked"');
        });

        it("401 on a missing, unknown, malformed or revoked token", async () => {
          const auth = (headers: Record<string, string>) => rest(server.url, "GET", "/v1/api/auth", { headers });
          const missing = await auth({});
          assert.equal(missing.status, 401);
          assert.equal(missing.body.code, "unauthenticated");
          const good = await createToken(newAccount());
          const brokenChecksum = good.slice(0, -1) + (good.endsWith("0") ? "1" : "0");
          for (const token of [generateApiTokenSecret(), "tsr_short", "not-a-token", brokenChecksum]) {
            const res = await auth(bearer(token));
            assertError(res, 401, "unauthenticated", "invalid API token");
            assert.equal(res.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
          }
        });

        it("401 when the admin credential is missing or wrong on every /v1/frontend method", async () => {
          const token = await createToken(newAccount());
          for (const headers of [{}, bearer("wrong-admin-token-0123456789"), bearer(token), { authorization: `Basic ${Buffer.from(`admin:${testAdminToken}`).toString("base64")}` }]) {
            const calls = [
              rest(server.url, "POST", "/v1/frontend/auth", { json: { account_id: "15", description: "d" }, headers }),
              rest(server.url, "PUT", "/v1/frontend/auth", { json: { token_link: "550e8400-e29b-41d4-a716-446655440000", description: "d" }, headers }),
              rest(server.url, "GET", "/v1/frontend/auth/15", { headers }),
              rest(server.url, "DELETE", "/v1/frontend/auth/15", { json: { token_link: "550e8400-e29b-41d4-a716-446655440000" }, headers }),
            ];
            for (const res of await Promise.all(calls)) {
              assert.equal(res.status, 401, `${JSON.stringify(Object.keys(headers))}: ${res.text}`);
              assert.equal(res.body.code, "unauthenticated");
              assert.ok(!res.text.includes(testAdminToken));
            }
          }
          // And the API token is not an admin credential, nor the admin token an API token.
          assert.equal((await rest(server.url, "GET", "/v1/api/auth", { headers: admin })).status, 401);
        });
      });
    });

    describe("two instances on one store", () => {
      it("a revocation on one is seen by the other within TESSERA_API_TOKEN_CACHE_SECONDS (2)", async () => {
        const shared: Record<string, string> = kind === "mongo" ? { TESSERA_MONGODB_DATABASE: server.config.mongodbDatabase } : { TESSERA_DATA_DIR: server.config.dataDir };
        const other = await startTestServer({ store: kind, clock, env: shared });
        try {
          const accountId = newAccount();
          const token = await createToken(accountId, "two instances");
          const link = await linkOf(accountId, "two instances");
          const authOther = () => rest(other.url, "GET", "/v1/api/auth", { headers: bearer(token) });
          assert.equal((await authOther()).status, 200); // cached on the other instance now
          const del = await rest(server.url, "DELETE", `/v1/frontend/auth/${accountId}`, { json: { token_link: link }, headers: admin });
          assert.equal(del.status, 200, del.text);
          assert.equal((await rest(server.url, "GET", "/v1/api/auth", { headers: bearer(token) })).status, 401, "at once where revoked");
          clock.advance(1_000);
          assert.equal((await authOther()).status, 200, "inside the documented bound the other instance may still accept it");
          clock.advance(1_000);
          assertError(await authOther(), 401, "unauthenticated", "invalid API token");
        } finally {
          // close() removes only what startTestServer made for this instance (its own unused
          // temp directory or database name), not the shared store the env points it at.
          await other.close();
        }
      });
    });

    describe("a token with a broken checksum is refused without a store call", () => {
      it("over REST, gRPC and Connect", async () => {
        const good = await createToken(newAccount());
        const broken = good.slice(0, 10) + (good[10] === "a" ? "b" : "a") + good.slice(11);
        const lookups = spyOn(server.tessera.store.apiTokens, "findByHash");
        try {
          assertError(await rest(server.url, "GET", "/v1/api/auth", { headers: bearer(broken) }), 401, "unauthenticated", "invalid API token");
          const g = await grpcClient.call("Authenticate", {}, bearer(broken));
          assert.equal(g.error?.code, grpc.status.UNAUTHENTICATED);
          await assert.rejects(connectClient(ApiTokenService, server.url).authenticate({}, { headers: bearer(broken) }), (e: unknown) => {
            assert.ok(e instanceof ConnectError && e.code === Code.Unauthenticated);
            return true;
          });
          assert.equal(lookups.calls.length, 0);
          // The spy does see lookups: an intact but unknown token reaches the store by its hash.
          const unknown = generateApiTokenSecret();
          assert.equal((await rest(server.url, "GET", "/v1/api/auth", { headers: bearer(unknown) })).status, 401);
          assert.deepEqual(lookups.calls, [[hashSecret(unknown)]]);
        } finally {
          lookups.restore();
        }
      });
    });

    describe("over gRPC (@grpc/grpc-js)", () => {
      it("creates, authenticates, updates, lists and revokes", async () => {
        const accountId = newAccount();
        const created = await grpcClient.call("CreateToken", { accountId, description: "grpc token", createdBy: "grpc test" }, admin);
        assert.ifError(created.error);
        const token = (created.message as CreateTokenResponse).token;
        issued.push(token);
        assert.match(token, TOKEN_SHAPE);

        const authed = await grpcClient.call("Authenticate", {}, bearer(token));
        assert.ifError(authed.error);
        assert.equal((authed.message as AuthenticateResponse).accountId, accountId);
        const link = (authed.message as AuthenticateResponse).tokenLink;
        assert.match(link, UUID);

        const updated = await grpcClient.call("UpdateToken", { tokenLink: link, description: "renamed" }, admin);
        assert.ifError(updated.error);
        assert.equal((updated.message as UpdateTokenResponse).tokenLink, link);
        assert.equal((updated.message as UpdateTokenResponse).description, "renamed");

        const listed = await grpcClient.call("ListTokens", { accountId }, admin);
        assert.ifError(listed.error);
        assert.equal((listed.message as ListTokensResponse).tokens.length, 1);
        assert.equal((listed.message as ListTokensResponse).tokens[0].tokenLink, link);
        assert.equal((listed.message as ListTokensResponse).tokens[0].description, "renamed");
        assert.equal((listed.message as ListTokensResponse).tokens[0].createdBy, "grpc test");
        assert.equal((listed.message as ListTokensResponse).tokens[0].revoked, undefined);

        const revoked = await grpcClient.call("RevokeToken", { accountId, tokenLink: link }, admin);
        assert.ifError(revoked.error);
        assert.match((revoked.message as RevokeTokenResponse).revoked, /^\d{2} [A-Z][a-z]{2} \d{4} - \d{2}:\d{2}$/);

        const refused = await grpcClient.call("Authenticate", {}, bearer(token));
        assert.equal(refused.error?.code, grpc.status.UNAUTHENTICATED);
        assert.equal(refused.error?.details, "invalid API token");
      });

      // connect-node encodes grpc-message with encodeURIComponent and grpc-js decodes with
      // decodeURI; the server encodes it the gRPC spec's way (src/server/grpc-message.ts), so
      // grpc-js callers read ":" and "," verbatim.
      it("answers the documented errors with their codes and messages", async () => {
        const cases: Array<[Promise<{ error?: grpc.ServiceError }>, grpc.status, string]> = [
          [grpcClient.call("CreateToken", {}, admin), grpc.status.INVALID_ARGUMENT, "Missing fields: [account_id, description]"],
          [grpcClient.call("UpdateToken", { tokenLink: "550e8400-e29b-41d4-a716-446655440000", description: "x" }, admin), grpc.status.NOT_FOUND, "Could not update token description"],
          [grpcClient.call("RevokeToken", { accountId: "15", tokenLink: "550e8400-e29b-41d4-a716-446655440000" }, admin), grpc.status.NOT_FOUND, "Could not revoke token"],
          [grpcClient.call("RevokeToken", {}, admin), grpc.status.INVALID_ARGUMENT, "Missing fields: [account_id, token_link]"],
          [grpcClient.call("ListTokens", { accountId: "15", state: "bogus" }, admin), grpc.status.INVALID_ARGUMENT, 'state must be "active" or "revoked"'],
          [grpcClient.call("Authenticate", {}, bearer(generateApiTokenSecret())), grpc.status.UNAUTHENTICATED, "invalid API token"],
        ];
        for (const [call, code, message] of cases) {
          const { error } = await call;
          assert.equal(error?.code, code, message);
          assert.equal(error?.details, message);
        }
        for (const md of [{}, bearer("wrong-admin-token-0123456789")]) {
          const { error } = await grpcClient.call("ListTokens", { accountId: "15" }, md);
          assert.equal(error?.code, grpc.status.UNAUTHENTICATED);
        }
      });
    });

    describe("over Connect", () => {
      it("JSON uses the document's field names", async () => {
        const accountId = newAccount();
        const res = await rest(server.url, "POST", "/tessera.apitoken.v1.ApiTokenService/CreateToken", {
          json: { account_id: accountId, description: "connect json", created_by: "someone" },
          headers: admin,
        });
        assert.equal(res.status, 200, res.text);
        issued.push(res.body.token);
        const auth = await rest(server.url, "POST", "/tessera.apitoken.v1.ApiTokenService/Authenticate", { json: {}, headers: bearer(res.body.token) });
        assert.equal(auth.status, 200, auth.text);
        assert.deepEqual(Object.keys(auth.body).sort(), ["account_id", "token_link"]);
        assert.equal(auth.body.account_id, accountId);
      });

      it("a Connect client creates, authenticates and revokes; errors carry the documented message", async () => {
        const client = connectClient(ApiTokenService, server.url, { binary: true });
        const accountId = newAccount();
        const { token } = await client.createToken({ accountId, description: "connect" }, { headers: admin });
        issued.push(token);
        const { tokenLink } = await client.authenticate({}, { headers: bearer(token) });
        await client.revokeToken({ accountId, tokenLink }, { headers: admin });
        await assert.rejects(client.authenticate({}, { headers: bearer(token) }), (e: unknown) => {
          assert.ok(e instanceof ConnectError);
          assert.equal(e.code, Code.Unauthenticated);
          assert.equal(e.rawMessage, "invalid API token");
          return true;
        });
        await assert.rejects(client.createToken({ description: "no account" }, { headers: admin }), (e: unknown) => {
          assert.ok(e instanceof ConnectError);
          assert.equal(e.code, Code.InvalidArgument);
          assert.equal(e.rawMessage, "Missing fields: [account_id]");
          return true;
        });
      });
    });

    describe("secrets", () => {
      it("are never in a list response", async () => {
        const accountId = newAccount();
        const token = await createToken(accountId, "listed");
        for (const q of ["", "?state=revoked"]) {
          const res = await listTokens(accountId, q);
          assert.ok(!res.text.includes(token), "secret listed");
          assert.ok(!res.text.includes(token.slice(4, 36)), "random part listed");
          assert.ok(!res.text.includes(hashSecret(token)), "hash listed");
        }
        const g = await grpcClient.call("ListTokens", { accountId }, admin);
        assert.ok(!JSON.stringify(g.message).includes(token.slice(4, 36)));
      });

      it("are never in a log line (checked last, over every secret this suite issued)", async () => {
        assert.ok(issued.length >= 8, `only ${issued.length} secrets issued`);
        assert.ok(server.logs.length > 20, "the server logged");
        assert.ok(server.logs.some((l) => l.includes("api token created")), "creation is logged (without the secret)");
        for (const line of server.logs) {
          assert.ok(!line.includes(testAdminToken), `admin token logged: ${line}`);
          for (const secret of issued) {
            assert.ok(!line.includes(secret.slice(4, 36)), `secret logged: ${line}`);
            assert.ok(!line.includes(hashSecret(secret)), `secret hash logged: ${line}`);
          }
        }
      });
    });
  });
});
