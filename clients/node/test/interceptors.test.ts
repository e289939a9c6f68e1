// The server interceptors protecting a small internal service (clienttest.v1.WhoAmIService):
// served by connect-node behind createAuthInterceptor, and by @grpc/grpc-js behind
// createGrpcJsAuthInterceptor, each verifying Tessera's tokens offline. Called with and without
// a token over every protocol the server speaks: the handler sees the principal, or is never
// reached and the caller gets UNAUTHENTICATED (UNAVAILABLE when the keys cannot be fetched).
import assert from "node:assert/strict";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { decodeJwt } from "jose";
import { WhoAmIResponseSchema, WhoAmIService } from "../../../gen/clienttest/v1/who_am_i_pb.js";
import { withPayload } from "../../../test/jwt/forge.js";
import { freePort } from "../../../test/support/net.js";
import {
  basic,
  bearer,
  createAuthInterceptor,
  createTesseraClient,
  createTokenVerifier,
  principalKey,
  requirePrincipal,
  TokenVerificationError,
  type AuthOptions,
  type Protocol,
  type TokenVerifier,
  type VerifiedToken,
} from "../src/index.js";
import { createGrpcJsAuthInterceptor, principalOf } from "../src/grpc-js.js";
import { jwtTokens, rejection, sessionTokens, startTestServer, storesUnderTest, TestClock, testClientId, type TestServer } from "./support.js";

const ping = `/${WhoAmIService.typeName}/Ping`;
const missing = 'missing credential: send "Authorization: Bearer <Tessera access token>"';

/** What the handlers answer for a principal. */
function whoAmI(p: VerifiedToken): MessageInitShape<typeof WhoAmIResponseSchema> {
  return { kind: p.kind, userId: p.userId, detail: p.kind === "session" ? p.sessionId : p.user };
}

/** The internal service, and what reached its handlers. */
interface Protected {
  url: string;
  handled: number;
  close(): Promise<void>;
}

async function connectService(verifier: Pick<TokenVerifier, "verify">, options: AuthOptions): Promise<Protected> {
  const state = { handled: 0 };
  const routes = (router: ConnectRouter) =>
    router.service(WhoAmIService, {
      whoAmI(_req, ctx) {
        state.handled++;
        return whoAmI(requirePrincipal(ctx));
      },
      ping(_req, ctx) {
        state.handled++;
        return { userId: ctx.values.get(principalKey)?.userId ?? "" };
      },
    });
  const server = http2.createServer(connectNodeAdapter({ routes, interceptors: [createAuthInterceptor(verifier, options)] }));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => sessions.add(s.once("close", () => sessions.delete(s))));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get handled() {
      return state.handled;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
      }),
  };
}

async function grpcJsService(verifier: Pick<TokenVerifier, "verify">, options: AuthOptions): Promise<Protected> {
  const state = { handled: 0 };
  const definition: Record<string, grpc.MethodDefinition<any, any>> = {};
  for (const m of WhoAmIService.methods) {
    definition[m.name] = {
      path: `/${WhoAmIService.typeName}/${m.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (v: MessageShape<DescMessage>) => Buffer.from(toBinary(m.input, v)),
      requestDeserialize: (b: Buffer) => fromBinary(m.input, b),
      responseSerialize: (v: MessageShape<DescMessage>) => Buffer.from(toBinary(m.output, create(m.output, v))),
      responseDeserialize: (b: Buffer) => fromBinary(m.output, b),
    };
  }
  const server = new grpc.Server({ interceptors: [createGrpcJsAuthInterceptor(verifier, options)] });
  server.addService(definition, {
    WhoAmI(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
      state.handled++;
      const p = principalOf(call);
      if (!p) return callback({ code: grpc.status.INTERNAL, details: "no principal" });
      callback(null, whoAmI(p));
    },
    Ping(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
      state.handled++;
      callback(null, { userId: principalOf(call)?.userId ?? "" });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    url: `http://127.0.0.1:${port}`,
    get handled() {
      return state.handled;
    },
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}

const servers: Array<[string, typeof connectService, Protocol[]]> = [
  ["a Connect service (connect-node, createAuthInterceptor)", connectService, ["grpc", "connect", "grpc-web"]],
  ["a @grpc/grpc-js service (createGrpcJsAuthInterceptor)", grpcJsService, ["grpc"]],
];

for (const store of storesUnderTest()) {
  describe(`@tessera/client server interceptors (${store})`, () => {
    let tessera: TestServer;
    before(async () => (tessera = await startTestServer({ store })));
    after(() => tessera.close());

    for (const [serverName, start, protocols] of servers) {
      describe(serverName, () => {
        // Each test's verifier, behind the one the server holds; a fresh (cold) one per test.
        let verifier: Pick<TokenVerifier, "verify">;
        const refusals: TokenVerificationError[] = [];
        let service: Protected;
        before(async () => {
          service = await start({ verify: (t) => verifier.verify(t) }, { allowAnonymous: (p) => p === ping, onRefusal: (e) => refusals.push(e) });
        });
        after(() => service.close());
        beforeEach(() => {
          verifier = createTokenVerifier({ jwksUrl: `${tessera.url}/.well-known/jwks.json`, issuer: "tessera", audience: "tessera", clientId: testClientId });
          refusals.length = 0;
        });

        for (const protocol of protocols) {
          describe(`called over ${protocol}`, () => {
            const client = (headers?: Record<string, string>) =>
              createTesseraClient(WhoAmIService, { baseUrl: service.url, protocol, ...(headers && { credentials: headers }) });

            it("a seed 004 access token: the handler gets the principal (kind jwt)", async () => {
              const t = await jwtTokens(tessera);
              const res = await client(bearer(t.access)).whoAmI({});
              assert.deepEqual({ kind: res.kind, userId: res.userId, detail: res.detail }, { kind: "jwt", userId: t.userId, detail: t.user });
            });

            it("a seed 000 session access token: the handler gets the principal (kind session)", async () => {
              const t = await sessionTokens(tessera);
              const res = await client(bearer(t.access)).whoAmI({});
              assert.deepEqual({ kind: res.kind, userId: res.userId, detail: res.detail }, { kind: "session", userId: t.userId, detail: decodeJwt(t.access).sid });
            });

            it("no token: UNAUTHENTICATED, the handler is not reached", async () => {
              const handled = service.handled;
              const err = await rejection(client().whoAmI({}));
              assert.equal(err.code, Code.Unauthenticated);
              assert.equal(err.rawMessage, missing);
              assert.equal(service.handled, handled);
            });

            it("a forged, a refresh and an expired token: UNAUTHENTICATED naming the reason, the handler is not reached", async () => {
              const t = await jwtTokens(tessera);
              const handled = service.handled;
              const forged = withPayload(t.access, (p) => ({ ...p, sub: "admin" }));
              let err = await rejection(client(bearer(forged)).whoAmI({}));
              assert.equal(err.code, Code.Unauthenticated);
              assert.equal(err.rawMessage, "invalid Tessera access token: the token's signature does not verify (INVALID_SIGNATURE)");
              err = await rejection(client(bearer(t.refresh)).whoAmI({}));
              assert.equal(err.rawMessage, 'invalid Tessera access token: not an access token (token_type "refresh_token") (WRONG_TOKEN_TYPE)');
              const clock = new TestClock((decodeJwt(t.access).exp! + 5) * 1000);
              verifier = createTokenVerifier({ jwksUrl: `${tessera.url}/.well-known/jwks.json`, audience: "tessera", now: clock.now });
              err = await rejection(client(bearer(t.access)).whoAmI({}));
              assert.equal(err.rawMessage, "invalid Tessera access token: the token has expired (TOKEN_EXPIRED)");
              assert.equal(service.handled, handled);
              assert.deepEqual(refusals.map((e) => e.code), ["INVALID_SIGNATURE", "WRONG_TOKEN_TYPE", "TOKEN_EXPIRED"]);
            });

            it("another Authorization scheme: UNAUTHENTICATED", async () => {
              const err = await rejection(client(basic("ada", "secret")).whoAmI({}));
              assert.equal(err.code, Code.Unauthenticated);
              assert.equal(err.rawMessage, 'the Authorization header must be one "Bearer <Tessera access token>"');
            });

            it("a refused token carries the RFC 6750 challenge (WWW-Authenticate)", async () => {
              const err = await rejection(client(bearer("not.a.token")).whoAmI({}));
              assert.equal(err.metadata.get("www-authenticate"), 'Bearer error="invalid_token"');
              assert.equal((await rejection(client().whoAmI({}))).metadata.get("www-authenticate"), "Bearer");
            });

            it("allowAnonymous: Ping answers without a token; a token it carries is still verified", async () => {
              const t = await sessionTokens(tessera);
              assert.equal((await client().ping({})).userId, "");
              assert.equal((await client(bearer(t.access)).ping({})).userId, t.userId);
              const err = await rejection(client(bearer(withPayload(t.access, (p) => ({ ...p, sub: "x" })))).ping({}));
              assert.equal(err.code, Code.Unauthenticated);
              assert.equal(err.rawMessage, "invalid Tessera access token: the token's signature does not verify (INVALID_SIGNATURE)");
            });

            it("keys that cannot be fetched: UNAVAILABLE (retry), not UNAUTHENTICATED", async () => {
              const t = await jwtTokens(tessera);
              verifier = createTokenVerifier({ jwksUrl: `http://127.0.0.1:${await freePort()}/.well-known/jwks.json`, audience: "tessera" });
              const err = await rejection(client(bearer(t.access)).whoAmI({}));
              assert.equal(err.code, Code.Unavailable);
              assert.equal(err.rawMessage, "Tessera's signing keys are unavailable: the token cannot be verified now; retry later");
              assert.deepEqual(refusals.map((e) => e.code), ["KEYS_UNAVAILABLE"]);
            });

            it("concurrent calls on a cold verifier (the key set fetched while the requests wait) all reach the handler", async () => {
              const tokens = await Promise.all([1, 2, 3, 4, 5, 6].map(() => jwtTokens(tessera)));
              const answers = await Promise.all(tokens.map((t) => client(bearer(t.access)).whoAmI({})));
              assert.deepEqual(answers.map((a) => a.userId), tokens.map((t) => t.userId));
            });
          });
        }
      });
    }
  });
}

// allowAnonymous, onRefusal and the verifier are the application's code: one that threw failed
// the call with what it threw (a refused token answered INTERNAL; Connect sent a ConnectError,
// one from a call the callback made to another service, to the caller, code and message) and no
// one saw the throw. The caller gets the answer it would have had, or a bare INTERNAL; the
// application gets what was thrown, as a process warning.
describe("@tessera/client server interceptors: an allowAnonymous, onRefusal or verifier that throws", () => {
  const thrown = new ConnectError("audit-log.internal:8443 refused the service account svc-orders", Code.PermissionDenied);
  const refusing: Pick<TokenVerifier, "verify"> = {
    verify: async () => {
      throw new TokenVerificationError("INVALID_SIGNATURE", "the token's signature does not verify");
    },
  };
  const throwing = () => {
    throw thrown;
  };
  const cases: Array<[what: string, verifier: Pick<TokenVerifier, "verify">, options: AuthOptions, token: string | undefined, code: Code, message: string, challenge: string | null, warning: string]> = [
    [
      "onRefusal throws: the caller gets the refusal it would have had (UNAUTHENTICATED, the reason, the challenge)",
      refusing,
      { onRefusal: throwing },
      "a.b.c",
      Code.Unauthenticated,
      "invalid Tessera access token: the token's signature does not verify (INVALID_SIGNATURE)",
      'Bearer error="invalid_token"',
      `onRefusal threw on ${ping}: ${thrown.message}`,
    ],
    ["allowAnonymous throws: INTERNAL, \"internal error\", the handler not reached", refusing, { allowAnonymous: throwing }, undefined, Code.Internal, "internal error", null, `allowAnonymous threw on ${ping}: ${thrown.message}`],
    ["the verifier throws what is no TokenVerificationError: INTERNAL, \"internal error\"", { verify: throwing }, {}, "a.b.c", Code.Internal, "internal error", null, `verify threw on ${ping}: ${thrown.message}`],
  ];
  // The warnings are the tests' to read: Node's own listener, which writes each to stderr, is
  // taken off meanwhile (its output would be the test run's), and every warning is asserted.
  let warnings: Error[] = [];
  let others: Array<(...args: unknown[]) => void> = [];
  const onWarning = (w: Error) => warnings.push(w);
  beforeEach(() => {
    warnings = [];
    others = process.listeners("warning") as typeof others;
    process.removeAllListeners("warning");
    process.on("warning", onWarning);
  });
  afterEach(() => {
    process.off("warning", onWarning);
    for (const listener of others) process.on("warning", listener);
  });

  for (const [serverName, start, protocols] of servers) {
    describe(serverName, () => {
      for (const protocol of protocols) {
        for (const [what, verifier, options, token, code, message, challenge, warning] of cases) {
          it(`over ${protocol}: ${what}; the throw is a process warning, never sent to the caller`, async () => {
            const service = await start(verifier, options);
            const client = createTesseraClient(WhoAmIService, { baseUrl: service.url, protocol, ...(token !== undefined && { credentials: bearer(token) }) });
            try {
              const err = await rejection(client.ping({}));
              assert.deepEqual([Code[err.code], err.rawMessage, err.metadata.get("www-authenticate")], [Code[code], message, challenge]);
              assert.equal(service.handled, 0);
              await new Promise((resolve) => setImmediate(resolve));
              assert.deepEqual(
                warnings.map((w) => [w.name, (w as Error & { code?: string }).code, w.message, w.cause]),
                [["TesseraAuthWarning", "TESSERA_AUTH_CALLBACK_THREW", warning, thrown]],
              );
            } finally {
              await client.close();
              await service.close();
            }
          });
        }
      }
    });
  }
});
