// Seed 000's password login (and seed 002's) on the embedded store: the fsyncs of its log that
// the answer waits for (see src/store/sqlite/sqlite-durability.ts). Every write the login makes is on disk (an
// fsync that started after it returned) before the answer; writes that do not need one of their
// own share the fsync of a later write of the same login.
import assert from "node:assert/strict";
import { fsync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { CallEndedError } from "../../src/call-scope.js";
import { loadConfig } from "../../src/config.js";
import { systemClock } from "../../src/core/clock.js";
import { createCore } from "../../src/core/index.js";
import { silentLogger } from "../../src/logger.js";
import { StoreUnavailableError, type Store } from "../../src/store/ports.js";
import { openSqliteStore, SQLITE_FILE_NAME } from "../../src/store/sqlite/sqlite-store.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { expectOk } from "../support/api.js";
import { password, uniqueEmail } from "../support/users.js";
import { sessionApi } from "./api.js";
import { userTokenApi } from "../user-token/api.js";
import { basic } from "../support/clients.js";

describe("Seed 000 login on the embedded store: the fsyncs it waits for", () => {
  let server: TestServer;
  let db: Database.Database;
  /** What the login writes, as committed now: its session, refresh token, lastLoginAt, user token and audit events. */
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
        userTokens: count("user_tokens"),
        auditEvents: count("audit_events"),
        lastLogin: db.prepare("SELECT max(last_login_at) AS t FROM users").pluck().get(),
      });
  });
  after(async () => {
    await server?.close();
    db?.close();
  });

  it("POST /session: two fsyncs (the login's audit event, the session, lastLoginAt and refresh token; session.started), the last returned before the answer, covering every write", async () => {
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
    assert.equal(covers.length, 2, `fsyncs: ${requested.join(" | ")}`);
    // The first covers the login's event, the session, lastLoginAt and the refresh token together:
    // every write of the login but its last event, session.started.
    assert.deepEqual(covers[0], { ...now, auditEvents: (now.auditEvents as number) - 1 });
  });
});

describe("Seed 000 login on the embedded store: a session that does not start", () => {
  let dir: string;
  let store: Store;
  let db: Database.Database;
  /** Successful login events committed, as each fsync of the log started, and as the last one to succeed started. */
  let durable = -1;
  const loginEvents = () => db.prepare("SELECT count(*) FROM audit_events WHERE type = 'login' AND outcome = 'success'").pluck().get() as number;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "tessera-login-syncs-"));
    store = await openSqliteStore(dir, {
      fsync: (fd, done) => {
        const covers = db?.open ? loginEvents() : -1;
        fsync(fd, (error) => {
          if (!error) durable = covers;
          done(error);
        });
      },
    });
    db = new Database(join(dir, SQLITE_FILE_NAME), { readonly: true });
  });
  afterEach(async () => {
    db.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The core on `store`, with the session's insert failing as `refusal` says. */
  const coreRefusing = (refusal: () => Error) =>
    createCore({
      config: loadConfig({ TESSERA_ARGON2_MEMORY_KIB: "1024", TESSERA_ARGON2_ITERATIONS: "1", TESSERA_CLIENT_IDS: testClientId }),
      store: { ...store, sessions: { ...store.sessions, create: () => Promise.reject(refusal()) } },
      clock: systemClock,
      logger: silentLogger,
    });

  for (const [name, refusal] of [
    ["refused by the store", () => new StoreUnavailableError("embedded store unavailable (SQLITE_BUSY)")],
    ["its caller gone", () => new CallEndedError()],
  ] as const) {
    it(`the session ${name}: the login's success event is on disk before the error goes out`, async () => {
      const core = await coreRefusing(refusal);
      const email = uniqueEmail();
      await core.users.create({ login: email, kind: "email", password, clientAddress: "addr" });
      await new Promise((r) => setTimeout(r, 50));
      await assert.rejects(core.sessions.logIn({ accountType: "traditional", email, password, clientId: testClientId, clientAddress: "addr" }), refusal().constructor as new () => Error);
      assert.equal(loginEvents(), 1, "the login's success was recorded");
      assert.equal(durable, 1, "and an fsync that started after it returned before logIn failed");
    });
  }
});

describe("Seed 002 login on the embedded store: the fsyncs it waits for", () => {
  let server: TestServer;
  let db: Database.Database;
  /** What the login writes, as committed now: its user token and audit events. */
  let written: () => string = () => "";
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
    written = () => JSON.stringify({ userTokens: count("user_tokens"), auditEvents: count("audit_events") });
  });
  after(async () => {
    await server?.close();
    db?.close();
  });

  it("POST /auth/login: two fsyncs (the login's audit event and the user token; user_token.login), the last returned before the answer, covering every write", async () => {
    const email = uniqueEmail();
    expectOk(await sessionApi("rest", server.url).createUser({ email, password }, { clientId: testClientId }), 201);
    await new Promise((r) => setTimeout(r, 50));
    requested = [];
    expectOk(await userTokenApi("rest", server.url).login(undefined, basic(email, password)));
    const now = JSON.parse(written()) as Record<string, number>;
    assert.equal(durable, written(), "every write of the login was covered by an fsync that returned before the answer");
    const covers = requested.map((c) => JSON.parse(c) as Record<string, number>);
    assert.equal(covers.length, 2, `fsyncs: ${requested.join(" | ")}`);
    // The first covers the login's event and the user token together: all but user_token.login.
    assert.deepEqual(covers[0], { ...now, auditEvents: now.auditEvents! - 1 });
  });
});
