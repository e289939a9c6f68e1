// Seed 002 over gRPC (@grpc/grpc-js) and Connect (connect-node, JSON and binary): the same
// methods, credentials in metadata/headers, and the same errors as gRPC/Connect codes.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { UserTokenService, type BumpResponse, type LogoutResponse, type LoginResponse } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { ManualClock } from "../../src/core/clock.js";
import { GrpcJsClient, connectClient, connectError } from "../support/clients.js";
import { startTestServer, storesUnderTest, testClientId, type TestServer } from "../support/server.js";
import { UUID, basic, bearer, createUser, password, sessionAccessToken, storedToken, uniqueEmail } from "./support.js";

for (const store of storesUnderTest()) {
  describe(`UserTokenService over gRPC and Connect (${store})`, function () {
    let server: TestServer;
    let grpcClient: GrpcJsClient<typeof UserTokenService>;
    const clock = new ManualClock(Date.parse("2026-04-01T08:00:00.000Z"));
    before(async () => {
      server = await startTestServer({ store, clock });
      grpcClient = new GrpcJsClient(UserTokenService, server.url);
    });
    after(async () => {
      grpcClient?.close();
      await server?.close();
    });

    describe("gRPC (@grpc/grpc-js)", () => {
      it("Login with Basic metadata answers a UserToken; Bump and Logout take it as Bearer", async () => {
        const user = await createUser(server);
        const expiry = new Date(clock.now().getTime() + 3_600_000);
        const login = await grpcClient.call("Login", { note: "grpc", expirationTime: timestampFromDate(expiry) }, basic(user.login, password));
        assert.equal(login.error, undefined, login.error?.message);
        // GrpcJsClient's result type loses the output message type: name it here.
        const token = login.message as LoginResponse;
        assert.match(token.token, UUID);
        assert.equal(token.note, "grpc");
        assert.equal(timestampDate(token.expirationTime!).getTime(), expiry.getTime());
        assert.equal(timestampDate(token.creationTime!).getTime(), clock.now().getTime());
        assert.equal(token.enabled, true);
        assert.equal(token.version, 0);
        assert.equal(token.lastUsageTime, undefined);

        clock.advance(1_000);
        const bump = await grpcClient.call("Bump", {}, bearer(token.token));
        assert.equal(bump.error, undefined, bump.error?.message);
        assert.equal(timestampDate((bump.message as BumpResponse).lastLoginTime!).getTime(), clock.now().getTime());

        const logout = await grpcClient.call("Logout", {}, bearer(token.token));
        assert.equal(logout.error, undefined);
        assert.equal((logout.message as LogoutResponse).success, true);
        const after = await grpcClient.call("Bump", {}, bearer(token.token));
        assert.equal(after.error?.code, grpc.status.UNAUTHENTICATED);
      });

      it("maps the errors: bad password UNAUTHENTICATED, bad input INVALID_ARGUMENT, expired UNAUTHENTICATED", async () => {
        const user = await createUser(server);
        const wrong = await grpcClient.call("Login", {}, basic(user.login, "definitely wrong"));
        assert.equal(wrong.error?.code, grpc.status.UNAUTHENTICATED);
        assert.equal(wrong.error?.details, "invalid login or password");
        const noPassword = await grpcClient.call("Login", {}, basic(user.login, ""));
        assert.equal(noPassword.error?.code, grpc.status.INVALID_ARGUMENT);
        const past = await grpcClient.call("Login", { expirationTime: timestampFromDate(new Date(clock.now().getTime() - 1)) }, basic(user.login, password));
        assert.equal(past.error?.code, grpc.status.INVALID_ARGUMENT);
        assert.match(past.error?.details ?? "", /expirationTime must be in the future/);
        const outOfRange = await grpcClient.call("Login", { expirationTime: { seconds: 253402300800n * 10n, nanos: 0 } }, basic(user.login, password));
        assert.equal(outOfRange.error?.code, grpc.status.INVALID_ARGUMENT);
        assert.match(outOfRange.error?.details ?? "", /expirationTime/);

        const soon = await grpcClient.call("Login", { expirationTime: timestampFromDate(new Date(clock.now().getTime() + 2_000)) }, basic(user.login, password));
        assert.equal(soon.error, undefined);
        clock.advance(2_000);
        const expired = await grpcClient.call("Bump", {}, bearer((soon.message as LoginResponse).token));
        assert.equal(expired.error?.code, grpc.status.UNAUTHENTICATED);
        assert.match(expired.error?.details ?? "", /expired/);
      });

      it("refuses a session access token as a user token", async () => {
        const user = await createUser(server);
        const access = await sessionAccessToken(server, user.login);
        const res = await grpcClient.call("Bump", {}, { ...bearer(access), "x-koms-clientid": testClientId });
        assert.equal(res.error?.code, grpc.status.UNAUTHENTICATED);
      });
    });

    for (const binary of [false, true]) {
      describe(`Connect (${binary ? "binary" : "JSON"})`, () => {
        it("Login, Bump and Logout; the token stops working after Logout", async () => {
          const client = connectClient(UserTokenService, server.url, { binary });
          const user = await createUser(server);
          let cacheControl: string | null = null;
          const token = await client.login({}, { headers: basic(user.login, password), onHeader: (h) => (cacheControl = h.get("cache-control")) });
          assert.match(token.token, UUID);
          assert.equal(token.note, undefined);
          assert.equal(token.expirationTime, undefined);
          assert.equal(token.version, 0);
          assert.equal(cacheControl, "no-store");
          const bump = await client.bump({}, { headers: bearer(token.token) });
          assert.equal(timestampDate(bump.lastLoginTime!).getTime(), clock.now().getTime());
          assert.equal((await storedToken(server, token.token)).lastUsedAt?.getTime(), clock.now().getTime());
          assert.deepEqual((await client.logout({}, { headers: bearer(token.token) })).success, true);
          const err = await connectError(client.bump({}, { headers: bearer(token.token) }));
          assert.equal(err.code, Code.Unauthenticated);
        });

        it("unknown login and wrong password give the same Unauthenticated error", async () => {
          const client = connectClient(UserTokenService, server.url, { binary });
          const user = await createUser(server);
          const wrong = await connectError(client.login({}, { headers: basic(user.login, "not the password") }));
          const unknown = await connectError(client.login({}, { headers: basic(uniqueEmail("ghost"), password) }));
          assert.equal(wrong.code, Code.Unauthenticated);
          assert.equal(unknown.code, Code.Unauthenticated);
          assert.equal(unknown.rawMessage, wrong.rawMessage);
        });
      });
    }

    it("Connect JSON on the wire uses the document's names (version a number, RFC 3339 times)", async () => {
      const user = await createUser(server);
      const res = await fetch(`${server.url}/tessera.usertoken.v1.UserTokenService/Login`, {
        method: "POST",
        headers: { "content-type": "application/json", ...basic(user.login, password) },
        body: JSON.stringify({ note: "wire", expirationTime: "2099-01-01T00:00:00Z" }),
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).sort(), ["creationTime", "enabled", "expirationTime", "note", "token", "version"]);
      assert.equal(body.version, 0);
      assert.equal(body.expirationTime, "2099-01-01T00:00:00Z");
    });
  });
}
