// Errors never quote a secret the request carried. A JSON request message that does not parse is
// refused naming the problem, not with V8's JSON.parse message, which quotes the text around
// the error (`Unexpected token ''', ..."password":'hunter2'}" is not valid JSON`): a password
// sent in single quotes, or a token sent unquoted, would come back in the error, which clients,
// proxies and their logs keep. Over Connect (POST and GET), gRPC-Web and gRPC, all in JSON.
import assert from "node:assert/strict";
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { HealthCheckRequestSchema } from "../../gen/health/v1/health_pb.js";
import fc from "fast-check";
import { assertProperty, grpcFrame, grpcStatus, grpcWebTrailer, h2request, raw } from "../hostile/support.js";
import { startTestServer, testAdminToken, testClientId, type TestServer } from "../support/server.js";

const secret = "hunter2-not-json";
const login = "tessera.session.v1.SessionService/CreateSession";
// A password in single quotes: not JSON, and V8 quotes the text around the quote.
const body = `{"account_type":"traditional","email":"ada@example.com","password":'${secret}'}`;
const notJson = "cannot decode message tessera.session.v1.CreateSessionRequest from JSON: not valid JSON";

describe("errors never quote a secret of the request", function () {
  this.timeout(20_000);
  let server: TestServer;
  before(async () => (server = await startTestServer()));
  after(() => server.close());

  it("Connect: a request body that is not JSON is invalid_argument \"not valid JSON\", the password not quoted", async () => {
    const r = await raw(server.url, "POST", `/${login}`, { "content-type": "application/json", "x-koms-clientid": testClientId }, body);
    assert.equal(r.status, 400, r.text);
    assert.ok(!r.text.includes("hunter2"), r.text);
    const error = JSON.parse(r.text) as { code: string; message: string };
    assert.equal(error.code, "invalid_argument");
    assert.equal(error.message, notJson);
  });

  it("Connect GET: a message that is not JSON is invalid_argument \"not valid JSON\", the token not quoted", async () => {
    const message = encodeURIComponent(`{"access_token":${secret}}`);
    const r = await raw(server.url, "GET", `/tessera.jwt.v1.JwtService/Check?connect=v1&encoding=json&message=${message}`, {});
    assert.equal(r.status, 400, r.text);
    assert.ok(!r.text.includes("hunter2"), r.text);
    assert.equal((JSON.parse(r.text) as { message: string }).message, "cannot decode message tessera.jwt.v1.CheckRequest from JSON: not valid JSON");
  });

  it("Connect: a body that is a JSON string is refused without quoting it", async () => {
    const r = await raw(server.url, "POST", `/${login}`, { "content-type": "application/json", "x-koms-clientid": testClientId }, JSON.stringify("hunter2"));
    assert.equal(r.status, 400, r.text);
    assert.ok(!r.text.includes("hunter2"), r.text);
    assert.equal((JSON.parse(r.text) as { message: string }).message, "cannot decode message tessera.session.v1.CreateSessionRequest from JSON: expected object, got string");
  });

  it("gRPC-Web (JSON): grpc-message says \"not valid JSON\", the password not quoted", async () => {
    const res = await fetch(`${server.url}/${login}`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+json", "x-grpc-web": "1", "x-koms-clientid": testClientId },
      body: grpcFrame(Buffer.from(body)),
    });
    const answer = Buffer.from(await res.arrayBuffer());
    assert.ok(!answer.includes("hunter2"), answer.toString("latin1"));
    const trailer = grpcWebTrailer(answer);
    assert.equal(trailer["grpc-status"], "3");
    assert.equal(decodeURIComponent(trailer["grpc-message"] ?? ""), notJson);
  });

  it("gRPC-Web and gRPC: a token as an RPC's method or service name, or after its path, is not quoted in grpc-message", async () => {
    const jwt = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJhZGEiLCJTRUNSRVQiOjF9.c2lnbmF0dXJlLVNFQ1JFVA";
    const service = "tessera.jwt.v1.JwtService";
    const cases: Array<[path: string, message: string]> = [
      [`/${service}/${jwt}`, `unknown method * for service ${service}`],
      [`/${service}/${testAdminToken}`, `unknown method * for service ${service}`],
      [`/${jwt}/Check`, "unknown service *"],
      [`/${service}/Check/${jwt}`, `no RPC at /${service}/*/*`],
      [`/${jwt}/x/y`, "no RPC at /*/*/*"],
      // A name is still quoted: it names the mistake.
      [`/${service}/Chek`, `unknown method Chek for service ${service}`],
    ];
    const session = http2.connect(server.url);
    try {
      for (const [path, message] of cases) {
        const res = await fetch(server.url + path, { method: "POST", headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }, body: grpcFrame(Buffer.alloc(0)) });
        const answer = Buffer.from(await res.arrayBuffer());
        for (const secret of [jwt, testAdminToken, "SECRET"]) assert.ok(!answer.includes(secret), `${path}: ${answer.toString("latin1")}`);
        const trailer = grpcWebTrailer(answer);
        assert.deepEqual([trailer["grpc-status"], decodeURIComponent(trailer["grpc-message"] ?? "")], ["12", message], path);
        const a = await h2request(session, { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" }, grpcFrame(Buffer.alloc(0)));
        assert.equal(grpcStatus(a), 12, path);
        assert.equal(decodeURIComponent(String(a.trailers["grpc-message"] ?? a.headers["grpc-message"] ?? "")), message, path);
      }
    } finally {
      session.close();
    }
  });

  // The values of request headers an error quotes (a content type, a compression's name, a
  // timeout), and a health check's service name: at most 64 characters of a header's value (256
  // of a name), control and bidirectional characters escaped, a credential's shape or a
  // configured secret not quoted (*).
  const jwtShaped = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJhZGEiLCJTRUNSRVQiOjF9.c2lnbmF0dXJlLVNFQ1JFVA";
  const long = `x-${"y".repeat(998)}`;
  const longShown = `"${long.slice(0, 64)}"... (1000 characters)`;
  // Node's client writes a header's U+0085 in UTF-8 (C2 85), which the server reads as two
  // characters (latin1): U+00C2, and U+0085, a control character.

  it("Connect: a content type or a GET's encoding refused (415) is quoted bounded and escaped, never a credential or a secret", async () => {
    const version = "/tessera.jwt.v1.JwtService/GetVersion";
    const cases: Array<[type: string, shown: string]> = [
      ["text/plain; a=\x85b", '"text/plain; a=\u00c2\\u0085b"'],
      [`text/${long}`, `"text/${long.slice(0, 59)}"... (1005 characters)`],
      [jwtShaped, "*"],
      [`text/plain; token=${jwtShaped}`, "*"],
      [testAdminToken, "*"],
      [`text/plain, ${testAdminToken}`, "*"],
      ["text/plain; x=https://ada:hunter2@example.com/", '"text/plain; x=https://ada:<hidden>@example.com/"'],
    ];
    for (const [type, shown] of cases) {
      const r = await raw(server.url, "POST", version, { "content-type": type }, "{}");
      assert.equal(r.status, 415, r.text);
      assert.equal((JSON.parse(r.text) as { message: string }).message, `unsupported content type ${shown} on ${version}`);
    }
    for (const [encoding, shown] of [[jwtShaped, "*"], [testAdminToken, "*"], [long, longShown], ["x\u202ey", '"x\\u202ey"']] as const) {
      const r = await raw(server.url, "GET", `${version}?connect=v1&message=%7B%7D&encoding=${encodeURIComponent(encoding)}`, {});
      assert.equal(r.status, 415, r.text);
      assert.equal((JSON.parse(r.text) as { message: string }).message, `unsupported encoding ${shown} on ${version}: a Connect GET takes encoding=json or encoding=proto`);
    }
  });

  it("Connect and gRPC: an unknown compression or a timeout that does not parse is quoted bounded and escaped, never a credential or a secret", async () => {
    const check = "/tessera.jwt.v1.JwtService/GetVersion";
    const unknown = (shown: string) => `unknown compression ${shown}: supported encodings are gzip,br`;
    const cases: Array<[value: string, shown: string]> = [
      ["lz\x85", '"lz\u00c2\\u0085"'],
      [long, longShown],
      [jwtShaped, "*"],
      [testAdminToken, "*"],
      [`gzip, ${testAdminToken}`, "*"],
    ];
    const session = http2.connect(server.url);
    try {
      for (const [value, shown] of cases) {
        const connect = await raw(server.url, "POST", check, { "content-type": "application/json", "content-encoding": value }, "{}");
        assert.equal(connect.status, 501, connect.text);
        assert.equal((JSON.parse(connect.text) as { message: string }).message, unknown(shown), value);
        if (!value.includes("\x85")) {
          const get = await raw(server.url, "GET", `${check}?connect=v1&encoding=json&message=%7B%7D&compression=${encodeURIComponent(value)}`, {});
          assert.equal((JSON.parse(get.text) as { message: string }).message, unknown(shown), value);
          // HTTP/2 takes no byte above 0x7e in a header's value.
          const a = await h2request(session, { ":method": "POST", ":path": check, "content-type": "application/grpc", te: "trailers", "grpc-encoding": value }, grpcFrame(Buffer.alloc(0)));
          assert.equal(grpcStatus(a), 12, value);
          assert.equal(decodeURIComponent(String(a.trailers["grpc-message"] ?? a.headers["grpc-message"] ?? "")), unknown(shown), value);
          const t = await h2request(session, { ":method": "POST", ":path": check, "content-type": "application/grpc", te: "trailers", "grpc-timeout": value }, grpcFrame(Buffer.alloc(0)));
          assert.equal(grpcStatus(t), 3, value);
          assert.equal(decodeURIComponent(String(t.trailers["grpc-message"] ?? t.headers["grpc-message"] ?? "")), `protocol error: invalid grpc timeout value: ${shown}`, value);
        }
        const timeout = await raw(server.url, "POST", check, { "content-type": "application/json", "connect-timeout-ms": value }, "{}");
        assert.equal((JSON.parse(timeout.text) as { message: string }).message, `protocol error: invalid connect timeout value: ${shown}`, value);
      }
    } finally {
      session.close();
    }
  });

  it("gRPC: a health check's unknown service name is quoted escaped, never a credential or a secret", async () => {
    const check = "/grpc.health.v1.Health/Check";
    for (const [service, shown] of [
      ["no.such\u202e.Service\u0007", "no.such\\u202e.Service\\u0007"],
      [jwtShaped, "*"],
      [testAdminToken, "*"],
      [`a ${jwtShaped}`, "*"],
    ] as const) {
      const r = await raw(server.url, "POST", check, { "content-type": "application/json" }, JSON.stringify({ service }));
      assert.equal(r.status, 404, r.text);
      assert.equal((JSON.parse(r.text) as { message: string }).message, `unknown service ${shown}`, service);
    }
  });

  it("grpc.health.v1 Check: a token or the admin token as the service's name is not quoted in NOT_FOUND (Connect, gRPC)", async () => {
    const jwt = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJhZGEiLCJTRUNSRVQiOjF9.c2lnbmF0dXJlLVNFQ1JFVA";
    const cases: Array<[service: string, message: string]> = [
      [jwt, "unknown service *"],
      [testAdminToken, "unknown service *"],
      // A name is still quoted: it names the mistake.
      ["no.such.Service", "unknown service no.such.Service"],
    ];
    const session = http2.connect(server.url);
    try {
      for (const [service, message] of cases) {
        const r = await raw(server.url, "POST", "/grpc.health.v1.Health/Check", { "content-type": "application/json" }, JSON.stringify({ service }));
        for (const secret of [jwt, testAdminToken]) assert.ok(!r.text.includes(secret), `${service}: ${r.text}`);
        assert.equal(r.status, 404, r.text);
        assert.deepEqual([(JSON.parse(r.text) as { code: string }).code, (JSON.parse(r.text) as { message: string }).message], ["not_found", message]);
        const a = await h2request(
          session,
          { ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/grpc", te: "trailers" },
          grpcFrame(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service }))),
        );
        assert.equal(grpcStatus(a), 5, service);
        assert.equal(decodeURIComponent(String(a.trailers["grpc-message"] ?? a.headers["grpc-message"] ?? "")), message, service);
        }
      } finally {
        session.close();
      }
    });

  it("HTTP/2: a method no route takes, 15 000 characters long or a credential, is quoted bounded in the 405 or 404, never whole (main port and TESSERA_METRICS_PORT)", async () => {
    // HTTP/2's :method is any token, as long as the header list allows (HTTP/1.1's parser knows
    // a few dozen methods alone).
    const long = "A".repeat(15_000);
    const methods: Array<[method: string, shown: string]> = [
      [long, `"${"A".repeat(64)}"... (15000 characters)`],
      [jwtShaped, "*"],
      [testAdminToken, "*"],
      ["PATCH", "PATCH"],
    ];
    const paths: Array<[path: string, message: (shown: string) => string]> = [
      ["/healthz", (m) => `${m} is not allowed on /healthz`],
      ["/metrics", (m) => `${m} is not allowed on /metrics`],
      ["/docs", (m) => `${m} is not allowed on /docs`],
      ["/tessera.jwt.v1.JwtService/GetVersion", (m) => `${m} is not allowed on /tessera.jwt.v1.JwtService/GetVersion`],
      ["/session", (m) => `${m} is not allowed on /session`],
      ["/api/authenticationtoken/Tk0123456789abcdefSECRET", (m) => `${m} is not allowed on /api/authenticationtoken/*`],
      ["/api/authenticationtoken/x/users", (m) => `no route for ${m} /api/authenticationtoken/*/users`],
    ];
    const metricsServer = await startTestServer({ env: { TESSERA_METRICS_PORT: "0" } });
    const ports: Array<[url: string, paths: typeof paths]> = [
      [server.url, paths],
      [`http://127.0.0.1:${metricsServer.tessera.server.metricsPort!}`, [
        ["/metrics", (m) => `${m} is not allowed on /metrics`],
        ["/healthz", (m) => `no route for ${m} /healthz: this port serves GET /metrics alone`],
      ]],
    ];
    try {
      for (const [url, cases] of ports) {
        const session = http2.connect(url);
        try {
          for (const [method, shown] of methods) {
            for (const [path, message] of cases) {
              const a = await h2request(session, { ":method": method, ":path": path });
              assert.equal(Number(a.headers[":status"]), message("").startsWith("no route") ? 404 : 405, path);
              assert.equal((JSON.parse(a.data.toString()) as { message: string }).message, message(shown), `${method.slice(0, 20)} ${url}${path}`);
            }
          }
        } finally {
          session.close();
        }
      }
    } finally {
      await metricsServer.close();
    }
  });

  it("a path of 5 001 segments is described by its first 16 and their count, not a \"*\" for each (REST 404, gRPC, TESSERA_METRICS_PORT)", async () => {
    const path = `/${"x/".repeat(5000)}x`;
    const described = `/x${"/*".repeat(15)}/... (5001 segments)`;
    const r = await raw(server.url, "GET", path, {});
    assert.equal(r.status, 404, r.text.slice(0, 300));
    assert.equal((JSON.parse(r.text) as { message: string }).message, `no route for GET ${described}`);
    const metricsServer = await startTestServer({ env: { TESSERA_METRICS_PORT: "0" } });
    const session = http2.connect(server.url);
    try {
      const m = await raw(`http://127.0.0.1:${metricsServer.tessera.server.metricsPort!}`, "GET", path, {});
      assert.equal(m.status, 404, m.text.slice(0, 300));
      assert.equal((JSON.parse(m.text) as { message: string }).message, `no route for GET ${described}: this port serves GET /metrics alone`);
      const g = await h2request(session, { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" }, grpcFrame(Buffer.alloc(0)));
      assert.equal(grpcStatus(g), 12);
      assert.equal(decodeURIComponent(String(g.trailers["grpc-message"] ?? g.headers["grpc-message"] ?? "")), `no RPC at ${described}`);
    } finally {
      session.close();
      await metricsServer.close();
    }
  });

  it("gRPC (JSON): grpc-message says \"not valid JSON\", the password not quoted", async () => {
    const session = http2.connect(server.url);
    try {
      const a = await h2request(
        session,
        { ":method": "POST", ":path": `/${login}`, "content-type": "application/grpc+json", te: "trailers", "x-koms-clientid": testClientId },
        grpcFrame(Buffer.from(body)),
      );
      assert.equal(grpcStatus(a), 3);
      const message = String(a.trailers["grpc-message"] ?? a.headers["grpc-message"] ?? "");
      assert.equal(decodeURIComponent(message), notJson);
    } finally {
      session.close();
    }
  });
});

// A value of the wrong JSON type is refused naming the field, the type it expected and the JSON
// type it got, never the value: a numeric password or PIN, or a token sent where a number was
// expected, would otherwise come back in the error (protobuf-es quotes it: "expected string,
// got 12345678901"). Over REST (each API's JSON bodies), Connect (POST and GET), gRPC-Web and
// gRPC in JSON; the log keeps none of it either.
/** A refusal: status, message, ErrorInfo reason. */
type Refusal = [status: number, message: string, reason: string];

describe("a mistyped value is refused naming the field and its JSON type, never quoting the value", function () {
  this.timeout(20_000);
  const pin = 12345678901;
  const word = "hunter2pin";
  let server: TestServer;
  before(async () => (server = await startTestServer()));
  after(() => server.close());
  afterEach(() => {
    const log = server.logs.join("\n");
    assert.ok(!log.includes(String(pin)) && !log.includes(word), log);
  });

  type Rest = [method: string, path: string, body: Record<string, unknown>, field: string, message: string];
  const stringGotNumber = (f: string) => `invalid request body: field "${f}": expected string, got number`;
  const rest: Rest[] = [
    ["POST", "/session", { account_type: "traditional", email: "ada@example.com", password: pin }, "password", stringGotNumber("password")],
    ["PUT", "/session", { refresh_token: pin }, "refresh_token", stringGotNumber("refresh_token")],
    ["POST", "/user", { email: "ada@example.com", password: pin }, "password", stringGotNumber("password")],
    ["GET", "/jwt/token", { user: "ada", pass: pin }, "pass", stringGotNumber("pass")],
    ["POST", "/jwt/user", { user: "ada", pass: pin }, "pass", stringGotNumber("pass")],
    ["PATCH", "/jwt/user", { pass: pin, access_token: "x" }, "pass", stringGotNumber("pass")],
    ["DELETE", "/jwt/refresh_token", { refresh_token: pin }, "refresh_token", stringGotNumber("refresh_token")],
    ["POST", "/v1/frontend/auth", { account_id: "a", description: pin }, "description", stringGotNumber("description")],
    ["POST", "/auth/login", { note: pin }, "note", stringGotNumber("note")],
    ["POST", "/auth/login", { note: true }, "note", 'invalid request body: field "note": expected string, got boolean'],
  ];
  for (const [method, path, body, field, message] of rest) {
    it(`REST ${method} ${path}: ${field} mistyped is 400 naming it, the value not quoted`, async () => {
      // An admin method checks the admin credential before it reads the body.
      const admin: Record<string, string> = path.startsWith("/v1/frontend/") ? { authorization: `Bearer ${testAdminToken}` } : {};
      const r = await raw(server.url, method, path, { "content-type": "application/json", "x-koms-clientid": testClientId, ...admin }, JSON.stringify(body));
      assert.equal(r.status, 400, r.text);
      assert.ok(!r.text.includes(String(pin)) && !r.text.includes(word), r.text);
      const error = JSON.parse(r.text) as { code: string; message: string };
      assert.equal(error.code, "invalid_argument");
      assert.equal(error.message, message);
    });
  }

  it("REST: a word in a number query parameter is 400 naming it, the word not quoted", async () => {
    const r = await raw(server.url, "GET", `/v1/admin/audit-events?page_size=${word}`, { authorization: `Bearer ${testAdminToken}` });
    assert.equal(r.status, 400, r.text);
    assert.ok(!r.text.includes(word), r.text);
    assert.equal((JSON.parse(r.text) as { message: string }).message, 'invalid query parameter "page_size": not a valid int32');
  });

  it("REST: a token in the path of a method the route does not take is not quoted in the 405", async () => {
    const token = "Tk0123456789abcdefSECRET";
    for (const path of [`/api/authenticationtoken/${token}`, `/api/authenticationtoken/${token}/user`]) {
      const r = await raw(server.url, "POST", path, {});
      assert.equal(r.status, 405, r.text);
      assert.ok(!r.text.includes(token), r.text);
      assert.equal((JSON.parse(r.text) as { message: string }).message, `POST is not allowed on ${path.replace(token, "*")}`);
    }
    const r = await raw(server.url, "GET", `/api/authenticationtoken/${token}/users`, {});
    assert.equal(r.status, 404, r.text);
    assert.ok(!r.text.includes(token), r.text);
    assert.equal((JSON.parse(r.text) as { message: string }).message, "no route for GET /api/authenticationtoken/*/users");
  });

  it("REST: a token with a malformed percent-escape in the path is 400 MALFORMED_PATH naming the variable, the token not quoted", async () => {
    const token = "Tk0123456789abcdefSECRET";
    const cases: Array<[method: string, path: string, message: string, headers: Record<string, string>]> = [
      ["GET", `/api/authenticationtoken/${token}%zz`, 'malformed percent-encoding in path variable "token"', {}],
      ["GET", `/api/authenticationtoken/${token}%`, 'malformed percent-encoding in path variable "token"', {}],
      ["GET", `/api/authenticationtoken/${token}%C0%AF/user`, 'malformed percent-encoding in path variable "token"', {}],
      ["GET", `/v1/frontend/auth/${token}%E2%82`, 'malformed percent-encoding in path variable "account_id"', { authorization: `Bearer ${testAdminToken}` }],
      ["POST", `/v1/admin/keys/${token}%zz:revoke`, 'malformed percent-encoding in path variable "kid"', { authorization: `Bearer ${testAdminToken}` }],
    ];
    for (const [method, path, message, headers] of cases) {
      const r = await raw(server.url, method, path, headers);
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.ok(!r.text.includes("SECRET"), r.text);
      const error = JSON.parse(r.text) as { code: string; message: string };
      assert.equal(error.code, "invalid_argument");
      assert.equal(error.message, message);
    }
  });

  it("REST: a token given as a query parameter's name, or as a path segment no route has, is not quoted in the 400 or 404", async () => {
    const jwt = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJhZGEiLCJTRUNSRVQiOjF9.c2lnbmF0dXJlLVNFQ1JFVA";
    const refresh = "SECRETabcdefghijklmnopqrstuvwxyz0123456789_";
    const uuid = "5ec7e7aa-0000-4000-8000-00000000cafe";
    const unknownParameter = "unknown query parameter (not quoted: it has the shape of a credential)";
    const cases: Array<[path: string, status: number, message: string]> = [
      [`/jwt/check?${jwt}`, 400, unknownParameter],
      [`/v1/admin/audit-events?page_size=1&${uuid}=1`, 400, unknownParameter],
      [`/${jwt}`, 404, "no route for GET /*"],
      [`/api/authenticationtoken/x/${refresh}`, 404, "no route for GET /api/authenticationtoken/*/*"],
      [`/v1/api/${uuid}`, 404, "no route for GET /v1/api/*"],
    ];
    for (const [path, status, message] of cases) {
      const r = await raw(server.url, "GET", path, path.startsWith("/v1/admin/") ? { authorization: `Bearer ${testAdminToken}` } : {});
      assert.equal(r.status, status, `${path}: ${r.text}`);
      for (const secret of [jwt, refresh, uuid, "SECRET", "cafe"]) assert.ok(!r.text.includes(secret), `${path}: ${r.text}`);
      assert.equal((JSON.parse(r.text) as { message: string }).message, message, path);
    }
    // A name is still quoted: it names the mistake.
    const r = await raw(server.url, "GET", "/jwt/check?tokn=x", {});
    assert.equal((JSON.parse(r.text) as { message: string }).message, 'unknown query parameter "tokn"');
  });

  it("REST: a password sent in a name (a name=value pair encoded as one name) or as a form that is JSON is not quoted in the 400 or 415, nor logged", async () => {
    const password = "Tr0ub4dor&3-SECRET";
    const pair = encodeURIComponent(`pass=${password}`);
    const note = '(not quoted: it holds "=", ":", a quote or a brace, as a value sent as a name does)';
    const query: Refusal = [400, `unknown query parameter ${note}`, "UNKNOWN_QUERY_PARAMETER"];
    const form: Refusal = [400, `unknown form field ${note}`, "UNKNOWN_QUERY_PARAMETER"];
    // curl -d '{...}' sends this content type: read as a form, the "&" in the password would split
    // the JSON in two names.
    const jsonAsForm: Refusal = [
      415,
      'a form body (application/x-www-form-urlencoded) that begins as JSON does, with "{" or "[": JSON is sent as application/json',
      "UNSUPPORTED_MEDIA_TYPE",
    ];
    const jsonAsQuery: Refusal = [
      400,
      'a query that begins as JSON does, with "{" or "[": its arguments are name=value pairs, and JSON is sent as a body of type application/json',
      "INVALID_QUERY_PARAMETER",
    ];
    const formType = { "content-type": "application/x-www-form-urlencoded" };
    const cases: Array<[what: string, method: string, path: string, headers: Record<string, string>, body: string | undefined, refusal: Refusal]> = [
      ["a query", "GET", `/jwt/token?user=ann&${pair}`, {}, undefined, query],
      ["a query of a JSON body's method", "POST", `/jwt/user?${pair}`, { "content-type": "application/json" }, '{"user":"ann"}', query],
      ["a form body", "POST", "/jwt/user", formType, `user=ann&${pair}`, form],
      ["a form body, pass:<password>", "POST", "/jwt/user", formType, `user=ann&pass:${encodeURIComponent(password)}`, form],
      ["a JSON text sent as the query", "GET", `/jwt/token?${encodeURIComponent(JSON.stringify({ user: "ann", pass: password }))}`, {}, undefined, jsonAsQuery],
      // Unescaped, a malformed escape in the password after its "&" and "=" made a piece of it a name.
      ["a JSON text sent as the query, unescaped", "GET", '/jwt/token?{"user":"ann","pass":"Pw&SECRET=%zz"}', {}, undefined, jsonAsQuery],
      [
        "a multipart form body",
        "POST",
        "/jwt/user",
        { "content-type": "multipart/form-data; boundary=b" },
        `--b\r\ncontent-disposition: form-data; name="user"\r\n\r\nann\r\n--b\r\ncontent-disposition: form-data; name="pass=${password}"\r\n\r\nx\r\n--b--\r\n`,
        form,
      ],
      ["a JSON text sent as a form", "POST", "/jwt/user", formType, JSON.stringify({ user: "ann", pass: password }), jsonAsForm],
      ["a JSON text sent as a form, single-quoted", "GET", "/jwt/token", formType, ` {'user':'ann','pass':'${password}'}`, jsonAsForm],
      ["a JSON array sent as a form", "POST", "/jwt/user", formType, JSON.stringify([{ user: "ann", pass: password }]), jsonAsForm],
      // curl --data-urlencode '{...}' escapes the whole text: the same JSON, escaped.
      ["a JSON text sent as a form, escaped", "POST", "/jwt/user", formType, encodeURIComponent(JSON.stringify({ user: "ann", pass: password })), jsonAsForm],
      // White space before it, escaped as a form's is ("+", "%20") or as any byte ("%0A").
      ["a JSON text after a space, escaped", "POST", "/jwt/user", formType, encodeURIComponent(` ${JSON.stringify({ user: "ann", pass: password })}`), jsonAsForm],
      ["a JSON text after a line break and a space, escaped", "POST", "/jwt/user", formType, `%0A+${encodeURIComponent(JSON.stringify({ user: "ann", pass: password }))}`, jsonAsForm],
      ["a JSON query after a space, escaped", "GET", `/jwt/token?%20${encodeURIComponent(JSON.stringify({ user: "ann", pass: password }))}`, {}, undefined, jsonAsQuery],
    ];
    for (const [what, method, path, headers, body, [status, message, reason]] of cases) {
      const r = await raw(server.url, method, path, headers, body);
      assert.equal(r.status, status, `${what}: ${r.text}`);
      assert.ok(!r.text.includes("SECRET"), `${what}: ${r.text}`);
      const error = JSON.parse(r.text) as { code: string; message: string; details: Array<{ debug: { reason?: string } }> };
      assert.equal(error.code, "invalid_argument", what);
      assert.equal(error.message, message, what);
      assert.equal(error.details[0]?.debug.reason, reason, what);
    }
    assert.deepEqual(server.logs.filter((l) => l.includes("SECRET")), []);
    // A name without "=" is still quoted: it names the mistake.
    const r = await raw(server.url, "GET", "/jwt/token?user=ann&password=x", {});
    assert.equal((JSON.parse(r.text) as { message: string }).message, 'unknown query parameter "password"');
  });

  it("REST, property-based: any password sent in a name, as a pair encoded whole, or in JSON sent as a form or as the query, is not quoted", async () => {
    const note = '(not quoted: it holds "=", ":", a quote or a brace, as a value sent as a name does)';
    // Printable ASCII, the characters that split a form ("&", "=", "+", "%") most of all.
    const password = fc
      .array(fc.oneof(fc.constantFrom("&", "=", "+", "%", ";", ":", "'", '"', " ", "#"), fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 4 })), {
        minLength: 4,
        maxLength: 12,
      })
      .map((parts) => `Pw${parts.join("")}`);
    const carrier = fc.constantFrom<[string, (pw: string) => [method: string, path: string, headers: Record<string, string>, body: string | undefined, message: string]]>(
      ["query pair", (pw) => ["GET", `/jwt/token?user=ann&${encodeURIComponent(`pass=${pw}`)}`, {}, undefined, `unknown query parameter ${note}`]],
      ["form pair", (pw) => ["POST", "/jwt/user", { "content-type": "application/x-www-form-urlencoded" }, `user=ann&${encodeURIComponent(`pass=${pw}`)}`, `unknown form field ${note}`]],
      [
        "JSON as a form",
        (pw) => [
          "POST",
          "/jwt/user",
          { "content-type": "application/x-www-form-urlencoded" },
          JSON.stringify({ user: "ann", pass: pw }),
          'a form body (application/x-www-form-urlencoded) that begins as JSON does, with "{" or "[": JSON is sent as application/json',
        ],
      ],
      [
        "JSON as the query",
        (pw) => [
          "GET",
          `/jwt/token?${encodeURIComponent(JSON.stringify({ user: "ann", pass: pw }))}`,
          {},
          undefined,
          'a query that begins as JSON does, with "{" or "[": its arguments are name=value pairs, and JSON is sent as a body of type application/json',
        ],
      ],
    );
    await assertProperty(
      fc.tuple(password, carrier),
      async ([pw, [how, request]]) => {
        const [method, path, headers, body, message] = request(pw);
        const r = await raw(server.url, method, path, headers, body);
        const at = `${how} of ${JSON.stringify(pw)}: ${r.status} ${r.text}`;
        assert.equal(r.status, how === "JSON as a form" ? 415 : 400, at);
        assert.equal((JSON.parse(r.text) as { message: string }).message, message, at);
        for (const form of [pw, JSON.stringify(pw).slice(1, -1), encodeURIComponent(pw)]) assert.ok(!r.text.includes(form), at);
      },
      100,
    );
  });

  it("REST: the admin token, of no shape Tessera hands out, given as a query parameter's name or a path segment no route has, is not quoted either", async () => {
    const cases: Array<[path: string, status: number, message: string]> = [
      [`/jwt/check?${testAdminToken}`, 400, "unknown query parameter (not quoted: it has the shape of a credential)"],
      [`/${testAdminToken}`, 404, "no route for GET /*"],
      [`/v1/${testAdminToken}`, 404, "no route for GET /v1/*"],
      [`/v1/${testAdminToken}/x`, 404, "no route for GET /v1/*/*"],
    ];
    for (const [path, status, message] of cases) {
      const r = await raw(server.url, "GET", path, {});
      assert.equal(r.status, status, `${path}: ${r.text}`);
      assert.ok(!r.text.includes(testAdminToken), `${path}: ${r.text}`);
      assert.equal((JSON.parse(r.text) as { message: string }).message, message, path);
    }
  });

  it("REST: a secret joined to a path segment no route has (after a custom verb's colon, say) is not quoted in the 404 either", async () => {
    const apiToken = `tsr_${"a".repeat(38)}`;
    const cases: Array<[method: string, path: string, message: string]> = [
      ["POST", `/v1/admin/keys:${testAdminToken}`, "no route for POST /v1/admin/*"],
      ["POST", `/v1/admin/keys:${apiToken}`, "no route for POST /v1/admin/*"],
      ["GET", `/v1/admin/audit-events:${testAdminToken}`, "no route for GET /v1/admin/*"],
      ["GET", `/token=${apiToken}`, "no route for GET /*"],
    ];
    for (const [method, path, message] of cases) {
      const r = await raw(server.url, method, path, { authorization: `Bearer ${testAdminToken}`, "content-type": "application/json" }, method === "POST" ? "{}" : undefined);
      assert.equal(r.status, 404, `${path}: ${r.text}`);
      assert.equal((JSON.parse(r.text) as { message: string }).message, message, path);
    }
    // A segment that holds none is still quoted: it names the mistake.
    const r = await raw(server.url, "POST", "/v1/admin/keys:rotat", { "content-type": "application/json" }, "{}");
    assert.equal((JSON.parse(r.text) as { message: string }).message, "no route for POST /v1/admin/keys:rotat");
  });

  const login = "tessera.session.v1.SessionService/CreateSession";
  const loginBody = JSON.stringify({ account_type: "traditional", email: "ada@example.com", password: pin });
  const passwordMessage =
    "cannot decode field tessera.session.v1.CreateSessionRequest.password from JSON: expected string, got number";

  it("Connect: a numeric password is invalid_argument naming the field, the number not quoted", async () => {
    const r = await raw(server.url, "POST", `/${login}`, { "content-type": "application/json", "x-koms-clientid": testClientId }, loginBody);
    assert.equal(r.status, 400, r.text);
    assert.ok(!r.text.includes(String(pin)), r.text);
    const error = JSON.parse(r.text) as { code: string; message: string };
    assert.equal(error.code, "invalid_argument");
    assert.equal(error.message, passwordMessage);
  });

  it("Connect: a word in a number field is invalid_argument naming the field, the word not quoted", async () => {
    const r = await raw(server.url, "POST", "/tessera.audit.v1.AuditService/ListAuditEvents", { "content-type": "application/json", authorization: `Bearer ${testAdminToken}` }, JSON.stringify({ page_size: word }));
    assert.equal(r.status, 400, r.text);
    assert.ok(!r.text.includes(word), r.text);
    assert.equal(
      (JSON.parse(r.text) as { message: string }).message,
      "cannot decode field tessera.audit.v1.ListAuditEventsRequest.page_size from JSON: expected number (int32), got string",
    );
  });

  it("Connect GET: a numeric token is invalid_argument naming the field, the number not quoted", async () => {
    const message = encodeURIComponent(JSON.stringify({ access_token: pin }));
    const r = await raw(server.url, "GET", `/tessera.jwt.v1.JwtService/Check?connect=v1&encoding=json&message=${message}`, {});
    assert.equal(r.status, 400, r.text);
    assert.ok(!r.text.includes(String(pin)), r.text);
    assert.equal(
      (JSON.parse(r.text) as { message: string }).message,
      "cannot decode field tessera.jwt.v1.CheckRequest.access_token from JSON: expected string, got number",
    );
  });

  it("gRPC-Web (JSON): a numeric password is status 3 naming the field, the number not quoted", async () => {
    const res = await fetch(`${server.url}/${login}`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+json", "x-grpc-web": "1", "x-koms-clientid": testClientId },
      body: grpcFrame(Buffer.from(loginBody)),
    });
    const answer = Buffer.from(await res.arrayBuffer());
    assert.ok(!answer.includes(String(pin)), answer.toString("latin1"));
    const trailer = grpcWebTrailer(answer);
    assert.equal(trailer["grpc-status"], "3");
    assert.equal(decodeURIComponent(trailer["grpc-message"] ?? ""), passwordMessage);
  });

  it("gRPC (JSON): a numeric password is status 3 naming the field, the number not quoted", async () => {
    const session = http2.connect(server.url);
    try {
      const a = await h2request(
        session,
        { ":method": "POST", ":path": `/${login}`, "content-type": "application/grpc+json", te: "trailers", "x-koms-clientid": testClientId },
        grpcFrame(Buffer.from(loginBody)),
      );
      assert.equal(grpcStatus(a), 3);
      const message = String(a.trailers["grpc-message"] ?? a.headers["grpc-message"] ?? "");
      assert.ok(!message.includes(String(pin)), message);
      assert.equal(decodeURIComponent(message), passwordMessage);
      // The status details repeat the message: without the value too.
      const details = Buffer.from(String(a.trailers["grpc-status-details-bin"] ?? ""), "base64");
      assert.ok(details.length > 0 && !details.includes(String(pin)), details.toString("latin1"));
    } finally {
      session.close();
    }
  });
});
