// Seed 000's password login, refresh and logout (and seed 002's login) on the embedded store:
// the fsyncs of its log that the answer waits for (see src/store/sqlite/sqlite-durability.ts).
// Every write the call makes is on disk (an fsync that started after it returned) before the
// answer; writes that do not need one of their own share the fsync of a later write of the same
// call.
import assert from "node:assert/strict";
import { fsync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { decodeJwt } from "jose";
import { CallEndedError } from "../../src/call-scope.js";
import { AuthError } from "../../src/core/errors.js";
import type { TokenPair } from "../../src/core/sessions.js";
import { loadConfig } from "../../src/config.js";
import { systemClock } from "../../src/core/clock.js";
import { createCore } from "../../src/core/index.js";
import { hashSecret } from "../../src/core/secrets.js";
import { silentLogger } from "../../src/logger.js";
import { StoreUnavailableError, type Store } from "../../src/store/ports.js";
import { openSqliteStore, SQLITE_FILE_NAME } from "../../src/store/sqlite/sqlite-store.js";
import { startTestServer, testClientId, type TestServer } from "../support/server.js";
import { expectOk } from "../support/api.js";
import { password, uniqueEmail } from "../support/users.js";
import { sessionApi } from "./api.js";
import { userTokenApi } from "../user-token/api.js";
import { basic, bearer, rest } from "../support/clients.js";
import { assertStoreUnavailable } from "../support/error-details.js";

/**
 * `sessions` whose first findById, once it has read, lets `meanwhile` run (another connection's
 * writes) before it answers: a race between a call's read of its session and its later writes.
 */
function racingFirstRead(sessions: Store["sessions"], meanwhile: (id: string) => Promise<void>): { sessions: Store["sessions"]; raced: () => boolean } {
  let raced = false;
  return {
    sessions: {
      ...sessions,
      findById: async (id) => {
        const found = await sessions.findById(id);
        if (!raced) {
          raced = true;
          await meanwhile(id);
        }
        return found;
      },
    },
    raced: () => raced,
  };
}

describe("Seed 000 login, refresh and logout on the embedded store: the fsyncs they wait for", () => {
  let server: TestServer;
  let db: Database.Database;
  /** What the login writes, as committed now: its session, refresh token, lastLoginAt, user token and audit events. */
  let written: () => string = () => "";
  /** written() as each fsync of the log started, and as the last one to succeed started. */
  let requested: string[] = [];
  let durable = "";
  /** When set, each fsync of the log is made once it resolves. */
  let hold: (() => Promise<void>) | undefined;
  before(async () => {
    server = await startTestServer({
      fsync: (fd, done) => {
        // What the store counts as covered: what was committed as it asked for the fsync.
        const covers = written();
        requested.push(covers);
        const held = hold?.() ?? Promise.resolve();
        void held.then(() => {
          fsync(fd, (error) => {
            if (!error) durable = covers;
            done(error);
          });
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
        // What a refresh and a logout change: spends, access token jtis, ends.
        spent: db.prepare("SELECT count(*) FROM refresh_tokens WHERE spent_at IS NOT NULL").pluck().get(),
        accessJtis: db.prepare("SELECT group_concat(access_jti) FROM (SELECT access_jti FROM sessions ORDER BY id)").pluck().get(),
        ended: db.prepare("SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL").pluck().get(),
      });
  });
  after(async () => {
    await server?.close();
    db?.close();
  });

  it("POST /session: one fsync (the login's audit event, the session, lastLoginAt, the refresh token and session.started), returned before the answer, covering every write", async () => {
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
    assert.equal(covers.length, 1, `fsyncs: ${requested.join(" | ")}`);
    assert.deepEqual(covers[0], now);
  });

  it("POST /session commits its two audit events (login, session.started) in one transaction: the audit table and its indexes are written once per login, not twice", async () => {
    const api = sessionApi("rest", server.url);
    const email = uniqueEmail();
    expectOk(await api.createUser({ email, password }, { clientId: testClientId }), 201);
    await new Promise((r) => setTimeout(r, 50));
    const commits = await auditCommits(async () => {
      expectOk(await api.createSession({ account_type: "traditional", email, password }, { clientId: testClientId }));
    });
    assert.deepEqual(commits, [2]);
  });

  it("POST /session stores its session and its first refresh token in one transaction: one commit, so a crash between them cannot leave a session without its refresh token", async () => {
    const api = sessionApi("rest", server.url);
    const email = uniqueEmail();
    expectOk(await api.createUser({ email, password }, { clientId: testClientId }), 201);
    await new Promise((r) => setTimeout(r, 50));
    // The tables each commit of the server's connection inserts into (a transaction's, or a
    // statement's own), of the two, read from the statements it runs (an INSERT ... RETURNING
    // runs with all()).
    const statement = Object.getPrototypeOf(new Database(":memory:").prepare("SELECT 1")) as Record<"run" | "all", (...args: unknown[]) => unknown>;
    const { run, all } = statement;
    const commits: string[][] = [];
    let open: string[] | undefined;
    const seen = (sql: string) => {
      if (/^BEGIN\b/i.test(sql)) open = [];
      else if (/^COMMIT\b/i.test(sql)) {
        if (open?.length) commits.push(open);
        open = undefined;
      } else {
        const table = /^INSERT INTO (sessions|refresh_tokens)\b/.exec(sql)?.[1];
        if (table === undefined) return;
        if (open === undefined) commits.push([table]);
        else open.push(table);
      }
    };
    statement.run = function (this: Database.Statement, ...args: unknown[]) {
      seen(this.source.trim());
      return run.apply(this, args);
    };
    statement.all = function (this: Database.Statement, ...args: unknown[]) {
      seen(this.source.trim());
      return all.apply(this, args);
    };
    try {
      expectOk(await api.createSession({ account_type: "traditional", email, password }, { clientId: testClientId }));
    } finally {
      Object.assign(statement, { run, all });
    }
    assert.deepEqual(commits, [["sessions", "refresh_tokens"]]);
  });

  it("POST /session, 4 logins at once: their fsyncs are shared (at most 2, the first held until every login's session.started is committed), and the last answer comes after one that covers every write of the four", async () => {
    const api = sessionApi("rest", server.url);
    const emails = [uniqueEmail(), uniqueEmail(), uniqueEmail(), uniqueEmail()];
    for (const email of emails) expectOk(await api.createUser({ email, password }, { clientId: testClientId }), 201);
    await new Promise((r) => setTimeout(r, 50));
    const startedEvents = () => db.prepare("SELECT count(*) FROM audit_events WHERE type = 'session.started'").pluck().get() as number;
    const before = startedEvents();
    requested = [];
    // The first fsync of the logins waits (at most 5 s) until all four have committed their
    // session.started event: every later one asked for meanwhile is one.
    let held = false;
    hold = async () => {
      if (held) return;
      held = true;
      for (let i = 0; i < 500 && startedEvents() < before + emails.length; i++) await new Promise((r) => setTimeout(r, 10));
    };
    /** What the last fsync to succeed covered, as each answer came. */
    const coveredAtAnswer: string[] = [];
    try {
      await Promise.all(
        emails.map(async (email) => {
          expectOk(await api.createSession({ account_type: "traditional", email, password }, { clientId: testClientId }));
          coveredAtAnswer.push(durable);
        }),
      );
    } finally {
      hold = undefined;
    }
    assert.equal(startedEvents(), before + emails.length);
    assert.ok(requested.length <= 2, `fsyncs: ${requested.join(" | ")}`);
    // The last answer came after an fsync that covered every write of the four logins.
    assert.equal(coveredAtAnswer.at(-1), written());
  });

  /** A new user's session, every write of its login on disk. */
  const loggedIn = async (api: ReturnType<typeof sessionApi>) => {
    const email = uniqueEmail();
    expectOk(await api.createUser({ email, password }, { clientId: testClientId }), 201);
    const pair = expectOk(await api.createSession({ account_type: "traditional", email, password }, { clientId: testClientId }));
    await new Promise((r) => setTimeout(r, 50));
    requested = [];
    return { refresh_token: pair.refresh_token, creds: { clientId: testClientId, access: pair.access_token } };
  };

  it("PUT /session (a refresh): one fsync (the spend, the session's new jti, the child refresh token and session.refreshed), returned before the answer, covering every write", async () => {
    const api = sessionApi("rest", server.url);
    const { refresh_token, creds } = await loggedIn(api);
    const before = JSON.parse(written()) as Record<string, number>;
    expectOk(await api.refreshSession({ refresh_token }, creds));
    const now = JSON.parse(written()) as Record<string, number>;
    assert.deepEqual([now.spent, now.refreshTokens, now.auditEvents], [before.spent! + 1, before.refreshTokens! + 1, before.auditEvents! + 1]);
    assert.notEqual(now.accessJtis, before.accessJtis, "the session's jti moved");
    assert.equal(durable, written(), "every write of the refresh was covered by an fsync that returned before the answer");
    assert.equal(requested.length, 1, `fsyncs: ${requested.join(" | ")}`);
    assert.deepEqual(JSON.parse(requested[0]!), now);
  });

  it("DELETE /session (a logout): one fsync (the session's end, its refresh tokens' delete and session.ended), returned before the answer, covering every write", async () => {
    const api = sessionApi("rest", server.url);
    const { creds } = await loggedIn(api);
    const before = JSON.parse(written()) as Record<string, number>;
    expectOk(await api.deleteSession(creds));
    const now = JSON.parse(written()) as Record<string, number>;
    assert.deepEqual([now.ended, now.refreshTokens, now.auditEvents], [before.ended! + 1, before.refreshTokens! - 1, before.auditEvents! + 1]);
    assert.equal(durable, written(), "every write of the logout was covered by an fsync that returned before the answer");
    assert.equal(requested.length, 1, `fsyncs: ${requested.join(" | ")}`);
    assert.deepEqual(JSON.parse(requested[0]!), now);
  });

  it("PUT /session twice at once with the same tokens, the first fsync held: both answer the same pair, each only after an fsync that covers the refresh's child refresh token has returned", async () => {
    const api = sessionApi("rest", server.url);
    const { refresh_token, creds } = await loggedIn(api);
    const before = JSON.parse(written()) as Record<string, number>;
    // The first fsync waits (at most 5 s) until both callers have spent (or tried to spend) the
    // token and the child refresh token is committed, and 100 ms more.
    let held = false;
    hold = async () => {
      if (held) return;
      held = true;
      for (let i = 0; i < 500 && (JSON.parse(written()) as Record<string, number>).refreshTokens! <= before.refreshTokens!; i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 100));
    };
    const coveredAtAnswer: Array<Record<string, number>> = [];
    let answers: Array<{ access_token: string; refresh_token: string }>;
    try {
      answers = await Promise.all(
        [0, 1].map(async () => {
          const answer = expectOk(await api.refreshSession({ refresh_token }, creds));
          coveredAtAnswer.push(JSON.parse(durable) as Record<string, number>);
          return answer;
        }),
      );
    } finally {
      hold = undefined;
    }
    assert.equal(answers[0]!.refresh_token, answers[1]!.refresh_token, "the same pair");
    const now = JSON.parse(written()) as Record<string, number>;
    assert.equal(now.refreshTokens, before.refreshTokens! + 1, "one child refresh token");
    for (const covered of coveredAtAnswer) {
      assert.deepEqual([covered.spent, covered.refreshTokens, covered.accessJtis], [now.spent, now.refreshTokens, now.accessJtis], "the refresh's writes were on disk before each answer");
    }
  });
});

describe("Seed 000 refresh and logout on the embedded store: a failed fsync of the log", function () {
  this.timeout(30_000);
  const eio = Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO", syscall: "fsync" });
  let server: TestServer | undefined;
  let failing = false;
  beforeEach(async () => {
    failing = false;
    server = await startTestServer({ fsync: (fd, done) => (failing ? setImmediate(done, eio) : fsync(fd, done)) });
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  for (const [call, name] of [
    ["refresh", "PUT /session"],
    ["logout", "DELETE /session"],
  ] as const) {
    it(`${name}: its fsync fails: 503 STORE_UNAVAILABLE`, async () => {
      const api = sessionApi("rest", server!.url);
      const email = uniqueEmail();
      expectOk(await api.createUser({ email, password }, { clientId: testClientId }), 201);
      const pair = expectOk(await api.createSession({ account_type: "traditional", email, password }, { clientId: testClientId }));
      failing = true;
      const headers = { "x-koms-clientid": testClientId, ...bearer(pair.access_token) };
      assertStoreUnavailable(
        call === "refresh"
          ? await rest(server!.url, "PUT", "/session", { json: { refresh_token: pair.refresh_token }, headers })
          : await rest(server!.url, "DELETE", "/session", { headers }),
      );
    });
  }
});

// The loser of a race on a single-use spend (a second logout, a concurrent caller of the same
// refresh) is answered by the store at once, with a wait (its `durable`) for the winner's
// commit to be on disk. When the fsync that would make it so fails, the loser's call fails
// too (it must not answer from a commit that may be lost), and no wait is left unhandled.
describe("Seed 000 refresh and logout on the embedded store (the core): the loser of a spend when the fsync of the log fails", function () {
  this.timeout(30_000);
  const eio = Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO", syscall: "fsync" });
  let dir: string;
  let store: Store;
  /** Another connection on the same file (another worker process): its fsyncs are held until released. */
  let other: Store;
  let otherHeld: Array<() => void> = [];
  let otherFree = false;
  let failing = false;
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => void unhandled.push(e);
  beforeEach(async () => {
    failing = false;
    otherHeld = [];
    otherFree = false;
    unhandled.length = 0;
    process.on("unhandledRejection", onUnhandled);
    dir = mkdtempSync(join(tmpdir(), "tessera-loser-fsync-"));
    store = await openSqliteStore(dir, { fsync: (fd, done) => (failing ? setImmediate(done, eio) : fsync(fd, done)) });
    other = await openSqliteStore(dir, { fsync: (fd, done) => (otherFree ? fsync(fd, done) : void otherHeld.push(() => fsync(fd, done))) });
  });
  afterEach(async () => {
    // A rejection nobody handles is reported once the microtasks of its turn have run.
    await new Promise((r) => setTimeout(r, 50));
    process.off("unhandledRejection", onUnhandled);
    otherFree = true;
    for (const go of otherHeld.splice(0)) go();
    await other.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const coreOn = (s: Store, env: Record<string, string> = {}) =>
    createCore({
      config: loadConfig({ TESSERA_ARGON2_MEMORY_KIB: "1024", TESSERA_ARGON2_ITERATIONS: "1", TESSERA_CLIENT_IDS: testClientId, ...env }),
      store: s,
      clock: systemClock,
      logger: silentLogger,
    });
  type Core = Awaited<ReturnType<typeof coreOn>>;
  /** A session of a new user of `core`, its access checked. */
  const session = async (core: Core) => {
    const email = uniqueEmail();
    await core.users.create({ login: email, kind: "email", password, clientAddress: "addr" });
    const pair = await core.sessions.logIn({ accountType: "traditional", email, password, clientId: testClientId, clientAddress: "addr" });
    return { pair, access: await core.sessions.verifyAccess(pair.accessToken, testClientId, false) };
  };
  type Session = Awaited<ReturnType<typeof session>>;
  const refusedForTheFailure = (e: unknown) => e instanceof StoreUnavailableError && /could not sync its log/.test(e.message);
  /** Starts `o`'s refresh of the session's tokens; resolves once it has spent the refresh token (the refresh then waits for its held fsync). */
  const spentBy = async (o: Core, s: Session) => {
    const refresh = o.sessions.refresh(s.access, s.pair.refreshToken);
    refresh.catch(() => {});
    const hash = hashSecret(s.pair.refreshToken);
    for (let i = 0; i < 500 && (await store.refreshTokens.findByHash(hash))?.spentAt === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  };

  for (const [audit, env] of [
    ["auditing on", {}],
    ["auditing off (TESSERA_AUDIT=off)", { TESSERA_AUDIT: "off" }],
  ] as const) {
    it(`a logout, ${audit}, of a session the other connection has just ended (not yet on disk): STORE_UNAVAILABLE, not SESSION_ENDED; nothing left unhandled`, async () => {
      const c = await coreOn(store, env);
      const { access } = await session(c);
      // The other connection's logout: the end and the delete committed, not yet on disk.
      assert.equal((await other.sessions.endThenSync(access.sessionId, new Date())).ended, true);
      await other.refreshTokens.deleteBySessionThenSync(access.sessionId);
      failing = true;
      await assert.rejects(c.sessions.end(access.sessionId, access.userId, { logout: true }), refusedForTheFailure);
      assert.deepEqual(unhandled, []);
    });

    // What the other connection does between this refresh's read of the session (the token read
    // unspent) and its spend of the token: its writes committed, its fsyncs held.
    for (const [what, answer, meanwhile] of [
      ["refreshes the same tokens", "the pair", (o: Core, s: Session) => spentBy(o, s)],
      ["refreshes the same tokens and ends the session", "SESSION_ENDED", async (o: Core, s: Session) => {
        await spentBy(o, s);
        await other.sessions.endThenSync(s.access.sessionId, new Date());
      }],
      ["logs the session out (its refresh tokens deleted)", "SESSION_ENDED", async (_o: Core, s: Session) => {
        await other.sessions.endThenSync(s.access.sessionId, new Date());
        await other.refreshTokens.deleteBySessionThenSync(s.access.sessionId);
      }],
    ] as const) {
      it(`a refresh, ${audit}, whose spend loses to the other connection, which ${what} (not yet on disk): STORE_UNAVAILABLE, not ${answer}; nothing left unhandled`, async () => {
        const s = await session(await coreOn(store, env));
        const o = await coreOn(other);
        const racing = racingFirstRead(store.sessions, async () => {
          await meanwhile(o, s);
          failing = true;
        });
        const c = await coreOn({ ...store, sessions: racing.sessions }, env);
        await assert.rejects(c.sessions.refresh(s.access, s.pair.refreshToken), refusedForTheFailure);
        assert.ok(racing.raced());
        assert.deepEqual(unhandled, []);
      });
    }
  }

  // A login whose credential is committed (not yet on disk), then its read of the user's
  // credential epoch refused: the error waits for the credential's fsync, which fails.
  for (const [audit, env] of [
    ["auditing on", {}],
    ["auditing off (TESSERA_AUDIT=off)", { TESSERA_AUDIT: "off" }],
  ] as const) {
    for (const [name, stored, logIn] of [
      ["a login", (committed: () => void): Partial<Store> => ({ sessions: { ...store.sessions, createThenSync: (session, token, cap) => store.sessions.createThenSync(session, token, cap).finally(committed) } }),
        (c: Core, email: string) => c.sessions.logIn({ accountType: "traditional", email, password, clientId: testClientId, clientAddress: "addr" })],
      ["a seed 002 login", (committed: () => void): Partial<Store> => ({ userTokens: { ...store.userTokens, createThenSync: (token, cap) => store.userTokens.createThenSync(token, cap).finally(committed) } }),
        (c: Core, email: string) => c.userTokens.login({ login: email, password, clientAddress: "addr" })],
    ] as const) {
      it(`${name}, ${audit}, its credential stored, then its read of the credential epoch refused: STORE_UNAVAILABLE for the failed fsync; nothing left unhandled`, async () => {
        let committed = false;
        const c = await coreOn(
          {
            ...store,
            users: { ...store.users, findById: (id) => (committed ? Promise.reject(new StoreUnavailableError("embedded store unavailable (SQLITE_BUSY)")) : store.users.findById(id)) },
            ...stored(() => {
              committed = true;
              failing = true;
            }),
          },
          env,
        );
        const email = uniqueEmail();
        await c.users.create({ login: email, kind: "email", password, clientAddress: "addr" });
        await assert.rejects(logIn(c, email), refusedForTheFailure);
        assert.ok(committed);
        assert.deepEqual(unhandled, []);
      });
    }
  }

  for (const [name, calls] of [
    ["two logouts at once", (c: Core, s: Session) => [0, 1].map(() => c.sessions.end(s.access.sessionId, s.access.userId, { logout: true }))],
    ["two refreshes at once", (c: Core, s: Session) => [0, 1].map(() => c.sessions.refresh(s.access, s.pair.refreshToken))],
    ["a refresh and a logout at once", (c: Core, s: Session) => [c.sessions.refresh(s.access, s.pair.refreshToken), c.sessions.end(s.access.sessionId, s.access.userId, { logout: true })]],
  ] as const) {
    it(`${name} on one connection, its fsyncs failing: each call settles, none with a success; nothing left unhandled`, async () => {
      const c = await coreOn(store, { TESSERA_AUDIT: "off" });
      const s = await session(c);
      failing = true;
      const outcomes = await Promise.allSettled(calls(c, s));
      assert.ok(outcomes.every((o) => o.status === "rejected"), JSON.stringify(outcomes.map((o) => o.status)));
      assert.deepEqual(unhandled, []);
    });
  }
});

describe("Seed 000 and 002 logins, seed 000 refreshes and logouts on the embedded store (the core): a write or an audit event that is not stored, auditing off, concurrent callers", () => {
  let dir: string;
  let store: Store;
  let db: Database.Database;
  /** What a login writes, as committed now. */
  let written: () => Record<string, unknown> = () => ({});
  /** written() as each fsync of the log was asked for, and as the last one to succeed was. */
  let requested: Array<Record<string, unknown>> = [];
  let durable: Record<string, unknown> = {};
  /** When set, each fsync of the log is made once it resolves. */
  let hold: (() => Promise<void>) | undefined;
  const loginEvents = () => db.prepare("SELECT count(*) FROM audit_events WHERE type = 'login' AND outcome = 'success'").pluck().get() as number;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "tessera-login-syncs-"));
    hold = undefined;
    store = await openSqliteStore(dir, {
      fsync: (fd, done) => {
        const covers = db?.open ? written() : {};
        requested.push(covers);
        void (hold?.() ?? Promise.resolve()).then(() =>
          fsync(fd, (error) => {
            if (!error) durable = covers;
            done(error);
          }),
        );
      },
    });
    db = new Database(join(dir, SQLITE_FILE_NAME), { readonly: true });
    const count = (table: string) => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
    written = () => ({
      sessions: count("sessions"),
      refreshTokens: count("refresh_tokens"),
      userTokens: count("user_tokens"),
      auditEvents: count("audit_events"),
      loginEvents: loginEvents(),
      lastLogin: db.prepare("SELECT max(last_login_at) FROM users").pluck().get(),
      spent: db.prepare("SELECT count(*) FROM refresh_tokens WHERE spent_at IS NOT NULL").pluck().get(),
      accessJtis: db.prepare("SELECT group_concat(access_jti) FROM (SELECT access_jti FROM sessions ORDER BY id)").pluck().get(),
      ended: db.prepare("SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL").pluck().get(),
      disabledUserTokens: db.prepare("SELECT count(*) FROM user_tokens WHERE enabled = 0").pluck().get(),
    });
  });
  afterEach(async () => {
    db.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The core on `store` with `ports` in place of its own, and `env`. */
  const coreWith = (ports: Partial<Store>, env: Record<string, string> = {}) =>
    createCore({
      config: loadConfig({ TESSERA_ARGON2_MEMORY_KIB: "1024", TESSERA_ARGON2_ITERATIONS: "1", TESSERA_CLIENT_IDS: testClientId, ...env }),
      store: { ...store, ...ports },
      clock: systemClock,
      logger: silentLogger,
    });

  /** A user of `core`, its sign-up's writes on disk. */
  const signedUp = async (core: Awaited<ReturnType<typeof coreWith>>) => {
    const email = uniqueEmail();
    await core.users.create({ login: email, kind: "email", password, clientAddress: "addr" });
    await new Promise((r) => setTimeout(r, 50));
    requested = [];
    return email;
  };
  const logIn = (core: Awaited<ReturnType<typeof coreWith>>, email: string) =>
    core.sessions.logIn({ accountType: "traditional", email, password, clientId: testClientId, clientAddress: "addr" });

  const logInToken = (core: Awaited<ReturnType<typeof coreWith>>, email: string) => core.userTokens.login({ login: email, password, clientAddress: "addr" });

  const failures = [
    ["refused by the store", () => new StoreUnavailableError("embedded store unavailable (SQLITE_BUSY)")],
    ["its caller gone", () => new CallEndedError()],
  ] as const;
  for (const [step, ports] of [
    ["the session and its refresh token", (refusal: () => Error): Partial<Store> => ({ sessions: { ...store.sessions, createThenSync: () => Promise.reject(refusal()) } })],
  ] as const) {
    for (const [name, refusal] of failures) {
      it(`${step} ${name}: the login's success event, and every audit event stored, is on disk before the error goes out`, async () => {
        const core = await coreWith(ports(refusal));
        const email = await signedUp(core);
        await assert.rejects(logIn(core, email), refusal().constructor as new () => Error);
        const now = written();
        assert.equal(now.loginEvents, 1, "the login's success was recorded");
        assert.equal(durable.loginEvents, 1, "and an fsync that started after it returned before logIn failed");
        assert.equal(durable.auditEvents, now.auditEvents, "so did every event recorded before the error");
      });
    }
  }

  it("the refresh token refused inside the store (a trigger on its table): the login fails and leaves no session row, the session's insert rolled back with it", async () => {
    const writer = new Database(join(dir, SQLITE_FILE_NAME));
    try {
      writer.exec("CREATE TRIGGER refuse_refresh_tokens BEFORE INSERT ON refresh_tokens BEGIN SELECT RAISE(ABORT, 'refused'); END");
    } finally {
      writer.close();
    }
    const core = await coreWith({});
    const email = await signedUp(core);
    await assert.rejects(logIn(core, email), /refused/);
    const now = written();
    assert.deepEqual([now.sessions, now.refreshTokens], [0, 0], "neither the session nor its refresh token is stored");
    assert.equal(durable.loginEvents, 1, "the login's success event is on disk before the error, as for any refusal");
  });

  for (const [name, refusal] of failures) {
    it(`seed 002: the user token ${name}: the login's success event, and every audit event stored, is on disk before the error goes out`, async () => {
      const core = await coreWith({ userTokens: { ...store.userTokens, createThenSync: () => Promise.reject(refusal()) } });
      const email = await signedUp(core);
      await assert.rejects(logInToken(core, email), refusal().constructor as new () => Error);
      const now = written();
      assert.equal(now.loginEvents, 1, "the login's success was recorded");
      assert.equal(durable.loginEvents, 1, "and an fsync that started after it returned before the login failed");
      assert.equal(durable.auditEvents, now.auditEvents, "so did every event recorded before the error");
    });
  }

  it("seed 002, auditing off (TESSERA_AUDIT=off): the login waits for one fsync, which covers the user token", async () => {
    const core = await coreWith({}, { TESSERA_AUDIT: "off" });
    const email = await signedUp(core);
    await logInToken(core, email);
    const now = written();
    assert.equal(now.userTokens, 1);
    assert.deepEqual(durable, now, "covered by an fsync that returned before the answer");
    assert.equal(requested.length, 1, `fsyncs: ${JSON.stringify(requested)}`);
  });

  it("seed 002, user_token.login refused by the store: the login still waits for one fsync, which covers the login's event and the user token", async () => {
    const events = store.auditEvents;
    const core = await coreWith({
      auditEvents: { ...events, append: (event, options) => (event.type === "user_token.login" ? Promise.reject(new StoreUnavailableError("embedded store unavailable (SQLITE_BUSY)")) : events.append(event, options)) },
    });
    const email = await signedUp(core);
    await logInToken(core, email);
    const now = written();
    assert.deepEqual([now.userTokens, now.loginEvents], [1, 1]);
    assert.deepEqual(durable, now, "covered by an fsync that returned before the answer");
    assert.equal(requested.length, 1, `fsyncs: ${JSON.stringify(requested)}`);
  });

  it("auditing off (TESSERA_AUDIT=off): the login waits for one fsync, which covers the session, lastLoginAt and the refresh token", async () => {
    const core = await coreWith({}, { TESSERA_AUDIT: "off" });
    const email = await signedUp(core);
    await logIn(core, email);
    const now = written();
    assert.equal(now.refreshTokens, 1);
    assert.ok(now.lastLogin !== null, "lastLoginAt written");
    assert.deepEqual(durable, now, "covered by an fsync that returned before the answer");
    assert.equal(requested.length, 1, `fsyncs: ${JSON.stringify(requested)}`);
  });

  /** A session of a new user of `core`, every write of its login on disk, and its access checked. */
  const session = async (core: Awaited<ReturnType<typeof coreWith>>) => {
    const email = await signedUp(core);
    const pair = await logIn(core, email);
    const access = await core.sessions.verifyAccess(pair.accessToken, testClientId, false);
    await new Promise((r) => setTimeout(r, 50));
    requested = [];
    return { pair, access };
  };
  /** `core` with the store refusing audit events of `type`. */
  const refusing = (type: string) => {
    const events = store.auditEvents;
    return coreWith({
      auditEvents: { ...events, append: (event, options) => (event.type === type ? Promise.reject(new StoreUnavailableError("embedded store unavailable (SQLITE_BUSY)")) : events.append(event, options)) },
    });
  };
  for (const [name, core] of [
    ["auditing off (TESSERA_AUDIT=off)", () => coreWith({}, { TESSERA_AUDIT: "off" })],
    ["session.refreshed refused by the store", () => refusing("session.refreshed")],
  ] as const) {
    it(`refresh, ${name}: one fsync, which covers the spend, the session's new jti and the child refresh token`, async () => {
      const c = await core();
      const { pair, access } = await session(c);
      await c.sessions.refresh(access, pair.refreshToken);
      const now = written();
      assert.deepEqual([now.spent, now.refreshTokens], [1, 2]);
      assert.deepEqual(durable, now, "covered by an fsync that returned before the answer");
      assert.equal(requested.length, 1, `fsyncs: ${JSON.stringify(requested)}`);
    });
  }
  for (const [name, core] of [
    ["auditing off (TESSERA_AUDIT=off)", () => coreWith({}, { TESSERA_AUDIT: "off" })],
    ["session.ended refused by the store", () => refusing("session.ended")],
  ] as const) {
    it(`logout, ${name}: one fsync, which covers the session's end and its refresh tokens' delete`, async () => {
      const c = await core();
      const { access } = await session(c);
      await c.sessions.end(access.sessionId, access.userId, { logout: true });
      const now = written();
      assert.deepEqual([now.ended, now.refreshTokens], [1, 0]);
      assert.deepEqual(durable, now, "covered by an fsync that returned before the answer");
      assert.equal(requested.length, 1, `fsyncs: ${JSON.stringify(requested)}`);
    });
  }

  it("two logouts at once, auditing off: one ends the session, the other is SESSION_ENDED, each once the first logout's writes are on disk", async () => {
    const c = await coreWith({}, { TESSERA_AUDIT: "off" });
    const { access } = await session(c);
    /** What the last fsync to succeed covered, as each call settled. */
    const coveredAtAnswer: Array<Record<string, unknown>> = [];
    const outcomes = await Promise.allSettled(
      [0, 1].map(() => c.sessions.end(access.sessionId, access.userId, { logout: true }).finally(() => coveredAtAnswer.push(durable))),
    );
    assert.deepEqual(outcomes.map((o) => o.status), ["fulfilled", "rejected"]);
    const refused = (outcomes[1] as PromiseRejectedResult).reason as unknown;
    assert.ok(refused instanceof AuthError && refused.reason === "SESSION_ENDED", String(refused));
    assert.deepEqual(coveredAtAnswer, [written(), written()], "every write on disk before each answer");
  });

  it("the same refresh twice at once, auditing off, the first fsync held: both answer the same pair, each only after an fsync that covers the child refresh token has returned", async () => {
    const c = await coreWith({}, { TESSERA_AUDIT: "off" });
    const { pair, access } = await session(c);
    // The first fsync waits (at most 5 s) until the child refresh token is committed, and 100 ms more.
    let held = false;
    hold = async () => {
      if (held) return;
      held = true;
      for (let i = 0; i < 500 && written().refreshTokens !== 2; i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 100));
    };
    const coveredAtAnswer: Array<Record<string, unknown>> = [];
    const answers = await Promise.all([0, 1].map(() => c.sessions.refresh(access, pair.refreshToken).finally(() => coveredAtAnswer.push(durable))));
    assert.equal(answers[0].refreshToken, answers[1].refreshToken, "the same pair");
    const now = written();
    assert.deepEqual([now.spent, now.refreshTokens], [1, 2]);
    assert.deepEqual(coveredAtAnswer, [now, now], "the refresh's writes were on disk before each answer");
  });

  // The loser of a race on a single-use spend: its answer rests on the winner's commit, which
  // must be on disk before it goes out, and the loser's own audit event waits for an fsync too.
  // One fsync that starts after both commits covers both. The winner here is another connection
  // on the same file (another worker process): its commits are made, its own fsyncs held, so the
  // loser's fsyncs are the only ones that can make the winner's commits durable.
  describe("the loser of a spend, its winner another connection on the file whose fsyncs are held", () => {
    let other: Store;
    /** The other connection's fsyncs, each made once released; none held once `otherFree`. */
    let otherHeld: Array<() => void> = [];
    let otherFree = false;
    beforeEach(async () => {
      otherHeld = [];
      otherFree = false;
      other = await openSqliteStore(dir, { fsync: (fd, done) => (otherFree ? fsync(fd, done) : void otherHeld.push(() => fsync(fd, done))) });
    });
    afterEach(async () => {
      otherFree = true;
      for (const go of otherHeld.splice(0)) go();
      await other.close();
    });
    const otherCore = () =>
      createCore({
        config: loadConfig({ TESSERA_ARGON2_MEMORY_KIB: "1024", TESSERA_ARGON2_ITERATIONS: "1", TESSERA_CLIENT_IDS: testClientId }),
        store: other,
        clock: systemClock,
        logger: silentLogger,
      });
    /** Until `done()` holds (at most 5 s). */
    const until = async (done: () => boolean, what: string) => {
      for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(done(), what);
    };
    /** Lets the other connection's held fsyncs (and every later one) go on, and waits for `call`. */
    const release = async (call: Promise<unknown>) => {
      otherFree = true;
      for (const go of otherHeld.splice(0)) go();
      await call.catch(() => {});
    };

    it("a logout of a session the other connection has just ended (its session.ended committed, not yet on disk): SESSION_ENDED after one fsync, which covers the winner's end and the loser's event", async () => {
      const c = await coreWith({});
      const { access } = await session(c);
      const before = written();
      const winner = (await otherCore()).sessions.end(access.sessionId, access.userId, { logout: true });
      await until(() => written().ended === 1 && written().auditEvents === (before.auditEvents as number) + 1, "the winner's writes committed");
      requested = [];
      await assert.rejects(c.sessions.end(access.sessionId, access.userId, { logout: true }), (e: unknown) => e instanceof AuthError && e.reason === "SESSION_ENDED");
      const now = written();
      assert.deepEqual([now.ended, now.auditEvents], [1, (before.auditEvents as number) + 2], "the winner's end and events, and the loser's event");
      assert.deepEqual(durable, now, "on disk before the answer");
      assert.equal(requested.length, 1, `fsyncs: ${JSON.stringify(requested)}`);
      await release(winner);
    });

    it("the same refresh as the other connection's (its writes committed, not yet on disk): the same pair after one fsync, which covers the winner's writes and the loser's event", async () => {
      const c = await coreWith({});
      const { pair, access } = await session(c);
      const before = written();
      const winner = (await otherCore()).sessions.refresh(access, pair.refreshToken);
      await untilWinnerCommitted(before);
      const answer = await c.sessions.refresh(access, pair.refreshToken);
      await samePairAfterOneFsync(answer, winner, before);
    });

    /** Until the other connection's refresh has committed its writes (its child token, its event); then fsyncs are counted afresh. */
    const untilWinnerCommitted = async (before: Record<string, unknown>) => {
      await until(() => written().refreshTokens === 2 && written().auditEvents === (before.auditEvents as number) + 1, "the winner's writes committed");
      requested = [];
    };

    /**
     * The loser of a refresh answered `answer`: the winner's writes and event and its own event on
     * disk before it, one fsync for all of them, and the winner's pair.
     */
    const samePairAfterOneFsync = async (answer: TokenPair, winner: Promise<TokenPair>, before: Record<string, unknown>) => {
      const now = written();
      assert.deepEqual([now.spent, now.refreshTokens, now.auditEvents], [1, 2, (before.auditEvents as number) + 2], "the winner's writes and event, and the loser's event");
      assert.deepEqual(durable, now, "on disk before the answer");
      assert.equal(requested.length, 1, `fsyncs: ${JSON.stringify(requested)}`);
      await release(winner);
      assert.equal(answer.refreshToken, (await winner).refreshToken, "the same pair");
    };

    /**
     * A session, and `core` (with `env`), whose refresh of it reads the session (and the token,
     * unspent) before it spends the token: the winner's refresh of the same tokens, on the other
     * connection, is made just after that read, its writes committed (`winner()`, its answer).
     */
    const refreshRace = async (env: Record<string, string> = {}) => {
      const { pair, access } = await session(await coreWith({}, env));
      const before = written();
      const o = await otherCore();
      let winner: Promise<TokenPair> | undefined;
      const racing = racingFirstRead(store.sessions, async () => {
        winner = o.sessions.refresh(access, pair.refreshToken);
        await untilWinnerCommitted(before);
      });
      const core = await coreWith({ sessions: racing.sessions }, env);
      return { core, pair, access, before, winner: () => winner! };
    };

    it("the same refresh as the other connection's, which spends the token between the loser's read of it and the loser's spend: the same pair after one fsync, which covers the winner's writes and the loser's event", async () => {
      const { core: c, pair, access, before, ...race } = await refreshRace();
      const answer = await c.sessions.refresh(access, pair.refreshToken);
      await samePairAfterOneFsync(answer, race.winner(), before);
    });

    it("a refresh whose spend finds its refresh token deleted by the other connection's logout (the session's end and the delete committed between the loser's read of the token and its spend, not yet on disk): SESSION_ENDED after one fsync, which covers the logout's writes and the loser's event", async () => {
      const c = await coreWith({});
      const { pair, access } = await session(c);
      const before = written();
      const racing = racingFirstRead(store.sessions, async (id) => {
        assert.equal((await other.sessions.endThenSync(id, new Date())).ended, true);
        await other.refreshTokens.deleteBySessionThenSync(id);
        requested = [];
      });
      const loser = await coreWith({ sessions: racing.sessions });
      await assert.rejects(loser.sessions.refresh(access, pair.refreshToken), (e: unknown) => e instanceof AuthError && e.reason === "SESSION_ENDED");
      assert.ok(racing.raced());
      const now = written();
      assert.deepEqual([now.ended, now.refreshTokens, now.auditEvents], [1, 0, (before.auditEvents as number) + 1], "the logout's writes, and the loser's event");
      assert.deepEqual(durable, now, "on disk before the answer");
      assert.equal(requested.length, 1, `fsyncs: ${JSON.stringify(requested)}`);
    });

    it("the same refresh, auditing off, the other connection spending the token between the loser's read of it and the loser's spend: not answered while the loser's fsync is held, answered once it has returned", async () => {
      const { core: c, pair, access, ...race } = await refreshRace({ TESSERA_AUDIT: "off" });
      let go: () => void = () => {};
      const gate = new Promise<void>((r) => (go = r));
      hold = () => gate;
      let settled = false;
      const loser = c.sessions.refresh(access, pair.refreshToken).finally(() => (settled = true));
      loser.catch(() => {});
      let winnerWrites: Record<string, unknown>;
      try {
        await until(() => requested.length > 0, "the loser asked for an fsync");
        winnerWrites = written();
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(settled, false, "not answered while the fsync that covers the winner's writes is held");
      } finally {
        hold = undefined;
        go();
      }
      const answer = await loser;
      for (const key of ["spent", "refreshTokens", "accessJtis"]) assert.deepEqual(durable[key], winnerWrites[key], `${key}: the winner's writes on disk before the answer`);
      await release(race.winner());
      assert.equal(answer.refreshToken, (await race.winner()).refreshToken, "the same pair");
    });

    for (const [name, call] of [
      ["a logout", (c: Awaited<ReturnType<typeof coreWith>>, s: Awaited<ReturnType<typeof session>>) => c.sessions.end(s.access.sessionId, s.access.userId, { logout: true })],
      ["a refresh", (c: Awaited<ReturnType<typeof coreWith>>, s: Awaited<ReturnType<typeof session>>) => c.sessions.refresh(s.access, s.pair.refreshToken)],
    ] as const) {
      for (const [audit, env] of [
        ["auditing on", {}],
        ["auditing off (TESSERA_AUDIT=off)", { TESSERA_AUDIT: "off" }],
      ] as const) {
        it(`${name}, ${audit}, losing to the other connection: not answered while the loser's fsync is held, answered once it has returned`, async () => {
          const c = await coreWith({}, env);
          const s = await session(c);
          const before = written();
          const o = await otherCore();
          const winner = name === "a logout" ? o.sessions.end(s.access.sessionId, s.access.userId, { logout: true }) : o.sessions.refresh(s.access, s.pair.refreshToken);
          await until(() => written().auditEvents === (before.auditEvents as number) + 1, "the winner's writes committed");
          const winnerWrites = written();
          let go: () => void = () => {};
          const gate = new Promise<void>((r) => (go = r));
          hold = () => gate;
          requested = [];
          let settled = false;
          const loser = call(c, s).finally(() => (settled = true));
          loser.catch(() => {});
          try {
            await until(() => requested.length > 0, "the loser asked for an fsync");
            await new Promise((r) => setTimeout(r, 100));
            assert.equal(settled, false, "not answered while the fsync that covers the winner's writes is held");
          } finally {
            hold = undefined;
            go();
          }
          await loser.catch(() => {});
          for (const key of ["ended", "spent", "refreshTokens", "accessJtis"]) assert.deepEqual(durable[key], winnerWrites[key], `${key}: the winner's writes on disk before the answer`);
          await release(winner);
        });
      }
    }
  });

  it("a spent refresh token presented again after TESSERA_REFRESH_GRACE_SECONDS: REFRESH_TOKEN_REUSED, once the session's end is on disk", async () => {
    const c = await coreWith({}, { TESSERA_REFRESH_GRACE_SECONDS: "0" });
    const { pair, access } = await session(c);
    await c.sessions.refresh(access, pair.refreshToken);
    await new Promise((r) => setTimeout(r, 20));
    await assert.rejects(c.sessions.refresh(access, pair.refreshToken), (e: unknown) => e instanceof AuthError && e.reason === "REFRESH_TOKEN_REUSED");
    const now = written();
    assert.deepEqual([now.ended, now.refreshTokens], [1, 0]);
    assert.deepEqual(durable, now, "every write on disk before the error");
  });

  // The session's end is committed, and every instance refuses the session from then on, before
  // its refresh tokens' delete is tried: when the store refuses that delete, the end is answered
  // as made (a logout's success, a reuse detection's refusal) once it is on disk (as it was when
  // the end waited for its own fsync), so a power cut after the answer cannot bring the session
  // back.
  const deleteRefused = (): Partial<Store> => ({
    refreshTokens: { ...store.refreshTokens, deleteBySessionThenSync: () => Promise.reject(new StoreUnavailableError("embedded store unavailable (SQLITE_BUSY)")) },
  });
  for (const [name, env] of [
    ["auditing on", {}],
    ["auditing off (TESSERA_AUDIT=off)", { TESSERA_AUDIT: "off" }],
  ] as const) {
    it(`logout, ${name}, the refresh tokens' delete refused by the store: answered a success once the session's end is on disk`, async () => {
      const c = await coreWith(deleteRefused(), env);
      const { access } = await session(c);
      await c.sessions.end(access.sessionId, access.userId, { logout: true });
      assert.equal(written().ended, 1, "the session was ended");
      assert.equal(durable.ended, 1, "by a write on disk before the answer");
    });
  }

  it("a reuse detection, the refresh tokens' delete refused by the store: REFRESH_TOKEN_REUSED once the session's end is on disk", async () => {
    const c = await coreWith(deleteRefused(), { TESSERA_REFRESH_GRACE_SECONDS: "0" });
    const { pair, access } = await session(c);
    await c.sessions.refresh(access, pair.refreshToken);
    await new Promise((r) => setTimeout(r, 20));
    await assert.rejects(c.sessions.refresh(access, pair.refreshToken), (e: unknown) => e instanceof AuthError && e.reason === "REFRESH_TOKEN_REUSED");
    assert.equal(written().ended, 1, "the session was ended");
    assert.equal(durable.ended, 1, "by a write on disk before the error");
  });

  // A login's credential (seed 000's session and its refresh token, seed 002's user token) is
  // committed without an fsync of its own; when a later step of the login fails (its read of the
  // user's credential epoch), the error goes out once that commit is on disk, and so is the
  // credential's withdrawal (the session ended, its refresh token deleted; the user token
  // disabled): no token of it went out.
  /** The ports of `store` with users.findById refused once `stored` reports the credential committed. */
  const epochReadRefused = (stored: (committed: () => void) => Partial<Store>): Partial<Store> => {
    let committed = false;
    return {
      users: { ...store.users, findById: (id) => (committed ? Promise.reject(new StoreUnavailableError("embedded store unavailable (SQLITE_BUSY)")) : store.users.findById(id)) },
      ...stored(() => void (committed = true)),
    };
  };
  const sessionStored = (committed: () => void): Partial<Store> => ({
    sessions: { ...store.sessions, createThenSync: (session, token, cap) => store.sessions.createThenSync(session, token, cap).finally(committed) },
  });
  const userTokenStored = (committed: () => void): Partial<Store> => ({
    userTokens: { ...store.userTokens, createThenSync: (token, cap) => store.userTokens.createThenSync(token, cap).finally(committed) },
  });
  for (const [name, env] of [
    ["auditing on", {}],
    ["auditing off (TESSERA_AUDIT=off)", { TESSERA_AUDIT: "off" }],
  ] as const) {
    it(`login, ${name}, the credential epoch's read refused by the store once the session is stored: STORE_UNAVAILABLE once the session, ended, is on disk`, async () => {
      const core = await coreWith(epochReadRefused(sessionStored), env);
      const email = await signedUp(core);
      await assert.rejects(logIn(core, email), StoreUnavailableError);
      const now = written();
      assert.deepEqual([now.sessions, now.ended, now.refreshTokens], [1, 1, 0], "the session was stored, then withdrawn (ended, its refresh token deleted)");
      assert.deepEqual([durable.sessions, durable.ended, durable.refreshTokens], [1, 1, 0], "by writes on disk before the error");
    });

    it(`login, ${name}, its lastLoginAt refused by the store: the error goes out once the session, stored meanwhile, and its withdrawal are on disk`, async () => {
      const core = await coreWith({ users: { ...store.users, setLastLogin: () => Promise.reject(new StoreUnavailableError("embedded store unavailable (SQLITE_BUSY)")) } }, env);
      const email = await signedUp(core);
      /** What the last fsync to succeed covered as the error went out. */
      let coveredAtError: Record<string, unknown> = {};
      await assert.rejects(
        logIn(core, email).catch((e: unknown) => {
          coveredAtError = durable;
          throw e;
        }),
        StoreUnavailableError,
      );
      await new Promise((r) => setTimeout(r, 100));
      const now = written();
      assert.deepEqual([now.sessions, now.ended, now.refreshTokens], [1, 1, 0], "the session was stored, then withdrawn (ended, its refresh token deleted)");
      assert.deepEqual([coveredAtError.sessions, coveredAtError.ended, coveredAtError.refreshTokens], [1, 1, 0], "by writes on disk before the error");
    });

    it(`seed 002 login, ${name}, the credential epoch's read refused by the store once the user token is stored: STORE_UNAVAILABLE once the user token, disabled, is on disk`, async () => {
      const core = await coreWith(epochReadRefused(userTokenStored), env);
      const email = await signedUp(core);
      await assert.rejects(logInToken(core, email), StoreUnavailableError);
      const now = written();
      assert.deepEqual([now.userTokens, now.disabledUserTokens], [1, 1], "the user token was stored, then withdrawn (disabled)");
      assert.deepEqual([durable.userTokens, durable.disabledUserTokens], [1, 1], "by writes on disk before the error");
    });
  }

  // The same refresh again after its first call failed between the spend and the session's move
  // to the new jti: the retry moves the jti (committed without an fsync of its own), then its
  // child refresh token's insert is refused: the error goes out once the move is on disk.
  for (const [name, env] of [
    ["auditing on", {}],
    ["auditing off (TESSERA_AUDIT=off)", { TESSERA_AUDIT: "off" }],
  ] as const) {
    it(`refresh retried, ${name}, the session's jti moved, then the child refresh token's insert refused by the store: STORE_UNAVAILABLE once the move is on disk`, async () => {
      const refused = () => Promise.reject(new StoreUnavailableError("embedded store unavailable (SQLITE_BUSY)"));
      let moves = 0;
      const c = await coreWith(
        {
          sessions: { ...store.sessions, setAccessJti: (id, expected, jti) => (moves++ === 0 ? refused() : store.sessions.setAccessJti(id, expected, jti)) },
          refreshTokens: { ...store.refreshTokens, insertThenSync: refused },
        },
        env,
      );
      const { pair, access } = await session(c);
      await assert.rejects(c.sessions.refresh(access, pair.refreshToken), StoreUnavailableError);
      const before = written();
      assert.equal(before.spent, 1, "the first call spent the refresh token");
      await assert.rejects(c.sessions.refresh(access, pair.refreshToken), StoreUnavailableError);
      const now = written();
      assert.notEqual(now.accessJtis, before.accessJtis, "the retry moved the session's jti");
      assert.equal(durable.accessJtis, now.accessJtis, "by a write on disk before the error");
    });
  }

  it("session.started refused by the store: the login still waits for one fsync, which covers the login's event, the session, lastLoginAt and the refresh token", async () => {
    const events = store.auditEvents;
    const core = await coreWith({
      auditEvents: { ...events, append: (event, options) => (event.type === "session.started" ? Promise.reject(new StoreUnavailableError("embedded store unavailable (SQLITE_BUSY)")) : events.append(event, options)) },
    });
    const email = await signedUp(core);
    await logIn(core, email);
    const now = written();
    assert.deepEqual([now.refreshTokens, now.loginEvents], [1, 1]);
    assert.deepEqual(durable, now, "covered by an fsync that returned before the answer");
    assert.equal(requested.length, 1, `fsyncs: ${JSON.stringify(requested)}`);
  });
});

/**
 * A server of the tests (with `env`) whose fsyncs of the log are recorded: `requested` holds
 * what `written` (of its database, opened read-only) said as each was asked for, `durable` what
 * it said as the last one to succeed was.
 */
/**
 * The audit events each commit of the server's connection writes while `work` runs (a
 * transaction's, or a statement's own), read from the statements it runs.
 */
async function auditCommits(work: () => Promise<void>): Promise<number[]> {
  const statement = Object.getPrototypeOf(new Database(":memory:").prepare("SELECT 1")) as { run: (...args: unknown[]) => unknown };
  const run = statement.run;
  const commits: number[] = [];
  let open: number | undefined;
  statement.run = function (this: Database.Statement, ...args: unknown[]) {
    const sql = this.source.trim();
    if (/^BEGIN\b/i.test(sql)) open = 0;
    else if (/^COMMIT\b/i.test(sql)) {
      if (open) commits.push(open);
      open = undefined;
    } else if (/^INSERT INTO audit_events\b/.test(sql)) {
      if (open === undefined) commits.push(1);
      else open++;
    }
    return run.apply(this, args);
  };
  try {
    await work();
  } finally {
    statement.run = run;
  }
  return commits;
}

function fsyncsRecorded(written: (db: Database.Database) => string, env: Record<string, string> = {}) {
  const state = { server: undefined as unknown as TestServer, db: undefined as Database.Database | undefined, written: () => "", requested: [] as string[], durable: "" };
  before(async () => {
    state.server = await startTestServer({
      env,
      fsync: (fd, done) => {
        const covers = state.written();
        state.requested.push(covers);
        fsync(fd, (error) => {
          if (!error) state.durable = covers;
          done(error);
        });
      },
    });
    const db = (state.db = new Database(join(state.server.config.dataDir, "tessera.db"), { readonly: true }));
    state.written = () => written(db);
  });
  after(async () => {
    await state.server?.close();
    state.db?.close();
  });
  return state;
}

/** One fsync was asked for since `requested` was emptied, covering every write made so far, and returned (before the answer just read). */
function assertOneFsyncCoveringAll(state: ReturnType<typeof fsyncsRecorded>): void {
  const now = state.written();
  assert.equal(state.durable, now, "every write of the login was covered by an fsync that returned before the answer");
  assert.equal(state.requested.length, 1, `fsyncs: ${state.requested.join(" | ")}`);
  assert.deepEqual(JSON.parse(state.requested[0]!), JSON.parse(now));
}

describe("Seed 002 login on the embedded store: the fsyncs it waits for", () => {
  /** What the login writes, as committed now: its user token and audit events. */
  const recorded = fsyncsRecorded((db) => {
    const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return JSON.stringify({ userTokens: count("user_tokens"), auditEvents: count("audit_events") });
  });

  it("POST /auth/login: one fsync (the login's audit event, the user token and user_token.login), returned before the answer, covering every write", async () => {
    const email = uniqueEmail();
    expectOk(await sessionApi("rest", recorded.server.url).createUser({ email, password }, { clientId: testClientId }), 201);
    await new Promise((r) => setTimeout(r, 50));
    recorded.requested = [];
    expectOk(await userTokenApi("rest", recorded.server.url).login(undefined, basic(email, password)));
    assertOneFsyncCoveringAll(recorded);
  });

  it("POST /auth/login commits its two audit events (login, user_token.login) in one transaction: the audit table and its indexes are written once per login, not twice", async () => {
    const email = uniqueEmail();
    expectOk(await sessionApi("rest", recorded.server.url).createUser({ email, password }, { clientId: testClientId }), 201);
    await new Promise((r) => setTimeout(r, 50));
    const commits = await auditCommits(async () => {
      expectOk(await userTokenApi("rest", recorded.server.url).login(undefined, basic(email, password)));
    });
    assert.deepEqual(commits, [2]);
  });
});

describe("Seed 000 login at TESSERA_MAX_SESSIONS_PER_USER on the embedded store: the fsyncs it waits for", () => {
  /** What the login writes, as committed now: its session (the one past the cap deleted), audit events. */
  const recorded = fsyncsRecorded(
    (db) =>
      JSON.stringify({
        sessions: db.prepare("SELECT group_concat(id) FROM sessions").pluck().get(),
        auditEvents: db.prepare("SELECT count(*) FROM audit_events").pluck().get(),
        endedByCap: db.prepare("SELECT group_concat(subject) FROM audit_events WHERE type = 'session.ended' AND reason = 'CAP'").pluck().get(),
      }),
    { TESSERA_MAX_SESSIONS_PER_USER: "1" },
  );

  it("POST /session ending the user's oldest session: one fsync (the login's events, the session, its session.ended CAP event), returned before the answer, covering every write", async () => {
    const api = sessionApi("rest", recorded.server.url);
    const email = uniqueEmail();
    expectOk(await api.createUser({ email, password }, { clientId: testClientId }), 201);
    const first = expectOk(await api.createSession({ account_type: "traditional", email, password }, { clientId: testClientId }));
    await new Promise((r) => setTimeout(r, 50));
    recorded.requested = [];
    expectOk(await api.createSession({ account_type: "traditional", email, password }, { clientId: testClientId }));
    assert.equal((JSON.parse(recorded.written()) as { endedByCap: unknown }).endedByCap, decodeJwt(first.access_token).sid, "the first session ended for the cap, and its event stored");
    assertOneFsyncCoveringAll(recorded);
  });

  it("POST /session ending the user's oldest session commits its three audit events (login, session.ended CAP, session.started) in one transaction: the audit table and its indexes are written once per login, not twice", async () => {
    const api = sessionApi("rest", recorded.server.url);
    const email = uniqueEmail();
    expectOk(await api.createUser({ email, password }, { clientId: testClientId }), 201);
    expectOk(await api.createSession({ account_type: "traditional", email, password }, { clientId: testClientId }));
    await new Promise((r) => setTimeout(r, 50));
    const commits = await auditCommits(async () => {
      expectOk(await api.createSession({ account_type: "traditional", email, password }, { clientId: testClientId }));
    });
    assert.deepEqual(commits, [3]);
  });
});

describe("Seed 002 login at TESSERA_MAX_USER_TOKENS_PER_USER on the embedded store: the fsyncs it waits for", () => {
  /** What the login writes, as committed now: its user token (the one past the cap logged out), audit events. */
  const recorded = fsyncsRecorded(
    (db) =>
      JSON.stringify({
        userTokens: db.prepare("SELECT count(*) FROM user_tokens").pluck().get(),
        disabled: db.prepare("SELECT group_concat(id) FROM user_tokens WHERE disabled_at IS NOT NULL").pluck().get(),
        auditEvents: db.prepare("SELECT count(*) FROM audit_events").pluck().get(),
        loggedOutByCap: db.prepare("SELECT group_concat(subject) FROM audit_events WHERE type = 'user_token.logout' AND reason = 'CAP'").pluck().get(),
      }),
    { TESSERA_MAX_USER_TOKENS_PER_USER: "1" },
  );

  it("POST /auth/login logging out the user's oldest user token: one fsync (the login's events, the user token, its user_token.logout CAP event), returned before the answer, covering every write", async () => {
    const email = uniqueEmail();
    expectOk(await sessionApi("rest", recorded.server.url).createUser({ email, password }, { clientId: testClientId }), 201);
    const api = userTokenApi("rest", recorded.server.url);
    expectOk(await api.login(undefined, basic(email, password)));
    await new Promise((r) => setTimeout(r, 50));
    recorded.requested = [];
    expectOk(await api.login(undefined, basic(email, password)));
    const { disabled, loggedOutByCap } = JSON.parse(recorded.written()) as { disabled: unknown; loggedOutByCap: unknown };
    assert.ok(typeof disabled === "string" && !disabled.includes(","), `one user token logged out: ${String(disabled)}`);
    assert.equal(loggedOutByCap, disabled, "the first user token logged out for the cap, and its event stored");
    assertOneFsyncCoveringAll(recorded);
  });

  it("POST /auth/login logging out the user's oldest user token commits its three audit events (login, user_token.logout CAP, user_token.login) in one transaction: the audit table and its indexes are written once per login, not twice", async () => {
    const email = uniqueEmail();
    expectOk(await sessionApi("rest", recorded.server.url).createUser({ email, password }, { clientId: testClientId }), 201);
    const api = userTokenApi("rest", recorded.server.url);
    expectOk(await api.login(undefined, basic(email, password)));
    await new Promise((r) => setTimeout(r, 50));
    const commits = await auditCommits(async () => {
      expectOk(await api.login(undefined, basic(email, password)));
    });
    assert.deepEqual(commits, [3]);
  });
});
