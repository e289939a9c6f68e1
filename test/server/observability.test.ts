// Every request has an id: the caller's `x-request-id` when it is sane, else a new UUID. It comes
// back as the `x-request-id` response header on every protocol and is in every log line written
// while the request is served. An unexpected error is logged once, with the RPC, that id and the
// stack — never what the error's message quoted — and the caller sees a bare INTERNAL.
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import net from "node:net";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import Database from "better-sqlite3";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { connectClient, GrpcJsClient, rest } from "../support/clients.js";
import { decodedBody, tesseraDetails } from "../support/error-details.js";
import { startTestServer, testAdminToken, type TestServer } from "../support/server.js";
import { bearer } from "../support/clients.js";
import { clientIdHeader, createApiToken, createAuthenticationToken, loginUserToken, password, signUp, startSession, uniqueEmail, UUID } from "../support/users.js";


interface LogLine {
  msg: string;
  level: string;
  requestId?: string;
  procedure?: string;
  code?: string;
  error?: string;
  stack?: string;
}

const parsed = (server: TestServer, from = 0): LogLine[] => server.logs.slice(from).map((l) => JSON.parse(l) as LogLine);

describe("request ids", function () {
  this.timeout(20_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server?.close());

  /** The rpc log line of the call with this request id. */
  const rpcLine = (requestId: string) => parsed(server).filter((l) => l.msg === "rpc" && l.requestId === requestId);

  it("REST: a new UUID comes back as x-request-id and names the call's log line", async () => {
    const r = await rest(server.url, "GET", "/jwt/version");
    assert.equal(r.status, 200);
    const id = r.headers.get("x-request-id") ?? "";
    assert.match(id, UUID);
    assert.deepEqual(rpcLine(id).map((l) => l.procedure), ["tessera.jwt.v1.JwtService/GetVersion"]);
  });

  it("Connect: a sane x-request-id from the caller is kept", async () => {
    const res = await fetch(`${server.url}/tessera.jwt.v1.JwtService/GetVersion`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "lb-7f3a.42:req/1" },
      body: "{}",
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-request-id"), "lb-7f3a.42:req/1");
    assert.deepEqual(rpcLine("lb-7f3a.42:req/1").map((l) => l.procedure), ["tessera.jwt.v1.JwtService/GetVersion"]);
  });

  it("gRPC (@grpc/grpc-js): the id is in the response metadata", async () => {
    const client = new GrpcJsClient(JwtService, server.url);
    try {
      const r = await client.call("GetVersion", {}, { "x-request-id": "grpc-call-1" });
      assert.equal(r.error, undefined);
      assert.deepEqual(r.header?.get("x-request-id"), ["grpc-call-1"]);
      assert.equal(rpcLine("grpc-call-1").length, 1);
    } finally {
      client.close();
    }
  });

  it("gRPC-Web: the id is a response header", async () => {
    let id: string | null = null;
    const client = createClient(JwtService, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    await client.getVersion({}, { onHeader: (h) => (id = h.get("x-request-id")) });
    assert.match(id ?? "", UUID);
    assert.equal(rpcLine(id!).length, 1);
  });

  it("an x-request-id that is not sane (a space, 129 characters, two values) is replaced by a new UUID", async () => {
    for (const sent of ["two words", "a".repeat(129), "<script>"]) {
      const r = await rest(server.url, "GET", "/jwt/version", { headers: { "x-request-id": sent } });
      assert.match(r.headers.get("x-request-id") ?? "", UUID, sent);
    }
    const twice = await fetch(`${server.url}/jwt/version`, { headers: [["x-request-id", "one"], ["x-request-id", "two"]] });
    assert.match(twice.headers.get("x-request-id") ?? "", UUID);
  });

  // A refresh token (43 base64url characters) or an authentication token (32) sent in the wrong
  // header was kept: quoted back, in every log line of the call, in its audit events.
  it("an x-request-id of a credential's shape (a refresh token, an authentication token, a JWT, an API token), or holding one or the admin token, is replaced by a new UUID, in the answer and the log; a UUID and 32 hex digits are kept", async () => {
    const email = uniqueEmail("request-id");
    await signUp(server, email);
    const credentials: Array<[string, string]> = [
      ["a refresh token", (await startSession(server, email)).refresh_token],
      ["an authentication token", await createAuthenticationToken(server, bearer(await loginUserToken(server, email)))],
      ["a JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW9mLWEtand0LXNlbnQtYXMtYW4taWQ"],
      ["an API token", await createApiToken(server)],
    ];
    credentials.push(["a refresh token after a prefix", `rt:${credentials[0]![1]}`], ["the admin token after a prefix", `lb-1/${testAdminToken}`]);
    for (const [name, sent] of credentials) {
      const before = server.logs.length;
      const r = await rest(server.url, "GET", "/jwt/version", { headers: { "x-request-id": sent } });
      assert.equal(r.status, 200, name);
      const id = r.headers.get("x-request-id") ?? "";
      assert.match(id, UUID, name);
      assert.deepEqual(rpcLine(id).map((l) => l.procedure), ["tessera.jwt.v1.JwtService/GetVersion"], name);
      assert.deepEqual(server.logs.slice(before).filter((l) => l.includes(sent)), [], `a log line holds ${name}`);
    }
    const client = new GrpcJsClient(JwtService, server.url);
    try {
      const [name, sent] = credentials[0]!;
      const before = server.logs.length;
      const r = await client.call("GetVersion", {}, { "x-request-id": sent });
      assert.equal(r.error, undefined);
      assert.match(String(r.header?.get("x-request-id")), UUID, `gRPC, ${name}`);
      assert.deepEqual(server.logs.slice(before).filter((l) => l.includes(sent)), [], `a log line holds ${name} (gRPC)`);
    } finally {
      client.close();
    }
    for (const kept of ["5ec7e7aa-0000-4000-8000-00000000cafe", "0af7651916cd43dd8448eb211c80319c", "lb-7f3a.42:req/1", "edge/5ec7e7aa-0000-4000-8000-00000000cafe"]) {
      const r = await rest(server.url, "GET", "/jwt/version", { headers: { "x-request-id": kept } });
      assert.equal(r.headers.get("x-request-id"), kept);
    }
  });

  // Answered by the listener before the handler (CONNECT, an Expect not met, HTTP/2.0 in
  // HTTP/1.1 syntax), the request's x-request-id was quoted back as sent, the admin token too.
  it("the listener's own answers (405 to CONNECT over HTTP/1.1 and HTTP/2, 417, 505) carry a new UUID for the admin token or a refresh token's shape", async () => {
    const refreshShaped = "Vd3dJ2nHc0uQ8b0aT1kqzYwR5xLmP7sE4fG6hJ9kL2M";
    for (const sent of [testAdminToken, refreshShaped]) {
      for (const [status, head] of [
        [405, `CONNECT localhost:443 HTTP/1.1\r\nhost: localhost:443\r\nx-request-id: ${sent}\r\n\r\n`],
        [417, `GET /jwt/version HTTP/1.1\r\nhost: x\r\nexpect: 200-ok\r\nx-request-id: ${sent}\r\n\r\n`],
        [505, `GET /jwt/version HTTP/2.0\r\nhost: x\r\nx-request-id: ${sent}\r\n\r\n`],
      ] as const) {
        const answer = await new Promise<string>((resolve, reject) => {
          const socket = net.connect(server.port, "127.0.0.1", () => socket.write(head));
          let data = "";
          socket.on("data", (b: Buffer) => (data += b.toString("latin1")));
          socket.on("close", () => resolve(data));
          socket.on("error", reject);
        });
        assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `));
        assert.match(/\r\nx-request-id: ([^\r]*)\r\n/i.exec(answer)?.[1] ?? "", UUID, `${status} to ${head.split(" ")[0]}`);
      }
      const session = http2.connect(server.url);
      try {
        const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          const stream = session.request({ ":method": "CONNECT", ":authority": "localhost:443", "x-request-id": sent });
          stream.on("response", resolve);
          stream.on("error", reject);
          stream.resume();
        });
        assert.equal(headers[":status"], 405);
        assert.match(String(headers["x-request-id"]), UUID);
      } finally {
        session.close();
      }
    }
  });

  // The admin token was looked for as the whole id or as one of its pieces split at characters
  // no token of Tessera's holds: one joined to a prefix or suffix by "-" or "_", or an admin token
  // holding "+", "/", "=" or ":" (as \`openssl rand -base64\` makes them) after any prefix, was
  // kept: in the answer, in every log line of the call, in its audit events.
  it("an x-request-id holding the admin token anywhere is replaced by a new UUID, in the answer, the listener's own answers and the log", async () => {
    const base64Token = "q7Lw+9xZ/2mKpV1e4Rt8yHs3nB0cJd6fGa5u==";
    const other = await startTestServer({ env: { TESSERA_ADMIN_TOKEN: base64Token } });
    try {
      for (const [token, url, port] of [
        [testAdminToken, server.url, server.port],
        [base64Token, other.url, other.port],
      ] as const) {
        const logs = token === testAdminToken ? server.logs : other.logs;
        for (const sent of [`rq-${token}`, `${token}_1`, `${token}1`, `rt:${token}`, `lb-1/${token}/2`, `x${token}.y`]) {
          const r = await rest(url, "GET", "/jwt/version", { headers: { "x-request-id": sent } });
          assert.equal(r.status, 200, sent);
          assert.match(r.headers.get("x-request-id") ?? "", UUID, sent);
          const answer = await new Promise<string>((resolve, reject) => {
            const socket = net.connect(port, "127.0.0.1", () => socket.write(`GET /jwt/version HTTP/1.1\r\nhost: x\r\nexpect: 200-ok\r\nx-request-id: ${sent}\r\n\r\n`));
            let data = "";
            socket.on("data", (b: Buffer) => (data += b.toString("latin1")));
            socket.on("close", () => resolve(data));
            socket.on("error", reject);
          });
          assert.match(/\r\nx-request-id: ([^\r]*)\r\n/i.exec(answer)?.[1] ?? "", UUID, `417, ${sent}`);
          assert.deepEqual(logs.filter((l) => l.includes(token)), [], `a log line holds ${sent}`);
        }
      }
      // Ids that merely share characters with it are kept.
      for (const kept of [base64Token.slice(0, -1), `a:${base64Token.slice(1)}`, "q7Lw+9xZ/2mKpV1e"]) {
        const r = await rest(other.url, "GET", "/jwt/version", { headers: { "x-request-id": kept } });
        assert.equal(r.headers.get("x-request-id"), kept);
      }
    } finally {
      await other.close();
    }
  });

  it("the probes and unknown routes answer with an id too", async () => {
    for (const path of ["/healthz", "/readyz", "/no/such/route"]) {
      const r = await rest(server.url, "GET", path);
      assert.match(r.headers.get("x-request-id") ?? "", UUID, path);
    }
  });
});

describe("unexpected errors (a user row whose emails column is not JSON)", function () {
  this.timeout(20_000);
  let server: TestServer;
  const email = uniqueEmail("corrupt");
  // What the corrupted column holds, and what V8's JSON.parse would quote in its message.
  const secret = "hunter2x";

  before(async () => {
    server = await startTestServer();
    await signUp(server, email);
    const db = new Database(join(server.config.dataDir, "tessera.db"));
    // JSON.parse: SyntaxError: Unexpected token 'h', "hunter2x" is not valid JSON
    db.prepare("UPDATE users SET emails = ? WHERE login = ?").run(secret, email);
    db.close();
  });
  after(() => server?.close());

  /** The one "unexpected error" line of the call with this id; the password and the quoted text never logged. */
  function reported(requestId: string): LogLine {
    const lines = parsed(server).filter((l) => l.requestId === requestId && l.msg === "unexpected error");
    assert.equal(lines.length, 1, `"unexpected error" lines for ${requestId}: ${JSON.stringify(lines)}`);
    const line = lines[0]!;
    assert.equal(line.level, "error");
    assert.equal(line.procedure, "tessera.session.v1.SessionService/CreateSession");
    assert.match(line.error ?? "", /^SyntaxError: /);
    assert.match(line.stack ?? "", /sqlite-users\.ts/);
    const all = server.logs.join("");
    assert.ok(!all.includes(secret), "the text the error message quoted reached the log");
    assert.ok(!all.includes(password), "the password reached the log");
    const rpc = parsed(server).filter((l) => l.requestId === requestId && l.msg === "rpc");
    assert.deepEqual(rpc.map((l) => l.code), ["internal"]);
    return line;
  }

  const login = { accountType: "traditional", email, password };

  it("REST: 500 with the generic body, logged once with the RPC, the request id and the stack", async () => {
    const r = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: { ...clientIdHeader, "x-request-id": "rest-1" } });
    assert.equal(r.status, 500);
    assert.deepEqual(decodedBody(r.body), { code: "internal", message: "internal error", details: tesseraDetails("INTERNAL") });
    assert.equal(r.headers.get("x-request-id"), "rest-1");
    reported("rest-1");
  });

  it("Connect: INTERNAL 'internal error', logged once", async () => {
    const client = connectClient(SessionService, server.url);
    const e = await client.createSession(login, { headers: { ...clientIdHeader, "x-request-id": "connect-1" } }).then(
      () => assert.fail("the call succeeded"),
      (x: unknown) => ConnectError.from(x),
    );
    assert.equal(e.code, Code.Internal);
    assert.equal(e.rawMessage, "internal error");
    reported("connect-1");
  });

  it("gRPC (@grpc/grpc-js): INTERNAL 'internal error', logged once", async () => {
    const client = new GrpcJsClient(SessionService, server.url);
    try {
      const r = await client.call("CreateSession", login, { ...clientIdHeader, "x-request-id": "grpc-1" });
      assert.equal(r.error?.code, grpc.status.INTERNAL);
      assert.equal(r.error?.details, "internal error");
      reported("grpc-1");
    } finally {
      client.close();
    }
  });

  it("gRPC-Web: INTERNAL 'internal error', logged once", async () => {
    const client = createClient(SessionService, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    const e = await client.createSession(login, { headers: { ...clientIdHeader, "x-request-id": "grpc-web-1" } }).then(
      () => assert.fail("the call succeeded"),
      (x: unknown) => ConnectError.from(x),
    );
    assert.equal(e.code, Code.Internal);
    assert.equal(e.rawMessage, "internal error");
    reported("grpc-web-1");
  });
});
