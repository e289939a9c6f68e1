// A single-use credential is not burnt by a store that fails half-way through its spend: seed
// 003's exchange consumes the hand-off token, then stores the new cookie session, and gives the
// token back when that write fails, so such a failure answers 503 STORE_UNAVAILABLE with the
// token still unused, and the retry once the store answers again exchanges it, once. Two
// exchanges at once, on two instances sharing the store, start one session between them, and
// the one that lost the consume stores none. Seed 000's refresh spends its refresh
// token first and stores the new one last: the same refresh after a failure between the two
// finishes it, even past TESSERA_REFRESH_GRACE_SECONDS (no client holds that pair: no reuse).
import assert from "node:assert/strict";
import { fsync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Collection, MongoClient, MongoNetworkError } from "mongodb";
import { StoreUnavailableError } from "../../src/store/ports/errors.js";
import type { UserTokenStore } from "../../src/store/ports/user-tokens.js";
import { bearer, rest } from "../support/clients.js";
import { assertStoreUnavailable } from "../support/error-details.js";
import { expectCode, expectOk } from "../support/api.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { loginUserToken, password, signUp, uniqueEmail } from "../support/users.js";
import { sessionApi } from "../session/api.js";
import { ManualClock } from "../../src/core/clock.js";
import { sessionCookieOf } from "../authentication-token/api.js";
import { gate, startServerPair, type ServerPair } from "./support.js";

const client = { clientId: testClientId };

describe("Seed 003's exchange when the embedded store's fsync fails under it", function () {
  this.timeout(60_000);
  const eio = Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO", syscall: "fsync" });
  let dataDir: string;
  let server: TestServer | undefined;
  before(() => (dataDir = mkdtempSync(join(tmpdir(), "tessera-spend-"))));
  after(async () => {
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("the exchange's consume fails its fsync: 503 STORE_UNAVAILABLE, no session handed out; the store refuses every write until restarted, so after the restart the token is used: 404 TOKEN_NOT_FOUND", async () => {
    let failing = false;
    server = await startTestServer({ env: { TESSERA_DATA_DIR: dataDir }, fsync: (fd, done) => (failing ? setImmediate(done, eio) : fsync(fd, done)) });
    const email = uniqueEmail("spend");
    await signUp(server, email);
    const userToken = await loginUserToken(server, email);
    const made = await rest(server.url, "GET", "/api/authenticationtoken", { headers: bearer(userToken) });
    assert.equal(made.status, 200, made.text);
    const token = made.body.token as string;
    failing = true;
    const failed = await rest(server.url, "GET", `/api/authenticationtoken/${token}/user`);
    assertStoreUnavailable(failed);
    assert.equal(sessionCookieOf(failed.headers), undefined, "no session cookie");
    await server.close();
    server = await startTestServer({ env: { TESSERA_DATA_DIR: dataDir } });
    const retried = await rest(server.url, "GET", `/api/authenticationtoken/${token}/user`);
    assert.equal(retried.status, 404, retried.text);
    assert.equal(retried.body.details[0].debug.reason, "TOKEN_NOT_FOUND");
  });
});

for (const store of storesUnderTest()) {
  describe(`Single-use spends when the store fails between their steps on ${store}`, function () {
    this.timeout(60_000);
    let pair: ServerPair;
    before(async () => (pair = await startServerPair(store)));
    after(() => pair.close());

    /** A user token and a hand-off token made with it. */
    async function handOff(): Promise<{ userToken: string; token: string }> {
      const email = uniqueEmail("spend");
      await signUp(pair.a, email);
      const userToken = await loginUserToken(pair.a, email);
      const made = await rest(pair.a.url, "GET", "/api/authenticationtoken", { headers: bearer(userToken) });
      assert.equal(made.status, 200, made.text);
      return { userToken, token: made.body.token as string };
    }

    const exchange = (url: string, token: string) => rest(url, "GET", `/api/authenticationtoken/${token}/user`);

    it("GET /api/authenticationtoken/{token}/user while the store fails as the new cookie session is stored: 503 STORE_UNAVAILABLE, the token still unused; the retry starts a session, once", async () => {
      const { userToken, token } = await handOff();
      const userTokens = pair.a.tessera.store.userTokens as UserTokenStore;
      const create = userTokens.create;
      userTokens.create = async () => {
        userTokens.create = create;
        throw new StoreUnavailableError("store unavailable");
      };
      try {
        assertStoreUnavailable(await exchange(pair.a.url, token));
      } finally {
        userTokens.create = create;
      }
      const unused = await rest(pair.a.url, "GET", `/api/authenticationtoken/${token}`, { headers: bearer(userToken) });
      assert.equal(unused.status, 200, unused.text);
      const retried = await exchange(pair.b.url, token);
      assert.equal(retried.status, 200, retried.text);
      const cookie = sessionCookieOf(retried.headers);
      assert.ok(cookie, "the retry answers a session cookie");
      const live = await rest(pair.a.url, "GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${cookie.value}` } });
      assert.equal(live.status, 200, live.text);
      const again = await exchange(pair.a.url, token);
      assert.equal(again.status, 404, again.text);
      assert.equal(again.body.details[0].debug.reason, "TOKEN_NOT_FOUND");
    });

    it("two exchanges at once, one on each instance, both past their checks before either consumes: one 200 with a session, the other 404 TOKEN_NOT_FOUND, having stored none", async () => {
      const { token } = await handOff();
      const together = gate();
      let arrivals = 0;
      const stored: string[] = [];
      const restores = [pair.a, pair.b].flatMap((server) => {
        const { authTokens, userTokens } = server.tessera.store;
        const consume = authTokens.consume;
        const create = userTokens.create;
        authTokens.consume = async (...args) => {
          if (++arrivals === 2) together.open();
          await together.pass();
          return consume.apply(authTokens, args);
        };
        userTokens.create = async (...args) => {
          stored.push(args[0].hash);
          return create.apply(userTokens, args);
        };
        return [() => (authTokens.consume = consume), () => (userTokens.create = create)];
      });
      let answers;
      const logged = [pair.a.logs.length, pair.b.logs.length] as const;
      try {
        answers = await Promise.all([exchange(pair.a.url, token), exchange(pair.b.url, token)]);
      } finally {
        for (const restore of restores) restore();
        together.open();
      }
      assert.deepEqual(answers.map((r) => r.status).sort(), [200, 404], answers.map((r) => r.text).join("\n"));
      const lost = answers.find((r) => r.status === 404)!;
      assert.equal(lost.body.details[0].debug.reason, "TOKEN_NOT_FOUND");
      const cookie = sessionCookieOf(answers.find((r) => r.status === 200)!.headers)!;
      assert.equal(stored.length, 1, "only the exchange that consumed the token stored a session");
      const records = await Promise.all(stored.map((hash) => pair.a.tessera.store.userTokens.findByHashWithUser(hash).then((f) => f?.token ?? null)));
      assert.equal(records.filter((r) => r?.enabled).length, 1, "the winner's session is live");
      // The audit trail: one session started; both exchanges name the token's user, the one that
      // lost the consume too (a token presented twice is what a stolen link looks like).
      const events = [...pair.a.logs.slice(logged[0]), ...pair.b.logs.slice(logged[1])].map(
        (line) => JSON.parse(line) as { event?: string; outcome?: string; reason?: string; userId?: string },
      );
      assert.deepEqual(events.filter((e) => e.event === "cookie_session.started").map((e) => e.outcome), ["success"]);
      const userId = (answers.find((r) => r.status === 200)!.body as { _id: string })._id;
      assert.deepEqual(
        events.filter((e) => e.event === "auth_token.exchanged").map((e) => [e.outcome, e.reason, e.userId]).sort(),
        [["failure", "TOKEN_NOT_FOUND", userId], ["success", undefined, userId]],
      );
      const live = await rest(pair.b.url, "GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${cookie.value}` } });
      assert.equal(live.status, 200, live.text);
    });

    describe("a refresh (PUT /session) whose store fails after it spent the refresh token", () => {
      const clock = new ManualClock(Date.now());
      let server: TestServer;
      let api: ReturnType<typeof sessionApi>;
      let insert: TestServer["tessera"]["store"]["refreshTokens"]["insertThenSync"];
      before(async () => {
        server = await startTestServer({ store, clock, env: { TESSERA_REFRESH_GRACE_SECONDS: "10" } });
        insert = server.tessera.store.refreshTokens.insertThenSync;
      });
      beforeEach(() => (api = sessionApi("rest", server.url)));
      afterEach(() => {
        server.tessera.store.refreshTokens.insertThenSync = insert;
        api.close();
      });
      after(() => server.close());

      /** PUT /session over plain HTTP (the refresh whose answer the test expects to be 503). */
      const putSession = (tokens: { refresh_token: string; access_token: string }) =>
        rest(server.url, "PUT", "/session", { json: { refresh_token: tokens.refresh_token }, headers: { "x-koms-clientid": testClientId, ...bearer(tokens.access_token) } });

      /** A new user's session, then its refresh with the store failing as the new refresh token is stored: 503. */
      async function refreshFailedOnce() {
        const email = uniqueEmail("spend");
        await signUp(server, email);
        const first = expectOk(await api.createSession({ account_type: "traditional", email, password }, client));
        const refreshTokens = server.tessera.store.refreshTokens;
        refreshTokens.insertThenSync = async () => {
          refreshTokens.insertThenSync = insert;
          throw new StoreUnavailableError("store unavailable");
        };
        assertStoreUnavailable(await putSession(first));
        return { first, creds: { ...client, access: first.access_token } };
      }

      it("503 STORE_UNAVAILABLE as its new refresh token is stored; the same refresh once the store answers again, past TESSERA_REFRESH_GRACE_SECONDS, answers a pair that works and the session lives on (not REFRESH_TOKEN_REUSED)", async () => {
        const { first, creds } = await refreshFailedOnce();
        clock.advance(11_000);
        const retried = expectOk(await api.refreshSession({ refresh_token: first.refresh_token }, creds));
        expectOk(await api.getSession({ ...client, access: retried.access_token }));
        const next = expectOk(await api.refreshSession({ refresh_token: retried.refresh_token }, { ...client, access: retried.access_token }));
        expectOk(await api.getSession({ ...client, access: next.access_token }));
        // The parent, presented again after the window (counted from that answer too) now that
        // its refresh was answered: reuse.
        clock.advance(11_000);
        expectCode(await api.refreshSession({ refresh_token: first.refresh_token }, creds), "unauthenticated", "refresh token reuse detected: the session has ended", "REFRESH_TOKEN_REUSED");
      });

      it("the same refresh retried after the access token lifetime has passed answers an access token that is not expired, with access_token_expires_in as long as it lives (TESSERA_ACCESS_TOKEN_TTL_SECONDS)", async () => {
        const { first, creds } = await refreshFailedOnce();
        clock.advance((server.config.accessTokenTtlSeconds + 60) * 1000);
        const retried = expectOk(await api.refreshSession({ refresh_token: first.refresh_token }, creds));
        assert.equal(retried.access_token_expires_in, server.config.accessTokenTtlSeconds);
        const exp = JSON.parse(Buffer.from(retried.access_token.split(".")[1]!, "base64url").toString()).exp as number;
        assert.equal(exp, Math.floor(clock.now().getTime() / 1000) + server.config.accessTokenTtlSeconds);
        expectOk(await api.getSession({ ...client, access: retried.access_token }));
      });

      it("that late refresh's answer lost, the same refresh again at once: the same refresh token again within TESSERA_REFRESH_GRACE_SECONDS of that answer, the session lives on (not REFRESH_TOKEN_REUSED)", async () => {
        const { first, creds } = await refreshFailedOnce();
        clock.advance(60_000);
        const late = expectOk(await api.refreshSession({ refresh_token: first.refresh_token }, creds));
        clock.advance(1_000);
        const again = expectOk(await api.refreshSession({ refresh_token: first.refresh_token }, creds));
        assert.equal(again.refresh_token, late.refresh_token);
        expectOk(await api.getSession({ ...client, access: again.access_token }));
        expectOk(await api.refreshSession({ refresh_token: again.refresh_token }, { ...client, access: again.access_token }));
      });
    });
  });
}

if (storesUnderTest().includes("mongo")) {
  // MongoDB (no transactions here) stores a login's session and its first refresh token as two
  // inserts, the session first: a failure of the second leaves the session's document, which the
  // login withdraws (ends) before it answers: no token of it went out, and it must not count
  // against the user's sessions.
  describe("Seed 000's login (POST /session) on mongo when the store fails between the session and its refresh token", function () {
    this.timeout(60_000);
    let server: TestServer;
    before(async () => (server = await startTestServer({ store: "mongo" })));
    after(() => server.close());

    it("503 STORE_UNAVAILABLE; the session's document is left without a refresh token, ended; the next login works", async () => {
      const email = uniqueEmail("spend");
      const user = await signUp(server, email);
      const insertOne = Collection.prototype.insertOne;
      let failures = 1;
      Collection.prototype.insertOne = function (this: Collection, ...args: Parameters<Collection["insertOne"]>) {
        if (this.collectionName === "refresh_tokens" && failures-- > 0) return Promise.reject(new MongoNetworkError("connection reset"));
        return insertOne.apply(this, args);
      } as Collection["insertOne"];
      const logIn = () => rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: { "x-koms-clientid": testClientId } });
      try {
        assertStoreUnavailable(await logIn());
      } finally {
        Collection.prototype.insertOne = insertOne;
      }
      assert.equal(failures, 0, "the refresh token's insert was the one refused");
      const client = new MongoClient(server.config.mongodbUri!);
      try {
        const db = client.db(server.config.mongodbDatabase);
        const sessions = await db.collection<{ _id: string }>("sessions").find({ userId: user.id }).toArray();
        assert.equal(sessions.length, 1, "the session was inserted first");
        assert.equal(await db.collection("refresh_tokens").countDocuments({ sessionId: sessions[0]!._id }), 0);
        assert.ok((await server.tessera.store.sessions.findById(sessions[0]!._id))?.endedAt, "the session is ended");
      } finally {
        await client.close();
      }
      const next = await logIn();
      assert.equal(next.status, 200, next.text);
    });
  });
}
