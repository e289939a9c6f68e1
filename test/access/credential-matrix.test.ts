// Every credential kind presented to every method that takes another one, in every place a
// credential may go (the Authorization header as Bearer or Basic, the `tessera_session` cookie,
// the `x-koms-clientid` header, seed 004's `access_token` argument), over gRPC, Connect and REST:
// each refusal is the documented one (code, REST status, ErrorInfo reason, message). No kind of
// credential stands in for another: a refresh token is no access token, a user token, cookie
// session, API token or JWT is no admin token, and the admin token is accepted as a Bearer token
// alone (not as Basic credentials, a cookie or a client id). Cells where the credential is the
// method's own are left out: their answers are the API suites'.
import assert from "node:assert/strict";
import { apiTokenApi, type ApiTokenApi } from "../api-token/api.js";
import { auditApi, type AuditApi } from "../audit/api.js";
import { authenticationTokenApi, type AuthenticationTokenApi } from "../authentication-token/api.js";
import { jwtApi, type JwtApi } from "../jwt/api.js";
import { keyApi, type KeyApi } from "../key/api.js";
import { sessionApi, type SessionApi } from "../session/api.js";
import { httpStatus, protocols, type Outcome, type Protocol } from "../support/api.js";
import { basic, bearer, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, testAdminToken, type TestServer } from "../support/server.js";
import { userTokenApi, type UserTokenApi } from "../user-token/api.js";
import {
  clientIdHeader,
  createApiToken,
  createAuthenticationToken,
  jwtsOfEachKind,
  loginUserToken,
  sessionCookie,
  signUp,
  startSession,
  uniqueEmail,
  uniqueName,
} from "../support/users.js";

/** The bearer kinds: a token that may also travel in seed 004's `access_token` argument. */
const tokenKinds = [
  "admin token",
  "session access token",
  "session refresh token",
  "ended session's access token",
  "user token",
  "logged-out user token",
  "cookie session as Bearer",
  "authentication token",
  "JWT access token",
  "JWT refresh token",
  "API token",
  "revoked API token",
] as const;
type TokenKind = (typeof tokenKinds)[number];

/** Every kind of credential, and the admin token in each place but the one it is taken in. */
const kinds = [
  "none",
  "malformed Bearer",
  "admin token as Basic",
  "admin token as cookie",
  "admin token as client id",
  "cookie session",
  ...tokenKinds,
] as const;
type Kind = (typeof kinds)[number];

interface Credentials {
  headers: Record<Kind, Record<string, string>>;
  tokens: Record<TokenKind, string>;
}

async function credentials(server: TestServer): Promise<Credentials> {
  const email = uniqueEmail("matrix");
  await signUp(server, email);
  const session = await startSession(server, email);
  const ended = await startSession(server, email);
  assert.equal((await rest(server.url, "DELETE", "/session", { headers: { ...clientIdHeader, ...bearer(ended.access_token) } })).status, 200);
  const userToken = await loginUserToken(server, email);
  const loggedOut = await loginUserToken(server, email);
  assert.equal((await rest(server.url, "POST", "/auth/logout", { headers: bearer(loggedOut) })).status, 200);
  const cookie = await sessionCookie(server, await loginUserToken(server, email));
  const authenticationToken = await createAuthenticationToken(server, bearer(userToken));
  const jwts = await jwtsOfEachKind(server);
  const apiToken = await createApiToken(server);
  const revokedAccount = uniqueName("acct");
  const revokedApiToken = await createApiToken(server, revokedAccount);
  const link = (await rest(server.url, "GET", "/v1/api/auth", { headers: bearer(revokedApiToken) })).body.token_link as string;
  const revoked = await rest(server.url, "DELETE", `/v1/frontend/auth/${revokedAccount}`, { headers: bearer(testAdminToken), json: { token_link: link } });
  assert.equal(revoked.status, 200, revoked.text);
  const tokens: Record<TokenKind, string> = {
    "admin token": testAdminToken,
    "session access token": session.access_token,
    "session refresh token": session.refresh_token,
    "ended session's access token": ended.access_token,
    "user token": userToken,
    "logged-out user token": loggedOut,
    "cookie session as Bearer": cookie,
    "authentication token": authenticationToken,
    "JWT access token": jwts.access,
    "JWT refresh token": jwts.refresh,
    "API token": apiToken,
    "revoked API token": revokedApiToken,
  };
  const bearers = {} as Record<TokenKind, Record<string, string>>;
  for (const kind of tokenKinds) bearers[kind] = bearer(tokens[kind]);
  const headers: Record<Kind, Record<string, string>> = {
    none: {},
    "malformed Bearer": { authorization: "Bearer two tokens" },
    "admin token as Basic": basic("admin", testAdminToken),
    "admin token as cookie": { cookie: `tessera_session=${testAdminToken}` },
    "admin token as client id": { "x-koms-clientid": testAdminToken },
    "cookie session": { cookie: `tessera_session=${cookie}` },
    ...bearers,
    // A session access token is presented with the client id it was issued to, as seed 000 takes it.
    "session access token": { ...clientIdHeader, ...bearers["session access token"] },
    "ended session's access token": { ...clientIdHeader, ...bearers["ended session's access token"] },
  };
  return { headers, tokens };
}

interface Apis {
  apiToken: ApiTokenApi;
  audit: AuditApi;
  authenticationToken: AuthenticationTokenApi;
  jwt: JwtApi;
  key: KeyApi;
  session: SessionApi;
  userToken: UserTokenApi;
}

/** An answer as "<code> <reason>: <message>", so that a table of them reads as the documentation does. */
function answer(o: Outcome<unknown>): string {
  if (o.status !== undefined && o.code !== "ok") assert.equal(o.status, httpStatus[o.code], `HTTP status of ${o.code}: ${o.message}`);
  return `${o.code} ${o.details?.reason ?? "(no ErrorInfo)"}: ${o.message ?? ""}`;
}

const notBearer = 'the Authorization header must be "Bearer <token>"';
const adminRequired = "admin credential required";
/** The answers of a method that takes `credential`, for each kind that is not its own ("accepted": left out). */
type Expected = Partial<Record<Kind, string | "accepted">>;

function refusals(missing: string, invalid: string, overrides: Expected): Expected {
  const all: Expected = {
    none: `unauthenticated MISSING_CREDENTIAL: ${missing}`,
    "malformed Bearer": `unauthenticated MALFORMED_CREDENTIAL: ${notBearer}`,
    "admin token as Basic": `unauthenticated UNSUPPORTED_CREDENTIAL: ${notBearer}`,
    "admin token as cookie": `unauthenticated MISSING_CREDENTIAL: ${missing}`,
    "admin token as client id": `unauthenticated MISSING_CREDENTIAL: ${missing}`,
    "cookie session": `unauthenticated MISSING_CREDENTIAL: ${missing}`,
  };
  for (const kind of tokenKinds) all[kind] = `unauthenticated INVALID_TOKEN: ${invalid}`;
  return { ...all, ...overrides };
}

const admin = refusals(adminRequired, adminRequired, { "admin token": "accepted" });
const userTokenRefused = "invalid user token";
const userToken = refusals("missing bearer user token", userTokenRefused, {
  "user token": "accepted",
  "logged-out user token": "unauthenticated TOKEN_REVOKED: user token is disabled",
});
const apiToken = refusals("missing bearer API token", "invalid API token", { "API token": "accepted" });
const jwtAccess = refusals("missing access token", "malformed token", {
  "JWT access token": "accepted",
  "session access token": "unauthenticated WRONG_AUDIENCE: token issued for another audience",
  "ended session's access token": "unauthenticated WRONG_AUDIENCE: token issued for another audience",
  "JWT refresh token": "unauthenticated WRONG_TOKEN_TYPE: not an access token",
});
/** Any user credential (seed 003): the session cookie is taken on a GET (REST), not on a POST (gRPC, Connect). */
function anyUser(protocol: Protocol): Expected {
  return refusals("missing credential", userTokenRefused, {
    "session access token": "accepted",
    "user token": "accepted",
    "JWT access token": "accepted",
    "ended session's access token": "unauthenticated SESSION_ENDED: the session has ended",
    "logged-out user token": "unauthenticated TOKEN_REVOKED: user token is disabled",
    "JWT refresh token": "unauthenticated WRONG_TOKEN_TYPE: not an access token",
    ...(protocol === "rest" && {
      "admin token as cookie": "unauthenticated INVALID_TOKEN: invalid session cookie",
      "cookie session": "accepted",
    }),
  });
}

interface Row {
  rpc: string;
  expected: (protocol: Protocol) => Expected;
  call: (apis: Apis, headers: Record<string, string>) => Promise<Outcome<unknown>>;
}

const account = "acct-matrix";
const rows: Row[] = [
  { rpc: "ApiTokenService/CreateToken", expected: () => admin, call: (a, h) => a.apiToken.createToken({ account_id: account, description: "d" }, h) },
  { rpc: "ApiTokenService/UpdateToken", expected: () => admin, call: (a, h) => a.apiToken.updateToken({ token_link: "0".repeat(32), description: "d" }, h) },
  { rpc: "ApiTokenService/ListTokens", expected: () => admin, call: (a, h) => a.apiToken.listTokens(account, undefined, h) },
  { rpc: "ApiTokenService/RevokeToken", expected: () => admin, call: (a, h) => a.apiToken.revokeToken(account, { token_link: "0".repeat(32) }, h) },
  { rpc: "KeyService/RotateKey", expected: () => admin, call: (a, h) => a.key.rotateKey(h) },
  { rpc: "KeyService/RevokeKey", expected: () => admin, call: (a, h) => a.key.revokeKey("kid-matrix", h) },
  { rpc: "AuditService/ListAuditEvents", expected: () => admin, call: (a, h) => a.audit.listAuditEvents({}, h) },
  { rpc: "ApiTokenService/Authenticate", expected: () => apiToken, call: (a, h) => a.apiToken.authenticate(h) },
  { rpc: "UserTokenService/Bump", expected: () => userToken, call: (a, h) => a.userToken.bump(h) },
  {
    rpc: "UserTokenService/Logout",
    // It takes the session cookie too (on every protocol), so a cookie is no missing credential.
    expected: () => ({
      ...userToken,
      "admin token as cookie": "unauthenticated INVALID_TOKEN: invalid session cookie",
      "cookie session": "accepted",
    }),
    call: (a, h) => a.userToken.logout(h),
  },
  { rpc: "AuthenticationTokenService/CreateToken", expected: anyUser, call: (a, h) => a.authenticationToken.createToken(h) },
  { rpc: "AuthenticationTokenService/GetToken", expected: anyUser, call: (a, h) => a.authenticationToken.getToken("matrix", h) },
  { rpc: "JwtService/GetRefreshToken", expected: () => jwtAccess, call: (a, h) => a.jwt.getRefreshToken({}, h) },
  { rpc: "JwtService/DeleteRefreshToken", expected: () => jwtAccess, call: (a, h) => a.jwt.deleteRefreshToken({ refresh_token: "matrix" }, h) },
  { rpc: "JwtService/ChangePassword", expected: () => jwtAccess, call: (a, h) => a.jwt.changePassword({ pass: "a new password 0123" }, h) },
  { rpc: "JwtService/DeleteUser", expected: () => jwtAccess, call: (a, h) => a.jwt.deleteUser({}, h) },
];

/** Seed 004's methods that also take the access token as their `access_token` argument. */
const argumentRows: Array<{ rpc: string; call: (jwt: JwtApi, token: string) => Promise<Outcome<unknown>> }> = [
  { rpc: "JwtService/GetRefreshToken", call: (jwt, t) => jwt.getRefreshToken({ access_token: t }) },
  { rpc: "JwtService/DeleteRefreshToken", call: (jwt, t) => jwt.deleteRefreshToken({ refresh_token: "matrix", access_token: t }) },
  { rpc: "JwtService/ChangePassword", call: (jwt, t) => jwt.changePassword({ pass: "a new password 0123", access_token: t }) },
  { rpc: "JwtService/DeleteUser", call: (jwt, t) => jwt.deleteUser({ access_token: t }) },
];

/**
 * Seed 000's session methods, with the client id: a bearer token of another kind. RefreshSession
 * takes an expired access token too, nothing else.
 */
const sessionRows: Array<{ rpc: string; call: (session: SessionApi, access: string) => Promise<Outcome<unknown>> }> = [
  { rpc: "SessionService/GetSession", call: (s, access) => s.getSession({ clientId: clientIdHeader["x-koms-clientid"], access }) },
  { rpc: "SessionService/DeleteSession", call: (s, access) => s.deleteSession({ clientId: clientIdHeader["x-koms-clientid"], access }) },
  { rpc: "SessionService/RefreshSession", call: (s, access) => s.refreshSession({ refresh_token: "matrix" }, { clientId: clientIdHeader["x-koms-clientid"], access }) },
  { rpc: "UserService/GetUser", call: (s, access) => s.getUser({ clientId: clientIdHeader["x-koms-clientid"], access }) },
];
const notSessionToken = "unauthenticated WRONG_TOKEN_TYPE: not a session access token";
const sessionExpected: Partial<Record<TokenKind, string>> = {
  "admin token": "unauthenticated INVALID_TOKEN: malformed token",
  "session refresh token": "unauthenticated INVALID_TOKEN: malformed token",
  "ended session's access token": "unauthenticated SESSION_ENDED: the session has ended",
  "user token": "unauthenticated INVALID_TOKEN: malformed token",
  "logged-out user token": "unauthenticated INVALID_TOKEN: malformed token",
  "cookie session as Bearer": "unauthenticated INVALID_TOKEN: malformed token",
  "authentication token": "unauthenticated INVALID_TOKEN: malformed token",
  "JWT access token": notSessionToken,
  "JWT refresh token": notSessionToken,
  "API token": "unauthenticated INVALID_TOKEN: malformed token",
  "revoked API token": "unauthenticated INVALID_TOKEN: malformed token",
};

for (const store of storesUnderTest()) {
  describe(`access: each credential kind where another is required, on ${store}`, function () {
    this.timeout(60_000);
    let server: TestServer;
    let creds: Credentials;
    before(async () => {
      server = await startTestServer({ store });
      creds = await credentials(server);
    });
    after(() => server?.close());

    for (const protocol of protocols) {
      describe(`over ${protocol}`, () => {
        let apis: Apis;
        before(() => {
          apis = {
            apiToken: apiTokenApi(protocol, server.url),
            audit: auditApi(protocol, server.url),
            authenticationToken: authenticationTokenApi(protocol, server.url),
            jwt: jwtApi(protocol, server.url),
            key: keyApi(protocol, server.url),
            session: sessionApi(protocol, server.url),
            userToken: userTokenApi(protocol, server.url),
          };
        });
        after(() => Object.values(apis).forEach((a) => a.close()));

        for (const row of rows) {
          it(`${row.rpc} refuses every credential but its own, each with its documented answer`, async () => {
            const expected = row.expected(protocol);
            const got: Expected = {};
            for (const kind of kinds) {
              if (expected[kind] === "accepted") continue;
              got[kind] = answer(await row.call(apis, creds.headers[kind]));
            }
            const want = Object.fromEntries(Object.entries(expected).filter(([, v]) => v !== "accepted"));
            assert.deepEqual(got, want);
          });
        }

        for (const row of argumentRows) {
          it(`${row.rpc} refuses every token but a JWT access token in its access_token argument, as in the Authorization header`, async () => {
            const got: Partial<Record<TokenKind, string>> = {};
            const want: Partial<Record<TokenKind, string>> = {};
            for (const kind of tokenKinds) {
              if (jwtAccess[kind] === "accepted") continue;
              got[kind] = answer(await row.call(apis.jwt, creds.tokens[kind]));
              want[kind] = jwtAccess[kind];
            }
            assert.deepEqual(got, want);
          });
        }

        for (const row of sessionRows) {
          it(`${row.rpc} refuses every bearer token but a session access token, with the client id`, async () => {
            const got: Partial<Record<TokenKind, string>> = {};
            for (const kind of tokenKinds) if (kind !== "session access token") got[kind] = answer(await row.call(apis.session, creds.tokens[kind]));
            assert.deepEqual(got, sessionExpected);
          });
        }
      });
    }
  });
}
