// Every error carries machine-readable details, read the way each client reads them:
// @grpc/grpc-js from the `grpc-status-details-bin` trailer (a google.rpc.Status, decoded with the
// generated schema), connect-node (Connect, gRPC, gRPC-Web) with ConnectError.findDetails, REST
// from the JSON body's `details`. google.rpc.ErrorInfo (reason, domain "tessera") on every
// error; google.rpc.RetryInfo when a wait helps (same seconds as Retry-After); google.rpc.BadRequest
// naming each field an INVALID_ARGUMENT is about. The seeds' bodies and messages are unchanged.
import assert from "node:assert/strict";
import type { DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { ApiTokenService } from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { SessionService, UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { ManualClock } from "../../src/core/clock.js";
import { GrpcJsClient, rest } from "../support/clients.js";
import { connectDetails, grpcStatusDetails, jsonDetails, type DetailFacts } from "../support/error-details.js";
import { startTestServer, storesUnderTest, testAdminToken, testClientId, type TestServer } from "../support/server.js";

type Protocol = "grpc-js" | "connect" | "connect-grpc" | "grpc-web" | "rest";
const protocols: Protocol[] = ["grpc-js", "connect", "connect-grpc", "grpc-web", "rest"];

/** One failed call as any client sees it: the code (snake_case), the message, the details, Retry-After. */
interface Failure {
  code: string;
  message: string;
  details: DetailFacts;
  retryAfter: string | null;
}

const snake = (code: Code) => Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
const grpcCodeName = (n: number) => snake(n as Code);

/** An RPC call that must fail, over one of the RPC protocols. */
async function rpcFailure(protocol: Exclude<Protocol, "rest">, url: string, service: DescService, method: string, input: Record<string, unknown>, headers: Record<string, string>): Promise<Failure> {
  if (protocol === "grpc-js") {
    const client = new GrpcJsClient(service, url);
    try {
      const { error } = await client.call(method, input, headers);
      assert.ok(error, `${method} must fail`);
      const bin = error.metadata.get("grpc-status-details-bin");
      assert.equal(bin.length, 1, "one grpc-status-details-bin trailer");
      const status = grpcStatusDetails(bin[0] as Buffer);
      // The Status repeats the trailer's code and message.
      assert.equal(status.code, error.code);
      assert.equal(status.message, error.details);
      const { code: _c, message: _m, ...details } = status;
      const retry = error.metadata.get("retry-after");
      return { code: grpcCodeName(error.code), message: error.details, details, retryAfter: retry.length > 0 ? String(retry[0]) : null };
    } finally {
      client.close();
    }
  }
  const transport: Transport =
    protocol === "connect"
      ? createConnectTransport({ baseUrl: url, httpVersion: "1.1" })
      : protocol === "connect-grpc"
        ? createGrpcTransport({ baseUrl: url })
        : createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" });
  const client = createClient(service, transport) as unknown as Record<string, (i: unknown, o: unknown) => Promise<unknown>>;
  const m = service.methods.find((x) => x.name === method)!;
  try {
    await client[m.localName]!(input, { headers });
  } catch (e) {
    assert.ok(e instanceof ConnectError, String(e));
    return { code: snake(e.code), message: e.rawMessage, details: connectDetails(e), retryAfter: e.metadata.get("retry-after") };
  }
  throw new Error(`${method} must fail`);
}

async function restFailure(url: string, method: string, path: string, opts: { json?: unknown; headers?: Record<string, string> }): Promise<Failure & { status: number }> {
  const res = await rest(url, method, path, opts);
  assert.deepEqual(Object.keys(res.body), ["code", "message", "details"], res.text);
  return { status: res.status, code: res.body.code, message: res.body.message, details: jsonDetails(res.body.details), retryAfter: res.headers.get("retry-after") };
}

interface Call {
  rpc: { service: DescService; method: string; input: Record<string, unknown>; headers: Record<string, string> };
  rest: { method: string; path: string; json?: unknown; headers?: Record<string, string> };
}

async function failure(protocol: Protocol, url: string, call: Call): Promise<Failure> {
  if (protocol === "rest") {
    const { status: _s, ...f } = await restFailure(url, call.rest.method, call.rest.path, call.rest);
    return f;
  }
  return rpcFailure(protocol, url, call.rpc.service, call.rpc.method, call.rpc.input, call.rpc.headers);
}

const info = (reason: string): DetailFacts => ({ reason, domain: "tessera", metadata: {} });
const clientHeader = { "x-koms-clientid": testClientId };
const admin = { authorization: `Bearer ${testAdminToken}` };
const password = "violet-kettle-harbour-29";
let seq = 0;
const email = () => `details${Date.now().toString(36)}${(seq++).toString(36)}@example.com`;

for (const store of storesUnderTest()) {
  describe(`server: error details on every protocol (${store})`, function () {
    this.timeout(30000);
    let server: TestServer;
    const clock = new ManualClock(Date.parse("2031-03-01T10:00:00Z"));

    before(async () => {
      server = await startTestServer({ store, clock, env: { TESSERA_ACCESS_TOKEN_TTL_SECONDS: "60", TESSERA_LOGIN_MAX_FAILURES: "2" } });
    });
    after(async () => server.close());
    // Each test in a fresh login-throttle window (TESSERA_LOGIN_WINDOW_SECONDS: 900), so that the
    // failures of one (all from 127.0.0.1) never lock the address for the next.
    beforeEach(() => clock.set(clock.now().getTime() + 901_000));

    const signUp = async (login: string) => {
      const res = await rest(server.url, "POST", "/user", { headers: clientHeader, json: { email: login, password } });
      assert.equal(res.status, 201, res.text);
    };
    const logIn = async (login: string) => {
      const res = await rest(server.url, "POST", "/session", { headers: clientHeader, json: { account_type: "traditional", email: login, password } });
      assert.equal(res.status, 200, res.text);
      return res.body as { access_token: string; refresh_token: string };
    };

    for (const protocol of protocols) {
      describe(protocol, () => {
        it("an unknown x-koms-clientid: UNAUTHENTICATED, ErrorInfo UNKNOWN_CLIENT_ID, nothing else", async () => {
          const f = await failure(protocol, server.url, {
            rpc: { service: SessionService, method: "GetSession", input: {}, headers: { "x-koms-clientid": "nobody" } },
            rest: { method: "GET", path: "/session", headers: { "x-koms-clientid": "nobody" } },
          });
          assert.deepEqual(f, { code: "unauthenticated", message: "unknown x-koms-clientid", details: info("UNKNOWN_CLIENT_ID"), retryAfter: null });
        });

        it("seed 001's Missing fields: INVALID_ARGUMENT, MISSING_FIELDS and a BadRequest naming each field", async () => {
          const f = await failure(protocol, server.url, {
            rpc: { service: ApiTokenService, method: "CreateToken", input: {}, headers: admin },
            rest: { method: "POST", path: "/v1/frontend/auth", json: {}, headers: admin },
          });
          assert.deepEqual(f, {
            code: "invalid_argument",
            message: "Missing fields: [account_id, description]",
            details: {
              ...info("MISSING_FIELDS"),
              fieldViolations: [
                { field: "account_id", description: "account_id is required" },
                { field: "description", description: "description is required" },
              ],
            },
            retryAfter: null,
          });
        });

        it("an unknown login and a wrong password: the same INVALID_CREDENTIALS", async () => {
          const known = email();
          await signUp(known);
          const attempt = (login: string) =>
            failure(protocol, server.url, {
              rpc: { service: SessionService, method: "CreateSession", input: { accountType: "traditional", email: login, password: "not-the-password-1" }, headers: clientHeader },
              rest: { method: "POST", path: "/session", json: { account_type: "traditional", email: login, password: "not-the-password-1" }, headers: clientHeader },
            });
          const wrong = await attempt(known);
          const unknown = await attempt(email());
          assert.deepEqual(wrong, { code: "unauthenticated", message: "invalid login or password", details: info("INVALID_CREDENTIALS"), retryAfter: null });
          assert.deepEqual(unknown, wrong);
        });

        it("a locked login: RESOURCE_EXHAUSTED, LOGIN_LOCKED and a RetryInfo of the Retry-After seconds", async () => {
          const login = email();
          await signUp(login);
          for (let i = 0; i < 2; i++) {
            await rest(server.url, "POST", "/session", { headers: clientHeader, json: { account_type: "traditional", email: login, password: "not-the-password-2" } });
          }
          const f = await failure(protocol, server.url, {
            rpc: { service: SessionService, method: "CreateSession", input: { accountType: "traditional", email: login, password }, headers: clientHeader },
            rest: { method: "POST", path: "/session", json: { account_type: "traditional", email: login, password }, headers: clientHeader },
          });
          // The clock stands still: the first lockout's full 60 seconds.
          assert.deepEqual(f, {
            code: "resource_exhausted",
            message: "too many failed logins; try again later",
            details: { ...info("LOGIN_LOCKED"), retryDelaySeconds: 60 },
            retryAfter: "60",
          });
        });

        it("a session access token that is not the most recent: NOT_MOST_RECENT_TOKEN", async () => {
          const login = email();
          await signUp(login);
          const first = await logIn(login);
          const refreshed = await rest(server.url, "PUT", "/session", {
            headers: { ...clientHeader, authorization: `Bearer ${first.access_token}` },
            json: { refresh_token: first.refresh_token },
          });
          assert.equal(refreshed.status, 200, refreshed.text);
          const headers = { ...clientHeader, authorization: `Bearer ${first.access_token}` };
          const f = await failure(protocol, server.url, {
            rpc: { service: UserService, method: "GetUser", input: {}, headers },
            rest: { method: "GET", path: "/user", headers },
          });
          assert.equal(f.code, "unauthenticated");
          assert.deepEqual(f.details, info("NOT_MOST_RECENT_TOKEN"));
        });

        it("GET /jwt/check with an expired token: INVALID_ARGUMENT, TOKEN_EXPIRED and a BadRequest naming access_token", async () => {
          const user = `checker${(seq++).toString(36)}`;
          assert.equal((await rest(server.url, "POST", "/jwt/user", { json: { user, pass: password } })).status, 201);
          const token = (await rest(server.url, "GET", `/jwt/token?user=${user}&pass=${password}`)).text;
          const start = clock.now().getTime();
          clock.set(start + 61_000);
          try {
            const f = await failure(protocol, server.url, {
              rpc: { service: JwtService, method: "Check", input: { accessToken: token }, headers: {} },
              rest: { method: "GET", path: `/jwt/check?access_token=${token}`, headers: {} },
            });
            assert.equal(f.code, "invalid_argument");
            assert.deepEqual(f.details, { ...info("TOKEN_EXPIRED"), fieldViolations: [{ field: "access_token", description: f.message }] });
          } finally {
            clock.set(start);
          }
        });

        it("a request over TESSERA_BODY_LIMIT_BYTES: RESOURCE_EXHAUSTED, REQUEST_TOO_LARGE, no RetryInfo (the same request fails again)", async () => {
          const big = "x".repeat(70 * 1024);
          const f = await failure(protocol, server.url, {
            rpc: { service: UserService, method: "CreateUser", input: { email: big, password }, headers: clientHeader },
            rest: { method: "POST", path: "/user", json: { email: big, password }, headers: clientHeader },
          });
          assert.equal(f.code, "resource_exhausted");
          assert.deepEqual(f.details, info("REQUEST_TOO_LARGE"));
          assert.equal(f.retryAfter, null);
        });
      });
    }

    describe("REST only: the transcoder's own errors carry Tessera's domain", () => {
      it("no route: 404 ROUTE_NOT_FOUND", async () => {
        const f = await restFailure(server.url, "GET", "/nope", {});
        assert.deepEqual(f, { status: 404, code: "not_found", message: "no route for GET /nope", details: info("ROUTE_NOT_FOUND"), retryAfter: null });
      });

      it("an unknown query parameter: 400 UNKNOWN_QUERY_PARAMETER naming it", async () => {
        const f = await restFailure(server.url, "GET", "/v1/frontend/auth/acct-1?role=x", { headers: admin });
        assert.deepEqual(f, {
          status: 400,
          code: "invalid_argument",
          message: 'unknown query parameter "role"',
          details: { ...info("UNKNOWN_QUERY_PARAMETER"), fieldViolations: [{ field: "role", description: 'unknown query parameter "role"' }] },
          retryAfter: null,
        });
      });

      it("a probe, metrics or docs path with a trailing slash (only REST routes ignore one): 404 quoting the path as sent", async () => {
        for (const path of ["/healthz/", "/readyz/", "/metrics/", "/docs/", "/openapi.json/"]) {
          const f = await restFailure(server.url, "GET", path, {});
          assert.deepEqual(f, { status: 404, code: "not_found", message: `no route for GET ${path}`, details: info("ROUTE_NOT_FOUND"), retryAfter: null });
        }
      });

      it("POST on /healthz: 405 METHOD_NOT_ALLOWED", async () => {
        const f = await restFailure(server.url, "POST", "/healthz", {});
        assert.deepEqual(f, { status: 405, code: "unimplemented", message: "POST is not allowed on /healthz", details: info("METHOD_NOT_ALLOWED"), retryAfter: null });
      });

      it("POST on /metrics: 405 METHOD_NOT_ALLOWED, as on the probes", async () => {
        const f = await restFailure(server.url, "POST", "/metrics", {});
        assert.deepEqual(f, { status: 405, code: "unimplemented", message: "POST is not allowed on /metrics", details: info("METHOD_NOT_ALLOWED"), retryAfter: null });
      });
    });
  });
}
