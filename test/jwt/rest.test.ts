// Seed 004 over REST at /jwt: every documented path, in each of the document's three argument
// styles (JSON body, form body, query string), with the documented statuses and plain-text
// answers.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { argStyles, bearer, call, goodPassword, otherGoodPassword, uniqueUser, type ArgStyle } from "./support.js";

const packageVersion = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
const textPlain = "text/plain; charset=utf-8";

for (const store of storesUnderTest()) {
  describe(`JWT API over REST (${store})`, function () {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store });
    });
    after(async () => {
      await server?.close();
    });

    const jwt = (method: string, path: string, args: Record<string, string> = {}, style: ArgStyle = "json", headers: Record<string, string> = {}) =>
      call(server.url, method, `/jwt${path}`, args, { style, headers });

    async function createUser(style: ArgStyle = "json"): Promise<string> {
      const user = uniqueUser();
      const res = await jwt("POST", "/user", { user, pass: goodPassword }, style);
      assert.equal(res.status, 201, res.text);
      return user;
    }

    async function login(user: string, pass = goodPassword, style: ArgStyle = "json"): Promise<string> {
      const res = await jwt("GET", "/token", { user, pass }, style);
      assert.equal(res.status, 200, res.text);
      return res.text;
    }

    async function refreshToken(access: string): Promise<string> {
      const res = await jwt("GET", "/refresh_token", {}, "query", bearer(access));
      assert.equal(res.status, 200, res.text);
      return res.text;
    }

    for (const style of argStyles) {
      describe(`arguments as ${style}`, () => {
        it("POST /user creates a user (201); the same name again is 409; a weak password 400", async () => {
          const user = uniqueUser();
          const created = await jwt("POST", "/user", { user, pass: goodPassword }, style);
          assert.equal(created.status, 201, created.text);
          const again = await jwt("POST", "/user", { user, pass: otherGoodPassword }, style);
          assert.equal(again.status, 409);
          assert.equal(again.body.code, "already_exists");
          const weak = await jwt("POST", "/user", { user: uniqueUser(), pass: "short" }, style);
          assert.equal(weak.status, 400);
          assert.equal(weak.body.code, "invalid_argument");
          assert.match(weak.body.message, /password/i);
          const missing = await jwt("POST", "/user", { user: uniqueUser() }, style);
          assert.equal(missing.status, 400);
          assert.match(missing.body.message, /pass/);
        });

        it("GET /token with user and pass answers an access JWT as text/plain", async () => {
          const user = await createUser(style);
          const res = await jwt("GET", "/token", { user, pass: goodPassword }, style);
          assert.equal(res.status, 200, res.text);
          assert.equal(res.headers["content-type"], textPlain);
          const claims = decodeJwt(res.text);
          assert.equal(claims.user, user);
          assert.equal(claims.token_type, "access_token");
          assert.equal(claims.authentication_method, "password");
          assert.equal(claims.iss, server.config.jwtIssuer);
          assert.equal(claims.aud, server.config.jwtAudience);
          assert.equal(typeof claims.iat, "number");
          assert.equal(claims.nbf, claims.iat);
          assert.equal(claims.exp, claims.iat! + server.config.accessTokenTtlSeconds);
          const header = decodeProtectedHeader(res.text);
          assert.equal(header.alg, "EdDSA");
          assert.equal(typeof header.kid, "string");
          // A password login is the user's last login (shared with the other APIs).
          assert.ok((await server.tessera.store.users.findByLogin(user))!.lastLoginAt);
        });

        it("GET /token with a wrong password or unknown user is 401, identically", async () => {
          const user = await createUser(style);
          const wrong = await jwt("GET", "/token", { user, pass: otherGoodPassword }, style);
          const unknown = await jwt("GET", "/token", { user: uniqueUser(), pass: goodPassword }, style);
          assert.equal(wrong.status, 401);
          assert.equal(unknown.status, 401);
          assert.equal(wrong.body.message, unknown.body.message);
          const missing = await jwt("GET", "/token", { pass: goodPassword }, style);
          assert.equal(missing.status, 400);
          assert.match(missing.body.message, /user/);
          const noPass = await jwt("GET", "/token", { user }, style);
          assert.equal(noPass.status, 400);
          assert.match(noPass.body.message, /pass/);
          const badRefresh = await jwt("GET", "/token", { user: "a.b.c" }, style);
          assert.equal(badRefresh.status, 401);
        });

        it("GET /token with a refresh token as user answers an access JWT from a refresh login", async () => {
          const user = await createUser();
          const refresh = await refreshToken(await login(user));
          const res = await jwt("GET", "/token", { user: refresh }, style);
          assert.equal(res.status, 200, res.text);
          assert.equal(res.headers["content-type"], textPlain);
          const claims = decodeJwt(res.text);
          assert.equal(claims.user, user);
          assert.equal(claims.token_type, "access_token");
          assert.equal(claims.authentication_method, "refresh_token");
        });

        it("GET /check answers the claims as JSON; a refresh token or garbage is 400", async () => {
          const user = await createUser();
          const access = await login(user);
          const res = await jwt("GET", "/check", { access_token: access }, style);
          assert.equal(res.status, 200, res.text);
          assert.match(String(res.headers["content-type"]), /^application\/json/);
          assert.deepEqual(res.body, decodeJwt(access));
          const refresh = await jwt("GET", "/check", { access_token: await refreshToken(access) }, style);
          assert.equal(refresh.status, 400);
          assert.equal(refresh.body.code, "invalid_argument");
          assert.match(refresh.body.message, /not an access token/);
          const garbage = await jwt("GET", "/check", { access_token: "not-a-jwt" }, style);
          assert.equal(garbage.status, 400);
          const missing = await jwt("GET", "/check", {}, style);
          assert.equal(missing.status, 400);
          assert.match(missing.body.message, /access_token/);
        });

        it("GET /refresh_token with access_token as an argument answers a refresh JWT as text/plain", async () => {
          const user = await createUser();
          const access = await login(user);
          const res = await jwt("GET", "/refresh_token", { access_token: access }, style);
          assert.equal(res.status, 200, res.text);
          assert.equal(res.headers["content-type"], textPlain);
          const claims = decodeJwt(res.text);
          assert.equal(claims.token_type, "refresh_token");
          assert.equal(claims.user, user);
          assert.equal(typeof claims.jti, "string");
          assert.equal(claims.exp, claims.iat! + server.config.refreshTokenTtlSeconds);
          const none = await jwt("GET", "/refresh_token", {}, style);
          assert.equal(none.status, 401);
        });

        it("DELETE /refresh_token revokes it (204): it stops working at once", async () => {
          const user = await createUser();
          const access = await login(user);
          const refresh = await refreshToken(access);
          assert.equal((await jwt("GET", "/token", { user: refresh }, style)).status, 200);
          const del = await jwt("DELETE", "/refresh_token", { refresh_token: refresh, access_token: access }, style);
          assert.equal(del.status, 204, del.text);
          assert.equal(del.text, "");
          const after = await jwt("GET", "/token", { user: refresh }, style);
          assert.equal(after.status, 401);
        });

        it("DELETE /refresh_token with another user's token, an access token or nothing is 400", async () => {
          const alice = await login(await createUser());
          const bob = await login(await createUser());
          const bobsRefresh = await refreshToken(bob);
          const other = await jwt("DELETE", "/refresh_token", { refresh_token: bobsRefresh, access_token: alice }, style);
          assert.equal(other.status, 400);
          const notRefresh = await jwt("DELETE", "/refresh_token", { refresh_token: alice, access_token: alice }, style);
          assert.equal(notRefresh.status, 400);
          const missing = await jwt("DELETE", "/refresh_token", { access_token: alice }, style);
          assert.equal(missing.status, 400);
          assert.match(missing.body.message, /refresh_token/);
          // Bob's token still works: the refused calls changed nothing.
          assert.equal((await jwt("GET", "/token", { user: bobsRefresh }, style)).status, 200);
        });

        it("PATCH /user changes the password (200): old password and earlier refresh tokens stop working", async () => {
          const user = await createUser();
          const access = await login(user);
          const refresh = await refreshToken(access);
          const res = await jwt("PATCH", "/user", { pass: otherGoodPassword, access_token: access }, style);
          assert.equal(res.status, 200, res.text);
          assert.deepEqual(res.body, {});
          assert.equal((await jwt("GET", "/token", { user, pass: goodPassword }, style)).status, 401);
          assert.equal((await jwt("GET", "/token", { user: refresh }, style)).status, 401);
          const fresh = await login(user, otherGoodPassword, style);
          const newRefresh = await refreshToken(fresh);
          assert.equal((await jwt("GET", "/token", { user: newRefresh }, style)).status, 200);
          const weak = await jwt("PATCH", "/user", { pass: "short", access_token: fresh }, style);
          assert.equal(weak.status, 400);
        });

        it("GET /user answers the claims, or 204 with no body without a valid token", async () => {
          const user = await createUser();
          const access = await login(user);
          const res = await jwt("GET", "/user", { access_token: access }, style);
          assert.equal(res.status, 200, res.text);
          assert.deepEqual(res.body, decodeJwt(access));
          const anonymous = await jwt("GET", "/user", {}, style);
          assert.equal(anonymous.status, 204);
          assert.equal(anonymous.text, "");
          const invalid = await jwt("GET", "/user", { access_token: access.slice(0, -4) + "AAAA" }, style);
          assert.equal(invalid.status, 204);
        });

        it("DELETE /user deactivates the user (204): every token of theirs stops working", async () => {
          const user = await createUser();
          const access = await login(user);
          const refresh = await refreshToken(access);
          const second = await login(user);
          const res = await jwt("DELETE", "/user", { access_token: access }, style);
          assert.equal(res.status, 204, res.text);
          assert.equal(res.text, "");
          assert.equal((await jwt("GET", "/check", { access_token: second }, style)).status, 400);
          // `access` was verified before (and may be remembered): the user check still applies.
          assert.equal((await jwt("GET", "/check", { access_token: access }, style)).status, 400);
          assert.equal((await jwt("GET", "/refresh_token", { access_token: second }, style)).status, 401);
          assert.equal((await jwt("GET", "/user", { access_token: second }, style)).status, 204);
          assert.equal((await jwt("GET", "/token", { user: refresh }, style)).status, 401);
          // Only someone who knows the password learns that the user is deactivated.
          assert.equal((await jwt("GET", "/token", { user, pass: goodPassword }, style)).status, 403);
          assert.equal((await jwt("GET", "/token", { user, pass: otherGoodPassword }, style)).status, 401);
        });

        it("a refresh-derived token is refused with 403 where password authentication is required", async () => {
          const user = await createUser();
          const refresh = await refreshToken(await login(user));
          const derived = (await jwt("GET", "/token", { user: refresh }, style)).text;
          for (const [method, path, args] of [
            ["GET", "/refresh_token", {}],
            ["PATCH", "/user", { pass: otherGoodPassword }],
            ["DELETE", "/user", {}],
          ] as const) {
            const res = await jwt(method, path, { ...args, access_token: derived }, style);
            assert.equal(res.status, 403, `${method} ${path}: ${res.text}`);
            assert.equal(res.body.code, "permission_denied");
          }
          // ... but it is a valid credential where any JWT will do.
          assert.equal((await jwt("GET", "/user", { access_token: derived }, style)).status, 200);
          assert.equal((await jwt("GET", "/check", { access_token: derived }, style)).status, 200);
        });

        it("GET /version answers the package version", async () => {
          const res = await jwt("GET", "/version", {}, style);
          assert.equal(res.status, 200);
          assert.deepEqual(res.body, { version: packageVersion });
        });
      });
    }

    it("GET /pubkey answers the current public key as PEM text/plain", async () => {
      const res = await jwt("GET", "/pubkey");
      assert.equal(res.status, 200);
      assert.equal(res.headers["content-type"], textPlain);
      assert.match(res.text, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n?$/);
    });

    it("the access token is also accepted from Authorization: Bearer; two different tokens are 400", async () => {
      const user = await createUser();
      const access = await login(user);
      const other = await login(await createUser());
      assert.equal((await jwt("GET", "/user", {}, "query", bearer(access))).status, 200);
      assert.equal((await jwt("GET", "/check", {}, "query", bearer(access))).status, 200);
      assert.equal((await jwt("GET", "/user", { access_token: access }, "query", bearer(access))).status, 200);
      for (const path of ["/user", "/check", "/refresh_token"]) {
        const two = await jwt("GET", path, { access_token: other }, "query", bearer(access));
        assert.equal(two.status, 400, path);
        assert.equal(two.body.code, "invalid_argument");
      }
    });

    it("repeated failed logins are limited (429 with Retry-After)", async () => {
      const user = await createUser();
      let last;
      for (let i = 0; i < 8; i++) {
        last = await jwt("GET", "/token", { user, pass: `wrong password ${i}` });
        if (last.status === 429) break;
      }
      assert.equal(last!.status, 429);
      assert.ok(Number(last!.headers["retry-after"]) >= 1);
      // Even the right password waits out the lockout.
      assert.equal((await jwt("GET", "/token", { user, pass: goodPassword })).status, 429);
    });

    it("an unknown argument is 400 naming it", async () => {
      const res = await jwt("GET", "/version", { colour: "blue" }, "query");
      assert.equal(res.status, 400);
      assert.match(res.body.message, /colour/);
    });

    it("no secret reaches the logs", async () => {
      const user = await createUser();
      const access = await login(user);
      const refresh = await refreshToken(access);
      await jwt("GET", "/token", { user: refresh });
      // Query strings carry secrets in this API: they must not be logged either.
      await jwt("GET", "/token", { user, pass: goodPassword }, "query");
      await jwt("GET", "/token", { user: refresh }, "query");
      await jwt("GET", "/check", { access_token: access }, "query");
      await jwt("GET", "/token", { user, pass: "wrong password here" }, "query");
      const logs = server.logs.join("\n");
      for (const secret of [goodPassword, "wrong password here", "wrong+password+here", access, refresh, access.split(".")[2]!, refresh.split(".")[2]!]) {
        assert.ok(!logs.includes(secret), "a secret was logged");
      }
    });
  });
}
