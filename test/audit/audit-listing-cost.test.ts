// What a page of GET /v1/admin/audit-events reads on the embedded store (README "Audit trail"):
// the events it answers, from one range of one index, however deep in the trail the page is and
// whatever the filters. The listing runs on the event loop: a page that read every event above
// its cursor held the worker for as long as the trail was deep (about 70 to 280 ms a page a
// million events down, measured once), so paging through a trail cost its square. SQLite's plan
// of each listing the server runs is the measure (without ANALYZE it does not depend on the
// data): one SEARCH whose bounds are the page's, never a SCAN from the newest event.
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { expectOk } from "../support/api.js";
import { bearer, rest } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { admin, loginUserToken, signUp, uniqueEmail } from "../support/users.js";
import { auditApi, type AuditApi, type AuditQuery } from "./api.js";

type Statement = Database.Statement<unknown[], unknown>;

describe("audit trail on sqlite: what a page of the listing reads", function () {
  let server: TestServer;
  let api: AuditApi;
  let userId: string;
  /** The query plan of each audit listing the server ran while `recording`. */
  const plans: string[][] = [];
  let recording = false;
  const prepare = Database.prototype.prepare;

  before(async () => {
    Database.prototype.prepare = function (this: Database.Database, sql: string) {
      const statement = prepare.call(this, sql) as Statement;
      if (!sql.startsWith("SELECT * FROM audit_events")) return statement;
      const all = statement.all.bind(statement);
      const db = this;
      statement.all = (...args: unknown[]) => {
        if (recording) plans.push((prepare.call(db, `EXPLAIN QUERY PLAN ${sql}`) as Statement).all(...args).map((row) => (row as { detail: string }).detail));
        return all(...args);
      };
      return statement;
    } as typeof prepare;
    server = await startTestServer({ store: "sqlite" });
    api = auditApi("rest", server.url);
    const email = uniqueEmail("plans");
    userId = (await signUp(server, email)).id;
    const token = await loginUserToken(server, email);
    for (let i = 0; i < 3; i++) assert.equal((await rest(server.url, "POST", "/auth/bump", { headers: bearer(token) })).status, 200);
  });

  after(async () => {
    Database.prototype.prepare = prepare;
    api?.close();
    await server?.close();
  });

  /** The plan of the listing `query` makes, continued by the page token of its first event. */
  async function continuedPlan(query: AuditQuery): Promise<string[]> {
    const first = expectOk(await api.listAuditEvents({ ...query, page_size: 1 }, admin));
    assert.notEqual(first.next_page_token, "", `${JSON.stringify(query)}: more than one event`);
    return planOf({ ...query, page_size: 1, page_token: first.next_page_token });
  }

  async function planOf(query: AuditQuery): Promise<string[]> {
    plans.length = 0;
    recording = true;
    try {
      expectOk(await api.listAuditEvents(query, admin));
    } finally {
      recording = false;
    }
    assert.equal(plans.length, 1, `one listing: ${JSON.stringify(plans)}`);
    return plans[0]!;
  }

  it("a page continued by its page_token searches from its cursor down, not from the newest event", async () => {
    assert.deepEqual(await continuedPlan({}), ["SEARCH audit_events USING INDEX audit_events_time ((time,id)<(?,?))"]);
  });

  it("so does one filtered by type, or by user_id", async () => {
    assert.deepEqual(await continuedPlan({ type: "user_token.bump" }), ["SEARCH audit_events USING INDEX audit_events_type (type=? AND (time,id)<(?,?))"]);
    assert.deepEqual(await continuedPlan({ user_id: userId }), ["SEARCH audit_events USING INDEX audit_events_user (user_id=? AND (time,id)<(?,?))"]);
  });

  it("one with until above its cursor searches from the cursor (the lower of the two bounds), and answers as the listing does", async () => {
    const until = new Date(Date.now() + 3_600_000).toISOString();
    assert.deepEqual(await continuedPlan({ until }), ["SEARCH audit_events USING INDEX audit_events_time ((time,id)<(?,?))"]);
    // The same events, page after page, as without until (every event is before it).
    const pages = async (query: AuditQuery) => {
      const ids: string[] = [];
      let token = "";
      do {
        const page = expectOk(await api.listAuditEvents({ ...query, user_id: userId, page_size: 2, ...(token && { page_token: token }) }, admin));
        ids.push(...page.events.map((e) => e.id));
        token = page.next_page_token;
      } while (token);
      return ids;
    };
    const all = await pages({});
    assert.equal(all.length, 6); // signup, login, user_token.login, 3 bumps
    assert.deepEqual(await pages({ until }), all);
  });

  it("a listing by user_id and type reads that user's events, not every event of the type", async () => {
    assert.deepEqual(await planOf({ user_id: userId, type: "login" }), ["SEARCH audit_events USING INDEX audit_events_user (user_id=?)"]);
    assert.deepEqual(await continuedPlan({ user_id: userId, type: "user_token.bump" }), ["SEARCH audit_events USING INDEX audit_events_user (user_id=? AND (time,id)<(?,?))"]);
  });
});
