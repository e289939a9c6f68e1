// A login attempt takes its slots before its password is hashed, and ends by giving them back (a
// success) or keeping them as failures. That end is the server's own bookkeeping: it is made when
// the caller stopped waiting too (its deadline passed while the password was being hashed, and it
// was answered DEADLINE_EXCEEDED). Else every such attempt would hold its slots until the window
// passes, and a few calls with a short deadline would shut a login (429, "retry in a second")
// for the whole window without a single failure.
import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { ManualClock } from "../../src/core/clock.js";
import { expectCode, expectOk, type Outcome } from "../support/api.js";
import { heldArgon2 } from "../support/held-argon2.js";
import { pollLast } from "../support/poll.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { clientIdHeader, password, uniqueEmail } from "../support/users.js";
import { loginApi, wrongPassword, type LoginApi } from "./api.js";

const N = 2;
// A hasher for each of the N calls at once, each verify held (heldArgon2) until every caller's
// deadline below has passed, so that each deadline passes while its password is hashed (a call
// whose deadline passes while it waits for a hasher is never hashed:
// test/login/ended-calls.test.ts).
const env = { TESSERA_HASH_CONCURRENCY: String(N), TESSERA_LOGIN_MAX_FAILURES: String(N) };
const deadlineMs = 1000;
const locked = "too many failed logins; try again later";

type Via = "rest" | "grpc";

/** POST /session (or SessionService/CreateSession over gRPC) with a deadline: the code answered. */
async function loginWithDeadline(server: TestServer, via: Via, email: string, pw: string): Promise<string> {
  if (via === "rest") {
    const res = await fetch(new URL("/session", server.url), {
      method: "POST",
      headers: { "content-type": "application/json", "connect-timeout-ms": String(deadlineMs), ...clientIdHeader },
      body: JSON.stringify({ account_type: "traditional", email, password: pw }),
    });
    const body = (await res.json()) as { code?: string };
    return `${res.status} ${body.code ?? "ok"}`;
  }
  const client = createClient(SessionService, createGrpcTransport({ baseUrl: server.url }));
  try {
    await client.createSession({ accountType: "traditional", email, password: pw }, { headers: clientIdHeader, timeoutMs: deadlineMs });
    return "ok";
  } catch (e) {
    return Code[ConnectError.from(e).code];
  }
}

const deadlineExceeded: Record<Via, string> = { rest: "504 deadline_exceeded", grpc: "DeadlineExceeded" };

/** N logins of `email` with `pw`, each with the deadline, their verifies held until every one is answered: the codes answered. */
async function loginsPastDeadline(server: TestServer, via: Via, email: string, pw: string): Promise<string[]> {
  const verify = heldArgon2("verify");
  try {
    const answers = Promise.all(Array.from({ length: N }, () => loginWithDeadline(server, via, email, pw)));
    while (verify.calls.length < N) await new Promise((r) => setTimeout(r, 5));
    return await answers;
  } finally {
    verify.restore();
  }
}

/** Logs in with the right password until it is not refused as busy (Retry-After 1), honouring Retry-After; the last answer. */
async function untilNotBusy(api: LoginApi, email: string): Promise<Outcome<unknown>> {
  const busy = (outcome: Outcome<unknown>) => outcome.code === "resource_exhausted" && outcome.headers.get("retry-after") === "1";
  return pollLast(() => api.logIn(email, password), (outcome) => !busy(outcome), { limitMs: 90_000, intervalMs: 1000 });
}

for (const store of storesUnderTest()) {
  for (const via of ["rest", "grpc"] as const) {
    describe(`login protection: callers who stop waiting (${store}, ${via})`, function () {
      this.timeout(240_000);
      const clock = new ManualClock(Date.now());
      let server: TestServer;
      let api: LoginApi;
      before(async () => {
        server = await startTestServer({ store, clock, env });
        api = loginApi("rest-h1", server.url);
      });
      after(async () => {
        api?.close();
        await server?.close();
      });

      it(`the limit's worth of right passwords whose deadline passes while they are hashed give their slots back: the login is not shut`, async () => {
        const email = uniqueEmail("deadline");
        expectOk(await api.signUp(email, password), 201);
        const answers = await loginsPastDeadline(server, via, email, password);
        assert.deepEqual(answers, Array(N).fill(deadlineExceeded[via]));
        expectOk(await untilNotBusy(api, email));
      });

      it(`the limit's worth of wrong passwords whose deadline passes while they are hashed count as failures: the login locks`, async () => {
        const email = uniqueEmail("deadline");
        expectOk(await api.signUp(email, password), 201);
        const answers = await loginsPastDeadline(server, via, email, wrongPassword);
        assert.deepEqual(answers, Array(N).fill(deadlineExceeded[via]));
        const outcome = await untilNotBusy(api, email);
        expectCode(outcome, "resource_exhausted", locked, "LOGIN_LOCKED");
        assert.equal(outcome.headers.get("retry-after"), "60");
      });
    });
  }
}
