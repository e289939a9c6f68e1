// The MongoDB store when the database is down: calls fail fast with StoreUnavailableError (the
// service answers UNAVAILABLE), nothing hangs or crashes, and the store recovers by itself when the
// database returns. The reconnect test runs its OWN FerretDB (never the shared one).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { connect, createServer, type Socket } from "node:net";
import { once } from "node:events";
import { runInCall } from "../../src/call-scope.js";
import { openStore } from "../../src/store/index.js";
import { DeadlineExceededError, StoreUnavailableError, type Store } from "../../src/store/ports.js";
import { ferretdbBinary, PrivateFerretDb } from "../support/ferretdb.js";
import { freePort } from "../support/net.js";
import { pollUntil } from "../support/poll.js";

async function elapsed<T>(promise: Promise<T>): Promise<{ ms: number; result: PromiseSettledResult<T> }> {
  const start = performance.now();
  const [result] = await Promise.allSettled([promise]);
  return { ms: performance.now() - start, result: result! };
}

function assertUnavailable(result: PromiseSettledResult<unknown>): void {
  assert.equal(result.status, "rejected");
  assert.ok(
    (result as PromiseRejectedResult).reason instanceof StoreUnavailableError,
    `expected StoreUnavailableError, got ${String((result as PromiseRejectedResult).reason)}`,
  );
}

describe("mongo store: database down", () => {
  it("opens without a server and answers StoreUnavailableError quickly, every time", async () => {
    const port = await freePort();
    const warnings: string[] = [];
    const opened = await elapsed(
      openStore({
        mongodbUri: `mongodb://127.0.0.1:${port}`,
        dataDir: "",
        mongoDbName: "tessera_unreachable",
        serverSelectionTimeoutMs: 300,
        warn: (message) => warnings.push(message),
      }),
    );
    assert.equal(opened.result.status, "fulfilled", "open must not fail while the database is down");
    assert.ok(opened.ms < 3000, `open took ${opened.ms} ms`);
    assert.equal(warnings.length, 1, "one start-up warning says the database is unreachable");
    const store = (opened.result as PromiseFulfilledResult<Store>).value;
    try {
      const calls: Array<() => Promise<unknown>> = [
        () => store.ping(),
        () => store.users.findById("u"),
        () => store.refreshTokens.spendThenSync("h", new Date(), "child"),
        () => store.apiTokens.list("acct", "active"),
        () => store.loginAttempts.reserve([{ key: "login:x", limit: 5 }], new Date(), { windowMs: 60_000, lockMs: 60_000, maxLockMs: 60_000, leaseMs: 60_000 }),
      ];
      for (const call of calls) {
        const { ms, result } = await elapsed(call());
        assertUnavailable(result);
        assert.ok(ms < 2000, `call took ${ms} ms`);
      }
    } finally {
      await store.close();
    }
  });
});

describe("mongo store: an open stopped (a start's wait for MongoDB, TESSERA_STORE_START_WAIT_SECONDS)", () => {
  it("stopped before its client was made, an open of an unreachable server fails at once, not after the store timeout (5 s)", async () => {
    const port = await freePort();
    const stopped = new AbortController();
    stopped.abort();
    const opened = await elapsed(
      openStore({
        mongodbUri: `mongodb://127.0.0.1:${port}`,
        dataDir: "",
        mongoDbName: "tessera_unreachable",
        serverSelectionTimeoutMs: 5000,
        failUnreachable: true,
        stopped: stopped.signal,
        warn: () => {},
      }),
    );
    assert.equal(opened.result.status, "rejected");
    assert.ok(opened.ms < 1500, `failed after ${Math.round(opened.ms)} ms`);
  });
});

describe("mongo store: a server that accepts connections but never answers", () => {
  it("answers StoreUnavailableError instead of hanging", async () => {
    const sockets = new Set<import("node:net").Socket>();
    const silent = createServer((socket) => sockets.add(socket)); // accepts and says nothing
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    const { port } = silent.address() as { port: number };
    const store = await openStore({
      mongodbUri: `mongodb://127.0.0.1:${port}`,
      dataDir: "",
      mongoDbName: "tessera_silent",
      serverSelectionTimeoutMs: 300,
      warn: () => {},
    });
    try {
      const { ms, result } = await elapsed(store.users.findByLogin("x@example.com", "x@example.com"));
      assertUnavailable(result);
      assert.ok(ms < 3000, `call took ${ms} ms`);
    } finally {
      await store.close();
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });
});

describe("mongo store: the caller's deadline", function () {
  this.timeout(60_000);
  let db: PrivateFerretDb | undefined;
  before(async function () {
    if (!ferretdbBinary()) {
      if (process.env.CI === "true") throw new Error("CI=true but the FerretDB binary is missing (FERRETDB_BIN)");
      this.skip();
    }
    db = await PrivateFerretDb.start();
  });
  after(async () => {
    db?.unpause();
    await db?.destroy();
  });

  it("a call to a frozen database waits no longer than what is left of its deadline (300 ms, store timeout 5 s): DeadlineExceededError", async () => {
    const store = await openStore({ mongodbUri: db!.uri, dataDir: "", mongoDbName: "tessera_deadline", serverSelectionTimeoutMs: 5000, warn: () => {} });
    try {
      await store.ping();
      await db!.pause();
      const { ms, result } = await elapsed(runInCall({ requestId: "r", deadline: performance.now() + 300 }, () => store.users.findByLogin("x@example.com", "x@example.com")));
      assert.equal(result.status, "rejected");
      const reason = (result as PromiseRejectedResult).reason;
      assert.ok(reason instanceof DeadlineExceededError, `expected DeadlineExceededError, got ${String(reason)}`);
      assert.ok(ms < 3000, `call took ${ms} ms`);
    } finally {
      db!.unpause();
      await store.close();
    }
  });
});

describe("mongo store: a login slot reserved after its caller was told the store is unavailable", function () {
  this.timeout(60_000);
  let db: PrivateFerretDb | undefined;
  before(async function () {
    if (!ferretdbBinary()) {
      if (process.env.CI === "true") throw new Error("CI=true but the FerretDB binary is missing (FERRETDB_BIN)");
      this.skip();
    }
    db = await PrivateFerretDb.start();
  });
  after(async () => {
    db?.unpause();
    await db?.destroy();
  });

  // Either the reservation is never made (its turn comes after it was given up: KeyedTurns), or,
  // when it was already on its way to the database, it is given back once it lands; either way
  // nobody is left holding the slot.
  it("holds no slot once the database is back: the key's one slot is free again", async () => {
    const dbName = "tessera_abandoned";
    const store = await openStore({ mongodbUri: db!.uri, dataDir: "", mongoDbName: dbName, serverSelectionTimeoutMs: 300, warn: () => {} });
    const key = `login:${randomUUID()}`;
    const rule = { windowMs: 900_000, lockMs: 60_000, maxLockMs: 900_000, leaseMs: 60_000 };
    try {
      await store.ping();
      await db!.pause();
      const { result } = await elapsed(store.loginAttempts.reserve([{ key, limit: 1 }], new Date(), rule));
      assertUnavailable(result);
      db!.unpause();
      // Nobody holds that slot: the next attempt gets it. One the thawed database answers too late
      // (UNAVAILABLE after the 300 ms bound, on a loaded machine) says nothing of the slot: the next
      // probe asks again.
      const granted = async () => (await unlessUnavailable(() => store.loginAttempts.reserve([{ key, limit: 1 }], new Date(), rule)))?.granted;
      await until(granted, "the slot is free again");
    } finally {
      db!.unpause();
      await store.close();
    }
  });
});

/** The call's answer, or undefined when it was StoreUnavailableError (a database still coming back). */
async function unlessUnavailable<T>(call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    assert.ok(error instanceof StoreUnavailableError, String(error));
    return undefined;
  }
}

/** Polls `check` every 100 ms for up to 20 s. */
async function until(check: () => Promise<boolean | undefined>, what: string): Promise<void> {
  await pollUntil(what, check, { limitMs: 20_000, intervalMs: 100 });
}

describe("mongo store: reconnects when the database returns", function () {
  this.timeout(60_000);
  let db: PrivateFerretDb | undefined;

  before(async function () {
    if (!ferretdbBinary()) {
      if (process.env.CI === "true") throw new Error("FerretDB binary not found (set FERRETDB_BIN)");
      this.skip();
    }
    db = await PrivateFerretDb.start();
  });

  after(async () => {
    await db?.destroy();
  });

  it("answers UNAVAILABLE while it is down and serves the same data once it is back", async () => {
    const store = await openStore({
      mongodbUri: db!.uri,
      dataDir: "",
      mongoDbName: "tessera_reconnect",
      serverSelectionTimeoutMs: 500,
      warn: () => {},
    });
    try {
      const user = {
        id: randomUUID(),
        login: "reconnect@example.com",
        loginKey: "reconnect@example.com",
        emails: ["reconnect@example.com"],
        passwordHash: "$argon2id$h",
        createdAt: new Date(),
      };
      await store.users.create(user);

      await db!.stop();
      for (let i = 0; i < 3; i++) {
        const { ms, result } = await elapsed(store.users.findById(user.id));
        assertUnavailable(result);
        assert.ok(ms < 3000, `call took ${ms} ms while down`);
      }
      assertUnavailable((await elapsed(store.ping())).result);

      await db!.resume();
      const read = () => unlessUnavailable(async () => ({ found: await store.users.findById(user.id) }));
      const { found } = await pollUntil("the store reconnects", read, { limitMs: 20_000, intervalMs: 200 });
      assert.equal(found?.login, user.login);
      await store.ping();
      await store.users.setLastLogin(user.id, new Date());
    } finally {
      await store.close();
    }
  });
});

describe("mongo store: opened while the database is down, then reachable", function () {
  this.timeout(30_000);
  before(function () {
    if (!process.env.MONGODB_URI) this.skip();
  });

  it("serves once it is reachable (the driver closes its topology after a failed first connection: every call said \"Topology is closed\", for good)", async () => {
    const port = await freePort();
    const dbName = `tessera_late_${randomUUID().slice(0, 8)}`;
    const store = await openStore({ mongodbUri: `mongodb://127.0.0.1:${port}`, dataDir: "", mongoDbName: dbName, serverSelectionTimeoutMs: 300, warn: () => {} });
    const target = new URL(process.env.MONGODB_URI!);
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      const upstream = connect(Number(target.port || 27017), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("error", () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    try {
      assertUnavailable((await elapsed(store.ping())).result);
      proxy.listen(port, "127.0.0.1");
      await once(proxy, "listening");
      let served = false;
      for (let i = 0; i < 20 && !served; i++) {
        served = await store.ping().then(() => true, () => false);
        if (!served) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(served, "the store still answers UNAVAILABLE with the database reachable");
    } finally {
      await store.close();
      const { MongoClient } = await import("mongodb");
      const client = new MongoClient(process.env.MONGODB_URI!);
      await client.db(dbName).dropDatabase().finally(() => client.close());
      for (const s of sockets) s.destroy();
      proxy.close();
    }
  });
});
