// A login answered 503 because the store failed (STORE_UNAVAILABLE: nothing was checked, or a
// right password's slot could not be given back) is no guess: once the store answers again, it
// holds no slot of its login's window nor of its address's, and the right password logs in.
// Its slot's give-back, refused by the store, is owed and made before the next attempt is counted
// (README, "Login protection"). Were it left to the lease, every later attempt on the key (all the
// clients behind one address, under steady load) would renew it, and a handful of logins during
// an outage would refuse a right password 429 LOGIN_LOCKED afterwards.
//
// The store fails exactly the steps that left slots held: the account's lookup after the slots
// were taken (then the attempt's release), and a right password's release. A wrong password
// whose failure the store did not write was a guess: its slot is not given back, and stays held
// under the lease. A stop tries what is owed once more, before the store closes, then no more.
import assert from "node:assert/strict";
import { currentCall } from "../../src/call-scope.js";
import { loginKey } from "../../src/core/login-name.js";
import { StoreUnavailableError } from "../../src/store/ports/errors.js";
import type { HeldSlot, LoginAttemptStore } from "../../src/store/ports/login-attempts.js";
import type { UserStore } from "../../src/store/ports/users.js";
import { expectCode, expectOk, type Outcome } from "../support/api.js";
import { gate, type Gate } from "../credentials/support.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { password, uniqueEmail } from "../support/users.js";
import { loginApi, type LoginApi, type Transport } from "./api.js";

/** Slots per login (TESSERA_LOGIN_MAX_FAILURES); an address has four times as many. */
const N = 2;
const unavailable = "the store is unavailable, try again shortly";

function expectStoreUnavailable(outcome: Outcome<unknown>): void {
  expectCode(outcome, "unavailable", unavailable, "STORE_UNAVAILABLE");
}

for (const store of storesUnderTest()) {
  for (const transport of ["rest-h1", "grpc"] as Transport[]) {
    describe(`login protection: logins answered 503 while the store failed hold no slot afterwards (${store}, ${transport})`, function () {
      this.timeout(120_000);
      let server: TestServer;
      let api: LoginApi;
      /** Whose lookups fail (login keys), and whether every release fails. */
      const failingLookups = new Set<string>();
      let releasesFail = false;
      /** Whether every failure's write fails. */
      let failuresFail = false;
      /** While set, every release waits for it to open, then fails (sent while the store was away). */
      let releasesHeld: Gate | undefined;
      /** Told as a login asks whether it is remembered from its address, beside its wait for what is owed. */
      let rememberedAsked: (() => void) | undefined;
      /** The releases asked of the store, each with whether the server had stopped by then. */
      const releases: Array<{ afterStop: boolean }> = [];
      /** For each release asked of the store, whether it was asked within a call's scope. */
      const releasesInCall: boolean[] = [];
      let stopped = false;

      // A server each: one case's slots, were they held, are not the next one's.
      beforeEach(async () => {
        server = await startTestServer({ store, env: { TESSERA_LOGIN_MAX_FAILURES: String(N) } });
        api = loginApi(transport, server.url);
        const users = server.tessera.store.users as UserStore;
        const findByLogin = users.findByLogin;
        users.findByLogin = (spelling, key) =>
          failingLookups.has(key) ? Promise.reject(new StoreUnavailableError("the store went away")) : findByLogin.call(users, spelling, key);
        const attempts = server.tessera.store.loginAttempts as LoginAttemptStore;
        const release = attempts.release;
        const recordFailure = attempts.recordFailure;
        attempts.recordFailure = (slots, at, rule) =>
          failuresFail ? Promise.reject(new StoreUnavailableError("the store went away")) : recordFailure.call(attempts, slots, at, rule);
        const rememberedUntil = attempts.rememberedUntil;
        attempts.rememberedUntil = (hash) => {
          rememberedAsked?.();
          return rememberedUntil.call(attempts, hash);
        };
        attempts.release = (slots: readonly HeldSlot[]) => {
          releases.push({ afterStop: stopped });
          releasesInCall.push(currentCall() !== undefined);
          const held = releasesHeld;
          if (held) return held.pass().then(() => Promise.reject(new StoreUnavailableError("the store went away")));
          return releasesFail ? Promise.reject(new StoreUnavailableError("the store went away")) : release.call(attempts, slots);
        };
      });
      afterEach(async () => {
        failingLookups.clear();
        releasesFail = false;
        failuresFail = false;
        releasesHeld?.open();
        releasesHeld = undefined;
        rememberedAsked = undefined;
        releases.length = 0;
        releasesInCall.length = 0;
        api?.close();
        if (!stopped) await server?.close();
        stopped = false;
      });

      /** Waits longer than the owed give-backs' retry (a second). */
      const pastRetry = () => new Promise((resolve) => setTimeout(resolve, 1500));

      /** Stops the server, then waits past a retry. */
      const stop = async () => {
        api.close();
        await server.close();
        stopped = true;
        await pastRetry();
      };

      const account = async () => {
        const email = uniqueEmail("outage");
        expectOk(await api.signUp(email, password), 201);
        return email;
      };

      /**
       * An account whose right password was answered 503, its release failed (owed); then the
       * store fails releases still (`storeBack` false) or no more, and the releases asked of it
       * so far are forgotten.
       */
      const owing = async (storeBack: boolean) => {
        const login = await account();
        releasesFail = true;
        expectStoreUnavailable(await api.logIn(login, password));
        releasesFail = !storeBack;
        releases.length = 0;
        releasesInCall.length = 0;
        return login;
      };

      it("the account's lookup fails after the slots were taken, and so does their release: the right password then logs in", async () => {
        const login = await account();
        failingLookups.add(loginKey(login));
        releasesFail = true;
        for (let i = 0; i < N; i++) expectStoreUnavailable(await api.logIn(login, password));
        failingLookups.clear();
        releasesFail = false;
        expectOk(await api.logIn(login, password));
      });

      it("the right password's release fails: 503, and the right password then logs in", async () => {
        const login = await account();
        releasesFail = true;
        for (let i = 0; i < N; i++) expectStoreUnavailable(await api.logIn(login, password));
        releasesFail = false;
        expectOk(await api.logIn(login, password));
      });

      it("an address's logins answered 503 (each account's lookup and release failing) do not refuse a stranger's right password from it", async () => {
        const logins: string[] = [];
        for (let i = 0; i < 4 * N; i++) logins.push(await account());
        const stranger = await account();
        releasesFail = true;
        for (const login of logins) {
          failingLookups.add(loginKey(login));
          expectStoreUnavailable(await api.logIn(login, password));
        }
        failingLookups.clear();
        releasesFail = false;
        expectOk(await api.logIn(stranger, password));
      });

      it("a login that comes while a retry sent before the store answered again is under way waits for one more after it: the right password logs in", async () => {
        const login = await account();
        releasesFail = true;
        for (let i = 0; i < N; i++) expectStoreUnavailable(await api.logIn(login, password));
        // The next retry (by itself, within a second) is sent while the store is still away, and
        // held there, as a MongoDB call is until the store's time bound.
        const retry = gate();
        releasesHeld = retry;
        await retry.reached;
        releasesHeld = undefined;
        releasesFail = false;
        // The store answers again; a login comes while that retry is under way, which then fails.
        const asked = new Promise<void>((resolve) => (rememberedAsked = resolve));
        const logging = api.logIn(login, password);
        await asked;
        retry.open();
        expectOk(await logging);
      });

      it("the give-back a login answered 503 owes, made by itself a second later, is no part of that login's call", async () => {
        const login = await owing(true);
        await pastRetry();
        assert.deepEqual(releasesInCall, [false]);
        expectOk(await api.logIn(login, password));
      });

      it("the give-back a login answered 503 owes, made before the next login is counted, is no part of that next login's call", async () => {
        const login = await owing(true);
        expectOk(await api.logIn(login, password));
        // The owed give-back, then the next login's own (in its call).
        assert.deepEqual(releasesInCall, [false, true]);
      });

      it("a wrong password whose failure the store did not write (503) was a guess: its slot stays held, and the right password is refused while its lease runs", async () => {
        const login = await account();
        failuresFail = true;
        for (let i = 0; i < N; i++) expectStoreUnavailable(await api.logIn(login, "wrong-" + password));
        failuresFail = false;
        const outcome = await api.logIn(login, password);
        expectCode(outcome, "resource_exhausted", "too many failed logins; try again later", "LOGIN_LOCKED");
        assert.equal(outcome.headers.get("retry-after"), "1");
      });

      it("a stop while the store still fails the release it owes asks nothing of the store once stopped", async () => {
        await owing(false);
        await stop();
        assert.deepEqual(releases.filter((r) => r.afterStop), []);
      });

      it("a stop once the store answers again gives the release it owes back before the store closes", async () => {
        await owing(true);
        await stop();
        assert.deepEqual(releases, [{ afterStop: false }]);
      });
    });
  }
}
