// Seed 000's password login on the embedded store: the fsyncs of its log that the answer waits
// for (see src/store/sqlite/sqlite-durability.ts). Every write the login makes is on disk (an
// fsync that started after it returned) before the answer; writes that do not need one of their
// own share the fsync of a later write of the same login.
import assert from "node:assert/strict";
import { fsync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { expectOk } from "../support/api.js";
import { password, uniqueEmail } from "../support/users.js";
import { sessionApi } from "./api.js";

describe("Seed 000 login on the embedded store: the fsyncs it waits for", () => {
  let server: TestServer;
  let db: Database.Database;
  /** What the login writes, as committed now: its session, refresh token, lastLoginAt and audit events. */
  let written: () => string = () => "";
  /** written() as each fsync of the log started, and as the last one to succeed started. */
  let requested: string[] = [];
  let durable = "";
  before(async () => {
    server = await startTestServer({
      fsync: (fd, done) => {
        const covers = written();
        requested.push(covers);
        fsync(fd, (error) => {
          if (!error) durable = covers;
          done(error);
        });
      },
    });
    db = new Database(join(server.config.dataDir, "tessera.db"), { readonly: true });
    const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    written = () =>
      JSON.stringify({
        sessions: count("sessions"),
        refreshTokens: count("refresh_tokens"),
        auditEvents: count("audit_events"),
        lastLogin: db.prepare("SELECT max(last_login_at) AS t FROM users").pluck().get(),
      });
  });
  after(async () => {
    await server?.close();
    db?.close();
  });

  it("POST /session: three fsyncs (the login's audit event; the session, lastLoginAt and refresh token; session.started), the last returned before the answer, covering every write", async () => {
    const api = sessionApi("rest", server.url);
    const email = uniqueEmail();
    expectOk(await api.createUser({ email, password }, { clientId: testClientId }), 201);
    await new Promise((r) => setTimeout(r, 50));
    requested = [];
    const res = await api.createSession({ account_type: "traditional", email, password }, { clientId: testClientId });
    expectOk(res);
    const now = JSON.parse(written()) as Record<string, unknown>;
    assert.ok(now.lastLogin !== null, "lastLoginAt written");
    assert.equal(durable, written(), "every write of the login was covered by an fsync that returned before the answer");
    const covers = requested.map((c) => JSON.parse(c) as Record<string, unknown>);
    assert.equal(covers.length, 3, `fsyncs: ${requested.join(" | ")}`);
    // The second covers the session, lastLoginAt and the refresh token together.
    assert.deepEqual({ ...covers[1], auditEvents: 0 }, { ...now, auditEvents: 0 });
  });
});
