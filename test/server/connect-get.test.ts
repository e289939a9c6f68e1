// Connect GET: every method without side effects is declared `idempotency_level =
// NO_SIDE_EFFECTS` and answers HTTP GET (connect-node's `useHttpGet`, or a plain URL), with cache
// headers that match: the public keys and the discovery document cacheable, everything else
// (token checks, a user's data) `no-store`. Methods that write (a token minted, spent or
// revoked, a last-used time recorded) take POST only.
import assert from "node:assert/strict";
import diagnostics from "node:diagnostics_channel";
import { fromBinary } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel as Idempotency } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ApiTokenService } from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { AuthenticationTokenService } from "../../gen/tessera/authtoken/v1/authentication_token_pb.js";
import { GetVersionResponseSchema, JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { KeyService } from "../../gen/tessera/key/v1/key_pb.js";
import { SessionService, UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { raw } from "../hostile/support.js";
import { rest } from "../support/clients.js";
import { RestH2c } from "../support/rest-h2c.js";
import { decodedBody, tesseraDetails } from "../support/error-details.js";
import { startTestServer, testAdminToken, testClientId, type TestServer } from "../support/server.js";
import { packageVersion } from "../../src/project-files.js";

const services = [SessionService, UserService, ApiTokenService, UserTokenService, AuthenticationTokenService, JwtService, KeyService];
const password = "violet-kettle-harbour-29";

/** The side-effect-free methods, and the Cache-Control each answers with. */
const readOnly: Record<string, string> = {
  "tessera.session.v1.SessionService/GetSession": "no-store",
  "tessera.session.v1.UserService/GetUser": "no-store",
  "tessera.apitoken.v1.ApiTokenService/ListTokens": "no-store",
  "tessera.jwt.v1.JwtService/Check": "no-store",
  "tessera.jwt.v1.JwtService/GetPublicKey": "public, no-cache",
  "tessera.jwt.v1.JwtService/GetUser": "no-store",
  "tessera.jwt.v1.JwtService/GetVersion": "public, max-age=60",
  "tessera.key.v1.KeyService/GetJwks": "public, max-age=300",
  // Without TESSERA_PUBLIC_URL its jwks_uri follows the request's Host: the caller's cache alone.
  "tessera.key.v1.KeyService/GetOpenIdConfiguration": "private, max-age=300",
};

/** A Connect GET URL: the request message as JSON in the query. */
const getUrl = (base: string, path: string, message: object = {}) =>
  `${base}/${path}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(message))}`;

describe("server: Connect GET for the methods without side effects", () => {
  let server: TestServer;
  let jwt: string;
  let session: string;
  before(async () => {
    server = await startTestServer();
    await rest(server.url, "POST", "/jwt/user", { json: { user: "getter", pass: password } });
    jwt = (await rest(server.url, "GET", `/jwt/token?user=getter&pass=${password}`)).text;
    const headers = { "x-koms-clientid": testClientId };
    await rest(server.url, "POST", "/user", { headers, json: { email: "getter@example.com", password } });
    session = (await rest(server.url, "POST", "/session", { headers, json: { account_type: "traditional", email: "getter@example.com", password } })).body.access_token;
  });
  after(async () => server.close());

  it("exactly these methods are declared NO_SIDE_EFFECTS", () => {
    const declared = services.flatMap((s) => s.methods.filter((m) => m.idempotency === Idempotency.NO_SIDE_EFFECTS).map((m) => `${s.typeName}/${m.name}`));
    assert.deepEqual(declared.sort(), Object.keys(readOnly).sort());
  });

  const credentials = (path: string): Record<string, string> => {
    if (path.startsWith("tessera.session.v1.")) return { "x-koms-clientid": testClientId, authorization: `Bearer ${session}` };
    if (path.startsWith("tessera.apitoken.v1.")) return { authorization: `Bearer ${testAdminToken}` };
    if (path.startsWith("tessera.jwt.v1.JwtService/GetUser") || path.startsWith("tessera.jwt.v1.JwtService/Check")) return { authorization: `Bearer ${jwt}` };
    return {};
  };

  for (const [path, cacheControl] of Object.entries(readOnly)) {
    it(`GET ${path}: 200, Cache-Control: ${cacheControl}`, async () => {
      const message = path.endsWith("ListTokens") ? { account_id: "acct-1" } : {};
      const res = await fetch(getUrl(server.url, path, message), { headers: credentials(path) });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(res.headers.get("content-type"), "application/json");
      assert.equal(res.headers.get("cache-control"), cacheControl);
    });
  }

  it("connect-node with useHttpGet sends GET, and gets the answer", async () => {
    // What went on the wire: node:http's own report of each request it started (once per
    // request object: Node may report a GET's start twice).
    const requests = new Set<{ method: string; path: string }>();
    const seen = (m: unknown) => void requests.add((m as { request: { method: string; path: string } }).request);
    diagnostics.subscribe("http.client.request.start", seen);
    try {
      const transport = createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", useHttpGet: true });
      const claims = await createClient(JwtService, transport).check({}, { headers: { authorization: `Bearer ${jwt}` } });
      assert.equal(claims.claims?.user, "getter");
      const keys = await createClient(KeyService, transport).getJwks({});
      assert.equal(keys.keys.length, 2, "the signing key and the published next key");
    } finally {
      diagnostics.unsubscribe("http.client.request.start", seen);
    }
    const sent = [...requests].map((r) => `${r.method} ${r.path.split("?", 1)[0]}`);
    assert.deepEqual(sent, ["GET /tessera.jwt.v1.JwtService/Check", "GET /tessera.key.v1.KeyService/GetJwks"]);
  });

  it("a method that writes refuses GET (405): a token minted, a last-used time recorded", async () => {
    for (const path of ["tessera.jwt.v1.JwtService/GetToken", "tessera.jwt.v1.JwtService/GetRefreshToken", "tessera.apitoken.v1.ApiTokenService/Authenticate", "tessera.usertoken.v1.UserTokenService/Bump", "tessera.authtoken.v1.AuthenticationTokenService/GetToken"]) {
      const res = await fetch(getUrl(server.url, path));
      assert.equal(res.status, 405, path);
    }
  });

  // RFC 9110 15.5.6: a 405 carries Allow. connect-es answered a method an RPC does not take with
  // a bare 405: no Allow, no body.
  for (const [method, path, allow] of [
    ["GET", "tessera.jwt.v1.JwtService/GetToken", "POST"],
    ["PUT", "tessera.jwt.v1.JwtService/GetVersion", "POST, GET"],
    ["DELETE", "tessera.session.v1.SessionService/GetSession", "POST, GET"],
    ["PATCH", "grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "POST"],
  ] as const) {
    it(`${method} on ${path}: 405 METHOD_NOT_ALLOWED, Allow: ${allow}`, async () => {
      const res = await fetch(method === "GET" ? getUrl(server.url, path) : `${server.url}/${path}`, { method, ...(method !== "GET" && { headers: { "content-type": "application/json" }, body: "{}" }) });
      const text = await res.text();
      assert.equal(res.status, 405, text);
      assert.equal(res.headers.get("allow"), allow);
      assert.equal(res.headers.get("content-type"), "application/json");
      assert.deepEqual(decodedBody(JSON.parse(text) as { code: string; message: string; details: unknown }), {
        code: "unimplemented",
        message: `${method} is not allowed on /${path}`,
        details: tesseraDetails("METHOD_NOT_ALLOWED"),
      });
    });
  }

  // connect-es answered a content type, or a Connect GET's encoding, that no protocol of the
  // method takes with a bare 415: no body saying what was refused.
  const version = "/tessera.jwt.v1.JwtService/GetVersion";
  for (const [name, method, query, type, message] of [
    ["GET without encoding", "GET", "?connect=v1&message=%7B%7D", undefined, `no encoding query parameter on ${version}: a Connect GET takes encoding=json or encoding=proto`],
    ["GET with encoding=xml", "GET", "?connect=v1&encoding=xml&message=%7B%7D", undefined, `unsupported encoding "xml" on ${version}: a Connect GET takes encoding=json or encoding=proto`],
    ["POST of text/plain", "POST", "", "text/plain", `unsupported content type "text/plain" on ${version}`],
    ["POST of application/grpc+xml", "POST", "", "application/grpc+xml", `unsupported content type "application/grpc+xml" on ${version}`],
    ["POST without a content type", "POST", "", undefined, `no content type on ${version}`],
  ] as const) {
    it(`${name}: 415 UNSUPPORTED_MEDIA_TYPE naming it`, async () => {
      // fetch gives a string body text/plain unless told otherwise: send bytes.
      const res = await fetch(`${server.url}${version}${query}`, { method, ...(method === "POST" && { headers: type ? { "content-type": type } : {}, body: new Uint8Array([0x7b, 0x7d]) }) });
      const text = await res.text();
      assert.equal(res.status, 415, text);
      assert.equal(res.headers.get("content-type"), "application/json");
      assert.deepEqual(decodedBody(JSON.parse(text) as { code: string; message: string; details: unknown }), {
        code: "invalid_argument",
        message,
        details: tesseraDetails("UNSUPPORTED_MEDIA_TYPE"),
      });
    });
  }

  // connect-es decodes `message` with protobuf-es's base64Decode, which throws a plain Error on a
  // character outside the alphabet, and on a last group of one character (a message cut short, or
  // one character after a padding): that was a 500 `internal`, unlogged, for a client's mistake.
  // So was any of them with the parameter's name percent-encoded (`ba%73e64=1`), which
  // URLSearchParams decodes as connect-es reads it.
  for (const [message, base64] of [
    ["!!!", "base64"],
    ["e30*", "base64"],
    ["%7B%7D", "base64"],
    ["A", "base64"],
    ["e30AA", "base64"],
    ["e3%3D0", "base64"],
    ["e30*", "ba%73e64"],
    ["%7B%7D", "%62%61%73%65%36%34"],
  ] as const) {
    it(`${base64}=1 with a message that is not base64 (${JSON.stringify(message)}): 400 invalid_argument, MALFORMED_REQUEST`, async () => {
      const res = await fetch(`${server.url}/tessera.jwt.v1.JwtService/GetVersion?connect=v1&encoding=json&${base64}=1&message=${message}`);
      const text = await res.text();
      assert.equal(res.status, 400, text);
      assert.equal(res.headers.get("content-type"), "application/json");
      assert.deepEqual(decodedBody(JSON.parse(text) as { code: string; message: string; details: unknown }), {
        code: "invalid_argument",
        message: "the message query parameter is not base64 (base64=1)",
        details: tesseraDetails("MALFORMED_REQUEST"),
      });
    });
  }

  // Without base64=1, connect-es read `message` with URLSearchParams, which turns bytes that are
  // no UTF-8 into U+FFFD: JSON that is no UTF-8 was accepted (changed), where a POST body with
  // the same bytes is INVALID_ARGUMENT.
  for (const [name, escaped, bytes] of [
    ["a lone 0xFF in a string", "%7B%22a%22%3A%22%FF%22%7D", Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])],
    ["an overlong encoding of '/'", "%7B%22a%22%3A%22%C0%AF%22%7D", Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d])],
    ["a cut UTF-8 sequence, + for a space", "%7B%22a%22%3A+%22%E2%82%22%7D", Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x20, 0x22, 0xe2, 0x82, 0x22, 0x7d])],
  ] as const) {
    it(`JSON message that is no UTF-8 (${name}): 400 invalid_argument, as the same bytes in a POST body`, async () => {
      const post = await fetch(`${server.url}/tessera.jwt.v1.JwtService/GetVersion`, { method: "POST", headers: { "content-type": "application/json" }, body: bytes });
      const get = await fetch(`${server.url}/tessera.jwt.v1.JwtService/GetVersion?connect=v1&encoding=json&message=${escaped}`);
      const text = await get.text();
      assert.equal(get.status, 400, text);
      assert.equal(get.headers.get("content-type"), "application/json");
      const expected = { code: "invalid_argument", message: "The encoded data was not valid for encoding utf-8", details: tesseraDetails("MALFORMED_REQUEST") };
      assert.deepEqual(decodedBody(JSON.parse(text) as { code: string; message: string; details: unknown }), expected);
      assert.equal(post.status, 400);
      assert.deepEqual(decodedBody((await post.json()) as { code: string; message: string; details: unknown }), expected);
    });
  }

  it("JSON message that is UTF-8 text, percent-encoded (an escaped name, + for a space): read as sent", async () => {
    const res = await fetch(`${server.url}/tessera.apitoken.v1.ApiTokenService/ListTokens?connect=v1&encoding=json&m%65ssage=%7B%22account_id%22%3A+%22acct-%C3%A9%22%7D`, { headers: credentials("tessera.apitoken.v1.ApiTokenService/ListTokens") });
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(await res.json(), { tokens: [] });
  });

  it("binary message (encoding=proto) percent-encoded without base64: its bytes are parsed as sent", async () => {
    // GetVersionRequest with an unknown field 1 holding one byte, 0xFF: URLSearchParams made it
    // EF BF BD, and the message no longer parsed (400).
    const res = await fetch(`${server.url}/tessera.jwt.v1.JwtService/GetVersion?connect=v1&encoding=proto&message=%0A%01%FF`);
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get("content-type"), "application/proto");
  });

  // The Connect protocol takes an omitted compression as identity, and connect-go an empty one as
  // well (it reads the first value, "" either way); connect-es answered 501 (unknown compression "").
  for (const [name, query] of [
    ["compression=", "connect=v1&encoding=json&message=%7B%7D&compression="],
    ["compression with no =", "connect=v1&encoding=json&message=%7B%7D&compression"],
    ["compression= first, then compression=gzip", "connect=v1&encoding=json&compression=&compression=gzip&message=%7B%7D"],
    ["compression= with a base64 message", "connect=v1&encoding=json&base64=1&compression=&message=e30"],
    ["compression= with a binary message", "connect=v1&encoding=proto&base64=1&compression=&message="],
  ] as const) {
    it(`an empty compression is identity (${name}): 200 over HTTP/1.1 and h2c`, async () => {
      const path = `/tessera.jwt.v1.JwtService/GetVersion?${query}`;
      const expectedType = query.includes("encoding=proto") ? "application/proto" : "application/json";
      const h1 = await fetch(server.url + path);
      assert.equal(h1.status, 200, await h1.clone().text());
      assert.equal(h1.headers.get("content-type"), expectedType);
      const h2c = new RestH2c(server.url);
      try {
        const h2 = await h2c.request("GET", path);
        assert.equal(h2.status, 200, h2.text);
        assert.equal(h2.headers.get("content-type"), expectedType);
        if (expectedType === "application/json") {
          const version = (await h1.json()) as { version: string };
          assert.equal(typeof version.version, "string");
          assert.deepEqual(h2.body, version);
        }
      } finally {
        h2c.close();
      }
    });
  }

  it("an empty compression on JwtService/Check: the token in the message is read (200 with its claims)", async () => {
    const h2c = new RestH2c(server.url);
    try {
      const path = `/tessera.jwt.v1.JwtService/Check?connect=v1&encoding=json&compression=&message=${encodeURIComponent(JSON.stringify({ access_token: jwt }))}`;
      for (const res of [await rest(server.url, "GET", path), await h2c.request("GET", path)]) {
        assert.equal(res.status, 200, res.text);
        assert.equal((res.body as { claims: { user: string } }).claims.user, "getter");
      }
    } finally {
      h2c.close();
    }
  });

  it("base64=1 with a message that is not base64, on a method that writes: 405 as before (the method is checked first)", async () => {
    const res = await fetch(`${server.url}/tessera.jwt.v1.JwtService/GetToken?connect=v1&encoding=json&base64=1&message=!!!`);
    assert.equal(res.status, 405);
  });

  it("base64=1 takes standard and URL-safe base64, padded or not, as connect-es decodes it", async () => {
    const get = (message: string, encoding: "json" | "proto") =>
      fetch(`${server.url}/tessera.jwt.v1.JwtService/GetVersion?connect=v1&encoding=${encoding}&base64=1&message=${message}`);
    // {} in JSON, unpadded, padded and with its padding percent-encoded: the version.
    for (const message of ["e30", "e30=", "e30%3D"]) {
      const res = await get(message, "json");
      assert.deepEqual([res.status, res.headers.get("content-type"), await res.json()], [200, "application/json", { version: packageVersion }], message);
    }
    // A GetVersionRequest in binary (an empty field 1, unknown to it): the version in binary.
    const binary = await get("CgA", "proto");
    assert.deepEqual([binary.status, binary.headers.get("content-type")], [200, "application/proto"]);
    assert.equal(fromBinary(GetVersionResponseSchema, new Uint8Array(await binary.arrayBuffer())).version, packageVersion);
    // An unterminated JSON object, decoded from base64 and then refused as JSON: 400, not a 500.
    const unterminated = await get("eyJ9", "json");
    assert.equal(unterminated.status, 400);
    assert.deepEqual(decodedBody((await unterminated.json()) as { code: string; message: string; details: unknown }), {
      code: "invalid_argument",
      message: "cannot decode message tessera.jwt.v1.GetVersionRequest from JSON: not valid JSON",
      details: tesseraDetails("MALFORMED_REQUEST"),
    });
  });

  it("the REST answers carry the same Cache-Control: a token by GET is never stored", async () => {
    const token = await rest(server.url, "GET", `/jwt/token?user=getter&pass=${password}`);
    assert.equal(token.status, 200);
    assert.equal(token.headers.get("cache-control"), "no-store");
    const refresh = await rest(server.url, "GET", "/jwt/refresh_token", { headers: { authorization: `Bearer ${jwt}` } });
    assert.equal(refresh.status, 200);
    assert.equal(refresh.headers.get("cache-control"), "no-store");
    const check = await rest(server.url, "GET", "/jwt/check", { headers: { authorization: `Bearer ${jwt}` } });
    assert.equal(check.headers.get("cache-control"), "no-store");
    assert.equal((await rest(server.url, "GET", "/.well-known/jwks.json")).headers.get("cache-control"), "public, max-age=300");
    assert.equal((await rest(server.url, "GET", "/jwt/pubkey")).headers.get("cache-control"), "public, no-cache");
    assert.equal((await rest(server.url, "GET", "/jwt/version")).headers.get("cache-control"), "public, max-age=60");
  });

  // A public method's handler marked its answer cacheable while the call went on past its
  // deadline (connect-timeout-ms 0): the error went out with that header, so one client could
  // have a shared cache serve everyone the error (JWKS unavailable for 5 minutes). An error
  // carries no Cache-Control, as every other error answer.
  for (const [name, url] of [
    ["Connect GET GetJwks", "/tessera.key.v1.KeyService/GetJwks?connect=v1&encoding=json&message=%7B%7D"],
    ["Connect GET GetOpenIdConfiguration", "/tessera.key.v1.KeyService/GetOpenIdConfiguration?connect=v1&encoding=json&message=%7B%7D"],
    ["Connect GET GetVersion", "/tessera.jwt.v1.JwtService/GetVersion?connect=v1&encoding=json&message=%7B%7D"],
    ["REST GET /.well-known/jwks.json", "/.well-known/jwks.json"],
    ["REST GET /.well-known/openid-configuration", "/.well-known/openid-configuration"],
    ["REST GET /jwt/version", "/jwt/version"],
  ] as const) {
    it(`an error is never cacheable: ${name} past its deadline (connect-timeout-ms 0) is 504 with Cache-Control: no-store`, async () => {
      const res = await fetch(`${server.url}${url}`, { headers: { "connect-timeout-ms": "0" } });
      const body = (await res.json()) as { code: string };
      assert.equal(res.status, 504);
      assert.equal(body.code, "deadline_exceeded");
      assert.equal(res.headers.get("cache-control"), "no-store");
    });
  }
});

// A Connect GET answer is compressed when the request's Accept-Encoding allows it (connect-es,
// answers of 1 KiB or more), and the public ones are cacheable: without `Vary: Accept-Encoding`
// a shared cache could serve the gzip variant to a client that never asked for it.
describe("server: Connect GET answers vary with Accept-Encoding", () => {
  let server: TestServer;
  // A long public URL makes the discovery document larger than 1 KiB: it is compressed.
  before(async () => {
    server = await startTestServer({ env: { TESSERA_PUBLIC_URL: `https://auth.example.com/${"x".repeat(600)}` } });
  });
  after(async () => server.close());

  for (const [name, acceptEncoding, contentEncoding] of [
    ["gzip asked: the gzip variant", "gzip", "gzip"],
    ["nothing asked: the identity variant", "identity", null],
  ] as const) {
    it(`${name}, with Vary: Accept-Encoding`, async () => {
      const res = await raw(server.url, "GET", "/tessera.key.v1.KeyService/GetOpenIdConfiguration?connect=v1&encoding=json&message=%7B%7D", { "accept-encoding": acceptEncoding });
      assert.equal(res.status, 200);
      assert.equal(res.headers["cache-control"], "public, max-age=300");
      assert.equal(res.headers["content-encoding"], contentEncoding ?? undefined);
      assert.equal(res.headers.vary, "Accept-Encoding");
    });
  }
});
