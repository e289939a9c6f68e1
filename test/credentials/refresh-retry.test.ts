// A refresh is retry-safe (seed 000, PUT /session): within TESSERA_REFRESH_GRACE_SECONDS the
// same refresh token with the same, now superseded, access token answers the same new pair as
// the first time — a retry after a lost answer, or concurrent duplicates on two instances
// sharing one store. The pair is stored only sealed. After the window, reuse detection works as
// before: the session ends.
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { Collection, MongoNetworkError } from "mongodb";
import { ManualClock } from "../../src/core/clock.js";
import { hashSecret } from "../../src/core/secrets.js";
import { expectCode, expectOk, protocols } from "../support/api.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { password, signUp, uniqueEmail } from "../support/users.js";
import { sessionApi, type SessionApi, type TokenPair } from "../session/api.js";
import { gate, startServerPair, type ServerPair } from "./support.js";

const client = { clientId: testClientId };

/**
 * The same pair as `expected`, its access_token_expires_in what is left of its access token when
 * it was answered, between `sentAt` and `answeredAt` (ms, the real clock these servers read), and
 * never more than the first answer gave.
 */
function assertSamePair(actual: TokenPair, expected: TokenPair, sentAt: number, answeredAt: number): void {
  const { access_token_expires_in: left, ...tokens } = actual;
  const { access_token_expires_in: firstLeft, ...expectedTokens } = expected;
  assert.deepEqual(tokens, expectedTokens);
  const exp = decodeJwt(actual.access_token).exp!;
  const most = Math.min(firstLeft, exp - Math.floor(sentAt / 1000));
  const least = exp - Math.floor(answeredAt / 1000);
  assert.ok(left >= least && left <= most, `access_token_expires_in ${left}: what is left of the access token is ${least} to ${most}`);
}

async function login(server: TestServer, api: SessionApi): Promise<TokenPair> {
  const email = uniqueEmail("retry");
  await signUp(server, email);
  return expectOk(await api.createSession({ account_type: "traditional", email, password }, client));
}

for (const store of storesUnderTest()) {
  describe(`Refresh is retry-safe on ${store}`, function () {
    this.timeout(60_000);

    describe("two instances on one store", () => {
      let pair: ServerPair;
      before(async () => (pair = await startServerPair(store, { TESSERA_REFRESH_GRACE_SECONDS: "30" })));
      after(() => pair.close());

      for (const protocol of protocols) {
        it(`a retry on the other instance answers the same pair, which works; the parent stays spent (${protocol})`, async () => {
          const onA = sessionApi(protocol, pair.a.url);
          const onB = sessionApi(protocol, pair.b.url);
          try {
            const first = await login(pair.a, onA);
            const creds = { ...client, access: first.access_token };
            const answered = expectOk(await onA.refreshSession({ refresh_token: first.refresh_token }, creds));
            // The client never saw that answer and tries again.
            const sentAt = Date.now();
            const retried = expectOk(await onB.refreshSession({ refresh_token: first.refresh_token }, creds));
            assertSamePair(retried, answered, sentAt, Date.now());
            expectOk(await onB.getSession({ ...client, access: retried.access_token }));
            // The spent token with the new access token is not the same refresh: a plain 401.
            expectCode(await onA.refreshSession({ refresh_token: first.refresh_token }, { ...client, access: retried.access_token }), "unauthenticated", "refresh token already used", "REFRESH_TOKEN_ALREADY_USED");
            const next = expectOk(await onA.refreshSession({ refresh_token: retried.refresh_token }, { ...client, access: retried.access_token }));
            assert.notEqual(next.refresh_token, retried.refresh_token);
            // Nothing stored holds a token in the clear.
            const stored = await pair.a.tessera.store.refreshTokens.findByHash(hashSecret(first.refresh_token));
            assert.ok(stored?.child, "the child pair is kept with the spent token");
            for (const secret of [answered.access_token, answered.refresh_token]) assert.ok(!stored.child.includes(secret));
          } finally {
            onA.close();
            onB.close();
          }
        });
      }

      it("concurrent duplicates on both instances all answer the same pair", async () => {
        const onA = sessionApi("rest", pair.a.url);
        const onB = sessionApi("grpc", pair.b.url);
        try {
          const first = await login(pair.a, onA);
          const creds = { ...client, access: first.access_token };
          const sentAt = Date.now();
          const results = await Promise.all(
            Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? onA : onB).refreshSession({ refresh_token: first.refresh_token }, creds)),
          );
          const answeredAt = Date.now();
          const winner = expectOk(results[0]!);
          for (const r of results) assertSamePair(expectOk(r), { ...winner, access_token_expires_in: first.access_token_expires_in }, sentAt, answeredAt);
          expectOk(await onA.getSession({ ...client, access: winner.access_token }));
          expectOk(await onB.refreshSession({ refresh_token: winner.refresh_token }, { ...client, access: winner.access_token }));
        } finally {
          onA.close();
          onB.close();
        }
      });

      it("a retry held after it read the session while the next refresh moves the session on: 401 REFRESH_TOKEN_ALREADY_USED, and the session lives on", async () => {
        const onA = sessionApi("rest", pair.a.url);
        const onB = sessionApi("connect", pair.b.url);
        const sessions = pair.a.tessera.store.sessions;
        const findById = sessions.findById;
        const held = gate();
        try {
          const first = await login(pair.a, onA);
          const creds = { ...client, access: first.access_token };
          const answered = expectOk(await onA.refreshSession({ refresh_token: first.refresh_token }, creds));
          // The retry reads the session (still on the answered pair's jti) and is held there.
          sessions.findById = async (...args) => {
            const found = await findById.apply(sessions, args);
            sessions.findById = findById;
            await held.pass();
            return found;
          };
          const retrying = onA.refreshSession({ refresh_token: first.refresh_token }, creds);
          await held.reached;
          const next = expectOk(await onB.refreshSession({ refresh_token: answered.refresh_token }, { ...client, access: answered.access_token }));
          held.open();
          expectCode(await retrying, "unauthenticated", "refresh token already used", "REFRESH_TOKEN_ALREADY_USED");
          expectOk(await onA.getSession({ ...client, access: next.access_token }));
          expectOk(await onB.refreshSession({ refresh_token: next.refresh_token }, { ...client, access: next.access_token }));
        } finally {
          sessions.findById = findById;
          held.open();
          onA.close();
          onB.close();
        }
      });
    });

    if (store === "mongo") {
      describe("a refresh stopped between the claim of its jti move and its write", () => {
        let server: TestServer;
        before(async () => (server = await startTestServer({ store, env: { TESSERA_REFRESH_GRACE_SECONDS: "30" } })));
        after(() => server.close());

        it("its retry finishes it: the same pair, which works", async () => {
          const api = sessionApi("rest", server.url);
          const updateOne = Collection.prototype.updateOne;
          try {
            const first = await login(server, api);
            const creds = { ...client, access: first.access_token };
            // The session's jti write fails once (the store dropped the call): the move was claimed.
            let failures = 1;
            Collection.prototype.updateOne = function (this: Collection, ...args: Parameters<Collection["updateOne"]>) {
              if (this.collectionName === "sessions" && failures-- > 0) return Promise.reject(new MongoNetworkError("connection reset"));
              return updateOne.apply(this, args);
            } as Collection["updateOne"];
            const lost = await api.refreshSession({ refresh_token: first.refresh_token }, creds);
            expectCode(lost, "unavailable", "the store is unavailable, try again shortly", "STORE_UNAVAILABLE");
            Collection.prototype.updateOne = updateOne;
            const retried = expectOk(await api.refreshSession({ refresh_token: first.refresh_token }, creds));
            expectOk(await api.getSession({ ...client, access: retried.access_token }));
            expectOk(await api.refreshSession({ refresh_token: retried.refresh_token }, { ...client, access: retried.access_token }));
          } finally {
            Collection.prototype.updateOne = updateOne;
            api.close();
          }
        });
      });
    }

    describe("after the grace window", () => {
      const clock = new ManualClock(Date.now());
      let server: TestServer;
      before(async () => (server = await startTestServer({ store, clock, env: { TESSERA_REFRESH_GRACE_SECONDS: "10" } })));
      after(() => server.close());

      for (const protocol of protocols) {
        it(`the same retry is reuse: the session ends (${protocol})`, async () => {
          const api = sessionApi(protocol, server.url);
          try {
            const first = await login(server, api);
            const creds = { ...client, access: first.access_token };
            const answered = expectOk(await api.refreshSession({ refresh_token: first.refresh_token }, creds));
            clock.advance(10_000);
            // The same pair; its access token has lived 10 s since (access_token_expires_in: what is left of it).
            assert.deepEqual(
              expectOk(await api.refreshSession({ refresh_token: first.refresh_token }, creds)),
              { ...answered, access_token_expires_in: answered.access_token_expires_in - 10 },
              "still within the window",
            );
            clock.advance(1_000);
            expectCode(await api.refreshSession({ refresh_token: first.refresh_token }, creds), "unauthenticated", "refresh token reuse detected: the session has ended", "REFRESH_TOKEN_REUSED");
            expectCode(await api.getSession({ ...client, access: answered.access_token }), "unauthenticated", "the session has ended", "SESSION_ENDED");
          } finally {
            api.close();
          }
        });
      }

      it("a retry read on a clock 10 s behind the one that stored the spend (another instance's) is within the window: the same pair", async () => {
        const api = sessionApi("rest", server.url);
        try {
          const first = await login(server, api);
          const creds = { ...client, access: first.access_token };
          clock.advance(60_000); // the access token is a minute old: valid on the clock 10 s behind too
          const answered = expectOk(await api.refreshSession({ refresh_token: first.refresh_token }, creds));
          clock.advance(-10_000); // the spend now reads 10 s ahead of the clock
          assert.deepEqual(expectOk(await api.refreshSession({ refresh_token: first.refresh_token }, creds)), answered);
          expectOk(await api.getSession({ ...client, access: answered.access_token }));
        } finally {
          api.close();
        }
      });

      it("a clock stepped back 5 minutes after the spend does not stretch the window to 5 minutes: the same retry then is reuse", async () => {
        const api = sessionApi("rest", server.url);
        try {
          const first = await login(server, api);
          const creds = { ...client, access: first.access_token };
          clock.advance(10 * 60_000); // the access token is 10 minutes old: still valid after the step
          const answered = expectOk(await api.refreshSession({ refresh_token: first.refresh_token }, creds));
          clock.advance(-5 * 60_000); // the spend now reads 5 minutes ahead of the clock
          expectCode(await api.refreshSession({ refresh_token: first.refresh_token }, creds), "unauthenticated", "refresh token reuse detected: the session has ended", "REFRESH_TOKEN_REUSED");
          expectCode(await api.getSession(creds), "unauthenticated", "the session has ended", "SESSION_ENDED");
          // The pair answered before the step (issued 5 minutes ahead of this clock, beyond iat's
          // leeway until the clock is back) is ended with its session.
          expectCode(await api.getSession({ ...client, access: answered.access_token }), "unauthenticated", "token issued in the future", "TOKEN_NOT_YET_VALID");
          clock.advance(5 * 60_000);
          expectCode(await api.getSession({ ...client, access: answered.access_token }), "unauthenticated", "the session has ended", "SESSION_ENDED");
        } finally {
          api.close();
        }
      });
    });
  });
}
