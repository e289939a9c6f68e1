// A seed 004 password change (PATCH /jwt/user) racing a deactivation of its user (DELETE
// /jwt/user) answers on MongoDB what it answers on SQLite. There the change is one conditional
// write on the user's credential epoch, which the deactivation moves: a deactivation first
// refuses the change, 401 USER_DEACTIVATED, and the password stays the old one. On MongoDB the
// change checks the deactivation's mark, then inserts its password generation; a deactivation
// between the two was not seen by the insert, which compares the generations' epoch only, and
// the change answered 200 with its new password standing beside the deactivation.
//
// Driven on the wire (support/holding-proxy.ts): the change's insert into `user_passwords` is
// held, after its check of the mark, while the deactivation is made and answered; then released.
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { behindHoldingProxy, type HoldingProxy } from "../support/holding-proxy.js";
import { bearer, rest } from "../support/clients.js";
import { storesUnderTest, type TestServer } from "../support/server.js";
import { createJwtUser, jwtLogin, otherPassword, password } from "../support/users.js";
import { assertRefused } from "../credentials/support.js";

for (const store of storesUnderTest().filter((s) => s === "mongo")) {
  describe(`store: a password change whose write a deactivation overtakes is refused as after it (${store})`, function () {
    this.timeout(60_000);
    let proxy: HoldingProxy;
    let server: TestServer;
    behindHoldingProxy({ env: {} }, (p, s) => ([proxy, server] = [p, s]));

    it("PATCH /jwt/user whose password insert is held while DELETE /jwt/user deactivates the user: 401 USER_DEACTIVATED, the old password still the user's", async () => {
      const user = await createJwtUser(server);
      const access = await jwtLogin(server, user);
      proxy.hold = ["insert\0", "user_passwords"];
      let changing: ReturnType<typeof rest> | undefined;
      try {
        changing = rest(server.url, "PATCH", "/jwt/user", { headers: bearer(access), json: { pass: otherPassword } });
        await proxy.held();
        const deleted = await rest(server.url, "DELETE", "/jwt/user", { headers: bearer(access) });
        assert.equal(deleted.status, 204, deleted.text);
      } finally {
        proxy.release();
      }
      // The answer a PATCH after the deactivation gets.
      assertRefused(await changing, 401, "the token's user is deactivated", "USER_DEACTIVATED");
      // The password is the one the deactivation found: the old one checks out (and is refused
      // as the deactivated user's), the new one is a wrong password.
      const login = (pass: string) => rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user, pass })}`);
      assertRefused(await login(password), 403, "user is deactivated", "USER_DEACTIVATED");
      assertRefused(await login(otherPassword), 401, "invalid login or password", "INVALID_CREDENTIALS");
      const stored = await server.tessera.store.users.findById(decodeJwt(access).sub!);
      assert.equal(stored?.active, false);
      assert.equal(stored?.credentialEpoch, 1, "moved by the deactivation alone");
    });
  });
}
