// What a refused password login tells about the account: nothing. On every login API, an unknown
// login, a known one with a wrong password, a deactivated user with a wrong password, a password
// longer than the policy allows (for a known login and an unknown one) and a login that is not
// well-formed get the same answer (code, message, reason, WWW-Authenticate, no Retry-After) and
// cost the same: one argon2 verification, no hash made. A locked login answers the same 429
// whether it exists or not, and hashes nothing; so does one that finds every hasher busy (503
// HASHER_BUSY, counted nowhere). (Only the right password of a deactivated user is
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

for (const store of storesUnderTest()) {
  describe(`a login that finds the hasher full tells nothing about the account (${store})`, function () {
    this.timeout(60_000);
    let server: TestServer;
    let api: LoginApi;
    before(async () => {
      // One hasher, no queue; three failures lock a login.
      server = await startTestServer({ store, env: { TESSERA_HASH_CONCURRENCY: "1", TESSERA_HASH_QUEUE_LIMIT: "0", TESSERA_LOGIN_MAX_FAILURES: "3" } });
      api = loginApi("rest-h1", server.url);
    });
    after(async () => {
      api?.close();
      await server?.close();
    });

    it("known, unknown and deactivated logins alike answer 503 HASHER_BUSY, verify nothing and count nothing", async () => {
      const path = loginPaths("busy")[0]!; // POST /session
      const known = await path.createAccount(api, password);
      const inactive = await path.createAccount(api, password);
      const jwt = expectOk(await api.jwtToken(inactive, password)).token;
      assert.equal((await rest(server.url, "DELETE", "/jwt/user", { headers: bearer(jwt) })).status, 204);
      expectCode(await path.attempt(api, uniqueEmail("nobody"), wrongPassword), "unauthenticated"); // the dummy hash is made by now
      // A verification that waits until released holds the only hasher.
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let held = 0;
      const original = argon2.verify;
      const verify = spyOn(argon2, "verify", (async (...args: Parameters<typeof argon2.verify>) => {
        held++;
        await gate;
        return original.apply(argon2, args);
      }) as typeof argon2.verify);
      try {
        const holding = path.attempt(api, uniqueEmail("holder"), wrongPassword);
        while (held === 0) await new Promise((r) => setTimeout(r, 5));
        for (const [what, login] of [["unknown", uniqueEmail("nobody")], ["known", known], ["deactivated", inactive]] as const) {
          const o = await path.attempt(api, login, wrongPassword);
          expectCode(o, "unavailable", "too many password checks in progress; retry shortly", "HASHER_BUSY");
          assert.match(o.headers.get("retry-after") ?? "", /^[123]$/, what);
        }
        assert.equal(verify.calls.length, 1, "only the holder's verification ran");
        release();
        expectCode(await holding, "unauthenticated");
      } finally {
        release();
        verify.restore();
      }
      // Nothing was counted for the known login: its three failures are still to come.
      for (let i = 0; i < 3; i++) expectCode(await path.attempt(api, known, wrongPassword), "unauthenticated", "invalid login or password");
      expectCode(await path.attempt(api, known, password), "resource_exhausted", "too many failed logins; try again later");
    });
  });
}
