// A burst of logins from one client address to one login, on MongoDB under the store's default
// time bound (TESSERA_STORE_TIMEOUT_MS, 2 s): the limit's worth are evaluated (401) and the rest
// refused 429 LOGIN_LOCKED, none answered 503 STORE_UNAVAILABLE while the database is healthy,
// here one whose every command takes DELAY_MS more (a proxy in front of it). The attempts of
// one key take turns in each instance (mongo-login-attempts.ts): with a turn of its own per
// attempt, each a read and a count or an insert, the last of 30 waited for some 60 commands
// in turn, past the bound. The commands a burst sends to the login counters (their states and
// releases, counted through the proxy) are checked too: some 25 since the attempts waiting for
// a key's turn are made together, 130 to 190 before (five or more an attempt), so the test does
// not rest on how far past the bound a slow machine takes the old way, and DELAY_MS leaves the
// burst well within it (all answered in 0.7 to 1.5 s, the hashing of the 5 checked included, on
// 2 busy cores; 2 to 3.4 s before).
import assert from "node:assert/strict";
import { HoldingProxy } from "../support/holding-proxy.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { expectCode, expectOk, type Outcome } from "../support/api.js";
import { password, uniqueEmail } from "../support/users.js";
import { expectRetryLater, loginApi, wrongPassword, type LoginApi, type Transport } from "./api.js";

const N = 5;
const BURST = 30;
const DELAY_MS = 20;
// The most commands on the login counters a burst may send: two an attempt.
const MAX_COMMANDS = 2 * BURST;
const locked = "too many failed logins; try again later";

/** How many answers of each code `outcomes` holds. */
function counted(outcomes: Outcome<unknown>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.code] = (counts[o.code] ?? 0) + 1;
  return counts;
}

/**
 * Sends BURST wrong passwords at once (attempt i through `apiOf(i)`), the database DELAY_MS
 * further away meanwhile, and checks every answer and the commands sent to the login counters.
 */
async function burst(proxy: HoldingProxy, apiOf: (i: number) => LoginApi, email: string): Promise<void> {
  proxy.delayMs = DELAY_MS;
  proxy.count(["login_attempt"]);
  const outcomes = await Promise.all(Array.from({ length: BURST }, (_, i) => apiOf(i).logIn(email, wrongPassword))).finally(() => (proxy.delayMs = 0));
  const commands = proxy.counted;
  const unexpected = outcomes.find((o) => o.code !== "unauthenticated" && o.code !== "resource_exhausted");
  assert.deepEqual(counted(outcomes), { unauthenticated: N, resource_exhausted: BURST - N }, `first other answer: ${unexpected?.code} ${unexpected?.message}`);
  for (const o of outcomes) {
    if (o.code === "unauthenticated") expectCode(o, "unauthenticated", "invalid login or password", "INVALID_CREDENTIALS");
    else {
      expectCode(o, "resource_exhausted", locked, "LOGIN_LOCKED");
      expectRetryLater(o, "resource_exhausted", locked, "LOGIN_LOCKED");
    }
  }
  assert.ok(commands <= MAX_COMMANDS, `${commands} commands on the login counters for ${BURST} attempts, more than ${MAX_COMMANDS}`);
}

const mongo = storesUnderTest().includes("mongo");
const transports: Transport[] = ["rest-h1", "grpc"];

(mongo ? describe : describe.skip)("login protection: a burst from one address under the store's time bound (mongo)", function () {
  this.timeout(120_000);
  let proxy: HoldingProxy;
  let first: TestServer;
  let second: TestServer;
  const apis: LoginApi[] = [];
  before(async () => {
    proxy = await HoldingProxy.start(process.env.MONGODB_URI!);
    const env = { TESSERA_LOGIN_MAX_FAILURES: String(N), MONGODB_URI: `mongodb://127.0.0.1:${proxy.port}/` };
    first = await startTestServer({ store: "mongo", env });
    second = await startTestServer({ store: "mongo", env: { ...env, TESSERA_MONGODB_DATABASE: first.config.mongodbDatabase } });
    for (const server of [first, second]) for (const transport of transports) apis.push(loginApi(transport, server.url));
  });
  after(async () => {
    for (const api of apis) api.close();
    await second?.close();
    await first?.close();
    await proxy?.close();
  });

  const signedUp = async () => {
    const email = uniqueEmail("bound");
    expectOk(await apis[0]!.signUp(email, password), 201);
    return email;
  };

  for (const [t, transport] of transports.entries()) {
    it(`POST /session over ${transport}: ${BURST} wrong passwords at once to one instance, ${N} answered 401 and ${BURST - N} 429, none 503`, async () => {
      const email = await signedUp();
      await burst(proxy, () => apis[t]!, email);
    });
  }

  it(`POST /session: ${BURST} wrong passwords at once spread over two instances (REST and gRPC), ${N} answered 401 and ${BURST - N} 429, none 503`, async () => {
    const email = await signedUp();
    await burst(proxy, (i) => apis[i % apis.length]!, email);
  });
});
