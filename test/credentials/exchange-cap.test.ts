// Seed 003's exchange under the cap on user tokens (TESSERA_MAX_USER_TOKENS_PER_USER): of
// exchanges of one authentication token racing on two instances, one starts a cookie session and
// the others withdraw the session they stored. What the others stored never counts against the
// user: their user tokens stay logged in, and the winner's cookie works.
import assert from "node:assert/strict";
import { bearer, rest, type RestResponse } from "../support/clients.js";
import { storesUnderTest } from "../support/server.js";
import { createAuthenticationToken, loginUserToken, signUp, uniqueEmail } from "../support/users.js";
import { startServerPair, type ServerPair } from "./support.js";

const CAP = 3;
const burst = 6;

for (const store of storesUnderTest()) {
  describe(`Seed 003 exchanges racing under TESSERA_MAX_USER_TOKENS_PER_USER=${CAP} on two instances on ${store}`, function () {
    this.timeout(60_000);
    let pair: ServerPair;
    before(
      async () =>
        (pair = await startServerPair(store, {
          TESSERA_LOGIN_PROTECTION: "false",
          TESSERA_MAX_USER_TOKENS_PER_USER: `${CAP}`,
          ...(store === "mongo" && { TESSERA_STORE_TIMEOUT_MS: "10000" }),
        })),
    );
    after(() => pair.close());

    /**
     * Holds every consume of an authentication token, on both instances, until `count` have come
     * (each exchange has stored its cookie session by then), then lets them all go.
     */
    function holdConsumes(count: number): () => void {
      const stores = [pair.a.tessera.store.authTokens, pair.b.tessera.store.authTokens];
      const originals = stores.map((s) => s.consume);
      let open!: () => void;
      const opened = new Promise<void>((resolve) => (open = resolve));
      let arrived = 0;
      stores.forEach((s, i) => {
        s.consume = async (...args) => {
          if (++arrived >= count) open();
          await opened;
          return originals[i]!.apply(s, args);
        };
      });
      // Not every exchange may get that far (a slow store): let them go after a while all the same.
      const timer = setTimeout(open, 10_000);
      return () => {
        clearTimeout(timer);
        open();
        stores.forEach((s, i) => (s.consume = originals[i]!));
      };
    }

    const cookieOf = (res: RestResponse) => /^tessera_session=([^;]+)/.exec(res.headers.getSetCookie().find((c) => c.startsWith("tessera_session=")) ?? "")?.[1];

    it(`${burst} exchanges of one token at once, each held before its consume: one starts a session that works, the others are 404, and no user token of the user is logged out`, async () => {
      const email = uniqueEmail("xcap");
      await signUp(pair.a, email);
      const first = await loginUserToken(pair.a, email);
      const second = await loginUserToken(pair.a, email);
      // One exchange: the user then holds first, second and the cookie session, the cap.
      const token = await createAuthenticationToken(pair.a, bearer(second));
      const restore = holdConsumes(burst);
      let answers: RestResponse[];
      try {
        answers = await Promise.all(
          Array.from({ length: burst }, (_, i) => rest((i % 2 === 0 ? pair.a : pair.b).url, "GET", `/api/authenticationtoken/${token}/user`)),
        );
      } finally {
        restore();
      }
      const won = answers.filter((r) => r.status === 200);
      assert.equal(won.length, 1, answers.map((r) => `${r.status} ${r.text}`).join("\n"));
      for (const lost of answers.filter((r) => r.status !== 200)) {
        assert.equal(lost.status, 404, lost.text);
        assert.equal(lost.body.details[0].debug.reason, "TOKEN_NOT_FOUND");
      }
      const cookie = cookieOf(won[0]!);
      assert.ok(cookie, "no session cookie");
      const withCookie = await rest(pair.b.url, "GET", "/api/authenticationtoken", { headers: { cookie: `tessera_session=${cookie}` } });
      assert.equal(withCookie.status, 200, `the cookie session handed out: ${withCookie.text}`);
      for (const [name, secret] of [
        ["first", first],
        ["second", second],
      ] as const) {
        const bumped = await rest(pair.a.url, "POST", "/auth/bump", { headers: bearer(secret) });
        assert.equal(bumped.status, 200, `the ${name} user token: ${bumped.text}`);
      }
      // The user's cap is full (first, second, the cookie session): one more login ends the oldest, first.
      const third = await loginUserToken(pair.b, email);
      assert.equal((await rest(pair.a.url, "POST", "/auth/bump", { headers: bearer(first) })).status, 401);
      assert.equal((await rest(pair.a.url, "POST", "/auth/bump", { headers: bearer(third) })).status, 200);
    });
  });
}
