// A revoked signing key is kept, known revoked, until nothing made from its tokens can still live
// (README, Emergency revocation): such a credential records the key's kid, and is refused while
// the key ring knows that kid revoked. Its life was given by the settings of the instance that
// made it, which may have been longer than those of the instance whose housekeeping deletes the
// key (a restart with shorter lifetimes, before or after the revocation). Kept for as long as
// those shorter lifetimes say only, the key was deleted while such a credential lived on, its kid
// was unknown, and the credential was taken again:
// - a seed 004 refresh token minted with an access token of a retired key (signed by the current
//   key, `source_kids` naming the retired one), the key revoked, then an instance started (as
//   after a restart) with TESSERA_REFRESH_TOKEN_TTL_SECONDS shortened: refreshed again (200)
//   once its housekeeping had run, where it answers 401 TOKEN_REVOKED "refresh token revoked";
// - a seed 003 cookie session started from a seed 000 session's access token under long
//   lifetimes, then the key revoked by an instance started with shorter ones: taken again once
//   its housekeeping had run, where it answers 401 TOKEN_REVOKED "session cookie is disabled".
// Both instances share one store (SQLite: one file; MongoDB: one database).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { ManualClock } from "../../src/core/clock.js";
import { expectCode, restOutcome } from "../support/api.js";
import { bearer, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { clientIdHeader, createAuthenticationToken, jwtRefreshToken, signUp, startSession, uniqueEmail } from "../support/users.js";
import { exchangeHandOff, expectEndedCookie, sessionCookieHeader } from "../credentials/support.js";
import { accessTokenOfRetiredKey, kidOf, revokeKeyOn } from "./api.js";

const day = 86_400_000;

/** Long lifetimes, then short ones; housekeeping runs on the instances with short ones only, every second. */
const long = { TESSERA_ACCESS_TOKEN_TTL_SECONDS: "86400", TESSERA_REFRESH_TOKEN_TTL_SECONDS: "2592000", TESSERA_SESSION_COOKIE_TTL_SECONDS: "2592000", TESSERA_HOUSEKEEPING_INTERVAL_SECONDS: "0" };
const short = { TESSERA_ACCESS_TOKEN_TTL_SECONDS: "900", TESSERA_REFRESH_TOKEN_TTL_SECONDS: "3600", TESSERA_SESSION_COOKIE_TTL_SECONDS: "3600", TESSERA_HOUSEKEEPING_INTERVAL_SECONDS: "1" };

/**
 * Resolves with what the next pass of `server`'s housekeeping over the signing keys deleted, a
 * pass begun at `clock`'s time or later (a pass right after the clock jumped ahead is postponed,
 * the next one runs).
 */
function keysPass(server: TestServer, clock: ManualClock): Promise<number> {
  const keys = server.tessera.store.keys;
  const original = keys.deleteExpired;
  const from = clock.now().getTime();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      keys.deleteExpired = original;
      reject(new Error("no housekeeping pass within 20 s"));
    }, 20_000);
    keys.deleteExpired = async (before, revokedBefore) => {
      const deleted = await original.call(keys, before, revokedBefore);
      if (before.getTime() >= from) {
        keys.deleteExpired = original;
        clearTimeout(timer);
        resolve(deleted);
      }
      return deleted;
    };
  });
}

const refreshLogin = (server: TestServer, token: string) => rest(server.url, "GET", `/jwt/token?${new URLSearchParams({ user: token })}`);

for (const store of storesUnderTest()) {
  describe(`A revoked key outlives what its tokens made, whatever the lifetimes are now, on ${store}`, function () {
    this.timeout(60_000);
    let dataDir: string;
    let shared: Record<string, string>;
    let clock: ManualClock;
    /** Closed once each test has ended, in the reverse order: on MongoDB a test server's close drops its database. */
    let servers: TestServer[];
    const open = async (env: Record<string, string>) => {
      const server = await startTestServer({ store, env: { ...shared, ...env }, clock });
      servers.push(server);
      return server;
    };

    beforeEach(() => {
      dataDir = mkdtempSync(join(tmpdir(), "tessera-revoked-kept-"));
      shared = { TESSERA_DATA_DIR: dataDir, TESSERA_MONGODB_DATABASE: `tessera_revoked_kept_${randomBytes(6).toString("hex")}` };
      clock = new ManualClock(Date.now());
      servers = [];
    });
    afterEach(async () => {
      for (const server of servers.reverse()) await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it("a refresh token minted with a retired key's access token under 30-day lifetimes, the key revoked, stays refused (401 TOKEN_REVOKED) once instances with 1-hour lifetimes have run housekeeping", async () => {
      const before = await open(long);
      const { access: old, retired, current } = await accessTokenOfRetiredKey(before, clock, "revoked-kept-refresh");
      // Its access token lives a day: a refresh token minted with it a little less than a day
      // after the rotation lives 30 days from then, past the retired key's notAfter (30 days and
      // 30 s after the rotation).
      clock.advance(day - 60_000);
      const refresh = await jwtRefreshToken(before, old);
      assert.equal(kidOf(refresh), current);
      assert.equal((await refreshLogin(before, refresh)).status, 200);
      await revokeKeyOn(before, retired);
      expectCode(restOutcome(await refreshLogin(before, refresh)), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");

      // Past the retired key's notAfter, and more than an hour (the lifetimes now) past the
      // revocation; the refresh token has 23 hours to live.
      clock.advance(29 * day + 2 * 3_600_000);
      const after = await open(short);
      const deleted = await keysPass(after, clock);
      // The key list read again.
      clock.advance(30_000);
      expectCode(restOutcome(await refreshLogin(after, refresh)), "unauthenticated", "refresh token revoked", "TOKEN_REVOKED");
      assert.equal(deleted, 0, "the revoked key is kept");
      assert.ok((await after.tessera.store.keys.list()).some((key) => key.kid === retired && key.revokedAt !== undefined));
    });

    it("a cookie session started from a session access token under 30-day lifetimes stays refused (401 TOKEN_REVOKED) once an instance with 1-hour lifetimes revoked the key and ran housekeeping", async () => {
      const before = await open(long);
      const email = uniqueEmail("revoked-kept-cookie");
      await signUp(before, email);
      const session = await startSession(before, email);
      const kid = kidOf(session.access_token);
      const cookie = await exchangeHandOff(before, await createAuthenticationToken(before, { ...clientIdHeader, ...bearer(session.access_token) }));
      assert.equal((await rest(before.url, "GET", "/api/authenticationtoken", { headers: sessionCookieHeader(cookie) })).status, 200);

      const after = await open(short);
      await revokeKeyOn(after, kid);
      await expectEndedCookie(after, cookie);
      // Past the key's notAfter (its retirement by the revocation, with the lifetimes now: an hour
      // and 30 s), and past an hour after the revocation; the cookie session has most of 30 days to live.
      clock.advance(2 * 3_600_000);
      const deleted = await keysPass(after, clock);
      clock.advance(30_000);
      await expectEndedCookie(after, cookie);
      assert.equal(deleted, 0, "the revoked key is kept");
      assert.ok((await after.tessera.store.keys.list()).some((key) => key.kid === kid && key.revokedAt !== undefined));
    });
  });
}
