// Seed 003 over REST: GET /api/authenticationtoken, /{token} and /{token}/user as the document
// shows them, with every user credential of the service (seed 002 user token, seed 000 session
// access token, seed 004 JWT, the session cookie), expiry exact to the second with an injected
// clock, single use under concurrency, and the cookie's attributes and scope.
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import type { UserRecord } from "../../src/store/ports.js";
import { rest, type RestResponse } from "../support/clients.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import {
  apiToken,
  assertError,
  bearer,
  createNamedUser,
  createUser,
  jwtAccessToken,
  loginToken,
  sessionAccessToken,
} from "../user-token/support.js";

const iso8601 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const tokenShape = /^[A-Za-z0-9_-]{32}$/;

/** The `tessera_session` cookie of a response: its value and attributes (lower-cased names). */
function sessionCookieOf(res: RestResponse): { value: string; attributes: Map<string, string> } | undefined {
  const line = res.headers.getSetCookie().find((c) => c.startsWith("tessera_session="));
  if (!line) return undefined;
  const [pair, ...attrs] = line.split(";").map((p) => p.trim());
  const attributes = new Map<string, string>();
  for (const a of attrs) {
    const eq = a.indexOf("=");
    attributes.set((eq < 0 ? a : a.slice(0, eq)).toLowerCase(), eq < 0 ? "" : a.slice(eq + 1));
  }
  return { value: pair.slice("tessera_session=".length), attributes };
}

const cookie = (value: string) => ({ cookie: `tessera_session=${value}` });

for (const store of storesUnderTest()) {
  describe(`AuthenticationTokenService over REST (${store})`, function () {
    let server: TestServer;
    const clock = new ManualClock(Date.parse("2026-05-01T09:30:00.250Z"));
    before(async () => {
      server = await startTestServer({ store, clock });
    });
    after(async () => {
      await server?.close();
    });

    const get = (path: string, headers: Record<string, string> = {}) => rest(server.url, "GET", path, { headers });

    /** A seed 000 user with a seed 002 user token. */
    async function userWithToken(): Promise<{ user: UserRecord; token: string }> {
      const user = await createUser(server);
      return { user, token: await loginToken(server, user.login) };
    }

    async function createToken(headers: Record<string, string>): Promise<{ token: string; ttl: number; user: string; created_at: string }> {
      const res = await get("/api/authenticationtoken", headers);
      assert.equal(res.status, 200, res.text);
      return res.body;
    }

    describe("GET /api/authenticationtoken", () => {
      it("answers {token, ttl: 60, user, created_at} for a seed 002 user token", async () => {
        const { user, token } = await userWithToken();
        const res = await get("/api/authenticationtoken", bearer(token));
        assert.equal(res.status, 200, res.text);
        assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
        assert.equal(res.headers.get("cache-control"), "no-store");
        assert.deepEqual(Object.keys(res.body).sort(), ["created_at", "token", "ttl", "user"]);
        assert.match(res.body.token, tokenShape);
        assert.equal(res.body.ttl, 60);
        assert.equal(res.body.user, user.id);
        assert.match(res.body.created_at, iso8601);
        assert.equal(Date.parse(res.body.created_at), clock.now().getTime());
      });

      it("accepts a seed 000 session access token (with its x-koms-clientid)", async () => {
        const user = await createUser(server);
        const access = await sessionAccessToken(server, user.login);
        const body = await createToken({ ...bearer(access), "x-koms-clientid": testClientId });
        assert.equal(body.user, user.id);
        const res = await get("/api/authenticationtoken", bearer(access));
        assertError(res, 401, "unauthenticated"); // without the client id it is read as a seed 004 JWT
      });

      it("accepts a seed 004 JWT access token", async () => {
        const { user, token } = await jwtAccessToken(server);
        const body = await createToken(bearer(token));
        const stored = await server.tessera.store.users.findByLogin(user);
        assert.equal(body.user, stored?.id);
      });

      it("gives 401 without a credential, or with an unknown, malformed, API or logged-out token", async () => {
        const none = await get("/api/authenticationtoken");
        assertError(none, 401, "unauthenticated");
        assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
        assertError(await get("/api/authenticationtoken", bearer("b94cf5c7-cddc-4610-9d4c-6b8e04088ae8")), 401, "unauthenticated");
        assertError(await get("/api/authenticationtoken", bearer("a.b.c")), 401, "unauthenticated");
        assertError(await get("/api/authenticationtoken", { authorization: "Basic Zm9vOmJhcg==" }), 401, "unauthenticated");
        assertError(await get("/api/authenticationtoken", bearer(await apiToken(server))), 401, "unauthenticated");
        const { token } = await userWithToken();
        assert.equal((await rest(server.url, "POST", "/auth/logout", { headers: bearer(token) })).status, 200);
        assertError(await get("/api/authenticationtoken", bearer(token)), 401, "unauthenticated");
      });

      it("honours TESSERA_AUTHENTICATION_TOKEN_TTL_SECONDS", async () => {
        const short = await startTestServer({ store, clock, env: { TESSERA_AUTHENTICATION_TOKEN_TTL_SECONDS: "5" } });
        try {
          const user = await createUser(short);
          const token = await loginToken(short, user.login);
          const res = await rest(short.url, "GET", "/api/authenticationtoken", { headers: bearer(token) });
          assert.equal(res.body.ttl, 5);
          clock.advance(4_999);
          assert.equal((await rest(short.url, "GET", `/api/authenticationtoken/${res.body.token}`, { headers: bearer(token) })).status, 200);
          clock.advance(1);
          assert.equal((await rest(short.url, "GET", `/api/authenticationtoken/${res.body.token}`, { headers: bearer(token) })).status, 404);
        } finally {
          await short.close();
        }
      });
    });

    describe("GET /api/authenticationtoken/{token}", () => {
      it("answers the same object while unexpired, and 404 from created_at + ttl on (checked on read)", async () => {
        const { token } = await userWithToken();
        const created = await createToken(bearer(token));
        clock.advance(59_999);
        const res = await get(`/api/authenticationtoken/${created.token}`, bearer(token));
        assert.equal(res.status, 200, res.text);
        assert.equal(res.headers.get("cache-control"), "no-store");
        assert.deepEqual(res.body, created);
        clock.advance(1);
        const expired = await get(`/api/authenticationtoken/${created.token}`, bearer(token));
        assertError(expired, 404, "not_found", /not found/);
        // Still in the store (no background cleanup decides expiry): only the read refuses it.
        assert.equal((await get(`/api/authenticationtoken/${created.token}/user`)).status, 404);
      });

      it("gives 404 for an unknown token and for another user's token", async () => {
        const alice = await userWithToken();
        const bob = await userWithToken();
        assertError(await get("/api/authenticationtoken/132427377339939930", bearer(alice.token)), 404, "not_found");
        const alices = await createToken(bearer(alice.token));
        assertError(await get(`/api/authenticationtoken/${alices.token}`, bearer(bob.token)), 404, "not_found");
        assert.equal((await get(`/api/authenticationtoken/${alices.token}`, bearer(alice.token))).status, 200);
      });

      it("gives 404 once the token has been exchanged", async () => {
        const { token } = await userWithToken();
        const created = await createToken(bearer(token));
        assert.equal((await get(`/api/authenticationtoken/${created.token}/user`)).status, 200);
        assertError(await get(`/api/authenticationtoken/${created.token}`, bearer(token)), 404, "not_found");
      });

      it("gives 400 for a malformed token and 401 without a credential", async () => {
        const { token } = await userWithToken();
        assertError(await get(`/api/authenticationtoken/${encodeURIComponent("not a token!")}`, bearer(token)), 400, "invalid_argument", /token is malformed/);
        assertError(await get(`/api/authenticationtoken/${"a".repeat(129)}`, bearer(token)), 400, "invalid_argument", /token is malformed/);
        const created = await createToken(bearer(token));
        assertError(await get(`/api/authenticationtoken/${created.token}`), 401, "unauthenticated");
      });
    });

    describe("GET /api/authenticationtoken/{token}/user", () => {
      it("needs no credential, answers {_id, emails} (absent names left out) and sets the session cookie", async () => {
        const { user, token } = await userWithToken();
        const created = await createToken(bearer(token));
        const res = await get(`/api/authenticationtoken/${created.token}/user`);
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body, { _id: user.id, emails: [user.login] });
        assert.equal(res.headers.get("cache-control"), "no-store");
        const c = sessionCookieOf(res);
        assert.ok(c, "sets tessera_session");
        assert.match(c.value, /^[A-Za-z0-9_-]{43}$/);
        assert.equal(c.attributes.get("path"), "/");
        assert.equal(c.attributes.get("max-age"), "86400");
        assert.ok(c.attributes.has("httponly"));
        assert.equal(c.attributes.get("samesite"), "Lax");
        assert.ok(!c.attributes.has("secure"), "not Secure over plain HTTP");
        assert.ok(!server.logs.join("\n").includes(c.value), "cookie value not logged");
      });

      it("answers firstname and lastname when the user has them", async () => {
        const named = await createNamedUser(server, { firstname: "John", lastname: "Doe" }, clock.now());
        const token = await loginToken(server, named.login);
        const created = await createToken(bearer(token));
        const res = await get(`/api/authenticationtoken/${created.token}/user`);
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body, { _id: named.id, firstname: "John", lastname: "Doe", emails: named.emails });
        const onlyFirst = await createNamedUser(server, { firstname: "Ann" }, clock.now());
        const t2 = await createToken(bearer(await loginToken(server, onlyFirst.login)));
        assert.deepEqual((await get(`/api/authenticationtoken/${t2.token}/user`)).body, { _id: onlyFirst.id, firstname: "Ann", emails: onlyFirst.emails });
      });

      it("is single use: a second exchange is 404", async () => {
        const { token } = await userWithToken();
        const created = await createToken(bearer(token));
        assert.equal((await get(`/api/authenticationtoken/${created.token}/user`)).status, 200);
        const again = await get(`/api/authenticationtoken/${created.token}/user`);
        assertError(again, 404, "not_found");
        assert.equal(sessionCookieOf(again), undefined);
      });

      it("of several concurrent exchanges of one token, exactly one succeeds", async () => {
        const { token } = await userWithToken();
        for (let round = 0; round < 3; round++) {
          const created = await createToken(bearer(token));
          const answers = await Promise.all(Array.from({ length: 6 }, () => get(`/api/authenticationtoken/${created.token}/user`)));
          const statuses = answers.map((a) => a.status).sort();
          assert.deepEqual(statuses, [200, 404, 404, 404, 404, 404]);
          assert.equal(answers.filter((a) => sessionCookieOf(a) !== undefined).length, 1);
        }
      });

      it("gives 404 for an unknown or expired token, 400 for a malformed one", async () => {
        assertError(await get("/api/authenticationtoken/929838839992882892/user"), 404, "not_found");
        const { token } = await userWithToken();
        const created = await createToken(bearer(token));
        clock.advance(60_000);
        const expired = await get(`/api/authenticationtoken/${created.token}/user`);
        assertError(expired, 404, "not_found");
        assert.equal(sessionCookieOf(expired), undefined);
        assertError(await get(`/api/authenticationtoken/${encodeURIComponent("bad token")}/user`), 400, "invalid_argument");
      });

      it("gives 404 (and no session) for a deactivated user", async () => {
        const { user, token } = await userWithToken();
        const created = await createToken(bearer(token));
        await server.tessera.store.users.deactivate(user.id, clock.now());
        const res = await get(`/api/authenticationtoken/${created.token}/user`);
        assertError(res, 404, "not_found");
        assert.equal(sessionCookieOf(res), undefined);
      });
    });

    describe("the session cookie", () => {
      async function exchange(headers: Record<string, string> = {}): Promise<{ user: UserRecord; res: RestResponse }> {
        const { user, token } = await userWithToken();
        const created = await createToken(bearer(token));
        const res = await get(`/api/authenticationtoken/${created.token}/user`, headers);
        assert.equal(res.status, 200, res.text);
        return { user, res };
      }

      it("is a user credential on GET: it can create and read authentication tokens", async () => {
        const { user, res } = await exchange();
        const value = sessionCookieOf(res)!.value;
        const created = await createToken(cookie(value));
        assert.equal(created.user, user.id);
        const read = await get(`/api/authenticationtoken/${created.token}`, cookie(value));
        assert.deepEqual(read.body, created);
      });

      it("is not accepted on unsafe methods (a Connect POST)", async () => {
        const { res } = await exchange();
        const value = sessionCookieOf(res)!.value;
        const post = await fetch(`${server.url}/tessera.authtoken.v1.AuthenticationTokenService/CreateToken`, {
          method: "POST",
          headers: { "content-type": "application/json", ...cookie(value) },
          body: "{}",
        });
        assert.equal(post.status, 401);
        assert.equal(((await post.json()) as { code: string }).code, "unauthenticated");
      });

      it("is not a bearer token, and a user token is not a session cookie", async () => {
        const { res } = await exchange();
        const value = sessionCookieOf(res)!.value;
        assertError(await rest(server.url, "POST", "/auth/bump", { headers: bearer(value) }), 401, "unauthenticated");
        assertError(await get("/api/authenticationtoken", bearer(value)), 401, "unauthenticated");
        const { token } = await userWithToken();
        assertError(await get("/api/authenticationtoken", cookie(token)), 401, "unauthenticated");
        assertError(await get("/api/authenticationtoken", cookie("x".repeat(43))), 401, "unauthenticated");
      });

      it("expires after its Max-Age", async () => {
        const { res } = await exchange();
        const value = sessionCookieOf(res)!.value;
        clock.advance(86_400_000 - 1);
        assert.equal((await get("/api/authenticationtoken", cookie(value))).status, 200);
        clock.advance(1);
        assertError(await get("/api/authenticationtoken", cookie(value)), 401, "unauthenticated", /expired/);
      });

      it("ends when the user is deactivated", async () => {
        const { user, res } = await exchange();
        const value = sessionCookieOf(res)!.value;
        await server.tessera.store.users.deactivate(user.id, clock.now());
        assertError(await get("/api/authenticationtoken", cookie(value)), 401, "unauthenticated");
      });

      it("ends when the user's password changes", async () => {
        const { user, res } = await exchange();
        const value = sessionCookieOf(res)!.value;
        clock.advance(1);
        await server.tessera.store.users.updatePasswordHash(user.id, (await server.tessera.store.users.findById(user.id))!.passwordHash, clock.now());
        assertError(await get("/api/authenticationtoken", cookie(value)), 401, "unauthenticated", /password change/);
      });

      it("is kept (no new cookie) when the exchange request carries a valid session of the same user", async () => {
        const { user, token } = await userWithToken();
        const first = await get(`/api/authenticationtoken/${(await createToken(bearer(token))).token}/user`);
        const value = sessionCookieOf(first)!.value;
        const second = await get(`/api/authenticationtoken/${(await createToken(bearer(token))).token}/user`, cookie(value));
        assert.equal(second.status, 200);
        assert.equal(second.body._id, user.id);
        assert.equal(sessionCookieOf(second), undefined);
        // Another user's cookie is replaced by a session of the token's user.
        const other = await userWithToken();
        const third = await get(`/api/authenticationtoken/${(await createToken(bearer(other.token))).token}/user`, cookie(value));
        assert.equal(third.body._id, other.user.id);
        const replaced = sessionCookieOf(third);
        assert.ok(replaced && replaced.value !== value);
        assert.equal((await createToken(cookie(replaced.value))).user, other.user.id);
      });

      it("is Secure when TESSERA_COOKIE_SECURE=true (e.g. behind a TLS-terminating proxy)", async () => {
        const secure = await startTestServer({ store, env: { TESSERA_COOKIE_SECURE: "true" } });
        try {
          const user = await createUser(secure);
          const token = await loginToken(secure, user.login);
          const created = await rest(secure.url, "GET", "/api/authenticationtoken", { headers: bearer(token) });
          const res = await rest(secure.url, "GET", `/api/authenticationtoken/${created.body.token}/user`);
          assert.equal(res.status, 200);
          const c = sessionCookieOf(res)!;
          assert.ok(c.attributes.has("secure"));
          assert.ok(c.attributes.has("httponly"));
          assert.equal(c.attributes.get("samesite"), "Lax");
        } finally {
          await secure.close();
        }
      });
    });
  });
}
