// A seed 004 login (GET /jwt/token) in flight while another instance ends what it rests on
// mints nothing after that end: a password login held after it read the user while the user is
// deactivated answers 403 USER_DEACTIVATED as a login after the deactivation does, not an access
// JWT that offline verifiers would take until it expires; a refresh login held after it read its
// refresh token while that token is revoked (DELETE /jwt/refresh_token) or its user deactivated
// answers what a refresh login after it does: 401 TOKEN_REVOKED (a deactivation revokes the
// user's refresh tokens). A password login whose password was checked against the hash from
// before a password change (PATCH /jwt/user) is refused as the old password is after it: 401
// INVALID_CREDENTIALS, not an access JWT that offline verifiers would take until it expires.
// Its `login` audit event says so: outcome failure with that reason (and the user's id), not a
// success.
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { bearer, rest } from "../support/clients.js";
import { storesUnderTest } from "../support/server.js";
import { admin, createJwtUser, jwtLogin, jwtRefreshToken, otherPassword, password } from "../support/users.js";
import { assertRefused as refused, holdAfter, passwordLoginHolds, startServerPair, type Gate, type ServerPair } from "./support.js";

/** The `login` audit events naming `user` (as given), newest first: outcome, reason, user id. */
async function loginEvents(url: string, user: string): Promise<Array<{ outcome: string; reason?: string; user_id?: string }>> {
  const listed = await rest(url, "GET", `/v1/admin/audit-events?${new URLSearchParams({ type: "login" })}`, { headers: admin });
  assert.equal(listed.status, 200, listed.text);
  return (listed.body.events as Array<{ login?: string; outcome: string; reason?: string; user_id?: string }>)
    .filter((e) => e.login === user)
    .map(({ outcome, reason, user_id }) => ({ outcome, reason, user_id }));
}

for (const store of storesUnderTest()) {
  describe(`Seed 004 logins in flight while another instance ends what they rest on, on ${store}`, function () {
    this.timeout(60_000);
    let pair: ServerPair;
    before(async () => (pair = await startServerPair(store)));
    after(() => pair.close());

    /** What ends a password login's standing on the other instance, its status, and the refusal the login then gets (status, message, reason). */
    const passwordEndings = [
      ["DELETE /jwt/user deactivates them", 204, (access: string) => rest(pair.b.url, "DELETE", "/jwt/user", { headers: bearer(access) }),
        [403, "user is deactivated", "USER_DEACTIVATED"]],
      // The password checked is the old one: answered as it is after the change.
      ["PATCH /jwt/user changes the password", 200, (access: string) => rest(pair.b.url, "PATCH", "/jwt/user", { headers: bearer(access), json: { pass: otherPassword } }),
        [401, "invalid login or password", "INVALID_CREDENTIALS"]],
    ] as const;
    for (const [ending, status, end, [code, message, reason]] of passwordEndings) {
      for (const [where, hold] of passwordLoginHolds) {
        it(`GET /jwt/token with a password, held ${where} while ${ending}: ${code} ${reason}`, async () => {
          const { a, b } = pair;
          const user = await createJwtUser(a);
          const access = await jwtLogin(b, user);
          const held = hold(a);
          const login = () => rest(a.url, "GET", `/jwt/token?${new URLSearchParams({ user, pass: password })}`);
          const inFlight = login();
          await held.reached;
          const ended = await end(access);
          assert.equal(ended.status, status, ended.text);
          held.release();
          refused(await inFlight, code, message, reason);
          refused(await login(), code, message, reason);
          // The trail, newest first: the login after the ending (its user known only when its
          // password checked out: deactivated), the one in flight, b's login.
          const logins = await loginEvents(a.url, user);
          const userId = decodeJwt(access).sub;
          assert.deepEqual(logins, [
            { outcome: "failure", reason, user_id: reason === "USER_DEACTIVATED" ? userId : undefined },
            { outcome: "failure", reason, user_id: userId },
            { outcome: "success", reason: undefined, user_id: userId },
          ]);
        });
      }
    }

    /**
     * A password login of a new user on `a`, held by `hold` (made for it) until its deadline has
     * passed: the user, once the login was answered 504 DEADLINE_EXCEEDED. The deadline is 300 ms,
     * and twice as long again, with another user, while a login was answered before it reached
     * the hold (on a loaded machine a login took longer than 300 ms to get there); that login is
     * left to end as it does.
     */
    async function loginPastDeadline(hold: () => Gate & { restore(): void }): Promise<string> {
      for (let deadlineMs = 300; deadlineMs <= 10_000; deadlineMs *= 2) {
        const user = await createJwtUser(pair.a);
        const held = hold();
        // The server is in this process: a hold reached before the deadline is known here
        // before the answer is read.
        let reached = false;
        void held.reached.then(() => (reached = true));
        try {
          const res = await rest(pair.a.url, "GET", `/jwt/token?${new URLSearchParams({ user, pass: password })}`, { headers: { "connect-timeout-ms": String(deadlineMs) } });
          assert.equal(res.status, 504, res.text);
          assert.equal(res.body.code, "deadline_exceeded");
          if (reached) return user;
        } finally {
          held.open();
          held.restore();
        }
      }
      assert.fail("no login reached its hold before its deadline passed");
    }

    it("GET /jwt/token with a password whose deadline passes once its password was checked: 504 DEADLINE_EXCEEDED, and its login event is stored all the same, canceled (not an error)", async () => {
      const { a } = pair;
      // Held once its password was checked (holdCheckedLogins); then the login goes on past its
      // deadline: its next store call is not made.
      const user = await loginPastDeadline(() => holdAfter(a.tessera.store.loginAttempts, "release"));
      let logins: Awaited<ReturnType<typeof loginEvents>> = [];
      for (let i = 0; i < 100 && logins.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        logins = await loginEvents(a.url, user);
      }
      assert.equal(logins.length, 1, JSON.stringify(logins));
      assert.deepEqual(logins[0], { outcome: "canceled", reason: undefined, user_id: decodeJwt(await jwtLogin(a, user)).sub });
    });

    it("GET /jwt/token with a password whose deadline passes after its last store call: 504 DEADLINE_EXCEEDED, and its login event is canceled, not a success", async () => {
      const { a } = pair;
      // Its last read of the user, once the access token is signed.
      const user = await loginPastDeadline(() => holdAfter(a.tessera.store.users, "findById"));
      let logins: Awaited<ReturnType<typeof loginEvents>> = [];
      for (let i = 0; i < 100 && logins.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        logins = await loginEvents(a.url, user);
      }
      assert.deepEqual(logins, [{ outcome: "canceled", reason: undefined, user_id: decodeJwt(await jwtLogin(a, user)).sub }]);
    });

    /** A refresh login on `a` with a new refresh token, held after its first read of `port` (its token's record, or its user). */
    async function heldRefreshLogin(port: "jwtRefreshTokens" | "users") {
      const { a, b } = pair;
      const user = await createJwtUser(a);
      const access = await jwtLogin(b, user);
      const refresh = await jwtRefreshToken(b, access);
      const held = port === "users" ? holdAfter(a.tessera.store.users, "findById") : holdAfter(a.tessera.store.jwtRefreshTokens, "findByJti");
      const inFlight = rest(a.url, "GET", `/jwt/token?${new URLSearchParams({ user: refresh })}`);
      await held.reached;
      return { access, refresh, inFlight, release: () => held.open() };
    }

    /** The answer of a refresh login whose token was revoked, held or made after the revocation. */
    const revokedAnswer = (res: { status: number; text: string; body: any }) => refused(res, 401, "refresh token revoked", "TOKEN_REVOKED");

    /** What ends a refresh token's login on the other instance, and the status that answers it. */
    const endings = [
      ["the token", "DELETE /jwt/refresh_token revokes it", "jwtRefreshTokens", 204, (access: string, refresh: string) =>
        rest(pair.b.url, "DELETE", `/jwt/refresh_token?${new URLSearchParams({ refresh_token: refresh })}`, { headers: bearer(access) })],
      ["the user", "DELETE /jwt/user deactivates them", "users", 204, (access: string) => rest(pair.b.url, "DELETE", "/jwt/user", { headers: bearer(access) })],
      ["the user", "PATCH /jwt/user changes the password", "users", 200, (access: string) =>
        rest(pair.b.url, "PATCH", "/jwt/user", { headers: bearer(access), json: { pass: otherPassword } })],
    ] as const;
    for (const [read, ending, port, status, end] of endings) {
      it(`GET /jwt/token with a refresh token, held after it read ${read} while ${ending}: 401 TOKEN_REVOKED`, async () => {
        const login = await heldRefreshLogin(port);
        const ended = await end(login.access, login.refresh);
        assert.equal(ended.status, status, ended.text);
        login.release();
        revokedAnswer(await login.inFlight);
        revokedAnswer(await rest(pair.a.url, "GET", `/jwt/token?${new URLSearchParams({ user: login.refresh })}`));
      });
    }
  });
}
