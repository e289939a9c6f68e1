// The REST success status of a method is declared with its binding
// (`tessera.options.v1.http_response`), so it is REST's alone: Connect and gRPC callers see no
// status header of any kind.
import assert from "node:assert/strict";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { bearer, connectClient, GrpcJsClient, rest } from "../support/clients.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { password, uniqueEmail, uniqueName as unique } from "../support/users.js";

describe("declared REST success statuses", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  it("POST /user (seed 000) is 201 over REST; a Connect client sees no x-http-code header", async () => {
    const res = await rest(server.url, "POST", "/user", {
      headers: { "x-koms-clientid": testClientId },
      json: { email: uniqueEmail("a"), password },
    });
    assert.equal(res.status, 201);
    assert.deepEqual(res.body, { message: "User created" });

    let headers = new Headers();
    const client = connectClient(UserService, server.url);
    const answer = await client.createUser(
      { email: uniqueEmail("b"), password },
      { headers: { "x-koms-clientid": testClientId }, onHeader: (h) => (headers = h) },
    );
    assert.equal(answer.message, "User created");
    assert.equal(headers.get("x-http-code"), null);
  });

  it("POST /jwt/user is 201 and DELETE /jwt/user 204 over REST; gRPC metadata carries no x-http-code", async () => {
    const user = unique("c");
    const created = await rest(server.url, "POST", "/jwt/user", { json: { user, pass: password } });
    assert.equal(created.status, 201);

    const grpc = new GrpcJsClient(JwtService, server.url);
    try {
      const other = unique("d");
      const answer = await grpc.call("CreateUser", { user: other, pass: password });
      assert.equal(answer.error, undefined);
      assert.ok(answer.header, "the server sent response headers");
      assert.deepEqual(answer.header.get("x-http-code"), []);
    } finally {
      grpc.close();
    }
    const token = await rest(server.url, "GET", `/jwt/token?user=${user}&pass=${encodeURIComponent(password)}`);
    assert.equal(token.status, 200);
    const deleted = await rest(server.url, "DELETE", "/jwt/user", { headers: bearer(token.text) });
    assert.equal(deleted.status, 204);
    assert.equal(deleted.text, "");
  });

  it("GET /jwt/user without a token is 204 with no body", async () => {
    const none = await rest(server.url, "GET", "/jwt/user");
    assert.equal(none.status, 204);
    assert.equal(none.text, "");
    assert.equal(none.headers.get("content-type"), null);
  });
});
