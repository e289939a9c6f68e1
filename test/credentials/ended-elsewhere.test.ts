// A credential ended on one instance is refused on the other at once (README, Credential
// lifetime), with that instance's caches warm: each credential is used there first, so its
// access JWT sits in the verified-token cache and its key in the key ring, and only the store
// can tell it has ended. Seed 000 sessions (DELETE /session), seed 002 user tokens
// (POST /auth/logout), seed 004 refresh tokens (DELETE /jwt/refresh_token) and access tokens
// (DELETE /jwt/user). Signing keys (within the key list's 30 s) and API tokens (within
// TESSERA_API_TOKEN_CACHE_SECONDS) have their own suites: keys.test.ts, cache-bounds.test.ts.
import { expectCode, expectOk } from "../support/api.js";
import { basic, bearer } from "../support/clients.js";
import { storesUnderTest, testClientId } from "../support/server.js";
import { createJwtUser, password, signUp, uniqueEmail } from "../support/users.js";
import { jwtApi, type JwtApi } from "../jwt/api.js";
import { sessionApi } from "../session/api.js";
import { userTokenApi } from "../user-token/api.js";
import { startServerPair, type ServerPair } from "./support.js";

const client = { clientId: testClientId };

for (const store of storesUnderTest()) {
  describe(`Credentials ended on one instance are refused at once on the other, its caches warm, on ${store}`, function () {
    this.timeout(60_000);
    let pair: ServerPair;
    before(async () => (pair = await startServerPair(store)));
    after(() => pair.close());

    /** `body` given the API on instance a and on instance b; both closed after it. */
    async function onBoth<T extends { close(): void }>(open: (url: string) => T, body: (onA: T, onB: T) => Promise<void>): Promise<void> {
      const onA = open(pair.a.url);
      const onB = open(pair.b.url);
      try {
        await body(onA, onB);
      } finally {
        onA.close();
        onB.close();
      }
    }

    for (const protocol of ["rest", "grpc"] as const) {
      describe(`over ${protocol}`, () => {
        it("DELETE /session on one: the session's access token and refresh token are 401 SESSION_ENDED on the other", () =>
          onBoth((url) => sessionApi(protocol, url), async (onA, onB) => {
            const email = uniqueEmail("elsewhere");
            await signUp(pair.a, email);
            const tokens = expectOk(await onB.createSession({ account_type: "traditional", email, password }, client));
            const creds = { ...client, access: tokens.access_token };
            expectOk(await onB.getSession(creds));
            expectOk(await onA.deleteSession(creds));
            expectCode(await onB.getSession(creds), "unauthenticated", "the session has ended", "SESSION_ENDED");
            expectCode(await onB.refreshSession({ refresh_token: tokens.refresh_token }, creds), "unauthenticated", "the session has ended", "SESSION_ENDED");
          }));

        it("POST /auth/logout on one: the user token is 401 TOKEN_REVOKED on the other", () =>
          onBoth((url) => userTokenApi(protocol, url), async (onA, onB) => {
            const email = uniqueEmail("elsewhere");
            await signUp(pair.a, email);
            const token = expectOk(await onB.login(undefined, basic(email, password))).token;
            expectOk(await onB.bump(bearer(token)));
            expectOk(await onA.logout(bearer(token)));
            expectCode(await onB.bump(bearer(token)), "unauthenticated", "user token is disabled", "TOKEN_REVOKED");
          }));

        /** A seed 004 user's access and refresh tokens, both used on b (its caches warm). */
        const jwtsUsedOnB = async (onB: JwtApi) => {
          const user = await createJwtUser(pair.a);
          const access = expectOk(await onB.getToken({ user, pass: password })).text;
          const refresh = expectOk(await onB.getRefreshToken({}, bearer(access))).text;
          expectOk(await onB.check({ access_token: access }));
          expectOk(await onB.getToken({ user: refresh }));
          return { access, refresh };
        };

        it("DELETE /jwt/refresh_token on one: the refresh token's login is 401 TOKEN_REVOKED on the other", () =>
          onBoth((url) => jwtApi(protocol, url), async (onA, onB) => {
            const { access, refresh } = await jwtsUsedOnB(onB);
            expectOk(await onA.deleteRefreshToken({ refresh_token: refresh }, bearer(access)), 204);
            expectCode(await onB.getToken({ user: refresh }), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
          }));

        it("DELETE /jwt/user on one: the user's access token is 401 USER_DEACTIVATED on the other (GET /jwt/check 400), and their refresh token 401 TOKEN_REVOKED", () =>
          onBoth((url) => jwtApi(protocol, url), async (onA, onB) => {
            const { access, refresh } = await jwtsUsedOnB(onB);
            expectOk(await onA.deleteUser({}, bearer(access)), 204);
            const deactivated = "the token's user is deactivated";
            expectCode(await onB.check({ access_token: access }), "invalid_argument", deactivated, "USER_DEACTIVATED");
            expectCode(await onB.getRefreshToken({}, bearer(access)), "unauthenticated", deactivated, "USER_DEACTIVATED");
            expectCode(await onB.getToken({ user: refresh }), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
          }));
      });
    }
  });
}
