// Seed 004 (JwtService) through real clients — gRPC, Connect and REST — on each store: every
// documented path with its documented answer (plain-text tokens and key, claims as JSON, 201 and
// 204 over REST), the password-versus-refresh authentication rule, revocation, and abuse
// protection. REST alone: the document's argument styles and its query strings.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { ManualClock } from "../../src/core/clock.js";
import { expectCode, expectOk, expectWeakPassword, protocols } from "../support/api.js";
import { basic, bearer } from "../support/clients.js";
import { decodedBody, tesseraDetails } from "../support/error-details.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { fullWidthCommon, otherPassword, password, uniqueName, weakPassword } from "../support/users.js";
import { algNone } from "./forge.js";
import { argStyles, argumentCall, jwtApi, multipartBody, type JwtApi } from "./api.js";
import { loginKey } from "../../src/core/login-name.js";

const packageVersion = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
const textPlain = "text/plain; charset=utf-8";
const pem = /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n?$/;
const tooShort = "password too short: at least 8 characters required";

for (const store of storesUnderTest()) {
  describe(`JWT API (seed 004) on ${store}`, function () {
    let server: TestServer;
    before(async () => {
      // Every wrong password below counts against 127.0.0.1 (4x the per-login limit): a limit of
      // 50 keeps this file's failures from locking the address; lockout has its own server below.
      server = await startTestServer({ store, env: { TESSERA_LOGIN_MAX_FAILURES: "50" } });
    });
    after(async () => {
      await server?.close();
    });

    for (const protocol of protocols) {
      describe(`over ${protocol}`, () => {
        let api: JwtApi;
        before(() => {
          api = jwtApi(protocol, server.url);
        });
        after(() => api.close());

        async function createUser(): Promise<string> {
          const user = uniqueName();
          assert.deepEqual(expectOk(await api.createUser({ user, pass: password }), 201), {});
          return user;
        }

        async function login(user: string, pass = password): Promise<string> {
          return expectOk(await api.getToken({ user, pass })).text;
        }

        async function refreshToken(access: string): Promise<string> {
          return expectOk(await api.getRefreshToken({}, bearer(access))).text;
        }

        it("POST /user creates a user (201); the same name again is 409; a weak password 400; a missing pass 400", async () => {
          const user = uniqueName();
          assert.deepEqual(expectOk(await api.createUser({ user, pass: password }), 201), {});
          expectCode(await api.createUser({ user, pass: otherPassword }), "already_exists", "a user with this name already exists", "USER_EXISTS");
          expectCode(await api.createUser({ user: uniqueName(), pass: "short" }), "invalid_argument", tooShort, "WEAK_PASSWORD");
          expectCode(await api.createUser({ user: uniqueName() }), "invalid_argument", "pass is required", "MISSING_FIELDS");
          expectCode(await api.createUser({ pass: password }), "invalid_argument", "user is required", "MISSING_FIELDS");
        });

        it("GET /token with user and pass answers an access JWT as text/plain", async () => {
          const user = await createUser();
          const answer = expectOk(await api.getToken({ user, pass: password }));
          assert.equal(answer.content_type, textPlain);
          const claims = decodeJwt(answer.text);
          assert.equal(claims.user, user);
          assert.equal(claims.token_type, "access_token");
          assert.equal(claims.authentication_method, "password");
          assert.equal(claims.iss, server.config.jwtIssuer);
          assert.equal(claims.aud, server.config.jwtAudience);
          assert.equal(typeof claims.iat, "number");
          assert.equal(claims.nbf, claims.iat);
          assert.equal(claims.exp, claims.iat! + server.config.accessTokenTtlSeconds);
          const header = decodeProtectedHeader(answer.text);
          assert.equal(header.alg, "EdDSA");
          assert.equal(typeof header.kid, "string");
          // A password login is the user's last login (shared with the other APIs).
          assert.ok((await server.tessera.store.users.findByLogin(user, loginKey(user)))!.lastLoginAt);
        });

        it("GET /token: a wrong password and an unknown user are the same 401; a missing user or pass 400; a malformed refresh token 401", async () => {
          const user = await createUser();
          expectCode(await api.getToken({ user, pass: otherPassword }), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
          expectCode(await api.getToken({ user: uniqueName(), pass: password }), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
          expectCode(await api.getToken({ pass: password }), "invalid_argument", "user is required", "MISSING_FIELDS");
          expectCode(await api.getToken({ user }), "invalid_argument", "pass is required (or user must be a refresh token)", "MISSING_FIELDS");
          expectCode(await api.getToken({ user: "a.b.c" }), "unauthenticated", "invalid refresh token: malformed token", "INVALID_TOKEN");
        });

        it("GET /token with a refresh token as user answers an access JWT from a refresh login", async () => {
          const user = await createUser();
          const refresh = await refreshToken(await login(user));
          const answer = expectOk(await api.getToken({ user: refresh }));
          assert.equal(answer.content_type, textPlain);
          const claims = decodeJwt(answer.text);
          assert.equal(claims.user, user);
          assert.equal(claims.token_type, "access_token");
          assert.equal(claims.authentication_method, "refresh_token");
        });

        it("GET /check answers the claims as JSON; a refresh token, garbage, an unsigned token or nothing is 400", async () => {
          const access = await login(await createUser());
          const res = await api.check({ access_token: access });
          assert.deepEqual(expectOk(res), decodeJwt(access));
          if (protocol === "rest") assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
          expectCode(await api.check({ access_token: await refreshToken(access) }), "invalid_argument", "not an access token", "WRONG_TOKEN_TYPE");
          expectCode(await api.check({ access_token: "not-a-jwt" }), "invalid_argument", "malformed token", "INVALID_TOKEN");
          expectCode(await api.check({ access_token: algNone(access) }), "invalid_argument", "unexpected token algorithm", "INVALID_TOKEN");
          expectCode(await api.check({}), "invalid_argument", "access_token is required", "MISSING_FIELDS");
        });

        it("GET /refresh_token with access_token as an argument answers a refresh JWT as text/plain; without one 401", async () => {
          const user = await createUser();
          const answer = expectOk(await api.getRefreshToken({ access_token: await login(user) }));
          assert.equal(answer.content_type, textPlain);
          const claims = decodeJwt(answer.text);
          assert.equal(claims.token_type, "refresh_token");
          assert.equal(claims.user, user);
          assert.equal(typeof claims.jti, "string");
          assert.equal(claims.exp, claims.iat! + server.config.refreshTokenTtlSeconds);
          const none = await api.getRefreshToken({});
          expectCode(none, "unauthenticated", "missing access token", "MISSING_CREDENTIAL");
          assert.equal(none.headers.get("www-authenticate"), "Bearer");
        });

        it("DELETE /refresh_token revokes it (REST: 204): it stops working at once", async () => {
          const access = await login(await createUser());
          const refresh = await refreshToken(access);
          expectOk(await api.getToken({ user: refresh }));
          assert.deepEqual(expectOk(await api.deleteRefreshToken({ refresh_token: refresh, access_token: access }), 204), {});
          expectCode(await api.getToken({ user: refresh }), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
        });

        it("DELETE /refresh_token with another user's token, an access token or nothing is 400", async () => {
          const alice = await login(await createUser());
          const bobsRefresh = await refreshToken(await login(await createUser()));
          const notHers = "refresh_token is not a refresh token of this user";
          expectCode(await api.deleteRefreshToken({ refresh_token: bobsRefresh, access_token: alice }), "invalid_argument", notHers, "TOKEN_NOT_FOUND");
          expectCode(await api.deleteRefreshToken({ refresh_token: alice, access_token: alice }), "invalid_argument", "invalid refresh token: not a refresh token", "WRONG_TOKEN_TYPE");
          expectCode(await api.deleteRefreshToken({ access_token: alice }), "invalid_argument", "refresh_token is required", "MISSING_FIELDS");
          // Bob's token still works: the refused calls changed nothing.
          expectOk(await api.getToken({ user: bobsRefresh }));
        });

        it("PATCH /user changes the password: the old password and earlier refresh tokens stop working", async () => {
          const user = await createUser();
          const access = await login(user);
          const refresh = await refreshToken(access);
          assert.deepEqual(expectOk(await api.changePassword({ pass: otherPassword, access_token: access })), {});
          expectCode(await api.getToken({ user, pass: password }), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
          expectCode(await api.getToken({ user: refresh }), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
          const fresh = await login(user, otherPassword);
          expectOk(await api.getToken({ user: await refreshToken(fresh) }));
          expectCode(await api.changePassword({ pass: "short", access_token: fresh }), "invalid_argument", tooShort, "WEAK_PASSWORD");
        });

        it("PATCH /user holds the new password to the sign-up's policy: not the user's own name, nor a common one padded or in look-alikes, nor white space only", async () => {
          const user = await createUser();
          const access = await login(user);
          const refused: [string, string][] = [
            [user, weakPassword.isLogin],
            [` ${user.toUpperCase()}\u0000`, weakPassword.isLogin],
            [" password1 ", weakPassword.tooCommon],
            [fullWidthCommon, weakPassword.tooCommon],
            [" ".repeat(8), weakPassword.onlyBlank],
          ];
          for (const [pass, message] of refused) expectWeakPassword(await api.changePassword({ pass, access_token: access }), "pass", message);
          // Nothing changed: the password and the token still work.
          expectOk(await api.getToken({ user, pass: password }));
          assert.deepEqual(expectOk(await api.changePassword({ pass: otherPassword, access_token: access })), {});
        });

        it("GET /user answers the claims, or nothing without a valid token (REST: 204, no body)", async () => {
          const access = await login(await createUser());
          assert.deepEqual(expectOk(await api.getUser({ access_token: access })), decodeJwt(access));
          assert.equal(expectOk(await api.getUser({}), 204), undefined);
          assert.equal(expectOk(await api.getUser({ access_token: access.slice(0, -4) + "AAAA" }), 204), undefined);
        });

        it("DELETE /user deactivates the user (REST: 204): every token of theirs stops working", async () => {
          const user = await createUser();
          const access = await login(user);
          const refresh = await refreshToken(access);
          const second = await login(user);
          assert.deepEqual(expectOk(await api.deleteUser({ access_token: access }), 204), {});
          expectCode(await api.check({ access_token: second }), "invalid_argument", "the token's user is deactivated", "USER_DEACTIVATED");
          // `access` was verified before (and may be remembered): the user check still applies.
          expectCode(await api.check({ access_token: access }), "invalid_argument", "the token's user is deactivated", "USER_DEACTIVATED");
          expectCode(await api.getRefreshToken({ access_token: second }), "unauthenticated", "the token's user is deactivated", "USER_DEACTIVATED");
          assert.equal(expectOk(await api.getUser({ access_token: second }), 204), undefined);
          expectCode(await api.getToken({ user: refresh }), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
          // Only someone who knows the password learns that the user is deactivated.
          expectCode(await api.getToken({ user, pass: password }), "permission_denied", "user is deactivated", "USER_DEACTIVATED");
          expectCode(await api.getToken({ user, pass: otherPassword }), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
          // Deactivated, not erased: the name stays taken (nobody can take it over).
          expectCode(await api.createUser({ user, pass: password }), "already_exists", "a user with this name already exists", "USER_EXISTS");
        });

        it("a refresh-derived token is refused with 403 where password authentication is required, and accepted elsewhere", async () => {
          const user = await createUser();
          const derived = expectOk(await api.getToken({ user: await refreshToken(await login(user)) })).text;
          const refused = "password authentication required: this token came from a refresh token";
          expectCode(await api.getRefreshToken({ access_token: derived }), "permission_denied", refused, "PASSWORD_LOGIN_REQUIRED");
          expectCode(await api.changePassword({ pass: otherPassword, access_token: derived }), "permission_denied", refused, "PASSWORD_LOGIN_REQUIRED");
          expectCode(await api.deleteUser({ access_token: derived }), "permission_denied", refused, "PASSWORD_LOGIN_REQUIRED");
          assert.equal(expectOk(await api.getUser({ access_token: derived }))!.user, user);
          assert.equal(expectOk(await api.check({ access_token: derived })).user, user);
        });

        it("the access token is also taken from Authorization: Bearer; two different tokens in one call are 400", async () => {
          const user = await createUser();
          const access = await login(user);
          const other = await login(await createUser());
          assert.equal(expectOk(await api.getUser({}, bearer(access)))!.user, user);
          assert.equal(expectOk(await api.check({}, bearer(access))).user, user);
          assert.equal(expectOk(await api.getUser({ access_token: access }, bearer(access)))!.user, user);
          const two = "two different access tokens in one request (Authorization header and access_token)";
          expectCode(await api.getUser({ access_token: other }, bearer(access)), "invalid_argument", two, "CONFLICTING_TOKENS");
          expectCode(await api.check({ access_token: other }, bearer(access)), "invalid_argument", two, "CONFLICTING_TOKENS");
          expectCode(await api.getRefreshToken({ access_token: other }, bearer(access)), "invalid_argument", two, "CONFLICTING_TOKENS");
        });

        it("GET /user with a malformed Authorization: Bearer header is 401 MALFORMED_CREDENTIAL, with access_token or without, as GET /refresh_token", async () => {
          const access = await login(await createUser());
          const notBearer = 'the Authorization header must be "Bearer <token>"';
          for (const authorization of ["Bearer", "Bearer two tokens"]) {
            for (const args of [{}, { access_token: access }]) {
              expectCode(await api.getUser(args, { authorization }), "unauthenticated", notBearer, "MALFORMED_CREDENTIAL");
              expectCode(await api.getRefreshToken(args, { authorization }), "unauthenticated", notBearer, "MALFORMED_CREDENTIAL");
            }
          }
        });

        it("GET /check (no authentication) with an Authorization header that is not \"Bearer <token>\" is 400 naming it, without a challenge", async () => {
          const access = await login(await createUser());
          const notBearer = 'the Authorization header must be "Bearer <token>"';
          const basic = `Basic ${Buffer.from(`someone:${password}`).toString("base64")}`;
          for (const [authorization, reason] of [[basic, "UNSUPPORTED_CREDENTIAL"], [access, "UNSUPPORTED_CREDENTIAL"], ["Bearer", "MALFORMED_CREDENTIAL"]] as const) {
            const res = await api.check({}, { authorization });
            expectCode(res, "invalid_argument", notBearer, reason);
            assert.equal(res.headers.get("www-authenticate"), null);
          }
          // Beside the token in access_token, a malformed Bearer header is still a bad argument.
          const res = await api.check({ access_token: access }, { authorization: "Bearer" });
          expectCode(res, "invalid_argument", notBearer, "MALFORMED_CREDENTIAL");
          assert.equal(res.headers.get("www-authenticate"), null);
        });

        it("an Authorization header of another scheme is no second token: access_token is used; GET /check's header problems are 400", async () => {
          const user = await createUser();
          const access = await login(user);
          const gateway = basic("gateway", "its own password");
          assert.equal(expectOk(await api.getUser({ access_token: access }, gateway))!.user, user);
          assert.equal(expectOk(await api.check({ access_token: access }, gateway)).user, user);
          expectOk(await api.getRefreshToken({ access_token: access }, gateway));
          const notBearer = 'the Authorization header must be "Bearer <token>"';
          expectCode(await api.check({}, gateway), "invalid_argument", notBearer, "UNSUPPORTED_CREDENTIAL");
          expectCode(await api.check({}, { authorization: "Bearer two tokens" }), "invalid_argument", notBearer, "MALFORMED_CREDENTIAL");
        });

        it("GET /version answers the package version", async () => {
          assert.deepEqual(expectOk(await api.getVersion()), { version: packageVersion });
        });

        it("GET /pubkey answers the current public key as PEM text/plain", async () => {
          const answer = expectOk(await api.getPublicKey());
          assert.equal(answer.content_type, textPlain);
          assert.match(answer.text, pem);
        });

        it("no password or token reaches the logs", async () => {
          const user = await createUser();
          const access = await login(user);
          const refresh = await refreshToken(access);
          expectOk(await api.getToken({ user: refresh }));
          expectOk(await api.check({ access_token: access }));
          expectCode(await api.getToken({ user, pass: "wrong password here" }), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
          const logs = server.logs.join("\n");
          for (const secret of [password, "wrong password here", access, refresh, access.split(".")[2]!, refresh.split(".")[2]!]) {
            assert.ok(!logs.includes(secret), "a secret was logged");
          }
        });
      });
    }

    describe("abuse protection", () => {
      const clock = new ManualClock(Date.now());
      let limited: TestServer;
      before(async () => {
        limited = await startTestServer({ store, clock, env: { TESSERA_LOGIN_MAX_FAILURES: "3" } });
      });
      after(async () => {
        await limited?.close();
      });

      for (const protocol of protocols) {
        it(`repeated failed logins are limited: 429 with Retry-After, even for the right password (${protocol})`, async () => {
          const api = jwtApi(protocol, limited.url);
          try {
            const user = uniqueName();
            expectOk(await api.createUser({ user, pass: password }), 201);
            for (let i = 0; i < 3; i++) expectCode(await api.getToken({ user, pass: `wrong password ${i}` }), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
            const locked = await api.getToken({ user, pass: password });
            expectCode(locked, "resource_exhausted", "too many failed logins; try again later", "LOGIN_LOCKED");
            // The clock stood still since the third failure: the whole first lockout (60 s) is left.
            assert.equal(locked.headers.get("retry-after"), "60");
          } finally {
            api.close();
          }
        });
      }
    });

    describe("REST only: the document's argument styles", () => {
      for (const style of argStyles) {
        const where = { json: "a JSON body", form: "a form body", multipart: "a multipart/form-data body", query: "the query string" }[style];
        it(`every method reads its arguments from ${where}`, async () => {
          const api = jwtApi("rest", server.url, { style });
          const user = uniqueName(style);
          expectOk(await api.createUser({ user, pass: password }), 201);
          expectCode(await api.createUser({ user, pass: password }), "already_exists", "a user with this name already exists", "USER_EXISTS");
          expectCode(await api.createUser({ user: uniqueName(), pass: "short" }), "invalid_argument", tooShort, "WEAK_PASSWORD");
          expectCode(await api.createUser({ user: uniqueName() }), "invalid_argument", "pass is required", "MISSING_FIELDS");
          const access = expectOk(await api.getToken({ user, pass: password })).text;
          assert.equal(decodeJwt(access).user, user);
          expectCode(await api.getToken({ user, pass: otherPassword }), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
          expectCode(await api.getToken({ pass: password }), "invalid_argument", "user is required", "MISSING_FIELDS");
          assert.deepEqual(expectOk(await api.check({ access_token: access })), decodeJwt(access));
          expectCode(await api.check({}), "invalid_argument", "access_token is required", "MISSING_FIELDS");
          const refresh = expectOk(await api.getRefreshToken({ access_token: access })).text;
          assert.equal(decodeJwt(expectOk(await api.getToken({ user: refresh })).text).authentication_method, "refresh_token");
          expectCode(await api.deleteRefreshToken({ access_token: access }), "invalid_argument", "refresh_token is required", "MISSING_FIELDS");
          expectOk(await api.deleteRefreshToken({ refresh_token: refresh, access_token: access }), 204);
          expectCode(await api.getToken({ user: refresh }), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
          assert.deepEqual(expectOk(await api.getUser({ access_token: access })), decodeJwt(access));
          expectOk(await api.changePassword({ pass: otherPassword, access_token: access }));
          const fresh = expectOk(await api.getToken({ user, pass: otherPassword })).text;
          expectOk(await api.deleteUser({ access_token: fresh }), 204);
          expectCode(await api.getToken({ user, pass: otherPassword }), "permission_denied", "user is deactivated", "USER_DEACTIVATED");
        });
      }

      it("a multipart/form-data body: a file part, no boundary or broken framing is 400 naming the problem", async () => {
        const call = async (contentType: string, body: string | Buffer) => {
          const res = await fetch(`${server.url}/jwt/user`, { method: "POST", headers: { "content-type": contentType }, body });
          const text = await res.text();
          assert.equal(res.status, 400, text);
          return (JSON.parse(text) as { message: string }).message;
        };
        const boundary = "b0undary";
        const file = `--${boundary}\r\nContent-Disposition: form-data; name="pass"; filename="pass.txt"\r\nContent-Type: text/plain\r\n\r\n${password}\r\n--${boundary}--\r\n`;
        assert.equal(await call(`multipart/form-data; boundary=${boundary}`, file), 'form field "pass" is a file: only text fields are accepted');
        assert.equal(await call("multipart/form-data", file), "multipart/form-data without a boundary parameter");
        const open = multipartBody({ user: uniqueName(), pass: password }, boundary).body.replace(`--${boundary}--\r\n`, "");
        assert.equal(await call(`multipart/form-data; boundary=${boundary}`, open), "form body is not valid multipart/form-data");
        const noName = `--${boundary}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--${boundary}--\r\n`;
        assert.equal(await call(`multipart/form-data; boundary=${boundary}`, noName), "form body is not valid multipart/form-data");
        const latin1 = multipartBody({ user: uniqueName(), pass: "caf\u00e9" }, boundary);
        assert.equal(await call(latin1.contentType, Buffer.from(latin1.body, "latin1")), "form body is not valid UTF-8");
      });

      // RFC 6266 4.1 (as RFC 7578 4.2 takes it): a part's Content-Disposition parameters are read
      // left to right, a quoted-string value whole, `;` and quoted-pairs (RFC 9110 5.6.4) in it
      // included, as Flask (whose `request.values` the document names) reads them. A `; name=`
      // inside another parameter's quoted value was taken for the part's name: the password below
      // was read as a second `user`. A parameter named twice makes the value invalid (RFC 6266
      // 4.1): which one is the field's name is not Tessera's to choose (Flask takes the last).
      it("a multipart/form-data part's Content-Disposition is read a parameter at a time: a quoted value holding \"; name=\" names no field; a parameter named twice is 400", async () => {
        const boundary = "b0undary";
        const part = (parameters: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; ${parameters}\r\n\r\n${value}\r\n`;
        const post = (...parts: string[]) =>
          fetch(`${server.url}/jwt/user`, { method: "POST", headers: { "content-type": `multipart/form-data; boundary=${boundary}` }, body: `${parts.join("")}--${boundary}--\r\n` });
        for (const note of ['note="; name=user"', 'note="\\"; name=user"', 'note="a\\\\"; x="; name=user"']) {
          const user = uniqueName();
          const res = await post(part(`name="user"`, user), part(`${note}; name="pass"`, password));
          assert.equal(res.status, 201, `${note}: ${await res.text()}`);
          assert.equal(decodeJwt(expectOk(await jwtApi("rest", server.url).getToken({ user, pass: password })).text).user, user, `${note}: the user logs in with the password its second part holds`);
        }
        for (const parameters of ['name="user"; name="pass"', 'name="user"; NAME="user"', 'name="pass"; filename="a.txt"; filename="b.txt"']) {
          const res = await post(part(parameters, uniqueName()), part(`name="pass"`, password));
          const text = await res.text();
          assert.equal(res.status, 400, `${parameters}: ${text}`);
          const message = "a part of the multipart/form-data body names a Content-Disposition parameter more than once: each must be named once (RFC 6266 4.1)";
          assert.deepEqual(decodedBody(JSON.parse(text)), { code: "invalid_argument", message, details: tesseraDetails("MALFORMED_BODY") }, parameters);
        }
      });

      // The Content-Type's parameters are read the same way (RFC 9110 8.3.1): a `boundary=` inside
      // another parameter's quoted value is none. Found there, the body was split by a boundary a
      // reader in front does not see (which may then pass on a body it cannot read); and a
      // Content-Type with one boundary was refused as having two.
      it("a multipart/form-data Content-Type is read a parameter at a time: a boundary= inside a quoted value is no boundary parameter", async () => {
        const boundary = "b0undary";
        const post = (contentType: string, user: string) =>
          fetch(`${server.url}/jwt/user`, { method: "POST", headers: { "content-type": contentType }, body: multipartBody({ user, pass: password }, boundary).body });
        const none = await post(`multipart/form-data; x="; boundary=${boundary};"`, uniqueName());
        const text = await none.text();
        assert.equal(none.status, 400, text);
        assert.deepEqual(decodedBody(JSON.parse(text)), { code: "invalid_argument", message: "multipart/form-data without a boundary parameter", details: tesseraDetails("MALFORMED_BODY") });
        const user = uniqueName();
        const one = await post(`multipart/form-data; x="\\"; boundary=other;"; boundary=${boundary}`, user);
        assert.equal(one.status, 201, await one.text());
        assert.equal(decodeJwt(expectOk(await jwtApi("rest", server.url).getToken({ user, pass: password })).text).user, user);
      });

      it("an argument given both in the JSON body and in the query is 400 naming it, as one given in a form body and in the query", async () => {
        const api = jwtApi("rest", server.url);
        const [user, otherUser] = [uniqueName(), uniqueName()];
        for (const name of [user, otherUser]) expectOk(await api.createUser({ user: name, pass: password }), 201);
        const access = expectOk(await api.getToken({ user, pass: password })).text;
        const other = expectOk(await api.getToken({ user: otherUser, pass: password })).text;
        // Two tokens, the same one twice, and a password: no place is taken over the other.
        const cases: Array<[string, string, Record<string, string>, string]> = [
          ["GET", `/jwt/check?${new URLSearchParams({ access_token: other })}`, { access_token: access }, "access_token"],
          ["GET", `/jwt/user?${new URLSearchParams({ access_token: access })}`, { access_token: access }, "access_token"],
          ["GET", `/jwt/token?${new URLSearchParams({ pass: otherPassword })}`, { user, pass: password }, "pass"],
        ];
        for (const [method, path, json, field] of cases) {
          for (const style of ["json", "form"] as const) {
            const res = await argumentCall(server.url, method, path, json, { style });
            const noun = style === "json" ? "JSON body field" : "form field";
            const message = `"${field}" is given both as a ${noun} and as a query parameter`;
            assert.equal(res.status, 400, `${style} ${method} ${path.split("?")[0]}: ${res.text}`);
            assert.deepEqual(decodedBody(res.body), { code: "invalid_argument", message, details: tesseraDetails("INVALID_QUERY_PARAMETER", { [field]: message }) });
          }
        }
      });

      it("an unknown argument is 400 naming it", async () => {
        const res = await argumentCall(server.url, "GET", "/jwt/version", { colour: "blue" }, { style: "query" });
        assert.equal(res.status, 400, res.text);
        const message = 'unknown query parameter "colour"';
        assert.deepEqual(decodedBody(res.body), { code: "invalid_argument", message, details: tesseraDetails("UNKNOWN_QUERY_PARAMETER", { colour: message }) });
      });

      it("secrets in query strings are not logged", async () => {
        const api = jwtApi("rest", server.url, { style: "query" });
        const user = uniqueName("query");
        expectOk(await api.createUser({ user, pass: password }), 201);
        const access = expectOk(await api.getToken({ user, pass: password })).text;
        const refresh = expectOk(await api.getRefreshToken({ access_token: access })).text;
        expectOk(await api.getToken({ user: refresh }));
        expectOk(await api.check({ access_token: access }));
        expectCode(await api.getToken({ user, pass: "wrong password here" }), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
        const logs = server.logs.join("\n");
        for (const secret of [password, "wrong password here", "wrong+password+here", encodeURIComponent(password), access, refresh, access.split(".")[2]!, refresh.split(".")[2]!]) {
          assert.ok(!logs.includes(secret), "a secret was logged");
        }
      });
    });
  });
}
