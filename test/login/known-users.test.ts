// An address lock does not lock out known users: a login that succeeded from an address within
// the last 30 days is refused only by its own login's window, not by that address's lock.
// Strangers from a locked address, and users who never logged in from it, still wait.
import { ManualClock } from "../../src/core/clock.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { expectCode, expectOk } from "../support/api.js";
import { password, uniqueEmail } from "../support/users.js";
import { expectRetryLater, loginApi, transports, wrongPassword, type LoginApi } from "./api.js";

const locked = "too many failed logins; try again later";
const day = 24 * 60 * 60 * 1000;

for (const store of storesUnderTest()) {
  for (const transport of transports) {
    describe(`login protection: known users behind a locked address (${store}, ${transport})`, function () {
      this.timeout(60_000);
      const clock = new ManualClock(Date.now());
      let server: TestServer;
      let api: LoginApi;
      let known: string;
      let newcomer: string;
      before(async () => {
        // Two failures per login; the address gets four times as many (8).
        server = await startTestServer({ store, clock, env: { TESSERA_LOGIN_MAX_FAILURES: "2" } });
        api = loginApi(transport, server.url);
        known = uniqueEmail("known");
        newcomer = uniqueEmail("newcomer");
        for (const email of [known, newcomer]) expectOk(await api.signUp(email, password), 201);
        expectOk(await api.logIn(known, password));
        // Strangers guess at made-up logins from the same address until it locks.
        for (let i = 0; i < 8; i++) expectCode(await api.logIn(uniqueEmail("stranger"), wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
      });
      after(async () => {
        api?.close();
        await server?.close();
      });
      /** Strangers guess at made-up logins from the address until it locks (8 failures). */
      const strangersLockTheAddress = async () => {
        for (let i = 0; i < 8; i++) expectCode(await api.logIn(uniqueEmail("stranger"), wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
        expectRetryLater(await api.logIn(uniqueEmail("stranger"), wrongPassword), "resource_exhausted", locked, "LOGIN_LOCKED");
      };

      it("strangers, and users who never logged in from the address, get 429; one who did gets in, on every login API", async () => {
        expectRetryLater(await api.logIn(uniqueEmail("stranger"), wrongPassword), "resource_exhausted", locked, "LOGIN_LOCKED");
        expectRetryLater(await api.logIn(newcomer, password), "resource_exhausted", locked, "LOGIN_LOCKED");
        expectRetryLater(await api.basicLogin(newcomer, password), "resource_exhausted", locked, "LOGIN_LOCKED");
        expectOk(await api.logIn(known, password));
        expectOk(await api.basicLogin(known, password));
        // A look-alike spelling is the same login (and so as known).
        expectOk(await api.logIn(known.toUpperCase(), password));
      });

      it("the known user's own login window still holds", async () => {
        for (let i = 0; i < 2; i++) expectCode(await api.logIn(known, wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
        expectRetryLater(await api.logIn(known, password), "resource_exhausted", locked, "LOGIN_LOCKED");
      });

      it("a login is known for 30 days after its last success from the address", async () => {
        const returning = uniqueEmail("returning");
        expectOk(await api.signUp(returning, password), 201);
        clock.advance(16 * 60 * 1000); // past the address lock and its window
        expectOk(await api.logIn(returning, password));
        clock.advance(29 * day);
        await strangersLockTheAddress();
        expectOk(await api.logIn(returning, password)); // known; and now for 30 days from here
        clock.advance(30 * day - 20 * 60 * 1000);
        await strangersLockTheAddress();
        expectOk(await api.logIn(returning, password)); // known still (thanks to the last success), for 30 days more
        clock.advance(30 * day + 10 * 60 * 1000); // 30 days and 10 minutes since its last success
        await strangersLockTheAddress();
        expectRetryLater(await api.logIn(returning, password), "resource_exhausted", locked, "LOGIN_LOCKED");
      });

      it("a success within a day of the one that recorded the login records nothing: it is forgotten 30 days after that record, before 30 days have passed since its last success", async () => {
        const daily = uniqueEmail("daily");
        expectOk(await api.signUp(daily, password), 201);
        clock.advance(16 * 60 * 1000); // past the address lock and its window
        expectOk(await api.logIn(daily, password)); // recorded: known for 30 days from here
        clock.advance(12 * 60 * 60 * 1000);
        expectOk(await api.logIn(daily, password)); // its last success, within a day of the record: not recorded again
        clock.advance(29.5 * day - 10 * 60 * 1000); // 30 days less 10 minutes since the record
        await strangersLockTheAddress();
        // Known still: a wrong password is checked (401), not refused by the address's lock.
        expectCode(await api.logIn(daily, wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
        clock.advance(20 * 60 * 1000); // 30 days and 10 minutes since the record, 29.5 days and 10 minutes since the last success
        await strangersLockTheAddress();
        expectRetryLater(await api.logIn(daily, password), "resource_exhausted", locked, "LOGIN_LOCKED");
      });
    });
  }
}
