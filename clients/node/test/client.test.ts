// createTesseraClient: every service of Tessera called over gRPC, Connect (HTTP/2 and HTTP/1.1)
// and gRPC-Web, with the credential each API takes given by the package's helpers (per call,
// or for every call of a client), and Tessera's error reasons read with errorReason.
import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo, type Socket } from "node:net";
import { readFileSync } from "node:fs";
import { createServer as createTlsServer } from "node:tls";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { decodeProtectedHeader } from "jose";
import { RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import {
  ApiTokenService,
  AuthenticationTokenService,
  basic,
  bearer,
  clientId,
  createTesseraClient,
  createTesseraTransport,
  errorReason,
  JwtService,
  KeyService,
  retryAfterSeconds,
  SessionService,
  UserService,
  UserTokenService,
  type TesseraTransportOptions,
} from "../src/index.js";
import { deadlineHeadersRead, jwtTokens, password, rejection, requestsRead, startTestServer, storesUnderTest, testAdminToken, testCallHeader, testClientId, variants, type TestServer, type Variant } from "./support.js";
import { uniqueEmail, uniqueName } from "../../../test/support/users.js";
import { sideBySide } from "../../../test/support/side-by-side.js";
import { makeCertificateWith, makeTestCertificate, type TestCertificate } from "../../../test/support/net.js";
import { scrape, value } from "../../../test/support/metrics.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../../gen/health/v1/health_pb.js";


for (const store of storesUnderTest()) {
  describe(`@tessera/client createTesseraClient (${store})`, () => {
    let server: TestServer;
    before(async () => (server = await startTestServer({ store })));
    after(() => server.close());

    for (const [name, variant] of variants) {
      describe(`over ${name}`, () => {
        const options = (more: Partial<TesseraTransportOptions> = {}): TesseraTransportOptions => ({ baseUrl: server.url, ...variant, ...more });

        it("Session API (seed 000): clientId for sign-up and login, clientId and bearer for the session", async () => {
          const transport = createTesseraTransport(options({ credentials: clientId(testClientId) }));
          const users = createTesseraClient(UserService, transport);
          const sessions = createTesseraClient(SessionService, transport);
          const email = uniqueEmail();
          await users.createUser({ email, password });
          const pair = await sessions.createSession({ accountType: "traditional", email, password });
          assert.equal(pair.accessTokenExpiresIn, 900);
          const me = await users.getUser({}, { headers: bearer(pair.accessToken) });
          assert.equal(me.email, email);
          const session = await sessions.getSession({}, { headers: bearer(pair.accessToken) });
          assert.ok(session.accessTokenExpiresIn > 0 && session.accessTokenExpiresIn <= 900);
        });

        it("errors carry Tessera's reason: a wrong password is UNAUTHENTICATED, INVALID_CREDENTIALS", async () => {
          const sessions = createTesseraClient(SessionService, options({ credentials: clientId(testClientId) }));
          const err = await rejection(sessions.createSession({ accountType: "traditional", email: uniqueEmail(), password }));
          assert.equal(err.code, Code.Unauthenticated);
          assert.equal(errorReason(err), "INVALID_CREDENTIALS");
          assert.equal(retryAfterSeconds(err), undefined);
          const missing = await rejection(createTesseraClient(SessionService, options()).getSession({}));
          assert.equal(errorReason(missing), "MISSING_CLIENT_ID");
        });

        it("API tokens (seed 001): the admin bearer creates one, the token's own bearer authenticates", async () => {
          const adminClient = createTesseraClient(ApiTokenService, options({ credentials: bearer(testAdminToken) }));
          const accountId = uniqueName("acct");
          const { token } = await adminClient.createToken({ accountId, description: "deploys" });
          const apiTokens = createTesseraClient(ApiTokenService, options());
          assert.equal((await apiTokens.authenticate({}, { headers: bearer(token) })).accountId, accountId);
          const listed = await adminClient.listTokens({ accountId });
          assert.equal(listed.tokens.length, 1);
        });

        it("User tokens (seed 002): Basic logs in, the user token's bearer bumps", async () => {
          const email = uniqueEmail();
          await createTesseraClient(UserService, options({ credentials: clientId(testClientId) })).createUser({ email, password });
          const userTokens = createTesseraClient(UserTokenService, options());
          const login = await userTokens.login({}, { headers: basic(email, password) });
          assert.ok(login.enabled);
          const bumped = await userTokens.bump({}, { headers: bearer(login.token) });
          assert.ok(bumped.lastLoginTime);
          const err = await rejection(userTokens.login({}, { headers: basic(email, "not the password at all") }));
          assert.equal(errorReason(err), "INVALID_CREDENTIALS");
        });

        it("Authentication tokens (seed 003): any user credential, here a session's clientId and bearer", async () => {
          const transport = createTesseraTransport(options({ credentials: clientId(testClientId) }));
          const email = uniqueEmail();
          await createTesseraClient(UserService, transport).createUser({ email, password });
          const { accessToken } = await createTesseraClient(SessionService, transport).createSession({ accountType: "traditional", email, password });
          const created = await createTesseraClient(AuthenticationTokenService, transport).createToken({}, { headers: bearer(accessToken) });
          assert.equal(created.token?.ttl, 60);
        });

        it("JWT API (seed 004): a token from a password login, then the JWT's bearer", async () => {
          const jwt = createTesseraClient(JwtService, options());
          const user = uniqueName("jwt");
          await jwt.createUser({ user, pass: password });
          const { body } = await jwt.getToken({ user, pass: password });
          const access = new TextDecoder().decode(body!.data);
          const { claims } = await jwt.getUser({}, { headers: bearer(access) });
          assert.equal(claims?.user, user);
          assert.equal(claims?.token_type, "access_token");
        });

        it("Public keys: the JWKS and the discovery document without a credential; rotation with the admin bearer", async () => {
          const keys = createTesseraClient(KeyService, options());
          const before = await keys.getJwks({});
          assert.ok(before.keys.length >= 1);
          assert.equal((await keys.getOpenIdConfiguration({})).issuer, "tessera");
          const err = await rejection(keys.rotateKey({}));
          assert.equal(err.code, Code.Unauthenticated);
          assert.equal(errorReason(err), "MISSING_CREDENTIAL");
          const { kid } = await keys.rotateKey({}, { headers: bearer(testAdminToken) });
          // The promoted key follows the newly published next key.
          assert.equal((await keys.getJwks({})).keys[1]?.kid, kid);
        });

        it("a timeout with a fraction of a millisecond is sent rounded up to whole milliseconds (what grpc-timeout and connect-timeout-ms carry), not refused INVALID_ARGUMENT", async () => {
          const sent: Array<string | null> = [];
          const timeoutHeader = variant.protocol === "connect" ? "connect-timeout-ms" : "grpc-timeout";
          const unit = variant.protocol === "connect" ? "" : "m";
          const interceptors: Interceptor[] = [(next) => (req) => (sent.push(req.header.get(timeoutHeader)), next(req))];
          const keys = createTesseraClient(KeyService, options({ defaultTimeoutMs: 5000.25, interceptors }));
          assert.ok((await keys.getJwks({})).keys.length >= 1);
          assert.ok((await keys.getJwks({}, { timeoutMs: 7000.5 })).keys.length >= 1);
          assert.ok((await keys.getJwks({}, { timeoutMs: 2 ** 40 + 0.5 })).keys.length >= 1);
          assert.deepEqual(sent, [`5001${unit}`, `7001${unit}`, `99999999${unit}`]);
        });

        // connect-es's documented way to cancel or time out a call from an interceptor:
        // next({ ...req, signal }), the new signal following the call's.
        it("an interceptor that replaces the call's signal and takes a while: Tessera is told what is left of the call's deadline when the request leaves, not the whole timeout", async () => {
          const own = new AbortController();
          let waited = 0;
          const interceptors: Interceptor[] = [
            (next) => async (req) => {
              const start = performance.now();
              await new Promise((r) => setTimeout(r, 300));
              waited = performance.now() - start;
              return next({ ...req, signal: AbortSignal.any([req.signal, own.signal]) });
            },
          ];
          const jwt = createTesseraClient(JwtService, options({ interceptors }));
          const read = await deadlineHeadersRead(async () => {
            await jwt.getVersion({}, { timeoutMs: 2000, headers: { [testCallHeader]: "call" } });
          });
          const left = millis(read.get("call"));
          assert.ok(left <= Math.ceil(2000 - waited) && left >= 100, `Tessera read ${read.get("call")} after ${waited} ms of a 2000 ms deadline`);
        });

        it("an interceptor's own shorter deadline (its header, with or without a signal of its own) is what Tessera is told; a longer one is not: the call's is", async () => {
          const timeoutHeader = variant.protocol === "connect" ? "connect-timeout-ms" : "grpc-timeout";
          const unit = variant.protocol === "connect" ? "" : "m";
          const own = (ms: number, signal: boolean): Interceptor => (next) => async (req) => {
            req.header.set(timeoutHeader, `${ms}${unit}`);
            return next(signal ? { ...req, signal: AbortSignal.any([req.signal, AbortSignal.timeout(ms)]) } : req);
          };
          const read = await deadlineHeadersRead(async () => {
            for (const [id, interceptor] of [["short", own(300, false)], ["short, own signal", own(300, true)], ["long, own signal", own(60_000, true)]] as const) {
              const jwt = createTesseraClient(JwtService, options({ interceptors: [interceptor] }));
              await jwt.getVersion({}, { timeoutMs: 5000, headers: { [testCallHeader]: id } });
            }
          });
          const short = [millis(read.get("short")), millis(read.get("short, own signal"))];
          const long = millis(read.get("long, own signal"));
          assert.ok(short.every((ms) => ms <= 300 && ms >= 100) && long <= 5000 && long >= 4000, `Tessera read ${JSON.stringify([...read])}`);
        });

        it("a header value longer than Tessera takes (15360 bytes of its 16 KiB header block) is refused before the call is sent, naming the header, without the value; one of 15360 bytes reaches Tessera", async () => {
          const apiTokens = createTesseraClient(ApiTokenService, options());
          const longest = "t".repeat(15360 - "Bearer ".length);
          const read = await rejection(apiTokens.authenticate({}, { headers: bearer(longest) }));
          assert.equal(read.code, Code.Unauthenticated);
          assert.equal(errorReason(read), "INVALID_TOKEN");
          const tooLong = (what: string) => `${what}: the "authorization" header's value is longer than Tessera takes (at most 15360 bytes)`;
          assert.throws(() => bearer(`${longest}t`), { name: "TypeError", message: tooLong("bearer") });
          // 72 KB: past the 64 KiB header block Node sends over HTTP/2.
          const secret = "s3cret".repeat(12_000);
          for (const [call, message] of [
            [createTesseraClient(ApiTokenService, options({ credentials: { authorization: `Bearer ${secret}` } })).authenticate({}), tooLong("credentials")],
            [apiTokens.authenticate({}, { headers: { authorization: `Bearer ${secret}` } }), tooLong("headers")],
          ] as const) {
            const err = await rejection(call);
            assert.equal(err.rawMessage, message);
            assert.deepEqual([String(err), String(err.cause)].filter((text) => text.includes("s3cret")), [], "the refusal and its cause, where they quote the secret");
          }
        });

        it("credentials as a function: asked on every call (a token that changes)", async () => {
          const jwt = createTesseraClient(JwtService, options());
          const user = uniqueName("jwt");
          await jwt.createUser({ user, pass: password });
          let current = "";
          let asked = 0;
          const client = createTesseraClient(JwtService, options({ credentials: async () => (asked++, bearer(current)) }));
          current = new TextDecoder().decode((await jwt.getToken({ user, pass: password })).body!.data);
          assert.equal((await client.getUser({})).claims?.user, user);
          assert.equal(decodeProtectedHeader(current).typ, "JWT");
          assert.equal(asked, 1);
          // A credential given with the call wins over the client's: GetUser answers no claims
          // for a token that is not valid.
          assert.equal((await client.getUser({}, { headers: bearer("not.a.token") })).claims, undefined);
          assert.equal(asked, 2);
        });
      });
    }

    // Connect GET puts the request message in the URL, which proxies, caches and access logs
    // keep: a token given in the message (JwtService's access_token) must not travel there.
    for (const httpVersion of ["2", "1.1"] as const) {
      it(`Connect GET (useHttpGet) over HTTP/${httpVersion}: a side-effect-free call is a GET, except one carrying a token in its message (JwtService.check's accessToken): that one is a POST, the token not in the URL`, async () => {
        const { access, user } = await jwtTokens(server);
        const jwt = createTesseraClient(JwtService, { baseUrl: server.url, protocol: "connect", httpVersion, useHttpGet: true });
        const read = await requestsRead(async () => {
          assert.equal((await jwt.check({ accessToken: access }, { headers: { [testCallHeader]: "token in the message" } })).claims?.user, user);
          assert.equal((await jwt.getUser({ accessToken: access }, { headers: { [testCallHeader]: "getUser, token in the message" } })).claims?.user, user);
          assert.equal((await jwt.check({}, { headers: { ...bearer(access), [testCallHeader]: "token in the header" } })).claims?.user, user);
          await jwt.getVersion({}, { headers: { [testCallHeader]: "no token" } });
        });
        // Connect GET's message: `message=` (base64url when `base64=1`), in the query.
        const tokenInUrl = (url: string) => {
          const query = new URL(url, server.url).searchParams;
          const message = query.get("message") ?? "";
          return (query.get("base64") === "1" ? Buffer.from(message, "base64url").toString("latin1") : message).includes(access);
        };
        assert.deepEqual(
          Object.fromEntries([...read].map(([id, r]) => [id, `${r.method} ${r.url.split("?")[0]}${tokenInUrl(r.url) ? " (the token in the URL)" : ""}`])),
          {
            "token in the message": "POST /tessera.jwt.v1.JwtService/Check",
            "getUser, token in the message": "POST /tessera.jwt.v1.JwtService/GetUser",
            "token in the header": "GET /tessera.jwt.v1.JwtService/Check",
            "no token": "GET /tessera.jwt.v1.JwtService/GetVersion",
          },
        );
      });
    }
  });
}

/**
 * KeyService clients over the credentials given (`keys`), each call stopped (ABORTED) as it would
 * leave, its headers then in `sent`.
 */
function stoppedBeforeSending() {
  const sent: Array<Record<string, string>> = [];
  const stop: Interceptor = () => async (req) => {
    sent.push(Object.fromEntries(req.header));
    throw new ConnectError("stopped before sending", Code.Aborted);
  };
  const keys = (credentials: TesseraTransportOptions["credentials"]) =>
    createTesseraClient(KeyService, { baseUrl: "http://127.0.0.1:1", protocol: "connect", credentials, interceptors: [stop] });
  return { sent, keys };
}

describe("@tessera/client credential helpers", () => {
  it("bearer, basic and clientId are the headers Tessera reads", () => {
    assert.deepEqual(bearer("abc.def-_~+/="), { authorization: "Bearer abc.def-_~+/=" });
    assert.deepEqual(basic("ada@example.com", "pässword:with colon"), {
      authorization: `Basic ${Buffer.from("ada@example.com:pässword:with colon", "utf8").toString("base64")}`,
    });
    assert.deepEqual(clientId("web"), { "x-koms-clientid": "web" });
    assert.deepEqual({ ...clientId("web"), ...bearer("t") }, { "x-koms-clientid": "web", authorization: "Bearer t" });
  });

  it("a value a header cannot carry is a TypeError naming the problem, without the value", () => {
    const secret = "s3cret\r\nx-injected: 1";
    for (const [fn, message] of [
      [() => bearer(secret), "bearer: the token must be non-empty visible ASCII (no spaces or line breaks)"],
      [() => bearer(""), "bearer: the token must be non-empty visible ASCII (no spaces or line breaks)"],
      [() => basic("a:b", "x"), "basic: the login must be non-empty, without ':', control characters or unpaired surrogates (not UTF-8)"],
      [() => basic("ada", secret), "basic: the password must be non-empty, without control characters or unpaired surrogates (not UTF-8)"],
      [() => clientId("web client"), "clientId: the client id must be non-empty visible ASCII"],
    ] as const) {
      assert.throws(fn, (e: Error) => e instanceof TypeError && e.message === message && !e.message.includes("s3cret"));
    }
  });

  it("basic: a login or password with an unpaired surrogate (no UTF-8 for it, RFC 7617) is a TypeError without the value, not sent as U+FFFD", () => {
    for (const [fn, message] of [
      [() => basic("ada\uD800", "s3cret"), "basic: the login must be non-empty, without ':', control characters or unpaired surrogates (not UTF-8)"],
      [() => basic("\uDC00ada", "s3cret"), "basic: the login must be non-empty, without ':', control characters or unpaired surrogates (not UTF-8)"],
      [() => basic("ada", "s3cret\uDBFF"), "basic: the password must be non-empty, without control characters or unpaired surrogates (not UTF-8)"],
    ] as const) {
      assert.throws(fn, (e: Error) => e instanceof TypeError && e.message === message && !e.message.includes("s3cret"));
    }
    // A pair is one character (U+1F600), sent as its four UTF-8 bytes.
    assert.deepEqual(basic("ada\uD83D\uDE00", "s3cret"), { authorization: `Basic ${Buffer.from([..."ada", 0xf0, 0x9f, 0x98, 0x80, ...":s3cret"].map((c) => (typeof c === "number" ? c : c.charCodeAt(0)))).toString("base64")}` });
  });

  it("a credential longer than Tessera takes in a header (15360 bytes) is a TypeError naming the header, without the value", () => {
    const secret = "s3cret".repeat(3000);
    for (const [fn, message] of [
      [() => bearer(secret), 'bearer: the "authorization" header\'s value is longer than Tessera takes (at most 15360 bytes)'],
      [() => basic("ada", secret), 'basic: the "authorization" header\'s value is longer than Tessera takes (at most 15360 bytes)'],
      [() => clientId(secret), 'clientId: the "x-koms-clientid" header\'s value is longer than Tessera takes (at most 15360 bytes)'],
    ] as const) {
      assert.throws(fn, (e: Error) => e instanceof TypeError && e.message === message && !e.message.includes("s3cret"));
    }
    assert.equal(clientId("c".repeat(15360))["x-koms-clientid"].length, 15360);
  });

  it("a baseUrl that is not an http or https URL, or that has a query or fragment, is a TypeError naming it, when the transport is made (not an INTERNAL or UNIMPLEMENTED on every call)", () => {
    const queryOrFragment = "baseUrl: must have no query or fragment (each call's path is added to its path)";
    for (const [baseUrl, message] of [
      ["127.0.0.1:8080", "baseUrl: not a URL"],
      ["", "baseUrl: not a URL"],
      ["localhost:8080", "baseUrl: must be an http or https URL"],
      ["grpc://127.0.0.1:8080", "baseUrl: must be an http or https URL"],
      ["http://127.0.0.1:8080/?api_key=s3cret", queryOrFragment],
      ["http://127.0.0.1:8080?", queryOrFragment],
      ["https://tessera.internal/#main", queryOrFragment],
    ]) {
      for (const protocol of ["grpc", "connect", "grpc-web"] as const) {
        assert.throws(() => createTesseraTransport({ baseUrl: baseUrl!, protocol }), { name: "TypeError", message });
      }
    }
  });

  it("credentials given as raw headers with a value a header cannot carry: the call fails naming the header, without the value", async () => {
    const secret = "s3cret\nx-injected: 1";
    for (const credentials of [{ authorization: `Bearer ${secret}` }, async () => ({ authorization: `Bearer ${secret}` })]) {
      const keys = createTesseraClient(KeyService, { baseUrl: "http://127.0.0.1:1", protocol: "connect", credentials });
      const err = await rejection(keys.getJwks({}));
      assert.equal(err.rawMessage, 'credentials: the "authorization" header\'s value has a line break or control character');
      assert.ok(!String(err).includes("s3cret") && !err.message.includes("s3cret"));
    }
  });

  // Object.entries of a Headers (or a Map) is []: given as credentials, it was sent as no headers
  // at all, and every call went out without its credential.
  it("credentials given as a Headers, or by a function giving one, are its headers (a call's own header still wins); a Map or another object that is not plain headers is a TypeError, or fails the call INVALID_ARGUMENT", async () => {
    const { sent, keys } = stoppedBeforeSending();
    const given = () => new Headers({ ...clientId("web"), ...bearer("s3cret") });
    for (const credentials of [given(), () => given(), async () => given()]) {
      await rejection(keys(credentials).getJwks({}));
      await rejection(keys(credentials).getJwks({}, { headers: { authorization: "Bearer mine" } }));
    }
    const picked = sent.map((h) => [h["x-koms-clientid"], h.authorization]);
    assert.deepEqual(picked, Array.from({ length: 3 }, () => [["web", "Bearer s3cret"], ["web", "Bearer mine"]]).flat());
    const refusal = "credentials: headers (an object of header names and values, an array of [name, value] pairs, or a Headers) or a function giving them";
    assert.throws(() => keys(new Map([["authorization", "Bearer s3cret"]]) as never), { name: "TypeError", message: refusal });
    const err = await rejection(keys(() => new Map([["authorization", "Bearer s3cret"]]) as never).getJwks({}));
    assert.deepEqual([Code[err.code], err.rawMessage], ["InvalidArgument", "credentials: the function gave no headers (an object of header names and values, an array of [name, value] pairs, or a Headers)"]);
  });

  // An array of [name, value] pairs is a HeadersInit (new Headers(pairs)): given as credentials,
  // it was refused (TypeError), or from a function failed every call INVALID_ARGUMENT.
  it("credentials given as an array of [name, value] pairs, or by a function giving one, are the headers new Headers(pairs) holds: names any case, a name given twice sent once with its values joined; a value no header takes fails the call INVALID_ARGUMENT naming its header, a name that is no token (a pair given as [value, name]) without quoting it; never the value quoted", async () => {
    const { sent, keys } = stoppedBeforeSending();
    const pairs = [["X-Koms-ClientId", "web"], ["authorization", "Bearer s3cret"], ["x-trace", "a"], ["X-Trace", "b"]];
    for (const credentials of [pairs, () => pairs, async () => pairs]) {
      await rejection(keys(credentials).getJwks({}));
      await rejection(keys(credentials).getJwks({}, { headers: { authorization: "Bearer mine" } }));
    }
    const expected = [
      { "x-koms-clientid": "web", authorization: "Bearer s3cret", "x-trace": "a, b" },
      { "x-koms-clientid": "web", authorization: "Bearer mine", "x-trace": "a, b" },
    ];
    const picked = sent.map((h) => ({ "x-koms-clientid": h["x-koms-clientid"], authorization: h.authorization, "x-trace": h["x-trace"] }));
    const headersGive = Object.fromEntries(new Headers(pairs as Array<[string, string]>));
    assert.deepEqual([picked, headersGive], [Array.from({ length: 3 }, () => expected).flat(), expected[0]]);
    const outcomes: unknown[] = [];
    for (const given of [[["bad name", "x"]], [["Bearer s3cret", "authorization"]], [["authorization", "Bearer s3cret\nx"]], [["authorization"]], [["authorization", "Bearer s3cret", "x"]], ["authorization"]]) {
      for (const credentials of [given, () => given]) {
        const err = await rejection(keys(credentials as never).getJwks({}));
        assert.deepEqual([String(err), String(err.cause)].filter((text) => text.includes("s3cret")), [], "the refusal and its cause, where they quote the secret");
        outcomes.push([Code[err.code], err.rawMessage]);
      }
    }
    const notPair = "credentials: each entry of an array of headers must be a [name, value] pair";
    const notName = "credentials: entry 0 of the array of headers does not begin with a header name (a token, RFC 9110 5.1); it is not shown, as it may be a value";
    assert.deepEqual(
      outcomes,
      [
        notName,
        notName,
        'credentials: the "authorization" header\'s value has a line break or control character',
        notPair,
        notPair,
        notPair,
      ].flatMap((message) => [["InvalidArgument", message], ["InvalidArgument", message]]),
    );
  });

  // A pair swapped in an object of headers ({ [token]: "authorization" }) made the token a header
  // name: Headers refused it quoting it ('Headers.has: "Bearer …" is an invalid header name.'),
  // and the secret went into the call's error, its cause and their stacks, and so into logs.
  it("credentials given as an object, or a call's own headers, with a name that is no token (a pair swapped: { [token]: \"authorization\" }): the call fails INVALID_ARGUMENT naming the problem, unsent; the secret in no message or stack of the error or its causes", async () => {
    const secret = "Bearer s3cret.tok3n";
    const { sent, keys } = stoppedBeforeSending();
    const swapped = { ...clientId("web"), [secret]: "authorization" };
    const calls: Array<() => Promise<unknown>> = [
      () => keys(swapped).getJwks({}),
      () => keys(() => swapped).getJwks({}),
      () => keys(async () => swapped).getJwks({}),
      () => keys(undefined).getJwks({}, { headers: { [secret]: "authorization" } }),
      () => keys(undefined).getJwks({}, { headers: [[secret, "authorization"]] }),
    ];
    const outcomes: unknown[] = [];
    for (const call of calls) {
      const err = await rejection(call());
      const chain: Error[] = [];
      for (let c: unknown = err; c instanceof Error && chain.length < 10; c = c.cause) chain.push(c);
      const quoting = chain.flatMap((c) => [c.message, c.stack ?? ""]).filter((text) => text.includes("s3cret"));
      assert.deepEqual(quoting, [], "the messages and stacks of the error and its causes that quote the secret");
      outcomes.push([Code[err.code], err.rawMessage, err.cause instanceof TypeError]);
    }
    const refusal = (what: string) => ["InvalidArgument", `${what}: a header name is not a token (RFC 9110 5.1); it is not shown, as it may be a value`, true];
    assert.deepEqual([outcomes, sent.length], [[refusal("credentials"), refusal("credentials"), refusal("credentials"), refusal("headers"), refusal("headers")], 0]);
  });

  it("raw credentials or a call's own headers with another control character (RFC 9110 allows only HTAB): the call fails naming the header, without the value, over HTTP/2 as over HTTP/1.1", async () => {
    const failures: string[] = [];
    for (const control of ["\u0001", "\u001b", "\u007f"]) {
      const value = `Bearer s3cret${control}x`;
      for (const httpVersion of ["2", "1.1"] as const) {
        const options = { baseUrl: "http://127.0.0.1:1", protocol: "connect", httpVersion } as const;
        for (const call of [
          () => createTesseraClient(KeyService, { ...options, credentials: { authorization: value } }).getJwks({}),
          () => createTesseraClient(KeyService, options).getJwks({}, { headers: { authorization: value } }),
          // Headers takes it (it refuses only NUL and line breaks).
          () => createTesseraClient(KeyService, options).getJwks({}, { headers: new Headers({ authorization: value }) }),
        ]) {
          const err = await rejection(call());
          assert.deepEqual([String(err), String(err.cause)].filter((text) => text.includes("s3cret")), [], "the refusal and its cause, where they quote the secret");
          failures.push(err.rawMessage);
        }
      }
    }
    const message = (what: string) => `${what}: the "authorization" header's value has a line break or control character`;
    assert.deepEqual(failures, Array.from({ length: 6 }, () => [message("credentials"), message("headers"), message("headers")]).flat());
  });

  it("raw credentials or a call's own headers with a character past U+00FF (a header value is bytes): the call fails naming the header, without the value", async () => {
    const value = "Bearer s3cret\u4ee4\u724c";
    const keys = (more: Partial<TesseraTransportOptions> = {}) => createTesseraClient(KeyService, { baseUrl: "http://127.0.0.1:1", protocol: "connect", ...more });
    for (const [call, what] of [
      [keys({ credentials: { authorization: value } }).getJwks({}), "credentials"],
      [keys().getJwks({}, { headers: { authorization: value } }), "headers"],
    ] as const) {
      const err = await rejection(call);
      assert.equal(err.rawMessage, `${what}: the "authorization" header's value has a character past U+00FF, which a header cannot carry`);
      assert.deepEqual([String(err), String(err.cause)].filter((text) => text.includes("s3cret")), [], "the refusal and its cause, where they quote the secret");
    }
  });

  it("gRPC needs HTTP/2; an unknown protocol is named", () => {
    assert.throws(() => createTesseraTransport({ baseUrl: "http://127.0.0.1:1", protocol: "grpc", httpVersion: "1.1" }), { message: "httpVersion: gRPC needs HTTP/2" });
    assert.throws(() => createTesseraTransport({ baseUrl: "http://127.0.0.1:1", protocol: "rest" as "grpc" }), { message: 'protocol: "grpc", "connect" or "grpc-web", not "rest"' });
  });
});

/**
 * An HTTP/2 (or HTTP/1.1) server whose ApiTokenService.createToken (answered `answerAfterMs`
 * after it is called) and Health.Watch (one SERVING, then the end) count their calls. The first
 * `refuse` streams are refused (`refuseAfterMs` after they arrive; with `goAway`, the connection
 * is closed then, as Tessera closes an idle one), the next `reset` reset after the handler ran.
 * With `lose`, the first request is handled, then, 50 ms later, the server drops its connection
 * (`close`: the socket closed, as a crash or a restart closes it; `reset`: a TCP reset; `close
 * mid-answer`: closed after the answer's headers and part of its body) or, over HTTP/2, closes its
 * stream with RST_STREAM(NO_ERROR) without answering (`end stream`), or its connection with a
 * GOAWAY(INTERNAL_ERROR).
 * `sent` holds each request's timeout header (grpc-timeout or connect-timeout-ms), its
 * Authorization header and when it arrived, `refusedAt` when each refusal was sent
 * (performance.now(): the client's clock too).
 */
type Loss = "close" | "reset" | "close mid-answer" | "end stream" | "GOAWAY with an error";
async function refusingServer({ refuse = 0, reset = 0, refuseAfterMs = 0, goAway = false, httpVersion = "2", answerAfterMs = 0, lose }: { refuse?: number; reset?: number; refuseAfterMs?: number; goAway?: boolean; httpVersion?: "1.1" | "2"; answerAfterMs?: number; lose?: Loss } = {}) {
  const state = { streams: 0, handled: 0 };
  const sent: Array<{ timeout: string | undefined; authorization: string | undefined; at: number }> = [];
  const refusedAt: number[] = [];
  const handler = connectNodeAdapter({
    routes: (router) =>
      router
        .service(ApiTokenService, {
          async createToken() {
            state.handled++;
            if (answerAfterMs > 0) await new Promise((r) => setTimeout(r, answerAfterMs).unref());
            return { token: "t0k3n" };
          },
        })
        .service(Health, {
          check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }),
          list: () => ({}),
          async *watch() {
            state.handled++;
            yield { status: HealthCheckResponse_ServingStatus.SERVING };
          },
        }),
  });
  const serve = (req: http2.Http2ServerRequest | http.IncomingMessage, res: http2.Http2ServerResponse | http.ServerResponse) => {
    const n = state.streams++;
    sent.push({ timeout: (req.headers["grpc-timeout"] ?? req.headers["connect-timeout-ms"]) as string | undefined, authorization: req.headers.authorization, at: performance.now() });
    const stream = () => (req as http2.Http2ServerRequest).stream;
    if (n < refuse) {
      return void setTimeout(() => {
        refusedAt.push(performance.now());
        stream().close(http2.constants.NGHTTP2_REFUSED_STREAM);
        if (goAway) stream().session?.close();
      }, refuseAfterMs);
    }
    if (n < refuse + reset) {
      state.handled++;
      return stream().close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
    if (lose !== undefined && n === 0) {
      state.handled++;
      if (lose === "close mid-answer") {
        const answer = res as http.ServerResponse;
        answer.writeHead(200, { "content-type": req.headers["content-type"] ?? "" });
        // A gRPC message of 1000 bytes, 13 of them sent.
        answer.write(Buffer.concat([Buffer.from([0, 0, 0, 0x03, 0xe8, 0x0a, 0xe5, 0x07]), Buffer.from("ttttt")]));
      }
      return void setTimeout(() => {
        if (lose === "end stream") return void stream().close(http2.constants.NGHTTP2_NO_ERROR);
        if (lose === "GOAWAY with an error") return void stream().session?.goaway(http2.constants.NGHTTP2_INTERNAL_ERROR);
        for (const socket of sockets) lose === "reset" ? socket.resetAndDestroy() : socket.destroy();
      }, 50);
    }
    handler(req, res);
  };
  const sockets = new Set<Socket>();
  return { ...(await listening(httpVersion === "2" ? http2.createServer(serve) : http.createServer(serve), sockets)), state, sent, refusedAt };
}

/**
 * `server` listening on a free port of 127.0.0.1: its URL, and `close`, which closes its
 * connections with it (HTTP/2 sessions and HTTP/1.1 keep-alive alike). `sockets` holds them.
 */
async function listening(server: http.Server | http2.Http2Server, sockets = new Set<Socket>()) {
  server.on("connection", (s: Socket) => sockets.add(s.once("close", () => sockets.delete(s))));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** A timeout header's milliseconds ("1500m" or "1500"); NaN when there is none. */
function millis(timeout: string | undefined): number {
  return Number(/^(\d+)m?$/.exec(timeout ?? "")?.[1]);
}

// RFC 9113 8.7: a stream reset with REFUSED_STREAM was not processed, and may be sent again,
// even a call that is not idempotent. Tessera refuses the streams that race its closing of an
// idle HTTP/2 connection (TESSERA_IDLE_TIMEOUT_MS): a call made then must not fail.
describe("@tessera/client over HTTP/2: a stream the server refused (REFUSED_STREAM)", () => {
  for (const protocol of ["grpc", "connect", "grpc-web"] as const) {
    it(`over ${protocol}: a refused stream is sent once more (createToken, not idempotent, handled once); refused twice, or reset after processing, it fails`, async () => {
      const once = await refusingServer({ refuse: 1 });
      try {
        const client = createTesseraClient(ApiTokenService, { baseUrl: once.url, protocol });
        assert.equal((await client.createToken({ accountId: "a", description: "d" })).token, "t0k3n");
        assert.deepEqual(once.state, { streams: 2, handled: 1 });
      } finally {
        await once.close();
      }
      const twice = await refusingServer({ refuse: 2 });
      try {
        const err = await rejection(createTesseraClient(ApiTokenService, { baseUrl: twice.url, protocol }).createToken({ accountId: "a", description: "d" }));
        assert.equal(err.code, Code.Unavailable);
        assert.deepEqual(twice.state, { streams: 2, handled: 0 });
      } finally {
        await twice.close();
      }
      const reset = await refusingServer({ reset: 1 });
      try {
        await rejection(createTesseraClient(ApiTokenService, { baseUrl: reset.url, protocol }).createToken({ accountId: "a", description: "d" }));
        assert.deepEqual(reset.state, { streams: 1, handled: 1 });
      } finally {
        await reset.close();
      }
    });

    it(`over ${protocol}: a server-streaming call (Health.Watch) whose stream is refused is sent once more, nothing having been received; refused twice, it fails UNAVAILABLE, not INTERNAL`, async () => {
      const health = (url: string) => createTesseraClient(Health, { baseUrl: url, protocol });
      const once = await refusingServer({ refuse: 1 });
      try {
        const statuses: HealthCheckResponse_ServingStatus[] = [];
        for await (const m of health(once.url).watch({})) statuses.push(m.status);
        assert.deepEqual([statuses, once.state], [[HealthCheckResponse_ServingStatus.SERVING], { streams: 2, handled: 1 }]);
      } finally {
        await once.close();
      }
      const twice = await refusingServer({ refuse: 2 });
      try {
        const err = await rejection((async () => { for await (const _ of health(twice.url).watch({})); })());
        assert.deepEqual([Code[err.code], err.rawMessage], ["Unavailable", "the server refused the call's stream twice (REFUSED_STREAM): it was not processed"]);
        assert.deepEqual(twice.state, { streams: 2, handled: 0 });
      } finally {
        await twice.close();
      }
    });

    it(`over ${protocol}: the second attempt announces what is left of the caller's deadline, not the whole timeout again`, async () => {
      const late = await refusingServer({ refuse: 1, refuseAfterMs: 300 });
      try {
        const client = createTesseraClient(ApiTokenService, { baseUrl: late.url, protocol });
        assert.equal((await client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 2000 })).token, "t0k3n");
        assert.deepEqual([late.state, millis(late.sent[0]?.timeout)], [{ streams: 2, handled: 1 }, 2000]);
        // The call began before its first request arrived; its second left after the refusal.
        const spent = late.refusedAt[0] - late.sent[0].at;
        const left = millis(late.sent[1].timeout);
        assert.ok(left <= Math.ceil(2000 - spent) && left >= 100, `the second attempt announced ${left} ms, ${spent} ms into a 2000 ms deadline`);
      } finally {
        await late.close();
      }
    });

    it(`over ${protocol}: the second attempt carries the credentials as the credentials function gives them then (a token refreshed meanwhile), not the first attempt's`, async () => {
      const once = await refusingServer({ refuse: 1 });
      try {
        let asked = 0;
        const client = createTesseraClient(ApiTokenService, { baseUrl: once.url, protocol, credentials: () => bearer(`token-${++asked}`) });
        assert.equal((await client.createToken({ accountId: "a", description: "d" })).token, "t0k3n");
        assert.deepEqual(once.sent.map((s) => s.authorization), ["Bearer token-1", "Bearer token-2"]);
        // A call's own credential wins on each attempt.
        once.sent.length = 0;
        once.state.streams = 0;
        assert.equal((await client.createToken({ accountId: "a", description: "d" }, { headers: bearer("mine") })).token, "t0k3n");
        assert.deepEqual(once.sent.map((s) => s.authorization), ["Bearer mine", "Bearer mine"]);
      } finally {
        await once.close();
      }
    });

    it(`over ${protocol}: a call whose stream is refused after its transport's close() is not sent again (no new connection): CANCELED, and close() resolves`, async () => {
      // Refused well after the test has seen the request arrive and closed the transport.
      const late = await refusingServer({ refuse: 1, refuseAfterMs: 500 });
      try {
        const transport = createTesseraTransport({ baseUrl: late.url, protocol });
        const call = rejection(createTesseraClient(ApiTokenService, transport).createToken({ accountId: "a", description: "d" }));
        for (const started = performance.now(); late.sent.length === 0 && performance.now() - started < 2000; ) await new Promise((r) => setTimeout(r, 5));
        const closed = transport.close();
        const err = await call;
        await closed;
        assert.deepEqual([Code[err.code], err.rawMessage, late.state], ["Canceled", "the transport was closed (close()): it makes no more calls", { streams: 1, handled: 0 }]);
      } finally {
        await late.close();
      }
    });

    it(`over ${protocol}: a refused call with none of its deadline left is not sent again: DEADLINE_EXCEEDED`, async () => {
      // Refused as Tessera refuses the streams racing its close of an idle connection: the
      // second attempt needs a new one.
      const refused = await refusingServer({ refuse: 1, goAway: true });
      try {
        let asked = 0;
        const credentials = () => {
          // The second attempt's credentials take longer than the call had left, the event
          // loop held: the deadline has passed, the client's timer not yet fired.
          if (++asked === 2) for (const until = performance.now() + 300; performance.now() < until; );
          return {};
        };
        const client = createTesseraClient(ApiTokenService, { baseUrl: refused.url, protocol, credentials });
        const err = await rejection(client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 200 }));
        assert.deepEqual([err.code, err.rawMessage], [Code.DeadlineExceeded, "the operation timed out"]);
        assert.deepEqual([asked, refused.state], [2, { streams: 1, handled: 0 }]);
      } finally {
        await refused.close();
      }
    });
  }
});

/** An HTTPS server (HTTP/2, and HTTP/1.1 by ALPN) with `certificate`, on every address, answering ApiTokenService.createToken. */
async function tlsServer(certificate: TestCertificate) {
  const handler = connectNodeAdapter({ routes: (router) => router.service(ApiTokenService, { createToken: () => ({ token: "t0k3n" }) }) });
  const key = readFileSync(certificate.env.TESSERA_TLS_KEY_FILE!);
  const h2 = http2.createSecureServer({ cert: certificate.ca, key, allowHTTP1: true }, handler);
  const sockets = new Set<Socket>();
  h2.on("connection", (s: Socket) => sockets.add(s.once("close", () => sockets.delete(s))));
  await new Promise<void>((resolve) => h2.listen(0, "0.0.0.0", resolve));
  return {
    port: (h2.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        h2.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

// A certificate the client refuses fails the call before anything is sent; gRPC clients report
// it UNAVAILABLE, and the caller must learn what is wrong with the certificate.
describe("@tessera/client over TLS: a server certificate the client refuses", () => {
  let fresh: TestCertificate;
  // Valid for a year, from two years ago.
  let expired: TestCertificate;
  let ours: Awaited<ReturnType<typeof tlsServer>>;
  let old: Awaited<ReturnType<typeof tlsServer>>;
  before(async () => {
    fresh = makeTestCertificate();
    expired = makeCertificateWith(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], new Date(Date.now() - 2 * 365 * 86_400_000));
    [ours, old] = [await tlsServer(fresh), await tlsServer(expired)];
  });
  after(async () => {
    await Promise.all([ours.close(), old.close()]);
    fresh.remove();
    expired.remove();
  });

  for (const [name, variant] of [...variants, ["gRPC-Web over HTTP/2", { protocol: "grpc-web" }] as [string, Variant]]) {
    it(`over ${name}: an unknown CA, a wrong host name or an expired certificate is UNAVAILABLE, the message naming the certificate's problem; trusted, the call goes through`, async () => {
      const call = (baseUrl: string, ca?: Buffer) =>
        createTesseraClient(ApiTokenService, { baseUrl, ...variant, credentials: bearer("s3cret"), ...(ca !== undefined && { nodeOptions: { ca } }) }).createToken({ accountId: "a", description: "d" });
      const outcomes: Array<[string, string]> = [];
      for (const [baseUrl, ca] of [
        [`https://127.0.0.1:${ours.port}`, undefined],
        [`https://127.0.0.2:${ours.port}`, fresh.ca],
        [`https://127.0.0.1:${old.port}`, expired.ca],
      ] as const) {
        const err = await rejection(call(baseUrl, ca));
        assert.ok(!String(err).includes("s3cret") && !err.rawMessage.includes("s3cret"));
        outcomes.push([Code[err.code], err.rawMessage]);
      }
      assert.deepEqual(outcomes, [
        ["Unavailable", "TLS: the server's certificate was refused: self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT)"],
        ["Unavailable", "TLS: the server's certificate was refused: Hostname/IP does not match certificate's altnames: IP: 127.0.0.2 is not in the cert's list: 127.0.0.1 (ERR_TLS_CERT_ALTNAME_INVALID)"],
        ["Unavailable", "TLS: the server's certificate was refused: certificate has expired (CERT_HAS_EXPIRED)"],
      ]);
      assert.equal((await call(`https://127.0.0.1:${ours.port}`, fresh.ca)).token, "t0k3n");
    });

    it(`over ${name}: a baseUrl whose scheme is written in capitals (HTTPS://) is an https URL, as the URL parser reads it: the call goes through over TLS`, async () => {
      const client = createTesseraClient(ApiTokenService, { baseUrl: `HTTPS://127.0.0.1:${ours.port}`, ...variant, nodeOptions: { ca: fresh.ca } });
      try {
        assert.equal((await client.createToken({ accountId: "a", description: "d" })).token, "t0k3n");
      } finally {
        await client.close();
      }
    });
  }
});

/**
 * A TCP proxy to `port` whose connections can go silent: `stall()` stops forwarding on every
 * connection open (nothing passes either way, nothing is closed: a NAT or load balancer that
 * dropped them, a host that vanished); connections made after it forward.
 */
async function stallingProxy(port: number) {
  const open = new Set<{ stalled: boolean; end(): void }>();
  let connections = 0;
  const proxy = net.createServer((client) => {
    connections++;
    const upstream = net.connect(port, "127.0.0.1");
    const conn = { stalled: false, end: () => (client.destroy(), upstream.destroy()) };
    open.add(conn);
    client.on("data", (d) => void (conn.stalled || upstream.write(d)));
    upstream.on("data", (d) => void (conn.stalled || client.write(d)));
    for (const s of [client, upstream]) s.on("close", () => (open.delete(conn), conn.end())).on("error", conn.end);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    get connections() {
      return connections;
    },
    stall: () => open.forEach((c) => (c.stalled = true)),
    close: () => new Promise<void>((resolve) => (proxy.close(() => resolve()), open.forEach((c) => c.end()))),
  };
}

// A connection that dies silently answers nothing, not even a reset: without HTTP/2 PINGs a call
// on it waits for its deadline, or forever without one.
describe("@tessera/client over HTTP/2: a connection that stopped answering", () => {
  for (const [name, variant] of [
    ["gRPC", { protocol: "grpc" }],
    ["Connect", { protocol: "connect" }],
    ["Connect with GET", { protocol: "connect", useHttpGet: true }],
    ["gRPC-Web", { protocol: "grpc-web" }],
  ] as Array<[string, Partial<TesseraTransportOptions>]>) {
    it(`over ${name}: a call on it, without a deadline, fails UNAVAILABLE within pingIntervalMs + pingTimeoutMs; the next call opens a new connection; one made after the connection idled past pingIntervalMs goes through on a new one`, async () => {
      const s = await refusingServer();
      const proxy = await stallingProxy(Number(new URL(s.url).port));
      try {
        const client = createTesseraClient(ApiTokenService, { baseUrl: proxy.url, protocol: "grpc", ...variant, pingIntervalMs: 300, pingTimeoutMs: 300 });
        const call = () => client.createToken({ accountId: "a", description: "d" });
        assert.equal((await call()).token, "t0k3n");
        proxy.stall();
        const start = performance.now();
        const err = await Promise.race([rejection(call()), new Promise<string>((r) => setTimeout(() => r("still waiting after 3 s"), 3000).unref())]);
        const waited = performance.now() - start;
        assert.deepEqual(typeof err === "string" ? err : [Code[err.code], err.rawMessage], ["Unavailable", "PING timed out"]);
        assert.ok(waited < 600 + 300, `failed after ${waited} ms`);
        assert.equal((await call()).token, "t0k3n");
        assert.equal(proxy.connections, 2);
        // Idle past pingIntervalMs: the connection is checked (a PING) before the call is sent.
        proxy.stall();
        await new Promise((r) => setTimeout(r, 400));
        assert.equal((await call()).token, "t0k3n");
        assert.equal(proxy.connections, 3);
      } finally {
        await proxy.close();
        await s.close();
      }
    });
  }

  // connect-node's PING timer can fire after a session was destroyed and before its close
  // handlers stop it (connect-es issue 1795): Node's ping then throws from the timer, which would
  // end the process. The session a call used is the one the timer pings.
  it("a session the client used, once destroyed, answers a PING with ERR_HTTP2_INVALID_SESSION rather than throwing it", async () => {
    const s = await startTestServer({ store: "sqlite" });
    const builtin = createRequire(import.meta.url)("node:http2") as typeof http2;
    const connect = builtin.connect;
    const sessions: http2.ClientHttp2Session[] = [];
    builtin.connect = ((...args: Parameters<typeof http2.connect>) => {
      const session = connect(...args);
      sessions.push(session);
      return session;
    }) as typeof http2.connect;
    syncBuiltinESMExports();
    try {
      const client = createTesseraClient(Health, { baseUrl: s.url, protocol: "grpc", pingIntervalMs: 60_000, pingIdleConnection: true });
      assert.equal((await client.check({})).status, HealthCheckResponse_ServingStatus.SERVING);
      assert.equal(sessions.length, 1);
      const session = sessions[0]!;
      session.destroy();
      const answered = await new Promise<unknown>((resolve, reject) => {
        try {
          session.ping((err) => resolve(err));
        } catch (e) {
          reject(e);
        }
      });
      assert.equal((answered as NodeJS.ErrnoException).code, "ERR_HTTP2_INVALID_SESSION");
    } finally {
      builtin.connect = connect;
      syncBuiltinESMExports();
      await s.close();
    }
  });

  it("pingIntervalMs, pingTimeoutMs and pingIdleConnection that are not what they must be: a TypeError naming them", () => {
    for (const [more, message] of [
      [{ pingIntervalMs: 0 }, "pingIntervalMs: a positive number of milliseconds (Infinity: no PING)"],
      [{ pingIntervalMs: Number.NaN }, "pingIntervalMs: a positive number of milliseconds (Infinity: no PING)"],
      [{ pingTimeoutMs: -1 }, "pingTimeoutMs: a positive number of milliseconds, at most 2147483647"],
      [{ pingTimeoutMs: Infinity }, "pingTimeoutMs: a positive number of milliseconds, at most 2147483647"],
      [{ pingIdleConnection: "yes" as unknown as boolean }, "pingIdleConnection: true or false"],
    ] as const) {
      assert.throws(() => createTesseraTransport({ baseUrl: "http://127.0.0.1:1", protocol: "grpc", ...more }), { name: "TypeError", message });
    }
  });
});

/**
 * A TCP proxy to `port` whose first `unanswered` connections are taken, read and never answered
 * (a black-holed proxy, a Tessera whose event loop hung); `accepted` counts the connections.
 */
async function unansweredFirst(port: number, unanswered: number) {
  const sockets = new Set<Socket>();
  const state = { accepted: 0 };
  const proxy = net.createServer((client) => {
    sockets.add(client.on("error", () => {}));
    if (state.accepted++ < unanswered) return void client.resume();
    const upstream = net.connect(port, "127.0.0.1");
    sockets.add(upstream.on("error", () => {}));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    port: (proxy.address() as AddressInfo).port,
    state,
    close: () => {
      proxy.close();
      for (const s of sockets) s.destroy();
    },
  };
}

// A server that takes the TCP connection and then answers nothing (a Tessera whose event loop
// hung, a proxy holding its upstream) never completes the TLS handshake, and Node sets no limit
// on it: connect-node's manager awaited that connection for every call of the transport (each
// failing DEADLINE_EXCEEDED, though Tessera answered on a new connection), and close() waited
// on it for ever. No HTTP/2 byte goes out before the handshake: a call given up so was never
// sent, and goes once more, on a new connection, whatever its method (it failed UNAVAILABLE).
describe("@tessera/client over HTTP/2 with TLS: a connection whose handshake never completes", () => {
  let certificate: TestCertificate;
  let tls: Awaited<ReturnType<typeof tlsServer>>;
  before(async () => {
    certificate = makeTestCertificate();
    tls = await tlsServer(certificate);
  });
  after(async () => {
    await tls.close();
    certificate.remove();
  });

  for (const [name, variant] of [
    ["gRPC", { protocol: "grpc" }],
    ["Connect", { protocol: "connect" }],
    ["gRPC-Web", { protocol: "grpc-web" }],
  ] as Array<[string, Partial<TesseraTransportOptions>]>) {
    it(`over ${name}: is given up after pingTimeoutMs; its call (CreateToken, which has side effects), never sent, is sent once more on a new connection and answered; close() resolves`, async () => {
      const proxy = await unansweredFirst(tls.port, 1);
      try {
        const baseUrl = `https://127.0.0.1:${proxy.port}`;
        const client = createTesseraClient(ApiTokenService, { baseUrl, protocol: "grpc", ...variant, nodeOptions: { ca: certificate.ca }, pingTimeoutMs: 300 });
        const answer = await client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 3000 });
        assert.deepEqual([answer.token, proxy.state.accepted], ["t0k3n", 2]);
        assert.equal(await closedWithin2s(client.close()), "closed");
      } finally {
        proxy.close();
      }
    });

    it(`over ${name}: given up twice, the call fails UNAVAILABLE, sent once more only; the next call opens a new connection and is answered`, async () => {
      const proxy = await unansweredFirst(tls.port, 2);
      try {
        const baseUrl = `https://127.0.0.1:${proxy.port}`;
        const client = createTesseraClient(ApiTokenService, { baseUrl, protocol: "grpc", ...variant, nodeOptions: { ca: certificate.ca }, pingTimeoutMs: 300 });
        const call = () => client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 3000 });
        const err = await rejection(call());
        assert.deepEqual([Code[err.code], err.rawMessage, proxy.state.accepted], ["Unavailable", "the connection to the server was not established within pingTimeoutMs (300 ms)", 2]);
        assert.deepEqual([(await call()).token, proxy.state.accepted], ["t0k3n", 3]);
        assert.equal(await closedWithin2s(client.close()), "closed");
      } finally {
        proxy.close();
      }
    });
  }
});

/**
 * An HTTP/2 server of ApiTokenService.createToken (answered `answerAfterMs` after it is called)
 * and listTokens (answered at once), each call counted in `handled`, behind a listener that takes each connection (with `certificate`, over
 * TLS: the handshake completed, ALPN h2) and hands it to the server after the delay `delays`
 * gives it in turn, past the list at once; "never": read and never answered, no SETTINGS sent
 * (a black-holed proxy, another service on the port). `accepted` counts the connections.
 */
async function settingsDelayingServer({ delays, certificate, answerAfterMs = 0 }: { delays: Array<number | "never">; certificate?: TestCertificate; answerAfterMs?: number }) {
  const state = { accepted: 0, handled: 0 };
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(ApiTokenService, {
        async createToken() {
          state.handled++;
          if (answerAfterMs > 0) await new Promise((r) => setTimeout(r, answerAfterMs).unref());
          return { token: "t0k3n" };
        },
        listTokens() {
          state.handled++;
          return { tokens: [{ description: "listed" }] };
        },
      }),
  });
  const h2 = http2.createServer(handler);
  const sockets = new Set<Socket>();
  const take = (socket: Socket) => {
    sockets.add(socket.on("error", () => {}).once("close", () => sockets.delete(socket)));
    const delay = delays[state.accepted++] ?? 0;
    if (delay === "never") return void socket.resume();
    setTimeout(() => h2.emit("connection", socket), delay).unref();
  };
  const server =
    certificate === undefined
      ? net.createServer(take)
      : createTlsServer({ cert: certificate.ca, key: readFileSync(certificate.env.TESSERA_TLS_KEY_FILE!), ALPNProtocols: ["h2"] }, take);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `${certificate === undefined ? "http" : "https"}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** Whether `closing` resolves within 2 s: "closed", or what it still does. */
function closedWithin2s(closing: Promise<void>): Promise<string> {
  return Promise.race([closing.then(() => "closed"), new Promise<string>((r) => setTimeout(() => r("close() still waiting after 2 s"), 2000).unref())]);
}

// Node's session counts as connected once TCP (or TLS) has: a peer that takes the connection
// and never sends its SETTINGS (a black-holed proxy, another service on the port) had the calls
// sent on it wait for their deadlines, and only a PING (pingIntervalMs later) found it dead.
describe("@tessera/client over HTTP/2: a server that takes the connection and never sends its SETTINGS", () => {
  let certificate: TestCertificate;
  before(() => void (certificate = makeTestCertificate()));
  after(() => certificate.remove());

  for (const [name, variant] of [
    ["gRPC", { protocol: "grpc" }],
    ["Connect", { protocol: "connect" }],
    ["gRPC-Web", { protocol: "grpc-web" }],
  ] as Array<[string, Partial<TesseraTransportOptions>]>) {
    for (const secure of [false, true]) {
      const over = `${name} over ${secure ? "TLS" : "h2c"}`;
      const options = (url: string) => ({ baseUrl: url, protocol: "grpc" as const, ...variant, ...(secure && { nodeOptions: { ca: certificate.ca } }), pingTimeoutMs: 300 });

      it(`${over}: the connection is given up after pingTimeoutMs, its call (CreateToken, which has side effects; its request written to the connection) failing UNAVAILABLE before its deadline, not sent again; the next call opens a new connection and is answered; close() resolves`, async () => {
        const server = await settingsDelayingServer({ delays: ["never"], ...(secure && { certificate }) });
        try {
          const client = createTesseraClient(ApiTokenService, options(server.url));
          const call = () => client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 3000 });
          const err = await rejection(call());
          assert.deepEqual([Code[err.code], err.rawMessage, server.state], ["Unavailable", "the connection to the server was not established within pingTimeoutMs (300 ms)", { accepted: 1, handled: 0 }]);
          assert.equal((await call()).token, "t0k3n");
          assert.deepEqual(server.state, { accepted: 2, handled: 1 });
          assert.equal(await closedWithin2s(client.close()), "closed");
        } finally {
          await server.close();
        }
      });

      it(`${over}: a side-effect-free call (ListTokens) whose connection is given up so is sent once more on a new connection and answered`, async () => {
        const server = await settingsDelayingServer({ delays: ["never"], ...(secure && { certificate }) });
        try {
          const client = createTesseraClient(ApiTokenService, options(server.url));
          const listed = await client.listTokens({ accountId: "a" }, { timeoutMs: 3000 });
          assert.deepEqual([listed.tokens.map((t) => t.description), server.state], [["listed"], { accepted: 2, handled: 1 }]);
          assert.equal(await closedWithin2s(client.close()), "closed");
        } finally {
          await server.close();
        }
      });

      // The request left with the client's preface, before the server's SETTINGS: a server that
      // reads the connection after the client gave up on it (its event loop back) processes it.
      it(`${over}: SETTINGS that come after pingTimeoutMs: the call given up (UNAVAILABLE) is processed all the same once the server reads its connection, and is not sent again`, async () => {
        const server = await settingsDelayingServer({ delays: [600], ...(secure && { certificate }) });
        try {
          const client = createTesseraClient(ApiTokenService, options(server.url));
          const err = await rejection(client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 3000 }));
          assert.deepEqual([Code[err.code], err.rawMessage], ["Unavailable", "the connection to the server was not established within pingTimeoutMs (300 ms)"]);
          for (let i = 0; i < 40 && server.state.handled === 0; i++) await new Promise((r) => setTimeout(r, 50));
          assert.deepEqual(server.state, { accepted: 1, handled: 1 });
          assert.equal(await closedWithin2s(client.close()), "closed");
        } finally {
          await server.close();
        }
      });

      it(`${over}: SETTINGS that come late but within pingTimeoutMs: the connection is kept, its call answered after pingTimeoutMs has passed`, async () => {
        const server = await settingsDelayingServer({ delays: [100], answerAfterMs: 400, ...(secure && { certificate }) });
        try {
          const client = createTesseraClient(ApiTokenService, options(server.url));
          assert.equal((await client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 3000 })).token, "t0k3n");
          assert.deepEqual(server.state, { accepted: 1, handled: 1 });
          assert.equal(await closedWithin2s(client.close()), "closed");
        } finally {
          await server.close();
        }
      });
    }
  }

  // The caller's own createConnection (a proxy's tunnel, a socket option Node lacks) opens the
  // connections: they are bounded as the transport's own, and cut by close() alike.
  it("a createConnection of the caller's own (nodeOptions) that opens a net.Socket is bounded too: given up after pingTimeoutMs, UNAVAILABLE; the next call is answered on a new one", async () => {
    const server = await settingsDelayingServer({ delays: ["never"] });
    try {
      let opened = 0;
      const createConnection = (authority: URL) => (opened++, net.connect(Number(authority.port), authority.hostname));
      const client = createTesseraClient(ApiTokenService, { baseUrl: server.url, protocol: "grpc", nodeOptions: { createConnection }, pingTimeoutMs: 300 });
      const call = () => client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 3000 });
      const err = await rejection(call());
      assert.deepEqual([Code[err.code], err.rawMessage], ["Unavailable", "the connection to the server was not established within pingTimeoutMs (300 ms)"]);
      assert.equal((await call()).token, "t0k3n");
      assert.deepEqual([opened, server.state], [2, { accepted: 2, handled: 1 }]);
      assert.equal(await closedWithin2s(client.close()), "closed");
    } finally {
      await server.close();
    }
  });
});

// The same against Tessera: a call whose first connection was taken and never answered, before
// TLS's handshake (nothing sent) or after TCP alone (h2c: the request written to it).
describe("@tessera/client against Tessera, its first connection taken and never answered", () => {
  let certificate: TestCertificate;
  let tessera: TestServer;
  let tesseraTls: TestServer;
  before(async () => {
    certificate = makeTestCertificate();
    [tessera, tesseraTls] = await Promise.all([startTestServer(), startTestServer({ env: certificate.env })]);
  });
  after(async () => {
    await Promise.all([tessera.close(), tesseraTls.close()]);
    certificate.remove();
  });

  for (const protocol of ["grpc", "connect", "grpc-web"] as const) {
    for (const secure of [true, false]) {
      const sent = secure
        ? "over TLS, the handshake never answered: CreateToken, never sent, is sent once more on a new connection and answered; one token is made"
        : "over h2c, SETTINGS never sent: CreateToken, written to the connection, fails UNAVAILABLE and is not sent again; no token is made";
      it(`over ${protocol} ${sent}`, async () => {
        const server = secure ? tesseraTls : tessera;
        const proxy = await unansweredFirst(Number(new URL(server.url).port), 1);
        try {
          const baseUrl = `${secure ? "https" : "http"}://127.0.0.1:${proxy.port}`;
          const admin = createTesseraClient(ApiTokenService, { baseUrl, protocol, credentials: bearer(testAdminToken), pingTimeoutMs: 300, ...(secure && { nodeOptions: { ca: certificate.ca } }) });
          const accountId = uniqueName("acct");
          const outcome = await admin.createToken({ accountId, description: "d" }, { timeoutMs: 5000 }).then(
            (r) => (r.token !== "" ? "answered" : "no token"),
            (e: unknown) => [Code[ConnectError.from(e).code], ConnectError.from(e).rawMessage],
          );
          const accepted = proxy.state.accepted;
          const listed = (await admin.listTokens({ accountId }, { timeoutMs: 5000 })).tokens.length;
          assert.deepEqual(
            [outcome, accepted, listed],
            secure ? ["answered", 2, 1] : [["Unavailable", "the connection to the server was not established within pingTimeoutMs (300 ms)"], 1, 0],
          );
          assert.equal(await closedWithin2s(admin.close()), "closed");
        } finally {
          proxy.close();
        }
      });
    }
  }
});

// What the server is told of a call's deadline and cancellation, whatever the transport.
describe("@tessera/client: a call's deadline and cancellation, as the server sees them", () => {
  // Each its own server, waiting on its calls' timers (a 300 ms interceptor, then a deadline of 1 s
  // and a cancellation at 600 ms): the four transports' runs of that test pass side by side.
  const ownSignals = sideBySide(
    variants.map(([, variant]) => async () => {
      const httpVersion = variant.httpVersion ?? "2";
      const s = await refusingServer({ httpVersion, answerAfterMs: 3000 });
      try {
        const waited: number[] = [];
        const own = (headers: boolean): Interceptor[] => [
          (next) => async (req) => {
            const start = performance.now();
            await new Promise((r) => setTimeout(r, 300));
            waited.push(performance.now() - start);
            return next({ ...req, ...(headers && { header: new Headers(req.header) }), signal: new AbortController().signal });
          },
        ];
        const client = createTesseraClient(ApiTokenService, { baseUrl: s.url, ...variant, interceptors: own(true) });
        const signalOnly = createTesseraClient(ApiTokenService, { baseUrl: s.url, ...variant, interceptors: own(false) });
        const settled = (call: Promise<unknown>) => Promise.race([rejection(call), new Promise<string>((r) => setTimeout(() => r("still waiting after 2 s"), 2000).unref())]);
        const outcome = (e: ConnectError | string) => (typeof e === "string" ? e : [Code[e.code], e.rawMessage]);
        const start = performance.now();
        const late = await settled(client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 1000 }));
        const took = performance.now() - start;
        const cancelled = await settled(client.createToken({ accountId: "a", description: "d" }, { signal: AbortSignal.timeout(600) }));
        const lateToo = await settled(signalOnly.createToken({ accountId: "a", description: "d" }, { timeoutMs: 1000 }));
        assert.deepEqual(
          [outcome(late), outcome(cancelled), outcome(lateToo)],
          [["DeadlineExceeded", "the operation timed out"], ["Canceled", "The operation was aborted due to timeout"], ["DeadlineExceeded", "the operation timed out"]],
        );
        assert.ok(took < 1300, `the call failed ${took} ms into its 1000 ms deadline`);
        const left = millis(s.sent[0]?.timeout);
        assert.ok(left <= Math.ceil(1000 - waited[0]!) && left >= 100, `announced ${s.sent[0]?.timeout} after ${waited[0]} ms of a 1000 ms deadline`);
      } finally {
        await s.close();
      }
    }),
  );
  for (const [i, [name, variant]] of variants.entries()) {
    const httpVersion = variant.httpVersion ?? "2";

    it(`over ${name}: credentials that take a while are part of the call's time: its timeout header announces what is left when the request leaves`, async () => {
      const s = await refusingServer({ httpVersion });
      try {
        let waited = 0;
        const credentials = async () => {
          const start = performance.now();
          await new Promise((r) => setTimeout(r, 300));
          waited = performance.now() - start;
          return {};
        };
        const client = createTesseraClient(ApiTokenService, { baseUrl: s.url, ...variant, credentials });
        assert.equal((await client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 2000 })).token, "t0k3n");
        const left = millis(s.sent[0]?.timeout);
        assert.ok(left <= Math.ceil(2000 - waited) && left >= 100, `announced ${left} ms after ${waited} ms of a 2000 ms deadline`);
      } finally {
        await s.close();
      }
    });

    it(`over ${name}: credentials that never come (a token service that hangs) do not hold the call past its deadline or its cancellation: DEADLINE_EXCEEDED, or CANCELED with the caller's reason, and nothing is sent`, async () => {
      const s = await refusingServer({ httpVersion });
      try {
        const client = createTesseraClient(ApiTokenService, { baseUrl: s.url, ...variant, credentials: () => new Promise<never>(() => {}) });
        const settled = (call: Promise<unknown>) => Promise.race([rejection(call), new Promise<string>((r) => setTimeout(() => r("still waiting after 3 s"), 3000).unref())]);
        const late = await settled(client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 200 }));
        const cancelled = await settled(client.createToken({ accountId: "a", description: "d" }, { signal: AbortSignal.timeout(200) }));
        const outcome = (e: ConnectError | string) => (typeof e === "string" ? e : [Code[e.code], e.rawMessage]);
        assert.deepEqual([outcome(late), outcome(cancelled)], [["DeadlineExceeded", "the operation timed out"], ["Canceled", "The operation was aborted due to timeout"]]);
        assert.deepEqual(s.state, { streams: 0, handled: 0 });
      } finally {
        await s.close();
      }
    });

    // connect-es's deadline is its call's signal, and the timeout header it wrote in the call's
    // headers: an interceptor that sends the request with headers and a signal of its own (a
    // copy of the headers; a signal that does not follow the call's) keeps neither.
    it(`over ${name}: an interceptor that gives the request headers and a signal of its own, or a signal only: the call's deadline is still what the server is told (what is left of it) and still ends the call (DEADLINE_EXCEEDED at it, not when the server answers), and the caller's cancellation still cancels it`, () => ownSignals[i]!());

    // A server that crashed or restarted, or a connection cut in between, after the request
    // reached the server: gRPC clients report UNAVAILABLE ("Connection dropped"); connect-node
    // said CANCELED (as if the caller had cancelled) over HTTP/2 and ABORTED over HTTP/1.1. The
    // request may have been processed: the call is not sent again (a login, a refresh).
    it(`over ${name}: the connection lost after the request reached the server (closed, reset, closed mid-answer, or over HTTP/2 a GOAWAY with an error; a unary or a server-streaming call) fails the call UNAVAILABLE at once, and it is not sent again`, async () => {
      const outcomes: Record<string, unknown> = {};
      const calls = {
        createToken: (url: string) => createTesseraClient(ApiTokenService, { baseUrl: url, ...variant }).createToken({ accountId: "a", description: "d" }),
        "Health.Watch": async (url: string) => {
          for await (const _ of createTesseraClient(Health, { baseUrl: url, ...variant }).watch({}));
        },
      };
      const losses = [["close", "createToken"], ["reset", "createToken"], ["close mid-answer", "createToken"], ["close mid-answer", "Health.Watch"]] as Array<[Loss, keyof typeof calls]>;
      if (httpVersion === "2") losses.push(["GOAWAY with an error", "createToken"]);
      for (const [lose, call] of losses) {
        const s = await refusingServer({ httpVersion, lose });
        try {
          const err = await Promise.race([rejection(calls[call](s.url)), new Promise<string>((r) => setTimeout(() => r("still waiting after 3 s"), 3000).unref())]);
          outcomes[`${call}, ${lose}`] = [typeof err === "string" ? err : [Code[err.code], err.rawMessage], s.state];
        } finally {
          await s.close();
        }
      }
      const lost = [["Unavailable", "the connection to the server was lost before the call was answered"], { streams: 1, handled: 1 }];
      assert.deepEqual(outcomes, {
        "createToken, close": lost,
        "createToken, reset": lost,
        "createToken, close mid-answer": lost,
        "Health.Watch, close mid-answer": lost,
        ...(httpVersion === "2" && { "createToken, GOAWAY with an error": lost }),
      });
    });

    // Over HTTP/1.1, connect-node sends nothing then; over HTTP/2 it opened the stream (its
    // headers, the credentials, sent) and reset it, and a Connect server could take the empty
    // body for the request and run it.
    if (httpVersion !== "2") continue;
    // RFC 9113 8.1: a stream the server closes with NO_ERROR before its answer is complete is not
    // an answer; connect-node waited on for one (until the deadline, forever without one).
    it(`over ${name}: a stream the server closes with RST_STREAM(NO_ERROR) without answering fails the call INTERNAL at once, not at its deadline`, async () => {
      const s = await refusingServer({ httpVersion, lose: "end stream" });
      try {
        const client = createTesseraClient(ApiTokenService, { baseUrl: s.url, ...variant });
        const err = await Promise.race([rejection(client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 5000 })), new Promise<string>((r) => setTimeout(() => r("still waiting after 3 s"), 3000).unref())]);
        assert.deepEqual([typeof err === "string" ? err : [Code[err.code], err.rawMessage], s.state], [["Internal", "the server closed the call's stream without answering (RST_STREAM NO_ERROR)"], { streams: 1, handled: 1 }]);
      } finally {
        await s.close();
      }
    });

    it(`over ${name}: a call whose signal is already aborted is not sent (no request carrying its credentials, nothing run): CANCELED, with the caller's reason`, async () => {
      const s = await refusingServer({ httpVersion });
      try {
        const client = createTesseraClient(ApiTokenService, { baseUrl: s.url, ...variant, credentials: bearer("s3cret") });
        const err = await rejection(client.createToken({ accountId: "a", description: "d" }, { signal: AbortSignal.abort(new Error("the caller gave up")) }));
        assert.deepEqual([err.code, err.rawMessage], [Code.Canceled, "the caller gave up"]);
        await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(s.state, { streams: 0, handled: 0 });
      } finally {
        await s.close();
      }
    });
  }
});

// connect-es's clients give a server-streaming call's loop no way to end the call: a loop left
// early (a break, a throw) left the stream open, held by Tessera (one of its
// TESSERA_MAX_OPEN_STREAMS) and keeping the caller's process alive, until its deadline or for
// ever (Health.Watch runs until the caller ends it).
describe("@tessera/client: a server-streaming call whose loop is left early", () => {
  let server: TestServer;
  before(async () => (server = await startTestServer()));
  after(() => server.close());

  for (const [name, variant] of variants) {
    it(`over ${name}: leaving the loop (a break, a throw) cancels the call: Tessera holds no stream for it`, async () => {
      const streamsOpen = async () => value(await scrape(`${server.url}/metrics`), "tessera_streams_open");
      const health = createTesseraClient(Health, { baseUrl: server.url, ...variant });
      for await (const m of health.watch({})) {
        assert.equal(m.status, HealthCheckResponse_ServingStatus.SERVING);
        break;
      }
      await assert.rejects(
        (async () => {
          for await (const _ of health.watch({})) throw new Error("the caller's own failure");
        })(),
        { message: "the caller's own failure" },
      );
      const started = performance.now();
      while ((await streamsOpen()) !== 0 && performance.now() - started < 2000) await new Promise((r) => setTimeout(r, 20));
      const open = await streamsOpen();
      assert.equal(open, 0, `${open} streams still held by Tessera 2 s after their loops were left`);
    });
  }
});

// A proxy, or a web server's single-page-app fallback, in front of Tessera that answers a call
// with a page: HTTP 200, text/html. gRPC clients (grpc-go; connect-es's gRPC transport) fail
// such an answer UNKNOWN, naming the content type; the gRPC-Web transport read the page as frames,
// "!doc" of "<!doctype" a message's length (RESOURCE_EXHAUSTED, "message size 560230243").
describe("@tessera/client: an answer that is not the protocol's (HTTP 200, text/html)", () => {
  let tessera: TestServer;
  let page: { type: string; body: Buffer };
  let servers: Array<{ url: string; close: () => Promise<void> }>;
  before(async () => {
    tessera = await startTestServer();
    // Tessera's own page: GET /docs, its API reference.
    const res = await fetch(`${tessera.url}/docs`);
    assert.equal(res.status, 200);
    page = { type: res.headers.get("content-type")!, body: Buffer.from(await res.arrayBuffer()) };
    assert.equal(page.type, "text/html; charset=utf-8");
    servers = await Promise.all((["1.1", "2"] as const).map((v) => pageServer(v)));
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await tessera.close();
  });

  /** A server (h2c, or HTTP/1.1) answering every request with Tessera's page. */
  async function pageServer(httpVersion: "1.1" | "2") {
    const serve = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
      req.resume();
      (res as http.ServerResponse).writeHead(200, { "content-type": page.type, "content-length": page.body.length }).end(page.body);
    };
    return listening(httpVersion === "2" ? http2.createServer(serve) : http.createServer(serve));
  }

  const cases: Array<[string, Variant]> = [
    ...variants,
    ["gRPC-Web over HTTP/2", { protocol: "grpc-web" }],
    ["gRPC-Web JSON over HTTP/1.1", { protocol: "grpc-web", httpVersion: "1.1", useBinaryFormat: false }],
  ];
  for (const [name, variant] of cases) {
    it(`over ${name}: a unary and a server-streaming call fail UNKNOWN, naming the content type received, not the page; Tessera itself answers`, async () => {
      const direct = createTesseraClient(KeyService, { baseUrl: tessera.url, ...variant });
      assert.ok((await direct.getJwks({})).keys.length > 0, "Tessera answers the call");
      const baseUrl = servers[variant.httpVersion === "1.1" ? 0 : 1]!.url;
      const failures = [
        await rejection(createTesseraClient(KeyService, { baseUrl, ...variant }).getJwks({})),
        await rejection(
          (async () => {
            for await (const _ of createTesseraClient(Health, { baseUrl, ...variant }).watch({ service: "" })) assert.fail("no message is read from the page");
          })(),
        ),
      ];
      assert.deepEqual(
        failures.map((e) => [Code[e.code], e.rawMessage]),
        [
          ["Unknown", "unsupported content type text/html; charset=utf-8"],
          ["Unknown", "unsupported content type text/html; charset=utf-8"],
        ],
      );
    });
  }
});

// gRPC-Web's text form (application/grpc-web-text: the frames in base64), which a browser's
// client may ask for and a proxy (Envoy's grpc_web filter) may answer with: connect-es reads
// only binary frames, and read the base64 as frames. The client never asks for it; such an
// answer is refused as other content types are.
describe("@tessera/client: a gRPC-Web answer in the text form (application/grpc-web-text)", () => {
  let tessera: TestServer;
  let textServer: { url: string; close: () => Promise<void> };
  before(async () => {
    tessera = await startTestServer();
    // Tessera's own gRPC-Web answer to GetJwks, its frames sent in base64.
    const res = await fetch(`${tessera.url}/tessera.key.v1.KeyService/GetJwks`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto" },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    assert.equal(res.headers.get("content-type"), "application/grpc-web+proto");
    const text = Buffer.from(await res.arrayBuffer()).toString("base64");
    const serve = (req: http.IncomingMessage, res: http.ServerResponse) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/grpc-web-text+proto" }).end(text);
    };
    textServer = await listening(http.createServer(serve));
  });
  after(async () => {
    await textServer.close();
    await tessera.close();
  });

  it("over gRPC-Web over HTTP/1.1: a unary and a server-streaming call fail UNKNOWN, naming the content type received, as other content types do", async () => {
    const variant = { protocol: "grpc-web", httpVersion: "1.1" } as const;
    assert.ok((await createTesseraClient(KeyService, { baseUrl: tessera.url, ...variant }).getJwks({})).keys.length > 0, "Tessera answers the call");
    const failures = [
      await rejection(createTesseraClient(KeyService, { baseUrl: textServer.url, ...variant }).getJwks({})),
      await rejection(
        (async () => {
          for await (const _ of createTesseraClient(Health, { baseUrl: textServer.url, ...variant }).watch({ service: "" })) assert.fail("no message is read");
        })(),
      ),
    ];
    assert.deepEqual(
      failures.map((e) => [Code[e.code], e.rawMessage]),
      [
        ["Unknown", "unsupported content type application/grpc-web-text+proto"],
        ["Unknown", "unsupported content type application/grpc-web-text+proto"],
      ],
    );
  });
});

// What a caller of the package meets when the server (or something in between) answers what
// Tessera never would, and what a caller's own mistake must not leak.
describe("@tessera/client against a broken or hostile server", () => {
  /** An HTTP/2 server whose ApiTokenService.createToken answers a token of `tokenBytes` characters after `delayMs`. */
  async function server(tokenBytes: number, delayMs = 0) {
    const handler = connectNodeAdapter({
      routes: (router) =>
        router.service(ApiTokenService, {
          async createToken() {
            await new Promise((r) => setTimeout(r, delayMs));
            return { token: "t".repeat(tokenBytes) };
          },
        }),
    });
    const h2 = http2.createServer(handler);
    const sessions = new Set<http2.ServerHttp2Session>();
    h2.on("session", (s) => sessions.add(s.once("close", () => sessions.delete(s))));
    await new Promise<void>((resolve) => h2.listen(0, "127.0.0.1", resolve));
    return {
      url: `http://127.0.0.1:${(h2.address() as AddressInfo).port}`,
      close: () =>
        new Promise<void>((resolve) => {
          h2.close(() => resolve());
          for (const s of sessions) s.destroy();
        }),
    };
  }

  it("a call's own headers with a value a header cannot carry: the call fails naming the header, without the value", async () => {
    const secret = "s3cret\nx-injected: 1";
    for (const headers of [{ authorization: `Bearer ${secret}` }, [["authorization", `Bearer ${secret}`]] as [string, string][]]) {
      const keys = createTesseraClient(KeyService, { baseUrl: "http://127.0.0.1:1", protocol: "connect" });
      const err = await rejection(keys.getJwks({}, { headers }));
      assert.equal(err.rawMessage, 'headers: the "authorization" header\'s value has a line break or control character');
      assert.ok(!String(err).includes("s3cret") && !err.message.includes("s3cret") && !String(err.cause).includes("s3cret"));
    }
  });

  it("retryAfterSeconds: whole seconds rounded up; a negative delay is undefined; a delay of more than a day is a day", () => {
    const after = (seconds: bigint, nanos = 0) =>
      retryAfterSeconds(new ConnectError("locked", Code.ResourceExhausted, undefined, [{ desc: RetryInfoSchema, value: { retryDelay: { seconds, nanos } } }]));
    assert.deepEqual(
      [after(30n), after(0n, 500_000_000), after(2n, 1), after(-5n), after(0n, -1), after(9_223_372_036_854_775_807n), after(86_401n), after(0n)],
      [30, 1, 3, undefined, undefined, 86_400, 86_400, 0],
    );
  });

  for (const protocol of ["grpc", "connect", "grpc-web"] as const) {
    it(`over ${protocol}: an answer larger than readMaxBytes (4 MiB unless set) is RESOURCE_EXHAUSTED, not read whole; one under it is taken`, async () => {
      const big = await server(5 * 1024 * 1024);
      try {
        const err = await rejection(createTesseraClient(ApiTokenService, { baseUrl: big.url, protocol }).createToken({ accountId: "a", description: "d" }));
        assert.equal(err.code, Code.ResourceExhausted);
        const roomy = createTesseraClient(ApiTokenService, { baseUrl: big.url, protocol, readMaxBytes: 8 * 1024 * 1024 });
        assert.equal((await roomy.createToken({ accountId: "a", description: "d" })).token.length, 5 * 1024 * 1024);
      } finally {
        await big.close();
      }
    });

    it(`over ${protocol}: a timeout beyond 99,999,999 ms (what grpc-timeout holds; 2^31 ms and more, beyond a Node timer) is the longest one, not one that fails at once`, async () => {
      const slow = await server(8, 50);
      try {
        for (const client of [
          createTesseraClient(ApiTokenService, { baseUrl: slow.url, protocol, defaultTimeoutMs: 2 ** 31 }),
          createTesseraClient(ApiTokenService, { baseUrl: slow.url, protocol, defaultTimeoutMs: 100_000_000 }),
          createTesseraClient(ApiTokenService, { baseUrl: slow.url, protocol }),
        ]) {
          assert.equal((await client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 2 ** 40 })).token, "tttttttt");
          assert.equal((await client.createToken({ accountId: "a", description: "d" }, { timeoutMs: 172_800_000 })).token, "tttttttt");
          assert.equal((await client.createToken({ accountId: "a", description: "d" })).token, "tttttttt");
        }
      } finally {
        await slow.close();
      }
    });
  }

  it("a call's timeoutMs that is not a number (NaN) fails naming it, unsent; not DEADLINE_EXCEEDED at once", async () => {
    const s = await refusingServer();
    try {
      for (const protocol of ["grpc", "connect"] as const) {
        const client = createTesseraClient(ApiTokenService, { baseUrl: s.url, protocol, defaultTimeoutMs: 5000 });
        const err = await rejection(client.createToken({ accountId: "a", description: "d" }, { timeoutMs: Number.NaN }));
        assert.deepEqual([err.code, err.rawMessage], [Code.InvalidArgument, "timeoutMs: a number of milliseconds"]);
        assert.ok(err.cause instanceof TypeError);
      }
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(s.state, { streams: 0, handled: 0 });
    } finally {
      await s.close();
    }
  });

  // A caller's own mistake fails the call as any other failure does: a ConnectError, whose code
  // says it is the caller's (connect-es's Headers, and the checks before them, threw a TypeError
  // for the call's own headers and timeout; credentials failed UNKNOWN).
  it("a call's own mistake (a header value or name no header can carry, as credentials or as its own headers; a NaN timeoutMs) fails the call with a ConnectError, INVALID_ARGUMENT, naming the problem, the TypeError its cause", async () => {
    const keys = (more: Partial<TesseraTransportOptions> = {}) => createTesseraClient(KeyService, { baseUrl: "http://127.0.0.1:1", protocol: "connect", ...more });
    const outcomes: unknown[] = [];
    for (const call of [
      () => keys({ credentials: { authorization: "Bearer s3cret\nx" } }).getJwks({}),
      () => keys({ credentials: { "bad name": "x" } }).getJwks({}),
      () => keys().getJwks({}, { headers: { authorization: "Bearer s3cret\nx" } }),
      () => keys().getJwks({}, { headers: { "bad name": "x" } }),
      () => keys().getJwks({}, { timeoutMs: Number.NaN }),
      () => keys({ credentials: () => undefined as never }).getJwks({}),
      () => keys({ credentials: async () => "Bearer s3cret" as never }).getJwks({}),
    ]) {
      try {
        await call();
        outcomes.push("sent");
      } catch (e) {
        outcomes.push(e instanceof ConnectError ? [Code[e.code], e.rawMessage, e.cause instanceof TypeError] : `${(e as Error).name}: ${(e as Error).message}`);
      }
    }
    assert.deepEqual(outcomes, [
      ["InvalidArgument", 'credentials: the "authorization" header\'s value has a line break or control character', true],
      ["InvalidArgument", "credentials: a header name is not a token (RFC 9110 5.1); it is not shown, as it may be a value", true],
      ["InvalidArgument", 'headers: the "authorization" header\'s value has a line break or control character', true],
      ["InvalidArgument", "headers: a header name is not a token (RFC 9110 5.1); it is not shown, as it may be a value", true],
      ["InvalidArgument", "timeoutMs: a number of milliseconds", true],
      ["InvalidArgument", "credentials: the function gave no headers (an object of header names and values, an array of [name, value] pairs, or a Headers)", true],
      ["InvalidArgument", "credentials: the function gave no headers (an object of header names and values, an array of [name, value] pairs, or a Headers)", true],
    ]);
  });

  it("a defaultTimeoutMs or readMaxBytes that is not a positive number, or credentials that are neither headers nor a function, is a TypeError naming it", () => {
    for (const [more, message] of [
      [{ credentials: "Bearer s3cret" as never }, "credentials: headers (an object of header names and values, an array of [name, value] pairs, or a Headers) or a function giving them"],
      [{ credentials: null as never }, "credentials: headers (an object of header names and values, an array of [name, value] pairs, or a Headers) or a function giving them"],
      [{ defaultTimeoutMs: -1 }, "defaultTimeoutMs: a positive number of milliseconds"],
      [{ defaultTimeoutMs: Number.NaN }, "defaultTimeoutMs: a positive number of milliseconds"],
      [{ readMaxBytes: 0 }, "readMaxBytes: a positive whole number of bytes"],
      [{ readMaxBytes: 1.5 }, "readMaxBytes: a positive whole number of bytes"],
    ] as const) {
      assert.throws(() => createTesseraTransport({ baseUrl: "http://127.0.0.1:1", protocol: "connect", ...more }), { name: "TypeError", message });
    }
  });
});
