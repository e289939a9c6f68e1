// WWW-Authenticate on 401 answers, over REST (fetch) and gRPC (@grpc/grpc-js metadata): RFC 6750
// for bearer methods (`Bearer error="invalid_token"` when a token was presented and refused,
// plain `Bearer` when none was, `Bearer error="invalid_request"` for a malformed one), RFC 7617
// for Basic, and no header where no credential scheme is in play (a password in a JSON body or
// a query). 401s raised by handlers get the same treatment as the interceptor's own.
import assert from "node:assert/strict";
import type { DescService } from "@bufbuild/protobuf";
import { ApiTokenService } from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { AuthenticationTokenService } from "../../gen/tessera/authtoken/v1/authentication_token_pb.js";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { basic, bearer, GrpcJsClient, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, testAdminToken, testClientId, type TestServer } from "../support/server.js";
import { password } from "../support/users.js";

const clientId = { "x-koms-clientid": testClientId };
const bearerChallenge = "Bearer";
const invalidToken = 'Bearer error="invalid_token"';
const invalidRequest = 'Bearer error="invalid_request"';
const basicChallenge = 'Basic realm="tessera", charset="UTF-8"';

interface Creds {
  email: string;
  /** The token of a session that has ended. */
  endedSession: string;
  /** The current token of a live session. */
  liveSession: string;
  jwtUser: string;
  jwtAccess: string;
}

interface Row {
  name: string;
  rest: { method: string; path: (c: Creds) => string; headers?: (c: Creds) => Record<string, string>; json?: (c: Creds) => unknown };
  grpc: { service: DescService; rpc: string; input?: (c: Creds) => Record<string, unknown>; headers?: (c: Creds) => Record<string, string> };
  /** The one right WWW-Authenticate value, or null for none. */
  expect: string | null;
}

const rows: Row[] = [
  {
    name: "session method, no bearer token",
    rest: { method: "GET", path: () => "/session", headers: () => clientId },
    grpc: { service: SessionService, rpc: "GetSession", headers: () => clientId },
    expect: bearerChallenge,
  },
  {
    name: "session method, a bearer token that does not verify",
    rest: { method: "GET", path: () => "/session", headers: () => ({ ...clientId, ...bearer("a.b.c") }) },
    grpc: { service: SessionService, rpc: "GetSession", headers: () => ({ ...clientId, ...bearer("a.b.c") }) },
    expect: invalidToken,
  },
  {
    name: "session method, a token of a session that has ended",
    rest: { method: "GET", path: () => "/session", headers: (c) => ({ ...clientId, ...bearer(c.endedSession) }) },
    grpc: { service: SessionService, rpc: "GetSession", headers: (c) => ({ ...clientId, ...bearer(c.endedSession) }) },
    expect: invalidToken,
  },
  {
    name: "session method, a malformed bearer header",
    rest: { method: "GET", path: () => "/session", headers: () => ({ ...clientId, authorization: "Bearer two tokens" }) },
    grpc: { service: SessionService, rpc: "GetSession", headers: () => ({ ...clientId, authorization: "Bearer two tokens" }) },
    expect: invalidRequest,
  },
  {
    // Refused for the client id, checked first; the header is still a malformed bearer credential.
    name: "session method, a malformed bearer header and no client id",
    rest: { method: "GET", path: () => "/session", headers: () => ({ authorization: "Bearer two tokens" }) },
    grpc: { service: SessionService, rpc: "GetSession", headers: () => ({ authorization: "Bearer two tokens" }) },
    expect: invalidRequest,
  },
  {
    name: "session method, a malformed bearer header and an unknown client id",
    rest: { method: "GET", path: () => "/session", headers: () => ({ "x-koms-clientid": "no-such-client", authorization: "Bearer two tokens" }) },
    grpc: { service: SessionService, rpc: "GetSession", headers: () => ({ "x-koms-clientid": "no-such-client", authorization: "Bearer two tokens" }) },
    expect: invalidRequest,
  },
  {
    name: "session method, Basic credentials (a scheme it does not take)",
    rest: { method: "GET", path: () => "/session", headers: (c) => ({ ...clientId, ...basic(c.email, password) }) },
    grpc: { service: SessionService, rpc: "GetSession", headers: (c) => ({ ...clientId, ...basic(c.email, password) }) },
    expect: bearerChallenge,
  },
  {
    name: "session refresh: the access token verifies, the refresh token in the body is unknown (raised by the handler)",
    rest: {
      method: "PUT",
      path: () => "/session",
      headers: (c) => ({ ...clientId, ...bearer(c.liveSession) }),
      json: () => ({ refresh_token: "not-a-refresh-token" }),
    },
    grpc: {
      service: SessionService,
      rpc: "RefreshSession",
      headers: (c) => ({ ...clientId, ...bearer(c.liveSession) }),
      input: () => ({ refreshToken: "not-a-refresh-token" }),
    },
    expect: invalidToken,
  },
  {
    name: "session login with a wrong password in the JSON body",
    rest: { method: "POST", path: () => "/session", headers: () => clientId, json: (c) => ({ account_type: "traditional", email: c.email, password: "wrong-password-1" }) },
    grpc: {
      service: SessionService,
      rpc: "CreateSession",
      headers: () => clientId,
      input: (c) => ({ accountType: "traditional", email: c.email, password: "wrong-password-1" }),
    },
    expect: null,
  },
  {
    name: "session login without the client id header",
    rest: { method: "POST", path: () => "/session", json: (c) => ({ account_type: "traditional", email: c.email, password }) },
    grpc: { service: SessionService, rpc: "CreateSession", input: (c) => ({ accountType: "traditional", email: c.email, password }) },
    expect: null,
  },
  {
    name: "JWT login with a wrong password in the query",
    rest: { method: "GET", path: (c) => `/jwt/token?user=${encodeURIComponent(c.jwtUser)}&pass=wrong-password-1` },
    grpc: { service: JwtService, rpc: "GetToken", input: (c) => ({ user: c.jwtUser, pass: "wrong-password-1" }) },
    expect: null,
  },
  {
    name: "JWT method, no access token",
    rest: { method: "GET", path: () => "/jwt/refresh_token" },
    grpc: { service: JwtService, rpc: "GetRefreshToken" },
    expect: bearerChallenge,
  },
  {
    name: "JWT method, an access token that does not verify, in the Authorization header",
    rest: { method: "GET", path: () => "/jwt/refresh_token", headers: () => bearer("a.b.c") },
    grpc: { service: JwtService, rpc: "GetRefreshToken", headers: () => bearer("a.b.c") },
    expect: invalidToken,
  },
  {
    name: "JWT method, an access token that does not verify, in the access_token field",
    rest: { method: "GET", path: () => "/jwt/refresh_token?access_token=a.b.c" },
    grpc: { service: JwtService, rpc: "GetRefreshToken", input: () => ({ accessToken: "a.b.c" }) },
    expect: invalidToken,
  },
  {
    name: "Basic method, no credentials",
    rest: { method: "POST", path: () => "/auth/login" },
    grpc: { service: UserTokenService, rpc: "Login" },
    expect: basicChallenge,
  },
  {
    name: "Basic method, a wrong password (raised by the handler)",
    rest: { method: "POST", path: () => "/auth/login", headers: (c) => basic(c.email, "wrong-password-1") },
    grpc: { service: UserTokenService, rpc: "Login", headers: (c) => basic(c.email, "wrong-password-1") },
    expect: basicChallenge,
  },
  {
    name: "Basic method, a bearer token instead",
    rest: { method: "POST", path: () => "/auth/login", headers: (c) => bearer(c.jwtAccess) },
    grpc: { service: UserTokenService, rpc: "Login", headers: (c) => bearer(c.jwtAccess) },
    expect: basicChallenge,
  },
  {
    name: "user token method, an unknown user token",
    rest: { method: "POST", path: () => "/auth/bump", headers: () => bearer("b94cf5c7-cddc-4610-9d4c-6b8e04088ae8") },
    grpc: { service: UserTokenService, rpc: "Bump", headers: () => bearer("b94cf5c7-cddc-4610-9d4c-6b8e04088ae8") },
    expect: invalidToken,
  },
  {
    name: "API token method, no token",
    rest: { method: "GET", path: () => "/v1/api/auth" },
    grpc: { service: ApiTokenService, rpc: "Authenticate" },
    expect: bearerChallenge,
  },
  {
    name: "API token method, an unknown token",
    rest: { method: "GET", path: () => "/v1/api/auth", headers: () => bearer("tsr_short") },
    grpc: { service: ApiTokenService, rpc: "Authenticate", headers: () => bearer("tsr_short") },
    expect: invalidToken,
  },
  {
    name: "admin method, a wrong admin token",
    rest: { method: "GET", path: () => "/v1/frontend/auth/acct-1", headers: () => bearer(`${testAdminToken}x`) },
    grpc: { service: ApiTokenService, rpc: "ListTokens", input: () => ({ accountId: "acct-1" }), headers: () => bearer(`${testAdminToken}x`) },
    expect: invalidToken,
  },
  {
    name: "any-user method, only a session cookie that does not verify",
    rest: { method: "GET", path: () => "/api/authenticationtoken", headers: () => ({ cookie: `tessera_session=${"x".repeat(43)}` }) },
    grpc: { service: AuthenticationTokenService, rpc: "CreateToken", headers: () => ({ cookie: `tessera_session=${"x".repeat(43)}` }) },
    expect: bearerChallenge,
  },
];

for (const store of storesUnderTest()) {
  describe(`access: WWW-Authenticate (${store})`, function () {
    this.timeout(30_000);
    let server: TestServer;
    let creds: Creds;
    const clients = new Map<DescService, GrpcJsClient<DescService>>();

    before(async () => {
      server = await startTestServer({ store, env: { TESSERA_LOGIN_PROTECTION: "false" } });
      const email = `challenge-${store}-${Date.now()}@example.com`;
      assert.equal((await rest(server.url, "POST", "/user", { headers: clientId, json: { email, password } })).status, 201);
      const ended = await rest(server.url, "POST", "/session", { headers: clientId, json: { account_type: "traditional", email, password } });
      assert.equal(ended.status, 200, ended.text);
      assert.equal((await rest(server.url, "DELETE", "/session", { headers: { ...clientId, ...bearer(ended.body.access_token) } })).status, 200);
      const live = await rest(server.url, "POST", "/session", { headers: clientId, json: { account_type: "traditional", email, password } });
      assert.equal(live.status, 200, live.text);
      const jwtUser = `challenge-${store}-${Date.now()}`;
      assert.equal((await rest(server.url, "POST", "/jwt/user", { json: { user: jwtUser, pass: password } })).status, 201);
      const jwtAccess = (await rest(server.url, "GET", `/jwt/token?user=${jwtUser}&pass=${password}`)).text;
      creds = { email, endedSession: ended.body.access_token, liveSession: live.body.access_token, jwtUser, jwtAccess };
    });
    after(async () => {
      for (const c of clients.values()) c.close();
      await server?.close();
    });

    for (const row of rows) {
      it(`REST: ${row.name}: ${row.expect ?? "no header"}`, async () => {
        const res = await rest(server.url, row.rest.method, row.rest.path(creds), {
          headers: row.rest.headers?.(creds) ?? {},
          ...(row.rest.json && { json: row.rest.json(creds) }),
        });
        assert.equal(res.status, 401, res.text);
        assert.equal(res.headers.get("www-authenticate"), row.expect);
      });

      it(`gRPC: ${row.name}: ${row.expect ?? "no header"}`, async () => {
        let client = clients.get(row.grpc.service);
        if (!client) clients.set(row.grpc.service, (client = new GrpcJsClient(row.grpc.service, server.url)));
        const { error } = await client.call(row.grpc.rpc, row.grpc.input?.(creds) ?? {}, row.grpc.headers?.(creds) ?? {});
        assert.equal(error?.code, 16, `expected UNAUTHENTICATED, got ${error?.code} ${error?.details}`);
        assert.deepEqual(error.metadata.get("www-authenticate"), row.expect === null ? [] : [row.expect]);
      });
    }
  });
}
