// What a refused password login tells about the account: nothing. On every login API, an unknown
// login, a known one with a wrong password, a deactivated user with a wrong password, a password
// longer than the policy allows (for a known login and an unknown one) and a login that is not
// well-formed get the same answer (code, message, reason, WWW-Authenticate, no Retry-After) and
// cost the same: one argon2 verification, no hash made. A locked login answers the same 429
// whether it exists or not, and hashes nothing; so does one that finds every hasher busy (503
// HASHER_BUSY, counted nowhere). (Only the right password of a deactivated user is
// told 403 USER_DEACTIVATED; a sign-up of a taken login is 409: both documented.) A sign-up that
// finds every hasher busy answers the same 503 whether its login is taken or free.
import assert from "node:assert/strict";
import argon2 from "argon2";
import { ManualClock } from "../../src/core/clock.js";
import { expectCode, expectOk, type Outcome } from "../support/api.js";
import { bearer, rest, type RestResponse } from "../support/clients.js";
import { heldArgon2 } from "../support/held-argon2.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { clientIdHeader, password, uniqueEmail, uniqueName } from "../support/users.js";
import { argon2Costs, loginApi, loginPaths, transports, wrongPassword, type LoginApi, type LoginPath, type Seen } from "./api.js";

const tooLong = "x".repeat(300); // the password policy's limit is 256 characters

for (const store of storesUnderTest()) {
  for (const transport of transports) {
    describe(`a refused login tells nothing about the account (${store}, ${transport})`, function () {
      this.timeout(60_000);
      const clock = new ManualClock(Date.now());
      let server: TestServer;
      let api: LoginApi;
      let costs: ReturnType<typeof argon2Costs>;
      before(async () => {
        // Three failures lock a login, twelve an address.
        server = await startTestServer({ store, clock, env: { TESSERA_LOGIN_MAX_FAILURES: "3" } });
        api = loginApi(transport, server.url);
        costs = argon2Costs();
      });
      afterEach(() => clock.advance(16 * 60 * 1000)); // past every window and lock
      after(async () => {
        costs?.restore();
        api?.close();
        await server?.close();
      });

      const seen = (call: () => Promise<Outcome<unknown>>): Promise<Seen> => costs.seen(call);

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
          expectCode(await path.attempt(api, unknown(), wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS"); // the dummy hash is made by now
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
            for (let i = 0; i < 3; i++) expectCode(await path.attempt(api, login, wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
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
      expectCode(await path.attempt(api, uniqueEmail("nobody"), wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS"); // the dummy hash is made by now
      // A verification that waits until released holds the only hasher.
      const verify = heldArgon2("verify");
      try {
        const holding = path.attempt(api, uniqueEmail("holder"), wrongPassword);
        await verify.started();
        for (const [what, login] of [["unknown", uniqueEmail("nobody")], ["known", known], ["deactivated", inactive]] as const) {
          const o = await path.attempt(api, login, wrongPassword);
          expectCode(o, "unavailable", "too many password checks in progress; retry shortly", "HASHER_BUSY");
          assert.match(o.headers.get("retry-after") ?? "", /^[123]$/, what);
        }
        assert.equal(verify.calls.length, 1, "only the holder's verification ran");
        verify.release();
        expectCode(await holding, "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
      } finally {
        verify.restore();
      }
      // Nothing was counted for the known login: its three failures are still to come.
      for (let i = 0; i < 3; i++) expectCode(await path.attempt(api, known, wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
      expectCode(await path.attempt(api, known, password), "resource_exhausted", "too many failed logins; try again later", "LOGIN_LOCKED");
    });
  });

  describe(`a sign-up that finds the hasher full tells nothing about the login (${store})`, function () {
    this.timeout(60_000);
    let server: TestServer;
    before(async () => (server = await startTestServer({ store, env: { TESSERA_HASH_CONCURRENCY: "1", TESSERA_HASH_QUEUE_LIMIT: "0" } })));
    after(() => server?.close());

    /** The RetryInfo detail of a JSON error body, its delay 1, 2 or 3 s (base64 of the google.rpc.RetryInfo). */
    const retryInfo = /\{"type":"google\.rpc\.RetryInfo","debug":\{"retryDelay":"([123])s"\},"value":"CgII(AQ|Ag|Aw)"\}/;

    it("POST /user and POST /jwt/user of a taken login and of a free one answer the same 503 HASHER_BUSY", async () => {
      const takenEmail = uniqueEmail("taken");
      const takenName = uniqueName("taken");
      const signUp = (email: string) => rest(server.url, "POST", "/user", { json: { email, password }, headers: clientIdHeader });
      const jwtSignUp = (user: string) => rest(server.url, "POST", "/jwt/user", { json: { user, pass: password } });
      assert.equal((await signUp(takenEmail)).status, 201);
      assert.equal((await jwtSignUp(takenName)).status, 201);
      // A hash that waits until released holds the only hasher.
      const hash = heldArgon2("hash");
      try {
        const holding = signUp(uniqueEmail("holder"));
        await hash.started();
        for (const [taken, free] of [
          [await signUp(takenEmail), await signUp(uniqueEmail("free"))],
          [await jwtSignUp(takenName), await jwtSignUp(uniqueName("free"))],
        ]) {
          // The wait a refusal asks for is drawn at random (1, 2 or 3 s), for either login.
          const seen = (a: RestResponse) => ({ status: a.status, body: a.text.replace(retryInfo, "RetryInfo"), retryAfter: a.headers.get("retry-after")?.replace(/^[123]$/, "n") });
          assert.deepEqual(seen(taken!), seen(free!), "a taken login answers as a free one");
          assert.equal(free!.status, 503, free!.text);
          assert.deepEqual([free!.body.code, free!.body.message, free!.body.details[0].debug.reason], [
            "unavailable",
            "too many password checks in progress; retry shortly",
            "HASHER_BUSY",
          ]);
        }
        assert.equal(hash.calls.length, 1, "only the holder's hash ran");
        hash.release();
        assert.equal((await holding).status, 201);
        // With a hasher free, a taken login is found before any hashing.
        assert.equal((await signUp(takenEmail)).status, 409);
        assert.equal((await jwtSignUp(takenName)).status, 409);
        assert.equal(hash.calls.length, 1, "no hash for a taken login");
      } finally {
        hash.restore();
      }
    });
  });
}
