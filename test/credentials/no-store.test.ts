// Nothing secret is cacheable: every answer that carries a token, a refresh token, an API token
// or a password-derived secret says `Cache-Control: no-store` and `Pragma: no-cache`, on every
// API and every protocol (REST, Connect, gRPC).
import assert from "node:assert/strict";
import { expectOk, protocols, type Outcome } from "../support/api.js";
import { bearer, basic } from "../support/clients.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { admin, createJwtUser, loginUserToken, password, signUp, uniqueEmail, uniqueName } from "../support/users.js";
import { apiTokenApi } from "../api-token/api.js";
import { authenticationTokenApi } from "../authentication-token/api.js";
import { jwtApi } from "../jwt/api.js";
import { sessionApi } from "../session/api.js";
import { userTokenApi } from "../user-token/api.js";

function assertNotCacheable(what: string, outcome: Outcome<unknown>): void {
  assert.equal(outcome.code, "ok", `${what}: ${outcome.message}`);
  assert.equal(outcome.headers.get("cache-control"), "no-store", `${what}: Cache-Control`);
  assert.equal(outcome.headers.get("pragma"), "no-cache", `${what}: Pragma`);
}

for (const store of storesUnderTest()) {
  describe(`Answers carrying secrets are not cacheable on ${store}`, () => {
    let server: TestServer;
    before(async () => (server = await startTestServer({ store })));
    after(() => server.close());

    for (const protocol of protocols) {
      it(`sessions, JWTs, API tokens, user tokens and authentication tokens (${protocol})`, async () => {
        const session = sessionApi(protocol, server.url);
        const jwt = jwtApi(protocol, server.url);
        const apiTokens = apiTokenApi(protocol, server.url);
        const userTokens = userTokenApi(protocol, server.url);
        const authTokens = authenticationTokenApi(protocol, server.url);
        try {
          const client = { clientId: testClientId };
          const email = uniqueEmail();
          await signUp(server, email);
          const login = await session.createSession({ account_type: "traditional", email, password }, client);
          assertNotCacheable("POST /session", login);
          const pair = login.data!;
          assertNotCacheable("PUT /session", await session.refreshSession({ refresh_token: pair.refresh_token }, { ...client, access: pair.access_token }));

          const user = await createJwtUser(server, uniqueName("nostore"));
          const token = await jwt.getToken({ user, pass: password });
          assertNotCacheable("GET /jwt/token", token);
          const access = expectOk(token).text;
          const refresh = await jwt.getRefreshToken({}, bearer(access));
          assertNotCacheable("GET /jwt/refresh_token", refresh);
          assertNotCacheable("GET /jwt/token (refresh login)", await jwt.getToken({ user: expectOk(refresh).text }));

          assertNotCacheable("POST /v1/frontend/auth", await apiTokens.createToken({ account_id: uniqueName("acct"), description: "d" }, admin));

          assertNotCacheable("POST /auth/login", await userTokens.login(undefined, basic(email, password)));

          const userToken = await loginUserToken(server, email);
          const handOff = await authTokens.createToken(bearer(userToken));
          assertNotCacheable("GET /api/authenticationtoken", handOff);
          assertNotCacheable("GET /api/authenticationtoken/{token}", await authTokens.getToken(handOff.data!.token, bearer(userToken)));
          assertNotCacheable("GET /api/authenticationtoken/{token}/user", await authTokens.exchangeToken(handOff.data!.token));
        } finally {
          for (const api of [session, jwt, apiTokens, userTokens, authTokens]) api.close();
        }
      });
    }
  });
}
