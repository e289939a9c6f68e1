// Seed 002 (UserTokenService) through real clients — gRPC, Connect and REST — on each store:
// POST /auth/login, /auth/bump and /auth/logout as the document shows them, every documented
// error, expiry and lastUsageTime with an injected clock, abuse protection, and cross-use with
// the other services' credentials.
import assert from "node:assert/strict";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { CLOCK_STEP_MS, ManualClock } from "../../src/core/clock.js";
import { Housekeeping } from "../../src/core/housekeeping.js";
import { createLogger } from "../../src/logger.js";
import { apiTokenApi } from "../api-token/api.js";
import { jwtApi } from "../jwt/api.js";
import { sessionApi } from "../session/api.js";
import { expectCode, expectOk, protocols, rpcProtocols, RpcClient } from "../support/api.js";
import { basic, bearer, rest } from "../support/clients.js";
import { decodedBody, tesseraDetails } from "../support/error-details.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import {
  clientIdHeader,
  createApiToken,
  createJwtUser,
  jwtLogin,
  loginUserToken,
  password,
  signUp,
  startSession,
  storedUserToken,
  uniqueEmail,
  UUID,
} from "../support/users.js";
import { userTokenApi, type UserTokenApi } from "./api.js";
import { MARKS_OUTLIVE_MS } from "../../src/store/mongo/mongo-refresh-tokens.js";

const rfc3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;
const basicChallenge = 'Basic realm="tessera", charset="UTF-8"';

for (const store of storesUnderTest()) {
  describe(`User tokens (seed 002) on ${store}`, function () {
    const clock = new ManualClock(Date.parse("2026-03-01T12:00:00.000Z"));
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ store, clock });
    });
    after(async () => {
      await server?.close();
    });

    for (const protocol of protocols) {
      describe(`over ${protocol}`, () => {
        let api: UserTokenApi;
        before(() => {
          api = userTokenApi(protocol, server.url);
        });
        after(() => api.close());

        async function login(email: string, body?: { note?: string; expirationTime?: string }): Promise<string> {
          return expectOk(await api.login(body, basic(email, password))).token;
        }

        describe("POST /auth/login", () => {
          it("answers a UserToken {creationTime, enabled, token, version} for Basic credentials and no body", async () => {
            const user = await signUp(server);
            const res = await api.login(undefined, basic(user.login, password));
            const body = expectOk(res);
            assert.deepEqual(Object.keys(body).sort(), ["creationTime", "enabled", "token", "version"]);
            assert.match(body.token, UUID);
            assert.equal(body.enabled, true);
            assert.equal(body.version, 0);
            assert.match(body.creationTime, rfc3339);
            assert.equal(Date.parse(body.creationTime), clock.now().getTime());
            assert.equal(res.headers.get("cache-control"), "no-store");
            if (protocol === "rest") assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
            const stored = await storedUserToken(server, body.token);
            assert.equal(stored.userId, user.id);
            assert.notEqual(stored.hash, body.token, "only a hash is stored");
          });

          it("echoes note and expirationTime (RFC 3339, any offset) when given", async () => {
            const user = await signUp(server);
            const body = expectOk(await api.login({ note: "Client API Access", expirationTime: "2099-07-29T23:59:59-05:00" }, basic(user.login, password)));
            assert.deepEqual(Object.keys(body).sort(), ["creationTime", "enabled", "expirationTime", "note", "token", "version"]);
            assert.equal(body.note, "Client API Access");
            assert.match(body.expirationTime!, rfc3339);
            assert.equal(Date.parse(body.expirationTime!), Date.parse("2099-07-29T23:59:59-05:00"));
            assert.equal(body.version, 0);
          });

          // Tessera keeps times in ms: a time with more precision is cut to the ms, never rounded
          // up, so a token never outlives the expirationTime asked for (999999999 ns rounded up
          // to the next second), and the last ms of year 9999 is a time like any other.
          it("keeps an expirationTime with nanoseconds cut to the ms, never later", async () => {
            const user = await signUp(server);
            for (const [sent, kept] of [
              ["2099-07-29T23:59:59.999999999Z", "2099-07-29T23:59:59.999Z"],
              ["2099-07-29T23:59:59.000999999Z", "2099-07-29T23:59:59.000Z"],
              ["9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999Z"],
            ]) {
              const body = expectOk(await api.login({ expirationTime: sent }, basic(user.login, password)));
              assert.equal(Date.parse(body.expirationTime!), Date.parse(kept!), sent);
              assert.equal((await storedUserToken(server, body.token)).expiresAt?.toISOString(), kept, sent);
            }
          });

          it("accepts an email login in any case and with surrounding spaces (the same users as seed 000)", async () => {
            const email = uniqueEmail("Case");
            await signUp(server, email);
            expectOk(await api.login(undefined, basic(`  ${email.toUpperCase()} `, password)));
          });

          it("gives 401 with the same message for a wrong password and an unknown login", async () => {
            const user = await signUp(server);
            const wrong = await api.login(undefined, basic(user.login, "not the password at all"));
            expectCode(wrong, "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
            expectCode(await api.login(undefined, basic(uniqueEmail("nobody"), password)), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
          });

          it("gives 401 with the Basic challenge without credentials, and 401 for a Bearer credential", async () => {
            const none = await api.login(undefined, {});
            expectCode(none, "unauthenticated", "HTTP Basic credentials required", "MISSING_CREDENTIAL");
            assert.equal(none.headers.get("www-authenticate"), basicChallenge);
            const user = await signUp(server);
            expectCode(await api.login(undefined, bearer(await loginUserToken(server, user.login))), "unauthenticated", "HTTP Basic credentials required", "UNSUPPORTED_CREDENTIAL");
          });

          it("gives 400 naming the problem for a malformed Basic header, an empty login or an empty password", async () => {
            expectCode(await api.login(undefined, { authorization: "Basic !!!not-base64" }), "invalid_argument", "malformed Basic credentials: expected base64(login:password)", "MALFORMED_CREDENTIAL");
            const noColon = { authorization: `Basic ${Buffer.from("just-a-login").toString("base64")}` };
            expectCode(await api.login(undefined, noColon), "invalid_argument", "malformed Basic credentials: no ':' between login and password", "MALFORMED_CREDENTIAL");
            const user = await signUp(server);
            expectCode(await api.login(undefined, basic(user.login, "")), "invalid_argument", "malformed Basic credentials: empty password", "MALFORMED_CREDENTIAL");
            expectCode(await api.login(undefined, basic("", password)), "invalid_argument", "malformed Basic credentials: empty login", "MALFORMED_CREDENTIAL");
            const notUtf8 = { authorization: `Basic ${Buffer.from([0x61, 0x3a, 0xff, 0xfe]).toString("base64")}` };
            expectCode(await api.login(undefined, notUtf8), "invalid_argument", "malformed Basic credentials: not valid UTF-8", "MALFORMED_CREDENTIAL");
          });

          // Node's base64 decoder takes any run of the alphabet and drops what does not fit: each
          // of these read as the user's right credentials, where Go's net/http or Python's base64
          // in front refuse them. The login is given with 0, 1 and 2 trailing spaces (trimmed), so
          // that one of its encodings needs no padding and the others do.
          it("gives 400 for Basic credentials that are not padded base64 (RFC 4648): padding left out, added where none belongs, or a character too many", async () => {
            const user = await signUp(server);
            const encodings = [0, 1, 2].map((spaces) => Buffer.from(`${user.login}${" ".repeat(spaces)}:${password}`).toString("base64"));
            for (const encoded of encodings) expectOk(await api.login(undefined, { authorization: `Basic ${encoded}` }));
            const unpadded = encodings.find((e) => !e.endsWith("="))!;
            const padded = encodings.filter((e) => e.endsWith("="));
            for (const value of [...padded.map((e) => e.replace(/=+$/, "")), `${unpadded}=`, `${unpadded}==`, `${unpadded}A`]) {
              const res = await api.login(undefined, { authorization: `Basic ${value}` });
              expectCode(res, "invalid_argument", "malformed Basic credentials: not padded base64 (RFC 4648)", "MALFORMED_CREDENTIAL");
            }
          });

          it("decodes Basic credentials as UTF-8 (RFC 7617)", async () => {
            const email = uniqueEmail("utf8");
            const pass = "pässwörd with ünïcode ✓";
            await signUp(server, email, pass);
            expectOk(await api.login(undefined, basic(email, pass)));
          });

          it("gives 400 for an expirationTime in the past or at now", async () => {
            const user = await signUp(server);
            const past = await api.login({ expirationTime: "2019-07-29T23:59:59-05:00" }, basic(user.login, password));
            expectCode(past, "invalid_argument", "expirationTime must be in the future", "INVALID_FIELD");
            const atNow = await api.login({ expirationTime: clock.now().toISOString() }, basic(user.login, password));
            expectCode(atNow, "invalid_argument", "expirationTime must be in the future", "INVALID_FIELD");
          });

          it("gives 400 for a note longer than 1024 characters", async () => {
            const user = await signUp(server);
            expectCode(await api.login({ note: "n".repeat(1025) }, basic(user.login, password)), "invalid_argument", "note is too long (at most 1024 characters)", "INVALID_FIELD");
            assert.equal(expectOk(await api.login({ note: "n".repeat(1024) }, basic(user.login, password))).note, "n".repeat(1024));
          });

          it("gives each login a new token", async () => {
            const user = await signUp(server);
            assert.notEqual(await login(user.login), await login(user.login));
          });
        });

        describe("POST /auth/bump", () => {
          it("sets and returns the user's lastLoginTime", async () => {
            const user = await signUp(server);
            const token = await login(user.login);
            clock.advance(5_000);
            const body = expectOk(await api.bump(bearer(token)));
            assert.deepEqual(Object.keys(body), ["lastLoginTime"]);
            assert.match(body.lastLoginTime, rfc3339);
            assert.equal(Date.parse(body.lastLoginTime), clock.now().getTime());
            const stored = await server.tessera.store.users.findById(user.id);
            assert.equal(stored?.lastLoginAt?.toISOString(), clock.now().toISOString());
            assert.equal((await storedUserToken(server, token)).version, 0, "bump does not change the token");
          });

          it("gives 401 for a missing, malformed, unknown or non-Bearer credential", async () => {
            const none = await api.bump({});
            expectCode(none, "unauthenticated", "missing bearer user token", "MISSING_CREDENTIAL");
            assert.equal(none.headers.get("www-authenticate"), "Bearer");
            expectCode(await api.bump(bearer("b94cf5c7-cddc-4610-9d4c-6b8e04088ae8")), "unauthenticated", "invalid user token", "INVALID_TOKEN");
            expectCode(await api.bump(bearer("not-a-token")), "unauthenticated", "invalid user token", "INVALID_TOKEN");
            expectCode(await api.bump({ authorization: "Token abc" }), "unauthenticated", "the Authorization header must be \"Bearer <token>\"", "UNSUPPORTED_CREDENTIAL");
            const user = await signUp(server);
            expectCode(await api.bump(basic(user.login, password)), "unauthenticated", "the Authorization header must be \"Bearer <token>\"", "UNSUPPORTED_CREDENTIAL");
          });
        });

        describe("POST /auth/logout", () => {
          it("answers {success: true}; the token stops working at once; other tokens keep working", async () => {
            const user = await signUp(server);
            const token = await login(user.login);
            const other = await login(user.login);
            assert.deepEqual(expectOk(await api.logout(bearer(token))), { success: true });
            expectCode(await api.bump(bearer(token)), "unauthenticated", "user token is disabled", "TOKEN_REVOKED");
            expectCode(await api.logout(bearer(token)), "unauthenticated", "user token is disabled", "TOKEN_REVOKED");
            const stored = await storedUserToken(server, token);
            assert.equal(stored.enabled, false);
            assert.equal(stored.version, 1, "version grows on the change");
            expectOk(await api.bump(bearer(other)));
          });

          it("gives 401 without a user token", async () => {
            expectCode(await api.logout({}), "unauthenticated", "missing bearer user token", "MISSING_CREDENTIAL");
          });
        });

        describe("token lifetime and use", () => {
          it("an expired token is 401 from its expirationTime on, exact to the millisecond", async () => {
            const user = await signUp(server);
            const token = await login(user.login, { expirationTime: new Date(clock.now().getTime() + 10_000).toISOString() });
            clock.advance(9_999);
            expectOk(await api.bump(bearer(token)));
            clock.advance(1);
            expectCode(await api.bump(bearer(token)), "unauthenticated", "user token has expired", "TOKEN_EXPIRED");
            expectCode(await api.logout(bearer(token)), "unauthenticated", "user token has expired", "TOKEN_EXPIRED");
          });

          it("an expired token answers TOKEN_EXPIRED, logged out or not; a logged-out one TOKEN_REVOKED; housekeeping changes neither answer (on MongoDB it drops a logout's mark some minutes after the token expired)", async () => {
            const user = await signUp(server);
            const expirationTime = new Date(clock.now().getTime() + 10_000).toISOString();
            const expired = await login(user.login, { expirationTime });
            const loggedOutThenExpired = await login(user.login, { expirationTime });
            const loggedOut = await login(user.login);
            expectOk(await api.logout(bearer(loggedOutThenExpired)));
            expectOk(await api.logout(bearer(loggedOut)));
            // Past the expiry, and the minutes a mark outlives it, so that housekeeping finds both due.
            clock.advance(10_000 + MARKS_OUTLIVE_MS + 1_000);
            const answers = async () => {
              expectCode(await api.bump(bearer(expired)), "unauthenticated", "user token has expired", "TOKEN_EXPIRED");
              expectCode(await api.bump(bearer(loggedOutThenExpired)), "unauthenticated", "user token has expired", "TOKEN_EXPIRED");
              expectCode(await api.bump(bearer(loggedOut)), "unauthenticated", "user token is disabled", "TOKEN_REVOKED");
            };
            await answers();
            await new Housekeeping({ store: server.tessera.store, clock, logger: createLogger("silent") }).runOnce();
            await answers();
          });

          it("a token expired a clock step before the user's next login is marked logged out by it (the cap's index lets go of it), and answers as before: TOKEN_EXPIRED, deleted by housekeeping the retention after its expiry", async () => {
            const user = await signUp(server);
            const expired = await login(user.login, { expirationTime: new Date(clock.now().getTime() + 10_000).toISOString() });
            const expiry = clock.now().getTime() + 10_000;
            clock.advance(10_000 + CLOCK_STEP_MS + 1);
            const fresh = await login(user.login);
            assert.deepEqual(await storedUserToken(server, expired).then(({ enabled, version }) => ({ enabled, version })), { enabled: false, version: 1 });
            expectCode(await api.bump(bearer(expired)), "unauthenticated", "user token has expired", "TOKEN_EXPIRED");
            expectCode(await api.logout(bearer(expired)), "unauthenticated", "user token has expired", "TOKEN_EXPIRED");
            expectOk(await api.bump(bearer(fresh)));
            const housekeepingAt = async (ms: number) => {
              clock.advance(ms - clock.now().getTime());
              await new Housekeeping({ store: server.tessera.store, clock, logger: createLogger("silent") }).runOnce();
            };
            const day = 86_400_000;
            await housekeepingAt(expiry + 30 * day - 1_000);
            expectCode(await api.bump(bearer(expired)), "unauthenticated", "user token has expired", "TOKEN_EXPIRED");
            await housekeepingAt(expiry + 30 * day + 1_000);
            expectCode(await api.bump(bearer(expired)), "unauthenticated", "invalid user token", "INVALID_TOKEN");
          });

          it("TESSERA_USER_TOKEN_RETENTION_DAYS (30) after it expired or was logged out, housekeeping deletes a token: it answers INVALID_TOKEN from then on; one that ended less long ago still TOKEN_EXPIRED or TOKEN_REVOKED", async () => {
            const user = await signUp(server);
            const day = 86_400_000;
            const expiring = () => login(user.login, { expirationTime: new Date(clock.now().getTime() + 10_000).toISOString() });
            const start = clock.now().getTime();
            const expiredLongAgo = await expiring(); // expires at start + 10 s
            const loggedOutLongAgo = await login(user.login); // never expires; logged out at start
            expectOk(await api.logout(bearer(loggedOutLongAgo)));
            clock.advance(20_000);
            const expiredLately = await expiring(); // expires at start + 30 s
            const loggedOutLately = await login(user.login); // logged out at start + 20 s
            expectOk(await api.logout(bearer(loggedOutLately)));
            const live = await login(user.login); // never expires, never logged out
            // 30 days and 5 s after the first expiry, 30 days less 15 s after the second.
            clock.advance(30 * day + 15_000 - 20_000);
            assert.equal(clock.now().getTime(), start + 30 * day + 15_000);
            const expired = (token: string) => async () => expectCode(await api.bump(bearer(token)), "unauthenticated", "user token has expired", "TOKEN_EXPIRED");
            const revoked = (token: string) => async () => expectCode(await api.bump(bearer(token)), "unauthenticated", "user token is disabled", "TOKEN_REVOKED");
            const unknown = (token: string) => async () => expectCode(await api.bump(bearer(token)), "unauthenticated", "invalid user token", "INVALID_TOKEN");
            await expired(expiredLongAgo)();
            await revoked(loggedOutLongAgo)();
            const housekeeping = new Housekeeping({ store: server.tessera.store, clock, logger: createLogger("silent"), userTokenRetentionDays: server.config.userTokenRetentionDays });
            await housekeeping.runOnce();
            await unknown(expiredLongAgo)();
            await unknown(loggedOutLongAgo)();
            expectCode(await api.logout(bearer(expiredLongAgo)), "unauthenticated", "invalid user token", "INVALID_TOKEN");
            await expired(expiredLately)();
            await revoked(loggedOutLately)();
            expectOk(await api.bump(bearer(live)));
            assert.equal(server.config.userTokenRetentionDays, 30, "the default");
          });

          it("records lastUsageTime on use, at most once per TESSERA_LAST_USED_INTERVAL_SECONDS (60)", async () => {
            const user = await signUp(server);
            const token = await login(user.login);
            assert.equal((await storedUserToken(server, token)).lastUsedAt, undefined, "never used yet");
            clock.advance(1_000);
            const firstUse = clock.now();
            expectOk(await api.bump(bearer(token)));
            assert.equal((await storedUserToken(server, token)).lastUsedAt?.toISOString(), firstUse.toISOString());
            clock.advance(30_000);
            expectOk(await api.bump(bearer(token)));
            assert.equal((await storedUserToken(server, token)).lastUsedAt?.toISOString(), firstUse.toISOString(), "coalesced");
            clock.advance(31_000);
            expectOk(await api.bump(bearer(token)));
            const stored = await storedUserToken(server, token);
            assert.equal(stored.lastUsedAt?.toISOString(), clock.now().toISOString());
            assert.equal(stored.version, 0, "usage is not a change of the token");
          });

          it("a deactivated user's tokens are 401, even one the store still shows enabled; the right password is 403", async () => {
            const user = await signUp(server);
            const token = await login(user.login);
            await server.tessera.store.users.deactivate(user.id, clock.now());
            expectCode(await api.bump(bearer(token)), "unauthenticated", "the user token's user does not exist or is deactivated", "USER_DEACTIVATED");
            expectCode(await api.login(undefined, basic(user.login, password)), "permission_denied", "user is deactivated", "USER_DEACTIVATED");
          });

          it("a password change ends the tokens created before it", async () => {
            const user = await signUp(server);
            const token = await login(user.login);
            clock.advance(1);
            const record = await server.tessera.store.users.findById(user.id);
            await server.tessera.store.users.updatePasswordHash(user.id, record!.passwordHash, clock.now());
            expectCode(await api.bump(bearer(token)), "unauthenticated", "user token predates a password change", "TOKEN_REVOKED");
            expectOk(await api.bump(bearer(await login(user.login))));
          });
        });

        describe("cross-use", () => {
          it("a user token is refused where an API token, a session access token or a JWT is required", async () => {
            const user = await signUp(server);
            const token = await login(user.login);
            const apiTokens = apiTokenApi(protocol, server.url);
            const sessions = sessionApi(protocol, server.url);
            const jwt = jwtApi(protocol, server.url);
            try {
              expectCode(await apiTokens.authenticate(bearer(token)), "unauthenticated", "invalid API token", "INVALID_TOKEN");
              expectCode(await sessions.getSession({ clientId: testClientId, access: token }), "unauthenticated", "malformed token", "INVALID_TOKEN");
              expectCode(await sessions.getUser({ clientId: testClientId, access: token }), "unauthenticated", "malformed token", "INVALID_TOKEN");
              expectCode(await jwt.getRefreshToken({}, bearer(token)), "unauthenticated", "malformed token", "INVALID_TOKEN");
            } finally {
              apiTokens.close();
              sessions.close();
              jwt.close();
            }
            expectOk(await api.bump(bearer(token)));
          });

          it("an API token, a session access token and a JWT are refused as a user token", async () => {
            const user = await signUp(server);
            expectCode(await api.bump(bearer(await createApiToken(server))), "unauthenticated", "invalid user token", "INVALID_TOKEN");
            const access = (await startSession(server, user.login)).access_token;
            expectCode(await api.bump({ ...bearer(access), ...clientIdHeader }), "unauthenticated", "invalid user token", "INVALID_TOKEN");
            expectCode(await api.logout({ ...bearer(access), ...clientIdHeader }), "unauthenticated", "invalid user token", "INVALID_TOKEN");
            const jwt = await jwtLogin(server, await createJwtUser(server));
            expectCode(await api.bump(bearer(jwt)), "unauthenticated", "invalid user token", "INVALID_TOKEN");
          });
        });

        it("never writes a token or password to the logs", async () => {
          const user = await signUp(server);
          const token = await login(user.login, { note: "log check" });
          expectOk(await api.bump(bearer(token)));
          expectOk(await api.logout(bearer(token)));
          expectCode(await api.login(undefined, basic(user.login, "a wrong password here")), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
          const logs = server.logs.join("\n");
          assert.ok(logs.includes("user token logged out"), "the logout is logged");
          assert.ok(!logs.includes(token), "token in logs");
          assert.ok(!logs.includes(password), "password in logs");
          assert.ok(!logs.includes("a wrong password here"), "tried password in logs");
        });
      });
    }

    describe("abuse protection (as session login)", () => {
      const limitedClock = new ManualClock(Date.parse("2026-03-01T12:00:00.000Z"));
      let limited: TestServer;
      before(async () => {
        limited = await startTestServer({ store, clock: limitedClock, env: { TESSERA_LOGIN_MAX_FAILURES: "3" } });
      });
      after(async () => {
        await limited?.close();
      });

      for (const protocol of protocols) {
        it(`answers 429 with Retry-After after repeated failures for one login, even with the right password (${protocol})`, async () => {
          const api = userTokenApi(protocol, limited.url);
          try {
            const user = await signUp(limited);
            for (let i = 0; i < 3; i++) expectCode(await api.login(undefined, basic(user.login, `wrong password ${i}`)), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
            const locked = await api.login(undefined, basic(user.login, password));
            expectCode(locked, "resource_exhausted", "too many failed logins; try again later", "LOGIN_LOCKED");
            // The clock stood still since the third failure: the whole first lockout (60 s) is left.
            assert.equal(locked.headers.get("retry-after"), "60");
          } finally {
            api.close();
          }
        });
      }
    });

    for (const protocol of rpcProtocols) {
      describe(`over ${protocol} only (REST's JSON cannot carry such a time)`, () => {
        it("an expirationTime past year 9999 is 400 MALFORMED_REQUEST naming the field", async () => {
          const rpc = new RpcClient(protocol, server.url);
          try {
            const user = await signUp(server);
            const res = await rpc.call(UserTokenService.method.login, { expirationTime: { seconds: 253402300800n * 10n, nanos: 0 } }, basic(user.login, password));
            expectCode(res, "invalid_argument", /^cannot decode field tessera\.usertoken\.v1\.LoginRequest\.expiration_time from binary: google\.protobuf\.Timestamp seconds must be /, "MALFORMED_REQUEST");
            // Control: the same call with a time in range.
            expectOk(await rpc.call(UserTokenService.method.login, { expirationTime: timestampFromDate(new Date(clock.now().getTime() + 60_000)) }, basic(user.login, password)));
          } finally {
            rpc.close();
          }
        });
      });
    }

    describe("REST only: where the answer differs from the document's example (documented)", () => {
      it("answers JSON whatever Accept asks, without Vary: Accept, and an offset expirationTime in UTC", async () => {
        const user = await signUp(server);
        const res = await rest(server.url, "POST", "/auth/login", {
          headers: { ...basic(user.login, password), accept: "text/html" },
          json: { note: "Client API Access", expirationTime: "2099-07-29T23:59:59-05:00" },
        });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.headers.get("content-type"), "application/json");
        assert.equal(res.headers.get("vary"), null);
        assert.deepEqual(Object.keys(res.body), ["token", "note", "expirationTime", "creationTime", "enabled", "version"]);
        assert.equal(res.body.expirationTime, "2099-07-30T04:59:59Z");
        const bump = await rest(server.url, "POST", "/auth/bump", { headers: { ...bearer(res.body.token), accept: "application/xml" } });
        assert.equal(bump.status, 200, bump.text);
        assert.equal(bump.headers.get("content-type"), "application/json");
        assert.deepEqual(Object.keys(bump.body), ["lastLoginTime"]);
      });
    });

    describe("REST only: the JSON body", () => {
      it("an expirationTime not in RFC 3339 form (no zone, or not a time) is 400 naming the field", async () => {
        const user = await signUp(server);
        for (const expirationTime of ["tomorrow", "2099-07-29 23:59:59"]) {
          const res = await rest(server.url, "POST", "/auth/login", { headers: basic(user.login, password), json: { expirationTime } });
          assert.equal(res.status, 400, res.text);
          const message = 'invalid request body: field "expirationTime": cannot decode message google.protobuf.Timestamp from JSON: invalid RFC 3339 string';
          assert.deepEqual(decodedBody(res.body), {
            code: "invalid_argument",
            message,
            details: tesseraDetails("INVALID_BODY_FIELD", { expiration_time: message }),
          });
        }
      });
      // RFC 3339 (5.6, 5.7) allows these; google.protobuf.Timestamp's JSON form does not. The
      // answer says what is not taken rather than calling the text no RFC 3339 string.
      it("an expirationTime RFC 3339 allows but Tessera does not read (a leap second, over 9 fraction digits, t or z in lower case) is 400 saying why", async () => {
        const user = await signUp(server);
        const leap = "invalid RFC 3339 string: a leap second (:60) is not supported: google.protobuf.Timestamp has none";
        const digits = "invalid RFC 3339 string: at most 9 fraction digits (nanoseconds) are supported";
        const lower = 'invalid RFC 3339 string: "T" and "Z" are taken in upper case only';
        for (const [expirationTime, why] of [
          ["2098-12-31T23:59:60Z", leap],
          ["2098-12-31T18:59:60-05:00", leap],
          ["2098-12-31T23:59:59.1234567891Z", digits],
          ["2098-12-31t23:59:59Z", lower],
          ["2098-12-31T23:59:59z", lower],
        ] as const) {
          const res = await rest(server.url, "POST", "/auth/login", { headers: basic(user.login, password), json: { expirationTime } });
          const message = `invalid request body: field "expirationTime": cannot decode message google.protobuf.Timestamp from JSON: ${why}`;
          assert.equal(res.status, 400, res.text);
          assert.deepEqual(decodedBody(res.body), { code: "invalid_argument", message, details: tesseraDetails("INVALID_BODY_FIELD", { expiration_time: message }) }, expirationTime);
        }
      });
      it("an expirationTime given twice (under one name, or under both its names) is 400 naming the field", async () => {
        const user = await signUp(server);
        for (const [body, key] of [
          ['{"expirationTime":"2099-01-01T00:00:00Z","expirationTime":"2098-01-01T00:00:00Z"}', "expirationTime"],
          ['{"expirationTime":"2099-01-01T00:00:00Z","expiration_time":"2098-01-01T00:00:00Z"}', "expiration_time"],
        ] as const) {
          const res = await rest(server.url, "POST", "/auth/login", { headers: { ...basic(user.login, password), "content-type": "application/json" }, body });
          assert.equal(res.status, 400, res.text);
          const message = `invalid request body: field "${key}" is given more than once`;
          assert.deepEqual(decodedBody(res.body), {
            code: "invalid_argument",
            message,
            details: tesseraDetails("INVALID_BODY_FIELD", { expiration_time: message }),
          });
        }
      });
    });

    describe("Connect only: the JSON on the wire", () => {
      it("uses the document's names (version a number, RFC 3339 times)", async () => {
        const user = await signUp(server);
        const res = await rest(server.url, "POST", "/tessera.usertoken.v1.UserTokenService/Login", {
          headers: basic(user.login, password),
          json: { note: "wire", expirationTime: "2099-01-01T00:00:00Z" },
        });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(Object.keys(res.body).sort(), ["creationTime", "enabled", "expirationTime", "note", "token", "version"]);
        assert.equal(res.body.version, 0);
        assert.equal(res.body.expirationTime, "2099-01-01T00:00:00Z");
      });
    });
  });
}
