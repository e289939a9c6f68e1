// Seed 003 over gRPC (@grpc/grpc-js) and Connect: the same methods and errors as gRPC/Connect
// codes, the session cookie as a response header, and single use under concurrency.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import {
  AuthenticationTokenService,
  type AuthenticationToken,
  type ExchangeTokenResponse,
} from "../../gen/tessera/authtoken/v1/authentication_token_pb.js";
import { ManualClock } from "../../src/core/clock.js";
import { GrpcJsClient, connectClient, connectError } from "../support/clients.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { bearer, createUser, loginToken, sessionAccessToken } from "../user-token/support.js";

for (const store of storesUnderTest()) {
  describe(`AuthenticationTokenService over gRPC and Connect (${store})`, function () {
    let server: TestServer;
    let grpcClient: GrpcJsClient<typeof AuthenticationTokenService>;
    const clock = new ManualClock(Date.parse("2026-06-01T00:00:00.000Z"));
    before(async () => {
      server = await startTestServer({ store, clock });
      grpcClient = new GrpcJsClient(AuthenticationTokenService, server.url);
    });
    after(async () => {
      grpcClient?.close();
      await server?.close();
    });

    describe("gRPC (@grpc/grpc-js)", () => {
      it("CreateToken with a user token, GetToken, then ExchangeToken without a credential", async () => {
        const user = await createUser(server);
        const token = await loginToken(server, user.login);
        const created = await grpcClient.call("CreateToken", {}, bearer(token));
        assert.equal(created.error, undefined, created.error?.message);
        // GrpcJsClient's result type loses the output message type: name it here.
        const t = (created.message as { token: AuthenticationToken }).token;
        assert.equal(t.ttl, 60);
        assert.equal(t.user, user.id);
        assert.equal(timestampDate(t.createdAt!).getTime(), clock.now().getTime());

        const read = await grpcClient.call("GetToken", { token: t.token }, bearer(token));
        assert.equal(read.error, undefined);
        assert.equal((read.message as { token: AuthenticationToken }).token.token, t.token);

        const exchanged = await grpcClient.call("ExchangeToken", { token: t.token });
        assert.equal(exchanged.error, undefined, exchanged.error?.message);
        const u = exchanged.message as ExchangeTokenResponse;
        assert.equal(u.id, user.id);
        assert.deepEqual(u.emails, [user.login]);
        assert.equal(u.firstname, undefined);

        const again = await grpcClient.call("ExchangeToken", { token: t.token });
        assert.equal(again.error?.code, grpc.status.NOT_FOUND);
        const gone = await grpcClient.call("GetToken", { token: t.token }, bearer(token));
        assert.equal(gone.error?.code, grpc.status.NOT_FOUND);
      });

      it("accepts a seed 000 session access token with its client id", async () => {
        const user = await createUser(server);
        const access = await sessionAccessToken(server, user.login);
        const created = await grpcClient.call("CreateToken", {}, { ...bearer(access), "x-koms-clientid": testClientId });
        assert.equal(created.error, undefined, created.error?.message);
        assert.equal(((created.message as { token: AuthenticationToken }).token).user, user.id);
      });

      it("maps the errors: no credential UNAUTHENTICATED, unknown or expired NOT_FOUND, malformed INVALID_ARGUMENT", async () => {
        assert.equal((await grpcClient.call("CreateToken", {})).error?.code, grpc.status.UNAUTHENTICATED);
        const user = await createUser(server);
        const token = await loginToken(server, user.login);
        assert.equal((await grpcClient.call("GetToken", { token: "unknown" }, bearer(token))).error?.code, grpc.status.NOT_FOUND);
        assert.equal((await grpcClient.call("GetToken", { token: "" }, bearer(token))).error?.code, grpc.status.INVALID_ARGUMENT);
        assert.equal((await grpcClient.call("ExchangeToken", { token: "" })).error?.code, grpc.status.INVALID_ARGUMENT);
        assert.equal((await grpcClient.call("ExchangeToken", { token: "a/b" })).error?.code, grpc.status.INVALID_ARGUMENT);
        const created = ((await grpcClient.call("CreateToken", {}, bearer(token))).message as { token: AuthenticationToken }).token;
        clock.advance(60_000);
        assert.equal((await grpcClient.call("GetToken", { token: created.token }, bearer(token))).error?.code, grpc.status.NOT_FOUND);
        assert.equal((await grpcClient.call("ExchangeToken", { token: created.token })).error?.code, grpc.status.NOT_FOUND);
      });

      it("of concurrent exchanges of one token, exactly one succeeds", async () => {
        const user = await createUser(server);
        const token = await loginToken(server, user.login);
        const created = ((await grpcClient.call("CreateToken", {}, bearer(token))).message as { token: AuthenticationToken }).token;
        const results = await Promise.all(Array.from({ length: 5 }, () => grpcClient.call("ExchangeToken", { token: created.token })));
        assert.equal(results.filter((r) => r.error === undefined).length, 1);
        assert.ok(results.filter((r) => r.error).every((r) => r.error?.code === grpc.status.NOT_FOUND));
      });
    });

    for (const binary of [false, true]) {
      describe(`Connect (${binary ? "binary" : "JSON"})`, () => {
        it("ExchangeToken answers the user and the session cookie header; the token is then used", async () => {
          const client = connectClient(AuthenticationTokenService, server.url, { binary });
          const user = await createUser(server);
          const token = await loginToken(server, user.login);
          const created = await client.createToken({}, { headers: bearer(token) });
          let setCookie: string[] = [];
          const u = await client.exchangeToken({ token: created.token!.token }, { onHeader: (h) => (setCookie = h.getSetCookie()) });
          assert.equal(u.id, user.id);
          assert.equal(setCookie.length, 1);
          assert.match(setCookie[0], /^tessera_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=86400; HttpOnly; SameSite=Lax$/);
          const err = await connectError(client.exchangeToken({ token: created.token!.token }));
          assert.equal(err.code, Code.NotFound);
          const noCredential = await connectError(client.createToken({}));
          assert.equal(noCredential.code, Code.Unauthenticated);
        });
      });
    }

    it("Connect JSON on the wire uses the document's names (created_at, _id); CreateToken wraps the token", async () => {
      const user = await createUser(server);
      const token = await loginToken(server, user.login);
      const created = await fetch(`${server.url}/tessera.authtoken.v1.AuthenticationTokenService/CreateToken`, {
        method: "POST",
        headers: { "content-type": "application/json", ...bearer(token) },
        body: "{}",
      });
      assert.equal(created.status, 200);
      const { token: t } = (await created.json()) as { token: Record<string, unknown> };
      assert.deepEqual(Object.keys(t).sort(), ["created_at", "token", "ttl", "user"]);
      const exchanged = await fetch(`${server.url}/tessera.authtoken.v1.AuthenticationTokenService/ExchangeToken`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: t.token }),
      });
      assert.equal(exchanged.status, 200);
      assert.deepEqual(await exchanged.json(), { _id: user.id, emails: [user.login] });
    });
  });
}
