// Housekeeping deletes what can never be valid again (or count again), and nothing else.
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { Housekeeping, REVOKED_KEY_KEPT_MS } from "../../src/core/housekeeping.js";
import { KeyRing } from "../../src/core/key-ring.js";
import { TokenVerifier } from "../../src/core/token-verifier.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import type { Store } from "../../src/store/ports.js";
import { storesUnderTest } from "../support/server.js";
import { freshStores, type OpenedStore } from "../support/store.js";

const minute = 60_000;

for (const kind of storesUnderTest()) {
  describe(`core: housekeeping (${kind})`, () => {
    const stores = freshStores(kind);
    let opened: OpenedStore;
    let store: Store;
    const clock = new ManualClock(Date.UTC(2026, 0, 1));

    beforeEach(async () => {
      opened = await stores.open();
      store = opened.store;
    });
    afterEach(() => opened?.close());

    it("deletes audit events older than TESSERA_AUDIT_RETENTION_DAYS (default 90) and keeps the rest", async () => {
      const day = 24 * 60 * minute;
      const now = clock.now().getTime();
      const event = (id: string, ageMs: number) => ({ id, time: new Date(now - ageMs), type: "login", outcome: "success", userId: "retained" });
      for (const e of [event("a-91d", 91 * day), event("a-89d", 89 * day), event("a-8d", 8 * day), event("a-6d", 6 * day)]) await store.auditEvents.append(e);
      const logger = createLogger("silent");
      const ids = async () => (await store.auditEvents.list({ userId: "retained", limit: 10 })).map((e) => e.id);
      assert.equal((await new Housekeeping({ store, clock, logger }).runOnce()).auditEvents, 1);
      assert.deepEqual(await ids(), ["a-6d", "a-8d", "a-89d"]);
      assert.equal((await new Housekeeping({ store, clock, logger, auditRetentionDays: 7 }).runOnce()).auditEvents, 2);
      assert.deepEqual(await ids(), ["a-6d"]);
    });

    it("removes sessions, refresh, authentication and JWT refresh tokens expired more than a minute ago (CLOCK_STEP_MS: an instance whose clock is behind still takes them for unexpired), and keeps the others", async () => {
      const now = clock.now();
      const past = new Date(now.getTime() - minute);
      // Expired by this clock, and by one 2 s behind it too; and expired only by this one.
      const expiredEverywhere = new Date(now.getTime() - minute - 1);
      const justExpired = new Date(now.getTime() - 2_000);
      const future = new Date(now.getTime() + minute);
      const created = new Date(now.getTime() - 10 * minute);
      const session = (id: string, expiresAt: Date) => ({ id, userId: "u1", clientId: "c", accessJti: `${id}-jti`, createdAt: created, expiresAt });
      // Each with its first refresh token, live: the refresh tokens counted are the two below.
      for (const s of [session("s-old", expiredEverywhere), session("s-lately", justExpired), session("s-live", future)]) {
        await store.sessions.createThenSync(s, { hash: `${s.id}-rt`, sessionId: s.id, createdAt: created, expiresAt: future });
      }
      for (const [name, expiresAt] of [["old", expiredEverywhere], ["lately", justExpired], ["live", future]] as const) {
        await store.refreshTokens.insertThenSync({ hash: `r-${name}`, sessionId: "s1", createdAt: created, expiresAt });
        await store.authTokens.create({ hash: `a-${name}`, userId: "u1", createdAt: created, expiresAt });
        await store.jwtRefreshTokens.create({ jti: `j-${name}`, userId: "u1", issuedAt: created, expiresAt });
      }

      const rule = { windowMs: 15 * minute, lockMs: minute, maxLockMs: 15 * minute, leaseMs: 10 * minute };
      await store.loginAttempts.reserve([{ key: "login:stale", limit: 5 }], new Date(now.getTime() - 30 * minute), rule);
      await store.loginAttempts.reserve([{ key: "login:recent", limit: 2 }], past, rule);
      await store.loginAttempts.rememberLogin("known-expired", past);
      await store.loginAttempts.rememberLogin("known-live", future);

      const lines: string[] = [];
      const removed = await new Housekeeping({ store, clock, logger: createLogger("info", (l) => lines.push(l)), loginWindowSeconds: 15 * 60 }).runOnce();
      assert.equal(removed.loginAttempts, 1);
      // The recent counter kept its attempt (still within its lease): one more fills its window (limit 2).
      assert.equal((await store.loginAttempts.reserve([{ key: "login:recent", limit: 2 }], now, rule)).granted, true);
      assert.equal((await store.loginAttempts.reserve([{ key: "login:recent", limit: 2 }], now, rule)).granted, false);
      assert.equal(removed.knownLogins, 1);
      assert.equal(await store.loginAttempts.rememberedUntil("known-expired"), null);
      assert.equal((await store.loginAttempts.rememberedUntil("known-live"))?.getTime(), future.getTime());
      assert.equal(removed.sessions, 1, "an expired session is deleted: every login adds one");
      assert.equal(await store.sessions.findById("s-old"), null);
      assert.equal(removed.refreshTokens, 1);
      assert.equal(removed.authTokens, 1);
      assert.equal(removed.jwtRefreshTokens, 1);
      assert.equal(await store.refreshTokens.findByHash("r-old"), null);
      assert.equal(await store.authTokens.findByHash("a-old"), null);
      assert.equal(await store.jwtRefreshTokens.findByJti("j-old"), null);
      for (const name of ["lately", "live"]) {
        assert.ok(await store.sessions.findById(`s-${name}`), `session s-${name} kept`);
        assert.ok(await store.refreshTokens.findByHash(`r-${name}`), `refresh token r-${name} kept`);
        assert.ok(await store.authTokens.findByHash(`a-${name}`), `authentication token a-${name} kept`);
        assert.ok(await store.jwtRefreshTokens.findByJti(`j-${name}`), `JWT refresh token j-${name} kept`);
      }
      assert.equal(lines.length, 1, "one log line for the pass");
      assert.equal(JSON.parse(lines[0]).msg, "housekeeping");
    });

    it("deletes a backlog larger than one batch completely, one batch per store call, each call of at most one batch", async () => {
      const now = clock.now();
      const batch = 10;
      const old = new Date(now.getTime() - 91 * 24 * 60 * minute);
      for (let i = 0; i < 25; i++) {
        // Its first refresh token live: the backlog is the sessions' alone.
        await store.sessions.createThenSync({ id: `s${i}`, userId: "u1", clientId: "c", accessJti: "j", createdAt: old, expiresAt: old }, { hash: `s${i}-rt`, sessionId: `s${i}`, createdAt: old, expiresAt: new Date(now.getTime() + minute) });
        await store.auditEvents.append({ id: `e${i}`, time: old, type: "login", outcome: "success", userId: "batched" });
      }
      // Every call of a batched delete, with its limit and what it deleted.
      const calls: Array<[string, number, number]> = [];
      const spy = <T extends object>(name: string, port: T, method: keyof T, limitAt: number): T =>
        ({
          ...port,
          [method]: async (...args: unknown[]) => {
            const n = await (port[method] as (...a: unknown[]) => Promise<number>)(...args);
            calls.push([`${name}.${String(method)}`, args[limitAt] as number, n]);
            return n;
          },
        }) as T;
      const spied = {
        ...store,
        sessions: spy("sessions", store.sessions, "deleteExpired", 1),
        refreshTokens: spy("refreshTokens", store.refreshTokens, "deleteExpired", 1),
        authTokens: spy("authTokens", store.authTokens, "deleteExpired", 1),
        jwtRefreshTokens: spy("jwtRefreshTokens", store.jwtRefreshTokens, "deleteExpired", 1),
        userTokens: spy("userTokens", store.userTokens, "deleteEndedBefore", 1),
        loginAttempts: spy("knownLogins", spy("loginAttempts", store.loginAttempts, "deleteStale", 2), "forgetExpiredLogins", 1),
        auditEvents: spy("auditEvents", store.auditEvents, "deleteOlderThan", 1),
      };
      const removed = await new Housekeeping({ store: spied, clock, logger: createLogger("silent"), deleteBatch: batch }).runOnce();
      assert.deepEqual(calls, [
        ["sessions.deleteExpired", 10, 10],
        ["sessions.deleteExpired", 10, 10],
        ["sessions.deleteExpired", 10, 5],
        ["refreshTokens.deleteExpired", 10, 0],
        ["authTokens.deleteExpired", 10, 0],
        ["jwtRefreshTokens.deleteExpired", 10, 0],
        ["userTokens.deleteEndedBefore", 10, 0],
        ["loginAttempts.deleteStale", 10, 0],
        ["knownLogins.forgetExpiredLogins", 10, 0],
        ["auditEvents.deleteOlderThan", 10, 10],
        ["auditEvents.deleteOlderThan", 10, 10],
        ["auditEvents.deleteOlderThan", 10, 5],
      ]);
      assert.equal(removed.sessions, 25);
      assert.equal(removed.auditEvents, 25);
      assert.equal(await store.sessions.findById("s24"), null);
      assert.deepEqual(await store.auditEvents.list({ userId: "batched", limit: 10 }), []);
    });

    it("a stop during a pass on its timer waits for the batch under way only, not for the rest of the backlog (nor the kinds after it)", async () => {
      const now = clock.now();
      const old = new Date(now.getTime() - 91 * 24 * 60 * minute);
      for (let i = 0; i < 20; i++) {
        await store.sessions.createThenSync({ id: `s${i}`, userId: "u1", clientId: "c", accessJti: "j", createdAt: old, expiresAt: old }, { hash: `s${i}-rt`, sessionId: `s${i}`, createdAt: old, expiresAt: new Date(now.getTime() + minute) });
        await store.auditEvents.append({ id: `e${i}`, time: old, type: "login", outcome: "success", userId: "stopped" });
      }
      // Each batch of one session takes 20 ms: the whole backlog, 400 ms.
      const calls = { sessions: 0, auditEvents: 0 };
      const slowed = {
        ...store,
        sessions: {
          ...store.sessions,
          deleteExpired: async (before: Date, limit: number) => {
            calls.sessions++;
            await new Promise((r) => setTimeout(r, 20));
            return store.sessions.deleteExpired(before, limit);
          },
        },
        auditEvents: {
          ...store.auditEvents,
          deleteOlderThan: async (before: Date, limit: number) => {
            calls.auditEvents++;
            return store.auditEvents.deleteOlderThan(before, limit);
          },
        },
      };
      const housekeeping = new Housekeeping({ store: slowed, clock, logger: createLogger("silent"), deleteBatch: 1 });
      housekeeping.start(1);
      try {
        for (const end = performance.now() + 5000; calls.sessions === 0 && performance.now() < end; ) await new Promise((r) => setTimeout(r, 5));
        assert.equal(calls.sessions, 1, "the pass has begun");
      } finally {
        await housekeeping.stop();
      }
      assert.deepEqual(calls, { sessions: 1, auditEvents: 0 });
      assert.equal((await store.auditEvents.list({ userId: "stopped", limit: 30 })).length, 20);
    });

    it("the first pass on the timer comes after FIRST_PASS_AFTER_SECONDS when the interval is longer: a process restarted more often than the interval still deletes", async function () {
      this.timeout(10_000);
      const now = clock.now();
      const old = new Date(now.getTime() - 91 * 24 * 60 * minute);
      await store.auditEvents.append({ id: "e-first", time: old, type: "login", outcome: "success", userId: "first-pass" });
      const lines: string[] = [];
      // A daily pass; its first one comes after a second here (ten minutes by default).
      const housekeeping = new Housekeeping({ store, clock, logger: createLogger("info", (l) => lines.push(l)), firstPassAfterSeconds: 1 });
      housekeeping.start(86_400);
      try {
        const passes = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => String(l.msg).startsWith("housekeeping"));
        for (const end = performance.now() + 5000; passes().length === 0 && performance.now() < end; ) await new Promise((r) => setTimeout(r, 50));
        assert.deepEqual(passes().map((l) => [l.msg, l.auditEvents]), [["housekeeping", 1]]);
        assert.deepEqual(await store.auditEvents.list({ userId: "first-pass", limit: 10 }), []);
      } finally {
        await housekeeping.stop();
      }
    });

    // A key revoked while it was the published next key never signed; a key revoked without a
    // rotation retiring it has no notAfter. Such a key was kept for good. It is deleted once
    // REVOKED_KEY_KEPT_MS have passed since its revocation (as any revoked key: whether it ever
    // signed is not told by its record), and the ring carries on without it; the retired key
    // goes at its notAfter.
    it("deletes a signing key revoked before it was promoted REVOKED_KEY_KEPT_MS after its revocation, and a retired one at its notAfter", async () => {
      const config = loadConfig({ TESSERA_CLIENT_IDS: "c", TESSERA_KEY_PUBLISH_SECONDS: "0", TESSERA_ACCESS_TOKEN_TTL_SECONDS: "60", TESSERA_REFRESH_TOKEN_TTL_SECONDS: "60" });
      const ring = await KeyRing.open({ keys: store.keys, config, clock, logger: createLogger("silent") });
      const [signing, next] = await store.keys.list();
      // The published next key is revoked (another is published above it), then a rotation
      // promotes that one and retires the signing key.
      await ring.revoke(next!.kid);
      const promoted = await ring.rotate();
      const kids = async () => (await store.keys.list()).map((k) => k.kid);
      const [, , third, fourth] = await kids();
      assert.equal(promoted, third);
      assert.deepEqual((await ring.jwks()).map((k) => k.kid), [fourth, third, signing!.kid]);
      const housekeeping = new Housekeeping({ store, clock, logger: createLogger("silent") });
      // The ring's 60 s token lifetime + 30 s: the retired key's notAfter.
      assert.equal(ring.verifiesForMs, 90_000);
      clock.advance(90_000);
      assert.equal((await housekeeping.runOnce()).keys, 0, "until 90 s after: kept");
      assert.deepEqual(await kids(), [signing!.kid, next!.kid, third, fourth]);
      clock.advance(1);
      assert.equal((await housekeeping.runOnce()).keys, 1, "the retired key");
      assert.deepEqual(await kids(), [next!.kid, third, fourth]);
      clock.advance(REVOKED_KEY_KEPT_MS - 90_001);
      assert.equal((await housekeeping.runOnce()).keys, 0, "the revoked one: kept until REVOKED_KEY_KEPT_MS after its revocation");
      clock.advance(1);
      assert.equal((await housekeeping.runOnce()).keys, 1, "the revoked one");
      assert.deepEqual(await kids(), [third, fourth]);
      await ring.reloadNow();
      assert.deepEqual((await ring.jwks()).map((k) => k.kid), [fourth, third]);
      const token = await ring.sign({ sub: "after" }, 60);
      assert.equal((await new TokenVerifier({ ring, clock }).verify(token)).sub, "after");
    });

    // A credential made from a token records the kid of the key that signed it and is refused
    // once that key is revoked. Were the revoked key deleted before the credential expired, the
    // ring would no longer know the kid revoked, and the credential would be taken again. It may
    // have been made under longer lifetimes than the ring's now (a restart with shorter ones):
    // the key is kept for the longest lifetime any setting allows (a year), the reload interval
    // and a clock step each way, whatever the ring's lifetimes, retired or not.
    it("keeps a revoked key, retired or not, until what was made from its tokens has expired under any lifetimes (REVOKED_KEY_KEPT_MS)", async () => {
      assert.equal(REVOKED_KEY_KEPT_MS, 365 * 24 * 60 * minute + 30_000 + 2 * minute);
      const config = loadConfig({ TESSERA_CLIENT_IDS: "c", TESSERA_KEY_PUBLISH_SECONDS: "0", TESSERA_ACCESS_TOKEN_TTL_SECONDS: "60", TESSERA_REFRESH_TOKEN_TTL_SECONDS: "60" });
      const ring = await KeyRing.open({ keys: store.keys, config, clock, logger: createLogger("silent") });
      const [signing] = await store.keys.list();
      await ring.rotate();
      await ring.revoke(signing!.kid);
      const kids = async () => (await store.keys.list()).map((k) => k.kid);
      const housekeeping = new Housekeeping({ store, clock, logger: createLogger("silent") });
      // Its notAfter (90 s after its retirement) long past: kept.
      clock.advance(REVOKED_KEY_KEPT_MS);
      assert.equal((await housekeeping.runOnce()).keys, 0, "kept");
      assert.ok((await kids()).includes(signing!.kid));
      await ring.reloadNow();
      assert.equal(await ring.anyRevoked([signing!.kid]), true);
      clock.advance(1);
      assert.equal((await housekeeping.runOnce()).keys, 1);
      assert.ok(!(await kids()).includes(signing!.kid));
    });

    it("logs a store failure instead of throwing", async () => {
      const lines: string[] = [];
      const broken = { ...store, refreshTokens: { ...store.refreshTokens, deleteExpired: async () => { throw new Error("down"); } } } as Store;
      const removed = await new Housekeeping({ store: broken, clock, logger: createLogger("info", (l) => lines.push(l)) }).runOnce();
      assert.equal(removed.refreshTokens, undefined);
      assert.ok(lines.some((l) => JSON.parse(l).msg === "housekeeping failed"));
    });

    it("a pass on its timer right after the clock jumped two days ahead deletes nothing (a clock set wrong, then fixed, would lose live records for good); the next pass, the clock steady, does", async function () {
      this.timeout(10_000);
      const wall = new ManualClock(Date.UTC(2026, 0, 1));
      const now = wall.now();
      const created = new Date(now.getTime() - minute);
      const tomorrow = new Date(now.getTime() + 86_400_000);
      await store.sessions.createThenSync(
        { id: "s-jump", userId: "u1", clientId: "c", accessJti: "s-jump-jti", createdAt: created, expiresAt: tomorrow },
        { hash: "s-jump-rt", sessionId: "s-jump", createdAt: created, expiresAt: tomorrow },
      );
      const lines: string[] = [];
      const housekeeping = new Housekeeping({ store, clock: wall, logger: createLogger("info", (l) => lines.push(l)) });
      housekeeping.start(1);
      try {
        wall.advance(2 * 86_400_000);
        const passes = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => String(l.msg).startsWith("housekeeping"));
        for (const end = performance.now() + 5000; passes().length === 0 && performance.now() < end; ) await new Promise((r) => setTimeout(r, 50));
        assert.ok(await store.sessions.findById("s-jump"), "the session live before the jump is kept");
        assert.deepEqual(passes().map((l) => [l.level, l.msg]), [["warn", "housekeeping postponed"]]);
        for (const end = performance.now() + 5000; passes().length < 2 && performance.now() < end; ) await new Promise((r) => setTimeout(r, 50));
        assert.deepEqual(passes()[1]?.msg, "housekeeping");
        assert.equal(await store.sessions.findById("s-jump"), null);
      } finally {
        await housekeeping.stop();
      }
    });
  });
}
