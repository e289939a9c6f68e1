// Cookie sessions (seed 003's `tessera_session`) end when they should: the user can end one
// (POST /auth/logout with the cookie and no bearer token, answered as for a user token, the
// cookie cleared with Max-Age=0, also when the session had already ended: the browser is never
// left holding a dead cookie); its lifetime is bounded by the login it descends from
// (exchanging again from the cookie never extends it); and a link exchanged in a browser that
// holds another user's live session is refused (409) with the cookie kept, not silently
// logging the browser in as someone else.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { ManualClock } from "../../src/core/clock.js";
import { Housekeeping } from "../../src/core/housekeeping.js";
import { createLogger } from "../../src/logger.js";
import { expectCode, expectOk, protocols, restOutcome } from "../support/api.js";
import { assertBadRequest, grpcFrame, grpcWebTrailer, raw } from "../hostile/support.js";
import { basic, bearer, rest, type RestResponse } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { clientIdHeader, loginUserToken, password, sessionCookie, signUp, startSession, uniqueEmail } from "../support/users.js";
import { authenticationTokenApi, sessionCookieOf } from "../authentication-token/api.js";
import { userTokenApi } from "../user-token/api.js";

const cookie = (value: string) => ({ cookie: `tessera_session=${value}` });
const allowedOrigin = "https://app.example.com";
/** The Set-Cookie that clears the session cookie, with the attributes it was set with. */
const clearedLine = "tessera_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax";

for (const store of storesUnderTest()) {
  describe(`Cookie sessions end when they should on ${store}`, function () {
    this.timeout(30_000);
    const clock = new ManualClock(Date.now());
    let server: TestServer;
    before(async () => (server = await startTestServer({ store, clock, env: { TESSERA_SESSION_COOKIE_TTL_SECONDS: "86400", TESSERA_CORS_ORIGINS: allowedOrigin } })));
    after(() => server.close());

    /** A user with a user token, and a browser cookie session of theirs. */
    async function browserSession(): Promise<{ userId: string; userToken: string; value: string }> {
      const email = uniqueEmail("cookie");
      const user = await signUp(server, email);
      const userToken = await loginUserToken(server, email);
      const handOff = (await rest(server.url, "GET", "/api/authenticationtoken", { headers: bearer(userToken) })).body.token as string;
      const exchanged = await rest(server.url, "GET", `/api/authenticationtoken/${handOff}/user`);
      assert.equal(exchanged.status, 200, exchanged.text);
      return { userId: user.id, userToken, value: sessionCookieOf(exchanged.headers)!.value };
    }

    const stillLive = async (value: string) => (await rest(server.url, "GET", "/api/authenticationtoken", { headers: cookie(value) })).status;

    /** A new browser's cookie session, exchanged from a token made with `headers` (any user credential). */
    async function exchangedWith(headers: Record<string, string>): Promise<string> {
      const made = await rest(server.url, "GET", "/api/authenticationtoken", { headers });
      assert.equal(made.status, 200, made.text);
      const exchanged = await rest(server.url, "GET", `/api/authenticationtoken/${made.body.token as string}/user`);
      assert.equal(exchanged.status, 200, exchanged.text);
      return sessionCookieOf(exchanged.headers)!.value;
    }

    /** The answer to a cookie session that has ended with the credential it came from: as after its logout. */
    const endedWithItsSource = async (value: string) => {
      const refused = await rest(server.url, "GET", "/api/authenticationtoken", { headers: cookie(value) });
      assert.equal(refused.status, 401, refused.text);
      assert.equal(refused.body.code, "unauthenticated");
      assert.equal(refused.body.message, "session cookie is disabled");
      assert.equal(refused.body.details[0].debug.reason, "TOKEN_REVOKED");
    };

    describe("a cookie session never outlives the credential it came from (README, Cookie sessions)", () => {
      it("POST /auth/logout of the user token it came from ends it: 401 TOKEN_REVOKED", async () => {
        const { userToken, value } = await browserSession();
        assert.equal(await stillLive(value), 200);
        assert.equal((await rest(server.url, "POST", "/auth/logout", { headers: bearer(userToken) })).status, 200);
        await endedWithItsSource(value);
      });

      it("DELETE /session of the seed 000 session it came from ends it: 401 TOKEN_REVOKED", async () => {
        const email = uniqueEmail("cookie");
        await signUp(server, email);
        const { access_token } = await startSession(server, email);
        const value = await exchangedWith({ ...bearer(access_token), ...clientIdHeader });
        assert.equal(await stillLive(value), 200);
        const ended = await rest(server.url, "DELETE", "/session", { headers: { ...bearer(access_token), ...clientIdHeader } });
        assert.equal(ended.status, 200, ended.text);
        await endedWithItsSource(value);
      });

      it("the logout of the cookie session a token was made from ends the session its exchange started, and what that one started", async () => {
        const { value: first } = await browserSession();
        const second = await exchangedWith(cookie(first));
        const third = await exchangedWith(cookie(second));
        assert.equal(await stillLive(third), 200);
        assert.equal((await rest(server.url, "POST", "/auth/logout", { headers: cookie(first) })).status, 200);
        await endedWithItsSource(second);
        await endedWithItsSource(third);
      });

      // Each use of a cookie session reads every credential it descends from, one more with each
      // exchange from a cookie session: unbounded, one user's chain of exchanges made each of
      // their calls cost the store as many reads as they liked.
      it("descends from 16 credentials at most: a token made from a cookie session 16 deep is not exchanged (404, as a dead token)", async () => {
        let value = (await browserSession()).value;
        for (let depth = 2; depth <= 16; depth++) value = await exchangedWith(cookie(value));
        assert.equal(await stillLive(value), 200);
        const made = await rest(server.url, "GET", "/api/authenticationtoken", { headers: cookie(value) });
        assert.equal(made.status, 200, made.text);
        const refused = await rest(server.url, "GET", `/api/authenticationtoken/${made.body.token as string}/user`);
        assert.equal(refused.status, 404, refused.text);
        assert.deepEqual([refused.body.code, refused.body.message, refused.body.details[0].debug.reason], [
          "not_found",
          "authentication token not found (unknown, used or expired)",
          "TOKEN_NOT_FOUND",
        ]);
        assert.equal(sessionCookieOf(refused.headers), undefined);
      });
    });

    // `tessera_session=` (the cookie with an empty value: another host of the domain can set
    // it) is presented, and no session: answered as any value that is none, never as a request
    // without the cookie.
    it("an empty tessera_session is answered as a malformed one: 401 INVALID_TOKEN on GET /api/authenticationtoken, with no bearer token", async () => {
      for (const value of ["", "nope"]) {
        const refused = await rest(server.url, "GET", "/api/authenticationtoken", { headers: cookie(value) });
        assert.equal(refused.status, 401, refused.text);
        assert.deepEqual([refused.body.code, refused.body.message, refused.body.details[0].debug.reason], ["unauthenticated", "invalid session cookie", "INVALID_TOKEN"], JSON.stringify(value));
      }
      // A bearer token goes before the cookie, empty or not.
      const { userToken } = await browserSession();
      assert.equal((await rest(server.url, "GET", "/api/authenticationtoken", { headers: { ...cookie(""), ...bearer(userToken) } })).status, 200);
    });

    // A browser that answered POST /auth/login's Basic challenge keeps sending those Basic
    // credentials to the paths under /auth/ (RFC 7617 2.2), POST /auth/logout among them. They
    // are no bearer token: the cookie beside them is the call's credential, as with no
    // Authorization header at all.
    it("Basic credentials beside the cookie are no bearer token: the cookie logs out, and makes a token (REST)", async () => {
      const email = uniqueEmail("cookie-basic");
      await signUp(server, email);
      const value = await sessionCookie(server, await loginUserToken(server, email));
      const both = { ...cookie(value), ...basic(email, password) };
      const made = await rest(server.url, "GET", "/api/authenticationtoken", { headers: both });
      assert.equal(made.status, 200, made.text);
      const out = await rest(server.url, "POST", "/auth/logout", { headers: both });
      assert.equal(out.status, 200, out.text);
      assert.deepEqual(out.body, { success: true });
      assert.deepEqual(out.headers.getSetCookie(), [clearedLine]);
      assert.equal(await stillLive(value), 401);
      // Without the cookie, Basic credentials are still refused as a scheme these methods do not take.
      for (const [method, path] of [["GET", "/api/authenticationtoken"], ["POST", "/auth/logout"]] as const) {
        const refused = await rest(server.url, method, path, { headers: basic(email, password) });
        assert.equal(refused.status, 401, refused.text);
        assert.equal(refused.body.details[0].debug.reason, "UNSUPPORTED_CREDENTIAL");
        assert.equal(refused.headers.get("www-authenticate"), "Bearer");
      }
    });

    // A subdomain may set a second `tessera_session` (cookie tossing); the browser then sends
    // both, in an order that is not the site's to choose.
    describe("a request carrying the tessera_session cookie twice is refused: 400 MALFORMED_CREDENTIAL", () => {
      const twiceMessage = "the tessera_session cookie appears more than once";
      const twice = (first: string, second: string) => ({ cookie: `tessera_session=${first}; tessera_session=${second}` });
      const refusedTwice = (answer: { status: number; text: string }) => assertBadRequest(answer, twiceMessage, "MALFORMED_CREDENTIAL");

      it("GET /api/authenticationtoken, with two sessions' cookies, one cookie twice, or two Cookie lines", async () => {
        const mine = await browserSession();
        const other = await browserSession();
        refusedTwice(await rest(server.url, "GET", "/api/authenticationtoken", { headers: twice(mine.value, other.value) }));
        refusedTwice(await rest(server.url, "GET", "/api/authenticationtoken", { headers: twice(mine.value, mine.value) }));
        // Two Cookie header lines make one cookie list (RFC 6265 5.4).
        const cookieLines = [`tessera_session=${other.value}`, `theme=dark; tessera_session=${mine.value}`];
        refusedTwice(await raw(server.url, "GET", "/api/authenticationtoken", { cookie: cookieLines }));
        assert.equal(await stillLive(mine.value), 200);
      });

      it("GET /api/authenticationtoken/{token}/user with the cookie twice leaves the link unused and sets no cookie", async () => {
        const mine = await browserSession();
        const other = await browserSession();
        const link = (await rest(server.url, "GET", "/api/authenticationtoken", { headers: bearer(mine.userToken) })).body.token as string;
        const refused = await rest(server.url, "GET", `/api/authenticationtoken/${link}/user`, { headers: twice(other.value, mine.value) });
        refusedTwice(refused);
        assert.equal(sessionCookieOf(refused.headers), undefined, "no Set-Cookie");
        const exchanged = await rest(server.url, "GET", `/api/authenticationtoken/${link}/user`, { headers: cookie(mine.value) });
        assert.equal(exchanged.status, 200, exchanged.text);
      });

      for (const protocol of protocols) {
        it(`POST /auth/logout with the cookie twice ends neither session (${protocol})`, async () => {
          const userTokens = userTokenApi(protocol, server.url);
          try {
            const mine = await browserSession();
            const other = await browserSession();
            const refused = await userTokens.logout(twice(mine.value, other.value));
            expectCode(refused, "invalid_argument", twiceMessage, "MALFORMED_CREDENTIAL");
            assert.deepEqual(refused.headers.getSetCookie(), [], "neither cookie is taken: none is cleared");
            assert.equal(await stillLive(mine.value), 200);
            assert.equal(await stillLive(other.value), 200);
          } finally {
            userTokens.close();
          }
        });
      }
    });

    // SameSite=Lax keeps the cookie off a cross-site POST, not off one from another origin of
    // the same site (a sibling subdomain's page, a form that needs no preflight): the logout
    // checks where the page that sent it comes from.
    describe("a logout with the cookie from another origin's page is refused: 403 ORIGIN_NOT_ALLOWED, the session lives on", () => {
      const crossOrigin = "the tessera_session cookie is not accepted on a POST from another origin's page: only from this server's own origin or one TESSERA_CORS_ORIGINS lists";
      // The cookie is left as it is: a page of another origin cannot log the user out, and
      // clearing the cookie would.
      const refusedCrossOrigin = (answer: RestResponse) => {
        expectCode(restOutcome(answer), "permission_denied", crossOrigin, "ORIGIN_NOT_ALLOWED");
        assert.deepEqual(answer.headers.getSetCookie(), [], "no Set-Cookie");
      };

      for (const protocol of protocols) {
        it(`from a sibling origin of the same site (${protocol})`, async () => {
          const userTokens = userTokenApi(protocol, server.url);
          try {
            const { value } = await browserSession();
            const sibling = { ...cookie(value), origin: "https://evil.example.com", "sec-fetch-site": "same-site" };
            const refused = await userTokens.logout(sibling);
            expectCode(refused, "permission_denied", crossOrigin, "ORIGIN_NOT_ALLOWED");
            assert.deepEqual(refused.headers.getSetCookie(), [], "the cookie is kept: no Set-Cookie");
            assert.equal(await stillLive(value), 200);
            // Nor is a dead session's cookie cleared by another origin's page.
            expectOk(await userTokens.logout(cookie(value)));
            const dead = await userTokens.logout(sibling);
            expectCode(dead, "permission_denied", crossOrigin, "ORIGIN_NOT_ALLOWED");
            assert.deepEqual(dead.headers.getSetCookie(), [], "a dead session's cookie is kept too: no Set-Cookie");
          } finally {
            userTokens.close();
          }
        });
      }

      it("REST: a form post or a text/plain one (no preflight), with an Origin alone, a null Origin, or Sec-Fetch-Site alone", async () => {
        const { value } = await browserSession();
        const form = { "content-type": "application/x-www-form-urlencoded" };
        const text = { "content-type": "text/plain" };
        refusedCrossOrigin(await rest(server.url, "POST", "/auth/logout", { headers: { ...cookie(value), ...form, origin: "https://evil.example.com" }, body: "a=b" }));
        refusedCrossOrigin(await rest(server.url, "POST", "/auth/logout", { headers: { ...cookie(value), ...text, origin: "http://evil.example.com:8080" }, body: "{}" }));
        refusedCrossOrigin(await rest(server.url, "POST", "/auth/logout", { headers: { ...cookie(value), ...form, origin: "null" }, body: "a=b" }));
        refusedCrossOrigin(await rest(server.url, "POST", "/auth/logout", { headers: { ...cookie(value), ...text, "sec-fetch-site": "cross-site" }, body: "{}" }));
        assert.equal(await stillLive(value), 200);
        // A bearer token is no cookie a browser adds by itself: a page of any origin may log it out.
        const { userToken } = await browserSession();
        const byBearer = await rest(server.url, "POST", "/auth/logout", { headers: { ...bearer(userToken), origin: "https://evil.example.com", "sec-fetch-site": "cross-site" } });
        assert.equal(byBearer.status, 200, byBearer.text);
      });

      it("REST: from this server's own origin, or one TESSERA_CORS_ORIGINS lists, the logout ends the session", async () => {
        const own = await browserSession();
        const ownOrigin = new URL(server.url).origin;
        const fromOwn = await rest(server.url, "POST", "/auth/logout", { headers: { ...cookie(own.value), origin: ownOrigin, "sec-fetch-site": "same-origin" } });
        assert.equal(fromOwn.status, 200, fromOwn.text);
        assert.equal(await stillLive(own.value), 401);
        // A browser that sends no Sec-Fetch-Site: its Origin names this server.
        const older = await browserSession();
        const fromOlder = await rest(server.url, "POST", "/auth/logout", { headers: { ...cookie(older.value), origin: ownOrigin } });
        assert.equal(fromOlder.status, 200, fromOlder.text);
        assert.equal(await stillLive(older.value), 401);
        const listed = await browserSession();
        const fromListed = await rest(server.url, "POST", "/auth/logout", { headers: { ...cookie(listed.value), origin: allowedOrigin, "sec-fetch-site": "same-site" } });
        assert.equal(fromListed.status, 200, fromListed.text);
        assert.equal(await stillLive(listed.value), 401);
      });

      // A proxy in front that ends TLS may write the port into Host ("$host:$server_port"):
      // "auth.example.com:443" is the host and port of the page https://auth.example.com, whose
      // Origin a browser writes without its default port. Not of http://auth.example.com.
      it("REST: a Host that writes out the default port of its Origin's scheme is that origin's (a browser that sends no Sec-Fetch-Site)", async () => {
        // [Origin, Host, whether the logout is taken]
        const cases: [string, string, boolean][] = [
          ["https://auth.example.com", "auth.example.com:443", true],
          ["http://auth.example.com", "auth.example.com:80", true],
          ["https://[2001:db8::1]", "[2001:db8::1]:443", true],
          ["http://auth.example.com", "auth.example.com:443", false],
          ["https://auth.example.com:8443", "auth.example.com:443", false],
          ["https://auth.example.com", "auth.example.com:8443", false],
        ];
        for (const [origin, host, taken] of cases) {
          const { value } = await browserSession();
          // node:http, which sends the Host it is given (fetch writes its own).
          const answer = await raw(server.url, "POST", "/auth/logout", { ...cookie(value), origin, host });
          assert.equal(answer.status, taken ? 200 : 403, `${origin} with Host ${host}: ${answer.text}`);
          if (!taken) assert.equal((JSON.parse(answer.text) as { details: [{ debug: { reason: string } }] }).details[0].debug.reason, "ORIGIN_NOT_ALLOWED");
          assert.equal(await stillLive(value), taken ? 401 : 200);
        }
      });

      describe("behind a proxy that rewrites Host: TESSERA_PUBLIC_URL's origin is the server's own", () => {
        const publicOrigin = "https://auth.example.com";
        let proxied: TestServer;
        before(async () => (proxied = await startTestServer({ store, env: { TESSERA_PUBLIC_URL: publicOrigin } })));
        after(() => proxied.close());

        it("REST: a logout from a page of that origin (a browser that sends no Sec-Fetch-Site) ends the session", async () => {
          const email = uniqueEmail("cookie");
          await signUp(proxied, email);
          const value = await sessionCookie(proxied, await loginUserToken(proxied, email));
          refusedCrossOrigin(await rest(proxied.url, "POST", "/auth/logout", { headers: { ...cookie(value), origin: "https://evil.example.com" } }));
          const fromPublic = await rest(proxied.url, "POST", "/auth/logout", { headers: { ...cookie(value), origin: publicOrigin } });
          assert.equal(fromPublic.status, 200, fromPublic.text);
        });

        it("REST: a page of that host over http is another origin, also when the proxy passes that Host on: 403 ORIGIN_NOT_ALLOWED", async () => {
          const email = uniqueEmail("cookie");
          await signUp(proxied, email);
          const value = await sessionCookie(proxied, await loginUserToken(proxied, email));
          // node:http, which sends the Host it is given (fetch writes its own).
          const answer = await raw(proxied.url, "POST", "/auth/logout", { ...cookie(value), origin: "http://auth.example.com", host: "auth.example.com" });
          assert.equal(answer.status, 403, answer.text);
          assert.equal((JSON.parse(answer.text) as { details: [{ debug: { reason: string } }] }).details[0].debug.reason, "ORIGIN_NOT_ALLOWED");
          assert.equal((await rest(proxied.url, "GET", "/api/authenticationtoken", { headers: cookie(value) })).status, 200);
        });
      });

      // Served over https (here TESSERA_COOKIE_SECURE=true: a proxy in front ends TLS), the
      // server's own origin is https://<Host>: a page of http://<Host> (the same host name over
      // plain http, which a network attacker can write) is another origin, though SameSite=Lax
      // lets its POST carry the cookie in a browser that does not tell schemes apart.
      describe("served over https: a page of the same host over http is another origin (a browser that sends no Sec-Fetch-Site)", () => {
        let secure: TestServer;
        before(async () => (secure = await startTestServer({ store, env: { TESSERA_COOKIE_SECURE: "true" } })));
        after(() => secure.close());

        it("REST: refused 403 ORIGIN_NOT_ALLOWED, the session lives on; the https page of that host logs out", async () => {
          const email = uniqueEmail("cookie");
          await signUp(secure, email);
          const value = await sessionCookie(secure, await loginUserToken(secure, email));
          const live = async () => (await rest(secure.url, "GET", "/api/authenticationtoken", { headers: cookie(value) })).status;
          for (const [origin, host] of [
            ["http://auth.example.com", "auth.example.com"],
            ["http://auth.example.com", "auth.example.com:80"],
            [`http://${new URL(secure.url).host}`, new URL(secure.url).host],
          ]) {
            // node:http, which sends the Host it is given (fetch writes its own).
            const answer = await raw(secure.url, "POST", "/auth/logout", { ...cookie(value), origin, host });
            assert.equal(answer.status, 403, `${origin} with Host ${host}: ${answer.text}`);
            const body = JSON.parse(answer.text) as { code: string; message: string; details: [{ debug: { reason: string } }] };
            assert.deepEqual([body.code, body.message, body.details[0].debug.reason], ["permission_denied", crossOrigin, "ORIGIN_NOT_ALLOWED"]);
            assert.equal(await live(), 200, `${origin} with Host ${host}`);
          }
          const fromHttps = await raw(secure.url, "POST", "/auth/logout", { ...cookie(value), origin: "https://auth.example.com", host: "auth.example.com" });
          assert.equal(fromHttps.status, 200, fromHttps.text);
          assert.deepEqual(fromHttps.headers["set-cookie"], [`${clearedLine}; Secure`]);
          assert.equal(await live(), 401);
          // Logged out already: 401, and the cookie cleared with the attributes it was set with.
          const again = await raw(secure.url, "POST", "/auth/logout", { ...cookie(value), origin: "https://auth.example.com", host: "auth.example.com" });
          assert.equal(again.status, 401, again.text);
          assert.equal((JSON.parse(again.text) as { details: [{ debug: { reason: string } }] }).details[0].debug.reason, "TOKEN_REVOKED");
          assert.deepEqual(again.headers["set-cookie"], [`${clearedLine}; Secure`]);
        });
      });

      // TESSERA_CORS_ORIGINS takes an origin written with a trailing "/", and CORS lets that
      // origin's pages call: so does the cookie logout.
      describe("an origin TESSERA_CORS_ORIGINS lists with a trailing slash", () => {
        let slashed: TestServer;
        before(async () => (slashed = await startTestServer({ store, env: { TESSERA_CORS_ORIGINS: `${allowedOrigin}/` } })));
        after(() => slashed.close());

        it("REST: a logout from a page of that origin ends the session", async () => {
          const email = uniqueEmail("cookie");
          await signUp(slashed, email);
          const value = await sessionCookie(slashed, await loginUserToken(slashed, email));
          const fromListed = await rest(slashed.url, "POST", "/auth/logout", { headers: { ...cookie(value), origin: allowedOrigin, "sec-fetch-site": "same-site" } });
          assert.equal(fromListed.status, 200, fromListed.text);
          assert.equal((await rest(slashed.url, "GET", "/api/authenticationtoken", { headers: cookie(value) })).status, 401);
        });
      });
    });

    // A logout is the call whose purpose is to end the browser's session: one refused because the
    // session has already ended (expired, logged out, ended with the credential it came from), or
    // whose cookie is no session at all, answers as documented and clears the cookie all the same.
    describe("a cookie logout of a session that has ended clears the cookie: the documented 401, and Set-Cookie with Max-Age=0", () => {
      for (const protocol of protocols) {
        it(`a malformed value, an unknown session, a logged-out one, one ended with its source, an expired one (${protocol})`, async () => {
          const userTokens = userTokenApi(protocol, server.url);
          try {
            const refusedAndCleared = async (value: string, message: string, reason: string) => {
              const out = await userTokens.logout(cookie(value));
              expectCode(out, "unauthenticated", message, reason);
              assert.deepEqual(out.headers.getSetCookie(), [clearedLine], `${reason}: the cookie is cleared`);
            };
            await refusedAndCleared("nope", "invalid session cookie", "INVALID_TOKEN");
            // An empty value is no session either (a value that is none at all).
            await refusedAndCleared("", "invalid session cookie", "INVALID_TOKEN");
            await refusedAndCleared(randomBytes(32).toString("base64url"), "invalid session cookie", "INVALID_TOKEN");
            const loggedOut = await browserSession();
            expectOk(await userTokens.logout(cookie(loggedOut.value)));
            await refusedAndCleared(loggedOut.value, "session cookie is disabled", "TOKEN_REVOKED");
            const endedWithSource = await browserSession();
            expectOk(await userTokens.logout(bearer(endedWithSource.userToken)));
            await refusedAndCleared(endedWithSource.value, "session cookie is disabled", "TOKEN_REVOKED");
            const expired = await browserSession();
            clock.advance(86_400_000);
            await refusedAndCleared(expired.value, "session cookie has expired", "TOKEN_EXPIRED");
            // A user token's logout, refused or not, leaves the cookie alone.
            const bearerLogout = await userTokens.logout(bearer(loggedOut.userToken));
            expectOk(bearerLogout);
            assert.deepEqual(bearerLogout.headers.getSetCookie(), []);
            const bearerRefused = await userTokens.logout(bearer(loggedOut.userToken));
            expectCode(bearerRefused, "unauthenticated", "user token is disabled", "TOKEN_REVOKED");
            assert.deepEqual(bearerRefused.headers.getSetCookie(), []);
          } finally {
            userTokens.close();
          }
        });
      }

      // gRPC-Web: the status is in the body's trailer envelope, which a browser does not read as
      // headers: the Set-Cookie is in the answer's HTTP headers, in binary mode (answered by
      // Tessera's unary path) and in text mode (by connect-es's gRPC-Web handler) alike.
      for (const [mode, contentType, body] of [
        ["binary", "application/grpc-web+proto", grpcFrame(new Uint8Array())],
        ["text", "application/grpc-web-text", grpcFrame(new Uint8Array()).toString("base64")],
      ] as const) {
        it(`gRPC-Web (${mode}): the Set-Cookie is an HTTP header of the answer, grpc-status 16 in its trailer`, async () => {
          const { value } = await browserSession();
          const logout = () =>
            fetch(`${server.url}/tessera.usertoken.v1.UserTokenService/Logout`, {
              method: "POST",
              headers: { ...cookie(value), "content-type": contentType, "x-grpc-web": "1" },
              body,
            });
          const first = await logout();
          assert.equal(first.status, 200);
          await first.arrayBuffer();
          assert.deepEqual(first.headers.getSetCookie(), [clearedLine]);
          const again = await logout();
          assert.equal(again.status, 200);
          const text = Buffer.from(await again.arrayBuffer());
          // Text mode: base64 segments, each padded.
          const segments = (text.toString("latin1").match(/[^=]*=*/g) ?? []).filter((segment) => segment !== "");
          const trailer = grpcWebTrailer(mode === "text" ? Buffer.concat(segments.map((segment) => Buffer.from(segment, "base64"))) : text);
          assert.deepEqual([trailer["grpc-status"], decodeURIComponent(trailer["grpc-message"] ?? ""), trailer["set-cookie"]], ["16", "session cookie is disabled", undefined]);
          assert.deepEqual(again.headers.getSetCookie(), [clearedLine]);
        });
      }
    });

    for (const protocol of protocols) {
      it(`POST /auth/logout with the cookie ends the cookie session and clears the cookie (${protocol})`, async () => {
        const userTokens = userTokenApi(protocol, server.url);
        try {
          const { userToken, value } = await browserSession();
          const out = await userTokens.logout(cookie(value));
          assert.deepEqual(expectOk(out), { success: true });
          const cleared = sessionCookieOf(out.headers);
          assert.ok(cleared, "the answer clears the cookie");
          assert.equal(cleared.value, "");
          assert.equal(cleared.attributes.get("max-age"), "0");
          assert.equal(await stillLive(value), 401);
          expectCode(await userTokens.logout(cookie(value)), "unauthenticated", "session cookie is disabled", "TOKEN_REVOKED");
          // The user token the session came from is another credential: it lives on.
          expectOk(await userTokens.bump(bearer(userToken)));
        } finally {
          userTokens.close();
        }
      });

      it(`exchanging again from the cookie never extends the session past the first one's end (${protocol})`, async () => {
        const authTokens = authenticationTokenApi(protocol, server.url);
        try {
          const { value } = await browserSession();
          clock.advance(20 * 3600_000);
          const fromCookie = (await rest(server.url, "GET", "/api/authenticationtoken", { headers: cookie(value) })).body.token as string;
          // Another browser (no cookie) exchanges the token made from the cookie session.
          const second = await authTokens.exchangeToken(fromCookie);
          expectOk(second);
          const next = sessionCookieOf(second.headers)!;
          assert.equal(next.attributes.get("max-age"), String(4 * 3600), "what is left of the first session, not a new day");
          clock.advance(4 * 3600_000 - 1000);
          assert.equal(await stillLive(next.value), 200);
          clock.advance(1000);
          assert.equal(await stillLive(next.value), 401);
          assert.equal(await stillLive(value), 401);
        } finally {
          authTokens.close();
        }
      });

      it(`TESSERA_USER_TOKEN_RETENTION_DAYS (30) after it expired, housekeeping deletes a cookie session: INVALID_TOKEN; one expired less long ago still TOKEN_EXPIRED (${protocol})`, async () => {
        const userTokens = userTokenApi(protocol, server.url);
        try {
          const hour = 3600_000;
          const longAgo = await browserSession(); // ends 24 h from now
          clock.advance(12 * hour);
          const lately = await browserSession(); // ends 36 h from now
          // 30 days and 6 h past the first one's end; 30 days less 6 h past the second's.
          clock.advance(30 * 24 * hour + 18 * hour);
          const expired = async (value: string) => expectCode(await userTokens.logout(cookie(value)), "unauthenticated", "session cookie has expired", "TOKEN_EXPIRED");
          await expired(longAgo.value);
          await expired(lately.value);
          await new Housekeeping({ store: server.tessera.store, clock, logger: createLogger("silent"), userTokenRetentionDays: server.config.userTokenRetentionDays }).runOnce();
          expectCode(await userTokens.logout(cookie(longAgo.value)), "unauthenticated", "invalid session cookie", "INVALID_TOKEN");
          await expired(lately.value);
        } finally {
          userTokens.close();
        }
      });

      it(`a link of another user is refused in a browser holding a live session: 409, cookie kept, link unused (${protocol})`, async () => {
        const authTokens = authenticationTokenApi(protocol, server.url);
        try {
          const victim = await browserSession();
          const attacker = await browserSession();
          const link = expectOk(await authTokens.createToken(bearer(attacker.userToken))).token;
          const refused = await authTokens.exchangeToken(link, cookie(victim.value));
          expectCode(refused, "already_exists", "the browser holds a session of another user: log out first", "OTHER_USER_SESSION");
          assert.equal(sessionCookieOf(refused.headers), undefined, "no Set-Cookie");
          const mine = await rest(server.url, "GET", "/api/authenticationtoken", { headers: cookie(victim.value) });
          assert.equal(mine.body.user, victim.userId, "the browser is still the victim's");
          // A stale cookie is no session: the exchange then starts one.
          const loggedOut = await rest(server.url, "POST", "/auth/logout", { headers: cookie(victim.value) });
          assert.equal(loggedOut.status, 200, loggedOut.text);
          const after = await authTokens.exchangeToken(link, cookie(victim.value));
          assert.equal(expectOk(after)._id, attacker.userId);
          assert.ok(sessionCookieOf(after.headers)?.value);
        } finally {
          authTokens.close();
        }
      });
    }
  });
}
