// Ending a credential while the same credential is used on another instance sharing the store:
// exactly one of two logouts ends it (the other gets the answer a logout after it gets), and a
// refresh racing the logout yields nothing that outlives it. A logout also holds on an instance
// whose clock runs a little behind the one that ran housekeeping.
import assert from "node:assert/strict";
import { expectCode, expectOk } from "../support/api.js";
import { storesUnderTest, testClientId } from "../support/server.js";
import { admin, password, signUp, uniqueEmail } from "../support/users.js";
import { rest } from "../support/clients.js";
import { sessionApi } from "../session/api.js";
import { gate, startServerPair, type ServerPair } from "./support.js";
import { ManualClock } from "../../src/core/clock.js";
import { Housekeeping } from "../../src/core/housekeeping.js";
import { createLogger } from "../../src/logger.js";
import { basic, bearer } from "../support/clients.js";
import { userTokenApi } from "../user-token/api.js";

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
      before(async () => (skewed = await startServerPair(store, {}, [ahead, behind])));
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
    });
  });
}
