// The audit budget (README "Audit trail"): refusals of callers without a verified credential
// are stored one by one only up to TESSERA_AUDIT_REFUSALS_PER_MINUTE per client address (and
// TESSERA_AUDIT_REFUSALS_PER_MINUTE_TOTAL over all of them); beyond, they are counted and
// stored as one `audit.suppressed` event when the minute ends, or when the server stops. A flood
// of refused calls no longer writes a row each. The window is shortened to one second here and
// the clock is a ManualClock, so every call of a test falls in one window.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { decodeJwt } from "jose";
import { MongoClient } from "mongodb";
import { ManualClock } from "../../src/core/clock.js";
import { openStore } from "../../src/store/index.js";
import { expectOk, protocols } from "../support/api.js";
import { bearer, rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { admin, clientIdHeader, createJwtUser, jwtLogin, jwtRefreshToken, loginUserToken, password, signUp, uniqueEmail, uniqueName } from "../support/users.js";
import { scrape, value } from "../support/metrics.js";
import { pollLast } from "../support/poll.js";
import { allEvents, auditApi, type AuditEventJson } from "./api.js";

const windowMs = 1000;

const from = (address: string) => ({ "x-forwarded-for": address });

/** A wrong-password login (POST /session) from `address`: 401. */
async function wrongLogin(server: TestServer, address: string, email = uniqueEmail("nobody")): Promise<void> {
  const r = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password: "not the password" }, headers: { ...clientIdHeader, ...from(address) } });
  assert.equal(r.status, 401, r.text);
}

/** An admin call with a wrong admin credential from `address`: 401. */
async function wrongAdmin(server: TestServer, address: string): Promise<void> {
  const r = await rest(server.url, "GET", "/v1/admin/audit-events", { headers: { ...bearer("not-the-admin-token-0123456789"), ...from(address) } });
  assert.equal(r.status, 401, r.text);
}

/**
 * The `audit.suppressed` events, polled until `count` are listed (the window's timer stores them)
 * or 20 s passed. A listing is answered only once its own admin.call event is on disk, so it may
 * answer seconds after it read (pollLast then lists once more).
 */
const summaries = (server: TestServer, count: number): Promise<AuditEventJson[]> =>
  pollLast(() => allEvents(server, { type: "audit.suppressed" }), (found) => found.length >= count, { limitMs: 20_000, intervalMs: 50 });

for (const store of storesUnderTest()) {
  describe(`audit budget on ${store}`, function () {
    this.timeout(60_000);

    describe("5 per address per window", () => {
      const clock = new ManualClock(Date.now());
      let server: TestServer;
      before(async () => {
        server = await startTestServer({
          store,
          clock,
          auditWindowMs: windowMs,
          env: { TESSERA_TRUSTED_PROXIES: "127.0.0.1", TESSERA_AUDIT_REFUSALS_PER_MINUTE: "5" },
        });
      });
      after(() => server?.close());
      // Whatever an earlier test counted ends with its window.
      beforeEach(() => clock.advance(2 * windowMs));

      it("a flood from one address stores 5 refusals, then one audit.suppressed event counting the rest once the window ends; another address and successes are stored in full", async () => {
        const flooder = "198.51.100.7";
        const neighbour = "203.0.113.9";
        const email = uniqueEmail("flooded");
        const user = await signUp(server, email);
        const start = clock.now();
        for (let i = 0; i < 15; i++) await wrongLogin(server, flooder);
        for (let i = 0; i < 3; i++) await wrongAdmin(server, flooder);
        // A success from the flooding address, during the flood: stored.
        const ok = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: { ...clientIdHeader, ...from(flooder) } });
        assert.equal(ok.status, 200, ok.text);
        for (let i = 0; i < 3; i++) await wrongLogin(server, neighbour);

        const mine = (await allEvents(server, {})).filter((e) => e.client_address === flooder).reverse();
        assert.deepEqual(
          mine.map((e) => [e.type, e.outcome, e.reason, e.user_id]),
          [...Array(5).fill(["login", "failure", "INVALID_CREDENTIALS", undefined]), ["login", "success", undefined, user.id], ["session.started", "success", undefined, user.id]],
        );
        assert.equal((await allEvents(server, { type: "login" })).filter((e) => e.client_address === neighbour && e.outcome === "failure").length, 3);
        // Within the window, nothing is summarised yet.
        assert.deepEqual(await allEvents(server, { type: "audit.suppressed" }), []);

        clock.advance(windowMs);
        const found = await summaries(server, 1);
        assert.equal(found.length, 1, JSON.stringify(found));
        const summary = found[0]!;
        assert.deepEqual(
          { ...summary, id: "", time: "" },
          {
            id: "",
            time: "",
            type: "audit.suppressed",
            outcome: "failure",
            client_address: flooder,
            suppressed: {
              since: start.toISOString(),
              count: 13,
              events: [
                { type: "login", outcome: "failure", reason: "INVALID_CREDENTIALS", count: 10 },
                { type: "admin.call", outcome: "failure", reason: "INVALID_TOKEN", count: 3 },
              ],
            },
          },
        );
        assert.equal(summary.time, clock.now().toISOString());
        // Over every protocol, the summary reads the same (AuditEvent.suppressed).
        for (const protocol of protocols) {
          const api = auditApi(protocol, server.url);
          try {
            const page = expectOk(await api.listAuditEvents({ type: "audit.suppressed" }, admin));
            assert.deepEqual(page.events.map((e) => e.suppressed), [summary.suppressed], protocol);
          } finally {
            api.close();
          }
        }
        // What was suppressed was not logged one by one either; the summary was.
        const lines = server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "audit" && l.clientAddress === flooder);
        assert.deepEqual(
          lines.map((l) => `${String(l.event)} ${String(l.outcome)}`),
          [...Array(5).fill("login failure"), "login success", "session.started success", "audit.suppressed failure"],
        );
        assert.deepEqual(lines.at(-1)?.suppressed, summary.suppressed);
        const metrics = await scrape(`${server.url}/metrics`);
        assert.equal(value(metrics, "tessera_audit_events_suppressed_total", { type: "login", outcome: "failure" }), 10);
        assert.equal(value(metrics, "tessera_audit_events_suppressed_total", { type: "admin.call", outcome: "failure" }), 3);
        // The summary is an audit event recorded like any other, and counted as one.
        assert.equal(value(metrics, "tessera_audit_events_total", { type: "audit.suppressed", outcome: "failure" }), 1);
      });

      it("a refusal that names a user (a replayed hand-off token, a revoked refresh token, a deactivated user's right password) is stored whatever the budget: the user's trail keeps it", async () => {
        const attacker = "198.51.100.9";
        // The victim's credentials, spent or revoked, as a thief would replay them.
        const email = uniqueEmail("budget-victim");
        const victim = await signUp(server, email);
        const token = await loginUserToken(server, email);
        const handOff = (await rest(server.url, "GET", "/api/authenticationtoken", { headers: bearer(token) })).body.token as string;
        assert.equal((await rest(server.url, "GET", `/api/authenticationtoken/${handOff}/user`)).status, 200);
        const name = await createJwtUser(server, uniqueName("budget-victim"));
        const access = await jwtLogin(server, name);
        const jwtUserId = decodeJwt(access).sub as string;
        const refresh = await jwtRefreshToken(server, access);
        assert.equal((await rest(server.url, "DELETE", "/jwt/refresh_token", { json: { refresh_token: refresh }, headers: bearer(access) })).status, 204);
        const goneName = await createJwtUser(server, uniqueName("budget-gone"));
        const goneAccess = await jwtLogin(server, goneName);
        const goneUserId = decodeJwt(goneAccess).sub as string;
        assert.equal((await rest(server.url, "DELETE", "/jwt/user", { headers: bearer(goneAccess) })).status, 204);
        // The attacker spends its address's budget on cheap refusals first, then replays them.
        for (let i = 0; i < 5; i++) await wrongAdmin(server, attacker);
        const replay = (path: string, requestId: string) => rest(server.url, "GET", path, { headers: { ...from(attacker), "x-request-id": requestId } });
        assert.equal((await replay(`/api/authenticationtoken/${handOff}/user`, "budget-handoff")).status, 404);
        assert.equal((await replay(`/jwt/token?${new URLSearchParams({ user: refresh })}`, "budget-refresh")).status, 401);
        assert.equal((await replay(`/jwt/token?${new URLSearchParams({ user: goneName, pass: password })}`, "budget-gone")).status, 403);
        const replayed = (await allEvents(server, {}))
          .filter((e) => e.client_address === attacker && e.request_id?.startsWith("budget-"))
          .reverse()
          .map((e) => [e.request_id, e.type, e.outcome, e.reason, e.user_id]);
        assert.deepEqual(replayed, [
          ["budget-handoff", "auth_token.exchanged", "failure", "TOKEN_NOT_FOUND", victim.id],
          ["budget-refresh", "jwt_refresh_token.used", "failure", "TOKEN_REVOKED", jwtUserId],
          ["budget-gone", "login", "failure", "USER_DEACTIVATED", goneUserId],
        ]);
      });

      it("a caller with a verified credential has every refusal stored: the admin token with a bad argument, 8 times", async () => {
        const address = "198.51.100.8";
        for (let i = 0; i < 8; i++) {
          const r = await rest(server.url, "GET", "/v1/admin/audit-events?page_size=-1", { headers: { ...admin, ...from(address) } });
          assert.equal(r.status, 400, r.text);
        }
        const mine = (await allEvents(server, { type: "admin.call" })).filter((e) => e.client_address === address);
        assert.deepEqual(new Set(mine.map((e) => `${e.outcome} ${e.reason}`)), new Set(["failure INVALID_FIELD"]));
        assert.equal(mine.length, 8);
        clock.advance(windowMs);
        await new Promise((r) => setTimeout(r, windowMs + 200));
        assert.deepEqual((await allEvents(server, { type: "audit.suppressed" })).filter((e) => e.client_address === address), []);
      });
    });

    it("over TESSERA_AUDIT_REFUSALS_PER_MINUTE_TOTAL, refusals from any address are counted in one audit.suppressed event without an address", async () => {
      const clock = new ManualClock(Date.now());
      const server = await startTestServer({
        store,
        clock,
        auditWindowMs: windowMs,
        env: { TESSERA_TRUSTED_PROXIES: "127.0.0.1", TESSERA_AUDIT_REFUSALS_PER_MINUTE: "5", TESSERA_AUDIT_REFUSALS_PER_MINUTE_TOTAL: "8" },
      });
      try {
        const start = clock.now();
        for (let i = 0; i < 7; i++) await wrongAdmin(server, "198.51.100.1");
        for (let i = 0; i < 7; i++) await wrongAdmin(server, "198.51.100.2");
        for (let i = 0; i < 2; i++) await wrongAdmin(server, "198.51.100.3");
        const stored = (await allEvents(server, { type: "admin.call" })).filter((e) => e.outcome === "failure").reverse();
        assert.deepEqual(stored.map((e) => e.client_address), [...Array(5).fill("198.51.100.1"), ...Array(3).fill("198.51.100.2")]);
        clock.advance(windowMs);
        const found = await summaries(server, 2);
        const counted = (n: number) => ({ since: start.toISOString(), count: n, events: [{ type: "admin.call", outcome: "failure", reason: "INVALID_TOKEN", count: n }] });
        assert.deepEqual(
          found.map((e) => [e.client_address, e.suppressed]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
          [
            ["198.51.100.1", counted(2)],
            [undefined, counted(6)],
          ],
        );
        // Two summaries recorded, two counted (the one per address and the one over the total).
        const metrics = await scrape(`${server.url}/metrics`);
        assert.equal(value(metrics, "tessera_audit_events_total", { type: "audit.suppressed", outcome: "failure" }), 2);
      } finally {
        await server.close();
      }
    });

    it("a graceful stop stores the open window's summary", async () => {
      // The default window (a minute): only the stop can end it within this test.
      const server = await startTestServer({ store, env: { TESSERA_TRUSTED_PROXIES: "127.0.0.1", TESSERA_AUDIT_REFUSALS_PER_MINUTE: "5" } });
      let closed = false;
      try {
        for (let i = 0; i < 9; i++) await wrongAdmin(server, "198.51.100.50");
        assert.deepEqual(await allEvents(server, { type: "audit.suppressed" }), []);
        await server.tessera.close();
        closed = true;
        const reopened = await openStore({ dataDir: server.config.dataDir, mongodbUri: server.config.mongodbUri, mongoDbName: server.config.mongodbDatabase });
        try {
          const found = await reopened.auditEvents.list({ type: "audit.suppressed", limit: 10 });
          assert.deepEqual(
            found.map((e) => [e.clientAddress, e.suppressed?.count, e.suppressed?.events]),
            [["198.51.100.50", 4, [{ type: "admin.call", outcome: "failure", reason: "INVALID_TOKEN", count: 4 }]]],
          );
          assert.equal((await reopened.auditEvents.list({ type: "admin.call", limit: 100 })).filter((e) => e.outcome === "failure").length, 5);
        } finally {
          await reopened.close();
        }
      } finally {
        if (!closed) await server.close();
        else {
          rmSync(server.config.dataDir, { recursive: true, force: true });
          if (server.config.mongodbUri) {
            const client = new MongoClient(server.config.mongodbUri);
            try {
              await client.db(server.config.mongodbDatabase).dropDatabase();
            } finally {
              await client.close();
            }
          }
        }
      }
    });
  });
}
