// An IPv6 client usually holds a whole /48 and can send each request from a fresh /64 of it, so
// besides its address's (its /64's) windows it counts in its /48's: logins
// (TESSERA_LOGIN_MAX_FAILURES_PER_IPV6_48) and sign-ups (TESSERA_SIGNUP_MAX_PER_IPV6_48). A burst
// from many /64s of one /48 evaluates at most the /48's limit (the slots are taken before any
// hashing), other /48s are counted apart, a login known from its /64 is not refused by the /48's
// lock, and a refusal's Retry-After is the time left of the lock. The client addresses are named
// by X-Forwarded-For, the test client's peer (127.0.0.1) being a trusted proxy.
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { expectCode, expectOk, restOutcome, type Outcome } from "../support/api.js";
import { rest } from "../support/clients.js";
import { answeredWhileHashing } from "../support/held-argon2.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { clientIdHeader, password, uniqueEmail, uniqueName } from "../support/users.js";
import { expectRetryLater, wrongPassword } from "./api.js";

const locked = "too many failed logins; try again later";
const tooManySignUps = "too many sign-ups from this address; try again later";
const perLogin = 2; // a /64's window: 4 x 2 = 8
const per48 = 6;
const signUpsPerAddress = 2;
const signUpsPer48 = 5;
const lockoutSeconds = 60;

/** A fresh /48 for each test (the server and its windows are shared by the file's tests). */
let next48 = 0x100;
function aPrefix48(): (subnet: number) => string {
  const site = (next48++).toString(16);
  return (subnet) => `2001:db8:${site}:${subnet.toString(16)}::7`;
}

for (const store of storesUnderTest()) {
  describe(`login protection: an IPv6 /48 counts as one client (${store})`, function () {
    this.timeout(120_000);
    const clock = new ManualClock(Date.now());
    let server: TestServer;

    before(async () => {
      server = await startTestServer({
        store,
        clock,
        env: {
          TESSERA_TRUSTED_PROXIES: "127.0.0.1",
          TESSERA_LOGIN_MAX_FAILURES: String(perLogin),
          TESSERA_LOGIN_MAX_FAILURES_PER_IPV6_48: String(per48),
          TESSERA_SIGNUP_MAX_PER_ADDRESS: String(signUpsPerAddress),
          TESSERA_SIGNUP_MAX_PER_IPV6_48: String(signUpsPer48),
          TESSERA_LOGIN_LOCKOUT_SECONDS: String(lockoutSeconds),
          // Calls at once queue for MongoDB's connection pool (see burst.test.ts).
          ...(store === "mongo" && { TESSERA_STORE_TIMEOUT_MS: "15000" }),
        },
      });
    });
    afterEach(() => clock.advance(16 * 60 * 1000)); // past every window and lock
    after(() => server?.close());

    const call = async (address: string | undefined, method: string, path: string, opts: { json?: unknown; headers?: Record<string, string> }): Promise<Outcome<any>> =>
      restOutcome(await rest(server.url, method, path, { ...opts, headers: { ...opts.headers, ...(address && { "x-forwarded-for": address }) } }));
    /** POST /session (seed 000) from `address` (undefined: the test's own IPv4 address). */
    const logIn = (address: string | undefined, email: string, pass: string) =>
      call(address, "POST", "/session", { json: { account_type: "traditional", email, password: pass }, headers: clientIdHeader });
    /** POST /user (seed 000) from `address`. */
    const signUp = (address: string | undefined, email: string) => call(address, "POST", "/user", { json: { email, password }, headers: clientIdHeader });
    /** POST /jwt/user (seed 004) from `address`. */
    const createJwtUser = (address: string, user: string) => call(address, "POST", "/jwt/user", { json: { user, pass: password } });

    it(`20 wrong passwords at once, each from its own /64 of one /48, evaluate ${per48} (401); the rest answer 429 with Retry-After; another /48 is counted apart`, async () => {
      const site = aPrefix48();
      // Sent while the first guesses are checked: those checks are held until the rest are answered.
      const outcomes = await answeredWhileHashing("verify", 20 - per48, () => Array.from({ length: 20 }, (_, i) => logIn(site(i), uniqueEmail("v6-guess"), wrongPassword)));
      const evaluated = outcomes.filter((o) => o.code === "unauthenticated");
      for (const o of evaluated) expectCode(o, "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
      for (const o of outcomes.filter((o) => o.code !== "unauthenticated")) expectRetryLater(o, "resource_exhausted", locked, "LOGIN_LOCKED");
      assert.equal(evaluated.length, per48);
      // A /64 of the /48 that sent nothing yet waits too; another /48 does not.
      expectRetryLater(await logIn(site(100), uniqueEmail("v6-guess"), wrongPassword), "resource_exhausted", locked, "LOGIN_LOCKED");
      expectCode(await logIn(aPrefix48()(0), uniqueEmail("v6-guess"), wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
    });

    it("a locked /48 answers a login with Retry-After the seconds left of its lock", async () => {
      const site = aPrefix48();
      for (let i = 0; i < per48; i++) expectCode(await logIn(site(i), uniqueEmail("v6-guess"), wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
      clock.advance(5_000);
      const refused = await logIn(site(per48), uniqueEmail("v6-guess"), wrongPassword);
      assert.equal(expectRetryLater(refused, "resource_exhausted", locked, "LOGIN_LOCKED"), lockoutSeconds - 5);
      assert.equal(refused.details?.reason, "LOGIN_LOCKED");
    });

    it("a login known from its /64 gets in through its /48's lock; one not known from that /64 waits", async () => {
      const site = aPrefix48();
      const known = uniqueEmail("v6-known");
      const newcomer = uniqueEmail("v6-newcomer");
      for (const email of [known, newcomer]) expectOk(await signUp(undefined, email), 201);
      expectOk(await logIn(site(1), known, password));
      for (let i = 0; i < per48; i++) expectCode(await logIn(site(10 + i), uniqueEmail("v6-guess"), wrongPassword), "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
      expectOk(await logIn(site(1), known, password));
      expectRetryLater(await logIn(site(1), newcomer, password), "resource_exhausted", locked, "LOGIN_LOCKED");
      expectRetryLater(await logIn(site(2), newcomer, password), "resource_exhausted", locked, "LOGIN_LOCKED");
      // Known from its /64, not from the /48.
      expectRetryLater(await logIn(site(2), known, password), "resource_exhausted", locked, "LOGIN_LOCKED");
    });

    it(`12 sign-ups at once, each from its own /64 of one /48, make ${signUpsPer48} accounts (201); the rest answer 429 with Retry-After; another /48 is counted apart`, async () => {
      const site = aPrefix48();
      const outcomes = await answeredWhileHashing("hash", 12 - signUpsPer48, () =>
        Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? signUp(site(i), uniqueEmail("v6-signup")) : createJwtUser(site(i), uniqueName("v6-signup")))),
      );
      const made = outcomes.filter((o) => o.code === "ok");
      for (const o of made) expectOk(o, 201);
      for (const o of outcomes.filter((o) => o.code !== "ok")) expectRetryLater(o, "resource_exhausted", tooManySignUps, "TOO_MANY_SIGNUPS");
      assert.equal(made.length, signUpsPer48);
      expectRetryLater(await signUp(site(100), uniqueEmail("v6-signup")), "resource_exhausted", tooManySignUps, "TOO_MANY_SIGNUPS");
      expectOk(await signUp(aPrefix48()(0), uniqueEmail("v6-signup")), 201);
    });

    it("a /48 locked for sign-ups answers with Retry-After the seconds left of its lock", async () => {
      const site = aPrefix48();
      for (let i = 0; i < signUpsPer48; i++) expectOk(await signUp(site(i), uniqueEmail("v6-signup")), 201);
      clock.advance(7_000);
      const refused = await createJwtUser(site(signUpsPer48), uniqueName("v6-signup"));
      assert.equal(expectRetryLater(refused, "resource_exhausted", tooManySignUps, "TOO_MANY_SIGNUPS"), lockoutSeconds - 7);
      assert.equal(refused.details?.reason, "TOO_MANY_SIGNUPS");
    });
  });
}
