// Errors never quote a secret the request carried. A JSON request message that does not parse is
// refused naming the problem, not with V8's JSON.parse message, which quotes the text around
// the error (`Unexpected token ''', ..."password":'hunter2'}" is not valid JSON`): a password
// sent in single quotes, or a token sent unquoted, would come back in the error, which clients,
// proxies and their logs keep. Over Connect (POST and GET), gRPC-Web and gRPC, all in JSON.
import assert from "node:assert/strict";
import http2 from "node:http2";
import { grpcFrame, grpcStatus, grpcWebTrailer, h2request, raw } from "../hostile/support.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";

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
    assert.equal((JSON.parse(r.text) as { message: string }).message, "cannot decode message tessera.session.v1.CreateSessionRequest from JSON: string");
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
