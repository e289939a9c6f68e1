// JwtService over gRPC (@grpc/grpc-js) and Connect: the main flows and their codes.
import assert from "node:assert/strict";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { Code, ConnectError } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { JwtService, type GetVersionResponse } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { connectClient, GrpcJsClient } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { algNone, bearer, goodPassword, otherGoodPassword, uniqueUser } from "./support.js";

const utf8 = new TextDecoder();

// GrpcJsClient answers untyped messages: GetToken, GetRefreshToken and GetPublicKey wrap a
// google.api.HttpBody in `body`; Check and GetUser a google.protobuf.Struct in `claims`.
type Answer = { message?: unknown };
const httpBody = (r: Answer) => (r.message as { body: { contentType: string; data: Uint8Array } }).body;
const text = (r: Answer) => utf8.decode(httpBody(r).data);
const struct = (r: Answer) => (r.message as { claims?: Record<string, unknown> }).claims ?? {};

for (const store of storesUnderTest()) {
  describe(`JwtService over gRPC and Connect (${store})`, function () {
    let server: TestServer;
    let grpc: GrpcJsClient<typeof JwtService>;
    before(async () => {
      server = await startTestServer({ store });
      grpc = new GrpcJsClient(JwtService, server.url);
    });
    after(async () => {
      grpc?.close();
      await server?.close();
    });

    it("gRPC: create, login, check, refresh, revoke, change password, delete", async () => {
      const user = uniqueUser();
      assert.ok((await grpc.call("CreateUser", { user, pass: goodPassword })).message);
      assert.equal((await grpc.call("CreateUser", { user, pass: goodPassword })).error?.code, GrpcStatus.ALREADY_EXISTS);
      assert.equal((await grpc.call("CreateUser", { user: uniqueUser(), pass: "short" })).error?.code, GrpcStatus.INVALID_ARGUMENT);

      const token = await grpc.call("GetToken", { user, pass: goodPassword });
      assert.equal(httpBody(token).contentType, "text/plain; charset=utf-8");
      const access = text(token);
      assert.equal(decodeJwt(access).user, user);
      assert.equal((await grpc.call("GetToken", { user, pass: otherGoodPassword })).error?.code, GrpcStatus.UNAUTHENTICATED);

      const checked = await grpc.call("Check", { accessToken: access });
      assert.equal(struct(checked).user, user);
      assert.equal(struct(await grpc.call("Check", {}, bearer(access))).user, user);
      assert.equal((await grpc.call("Check", { accessToken: algNone(access) })).error?.code, GrpcStatus.INVALID_ARGUMENT);
      assert.equal((await grpc.call("Check", {})).error?.code, GrpcStatus.INVALID_ARGUMENT);

      assert.equal((await grpc.call("GetRefreshToken", {})).error?.code, GrpcStatus.UNAUTHENTICATED);
      const refresh = text(await grpc.call("GetRefreshToken", {}, bearer(access)));
      const derived = text(await grpc.call("GetToken", { user: refresh }));
      assert.equal(decodeJwt(derived).authentication_method, "refresh_token");
      assert.equal((await grpc.call("GetRefreshToken", { accessToken: derived })).error?.code, GrpcStatus.PERMISSION_DENIED);
      assert.equal(struct(await grpc.call("GetUser", {}, bearer(derived))).user, user);
      assert.deepEqual(struct(await grpc.call("GetUser", {})), {});

      assert.ok((await grpc.call("DeleteRefreshToken", { refreshToken: refresh }, bearer(access))).message);
      assert.equal((await grpc.call("GetToken", { user: refresh })).error?.code, GrpcStatus.UNAUTHENTICATED);
      assert.equal((await grpc.call("DeleteRefreshToken", { refreshToken: access }, bearer(access))).error?.code, GrpcStatus.INVALID_ARGUMENT);

      assert.ok((await grpc.call("ChangePassword", { pass: otherGoodPassword, accessToken: access })).message);
      const fresh = text(await grpc.call("GetToken", { user, pass: otherGoodPassword }));
      // Two different tokens in one call (field and header) are refused.
      const twoTokens = await grpc.call("Check", { accessToken: fresh }, bearer(algNone(fresh)));
      assert.equal(twoTokens.error?.code, GrpcStatus.INVALID_ARGUMENT);
      assert.match(twoTokens.error!.details, /two different access tokens/);
      assert.ok((await grpc.call("DeleteUser", {}, bearer(fresh))).message);
      assert.equal((await grpc.call("Check", { accessToken: fresh })).error?.code, GrpcStatus.INVALID_ARGUMENT);
      assert.equal((await grpc.call("GetToken", { user, pass: otherGoodPassword })).error?.code, GrpcStatus.PERMISSION_DENIED);
    });

    it("gRPC: GetPublicKey is PEM text; GetVersion is the package version", async () => {
      const pem = await grpc.call("GetPublicKey", {});
      assert.equal(httpBody(pem).contentType, "text/plain; charset=utf-8");
      assert.match(text(pem), /^-----BEGIN PUBLIC KEY-----/);
      assert.match(((await grpc.call("GetVersion", {})).message as GetVersionResponse).version, /^\d+\.\d+\.\d+/);
    });

    it("Connect: login, check, GetUser and the error codes", async () => {
      const client = connectClient(JwtService, server.url);
      const user = uniqueUser();
      await client.createUser({ user, pass: goodPassword });
      const { body } = await client.getToken({ user, pass: goodPassword });
      assert.ok(body);
      assert.equal(body.contentType, "text/plain; charset=utf-8");
      const access = utf8.decode(body.data);
      const claims = (await client.check({ accessToken: access })).claims;
      assert.deepEqual(claims, decodeJwt(access));
      const viaHeader = await client.getUser({}, { headers: bearer(access) });
      assert.equal(viaHeader.claims?.user, user);
      const refresh = utf8.decode((await client.getRefreshToken({ accessToken: access })).body!.data);
      assert.equal(decodeJwt(refresh).token_type, "refresh_token");
      await assert.rejects(client.check({ accessToken: refresh }), (e) => ConnectError.from(e).code === Code.InvalidArgument);
      await assert.rejects(client.getToken({ user, pass: otherGoodPassword }), (e) => ConnectError.from(e).code === Code.Unauthenticated);
      await assert.rejects(
        client.getUser({ accessToken: access }, { headers: bearer(refresh) }),
        (e) => ConnectError.from(e).code === Code.InvalidArgument,
      );
      await client.deleteUser({ accessToken: access });
      await assert.rejects(client.getRefreshToken({ accessToken: access }), (e) => ConnectError.from(e).code === Code.Unauthenticated);
      assert.equal((await client.getUser({ accessToken: access })).claims, undefined);
    });
  });
}
