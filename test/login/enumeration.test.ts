// What a refused password login tells about the account: nothing. On every login API, an unknown
// login, a known one with a wrong password, a deactivated user with a wrong password, a password
// longer than the policy allows (for a known login and an unknown one) and a login that is not
// well-formed get the same answer (code, message, reason, WWW-Authenticate, no Retry-After) and
// cost the same: one argon2 verification, no hash made. A locked login answers the same 429
// whether it exists or not, and hashes nothing. (Only the right password of a deactivated user is
// told 403 USER_DEACTIVATED; a sign-up of a taken login is 409: both documented.)
import assert from "node:assert/strict";
import argon2 from "argon2";
import { ManualClock } from "../../src/core/clock.js";
import { expectCode, expectOk, type Outcome } from "../support/api.js";
import { bearer, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { spyOn, type Spy } from "../support/spy.js";
import { password, uniqueEmail, uniqueName } from "../support/users.js";
import { loginApi, loginPaths, transports, wrongPassword, type LoginApi, type LoginPath } from "./api.js";

/** What an answer shows a caller, and what it cost in argon2 calls. */
interface Seen {
  code: string;
  message: string | undefined;
  reason: string | undefined;
  challenge: string | null;
  retryAfter: string | null;
  verifies: number;
  hashes: number;
}

const tooLong = "x".repeat(300); // the password policy's limit is 256 characters

for (const store of storesUnderTest()) {
  for (const transport of transports) {
    describe(`a refused login tells nothing about the account (${store}, ${transport})`, function () {
      this.timeout(60_000);
      const clock = new ManualClock(Date.now());
      let server: TestServer;
      let api: LoginApi;
      let verify: Spy<unknown[]>;
      let hash: Spy<unknown[]>;
      before(async () => {
        // Three failures lock a login, twelve an address.
        server = await startTestServer({ store, clock, env: { TESSERA_LOGIN_MAX_FAILURES: "3" } });
        api = loginApi(transport, server.url);
        verify = spyOn(argon2, "verify") as Spy<unknown[]>;
        hash = spyOn(argon2, "hash") as Spy<unknown[]>;
      });
      afterEach(() => clock.advance(16 * 60 * 1000)); // past every window and lock
      after(async () => {
        verify?.restore();
        hash?.restore();
        api?.close();
        await server?.close();
      });

      const seen = async (call: () => Promise<Outcome<unknown>>): Promise<Seen> => {
        const [v, h] = [verify.calls.length, hash.calls.length];
        const o = await call();
        return {
          code: o.code,
          message: o.message,
          reason: o.details?.reason,
          challenge: o.headers.get("www-authenticate"),
          retryAfter: o.headers.get("retry-after"),
          verifies: verify.calls.length - v,
          hashes: hash.calls.length - h,
        };
      };

      const deactivated = async (path: LoginPath): Promise<string> => {
        const login = await path.createAccount(api, password);
        const jwt = expectOk(await api.jwtToken(login, password)).token;
        assert.equal((await rest(server.url, "DELETE", "/jwt/user", { headers: bearer(jwt) })).status, 204);
        return login;
      };

      for (const path of loginPaths("enum")) {
        const unknown = () => (path.name.includes("jwt") ? uniqueName("nobody") : uniqueEmail("nobody"));
        const malformed = path.name.includes("jwt") ? "n".repeat(300) : "not-an-email";

        it(`${path.name}: unknown, wrong password, deactivated, over-long password, malformed login: one answer, one verification`, async () => {
          const known = await path.createAccount(api, password);
          const inactive = await deactivated(path);
          expectCode(await path.attempt(api, unknown(), wrongPassword), "unauthenticated"); // the dummy hash is made by now
          const reference = await seen(() => path.attempt(api, unknown(), wrongPassword));
          assert.deepEqual(
            { ...reference, challenge: undefined },
            { code: "unauthenticated", message: "invalid login or password", reason: "INVALID_CREDENTIALS", challenge: undefined, retryAfter: null, verifies: 1, hashes: 0 },
          );
          const cases: Array<[string, () => Promise<Outcome<unknown>>]> = [
            ["a wrong password", () => path.attempt(api, known, wrongPassword)],
            ["a deactivated user's wrong password", () => path.attempt(api, inactive, wrongPassword)],
            ["an over-long password, known login", () => path.attempt(api, known, tooLong)],
            ["an over-long password, unknown login", () => path.attempt(api, unknown(), tooLong)],
            ["a malformed login", () => path.attempt(api, malformed, wrongPassword)],
          ];
          for (const [what, call] of cases) assert.deepEqual(await seen(call), reference, what);
        });

        it(`${path.name}: a locked login answers the same 429 whether it exists or not, hashing nothing`, async () => {
          const known = await path.createAccount(api, password);
          const stranger = unknown();
          for (const login of [known, stranger]) {
            for (let i = 0; i < 3; i++) expectCode(await path.attempt(api, login, wrongPassword), "unauthenticated");
          }
          const reference = await seen(() => path.attempt(api, stranger, wrongPassword));
          assert.deepEqual(
            { ...reference, challenge: undefined },
            { code: "resource_exhausted", message: "too many failed logins; try again later", reason: "LOGIN_LOCKED", challenge: undefined, retryAfter: "60", verifies: 0, hashes: 0 },
          );
          assert.deepEqual(await seen(() => path.attempt(api, known, wrongPassword)), reference, "the account's wrong password");
          assert.deepEqual(await seen(() => path.attempt(api, known, password)), reference, "the account's right password");
        });
      }
    });
  }
}
