// Seed 003 (AuthenticationTokenService) through real clients — gRPC, Connect and REST — on each
// store: GET /api/authenticationtoken, /{token} and /{token}/user as the document shows them,
// with every user credential of the service (seed 002 user token, seed 000 session access token,
// seed 004 JWT, the session cookie), expiry exact to the millisecond with an injected clock,
// single use under concurrency, and the session cookie the exchange starts.
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { ManualClock } from "../../src/core/clock.js";
import type { UserRecord } from "../../src/store/ports.js";
import { expectCode, expectOk, protocols, restOutcome, rpcProtocols, type Outcome } from "../support/api.js";
import { errorInfoJson } from "../support/error-details.js";
import { bearer, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import {
  clientIdHeader,
  createApiToken,
  createAuthenticationToken,
  createJwtUser,
  createNamedUser,
  jwtLogin,
  jwtRefreshToken,
  loginUserToken,
  otherPassword,
  sessionCookie,
  signUp,
  startSession,
} from "../support/users.js";
import { authenticationTokenApi, sessionCookieOf, type AuthenticationToken, type AuthenticationTokenApi, type TokenUser } from "./api.js";
import { spyOn } from "../support/spy.js";
import { StoreUnavailableError } from "../../src/store/ports/errors.js";
import { loginKey } from "../../src/core/login-name.js";
import { hashSecret } from "../../src/core/secrets.js";

const iso8601 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const tokenShape = /^[A-Za-z0-9_-]{32}$/;
const cookieLine = /^tessera_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=86400; HttpOnly; SameSite=Lax$/;
/** The one answer to an unknown, used, expired or other user's token. */
const notFound = "authentication token not found (unknown, used or expired)";
const cookie = (value: string) => ({ cookie: `tessera_session=${value}` });
/** The refusal of a session access token sent without its client id. */
const missingClientId = "missing x-koms-clientid header: a session access token is accepted only with the client id it was issued to";

for (const store of storesUnderTest()) {
  describe(`Authentication tokens (seed 003) on ${store}`, function () {
    const clock = new ManualClock(Date.parse("2026-05-01T09:30:00.250Z"));
    let server: TestServer;
    /** A server with TESSERA_AUTHENTICATION_TOKEN_TTL_SECONDS=5 on the same clock. */
    let short: TestServer;
    /** A server whose seed 000 sessions live 90 s, on the same clock. */
    let bounded: TestServer;
    before(async () => {
      // Started side by side (each has its own data directory or database); each one that started is closed after.
      await Promise.all([
        startTestServer({ store, clock }).then((s) => (server = s)),
        startTestServer({ store, clock, env: { TESSERA_AUTHENTICATION_TOKEN_TTL_SECONDS: "5" } }).then((s) => (short = s)),
        startTestServer({ store, clock, env: { TESSERA_REFRESH_TOKEN_TTL_SECONDS: "90" } }).then((s) => (bounded = s)),
      ]);
    });
    after(async () => {
      await server?.close();
      await short?.close();
      await bounded?.close();
    });

    /** A seed 000 user with a seed 002 user token. */
    async function userWithToken(on = server): Promise<{ user: UserRecord; token: string }> {
      const user = await signUp(on);
      return { user, token: await loginUserToken(on, user.login) };
    }

    /**
     * A token made on `on` with `headers`, a credential that ends 30.5 s from now: ttl 30, stored
     * so, 404 from created_at + 30 s on (read with `reader`, another credential of the user).
     */
    async function livesThirtySeconds(api: AuthenticationTokenApi, on: TestServer, headers: Record<string, string>, reader: Record<string, string>): Promise<void> {
      const created = expectOk(await api.createToken(headers));
      assert.equal(created.ttl, 30);
      const record = await on.tessera.store.authTokens.findByHash(hashSecret(created.token));
      assert.ok(record, "stored");
      assert.deepEqual([record.createdAt.getTime(), record.expiresAt.getTime() - record.createdAt.getTime()], [Date.parse(created.created_at), 30_000]);
      clock.advance(29_999);
      assert.deepEqual(expectOk(await api.getToken(created.token, reader)), created);
      clock.advance(1);
      expectCode(await api.getToken(created.token, reader), "not_found", notFound, "TOKEN_NOT_FOUND");
      expectCode(await api.exchangeToken(created.token), "not_found", notFound, "TOKEN_NOT_FOUND");
    }

    /** The refusal of a token from a credential with less than a second left. */
    const tooLate = "the credential expires in less than a second: an authentication token made from it would have no whole second to live";

    for (const protocol of protocols) {
      describe(`over ${protocol}`, () => {
        let api: AuthenticationTokenApi;
        before(() => {
          api = authenticationTokenApi(protocol, server.url);
        });
        after(() => api.close());

        async function createToken(headers: Record<string, string>): Promise<AuthenticationToken> {
          return expectOk(await api.createToken(headers));
        }

        describe("GET /api/authenticationtoken", () => {
          it("answers {token, ttl: 60, user, created_at} for a seed 002 user token", async () => {
            const { user, token } = await userWithToken();
            const res = await api.createToken(bearer(token));
            const body = expectOk(res);
            assert.deepEqual(Object.keys(body).sort(), ["created_at", "token", "ttl", "user"]);
            assert.match(body.token, tokenShape);
            assert.equal(body.ttl, 60);
            assert.equal(body.user, user.id);
            assert.match(body.created_at, iso8601);
            assert.equal(Date.parse(body.created_at), clock.now().getTime());
            assert.equal(res.headers.get("cache-control"), "no-store");
            if (protocol === "rest") assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
          });

          it("accepts a seed 000 session access token with its x-koms-clientid (without it, the token is read as a seed 004 JWT: 401)", async () => {
            const user = await signUp(server);
            const access = (await startSession(server, user.login)).access_token;
            assert.equal((await createToken({ ...bearer(access), ...clientIdHeader })).user, user.id);
            expectCode(await api.createToken(bearer(access)), "unauthenticated", "missing x-koms-clientid header: a session access token is accepted only with the client id it was issued to", "WRONG_AUDIENCE");
          });

          it("refuses a seed 000 session access token without x-koms-clientid as it did (401, WRONG_AUDIENCE), naming the missing header", async () => {
            const user = await signUp(server);
            const access = (await startSession(server, user.login)).access_token;
            const res = await api.createToken(bearer(access));
            expectCode(res, "unauthenticated", missingClientId, "WRONG_AUDIENCE");
            if (protocol === "rest") assert.equal(res.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
            const created = await createToken({ ...bearer(access), ...clientIdHeader });
            expectCode(await api.getToken(created.token, bearer(access)), "unauthenticated", missingClientId, "WRONG_AUDIENCE");
            // Another JWT that is no access token of this audience (a seed 004 refresh token) keeps its own refusal.
            const refresh = await jwtRefreshToken(server, await jwtLogin(server, await createJwtUser(server)));
            expectCode(await api.createToken(bearer(refresh)), "unauthenticated", "not an access token", "WRONG_TOKEN_TYPE");
          });

          it("accepts a seed 004 JWT access token", async () => {
            const name = await createJwtUser(server);
            const body = await createToken(bearer(await jwtLogin(server, name)));
            assert.equal(body.user, (await server.tessera.store.users.findByLogin(name, loginKey(name)))?.id);
          });

          it("gives 401 without a credential, or with an unknown, malformed, Basic, API or logged-out token", async () => {
            const none = await api.createToken({});
            expectCode(none, "unauthenticated", "missing credential", "MISSING_CREDENTIAL");
            assert.equal(none.headers.get("www-authenticate"), "Bearer");
            expectCode(await api.createToken(bearer("b94cf5c7-cddc-4610-9d4c-6b8e04088ae8")), "unauthenticated", "invalid user token", "INVALID_TOKEN");
            expectCode(await api.createToken(bearer("a.b.c")), "unauthenticated", "malformed token", "INVALID_TOKEN");
            expectCode(await api.createToken({ authorization: "Basic Zm9vOmJhcg==" }), "unauthenticated", "the Authorization header must be \"Bearer <token>\"", "UNSUPPORTED_CREDENTIAL");
            expectCode(await api.createToken(bearer(await createApiToken(server))), "unauthenticated", "invalid user token", "INVALID_TOKEN");
            const { token } = await userWithToken();
            assert.equal((await rest(server.url, "POST", "/auth/logout", { headers: bearer(token) })).status, 200);
            expectCode(await api.createToken(bearer(token)), "unauthenticated", "user token is disabled", "TOKEN_REVOKED");
          });

          it("honours TESSERA_AUTHENTICATION_TOKEN_TTL_SECONDS", async () => {
            const onShort = authenticationTokenApi(protocol, short.url);
            try {
              const { token } = await userWithToken(short);
              const created = expectOk(await onShort.createToken(bearer(token)));
              assert.equal(created.ttl, 5);
              clock.advance(4_999);
              expectOk(await onShort.getToken(created.token, bearer(token)));
              clock.advance(1);
              expectCode(await onShort.getToken(created.token, bearer(token)), "not_found", notFound, "TOKEN_NOT_FOUND");
            } finally {
              onShort.close();
            }
          });
        });

        // A token is dead once the credential it was made from has ended (README "Cookie
        // sessions"): it never outlives it, and its ttl (its lifetime from created_at, seed 003)
        // says how long it lives: the configured 60 s cut to what the credential has left, in
        // whole seconds rounded down.
        describe("GET /api/authenticationtoken from a credential that ends within 60 s: ttl is what it has left, stored so (the cookie session: REST only, below)", () => {
          let onBounded: AuthenticationTokenApi;
          before(() => (onBounded = authenticationTokenApi(protocol, bounded.url)));
          after(() => onBounded.close());

          /** A user of `bounded`, with a user token that does not expire (to read tokens with). */
          async function boundedUser(): Promise<{ login: string; reader: Record<string, string> }> {
            const user = await signUp(bounded);
            return { login: user.login, reader: bearer(await loginUserToken(bounded, user.login)) };
          }

          it("a seed 002 user token with an expirationTime", async () => {
            const { login, reader } = await boundedUser();
            const expiring = await loginUserToken(bounded, login, { expirationTime: new Date(clock.now().getTime() + 30_500).toISOString() });
            await livesThirtySeconds(onBounded, bounded, bearer(expiring), reader);
          });

          it("a seed 000 session (TESSERA_REFRESH_TOKEN_TTL_SECONDS=90), 59.5 s old", async () => {
            const { login, reader } = await boundedUser();
            const { access_token } = await startSession(bounded, login);
            clock.advance(59_500);
            await livesThirtySeconds(onBounded, bounded, { ...bearer(access_token), ...clientIdHeader }, reader);
          });

          it("one second left: ttl 1; less than a second: none, 401 TOKEN_EXPIRED as for the credential's end", async () => {
            const { login, reader } = await boundedUser();
            const oneSecond = await loginUserToken(bounded, login, { expirationTime: new Date(clock.now().getTime() + 1_000).toISOString() });
            const created = expectOk(await onBounded.createToken(bearer(oneSecond)));
            assert.equal(created.ttl, 1);
            const lessThanOne = await loginUserToken(bounded, login, { expirationTime: new Date(clock.now().getTime() + 999).toISOString() });
            const refused = await onBounded.createToken(bearer(lessThanOne));
            expectCode(refused, "unauthenticated", tooLate, "TOKEN_EXPIRED");
            if (protocol === "rest") assert.equal(refused.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
            clock.advance(999);
            expectOk(await onBounded.getToken(created.token, reader));
            clock.advance(1);
            expectCode(await onBounded.getToken(created.token, reader), "not_found", notFound, "TOKEN_NOT_FOUND");
          });

          it("a seed 004 JWT access token whose exp is 59.5 s away: ttl 59, and the cookie session its exchange starts ends by exp (Max-Age 59), then refused", async () => {
            const name = await createJwtUser(server);
            const access = await jwtLogin(server, name);
            const expMs = decodeJwt(access).exp! * 1000;
            clock.set(expMs - 59_500);
            const created = await createToken(bearer(access));
            assert.equal(created.ttl, Math.floor((expMs - clock.now().getTime()) / 1000));
            assert.equal(created.ttl, 59);
            const record = await server.tessera.store.authTokens.findByHash(hashSecret(created.token));
            assert.deepEqual([record?.expiresAt.getTime(), record?.notAfter?.getTime()], [clock.now().getTime() + 59_000, expMs]);
            const exchanged = await api.exchangeToken(created.token);
            expectOk(exchanged);
            const session = sessionCookieOf(exchanged.headers);
            assert.equal(session?.attributes.get("max-age"), "59");
            // Read with the cookie (REST: the cookie is a credential on GET only), a token the user made with another credential.
            const link = await createAuthenticationToken(server, bearer(await jwtLogin(server, name)));
            const read = (): Promise<Outcome> => rest(server.url, "GET", `/api/authenticationtoken/${link}`, { headers: cookie(session!.value) }).then(restOutcome);
            clock.advance(58_999);
            expectOk(await read());
            clock.advance(1);
            expectCode(await read(), "unauthenticated", "session cookie has expired", "TOKEN_EXPIRED");
          });

          it("a seed 004 JWT access token with one second left: ttl 1; less than a second: none, 401 TOKEN_EXPIRED", async () => {
            const access = await jwtLogin(server, await createJwtUser(server));
            const expMs = decodeJwt(access).exp! * 1000;
            clock.set(expMs - 1_000);
            assert.equal(expectOk(await api.createToken(bearer(access))).ttl, 1);
            clock.advance(1);
            const refused = await api.createToken(bearer(access));
            expectCode(refused, "unauthenticated", tooLate, "TOKEN_EXPIRED");
            if (protocol === "rest") assert.equal(refused.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
          });
        });

        describe("GET /api/authenticationtoken/{token}", () => {
          it("answers the same object while unexpired, and 404 from created_at + ttl on (checked on read)", async () => {
            const { token } = await userWithToken();
            const created = await createToken(bearer(token));
            clock.advance(59_999);
            const res = await api.getToken(created.token, bearer(token));
            assert.deepEqual(expectOk(res), created);
            assert.equal(res.headers.get("cache-control"), "no-store");
            clock.advance(1);
            expectCode(await api.getToken(created.token, bearer(token)), "not_found", notFound, "TOKEN_NOT_FOUND");
            // Still in the store (no background cleanup decides expiry): only the read refuses it.
            expectCode(await api.exchangeToken(created.token), "not_found", notFound, "TOKEN_NOT_FOUND");
          });

          it("gives 404 for an unknown token and for another user's token", async () => {
            const alice = await userWithToken();
            const bob = await userWithToken();
            expectCode(await api.getToken("132427377339939930", bearer(alice.token)), "not_found", notFound, "TOKEN_NOT_FOUND");
            const alices = await createToken(bearer(alice.token));
            expectCode(await api.getToken(alices.token, bearer(bob.token)), "not_found", notFound, "TOKEN_NOT_FOUND");
            expectOk(await api.getToken(alices.token, bearer(alice.token)));
          });

          it("gives 404 once the token has been exchanged", async () => {
            const { token } = await userWithToken();
            const created = await createToken(bearer(token));
            expectOk(await api.exchangeToken(created.token));
            expectCode(await api.getToken(created.token, bearer(token)), "not_found", notFound, "TOKEN_NOT_FOUND");
          });

          it("gives 404 once a password change has outdated the token (as its exchange does)", async () => {
            const name = await createJwtUser(server);
            const created = await createToken(bearer(await jwtLogin(server, name)));
            const changed = await rest(server.url, "PATCH", "/jwt/user", { headers: bearer(await jwtLogin(server, name)), json: { pass: otherPassword } });
            assert.equal(changed.status, 200, changed.text);
            const fresh = await jwtLogin(server, name, otherPassword);
            expectCode(await api.getToken(created.token, bearer(fresh)), "not_found", notFound, "TOKEN_NOT_FOUND");
            expectCode(await api.exchangeToken(created.token), "not_found", notFound, "TOKEN_NOT_FOUND");
          });

          it("gives 400 for a malformed token and 401 without a credential", async () => {
            const { token } = await userWithToken();
            expectCode(await api.getToken("not a token!", bearer(token)), "invalid_argument", "token is malformed: expected at most 128 characters of [A-Za-z0-9_-]", "INVALID_FIELD");
            expectCode(await api.getToken("a".repeat(129), bearer(token)), "invalid_argument", "token is malformed: expected at most 128 characters of [A-Za-z0-9_-]", "INVALID_FIELD");
            const created = await createToken(bearer(token));
            expectCode(await api.getToken(created.token, {}), "unauthenticated", "missing credential", "MISSING_CREDENTIAL");
          });
        });

        describe("GET /api/authenticationtoken/{token}/user", () => {
          it("needs no credential, answers {_id, emails} (absent names left out) and sets the session cookie", async () => {
            const { user, token } = await userWithToken();
            const created = await createToken(bearer(token));
            const res = await api.exchangeToken(created.token);
            assert.deepEqual(expectOk(res), { _id: user.id, emails: [user.login] });
            assert.equal(res.headers.get("cache-control"), "no-store");
            assert.equal(res.headers.getSetCookie().length, 1);
            const c = sessionCookieOf(res.headers);
            assert.ok(c, "sets tessera_session");
            // Not Secure over plain HTTP.
            assert.match(c.line, cookieLine);
            assert.ok(!server.logs.join("\n").includes(c.value), "cookie value not logged");
          });

          it("answers firstname and lastname when the user has them", async () => {
            const named = await createNamedUser(server, { firstname: "John", lastname: "Doe" }, clock.now());
            const created = await createToken(bearer(await loginUserToken(server, named.login)));
            assert.deepEqual(expectOk(await api.exchangeToken(created.token)), { _id: named.id, firstname: "John", lastname: "Doe", emails: named.emails });
            const onlyFirst = await createNamedUser(server, { firstname: "Ann" }, clock.now());
            const t2 = await createToken(bearer(await loginUserToken(server, onlyFirst.login)));
            assert.deepEqual(expectOk(await api.exchangeToken(t2.token)), { _id: onlyFirst.id, firstname: "Ann", emails: onlyFirst.emails });
          });

          it("is single use: a second exchange is 404 and sets no cookie", async () => {
            const { token } = await userWithToken();
            const created = await createToken(bearer(token));
            expectOk(await api.exchangeToken(created.token));
            const again = await api.exchangeToken(created.token);
            expectCode(again, "not_found", notFound, "TOKEN_NOT_FOUND");
            assert.equal(sessionCookieOf(again.headers), undefined);
          });

          it("of several concurrent exchanges of one token, exactly one succeeds", async () => {
            const { token } = await userWithToken();
            for (let round = 0; round < 3; round++) {
              const created = await createToken(bearer(token));
              const answers = await Promise.all(Array.from({ length: 6 }, () => api.exchangeToken(created.token)));
              assert.deepEqual(answers.map((a) => a.code).sort(), ["not_found", "not_found", "not_found", "not_found", "not_found", "ok"]);
              for (const a of answers.filter((a) => a.code !== "ok")) expectCode(a, "not_found", notFound, "TOKEN_NOT_FOUND");
              assert.equal(answers.filter((a) => sessionCookieOf(a.headers) !== undefined).length, 1);
            }
          });

          it("gives 404 for an unknown or expired token (no cookie), 400 for a malformed one", async () => {
            expectCode(await api.exchangeToken("929838839992882892"), "not_found", notFound, "TOKEN_NOT_FOUND");
            const { token } = await userWithToken();
            const created = await createToken(bearer(token));
            clock.advance(60_000);
            const expired = await api.exchangeToken(created.token);
            expectCode(expired, "not_found", notFound, "TOKEN_NOT_FOUND");
            assert.equal(sessionCookieOf(expired.headers), undefined);
            expectCode(await api.exchangeToken("bad token"), "invalid_argument", "token is malformed: expected at most 128 characters of [A-Za-z0-9_-]", "INVALID_FIELD");
            expectCode(await api.exchangeToken("a/b"), "invalid_argument", "token is malformed: expected at most 128 characters of [A-Za-z0-9_-]", "INVALID_FIELD");
          });

          it("gives 404 (and no session) once the seed 002 user token it was made from has logged out; GET /{token} too", async () => {
            const { user, token } = await userWithToken();
            const created = await createToken(bearer(token));
            const out = await rest(server.url, "POST", "/auth/logout", { headers: bearer(token) });
            assert.equal(out.status, 200, out.text);
            expectCode(await api.getToken(created.token, bearer(await loginUserToken(server, user.login))), "not_found", notFound, "TOKEN_NOT_FOUND");
            const res = await api.exchangeToken(created.token);
            expectCode(res, "not_found", notFound, "TOKEN_NOT_FOUND");
            assert.equal(sessionCookieOf(res.headers), undefined);
          });

          it("gives 404 (and no session) once the seed 000 session it was made from has ended (DELETE /session)", async () => {
            const user = await signUp(server);
            const access = (await startSession(server, user.login)).access_token;
            const created = await createToken({ ...bearer(access), ...clientIdHeader });
            const ended = await rest(server.url, "DELETE", "/session", { headers: { ...bearer(access), ...clientIdHeader } });
            assert.equal(ended.status, 200, ended.text);
            const res = await api.exchangeToken(created.token);
            expectCode(res, "not_found", notFound, "TOKEN_NOT_FOUND");
            assert.equal(sessionCookieOf(res.headers), undefined);
          });

          it("gives 404 (and no session) for a deactivated user", async () => {
            const { user, token } = await userWithToken();
            const created = await createToken(bearer(token));
            await server.tessera.store.users.deactivate(user.id, clock.now());
            const res = await api.exchangeToken(created.token);
            expectCode(res, "not_found", notFound, "TOKEN_NOT_FOUND");
            assert.equal(sessionCookieOf(res.headers), undefined);
          });

          it("keeps a valid session of the same user (no new cookie), and refuses another user's (409, cookie kept, token unused)", async () => {
            const { user, token } = await userWithToken();
            const first = await api.exchangeToken((await createToken(bearer(token))).token);
            const value = sessionCookieOf(first.headers)!.value;
            const second = await api.exchangeToken((await createToken(bearer(token))).token, cookie(value));
            assert.equal(expectOk(second)._id, user.id);
            assert.equal(sessionCookieOf(second.headers), undefined);
            const other = await userWithToken();
            const othersToken = (await createToken(bearer(other.token))).token;
            const third = await api.exchangeToken(othersToken, cookie(value));
            expectCode(third, "already_exists", "the browser holds a session of another user: log out first", "OTHER_USER_SESSION");
            assert.equal(sessionCookieOf(third.headers), undefined);
            // The cookie is still this user's session, and the refused token was not used up.
            const mine = await rest(server.url, "GET", "/api/authenticationtoken", { headers: cookie(value) });
            assert.equal(mine.body.user, user.id);
            const clean = await api.exchangeToken(othersToken);
            assert.equal(expectOk(clean)._id, other.user.id);
          });

          it("a session cookie the store fails to check is not replaced: 503, no cookie, the token unused (then 409, as with the cookie checked)", async () => {
            const { user, token } = await userWithToken();
            const value = sessionCookieOf((await api.exchangeToken((await createToken(bearer(token))).token)).headers)!.value;
            const other = await userWithToken();
            const othersToken = (await createToken(bearer(other.token))).token;
            const userTokens = server.tessera.store.userTokens;
            const read = userTokens.findByHashWithUser.bind(userTokens);
            const cookieHash = hashSecret(value);
            const failing = spyOn(userTokens, "findByHashWithUser", async (hash: string) => {
              if (hash === cookieHash) throw new StoreUnavailableError("store unavailable");
              return read(hash);
            });
            let res: Outcome<TokenUser>;
            try {
              res = await api.exchangeToken(othersToken, cookie(value));
            } finally {
              failing.restore();
            }
            expectCode(res, "unavailable", "the store is unavailable, try again shortly", "STORE_UNAVAILABLE");
            assert.equal(sessionCookieOf(res.headers), undefined);
            // The browser's session is still its user's, and the token was not used up.
            const mine = await rest(server.url, "GET", "/api/authenticationtoken", { headers: cookie(value) });
            assert.equal(mine.body.user, user.id);
            expectCode(await api.exchangeToken(othersToken, cookie(value)), "already_exists", "the browser holds a session of another user: log out first", "OTHER_USER_SESSION");
            assert.equal(expectOk(await api.exchangeToken(othersToken))._id, other.user.id);
          });

          it("gives another user's used, expired or deactivated user's token 404 in a browser holding a live session, as without it (not 409)", async () => {
            const { user, token } = await userWithToken();
            const value = sessionCookieOf((await api.exchangeToken((await createToken(bearer(token))).token)).headers)!.value;
            const other = await userWithToken();
            const used = (await createToken(bearer(other.token))).token;
            expectOk(await api.exchangeToken(used));
            const expired = (await createToken(bearer(other.token))).token;
            const deactivated = await userWithToken();
            const ofDeactivated = (await createToken(bearer(deactivated.token))).token;
            await server.tessera.store.users.deactivate(deactivated.user.id, clock.now());
            clock.advance(60_000);
            for (const dead of [used, expired, ofDeactivated]) {
              for (const headers of [cookie(value), {}]) {
                const res = await api.exchangeToken(dead, headers);
                expectCode(res, "not_found", notFound, "TOKEN_NOT_FOUND");
                assert.equal(sessionCookieOf(res.headers), undefined);
              }
            }
            // The browser's session is still its user's.
            const mine = await rest(server.url, "GET", "/api/authenticationtoken", { headers: cookie(value) });
            assert.equal(mine.body.user, user.id);
          });
        });
      });
    }

    for (const protocol of rpcProtocols) {
      describe(`over ${protocol} only`, () => {
        let api: AuthenticationTokenApi;
        before(() => {
          api = authenticationTokenApi(protocol, server.url);
        });
        after(() => api.close());

        it("an empty token is 400 (a REST path cannot carry one)", async () => {
          const { token } = await userWithToken();
          expectCode(await api.getToken("", bearer(token)), "invalid_argument", "token is required", "MISSING_FIELDS");
          expectCode(await api.exchangeToken(""), "invalid_argument", "token is required", "MISSING_FIELDS");
        });

        it("the session cookie is no credential on a POST (every gRPC and Connect call)", async () => {
          const { token } = await userWithToken();
          const value = await sessionCookie(server, token);
          expectCode(await api.createToken(cookie(value)), "unauthenticated", "missing credential", "MISSING_CREDENTIAL");
          // Control: the same cookie is a credential on a REST GET.
          assert.equal((await rest(server.url, "GET", "/api/authenticationtoken", { headers: cookie(value) })).status, 200);
        });
      });
    }

    describe("REST only: the session cookie as a credential on GET", () => {
      const get = (path: string, headers: Record<string, string> = {}) => rest(server.url, "GET", path, { headers });

      /** A user with a session cookie from an exchange. */
      async function exchange(): Promise<{ user: UserRecord; value: string }> {
        const { user, token } = await userWithToken();
        const created = await get("/api/authenticationtoken", bearer(token));
        const res = await get(`/api/authenticationtoken/${created.body.token}/user`);
        assert.equal(res.status, 200, res.text);
        return { user, value: sessionCookieOf(res.headers)!.value };
      }

      it("creates and reads authentication tokens", async () => {
        const { user, value } = await exchange();
        const created = await get("/api/authenticationtoken", cookie(value));
        assert.equal(created.status, 200, created.text);
        assert.equal(created.body.user, user.id);
        const read = await get(`/api/authenticationtoken/${created.body.token}`, cookie(value));
        assert.equal(read.status, 200, read.text);
        assert.deepEqual(read.body, created.body);
      });

      it("a token made from it is dead once it logs out (POST /auth/logout with the cookie): 404, no new session", async () => {
        const { value } = await exchange();
        const created = await get("/api/authenticationtoken", cookie(value));
        assert.equal(created.status, 200, created.text);
        const out = await rest(server.url, "POST", "/auth/logout", { headers: cookie(value) });
        assert.equal(out.status, 200, out.text);
        const res = await get(`/api/authenticationtoken/${created.body.token}/user`);
        expectCode(restOutcome(res), "not_found", notFound, "TOKEN_NOT_FOUND");
        assert.equal(sessionCookieOf(res.headers), undefined);
      });

      it("is not a bearer token, and a user token is not a session cookie", async () => {
        const { value } = await exchange();
        expectCode(restOutcome(await rest(server.url, "POST", "/auth/bump", { headers: bearer(value) })), "unauthenticated", "invalid user token", "INVALID_TOKEN");
        expectCode(restOutcome(await get("/api/authenticationtoken", bearer(value))), "unauthenticated", "invalid user token", "INVALID_TOKEN");
        const { token } = await userWithToken();
        expectCode(restOutcome(await get("/api/authenticationtoken", cookie(token))), "unauthenticated", "invalid session cookie", "INVALID_TOKEN");
        expectCode(restOutcome(await get("/api/authenticationtoken", cookie("x".repeat(43)))), "unauthenticated", "invalid session cookie", "INVALID_TOKEN");
      });

      it("expires after its Max-Age (with less than a second left, it makes no token: 401 TOKEN_EXPIRED)", async () => {
        const { user, value } = await exchange();
        clock.advance(86_400_000 - 1);
        // Read with the cookie, a token the user made with another credential.
        const link = await createAuthenticationToken(server, bearer(await loginUserToken(server, user.login)));
        assert.equal((await get(`/api/authenticationtoken/${link}`, cookie(value))).status, 200);
        expectCode(restOutcome(await get("/api/authenticationtoken", cookie(value))), "unauthenticated", tooLate, "TOKEN_EXPIRED");
        clock.advance(1);
        expectCode(restOutcome(await get(`/api/authenticationtoken/${link}`, cookie(value))), "unauthenticated", "session cookie has expired", "TOKEN_EXPIRED");
      });

      it("a token made from it lives no longer than it: with 30.5 s left, ttl 30, stored so", async () => {
        const { user, value } = await exchange();
        const reader = bearer(await loginUserToken(server, user.login));
        clock.advance(86_400_000 - 30_500);
        const api = authenticationTokenApi("rest", server.url);
        await livesThirtySeconds(api, server, cookie(value), reader);
      });

      it("ends when the user is deactivated", async () => {
        const { user, value } = await exchange();
        await server.tessera.store.users.deactivate(user.id, clock.now());
        expectCode(restOutcome(await get("/api/authenticationtoken", cookie(value))), "unauthenticated", "the session cookie's user does not exist or is deactivated", "USER_DEACTIVATED");
      });

      it("ends when the user's password changes", async () => {
        const { user, value } = await exchange();
        clock.advance(1);
        await server.tessera.store.users.updatePasswordHash(user.id, (await server.tessera.store.users.findById(user.id))!.passwordHash, clock.now());
        expectCode(restOutcome(await get("/api/authenticationtoken", cookie(value))), "unauthenticated", "session cookie predates a password change", "TOKEN_REVOKED");
      });

      it("is Secure when TESSERA_COOKIE_SECURE=true (e.g. behind a TLS-terminating proxy)", async () => {
        const secure = await startTestServer({ store, env: { TESSERA_COOKIE_SECURE: "true" } });
        try {
          const { token } = await userWithToken(secure);
          const created = await rest(secure.url, "GET", "/api/authenticationtoken", { headers: bearer(token) });
          const res = await rest(secure.url, "GET", `/api/authenticationtoken/${created.body.token}/user`);
          assert.equal(res.status, 200, res.text);
          assert.match(sessionCookieOf(res.headers)!.line, /^tessera_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=86400; HttpOnly; SameSite=Lax; Secure$/);
        } finally {
          await secure.close();
        }
      });

      // TESSERA_PUBLIC_URL is the https URL clients reach the server at: a proxy in front ends
      // TLS. A cookie without Secure would go out in clear text on any http:// request to that
      // host a network attacker has a browser make.
      it("is Secure when TESSERA_PUBLIC_URL is an https URL (clients reach the server over https), unless TESSERA_COOKIE_SECURE=false", async () => {
        for (const [env, secureAttribute] of [
          [{ TESSERA_PUBLIC_URL: "https://auth.example.com" }, "; Secure"],
          [{ TESSERA_PUBLIC_URL: "https://auth.example.com", TESSERA_COOKIE_SECURE: "false" }, ""],
        ] as const) {
          const proxied = await startTestServer({ store, env });
          try {
            const { token } = await userWithToken(proxied);
            const created = await rest(proxied.url, "GET", "/api/authenticationtoken", { headers: bearer(token) });
            const res = await rest(proxied.url, "GET", `/api/authenticationtoken/${created.body.token}/user`);
            assert.equal(res.status, 200, res.text);
            const { line } = sessionCookieOf(res.headers)!;
            assert.match(line, new RegExp(`^tessera_session=[A-Za-z0-9_-]{43}; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax${secureAttribute}$`), `${JSON.stringify(env)}: ${line.replace(/=[^;]+;/, "=…;")}`);
          } finally {
            await proxied.close();
          }
        }
      });
    });

    describe("REST only: HEAD, which link checkers and mail scanners send to any URL", () => {
      /** The error body a HEAD's 405 stands for (Node sends HEAD answers without their body). */
      const headRefusal = (path: string) =>
        JSON.stringify({ code: "unimplemented", message: `HEAD is not allowed on ${path}`, details: [errorInfoJson("METHOD_NOT_ALLOWED")] });

      it("a HEAD to the exchange URL is 405 with Allow: GET and does not spend the token: the GET then exchanges it", async () => {
        const { user, token } = await userWithToken();
        const created = await rest(server.url, "GET", "/api/authenticationtoken", { headers: bearer(token) });
        assert.equal(created.status, 200, created.text);
        const url = `${server.url}/api/authenticationtoken/${created.body.token}/user`;
        for (let i = 0; i < 2; i++) {
          const head = await fetch(url, { method: "HEAD" });
          assert.equal(head.status, 405);
          assert.equal(head.headers.get("allow"), "GET");
          assert.equal(head.headers.get("content-type"), "application/json");
          assert.equal(head.headers.get("content-length"), String(Buffer.byteLength(headRefusal("/api/authenticationtoken/*/user"))));
          assert.equal(head.headers.get("set-cookie"), null, "no session started");
          assert.equal(await head.text(), "");
        }
        const res = await rest(server.url, "GET", `/api/authenticationtoken/${created.body.token}/user`);
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body, { _id: user.id, emails: [user.login] });
        assert.ok(sessionCookieOf(res.headers), "the exchange starts a session");
      });

      it("a HEAD to the exchange URL is 405 with Allow: GET whatever its token segment holds, one that does not percent-decode too", async () => {
        for (const path of ["/api/authenticationtoken/%ZZ/user", "/api/authenticationtoken/%E0%A4/user", "/api/authenticationtoken/%ZZ"]) {
          const shown = path.endsWith("/user") ? "/api/authenticationtoken/*/user" : "/api/authenticationtoken/*";
          const head = await fetch(server.url + path, { method: "HEAD" });
          assert.equal(head.status, 405, path);
          assert.equal(head.headers.get("allow"), "GET");
          assert.equal(head.headers.get("content-length"), String(Buffer.byteLength(headRefusal(shown))));
          assert.equal(await head.text(), "");
          // Its GET is refused for the segment: 400, naming the variable.
          const get = await rest(server.url, "GET", path);
          assert.equal(get.status, 400, path);
          assert.equal(get.body.message, 'malformed percent-encoding in path variable "token"');
        }
      });

      it("HEAD on the other seed 003 routes (each GET mints a token or records a use) is 405 too; OPTIONS and other 405s list no HEAD", async () => {
        const { token } = await userWithToken();
        const created = await rest(server.url, "GET", "/api/authenticationtoken", { headers: bearer(token) });
        for (const [path, shown] of [
          ["/api/authenticationtoken", "/api/authenticationtoken"],
          [`/api/authenticationtoken/${created.body.token}`, "/api/authenticationtoken/*"],
        ] as const) {
          const head = await fetch(server.url + path, { method: "HEAD", headers: bearer(token) });
          assert.equal(head.status, 405, path);
          assert.equal(head.headers.get("allow"), "GET");
          assert.equal(head.headers.get("content-length"), String(Buffer.byteLength(headRefusal(shown))));
          for (const method of ["OPTIONS", "POST"]) {
            const other = await rest(server.url, method, path, { headers: bearer(token) });
            assert.equal(other.status, 405, `${method} ${path}`);
            assert.equal(other.headers.get("allow"), "GET");
          }
        }
        const options = await rest(server.url, "OPTIONS", `/api/authenticationtoken/${created.body.token}/user`);
        assert.equal(options.status, 405);
        assert.equal(options.headers.get("allow"), "GET");
        assert.deepEqual(options.body, { code: "unimplemented", message: "OPTIONS is not allowed on /api/authenticationtoken/*/user", details: [errorInfoJson("METHOD_NOT_ALLOWED")] });
        // The token was neither spent nor read by the HEADs: it is still there.
        const read = await rest(server.url, "GET", `/api/authenticationtoken/${created.body.token}`, { headers: bearer(token) });
        assert.equal(read.status, 200, read.text);
      });

      it("a GET route without side effects still answers HEAD: the GET's status and headers, no body", async () => {
        const user = await signUp(server);
        const access = (await startSession(server, user.login)).access_token;
        const headers = { ...bearer(access), ...clientIdHeader };
        const get = await fetch(`${server.url}/session`, { headers });
        const getBody = await get.text();
        assert.equal(get.status, 200, getBody);
        const head = await fetch(`${server.url}/session`, { method: "HEAD", headers });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get("content-type"), get.headers.get("content-type"));
        assert.equal(head.headers.get("content-length"), String(Buffer.byteLength(getBody)));
        assert.equal(await head.text(), "");
        const post = await rest(server.url, "PATCH", "/session", { headers });
        assert.equal(post.headers.get("allow"), "DELETE, GET, HEAD, POST, PUT");
        const version = await fetch(`${server.url}/jwt/version`, { method: "HEAD" });
        assert.equal(version.status, 200);
        assert.match(version.headers.get("etag") ?? "", /^"/);
      });
    });

    describe("REST only: the document's response headers and user object", () => {
      /** Content-Type: application/json and Content-Length: the document's size, as each route lists them. */
      function expectJsonDocument(res: { status: number; headers: Headers; text: string }): void {
        assert.equal(res.status, 200, res.text);
        assert.equal(res.headers.get("content-type"), "application/json");
        assert.equal(res.headers.get("content-length"), String(Buffer.byteLength(res.text)));
      }

      it("each answer is application/json with its Content-Length", async () => {
        const { token } = await userWithToken();
        const created = await rest(server.url, "GET", "/api/authenticationtoken", { headers: { ...bearer(token), accept: "application/json" } });
        expectJsonDocument(created);
        expectJsonDocument(await rest(server.url, "GET", `/api/authenticationtoken/${created.body.token}`, { headers: { ...bearer(token), accept: "application/json" } }));
        expectJsonDocument(await rest(server.url, "GET", `/api/authenticationtoken/${created.body.token}/user`, { headers: { accept: "application/json" } }));
      });

      it("the user object of a user without an email address has emails: [] (not left out)", async () => {
        const name = await createJwtUser(server);
        const created = await rest(server.url, "GET", "/api/authenticationtoken", { headers: bearer(await jwtLogin(server, name)) });
        assert.equal(created.status, 200, created.text);
        const res = await rest(server.url, "GET", `/api/authenticationtoken/${created.body.token}/user`);
        expectJsonDocument(res);
        assert.equal(res.text, JSON.stringify({ _id: created.body.user, emails: [] }));
      });
    });

    describe("REST only: created_at as the document writes it", () => {
      // The document's token object: created_at: '2014-05-16T09:47:11.703Z', a JavaScript
      // Date's JSON, always with its three millisecond digits (proto3 JSON drops them on a
      // whole second).
      it("keeps the milliseconds on a whole second: .000Z", async () => {
        const { token } = await userWithToken();
        const at = Math.ceil(clock.now().getTime() / 1000) * 1000 + 1000;
        clock.set(at);
        const created = await rest(server.url, "GET", "/api/authenticationtoken", { headers: bearer(token) });
        assert.equal(created.status, 200, created.text);
        assert.deepEqual(Object.keys(created.body), ["token", "ttl", "user", "created_at"]);
        assert.equal(created.body.created_at, new Date(at).toISOString());
        assert.match(created.text, /"created_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z"/);
        const read = await rest(server.url, "GET", `/api/authenticationtoken/${created.body.token}`, { headers: bearer(token) });
        assert.equal(read.status, 200, read.text);
        assert.equal(read.body.created_at, new Date(at).toISOString());
      });

      it("writes other milliseconds as they are: .250Z", async () => {
        const { token } = await userWithToken();
        const at = Math.ceil(clock.now().getTime() / 1000) * 1000 + 1250;
        clock.set(at);
        const created = await rest(server.url, "GET", "/api/authenticationtoken", { headers: bearer(token) });
        assert.equal(created.status, 200, created.text);
        assert.equal(created.body.created_at, new Date(at).toISOString());
      });
    });

    describe("Connect only: the JSON on the wire", () => {
      it("uses the document's names (created_at, _id); CreateToken wraps the token", async () => {
        const { user, token } = await userWithToken();
        const created = await rest(server.url, "POST", "/tessera.authtoken.v1.AuthenticationTokenService/CreateToken", { headers: bearer(token), json: {} });
        assert.equal(created.status, 200, created.text);
        assert.deepEqual(Object.keys(created.body), ["token"]);
        assert.deepEqual(Object.keys(created.body.token).sort(), ["created_at", "token", "ttl", "user"]);
        const exchanged = await rest(server.url, "POST", "/tessera.authtoken.v1.AuthenticationTokenService/ExchangeToken", { json: { token: created.body.token.token } });
        assert.equal(exchanged.status, 200, exchanged.text);
        assert.deepEqual(exchanged.body, { _id: user.id, emails: [user.login] });
      });
    });
  });
}
