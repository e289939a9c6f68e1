// A login attempt holds its slot while its password is checked. One that never ends (its process
// killed mid-check, or its release lost while the store was down) holds it on a lease, not for the
// whole window: once no attempt can still be checking, the login answers again, within the same
// window. Failures are not leased. A check that outlasts its time is answered without its
// verdict, so every verdict given came while its slot still counted.
//
// A dead process is simulated by taking the login's slots through the store, as another instance
// of the same database would, and never ending them.
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { LoginThrottle, loginCheckTimes } from "../../src/core/login-throttle.js";
import { loginKey } from "../../src/core/login-name.js";
import { expectCode, expectOk, type Outcome } from "../support/api.js";
import { heldArgon2 } from "../support/held-argon2.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { password, uniqueEmail } from "../support/users.js";
import { loginApi, loginPaths, wrongPassword, type LoginApi } from "./api.js";

const N = 2;
const locked = "too many failed logins; try again later";
const hasherBusy = "too many password checks in progress; retry shortly";
/** Addresses of other instances' clients, a new one each time: only the login's own window fills. */
let lastOctet = 0;
const otherAddress = () => `192.0.2.${++lastOctet}`;

const paths = loginPaths("dead");

/** The documented busy answer: 429 LOGIN_LOCKED with Retry-After 1 (no lock: every slot held by attempts being checked). */
function expectBusy(outcome: Outcome<unknown>): void {
  expectCode(outcome, "resource_exhausted", locked, "LOGIN_LOCKED");
  assert.equal(outcome.headers.get("retry-after"), "1");
}


for (const store of storesUnderTest()) {
  describe(`login protection: attempts that never end hold their slots on a lease (${store})`, function () {
    this.timeout(120_000);
    const clock = new ManualClock(Date.now());
    let server: TestServer;
    let api: LoginApi;
    /** Another instance's throttle on the same store and clock: its attempts are the dead ones. */
    let other: LoginThrottle;
    let leaseMs: number;
    before(async () => {
      server = await startTestServer({ store, clock, env: { TESSERA_LOGIN_MAX_FAILURES: String(N) } });
      api = loginApi("rest-h1", server.url);
      other = new LoginThrottle({ loginAttempts: server.tessera.store.loginAttempts, config: server.config, clock });
      ({ leaseMs } = loginCheckTimes(server.config));
      // The lease ends well inside the window: what these tests are about.
      assert.ok(leaseMs * 4 < server.config.loginWindowSeconds * 1000);
    });
    after(async () => {
      api?.close();
      await server?.close();
    });

    /** Takes `count` slots of `login` and never ends them (their process died mid-check). */
    async function dieChecking(login: string, count: number): Promise<void> {
      for (let i = 0; i < count; i++) await other.beginLogin(loginKey(login), otherAddress());
    }

    for (const path of paths) {
      it(`${path.name}: slots of attempts that died mid-check answer busy until their lease passes, then the right password logs in`, async () => {
        const login = await path.createAccount(api, password);
        await dieChecking(login, N);
        expectBusy(await path.attempt(api, login, password));
        clock.advance(leaseMs - 1);
        expectBusy(await path.attempt(api, login, password));
        clock.advance(1);
        expectOk(await path.attempt(api, login, password));
      });
    }

    it("failures are not leased: past the lease of a dead attempt, the failure before it still counts and the next one locks", async () => {
      const login = await paths[0]!.createAccount(api, password);
      expectCode(await api.logIn(login, wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
      await dieChecking(login, 1);
      expectBusy(await api.logIn(login, password));
      clock.advance(leaseMs);
      expectCode(await api.logIn(login, wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
      const outcome = await api.logIn(login, password);
      expectCode(outcome, "resource_exhausted", locked, "LOGIN_LOCKED");
      assert.equal(outcome.headers.get("retry-after"), String(server.config.loginLockoutSeconds));
    });

    it("the lease runs from the newest attempt pending: an older one's passing frees nothing while a newer one may still be checking", async () => {
      const login = await paths[0]!.createAccount(api, password);
      await dieChecking(login, 1);
      clock.advance(leaseMs - 1);
      // Taken just before the first one's lease passed: it renews the group's lease.
      await dieChecking(login, 1);
      clock.advance(1);
      expectBusy(await api.logIn(login, password));
      clock.advance(leaseMs - 1);
      expectOk(await api.logIn(login, password));
    });
  });

  describe(`login protection: a check that outlasts its time is answered without its verdict (${store})`, function () {
    this.timeout(120_000);
    const clock = new ManualClock(Date.now());
    let server: TestServer;
    let api: LoginApi;
    let checkMs: number;
    before(async () => {
      // One slot per login; the password check is held (heldArgon2) while the clock moves.
      const env = { TESSERA_LOGIN_MAX_FAILURES: "1" };
      server = await startTestServer({ store, clock, env });
      api = loginApi("rest-h1", server.url);
      ({ checkMs } = loginCheckTimes(server.config));
    });
    after(async () => {
      api?.close();
      await server?.close();
    });

    /** The answer to `attempt`, its password check held until `checkMs` has passed on the clock. */
    async function checkedTooLong<T>(attempt: () => Promise<T>): Promise<T> {
      const held = heldArgon2("verify");
      try {
        const answer = attempt();
        await held.started();
        clock.advance(checkMs);
        held.release();
        return await answer;
      } finally {
        held.restore();
      }
    }

    it("the right password, checked for longer than its time: 503 HASHER_BUSY, Retry-After 1, its slot given back", async () => {
      const login = uniqueEmail("slow");
      expectOk(await api.signUp(login, password), 201);
      const outcome = await checkedTooLong(() => api.logIn(login, password));
      expectCode(outcome, "unavailable", hasherBusy, "HASHER_BUSY");
      assert.equal(outcome.headers.get("retry-after"), "1");
      expectOk(await api.logIn(login, password));
    });

    it("a wrong password, checked for longer than its time: 503 HASHER_BUSY, and it counts as a failure", async () => {
      const login = uniqueEmail("slow");
      expectOk(await api.signUp(login, password), 201);
      expectCode(await checkedTooLong(() => api.logIn(login, wrongPassword)), "unavailable", hasherBusy, "HASHER_BUSY");
      const outcome = await api.logIn(login, password);
      expectCode(outcome, "resource_exhausted", locked, "LOGIN_LOCKED");
      assert.equal(outcome.headers.get("retry-after"), String(server.config.loginLockoutSeconds));
    });
  });
}

for (const store of storesUnderTest()) {
  describe(`sign-up protection: a sign-up whose hash outlasts its time is not made (${store})`, function () {
    this.timeout(120_000);
    const clock = new ManualClock(Date.now());
    let server: TestServer;
    let api: LoginApi;
    let leaseMs: number;
    before(async () => {
      // One sign-up per address and window; the hash is held (heldArgon2) while the clock moves,
      // and a second hasher hashes the next sign-up meanwhile.
      const env = { TESSERA_SIGNUP_MAX_PER_ADDRESS: "1", TESSERA_HASH_CONCURRENCY: "2" };
      server = await startTestServer({ store, clock, env });
      api = loginApi("rest-h1", server.url);
      ({ leaseMs } = loginCheckTimes(server.config));
    });
    after(async () => {
      api?.close();
      await server?.close();
    });

    it("a sign-up hashed past its lease is answered 503 HASHER_BUSY and counts; the one let in after the lease is the window's only account", async () => {
      const first = uniqueEmail("slow");
      const second = uniqueEmail("slow");
      const held = heldArgon2("hash");
      let outcome: Outcome<unknown>;
      let next: Promise<Outcome<unknown>>;
      try {
        const answer = api.signUp(first, password);
        await held.started();
        // The first sign-up's slot is no longer counted: a second one takes the window's slot,
        // and reaches its hash while the first is still hashing.
        clock.advance(leaseMs);
        next = api.signUp(second, password);
        for (const deadline = Date.now() + 10_000; held.calls.length < 2 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 5));
        held.release();
        outcome = await answer;
      } finally {
        held.restore();
      }
      expectCode(outcome, "unavailable", hasherBusy, "HASHER_BUSY");
      assert.equal(outcome.headers.get("retry-after"), "1");
      expectOk(await next, 201);
      expectCode(await api.logIn(first, password), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
      expectCode(await api.signUp(uniqueEmail("slow"), password), "resource_exhausted", "too many sign-ups from this address; try again later", "TOO_MANY_SIGNUPS");
    });
  });
}
