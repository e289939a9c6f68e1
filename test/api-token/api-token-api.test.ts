// Seed 001 (ApiTokenService) through real clients — gRPC, Connect and REST — on each store: every
// documented path with the document's field names, dates and error messages, the checksum gate,
// the revocation bound across instances, and secrets kept out of answers and logs.
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { Housekeeping } from "../../src/core/housekeeping.js";
import { createLogger } from "../../src/logger.js";
import { generateApiTokenSecret } from "../../src/core/api-token-secret.js";
import { hashSecret, randomId } from "../../src/core/secrets.js";
import { expectCode, expectOk, protocols, rpcProtocols } from "../support/api.js";
import { basic, bearer, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, testAdminToken, type TestServer } from "../support/server.js";
import { spyOn } from "../support/spy.js";
import { tesseraDetails } from "../support/error-details.js";
import { admin, UUID } from "../support/users.js";
import { auditApi } from "../audit/api.js";
import { apiTokenApi, type ApiTokenApi, type Creds } from "./api.js";

const TOKEN_SHAPE = /^tsr_[0-9A-Za-z]{38}$/;
/** 10 Oct 2015 12:12:05 UTC: the document's example date. */
const exampleTime = Date.UTC(2015, 9, 10, 12, 12, 5);
const unknownLink = "550e8400-e29b-41d4-a716-446655440000";
const dotAccountMessage = 'account_id must not be "." or "..": URLs drop such path segments, so its tokens could not be listed or revoked over REST';

for (const store of storesUnderTest()) {
  describe(`API tokens (seed 001) on ${store}`, function () {
    const clock = new ManualClock(exampleTime);
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store, clock, env: { TESSERA_LOG_LEVEL: "debug" } });
    });
    after(async () => {
      await server?.close();
    });
    // Every test starts at the document's example time: the dates it asserts are its own.
    beforeEach(() => clock.set(exampleTime));

    for (const protocol of protocols) {
      describe(`over ${protocol}`, () => {
        let api: ApiTokenApi;
        before(() => {
          api = apiTokenApi(protocol, server.url);
        });
        after(() => api.close());

        let accounts = 0;
        const newAccount = () => `GATEWAY_ACCOUNT_${protocol}_${++accounts}`;

        async function createToken(accountId: string, description = "Token description", createdBy?: string): Promise<string> {
          return expectOk(await api.createToken({ account_id: accountId, description, created_by: createdBy }, admin)).token;
        }

        async function linkOf(accountId: string, description: string): Promise<string> {
          const { tokens } = expectOk(await api.listTokens(accountId, undefined, admin));
          const token = tokens.find((t) => t.description === description);
          assert.ok(token, `no token "${description}"`);
          return token.token_link;
        }

        it("POST /v1/frontend/auth answers {token}", async () => {
          const res = await api.createToken({ account_id: newAccount(), description: "Token description" }, admin);
          const body = expectOk(res);
          assert.deepEqual(Object.keys(body), ["token"]);
          assert.match(body.token, TOKEN_SHAPE);
          if (protocol === "rest") assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
        });

        it("GET /v1/api/auth answers {account_id, token_link}", async () => {
          const accountId = newAccount();
          const token = await createToken(accountId);
          const body = expectOk(await api.authenticate(bearer(token)));
          assert.deepEqual(body, { account_id: accountId, token_link: await linkOf(accountId, "Token description") });
          assert.match(body.token_link, UUID);
        });

        it("PUT /v1/frontend/auth answers {token_link, description} and the list shows the new description", async () => {
          const accountId = newAccount();
          await createToken(accountId, "old");
          const link = await linkOf(accountId, "old");
          assert.deepEqual(expectOk(await api.updateToken({ token_link: link, description: "New token description" }, admin)), {
            token_link: link,
            description: "New token description",
          });
          assert.equal(await linkOf(accountId, "New token description"), link);
        });

        it("GET /v1/frontend/auth/{account_id} lists active tokens, newest first, with the documented fields", async () => {
          const accountId = newAccount();
          await createToken(accountId, "token 1 description", "ops@example.com");
          clock.advance(60_000);
          const second = await createToken(accountId, "token 2 description");
          await createToken(newAccount(), "another account's token");
          // Authenticate with the second: last_used appears (written asynchronously).
          expectOk(await api.authenticate(bearer(second)));

          let listed = await api.listTokens(accountId, undefined, admin);
          for (let i = 0; i < 100 && !listed.data?.tokens[0]?.last_used; i++) {
            await new Promise((r) => setTimeout(r, 10));
            listed = await api.listTokens(accountId, undefined, admin);
          }
          const { tokens } = expectOk(listed);
          assert.equal(tokens.length, 2);
          const [newest, oldest] = tokens;
          assert.deepEqual(Object.keys(newest).sort(), ["description", "issued_date", "last_used", "token_link"]);
          assert.equal(newest.description, "token 2 description");
          assert.equal(newest.issued_date, "10 Oct 2015 - 12:13");
          assert.equal(newest.last_used, "10 Oct 2015 - 12:13");
          assert.deepEqual(Object.keys(oldest).sort(), ["created_by", "description", "issued_date", "token_link"]);
          assert.equal(oldest.description, "token 1 description");
          assert.equal(oldest.issued_date, "10 Oct 2015 - 12:12");
          assert.equal(oldest.created_by, "ops@example.com");
          assert.match(oldest.token_link, UUID);

          // The same list with state=active, in any letter case.
          for (const state of ["active", "ACTIVE", "Active"]) {
            assert.deepEqual(expectOk(await api.listTokens(accountId, state, admin)), { tokens }, state);
          }
        });

        it("every date is DD Mon YYYY - HH:mm with a two-digit day, hour and minute (05 Mar 2016 - 03:04)", async () => {
          clock.set(Date.UTC(2016, 2, 5, 3, 4, 59));
          const accountId = newAccount();
          await createToken(accountId, "early");
          const link = await linkOf(accountId, "early");
          assert.deepEqual(expectOk(await api.revokeToken(accountId, { token_link: link }, admin)), { revoked: "05 Mar 2016 - 03:04" });
          assert.deepEqual(expectOk(await api.listTokens(accountId, "revoked", admin)), {
            tokens: [{ token_link: link, description: "early", issued_date: "05 Mar 2016 - 03:04", revoked: "05 Mar 2016 - 03:04" }],
          });
        });

        it("an empty state lists the active tokens, as a missing one does; REVOKED and Revoked the revoked ones", async () => {
          const accountId = newAccount();
          await createToken(accountId, "active one");
          await createToken(accountId, "revoked one");
          expectOk(await api.revokeToken(accountId, { token_link: await linkOf(accountId, "revoked one") }, admin));
          const descriptions = async (state: string | undefined) => expectOk(await api.listTokens(accountId, state, admin)).tokens.map((t) => t.description);
          assert.deepEqual(await descriptions(undefined), ["active one"]);
          assert.deepEqual(await descriptions(""), ["active one"]);
          for (const state of ["revoked", "REVOKED", "Revoked"]) assert.deepEqual(await descriptions(state), ["revoked one"], state);
        });

        it("white space around state is ignored: \" active\" the active tokens, \"REVOKED \" and \"\\trevoked\\n\" the revoked ones; \"re voked\" is 400", async () => {
          const accountId = newAccount();
          await createToken(accountId, "active one");
          await createToken(accountId, "revoked one");
          expectOk(await api.revokeToken(accountId, { token_link: await linkOf(accountId, "revoked one") }, admin));
          const descriptions = async (state: string) => expectOk(await api.listTokens(accountId, state, admin)).tokens.map((t) => t.description);
          assert.deepEqual(await descriptions(" active"), ["active one"]);
          assert.deepEqual(await descriptions("  "), ["active one"]);
          for (const state of ["REVOKED ", "\trevoked\n"]) assert.deepEqual(await descriptions(state), ["revoked one"], JSON.stringify(state));
          expectCode(await api.listTokens(accountId, "re voked", admin), "invalid_argument", 'state must be "active" or "revoked"', "INVALID_FIELD");
        });

        it("PUT /v1/frontend/auth with the link in upper case answers the token's own link (lower case)", async () => {
          const accountId = newAccount();
          await createToken(accountId, "old");
          const link = await linkOf(accountId, "old");
          assert.deepEqual(expectOk(await api.updateToken({ token_link: link.toUpperCase(), description: "New token description" }, admin)), {
            token_link: link,
            description: "New token description",
          });
        });

        it("DELETE /v1/frontend/auth/{account_id} answers {revoked}; the token is refused at once and listed with state=revoked", async () => {
          const accountId = newAccount();
          const token = await createToken(accountId, "to revoke");
          const link = await linkOf(accountId, "to revoke");
          expectOk(await api.authenticate(bearer(token)));

          clock.set(Date.UTC(2015, 9, 10, 12, 12, 40));
          assert.deepEqual(expectOk(await api.revokeToken(accountId, { token_link: link }, admin)), { revoked: "10 Oct 2015 - 12:12" });

          // Refused at once, although this instance had the lookup cached.
          expectCode(await api.authenticate(bearer(token)), "unauthenticated", "invalid API token", "INVALID_TOKEN");

          assert.deepEqual(expectOk(await api.listTokens(accountId, undefined, admin)), { tokens: [] });
          const { tokens } = expectOk(await api.listTokens(accountId, "REVOKED", admin));
          assert.equal(tokens.length, 1);
          assert.equal(tokens[0].token_link, link);
          assert.equal(tokens[0].description, "to revoke");
          assert.equal(tokens[0].revoked, "10 Oct 2015 - 12:12");
        });

        it("TESSERA_API_TOKEN_RETENTION_DAYS (30) after its revocation, housekeeping deletes a revoked token: unknown everywhere from then on (not listed, 404 on revoke and rename, 401 INVALID_TOKEN); one revoked less long ago is still listed; an active one is never deleted", async () => {
          const accountId = newAccount();
          const day = 86_400_000;
          const start = clock.now().getTime();
          const live = await createToken(accountId, "live"); // never revoked
          clock.advance(1_000);
          const longAgo = await createToken(accountId, "revoked long ago");
          const longAgoLink = await linkOf(accountId, "revoked long ago");
          expectOk(await api.revokeToken(accountId, { token_link: longAgoLink }, admin)); // at start + 1 s
          clock.advance(1_000);
          await createToken(accountId, "revoked lately");
          const latelyLink = await linkOf(accountId, "revoked lately");
          expectOk(await api.revokeToken(accountId, { token_link: latelyLink }, admin)); // at start + 2 s
          const revokedLinks = async () => expectOk(await api.listTokens(accountId, "revoked", admin)).tokens.map((t) => t.token_link);
          const housekeeping = new Housekeeping({ store: server.tessera.store, clock, logger: createLogger("silent"), apiTokenRetentionDays: server.config.apiTokenRetentionDays });

          // 30 days after the first revocation: not past it yet.
          clock.set(start + 1_000 + 30 * day);
          await housekeeping.runOnce();
          assert.deepEqual(await revokedLinks(), [latelyLink, longAgoLink], "both revoked tokens kept for the retention");
          // Past it for the first, not for the second.
          clock.advance(1);
          await housekeeping.runOnce();
          assert.deepEqual(await revokedLinks(), [latelyLink], "the token revoked more than 30 days ago is deleted");
          expectCode(await api.authenticate(bearer(longAgo)), "unauthenticated", "invalid API token", "INVALID_TOKEN");
          expectCode(await api.revokeToken(accountId, { token_link: longAgoLink }, admin), "not_found", "Could not revoke token", "TOKEN_NOT_FOUND");
          expectCode(await api.updateToken({ token_link: longAgoLink, description: "renamed" }, admin), "not_found", "Could not update token description", "TOKEN_NOT_FOUND");

          // An active token is kept however old: ten years on, it still authenticates and is listed.
          clock.set(start + 3650 * day);
          await housekeeping.runOnce();
          assert.deepEqual(await revokedLinks(), []);
          assert.deepEqual(expectOk(await api.listTokens(accountId, undefined, admin)).tokens.map((t) => t.description), ["live"]);
          expectOk(await api.authenticate(bearer(live)));
          assert.equal(server.config.apiTokenRetentionDays, 30, "the default");
        });

        // Over gRPC the message reaches a grpc-js caller with its ":" and "," verbatim: the server
        // encodes grpc-message the gRPC spec's way (connect-node would use encodeURIComponent).
        it("400 Missing fields: lists every missing field (and names each in a google.rpc.BadRequest)", async () => {
          const post = (body: { account_id?: string; description?: string }) => api.createToken(body, admin);
          const none = await post({});
          expectCode(none, "invalid_argument", "Missing fields: [account_id, description]", "MISSING_FIELDS");
          assert.deepEqual(none.details?.fieldViolations, [
            { field: "account_id", description: "account_id is required" },
            { field: "description", description: "description is required" },
          ]);
          expectCode(await post({ description: "Token description" }), "invalid_argument", "Missing fields: [account_id]", "MISSING_FIELDS");
          expectCode(await post({ account_id: "GATEWAY_ACCOUNT_1" }), "invalid_argument", "Missing fields: [description]", "MISSING_FIELDS");
          expectCode(await post({ account_id: " ", description: "" }), "invalid_argument", "Missing fields: [account_id, description]", "MISSING_FIELDS");
          expectCode(await api.updateToken({}, admin), "invalid_argument", "Missing fields: [token_link, description]", "MISSING_FIELDS");
          expectCode(await api.updateToken({ token_link: unknownLink }, admin), "invalid_argument", "Missing fields: [description]", "MISSING_FIELDS");
          expectCode(await api.revokeToken("15", {}, admin), "invalid_argument", "Missing fields: [token_link]", "MISSING_FIELDS");
        });

        it("404 Could not update token description: unknown, malformed or revoked link", async () => {
          const put = (token_link: string) => api.updateToken({ token_link, description: "New token description" }, admin);
          expectCode(await put(unknownLink), "not_found", "Could not update token description", "TOKEN_NOT_FOUND");
          expectCode(await put("not-a-link"), "not_found", "Could not update token description", "TOKEN_NOT_FOUND");
          const accountId = newAccount();
          await createToken(accountId, "revoked soon");
          const link = await linkOf(accountId, "revoked soon");
          expectOk(await api.revokeToken(accountId, { token_link: link }, admin));
          expectCode(await put(link), "not_found", "Could not update token description", "TOKEN_NOT_FOUND");
        });

        it("404 Could not revoke token: unknown link, another account's link, already revoked", async () => {
          const accountId = newAccount();
          await createToken(accountId, "mine");
          const link = await linkOf(accountId, "mine");
          expectCode(await api.revokeToken(accountId, { token_link: unknownLink }, admin), "not_found", "Could not revoke token", "TOKEN_NOT_FOUND");
          expectCode(await api.revokeToken(newAccount(), { token_link: link }, admin), "not_found", "Could not revoke token", "TOKEN_NOT_FOUND");
          expectOk(await api.revokeToken(accountId, { token_link: link }, admin));
          expectCode(await api.revokeToken(accountId, { token_link: link }, admin), "not_found", "Could not revoke token", "TOKEN_NOT_FOUND");
        });

        // fetch, curl and Go's net/url remove a path's "." and ".." segments, percent-encoded ones
        // too: GET and DELETE /v1/frontend/auth/{account_id} could never reach such an account.
        // Any other id is reachable, percent-encoded as one segment ("%2F" is decoded in it).
        it('400 INVALID_FIELD naming account_id when it is "." or ".."; other ids of dots are created, listed and revoked', async () => {
          for (const account_id of [".", ".."]) {
            const refused = await api.createToken({ account_id, description: "Token description" }, admin);
            expectCode(refused, "invalid_argument", dotAccountMessage, "INVALID_FIELD");
            assert.deepEqual(refused.details, tesseraDetails("INVALID_FIELD", { account_id: dotAccountMessage }));
          }
          for (const accountId of ["...", ". ", " ..", "./..", "%2e", ".a"]) {
            const description = `dots over ${protocol}`;
            await createToken(accountId, description);
            const link = await linkOf(accountId, description);
            expectOk(await api.revokeToken(accountId, { token_link: link }, admin));
          }
        });

        it("400 on an unknown state", async () => {
          expectCode(await api.listTokens("15", "all", admin), "invalid_argument", 'state must be "active" or "revoked"', "INVALID_FIELD");
        });

        it("401 on a missing, unknown, malformed, wrongly checksummed or revoked token", async () => {
          expectCode(await api.authenticate({}), "unauthenticated", "missing bearer API token", "MISSING_CREDENTIAL");
          const accountId = newAccount();
          const good = await createToken(accountId, "good");
          const brokenChecksum = good.slice(0, -1) + (good.endsWith("0") ? "1" : "0");
          const revoked = await createToken(accountId, "revoked");
          expectOk(await api.revokeToken(accountId, { token_link: await linkOf(accountId, "revoked") }, admin));
          for (const token of [generateApiTokenSecret(), "tsr_short", "not-a-token", brokenChecksum, revoked]) {
            const res = await api.authenticate(bearer(token));
            expectCode(res, "unauthenticated", "invalid API token", "INVALID_TOKEN");
            assert.equal(res.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
          }
        });

        it("401 on every /v1/frontend method without the admin credential; an API token is no admin credential, nor the reverse", async () => {
          const token = await createToken(newAccount());
          for (const [headers, message, reason] of [
            [{}, "admin credential required", "MISSING_CREDENTIAL"],
            [bearer("wrong-admin-token-0123456789"), "admin credential required", "INVALID_TOKEN"],
            [bearer(token), "admin credential required", "INVALID_TOKEN"],
            [basic("admin", testAdminToken), 'the Authorization header must be "Bearer <token>"', "UNSUPPORTED_CREDENTIAL"],
          ] as const) {
            for (const res of [
              await api.createToken({ account_id: "15", description: "d" }, headers),
              await api.updateToken({ token_link: unknownLink, description: "d" }, headers),
              await api.listTokens("15", undefined, headers),
              await api.revokeToken("15", { token_link: unknownLink }, headers),
            ]) {
              expectCode(res, "unauthenticated", message, reason);
              assert.ok(!(res.message ?? "").includes(testAdminToken));
            }
          }
          expectCode(await api.authenticate(admin), "unauthenticated", "invalid API token", "INVALID_TOKEN");
        });

        it("a token with a broken checksum is refused without a store call", async () => {
          const good = await createToken(newAccount());
          const broken = good.slice(0, 10) + (good[10] === "a" ? "b" : "a") + good.slice(11);
          const lookups = spyOn(server.tessera.store.apiTokens, "findByHash");
          try {
            expectCode(await api.authenticate(bearer(broken)), "unauthenticated", "invalid API token", "INVALID_TOKEN");
            assert.equal(lookups.calls.length, 0);
            // The spy does see lookups: an intact but unknown token reaches the store by its hash.
            const unknown = generateApiTokenSecret();
            expectCode(await api.authenticate(bearer(unknown)), "unauthenticated", "invalid API token", "INVALID_TOKEN");
            assert.deepEqual(lookups.calls, [[hashSecret(unknown)]]);
          } finally {
            lookups.restore();
          }
        });

        it("a revocation on one instance is seen by another on the same store within TESSERA_API_TOKEN_CACHE_SECONDS (2)", async () => {
          const shared: Record<string, string> = store === "mongo" ? { TESSERA_MONGODB_DATABASE: server.config.mongodbDatabase } : { TESSERA_DATA_DIR: server.config.dataDir };
          const other = await startTestServer({ store, clock, env: shared });
          const onOther = apiTokenApi(protocol, other.url);
          try {
            const accountId = newAccount();
            const token = await createToken(accountId, "two instances");
            const link = await linkOf(accountId, "two instances");
            expectOk(await onOther.authenticate(bearer(token))); // cached on the other instance now
            expectOk(await api.revokeToken(accountId, { token_link: link }, admin));
            expectCode(await api.authenticate(bearer(token)), "unauthenticated", "invalid API token", "INVALID_TOKEN"); // at once where revoked
            clock.advance(1_000);
            // Inside the documented bound the other instance still answers from its cache.
            expectOk(await onOther.authenticate(bearer(token)));
            clock.advance(1_000);
            expectCode(await onOther.authenticate(bearer(token)), "unauthenticated", "invalid API token", "INVALID_TOKEN");
          } finally {
            onOther.close();
            // close() removes only what startTestServer made for this instance (its own unused
            // temp directory or database name), not the shared store the env points it at.
            await other.close();
          }
        });

        it("secrets are never in an answer or a log line; creation is logged without them", async () => {
          const accountId = newAccount();
          const token = await createToken(accountId, "listed");
          const link = await linkOf(accountId, "listed");
          expectOk(await api.authenticate(bearer(token)));
          expectOk(await api.updateToken({ token_link: link, description: "renamed" }, admin));
          const answers = [
            expectOk(await api.listTokens(accountId, undefined, admin)),
            expectOk(await api.revokeToken(accountId, { token_link: link }, admin)),
            expectOk(await api.listTokens(accountId, "revoked", admin)),
          ];
          expectCode(await api.authenticate(bearer(token)), "unauthenticated", "invalid API token", "INVALID_TOKEN");
          for (const answer of answers) {
            const text = JSON.stringify(answer);
            assert.ok(!text.includes(token.slice(4, 36)), `random part in ${text}`);
            assert.ok(!text.includes(hashSecret(token)), `hash in ${text}`);
          }
          assert.ok(server.logs.some((l) => l.includes("api token created")), "creation is logged (without the secret)");
          for (const line of server.logs) {
            assert.ok(!line.includes(testAdminToken), `admin token logged: ${line}`);
            assert.ok(!line.includes(token.slice(4, 36)), `secret logged: ${line}`);
            assert.ok(!line.includes(hashSecret(token)), `secret hash logged: ${line}`);
          }
        });

        // The account id is the one text of a caller's that these log lines carry. JSON leaves
        // U+2028, U+2029 and NEL (U+0085) as they are, and a reader breaking lines at them
        // (Python's splitlines()) would read a line the id wrote, an audit event say.
        it("an account_id holding line or paragraph separators, NEL or bidirectional formatting characters is logged with each replaced by U+FFFD, as an audit event keeps text; the answers keep it as given", async () => {
          const forged = '{"msg":"audit","type":"audit","event":"login","outcome":"success"}';
          const accountId = `${newAccount()}\u2028${forged}\u2029\u0085\u202e`;
          const token = await createToken(accountId, "separators");
          const link = await linkOf(accountId, "separators");
          assert.equal(expectOk(await api.authenticate(bearer(token))).account_id, accountId);
          expectOk(await api.revokeToken(accountId, { token_link: link }, admin));
          const logged = (msg: string) => server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg && l.tokenLink === link);
          const shown = `${accountId.slice(0, -forged.length - 4)}\ufffd${forged}\ufffd\ufffd\ufffd`;
          assert.deepEqual(logged("api token created").map((l) => l.accountId), [shown]);
          assert.deepEqual(logged("api token revoked").map((l) => l.accountId), [shown]);
          for (const line of server.logs) assert.ok(!/[\u0085\u2028\u2029\u202e]/.test(line), `a line breaks or turns at a character the account id sent: ${JSON.stringify(line)}`);
        });

        // Revoking a leaked token by pasting the token itself is an easy mistake: the refusal is
        // audited, but a token_link that is no UUID names no token and is recorded [redacted].
        it("a secret sent as token_link is refused 404 and audited without it ([redacted]); a UUID link is named, lower-cased", async () => {
          const accountId = newAccount();
          const token = await createToken(accountId, "pasted");
          const link = await linkOf(accountId, "pasted");
          const audit = auditApi(protocol, server.url);
          try {
            const eventOf = async (type: string, requestId: string) => {
              const { events } = expectOk(await audit.listAuditEvents({ type, page_size: 1000 }, admin));
              const found = events.filter((e) => e.request_id === requestId);
              assert.equal(found.length, 1, JSON.stringify(found));
              return found[0]!;
            };
            const calls = [
              ["api_token.revoked", (headers: Creds) => api.revokeToken(accountId, { token_link: token }, headers), "Could not revoke token"],
              ["api_token.described", (headers: Creds) => api.updateToken({ token_link: token, description: "d" }, headers), "Could not update token description"],
            ] as const;
            for (const [type, call, message] of calls) {
              const requestId = `pasted-${protocol}-${type}`;
              expectCode(await call({ ...admin, "x-request-id": requestId }), "not_found", message, "TOKEN_NOT_FOUND");
              const { subject, outcome, reason } = await eventOf(type, requestId);
              assert.equal(subject, "[redacted]", `${type} subject`);
              assert.deepEqual([outcome, reason], ["failure", "TOKEN_NOT_FOUND"]);
            }
            for (const line of server.logs) assert.ok(!line.includes(token.slice(4, 36)), `secret logged: ${line}`);

            const requestId = `upper-${protocol}`;
            expectOk(await api.revokeToken(accountId, { token_link: link.toUpperCase() }, { ...admin, "x-request-id": requestId }));
            assert.equal((await eventOf("api_token.revoked", requestId)).subject, link);
          } finally {
            audit.close();
          }
        });
      });
    }

    for (const protocol of rpcProtocols) {
      describe(`over ${protocol} only (REST puts account_id in the path, where it cannot be empty, "." or "..")`, () => {
        let api: ApiTokenApi;
        before(() => {
          api = apiTokenApi(protocol, server.url);
        });
        after(() => api.close());

        it("an empty account_id is a missing field of RevokeToken and ListTokens", async () => {
          expectCode(await api.revokeToken("", {}, admin), "invalid_argument", "Missing fields: [account_id, token_link]", "MISSING_FIELDS");
          expectCode(await api.revokeToken("", { token_link: unknownLink }, admin), "invalid_argument", "Missing fields: [account_id]", "MISSING_FIELDS");
          expectCode(await api.listTokens("", undefined, admin), "invalid_argument", "Missing fields: [account_id]", "MISSING_FIELDS");
        });

        // Tokens stored for "." or ".." before creation refused them: no REST path reaches them,
        // the RPCs with the id in the body do.
        it('a token stored for account "." or ".." is listed and revoked with the id in the request', async () => {
          for (const accountId of [".", ".."]) {
            const secret = generateApiTokenSecret();
            const description = `stored before, ${protocol}`;
            const stored = await server.tessera.store.apiTokens.create({ link: randomId(), hash: hashSecret(secret), accountId, description, issuedAt: clock.now() }, 1000);
            assert.ok(stored);
            assert.deepEqual(expectOk(await api.authenticate(bearer(secret))), { account_id: accountId, token_link: stored.link });
            assert.deepEqual(expectOk(await api.listTokens(accountId, undefined, admin)).tokens.filter((t) => t.description === description).map((t) => t.token_link), [stored.link]);
            expectOk(await api.revokeToken(accountId, { token_link: stored.link }, admin));
            expectCode(await api.authenticate(bearer(secret)), "unauthenticated", "invalid API token", "INVALID_TOKEN");
            assert.deepEqual(expectOk(await api.listTokens(accountId, "revoked", admin)).tokens.filter((t) => t.description === description).map((t) => t.token_link), [stored.link]);
          }
        });
      });
    }

    describe("REST only: an account id of \".\" or \"..\" in the path", () => {
      it("fetch removes the segment, percent-encoded too: the request reaches another path", async () => {
        const reached = [
          ["/v1/frontend/auth/%2E", 405, "GET is not allowed on /v1/frontend/auth/"],
          ["/v1/frontend/auth/%2e%2E", 404, "no route for GET /v1/frontend/"],
        ] as const;
        for (const [path, status, message] of reached) {
          const res = await rest(server.url, "GET", path, { headers: admin });
          assert.equal(res.status, status, res.text);
          assert.equal(res.body.message, message);
        }
      });
    });

    describe("REST only: where the answer differs from the document's example (documented)", () => {
      it("serves GET /v1/api/auth (the heading's path), not the request example's GET /v1/auth (404)", async () => {
        const created = await rest(server.url, "POST", "/v1/frontend/auth", { json: { account_id: "GATEWAY_ACCOUNT_1", description: "Token description" }, headers: admin });
        assert.equal(created.status, 200, created.text);
        const headers = { ...bearer(created.body.token), accept: "application/json" };
        const served = await rest(server.url, "GET", "/v1/api/auth", { headers });
        assert.equal(served.status, 200, served.text);
        assert.equal(served.body.account_id, "GATEWAY_ACCOUNT_1");
        const example = await rest(server.url, "GET", "/v1/auth", { headers });
        assert.equal(example.status, 404, example.text);
        assert.equal(example.body.code, "not_found");
        assert.equal(example.body.message, "no route for GET /v1/auth");
      });
    });

    describe("Connect only: the JSON on the wire", () => {
      it("uses the document's field names", async () => {
        const created = await rest(server.url, "POST", "/tessera.apitoken.v1.ApiTokenService/CreateToken", {
          json: { account_id: "GATEWAY_ACCOUNT_connect_json", description: "connect json", created_by: "someone" },
          headers: admin,
        });
        assert.equal(created.status, 200, created.text);
        assert.deepEqual(Object.keys(created.body), ["token"]);
        const listed = await rest(server.url, "POST", "/tessera.apitoken.v1.ApiTokenService/ListTokens", { json: { account_id: "GATEWAY_ACCOUNT_connect_json" }, headers: admin });
        assert.equal(listed.status, 200, listed.text);
        assert.deepEqual(Object.keys(listed.body.tokens[0]).sort(), ["created_by", "description", "issued_date", "token_link"]);
        const auth = await rest(server.url, "POST", "/tessera.apitoken.v1.ApiTokenService/Authenticate", { json: {}, headers: bearer(created.body.token) });
        assert.equal(auth.status, 200, auth.text);
        assert.deepEqual(Object.keys(auth.body).sort(), ["account_id", "token_link"]);
        assert.equal(auth.body.account_id, "GATEWAY_ACCOUNT_connect_json");
      });
    });
  });
}
