/**
 * Tokens, one table: for every credential kind, the right credential works (control rows, so the
 * table can fail), and a truncated, padded, wrong-prefix or flipped-checksum one, and every other
 * service's token (API token, user token, session access and refresh tokens, seed 003
 * authentication token, seed 004 access and refresh JWTs, the admin token, a session cookie on
 * POST, an unsigned JWT) is refused: 401 over REST, UNAUTHENTICATED over gRPC, on both stores.
 */
import { strict as assert } from "node:assert";
import * as grpc from "@grpc/grpc-js";
import { create, toJson, type DescService } from "@bufbuild/protobuf";
import { ApiTokenService } from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { AuthenticationTokenService } from "../../gen/tessera/authtoken/v1/authentication_token_pb.js";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { GrpcJsClient, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, testAdminToken, testClientId, type TestServer } from "../support/server.js";
import { sessionCookie } from "../support/users.js";
import { makeCredentials, type Credentials } from "./support.js";

type Kind = "session" | "api" | "userToken" | "user" | "jwt" | "jwtPassword" | "admin";

interface Endpoint {
  method: string;
  path: string;
  /** Extra headers every call to it needs (the client id of seed 000). */
  headers?: Record<string, string>;
  service: DescService;
  rpc: string;
  input?: Record<string, unknown>;
  /** What the right credential gets (default 200). */
  okStatus?: number;
}

const endpoints: Record<Kind, Endpoint> = {
  session: { method: "GET", path: "/session", headers: { "x-koms-clientid": testClientId }, service: SessionService, rpc: "GetSession" },
  api: { method: "GET", path: "/v1/api/auth", service: ApiTokenService, rpc: "Authenticate" },
  userToken: { method: "POST", path: "/auth/bump", service: UserTokenService, rpc: "Bump" },
  user: { method: "GET", path: "/api/authenticationtoken", service: AuthenticationTokenService, rpc: "CreateToken" },
  // GetUser takes the JWT optionally (204 without one, documented): DeleteRefreshToken requires
  // it; with a valid JWT and a refresh token that is not the user's it is 400 (documented).
  jwt: { method: "DELETE", path: "/jwt/refresh_token", service: JwtService, rpc: "DeleteRefreshToken", input: { refreshToken: "not-a-refresh-token" }, okStatus: 400 },
  jwtPassword: { method: "GET", path: "/jwt/refresh_token", service: JwtService, rpc: "GetRefreshToken" },
  admin: { method: "GET", path: "/v1/frontend/auth/acct-1", service: ApiTokenService, rpc: "ListTokens", input: { accountId: "acct-1" } },
};

/** The credential each kind takes, from a fresh set. */
function rightToken(kind: Kind, c: Credentials): string {
  switch (kind) {
    case "session":
      return c.sessionAccess;
    case "api":
      return c.apiToken;
    case "userToken":
      return c.userToken;
    case "user":
      return c.userToken;
    case "jwt":
    case "jwtPassword":
      return c.jwtAccess;
    case "admin":
      return testAdminToken;
  }
}

const truncate = (t: string) => t.slice(0, -4);
const pad = (t: string) => `${t}AAAA`;
const wrongPrefix = (t: string) => `xyz_${t.slice(4)}`;
const flipLast = (t: string) => t.slice(0, -1) + (t.endsWith("A") ? "B" : "A");
const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** The same JWT with its signature's unused low bits set: other text, same signature bytes. */
const nonCanonicalSignature = (t: string) => {
  const [h, p, sig] = t.split(".") as [string, string, string];
  const unused = sig.length * 6 - Buffer.from(sig, "base64url").length * 8;
  assert.ok(unused > 0, "signature length leaves no unused bits");
  const last = b64.indexOf(sig.at(-1)!);
  const variant = sig.slice(0, -1) + b64[last ^ 1]!;
  assert.deepEqual(Buffer.from(variant, "base64url"), Buffer.from(sig, "base64url"));
  return `${h}.${p}.${variant}`;
};
const unsignedJwt = (t: string) => {
  const parts = t.split(".");
  if (parts.length !== 3) return `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"sub":"x"}').toString("base64url")}.`;
  return `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${parts[1]}.`;
};

interface Row {
  kind: Kind;
  name: string;
  /** The Authorization header value, or undefined for none. */
  authorization: (c: Credentials) => string | undefined;
  cookie?: (c: Credentials & { cookie: string }) => string;
  headers?: Record<string, string>;
  /** "ok": what the right credential gets (REST okStatus, gRPC its code); 401: UNAUTHENTICATED. */
  expect: "ok" | 401;
  /** gRPC answer when it differs (the cookie is for safe HTTP methods; gRPC is POST). */
  grpcExpect?: "ok" | 401;
}

/** An Authorization value: `Bearer` and the token `f` picks from a credential set. */
const bearerOf = (f: (c: Credentials) => string) => (c: Credentials) => `Bearer ${f(c)}`;

function rows(): Row[] {
  const out: Row[] = [];
  const others: Array<[string, (c: Credentials) => string]> = [
    ["API token", (c) => c.apiToken],
    ["user token", (c) => c.userToken],
    ["session access token", (c) => c.sessionAccess],
    ["session refresh token", (c) => c.sessionRefresh],
    ["seed 003 authentication token", (c) => c.authToken],
    ["seed 004 access JWT", (c) => c.jwtAccess],
    ["seed 004 refresh JWT", (c) => c.jwtRefresh],
    ["admin token", () => testAdminToken],
  ];
  // Which foreign credentials a kind legitimately accepts (documented): USER takes a session
  // access token (with the client id), a user token or a seed 004 access JWT.
  const accepted: Partial<Record<Kind, string[]>> = { user: ["user token", "session access token", "seed 004 access JWT"] };
  for (const kind of Object.keys(endpoints) as Kind[]) {
    out.push({ kind, name: "the right credential (control)", authorization: (c) => `Bearer ${rightToken(kind, c)}`, expect: "ok" });
    out.push({ kind, name: "no credential", authorization: () => undefined, expect: 401 });
    out.push({ kind, name: "empty bearer", authorization: () => "Bearer ", expect: 401 });
    out.push({ kind, name: "Basic instead of Bearer", authorization: (c) => c.basic, expect: 401 });
    out.push({ kind, name: "truncated", authorization: bearerOf((c) => truncate(rightToken(kind, c))), expect: 401 });
    out.push({ kind, name: "padded", authorization: bearerOf((c) => pad(rightToken(kind, c))), expect: 401 });
    out.push({ kind, name: "wrong prefix", authorization: bearerOf((c) => wrongPrefix(rightToken(kind, c))), expect: 401 });
    out.push({ kind, name: "flipped last character (checksum/signature)", authorization: bearerOf((c) => flipLast(rightToken(kind, c))), expect: 401 });
    if (kind === "session" || kind === "jwt" || kind === "jwtPassword") {
      out.push({ kind, name: "same signature bytes, non-canonical base64url", authorization: bearerOf((c) => nonCanonicalSignature(rightToken(kind, c))), expect: 401 });
    }
    out.push({ kind, name: "unsigned JWT (alg none)", authorization: bearerOf((c) => unsignedJwt(rightToken(kind, c))), expect: 401 });
    for (const [name, token] of others) {
      if (kind === "admin" && name === "admin token") continue;
      if (name === "user token" && (kind === "userToken" || kind === "user")) continue;
      if (name === "API token" && kind === "api") continue;
      if (name === "session access token" && kind === "session") continue;
      if (name === "seed 004 access JWT" && (kind === "jwt" || kind === "jwtPassword")) continue;
      const ok = accepted[kind]?.includes(name) ?? false;
      // A session access token goes with its client id, wherever it is tried.
      const headers = name === "session access token" ? { "x-koms-clientid": testClientId } : undefined;
      out.push({ kind, name: `${name} as a ${kind} credential`, authorization: bearerOf(token), headers, expect: ok ? "ok" : 401 });
    }
  }
  // The session cookie of seed 003: accepted on safe methods of USER methods, never on POST.
  out.push({ kind: "user", name: "session cookie on GET (control)", authorization: () => undefined, cookie: (c) => `tessera_session=${c.cookie}`, expect: "ok", grpcExpect: 401 });
  out.push({ kind: "userToken", name: "session cookie on POST /auth/bump", authorization: () => undefined, cookie: (c) => `tessera_session=${c.cookie}`, expect: 401 });
  out.push({ kind: "session", name: "session cookie as a session credential", authorization: () => undefined, cookie: (c) => `tessera_session=${c.cookie}`, expect: 401 });
  out.push({ kind: "jwt", name: "session cookie as a JWT", authorization: () => undefined, cookie: (c) => `tessera_session=${c.cookie}`, expect: 401 });
  return out;
}

/** The RPC input as REST's JSON body (the proto's JSON names). */
function restBody(ep: Endpoint): unknown {
  const method = ep.service.methods.find((m) => m.name === ep.rpc)!;
  return toJson(method.input, create(method.input, ep.input as never));
}

for (const store of storesUnderTest()) {
  describe(`token cross-use table (${store})`, function () {
    this.timeout(60_000);
    let server: TestServer;
    let creds: Credentials & { cookie: string };

    before(async () => {
      server = await startTestServer({ store, env: { TESSERA_LOGIN_PROTECTION: "false" } });
      const c = await makeCredentials(server, `tokens-${store}`);
      // A second authentication token, exchanged for the session cookie.
      creds = { ...c, cookie: await sessionCookie(server, c.userToken) };
    });
    after(async () => {
      await server?.close();
    });

    it("REST and gRPC answer every row as documented", async () => {
      const failures: string[] = [];
      const clients = new Map<DescService, GrpcJsClient<DescService>>();
      try {
        for (const row of rows()) {
          const ep = endpoints[row.kind];
          const headers: Record<string, string> = { ...ep.headers, ...row.headers };
          const auth = row.authorization(creds);
          if (auth !== undefined) headers.authorization = auth;
          if (row.cookie) headers.cookie = row.cookie(creds);
          const r = await rest(server.url, ep.method, ep.path, { headers, ...(ep.input && ep.method !== "GET" && { json: restBody(ep) }) });
          const okStatus = ep.okStatus ?? 200;
          const restOk = row.expect === "ok" ? r.status === okStatus : r.status === 401;
          const www = r.status === 401 ? r.headers.get("www-authenticate") : "n/a";
          let client = clients.get(ep.service);
          if (!client) clients.set(ep.service, (client = new GrpcJsClient(ep.service, server.url)));
          const g = await client.call(ep.rpc, ep.input ?? {}, headers);
          const code = g.error ? g.error.code : grpc.status.OK;
          const okCode = okStatus === 400 ? grpc.status.INVALID_ARGUMENT : grpc.status.OK;
          const grpcOk = (row.grpcExpect ?? row.expect) === "ok" ? code === okCode : code === grpc.status.UNAUTHENTICATED;
          if (!restOk || !grpcOk || !www) failures.push(`${row.kind}: ${row.name}: REST ${r.status} (www-authenticate ${www}) ${r.text.slice(0, 120)}; gRPC ${grpc.status[code]} ${g.error?.details ?? ""}`);
        }
      } finally {
        for (const c of clients.values()) c.close();
      }
      assert.deepEqual(failures, []);
    });
  });
}
