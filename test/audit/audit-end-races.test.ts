// A session's end is recorded once when a logout races the sessions cap on another instance
// sharing the store: the cap (TESSERA_MAX_SESSIONS_PER_USER) of a login there ends the user's
// oldest session while DELETE /session of that session is under way. Whichever ended it records
// `session.ended`; the other is answered as a logout after the end is (401 SESSION_ENDED).
// Likewise a seed 003 cookie session's end when its logout (POST /auth/logout with the cookie)
// races the user-token cap (TESSERA_MAX_USER_TOKENS_PER_USER) of a seed 002 login on another
// instance: the end the store took first is the one recorded (`cookie_session.ended`, or the
// cap's `user_token.logout` CAP), and the logout is answered as it came out, on both stores:
// 200 when its end was taken, 401 TOKEN_REVOKED (the cookie cleared) when the cap's was.
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { Collection, type Document } from "mongodb";
import { basic, bearer, rest, type RestResponse } from "../support/clients.js";
import { holdInsert } from "../support/doubtful-writes.js";
import { storesUnderTest, type TestServer } from "../support/server.js";
import { clientIdHeader, createAuthenticationToken, password, signUp, startSession, storedUserToken, uniqueEmail } from "../support/users.js";
import { assertRefused, gate, holdAfter, holdLogins, startServerPair, type Gate, type ServerPair } from "../credentials/support.js";
import { allEvents } from "./api.js";

const login = (server: TestServer, email: string) => rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: clientIdHeader });

/**
 * Holds the cap of the next login on `server` once it has ended the session `sessionId`, until
 * `open()`: on MongoDB at that session's delete (the cap ends a session, then deletes its
 * document), on SQLite once the login's store call has answered (its cap is in its transaction).
 */
function holdCapEnding(server: TestServer, sessionId: string): Gate & { restore(): void } {
  if (!server.config.mongodbUri) return holdAfter(server.tessera.store.sessions, "createThenSync");
  const held = gate();
  const deleteOne = Collection.prototype.deleteOne;
  const restore = () => void (Collection.prototype.deleteOne = deleteOne);
  Collection.prototype.deleteOne = function (this: Collection<Document>, filter?: Document, ...rest: unknown[]) {
    if (this.collectionName !== "sessions" || filter?._id !== sessionId) return (deleteOne as any).call(this, filter, ...rest);
    restore();
    return held.pass().then(() => (deleteOne as any).call(this, filter, ...rest));
  } as typeof deleteOne;
  return { ...held, restore };
}

for (const store of storesUnderTest()) {
  describe(`audit trail on ${store}: a logout racing the sessions cap on another instance`, function () {
    this.timeout(60_000);
    let pair: ServerPair;
    before(async () => (pair = await startServerPair(store, { TESSERA_MAX_SESSIONS_PER_USER: "1" })));
    after(() => pair?.close());

    it("DELETE /session of the session a login's cap ended, before the cap's delete: 401 SESSION_ENDED; session.ended recorded once, the cap's", async () => {
      const { a, b } = pair;
      const email = uniqueEmail("caprace");
      await signUp(a, email);
      const first = await login(a, email);
      assert.equal(first.status, 200, first.text);
      const { sid, sub } = decodeJwt(first.body.access_token as string) as { sid: string; sub: string };
      const held = holdCapEnding(b, sid);
      try {
        const second = login(b, email);
        await held.reached;
        const logout = await rest(a.url, "DELETE", "/session", { headers: { ...clientIdHeader, ...bearer(first.body.access_token as string) } });
        held.open();
        assert.equal((await second).status, 200);
        const ended = (await allEvents(a, { user_id: sub, type: "session.ended" })).filter((e) => e.subject === sid);
        assert.deepEqual(
          ended.map((e) => [e.outcome, e.reason ?? null]),
          [["success", "CAP"]],
        );
        assertRefused(logout, 401, "the session has ended", "SESSION_ENDED");
      } finally {
        held.restore();
        held.open();
      }
    });
  });
}

/** The seed 003 cookie session of a new user (exchanged on `server`, from a seed 000 session): its cookie and id. */
async function newCookieSession(server: TestServer, email: string): Promise<{ userId: string; cookie: string; id: string }> {
  const user = await signUp(server, email);
  const session = await startSession(server, email);
  const token = await createAuthenticationToken(server, { ...clientIdHeader, ...bearer(session.access_token) });
  const exchanged = await rest(server.url, "GET", `/api/authenticationtoken/${token}/user`);
  assert.equal(exchanged.status, 200, exchanged.text);
  const cookie = /^tessera_session=([^;]+)/.exec(exchanged.headers.getSetCookie().find((c) => c.startsWith("tessera_session=")) ?? "")?.[1];
  assert.ok(cookie, "no session cookie");
  return { userId: user.id, cookie, id: (await storedUserToken(server, cookie)).id };
}

const cookieLogout = (server: TestServer, cookie: string) => rest(server.url, "POST", "/auth/logout", { headers: { cookie: `tessera_session=${cookie}` } });
const userTokenLogin = (server: TestServer, email: string) => rest(server.url, "POST", "/auth/login", { headers: basic(email, password) });

/** The successful ends recorded of the cookie session `id`: [type, reason]. */
async function endsOf(server: TestServer, userId: string, id: string): Promise<Array<[string, string | null]>> {
  return (await allEvents(server, { user_id: userId }))
    .filter((e) => e.subject === id && e.outcome === "success" && (e.type === "cookie_session.ended" || e.type === "user_token.logout"))
    .map((e) => [e.type, e.reason ?? null]);
}

/** A cookie logout refused once its session ended: 401 TOKEN_REVOKED, the cookie cleared all the same. */
function assertLoggedOutAlready(res: RestResponse): void {
  assertRefused(res, 401, "session cookie is disabled", "TOKEN_REVOKED");
  assert.deepEqual(res.headers.getSetCookie(), ["tessera_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"]);
}

for (const store of storesUnderTest()) {
  describe(`audit trail on ${store}: a cookie-session logout racing the user-token cap on another instance`, function () {
    this.timeout(120_000);
    let pair: ServerPair;
    before(async () => (pair = await startServerPair(store, { TESSERA_MAX_USER_TOKENS_PER_USER: "1" })));
    after(() => pair?.close());

    /**
     * A cookie logout on a of the cookie session a user-token login on b ends for the cap, sent
     * while `hold` (given the session's id) holds that login: the logout's answer and the
     * session's recorded ends, once the login has answered 200.
     */
    async function logoutWhileLoginHeld(hold: (cookieSessionId: string) => { reached: Promise<void>; release(): void }) {
      const { a, b } = pair;
      const email = uniqueEmail("cookiecap");
      const cookieSession = await newCookieSession(a, email);
      const held = hold(cookieSession.id);
      try {
        const login = userTokenLogin(b, email);
        await held.reached;
        const logout = await cookieLogout(a, cookieSession.cookie);
        held.release();
        assert.equal((await login).status, 200);
        return { logout, ends: await endsOf(a, cookieSession.userId, cookieSession.id) };
      } finally {
        held.release();
      }
    }

    it("POST /auth/logout of the cookie session a user-token login's cap logged out, its store call answered: 401 TOKEN_REVOKED, the cookie cleared; the end recorded once, the cap's user_token.logout CAP", async () => {
      const { logout, ends } = await logoutWhileLoginHeld(() => {
        const held = holdAfter(pair.b.tessera.store.userTokens, "createThenSync");
        return { reached: held.reached, release: () => (held.restore(), held.open()) };
      });
      assertLoggedOutAlready(logout);
      assert.deepEqual(ends, [["user_token.logout", "CAP"]]);
    });

    it("POST /auth/logout of the cookie session while a user-token login is held before its token is stored: 200; the cap then ends nothing of it; the end recorded once, cookie_session.ended", async () => {
      const { logout, ends } = await logoutWhileLoginHeld(() => holdLogins(pair.b));
      assert.equal(logout.status, 200, logout.text);
      assert.deepEqual(logout.body, { success: true });
      assert.deepEqual(ends, [["cookie_session.ended", null]]);
    });

    if (store === "mongo") {
      // MongoDB's cap reads the user's tokens past the cap, then claims each one's logout mark: a
      // logout can claim it between the two (on SQLite the read and the end are one transaction).
      it("POST /auth/logout of the cookie session between the cap's read of it past the cap and its claim of the logout mark: 200; the cap's claim fails and records nothing; the end recorded once, cookie_session.ended", async () => {
        const { logout, ends } = await logoutWhileLoginHeld((id) => holdInsert("marks", `ut-disabled:${id}`));
        assert.equal(logout.status, 200, logout.text);
        assert.deepEqual(logout.body, { success: true });
        assert.deepEqual(ends, [["cookie_session.ended", null]]);
      });
    }

    const ROUNDS = 30;
    it(`${ROUNDS} times a cookie logout sent with a user-token login whose cap ends its session, on the other instance: each end recorded once, and the logout answered as the recorded end says (200 for cookie_session.ended, 401 TOKEN_REVOKED for the cap's)`, async () => {
      const { a, b } = pair;
      for (let round = 0; round < ROUNDS; round++) {
        const email = uniqueEmail("cookiecap");
        const cookieSession = await newCookieSession(a, email);
        const [login, logout] = await Promise.all([userTokenLogin(b, email), cookieLogout(a, cookieSession.cookie)]);
        assert.equal(login.status, 200, login.text);
        const ends = await endsOf(a, cookieSession.userId, cookieSession.id);
        assert.equal(ends.length, 1, `round ${round}: ${JSON.stringify(ends)}`);
        if (ends[0]![0] === "cookie_session.ended") {
          assert.equal(logout.status, 200, `round ${round}: ${logout.text}`);
        } else {
          assert.deepEqual(ends[0], ["user_token.logout", "CAP"]);
          assertLoggedOutAlready(logout);
        }
      }
    });
  });
}
