// A store call that MongoDB does not answer within TESSERA_STORE_TIMEOUT_MS is answered
// UNAVAILABLE (503), and the operation is given up as well: one still waiting for a connection
// of the driver's pool leaves its queue then, instead of waiting there for as long as the
// database is slow and running once a connection is free, after its caller has gone. Without
// that bound, a database that answers slower than calls arrive (the calls' own load can make it
// so) holds an ever longer queue of operations nobody waits for, in memory, and runs them all
// later, stale.
//
// Shown with one connection in the pool (maxPoolSize=1 in MONGODB_URI) behind a TCP proxy
// (support/holding-proxy.ts) that holds the first `ping` sent (GET /readyz pings): it waits on
// the connection, the next ones for it; the proxy counts the pings that reach the database.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { MongoClient } from "mongodb";
import { ManualClock } from "../../src/core/clock.js";
import { loginCheckTimes } from "../../src/core/login-throttle.js";
import { loginKey } from "../../src/core/login-name.js";
import { hashSecret } from "../../src/core/secrets.js";
import { behindHoldingProxy, type HoldingProxy } from "../support/holding-proxy.js";
import { rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { expectCode } from "../support/api.js";
import { auditApi } from "../audit/api.js";
import { admin, clientIdHeader, otherPassword, password, signUp, uniqueEmail } from "../support/users.js";

const readyz = async (server: TestServer) => (await fetch(`${server.url}/readyz`)).status;

for (const store of storesUnderTest().filter((s) => s === "mongo")) {
  describe(`store: MongoDB operations whose caller has been answered UNAVAILABLE are given up (${store})`, function () {
    this.timeout(60_000);
    let proxy: HoldingProxy;
    let server: TestServer;
    behindHoldingProxy({ query: "?maxPoolSize=1", env: { TESSERA_STORE_TIMEOUT_MS: "300" } }, (p, s) => ([proxy, server] = [p, s]));

    it("20 readiness probes while the database holds the one connection: each answers 503, and only the ping on the wire ever reaches the database", async () => {
      assert.equal(await readyz(server), 200);
      proxy.hold = ["ping\0"];
      proxy.count(["ping\0"]);
      const statuses = await Promise.all(Array.from({ length: 20 }, () => readyz(server)));
      assert.deepEqual([...new Set(statuses)], [503]);
      // Every probe has been answered, each after its 300 ms; its operation's wait for a
      // connection began before that answer and is due no later than it. (Server and test share
      // one process, so the timer below fires after those.)
      await new Promise((r) => setTimeout(r, 1000));
      proxy.release();
      // The next probe's ping queues behind whatever still waits for the connection: once it is
      // answered, everything that was going to reach the database has.
      assert.equal(await readyz(server), 200);
      assert.equal(proxy.counted, 2, "the ping held on the wire and the last probe's; none of the 19 that waited for the connection");
    });
  });
}

// Login attempts on MongoDB take their slots one writer at a time per key (mongo-login-attempts.ts:
// each key's writes wait for the one before). A take whose caller had been answered UNAVAILABLE
// still ran when its turn came, after the database answered again: it took a slot that nobody
// would ever give back or count as a failure, and enough of them locked the login out of its
// own account for the rest of the window.
for (const store of storesUnderTest().filter((s) => s === "mongo")) {
  describe(`store: login-attempt writes whose caller has been answered UNAVAILABLE are given up (${store})`, function () {
    this.timeout(60_000);
    let proxy: HoldingProxy;
    let server: TestServer;
    behindHoldingProxy({ env: { TESSERA_STORE_TIMEOUT_MS: "300" } }, (p, s) => ([proxy, server] = [p, s]));

    it("8 logins while the database holds the first slot's write: each answers 503, only that write is made, and the right password then logs in", async () => {
      const email = uniqueEmail("slots");
      await signUp(server, email);
      // The first write of a login slot (an insert into login_attempts) is held on its connection;
      // everything else flows on the pool's other connections.
      const slotWrite = ["insert\0", "login_attempts"];
      proxy.hold = slotWrite;
      proxy.count(slotWrite);
      const statuses = await Promise.all(
        Array.from({ length: 8 }, async () => (await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password: otherPassword }, headers: clientIdHeader })).status),
      );
      assert.deepEqual([...new Set(statuses)], [503]);
      proxy.release();
      // The right password: its own slot's write waits for every write queued before it on the key.
      const login = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: clientIdHeader });
      assert.equal(login.status, 200, login.text);
      // The held write and the successful login's own (one per key: the login and the address).
      assert.equal(proxy.counted, 3, "writes of login slots made after the 503s");
    });

    // The reservations given up give their slots back once the held write lands, just as the
    // database answers again. A login counting the slots before those give-backs had landed
    // found every one still taken and was refused as busy: a right password answered 429.
    it("8 logins whose slots the database holds in one write: each answers 503, and the right password logs in while their give-backs are still on their way", async () => {
      const email = uniqueEmail("slots-given-back");
      await signUp(server, email);
      // The reads of a login's counter arrive 60 ms late, so the 8 reservations read it together
      // and take their slots in one write (five of them: the login's limit), which is held.
      proxy.slow = { match: ["find\0", "login_attempts"], ms: 60 };
      proxy.hold = ["insert\0", "login_attempts"];
      const statuses = await Promise.all(
        Array.from({ length: 8 }, async () => (await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password: otherPassword }, headers: clientIdHeader })).status),
      );
      assert.deepEqual([...new Set(statuses)], [503]);
      // The five slots' give-backs reach the database 100 ms late (the right login's own reads do not).
      proxy.slow = { match: ["insert\0", "login_attempt_releases"], ms: 100 };
      proxy.count(["insert\0", "login_attempt_releases"]);
      try {
        proxy.release();
        const login = await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: clientIdHeader });
        assert.equal(login.status, 200, login.text);
        assert.equal(proxy.counted, 7, "the five slots' give-backs, and the right login's own two (its login's and its address's)");
      } finally {
        proxy.slow = undefined;
      }
      // The held write took the five slots (else the login above counted none of them).
      const client = new MongoClient(process.env.MONGODB_URI!);
      try {
        const states = client.db(server.config.mongodbDatabase).collection<{ _id: string; n: number; grants: number }>("login_attempts");
        const first = await states.findOne({ key: `login:${hashSecret(loginKey(email))}`, n: 1 });
        assert.equal(first?.grants, 5);
      } finally {
        await client.close();
      }
    });
  });
}

// A login slot's write that fails on the wire (a connection lost, the driver's pool cleared as the
// database stopped answering) does not tell whether the database made it: the database may still
// apply a command it had been sent. One that was made held its slot for a caller answered 503,
// never given back: under the lease, renewed by every later grant on the key, it refused the
// login as busy (429) for as long as attempts kept coming, up to the window; a batch of them
// refused an address's every stranger. Shown with a login's one slot (TESSERA_LOGIN_MAX_FAILURES=1).
for (const store of storesUnderTest().filter((s) => s === "mongo")) {
  describe(`store: a login slot's write lost on the wire is settled once the database answers (${store})`, function () {
    this.timeout(60_000);
    let proxy: HoldingProxy;
    let server: TestServer;
    behindHoldingProxy({ env: { TESSERA_LOGIN_MAX_FAILURES: "1" } }, (p, s) => ([proxy, server] = [p, s]));

    const logIn = (email: string) => rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password }, headers: clientIdHeader });
    /** The login's slot write is held, its connection cut on the client's side: `deliver`, the database makes it all the same. */
    const cutSlotWrite = async (email: string, deliver: boolean) => {
      proxy.hold = ["insert\0", "login_attempts"];
      const answer = logIn(email);
      await proxy.held();
      proxy.cut(deliver);
      const first = await answer;
      assert.deepEqual([first.status, first.body?.code, first.body?.details?.[0]?.debug?.reason], [503, "unavailable", "STORE_UNAVAILABLE"], first.text);
    };
    const collections = async <T>(use: (db: ReturnType<MongoClient["db"]>) => Promise<T>) => {
      const client = new MongoClient(process.env.MONGODB_URI!);
      try {
        return await use(client.db(server.config.mongodbDatabase));
      } finally {
        await client.close();
      }
    };

    it("made: the login answers 503, and its right password then logs in (the slot given back, not held for the window)", async () => {
      const email = uniqueEmail("slot-write-made");
      await signUp(server, email);
      await cutSlotWrite(email, true);
      // The database made the write: the login's state holds one slot, its one.
      const key = `login:${hashSecret(loginKey(email))}`;
      const first = await collections((db) => db.collection<{ _id: string; grants: number }>("login_attempts").findOne({ _id: `${key}#1` }));
      assert.equal(first?.grants, 1);
      const login = await logIn(email);
      assert.equal(login.status, 200, login.text);
    });

    it("never made: the login answers 503, its right password then logs in, and nothing was given back for a slot never taken", async () => {
      const email = uniqueEmail("slot-write-lost");
      await signUp(server, email);
      await cutSlotWrite(email, false);
      const login = await logIn(email);
      assert.equal(login.status, 200, login.text);
      // One release of the login's slots: the successful login's own.
      const key = `login:${hashSecret(loginKey(email))}`;
      assert.equal(await collections((db) => db.collection("login_attempt_releases").countDocuments({ key })), 1);
    });

    // Every 64th state of a key prunes the states before it, once stored: tidying, which failed
    // the take that had stored its state (503, its slot held by nobody) when it failed.
    it("a take whose state is stored but whose prune of older states fails: the login logs in, and so does the next", async () => {
      const email = uniqueEmail("slot-prune");
      await signUp(server, email);
      // 63 logins store the login's states 1 to 63 (one take each), the 64th prunes.
      for (let i = 1; i < 64; i++) assert.equal((await logIn(email)).status, 200);
      proxy.hold = ["delete\0", "login_attempts"];
      const answer = logIn(email);
      await proxy.held();
      proxy.cut(false);
      const login = await answer;
      assert.equal(login.status, 200, login.text);
      const next = await logIn(email);
      assert.equal(next.status, 200, next.text);
    });
  });
}

// A failure is not a step nobody acts on: its password was checked and its verdict reached. The
// failures of two wrong passwords for one login wait their turn on the login's key; when the
// database holds the first one's write past the store timeout, both callers are answered 503, but
// both failures must still count once the database answers. The second, skipped when its turn
// came, was lost: its slot then freed itself after the lease, and a third guess was checked where
// the login should have been locked for TESSERA_LOGIN_LOCKOUT_SECONDS.
for (const store of storesUnderTest().filter((s) => s === "mongo")) {
  describe(`store: a login failure whose caller has been answered UNAVAILABLE still counts (${store})`, function () {
    this.timeout(60_000);
    const clock = new ManualClock(Date.now());
    let proxy: HoldingProxy;
    let server: TestServer;
    behindHoldingProxy(
      {
        clock,
        env: {
          TESSERA_STORE_TIMEOUT_MS: "300",
          TESSERA_LOGIN_MAX_FAILURES: "2",
          // A lease (twice the check's time, at least 20 s) that ends well inside the first lock (60 s).
          TESSERA_REQUEST_TIMEOUT_MS: "10000",
          // Hashes long enough that both attempts have taken their slots before either fails.
          TESSERA_ARGON2_MEMORY_KIB: "19456",
          TESSERA_ARGON2_ITERATIONS: "4",
        },
      },
      (p, s) => ([proxy, server] = [p, s]),
    );

    it("two wrong passwords whose first failure's write the database holds: both 503, both count, and the login is locked", async () => {
      const email = uniqueEmail("late-failure");
      await signUp(server, email);
      const logIn = (pass: string) => rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password: pass }, headers: clientIdHeader });
      // A failure's write: a login_attempts state counting one failure (the slots' own writes count none).
      const failureWrite = ["insert\0", "login_attempts", "failures\0\x01\0\0\0"];
      proxy.hold = failureWrite;
      const answers = await Promise.all([logIn(otherPassword), logIn(otherPassword)]);
      assert.deepEqual(
        answers.map((r) => [r.status, r.body?.code, r.body?.details?.[0]?.debug?.reason]),
        [
          [503, "unavailable", "STORE_UNAVAILABLE"],
          [503, "unavailable", "STORE_UNAVAILABLE"],
        ],
      );
      proxy.count(["insert\0", "login_attempts"]);
      proxy.release();
      // The held failures (the login's and the address's) land, then the second attempt's.
      for (let i = 0; i < 100 && proxy.counted < 4; i++) await new Promise((r) => setTimeout(r, 20));
      // Past the lease of a slot neither failed nor given back, only failures still count: the
      // two lock the login, the right password included, for what is left of the first lock.
      clock.advance(loginCheckTimes(server.config).leaseMs + 1);
      const next = await logIn(password);
      assert.equal(next.status, 429, next.text);
      assert.equal(next.body?.message, "too many failed logins; try again later");
      assert.equal(next.headers.get("retry-after"), String(server.config.loginLockoutSeconds - loginCheckTimes(server.config).leaseMs / 1000));
    });
  });
}

// The audit listing is the one read whose cost the data decides: a type filter reads MongoDB's
// time index until it has found a page, and FerretDB (which the suites run on) reads and sorts
// the whole collection for a listing without user_id or type. One the database did not answer
// within TESSERA_STORE_TIMEOUT_MS was answered 503 and went on in the database all the same, for
// as long as it took, holding its pooled connection: an operator (or a dashboard) asking again
// piled scan upon scan on the database, and held connections every other call waited for. MongoDB
// now stops it as its caller stops waiting (maxTimeMS).
for (const store of storesUnderTest().filter((s) => s === "mongo")) {
  describe(`store: an audit listing answered UNAVAILABLE stops in the database too (${store})`, function () {
    this.timeout(120_000);
    let server: TestServer;
    let client: MongoClient;

    before(async () => {
      const uri = new URL(process.env.MONGODB_URI!);
      uri.searchParams.set("maxPoolSize", "1");
      server = await startTestServer({ store: "mongo", env: { MONGODB_URI: uri.toString(), TESSERA_STORE_TIMEOUT_MS: "500" } });
      // Enough events that FerretDB takes seconds to list them: 30 000, written directly.
      client = new MongoClient(process.env.MONGODB_URI!);
      const events = client.db(server.config.mongodbDatabase).collection<{ _id: string }>("audit_events");
      const start = Date.now() - 86_400_000;
      for (let batch = 0; batch < 30; batch++) {
        await events.insertMany(Array.from({ length: 1000 }, (_, i) => ({ _id: randomUUID(), time: new Date(start + batch * 1000 + i), type: "login", outcome: "failure", login: "nobody" })));
      }
    });

    after(async () => {
      await client?.close();
      await server?.close();
    });

    it("a listing longer than the store's bound: 503, and the instance's one pooled connection is free for the next call at once (readiness 200)", async () => {
      assert.equal(await readyz(server), 200);
      const api = auditApi("rest", server.url);
      try {
        expectCode(await api.listAuditEvents({ page_size: 500 }, admin), "unavailable", "the store is unavailable, try again shortly", "STORE_UNAVAILABLE");
      } finally {
        api.close();
      }
      // The listing's connection, waited for by the probe's ping (for up to the same 500 ms), is
      // free as soon as MongoDB has stopped the listing; FerretDB went on with it for seconds.
      assert.equal(await readyz(server), 200);
    });
  });
}
