// Seed 000 (SessionService, UserService) through real clients — gRPC, Connect and REST — on
// each store: every documented path with its documented fields, and every error row of
// API.md's seed 000 table.
import assert from "node:assert/strict";
import http2 from "node:http2";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { ManualClock } from "../../src/core/clock.js";
import { otherClientId, startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { expectCode, expectFieldRefused, expectOk, expectWeakPassword, protocols, type Outcome } from "../support/api.js";
import { password as goodPassword, uniqueEmail } from "../support/users.js";
import { assertBadRequest, h2request, raw } from "../hostile/support.js";
import { sessionApi, type SessionApi, type TokenPair } from "./api.js";

const client = { clientId: testClientId };
/** The refusal of an x-koms-clientid that names more than one client. */
const notMostRecent = "not the most recent access token of the session";
const clientIdList = "the x-koms-clientid header names more than one client (it was sent more than once, or holds a comma list): it must name one";

for (const store of storesUnderTest()) {
  describe(`Session API (seed 000) on ${store}`, function () {
    // The clock stands still: every access token has its whole lifetime left.
    const clock = new ManualClock(Date.now());
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store, clock });
    });
    after(async () => {
      await server?.close();
    });

    for (const protocol of protocols) {
      describe(`over ${protocol}`, () => {
        let api: SessionApi;
        before(() => {
          api = sessionApi(protocol, server.url);
        });
        after(() => api.close());

        async function signUp(): Promise<string> {
          const email = uniqueEmail();
          const res = await api.createUser({ email, password: goodPassword }, client);
          expectOk(res, 201);
          return email;
        }

        async function login(email: string, clientId = testClientId): Promise<TokenPair> {
          const res = await api.createSession({ account_type: "traditional", email, password: goodPassword }, { clientId });
          expectOk(res);
          return res.data!;
        }

        it("POST /user creates a user: 201 {message}", async () => {
          const res = await api.createUser({ email: uniqueEmail(), password: goodPassword }, client);
          assert.deepEqual(expectOk(res, 201), { message: "User created" });
        });

        it("POST /user: duplicate email (any case, surrounding spaces) 409", async () => {
          const email = await signUp();
          expectCode(await api.createUser({ email: `  ${email.toUpperCase()} `, password: goodPassword }, client), "already_exists", "a user with this email already exists", "USER_EXISTS");
        });

        it("POST /user: invalid email 400, weak passwords 400 naming the rule", async () => {
          expectFieldRefused(await api.createUser({ email: "not-an-email", password: goodPassword }, client), "email", "email is not a valid email address");
          expectFieldRefused(await api.createUser({ email: "", password: goodPassword }, client), "email", "email is required", "MISSING_FIELDS");
          expectWeakPassword(await api.createUser({ email: uniqueEmail(), password: "short" }, client), "password", "password too short: at least 8 characters required");
          expectFieldRefused(await api.createUser({ email: uniqueEmail(), password: "x".repeat(257) }, client), "password", "password too long: at most 256 characters allowed");
          expectWeakPassword(await api.createUser({ email: uniqueEmail(), password: "Password1" }, client), "password", "password too common: it is on a list of frequently used passwords");
          expectFieldRefused(await api.createUser({ email: uniqueEmail(), password: "" }, client), "password", "password is required", "MISSING_FIELDS");
        });

        /** Each method of the API called with `creds` (a client id or none), its answer checked by `refused`. */
        async function everyMethodRefused(creds: { clientId?: string }, email: string, pair: TokenPair, refused: (outcome: Outcome<unknown>) => void): Promise<void> {
          refused(await api.createUser({ email: uniqueEmail(), password: goodPassword }, creds));
          refused(await api.createSession({ account_type: "traditional", email, password: goodPassword }, creds));
          refused(await api.getSession({ ...creds, access: pair.access_token }));
          refused(await api.getUser({ ...creds, access: pair.access_token }));
          refused(await api.refreshSession({ refresh_token: pair.refresh_token }, { ...creds, access: pair.access_token }));
          refused(await api.deleteSession({ ...creds, access: pair.access_token }));
        }

        it("every method: missing or unknown x-koms-clientid 401", async () => {
          const email = await signUp();
          const pair = await login(email);
          for (const [creds, message, reason] of [
            [{}, "missing x-koms-clientid header", "MISSING_CLIENT_ID"],
            [{ clientId: "nope" }, "unknown x-koms-clientid", "UNKNOWN_CLIENT_ID"],
          ] as const) {
            await everyMethodRefused(creds, email, pair, (outcome) => expectCode(outcome, "unauthenticated", message, reason));
          }
          // Nothing above touched the session.
          expectOk(await api.getSession({ ...client, access: pair.access_token }));
        });

        // A header that is no list is sent once (RFC 9110 5.3). Node joins two x-koms-clientid
        // lines with ", " (gRPC metadata, two HTTP/2 fields, alike), and no client id has a
        // comma: such a value names no one client, whichever of its ids is configured.
        it("every method: an x-koms-clientid naming two clients (a comma list, as two lines are joined) 400 MALFORMED_CREDENTIAL", async () => {
          const email = await signUp();
          const pair = await login(email);
          for (const clientId of [`${testClientId}, ${otherClientId}`, `${testClientId}, ${testClientId}`, `${testClientId},nope`]) {
            await everyMethodRefused({ clientId }, email, pair, (outcome) => expectCode(outcome, "invalid_argument", clientIdList, "MALFORMED_CREDENTIAL"));
          }
          // Nothing above touched the session.
          expectOk(await api.getSession({ ...client, access: pair.access_token }));
        });

        it("POST /session: {access_token, refresh_token, access_token_expires_in}; the JWT carries iss, sub, sid, jti, iat, exp, aud and nothing else (session.proto; no nbf)", async () => {
          const email = await signUp();
          const pair = await login(email);
          assert.equal(typeof pair.refresh_token, "string");
          assert.match(pair.refresh_token, /^[A-Za-z0-9_-]{43}$/, "32 random bytes, base64url");
          assert.equal(pair.access_token_expires_in, server.config.accessTokenTtlSeconds);
          const claims = decodeJwt(pair.access_token);
          assert.deepEqual(Object.keys(claims).sort(), ["aud", "exp", "iat", "iss", "jti", "sid", "sub"]);
          assert.equal(claims.aud, testClientId);
          assert.equal(claims.exp! - claims.iat!, server.config.accessTokenTtlSeconds);
          assert.equal(decodeProtectedHeader(pair.access_token).alg, "EdDSA");
          const user = await api.getUser({ ...client, access: pair.access_token });
          expectOk(user);
          assert.equal(user.data!.email, email);
          assert.equal(user.data!.id, claims.sub);
        });

        it("POST /session: account_type other than traditional 400", async () => {
          const email = await signUp();
          expectFieldRefused(await api.createSession({ account_type: "facebook", email, password: goodPassword }, client), "account_type", 'account_type must be "traditional"');
          expectFieldRefused(await api.createSession({ account_type: "", email, password: goodPassword }, client), "account_type", "account_type is required", "MISSING_FIELDS");
        });

        it("POST /session: wrong password and unknown email give the same 401", async () => {
          const email = await signUp();
          const wrong = await api.createSession({ account_type: "traditional", email, password: "wrong-password-123" }, client);
          const unknown = await api.createSession({ account_type: "traditional", email: uniqueEmail(), password: goodPassword }, client);
          expectCode(wrong, "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
          expectCode(unknown, "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
          assert.deepEqual(wrong.details, unknown.details);
        });

        it("POST /session: the email is matched case-insensitively", async () => {
          const email = await signUp();
          const res = await api.createSession({ account_type: "traditional", email: email.toUpperCase(), password: goodPassword }, client);
          expectOk(res);
        });

        it("GET /session: {access_token_expires_in}; 401 without, or with a bad, token", async () => {
          const pair = await login(await signUp());
          const res = await api.getSession({ ...client, access: pair.access_token });
          expectOk(res);
          assert.deepEqual(res.data, { access_token_expires_in: server.config.accessTokenTtlSeconds });
          expectCode(await api.getSession(client), "unauthenticated", "missing bearer access token", "MISSING_CREDENTIAL");
          expectCode(await api.getSession({ ...client, access: "garbage" }), "unauthenticated", "malformed token", "INVALID_TOKEN");
          const [h, p] = pair.access_token.split(".");
          expectCode(await api.getSession({ ...client, access: `${h}.${p}.AAAA` }), "unauthenticated", "invalid token signature", "INVALID_TOKEN");
          expectCode(await api.getUser(client), "unauthenticated", "missing bearer access token", "MISSING_CREDENTIAL");
        });

        it("a session is bound to its client id: another configured client id gets 401", async () => {
          const pair = await login(await signUp());
          const other = { clientId: otherClientId, access: pair.access_token };
          const refused = (outcome: Outcome<unknown>) => expectCode(outcome, "unauthenticated", "token issued for another audience", "WRONG_CLIENT");
          refused(await api.getSession(other));
          refused(await api.getUser(other));
          refused(await api.refreshSession({ refresh_token: pair.refresh_token }, other));
          refused(await api.deleteSession(other));
          expectOk(await api.getSession({ ...client, access: pair.access_token }));
        });

        it("PUT /session rotates both tokens; the older access token is refused afterwards", async () => {
          const first = await login(await signUp());
          const res = await api.refreshSession({ refresh_token: first.refresh_token }, { ...client, access: first.access_token });
          expectOk(res);
          const second = res.data!;
          assert.notEqual(second.access_token, first.access_token);
          assert.notEqual(second.refresh_token, first.refresh_token);
          assert.equal(second.access_token_expires_in, server.config.accessTokenTtlSeconds);
          assert.equal(decodeJwt(second.access_token).sid, decodeJwt(first.access_token).sid);
          expectCode(await api.getSession({ ...client, access: first.access_token }), "unauthenticated", notMostRecent, "NOT_MOST_RECENT_TOKEN");
          expectCode(await api.getUser({ ...client, access: first.access_token }), "unauthenticated", notMostRecent, "NOT_MOST_RECENT_TOKEN");
          expectOk(await api.getSession({ ...client, access: second.access_token }));
          // The rotated refresh token, inside the grace window: a plain 401; the session lives on.
          expectCode(await api.refreshSession({ refresh_token: first.refresh_token }, { ...client, access: second.access_token }), "unauthenticated", "refresh token already used", "REFRESH_TOKEN_ALREADY_USED");
          expectOk(await api.getSession({ ...client, access: second.access_token }));
          const third = await api.refreshSession({ refresh_token: second.refresh_token }, { ...client, access: second.access_token });
          expectOk(third);
        });

        it("PUT /session: unknown, missing or another session's refresh token 401/400", async () => {
          const a = await login(await signUp());
          const b = await login(await signUp());
          const withA = { ...client, access: a.access_token };
          expectCode(await api.refreshSession({ refresh_token: "not-a-refresh-token" }, withA), "unauthenticated", "unknown refresh token", "INVALID_TOKEN");
          // Another session's refresh token is answered as an unknown one.
          expectCode(await api.refreshSession({ refresh_token: b.refresh_token }, withA), "unauthenticated", "unknown refresh token", "INVALID_TOKEN");
          expectFieldRefused(await api.refreshSession({ refresh_token: "" }, withA), "refresh_token", "refresh_token is required", "MISSING_FIELDS");
          expectCode(await api.refreshSession({ refresh_token: a.refresh_token }, client), "unauthenticated", "missing bearer access token", "MISSING_CREDENTIAL");
          // Neither session was harmed: both still refresh.
          expectOk(await api.refreshSession({ refresh_token: a.refresh_token }, withA));
          expectOk(await api.refreshSession({ refresh_token: b.refresh_token }, { ...client, access: b.access_token }));
        });

        it("PUT /session with an older access token of the session 401", async () => {
          const first = await login(await signUp());
          const second = (await api.refreshSession({ refresh_token: first.refresh_token }, { ...client, access: first.access_token })).data!;
          expectCode(await api.refreshSession({ refresh_token: second.refresh_token }, { ...client, access: first.access_token }), "unauthenticated", notMostRecent, "NOT_MOST_RECENT_TOKEN");
          expectOk(await api.refreshSession({ refresh_token: second.refresh_token }, { ...client, access: second.access_token }));
        });

        it("DELETE /session answers {} and every token of the session gets 401 afterwards", async () => {
          const pair = await login(await signUp());
          const creds = { ...client, access: pair.access_token };
          const res = await api.deleteSession(creds);
          expectOk(res);
          assert.deepEqual(res.data, {});
          const ended = (outcome: Outcome<unknown>) => expectCode(outcome, "unauthenticated", "the session has ended", "SESSION_ENDED");
          ended(await api.getSession(creds));
          ended(await api.getUser(creds));
          ended(await api.refreshSession({ refresh_token: pair.refresh_token }, creds));
          ended(await api.deleteSession(creds));
        });

        it("two sessions of one user are independent", async () => {
          const email = await signUp();
          const a = await login(email);
          const b = await login(email);
          expectOk(await api.deleteSession({ ...client, access: a.access_token }));
          expectOk(await api.getSession({ ...client, access: b.access_token }));
        });
      });
    }

    it("REST: two x-koms-clientid header lines, over HTTP/1.1 and HTTP/2, the same client's or not: 400 MALFORMED_CREDENTIAL", async () => {
      const body = JSON.stringify({ email: uniqueEmail(), password: goodPassword });
      for (const lines of [[testClientId, testClientId], [testClientId, otherClientId], ["nope", testClientId]]) {
        assertBadRequest(await raw(server.url, "POST", "/user", { "content-type": "application/json", "x-koms-clientid": lines }, body), clientIdList, "MALFORMED_CREDENTIAL");
        const session = http2.connect(server.url);
        try {
          const h2 = await h2request(
            session,
            { ":method": "POST", ":path": "/user", "content-type": "application/json", "x-koms-clientid": lines },
            Buffer.from(body),
          );
          assertBadRequest({ status: Number(h2.headers[":status"]), text: h2.data.toString("utf8") }, clientIdList, "MALFORMED_CREDENTIAL");
        } finally {
          session.close();
        }
      }
      // The same sign-up with the client id once is made.
      const made = await raw(server.url, "POST", "/user", { "content-type": "application/json", "x-koms-clientid": testClientId }, body);
      assert.equal(made.status, 201, made.text);
    });

    // Seed 000 calls the fields "Request Parameters"; they are JSON body fields. Sent in the
    // query they are known fields in the wrong place, not unknown ones (INVALID_QUERY_PARAMETER,
    // as a path-bound field in the query is), and the password is not echoed.
    it("REST: seed 000's request parameters sent in the query are 400 INVALID_QUERY_PARAMETER saying they come from the JSON body", async () => {
      const email = uniqueEmail();
      const cases = [
        ["/session", { account_type: "traditional", email, password: goodPassword }, "account_type"],
        ["/user", { email, password: goodPassword }, "email"],
      ] as const;
      for (const [path, query, first] of cases) {
        const res = await raw(server.url, "POST", `${path}?${new URLSearchParams(query)}`, { "content-type": "application/json", "x-koms-clientid": testClientId }, "{}");
        assertBadRequest(res, `invalid query parameter "${first}": every field comes from the JSON body`, "INVALID_QUERY_PARAMETER");
        assert.ok(!res.text.includes(goodPassword), res.text);
      }
    });

    it("REST: 401 answers carry WWW-Authenticate when a bearer token is missing", async () => {
      const api = sessionApi("rest", server.url);
      const res = await api.getSession(client);
      expectCode(res, "unauthenticated", "missing bearer access token", "MISSING_CREDENTIAL");
      assert.equal(res.headers.get("www-authenticate"), "Bearer");
    });

    it("no secret reaches the logs", async () => {
      const api = sessionApi("rest", server.url);
      const email = uniqueEmail();
      await api.createUser({ email, password: goodPassword }, client);
      const pair = (await api.createSession({ account_type: "traditional", email, password: goodPassword }, client)).data!;
      await api.refreshSession({ refresh_token: pair.refresh_token }, { ...client, access: pair.access_token });
      const logs = server.logs.join("\n");
      assert.ok(!logs.includes(goodPassword));
      assert.ok(!logs.includes(pair.refresh_token));
      assert.ok(!logs.includes(pair.access_token));
    });
  });
}
