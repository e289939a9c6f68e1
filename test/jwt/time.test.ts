// Token lifetimes, with an injected clock, over gRPC, Connect and REST: expired and not-yet-valid
// tokens get 400 from GET /check with the reason, and stop working as credentials; an expired
// refresh token is 401, but its owner may still delete it.
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { ManualClock } from "../../src/core/clock.js";
import { Housekeeping } from "../../src/core/housekeeping.js";
import { createLogger } from "../../src/logger.js";
import { expectCode, expectOk, protocols } from "../support/api.js";
import { bearer } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { createJwtUser, password } from "../support/users.js";
import { jwtApi, type JwtApi } from "./api.js";
import { withPayload } from "./forge.js";

const start = Date.parse("2030-01-01T00:00:00Z");

for (const store of storesUnderTest()) {
  describe(`JWT lifetimes (${store})`, function () {
    const clock = new ManualClock(start);
    let server: TestServer;
    let user: string;
    before(async () => {
      server = await startTestServer({ store, clock, env: { TESSERA_ACCESS_TOKEN_TTL_SECONDS: "60", TESSERA_REFRESH_TOKEN_TTL_SECONDS: "3600" } });
      user = await createJwtUser(server);
    });
    after(async () => {
      await server?.close();
    });
    // Each test issues its tokens at `start` and moves the clock from there.
    beforeEach(() => clock.set(start));

    for (const protocol of protocols) {
      describe(`over ${protocol}`, () => {
        let api: JwtApi;
        before(() => {
          api = jwtApi(protocol, server.url);
        });
        after(() => api.close());

        const login = async () => expectOk(await api.getToken({ user, pass: password })).text;

        it("an access token works until exp, then GET /check says it expired (400) and it is no credential", async () => {
          const token = await login();
          clock.set(start + 59_000);
          expectOk(await api.check({ access_token: token }));
          clock.set(start + 60_000);
          expectCode(await api.check({ access_token: token }), "invalid_argument", "token expired", "TOKEN_EXPIRED");
          expectOk(await api.getUser({}, bearer(token)), 204);
          expectCode(await api.getRefreshToken({}, bearer(token)), "unauthenticated", "token expired", "TOKEN_EXPIRED");
        });

        // The signature is checked before any claim (jose's order): an expired token whose
        // signature or payload was changed is answered as tampered, never as expired.
        it("an expired token with a changed signature or payload is an invalid token (400 INVALID_TOKEN), not an expired one", async () => {
          const token = await login();
          clock.set(start + 60_000);
          const [h, p, s] = token.split(".");
          const flipped = `${h}.${p}.${s!.slice(0, 10)}${s![10] === "A" ? "B" : "A"}${s!.slice(11)}`;
          expectCode(await api.check({ access_token: flipped }), "invalid_argument", "invalid token signature", "INVALID_TOKEN");
          expectCode(await api.check({ access_token: withPayload(token, (c) => ({ ...c, user: "admin" })) }), "invalid_argument", "invalid token signature", "INVALID_TOKEN");
          expectCode(await api.check({ access_token: token }), "invalid_argument", "token expired", "TOKEN_EXPIRED");
        });

        it("a token whose nbf is more than 5 s ahead of the clock is not yet valid (400), also once it was verified", async () => {
          const token = await login();
          clock.set(start - 6_000);
          expectCode(await api.check({ access_token: token }), "invalid_argument", "token not yet valid", "TOKEN_NOT_YET_VALID");
          clock.set(start);
          expectOk(await api.check({ access_token: token }));
          // Once verified (and remembered), the time checks still apply.
          clock.set(start - 6_000);
          expectCode(await api.check({ access_token: token }), "invalid_argument", "token not yet valid", "TOKEN_NOT_YET_VALID");
        });

        it("a token whose nbf is up to 5 s ahead (issued a moment ago by an instance whose clock runs ahead) is valid", async () => {
          const token = await login();
          clock.set(start - 5_000);
          expectOk(await api.check({ access_token: token }));
          expectOk(await api.getRefreshToken({}, bearer(token)));
        });

        it("a refresh token works until its own exp; an expired one is 401, but its owner may still delete it", async () => {
          const access = await login();
          const refresh = expectOk(await api.getRefreshToken({}, bearer(access))).text;
          clock.set(start + 3_599_000);
          expectOk(await api.getToken({ user: refresh }));
          clock.set(start + 3_600_000);
          expectCode(await api.getToken({ user: refresh }), "unauthenticated", "invalid refresh token: token expired", "TOKEN_EXPIRED");
          const fresh = await login();
          expectOk(await api.deleteRefreshToken({ refresh_token: refresh }, bearer(fresh)), 204);
        });

        it("deleting an expired refresh token is accepted after housekeeping has dropped its record too", async () => {
          const access = await login();
          const refresh = expectOk(await api.getRefreshToken({}, bearer(access))).text;
          // Housekeeping deletes it a minute after its expiry (CLOCK_STEP_MS).
          clock.set(start + 3_661_000);
          await new Housekeeping({ store: server.tessera.store, clock, logger: createLogger("silent") }).runOnce();
          assert.equal(await server.tessera.store.jwtRefreshTokens.findByJti(decodeJwt(refresh).jti!), null);
          const fresh = await login();
          expectOk(await api.deleteRefreshToken({ refresh_token: refresh }, bearer(fresh)), 204);
          // Still only its owner's: another user's expired token is not.
          const other = await createJwtUser(server);
          const otherAccess = expectOk(await api.getToken({ user: other, pass: password })).text;
          expectCode(await api.deleteRefreshToken({ refresh_token: refresh }, bearer(otherAccess)), "invalid_argument", "refresh_token is not a refresh token of this user", "TOKEN_NOT_FOUND");
        });
      });
    }
  });
}
