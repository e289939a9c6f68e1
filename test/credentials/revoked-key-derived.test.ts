// Revoking a signing key ends what was made from the tokens it signed, not only those tokens:
// an operator revokes a key because it leaked, and a token forged with it must not buy a
// credential that outlives the revocation.
// - a seed 003 authentication token made with a seed 004 access JWT or a seed 000 session
//   access token signed by the key is dead (404, as a used one), and so is the cookie session
//   its exchange started (401 TOKEN_REVOKED, as after a logout);
// - a seed 004 refresh token minted with an access token the key signed (a retired key: the
//   refresh token itself is signed by the current one) is refused (401 TOKEN_REVOKED, as a
//   revoked refresh token), and so is an access token of a refresh login with it, with what it
//   made in turn;
// at once on the revoking instance, within the 30 s reload interval on another one on the same
// store. What the key did not sign lives on.
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { expectCode, restOutcome } from "../support/api.js";
import { bearer, rest } from "../support/clients.js";
import { storesUnderTest, type TestServer } from "../support/server.js";
import { clientIdHeader, createAuthenticationToken, jwtLogin, jwtRefreshToken, loginUserToken, signUp, startSession, uniqueEmail } from "../support/users.js";
import { accessTokenOfRetiredKey, kidOf, revokeKeyOn } from "../key/api.js";
import { exchangeHandOff, expectDeadHandOff, expectEndedCookie, handOffNotFound, sessionCookieHeader, startServerPair, type ServerPair } from "./support.js";

for (const store of storesUnderTest()) {
  describe(`Revoking a signing key ends what its tokens made on ${store}`, function () {
    this.timeout(60_000);
    const clock = new ManualClock(Date.now());
    let pair: ServerPair;
    before(async () => (pair = await startServerPair(store, {}, clock)));
    after(() => pair.close());

    it("an authentication token made with a JWT or a session access token the key signed is dead: 404, as a used one", async () => {
      const { a, b } = pair;
      const email = uniqueEmail("revoked-handoff");
      await signUp(a, email);
      const access = await jwtLogin(a, email);
      const session = await startSession(a, email);
      const userToken = await loginUserToken(a, email);
      const kid = kidOf(access);
      assert.equal(kidOf(session.access_token), kid);
      const fromJwt = await createAuthenticationToken(a, bearer(access));
      const fromSession = await createAuthenticationToken(a, { ...clientIdHeader, ...bearer(session.access_token) });
      const fromJwtOnA = await createAuthenticationToken(a, bearer(access));
      const fromUserToken = await createAuthenticationToken(a, bearer(userToken));

      await revokeKeyOn(b, kid);
      // At once on the revoking instance.
      const read = await rest(b.url, "GET", `/api/authenticationtoken/${fromSession}`, { headers: bearer(userToken) });
      expectCode(restOutcome(read), "not_found", handOffNotFound, "TOKEN_NOT_FOUND");
      await expectDeadHandOff(b, fromJwt);
      // Within the reload interval on the other.
      clock.advance(30_000);
      await expectDeadHandOff(a, fromSession);
      await expectDeadHandOff(a, fromJwtOnA);
      // A token made with a credential the key did not sign lives on.
      await exchangeHandOff(a, fromUserToken);
    });

    it("a cookie session started with such a token ends: 401 TOKEN_REVOKED, as after a logout, and so does what it made", async () => {
      const { a, b } = pair;
      const email = uniqueEmail("revoked-cookie");
      await signUp(a, email);
      const access = await jwtLogin(a, email);
      const session = await startSession(a, email);
      const kid = kidOf(access);
      const fromJwt = await exchangeHandOff(a, await createAuthenticationToken(a, bearer(access)));
      const fromSession = await exchangeHandOff(a, await createAuthenticationToken(a, { ...clientIdHeader, ...bearer(session.access_token) }));
      // A cookie session made from that cookie session, and a hand-off token made from it.
      const again = await exchangeHandOff(a, await createAuthenticationToken(a, sessionCookieHeader(fromJwt)));
      const handOff = await createAuthenticationToken(a, sessionCookieHeader(fromSession));
      const unrelated = await exchangeHandOff(a, await createAuthenticationToken(a, bearer(await loginUserToken(a, email))));
      for (const value of [fromJwt, fromSession, again]) {
        assert.equal((await rest(a.url, "GET", "/api/authenticationtoken", { headers: sessionCookieHeader(value) })).status, 200);
      }

      await revokeKeyOn(b, kid);
      await expectEndedCookie(b, fromJwt);
      await expectEndedCookie(b, again);
      clock.advance(30_000);
      await expectEndedCookie(a, fromSession);
      await expectDeadHandOff(a, handOff);
      assert.equal((await rest(a.url, "GET", "/api/authenticationtoken", { headers: sessionCookieHeader(unrelated) })).status, 200);
    });

    it("a refresh token minted with an access token of a retired key ends when that key is revoked, with the access tokens it gave and what they made", async () => {
      const { a, b } = pair;
      const { email, access: old, retired, current } = await accessTokenOfRetiredKey(a, clock, "revoked-refresh");
      const refresh = await jwtRefreshToken(a, old);
      assert.equal(kidOf(refresh), current, "signed by the current key");
      const unrelated = await jwtRefreshToken(a, await jwtLogin(a, email));
      const refreshLogin = async (server: TestServer, token: string) =>
        rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: token })}`);
      const derived = await refreshLogin(a, refresh);
      assert.equal(derived.status, 200, derived.text);
      const derivedAccess = derived.text;
      const handOff = await createAuthenticationToken(a, bearer(derivedAccess));
      const derivedCookie = await exchangeHandOff(a, await createAuthenticationToken(a, bearer(derivedAccess)));

      await revokeKeyOn(b, retired);
      const refused = await refreshLogin(b, refresh);
      expectCode(restOutcome(refused), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
      clock.advance(30_000);
      expectCode(restOutcome(await refreshLogin(a, refresh)), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
      const check = await rest(a.url, "GET", "/jwt/check", { headers: bearer(derivedAccess) });
      expectCode(restOutcome(check), "invalid_argument", "token derived from a token signed by a revoked key", "INVALID_TOKEN");
      await expectDeadHandOff(a, handOff);
      await expectEndedCookie(a, derivedCookie);
      // What the retired key did not take part in lives on.
      assert.equal((await refreshLogin(a, unrelated)).status, 200);
    });
  });
}
