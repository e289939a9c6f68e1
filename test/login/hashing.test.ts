// Password hashing has admission control, and sign-ups are limited:
// - every API that creates users counts its sign-ups per client address (TOO_MANY_SIGNUPS, 429
//   with Retry-After), duplicates included, malformed requests not;
// - a duplicate sign-up is found before any hashing (once admitted: a full hasher refuses it as
//   it refuses a new login, enumeration.test.ts; once admitted, its place is held for its hash,
//   so a hasher filled during its lookup refuses neither a taken login nor a free one,
//   admitted-hash.test.ts);
// - when every hasher is busy and the wait queue is full, a login or sign-up answers at once
//   UNAVAILABLE HASHER_BUSY (REST 503) with Retry-After, without hashing or counting.
import assert from "node:assert/strict";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { expectCode, expectOk, type Outcome } from "../support/api.js";
import { answeredWhileHashing } from "../support/held-argon2.js";
import { password, uniqueEmail, uniqueName } from "../support/users.js";
import { expectRetryLater, loginApi, transports, type LoginApi } from "./api.js";

const tooManySignUps = "too many sign-ups from this address; try again later";
const busy = "too many password checks in progress; retry shortly";

for (const store of storesUnderTest()) {
  for (const transport of transports) {
    describe(`sign-ups are limited per address (${store}, ${transport})`, function () {
      this.timeout(60_000);
      let server: TestServer;
      let api: LoginApi;
      before(async () => {
        server = await startTestServer({ store, env: { TESSERA_SIGNUP_MAX_PER_ADDRESS: "3" } });
        api = loginApi(transport, server.url);
      });
      after(async () => {
        api?.close();
        await server?.close();
      });

      it("counts POST /user and POST /jwt/user alike, duplicates too, and refuses the next with 429 and Retry-After", async () => {
        const email = uniqueEmail("signup");
        expectOk(await api.signUp(email, password), 201);
        expectCode(await api.signUp("not an email", password), "invalid_argument", "email is not a valid email address", "INVALID_FIELD"); // not counted
        expectCode(await api.createJwtUser(uniqueName("signup"), "short"), "invalid_argument", "password too short: at least 8 characters required", "WEAK_PASSWORD"); // not counted
        expectOk(await api.createJwtUser(uniqueName("signup"), password), 201);
        expectCode(await api.signUp(email.toUpperCase(), password), "already_exists", "a user with this email already exists", "USER_EXISTS");
        expectRetryLater(await api.createJwtUser(uniqueName("signup"), password), "resource_exhausted", tooManySignUps, "TOO_MANY_SIGNUPS");
        expectRetryLater(await api.signUp(uniqueEmail("signup"), password), "resource_exhausted", tooManySignUps, "TOO_MANY_SIGNUPS");
        // Logins are not sign-ups.
        expectOk(await api.logIn(email, password));
      });
    });

    describe(`hash admission control (${store}, ${transport})`, function () {
      this.timeout(120_000);
      let server: TestServer;
      let api: LoginApi;
      before(async () => {
        server = await startTestServer({
          store,
          env: {
            // One hash at a time, one waiting: a burst sent while the first hash is held finds
            // the hasher busy (all but those two are answered meanwhile: answeredWhileHashing).
            TESSERA_HASH_CONCURRENCY: "1",
            TESSERA_HASH_QUEUE_LIMIT: "1",
            // Three failures per login, twelve per address.
            TESSERA_LOGIN_MAX_FAILURES: "3",
          },
        });
        api = loginApi(transport, server.url);
      });
      after(async () => {
        api?.close();
        await server?.close();
      });

      it("a burst of sign-ups: what finds the hasher and its queue full answers 503 HASHER_BUSY with Retry-After", async () => {
        const emails = Array.from({ length: 12 }, () => uniqueEmail("flood"));
        const outcomes = await answeredWhileHashing("hash", emails.length - 2, () => emails.map((e) => api.signUp(e, password)));
        const refused = checkBusyOr(outcomes, "ok");
        // A refused sign-up created nothing and counted nothing: the same one succeeds later.
        const retried = emails[outcomes.indexOf(refused[0]!)]!;
        expectOk(await api.signUp(retried, password), 201);
        expectOk(await api.logIn(retried, password));
      });

      it("a burst of logins for made-up accounts: those that find the hasher full answer 503 HASHER_BUSY and count as no failure", async () => {
        const outcomes = await answeredWhileHashing("verify", 10, () => Array.from({ length: 12 }, () => api.logIn(uniqueEmail("made-up"), password)));
        checkBusyOr(outcomes, "unauthenticated");
        // Had all 12 counted, the address would be locked now (12 failures per address).
        expectCode(await api.logIn(uniqueEmail("made-up"), password), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
      });
    });
  }
}

/**
 * Two outcomes are `evaluated` (the hasher's answer: one hashing, one waiting in the queue), every
 * other HASHER_BUSY with Retry-After 1, 2 or 3 (drawn at random: README, Login protection); returns
 * the refused ones.
 */
function checkBusyOr(outcomes: Outcome<unknown>[], evaluated: "ok" | "unauthenticated"): Outcome<unknown>[] {
  const refused = outcomes.filter((o) => o.code !== evaluated);
  for (const o of refused) assert.ok([1, 2, 3].includes(expectRetryLater(o, "unavailable", busy, "HASHER_BUSY")));
  assert.equal(outcomes.length - refused.length, 2, `evaluated: ${outcomes.map((o) => o.code).join(", ")}`);
  return refused;
}
