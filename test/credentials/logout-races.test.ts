// Ending a credential while the same credential is used on another instance sharing the store:
// exactly one of two logouts ends it (the other gets the answer a logout after it gets), and a
// refresh racing the logout yields nothing that outlives it. A logout also holds on an instance
// whose clock runs a little behind the one that ran housekeeping, and so do a refresh and a
// seed 004 refresh token's login and revocation in the last seconds before their expiry there.
import assert from "node:assert/strict";
import { expectCode, expectOk } from "../support/api.js";
import { storesUnderTest, testClientId } from "../support/server.js";
import { admin, createJwtUser, jwtLogin, password, signUp, uniqueEmail } from "../support/users.js";
import { rest } from "../support/clients.js";
import { sessionApi } from "../session/api.js";
import { gate, startServerPair, type ServerPair } from "./support.js";
import { ManualClock } from "../../src/core/clock.js";
import { Housekeeping } from "../../src/core/housekeeping.js";
import { createLogger } from "../../src/logger.js";
import { basic, bearer } from "../support/clients.js";
import { userTokenApi } from "../user-token/api.js";
import { jwtApi } from "../jwt/api.js";
import { decodeJwt } from "jose";

const client = { clientId: testClientId };

for (const store of storesUnderTest()) {
  describe(`Logout races between two instances on ${store}`, function () {
    this.timeout(60_000);
    let pair: ServerPair;
    before(async () => (pair = await startServerPair(store)));
    after(() => pair.close());

    it("two DELETE /session at once with one access token, one on each instance: one ends the session, the other is 401 SESSION_ENDED", async () => {
      const { a, b } = pair;
      const onA = sessionApi("rest", a.url);
      const onB = sessionApi("grpc", b.url);
      // Both have passed the access check before either ends the session.
      const together = gate();
      let arrivals = 0;
      const restores = [a, b].map((server) => {
        const sessions = server.tessera.store.sessions;
        const end = sessions.endThenSync;
        sessions.endThenSync = async (...args) => {
          if (++arrivals === 2) together.open();
          await together.pass();
          return end.apply(sessions, args);
        };
        return () => (sessions.endThenSync = end);
      });
      try {
        const email = uniqueEmail("logout");
        await signUp(a, email);
        const pair0 = expectOk(await onA.createSession({ account_type: "traditional", email, password }, client));
        const creds = { ...client, access: pair0.access_token };
        const [first, second] = await Promise.all([onA.deleteSession(creds), onB.deleteSession(creds)]);
        const outcomes = [first, second];
        assert.deepEqual(outcomes.map((o) => o.code).sort(), ["ok", "unauthenticated"], JSON.stringify(outcomes.map((o) => o.message)));
        expectCode(outcomes.find((o) => o.code !== "ok")!, "unauthenticated", "the session has ended", "SESSION_ENDED");
        const ended = await rest(a.url, "GET", `/v1/admin/audit-events?${new URLSearchParams({ type: "session.ended" })}`, { headers: admin });
        assert.equal(ended.status, 200, ended.text);
        const successes = (ended.body.events as Array<{ outcome: string; subject?: string }>).filter((e) => e.outcome === "success");
        assert.equal(successes.length, 1, ended.text);
        expectCode(await onA.getSession(creds), "unauthenticated", "the session has ended", "SESSION_ENDED");
      } finally {
        for (const restore of restores) restore();
        together.open();
        onA.close();
        onB.close();
      }
    });

    it("PUT /session held after it read the session while DELETE /session ends it on the other instance: 401 SESSION_ENDED, and no token of the session works", async () => {
      const { a, b } = pair;
      const onA = sessionApi("rest", a.url);
      const onB = sessionApi("connect", b.url);
      const sessions = b.tessera.store.sessions;
      const findById = sessions.findById;
      const held = gate();
      sessions.findById = async (...args) => {
        const found = await findById.apply(sessions, args);
        sessions.findById = findById;
        await held.pass();
        return found;
      };
      try {
        const email = uniqueEmail("logout");
        await signUp(a, email);
        const first = expectOk(await onA.createSession({ account_type: "traditional", email, password }, client));
        const creds = { ...client, access: first.access_token };
        const refreshing = onB.refreshSession({ refresh_token: first.refresh_token }, creds);
        await held.reached;
        expectOk(await onA.deleteSession(creds));
        held.open();
        expectCode(await refreshing, "unauthenticated", "the session has ended", "SESSION_ENDED");
        expectCode(await onB.getSession(creds), "unauthenticated", "the session has ended", "SESSION_ENDED");
        expectCode(await onB.refreshSession({ refresh_token: first.refresh_token }, creds), "unauthenticated", "the session has ended", "SESSION_ENDED");
      } finally {
        sessions.findById = findById;
        held.open();
        onA.close();
        onB.close();
      }
    });

    it("PUT /session held before it read its refresh token while DELETE /session ends the session on the other instance: 401 SESSION_ENDED", async () => {
      const { a, b } = pair;
      const onA = sessionApi("rest", a.url);
      const onB = sessionApi("rest", b.url);
      const tokens = b.tessera.store.refreshTokens;
      const findByHash = tokens.findByHash;
      const held = gate();
      tokens.findByHash = async (...args) => {
        tokens.findByHash = findByHash;
        await held.pass();
        return findByHash.apply(tokens, args);
      };
      try {
        const email = uniqueEmail("logout");
        await signUp(a, email);
        const first = expectOk(await onA.createSession({ account_type: "traditional", email, password }, client));
        const creds = { ...client, access: first.access_token };
        const refreshing = onB.refreshSession({ refresh_token: first.refresh_token }, creds);
        await held.reached;
        expectOk(await onA.deleteSession(creds));
        held.open();
        expectCode(await refreshing, "unauthenticated", "the session has ended", "SESSION_ENDED");
      } finally {
        tokens.findByHash = findByHash;
        held.open();
        onA.close();
        onB.close();
      }
    });

    describe("instances whose clocks are 2 s apart (within what README, Clocks, allows)", () => {
      const behind = new ManualClock(Date.now());
      const ahead = new ManualClock(behind.now().getTime() + 2_000);
      let skewed: ServerPair;
      // Tokens and sessions live an hour, access tokens as long: a test moves to their last second.
      const hour = { TESSERA_REFRESH_TOKEN_TTL_SECONDS: "3600", TESSERA_ACCESS_TOKEN_TTL_SECONDS: "3600" };
      before(async () => (skewed = await startServerPair(store, hour, [ahead, behind])));
      after(() => skewed.close());

      it("a user token logged out stays 401 TOKEN_REVOKED on the instance behind, up to its expiry there, after the instance ahead ran housekeeping past that expiry", async () => {
        const { a, b } = skewed;
        const onB = userTokenApi("rest", b.url);
        try {
          const email = uniqueEmail("skew");
          await signUp(b, email);
          const expirationTime = new Date(behind.now().getTime() + 10_000).toISOString();
          const token = expectOk(await onB.login({ expirationTime }, basic(email, password))).token;
          expectOk(await onB.logout(bearer(token)));
          // 9 s on: the token has 1 s left by b's clock; by a's it expired 1 s ago.
          behind.advance(9_000);
          ahead.advance(9_000);
          await new Housekeeping({ store: a.tessera.store, clock: ahead, logger: createLogger("silent") }).runOnce();
          expectCode(await onB.bump(bearer(token)), "unauthenticated", "user token is disabled", "TOKEN_REVOKED");
          behind.advance(1_000);
          expectCode(await onB.bump(bearer(token)), "unauthenticated", "user token has expired", "TOKEN_EXPIRED");
        } finally {
          onB.close();
        }
      });

      /** Both clocks set so that b's is `msBeforeOnB` before `at`; a's is 2 s ahead of it. */
      const setClocks = (at: number, msBeforeOnB: number) => {
        behind.set(at - msBeforeOnB);
        ahead.set(at - msBeforeOnB + 2_000);
      };
      const housekeepingOnA = () => new Housekeeping({ store: skewed.a.tessera.store, clock: ahead, logger: createLogger("silent") }).runOnce();

      it("a seed 000 session in its last second on the instance behind still refreshes there (PUT /session) after the instance ahead ran housekeeping past its expiry", async () => {
        const { b } = skewed;
        const onB = sessionApi("rest", b.url);
        try {
          const email = uniqueEmail("skew");
          await signUp(b, email);
          const loggedInAt = behind.now().getTime();
          const first = expectOk(await onB.createSession({ account_type: "traditional", email, password }, client));
          // The session expires an hour after its login, by b's clock: 1.5 s left there, by a's
          // clock it expired 0.5 s ago.
          setClocks(loggedInAt + 3_600_000, 1_500);
          await housekeepingOnA();
          const next = expectOk(await onB.refreshSession({ refresh_token: first.refresh_token }, { ...client, access: first.access_token }));
          assert.notEqual(next.refresh_token, first.refresh_token);
          behind.advance(1_500);
          expectCode(await onB.refreshSession({ refresh_token: next.refresh_token }, { ...client, access: next.access_token }), "unauthenticated", "the session has ended", "SESSION_ENDED");
        } finally {
          onB.close();
        }
      });

      it("a seed 004 refresh token in its last second on the instance behind still logs in (GET /jwt/token) and is deleted as its owner's (DELETE /jwt/refresh_token, 204) there after the instance ahead ran housekeeping past its expiry", async () => {
        const { b } = skewed;
        const onB = jwtApi("rest", b.url);
        try {
          const user = await createJwtUser(b);
          const refresh = expectOk(await onB.getRefreshToken({}, bearer(await jwtLogin(b, user)))).text;
          // 1 s left by b's clock; by a's it expired 1 s ago, its record too (its expiry is the
          // token's exp, to the millisecond).
          setClocks(decodeJwt(refresh).exp! * 1000, 1_000);
          await housekeepingOnA();
          expectOk(await onB.getToken({ user: refresh }));
          expectOk(await onB.deleteRefreshToken({ refresh_token: refresh }, bearer(await jwtLogin(b, user))), 204);
          expectCode(await onB.getToken({ user: refresh }), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
        } finally {
          onB.close();
        }
      });
    });
  });
}
