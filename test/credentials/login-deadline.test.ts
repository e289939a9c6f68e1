// A password login whose deadline passes once its credential is stored, before its answer: the
// caller is answered DEADLINE_EXCEEDED, and the login's next store call (the user's credential
// epoch read again) is refused at the deadline. No token of the credential went out, so it is
// withdrawn, as one refused there is (README "Audit trail"): the session ended, the user token
// disabled, beyond the call's deadline; the credential's event records the login canceled, and
// no session.ended or user_token.logout names a credential never handed out.
import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { basic, rest } from "../support/clients.js";
import { storesUnderTest, type TestServer, startTestServer } from "../support/server.js";
import { admin, clientIdHeader, password, signUp, uniqueEmail } from "../support/users.js";
import { holdAfter, recordWrites } from "./support.js";

const deadlineMs = 1500;

/** The `type outcome reason` of the user's audit events, oldest first, once `count` are listed. */
async function story(server: TestServer, userId: string, count: number): Promise<string[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const page = await rest(server.url, "GET", `/v1/admin/audit-events?${new URLSearchParams({ user_id: userId })}`, { headers: admin });
    assert.equal(page.status, 200, page.text);
    const told = (page.body.events as Array<{ type: string; outcome: string; reason?: string }>).map((e) => `${e.type} ${e.outcome}${e.reason ? ` ${e.reason}` : ""}`).reverse();
    if (told.length >= count || Date.now() > deadline) return told;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until `done` holds (the login goes on once its caller was answered). */
async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await done())) {
    assert.ok(Date.now() < deadline, `timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The seed 000 login, over REST or gRPC, with the deadline: the code its caller got. */
const sessionLogins: Array<[string, (server: TestServer, email: string) => Promise<string>]> = [
  [
    "POST /session",
    async (server, email) => {
      const res = await rest(server.url, "POST", "/session", { headers: { ...clientIdHeader, "connect-timeout-ms": String(deadlineMs) }, json: { account_type: "traditional", email, password } });
      return `${res.status} ${res.body.code ?? "ok"}`;
    },
  ],
  [
    "gRPC SessionService/CreateSession",
    async (server, email) => {
      try {
        await createClient(SessionService, createGrpcTransport({ baseUrl: server.url })).createSession({ accountType: "traditional", email, password }, { headers: clientIdHeader, timeoutMs: deadlineMs });
        return "ok";
      } catch (e) {
        return Code[ConnectError.from(e).code];
      }
    },
  ],
];

const deadlineExceeded: Record<string, string> = { "POST /session": "504 deadline_exceeded", "gRPC SessionService/CreateSession": "DeadlineExceeded" };

for (const store of storesUnderTest()) {
  describe(`a password login whose deadline passes once its credential is stored (${store})`, function () {
    this.timeout(60_000);
    let server: TestServer;
    before(async () => (server = await startTestServer({ store })));
    after(() => server?.close());

    for (const [name, login] of sessionLogins) {
      it(`${name}: answered DEADLINE_EXCEEDED; the session is withdrawn (ended) and session.started recorded canceled, no session.ended`, async () => {
        const email = uniqueEmail("late-session");
        const user = await signUp(server, email);
        const written = recordWrites(server);
        const held = holdAfter(server.tessera.store.sessions, "createThenSync");
        let answer: string;
        try {
          // Held once the session is stored until its caller has been answered at the deadline
          // (a gRPC client gives up at its own, a little before the server's: waited for too).
          answer = await login(server, email);
          await new Promise((r) => setTimeout(r, 200));
        } finally {
          held.open();
          held.restore();
        }
        assert.equal(answer, deadlineExceeded[name]);
        assert.equal(written.sessions.length, 1, "the login stored its session");
        const [id] = written.sessions;
        await until("the session is ended", async () => (await server.tessera.store.sessions.findById(id!))?.endedAt !== undefined);
        assert.deepEqual(await story(server, user.id, 3), ["signup success", "login success", "session.started canceled"]);
      });
    }

    it("POST /auth/login (seed 002): answered DEADLINE_EXCEEDED; the user token is withdrawn (disabled) and user_token.login recorded canceled, no user_token.logout", async () => {
      const email = uniqueEmail("late-token");
      const user = await signUp(server, email);
      const written = recordWrites(server);
      const held = holdAfter(server.tessera.store.userTokens, "createThenSync");
      let res;
      try {
        res = await rest(server.url, "POST", "/auth/login", { headers: { ...basic(email, password), "connect-timeout-ms": String(deadlineMs) } });
      } finally {
        held.open();
        held.restore();
      }
      assert.equal(res.status, 504, res.text);
      assert.equal(res.body.code, "deadline_exceeded");
      assert.equal(written.userTokens.length, 1, "the login stored its user token");
      const [hash] = written.userTokens;
      await until("the user token is disabled", async () => (await server.tessera.store.userTokens.findByHashWithUser(hash!))?.token.enabled === false);
      assert.deepEqual(await story(server, user.id, 3), ["signup success", "login success", "user_token.login canceled"]);
    });
  });
}
