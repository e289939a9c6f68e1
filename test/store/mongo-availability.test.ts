// The MongoDB store when the database is down: calls fail fast with StoreUnavailableError (the
// service answers UNAVAILABLE), nothing hangs or crashes, and the store recovers by itself when the
// database returns. The reconnect test runs its OWN FerretDB (never the shared one).
import { freePort } from "../support/net.js";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { openStore } from "../../src/store/index.js";
import { StoreUnavailableError, type Store } from "../../src/store/ports.js";

const FERRETDB_BIN = process.env.FERRETDB_BIN ?? "/tmp/ferretdb-bin";

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

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
        () => store.refreshTokens.spend("h", new Date()),
        () => store.apiTokens.list("acct", "active"),
        () => store.loginAttempts.recordFailure("login:x", new Date(), 60_000),
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
      const { ms, result } = await elapsed(store.users.findByLogin("x@example.com"));
      assertUnavailable(result);
      assert.ok(ms < 3000, `call took ${ms} ms`);
    } finally {
      await store.close();
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });
});

describe("mongo store: reconnects when the database returns", function () {
  this.timeout(60_000);

  let stateDir = "";
  let ferret: ChildProcess | undefined;
  let port = 0;

  async function startFerret(): Promise<void> {
    ferret = spawn(
      FERRETDB_BIN,
      [
        "--handler=sqlite",
        `--sqlite-url=file:${join(stateDir, "data")}/`,
        `--listen-addr=127.0.0.1:${port}`,
        "--debug-addr=127.0.0.1:0",
        `--state-dir=${stateDir}`,
        "--telemetry=disable",
        "--log-level=error",
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    // Ready when it accepts TCP connections.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect(port, "127.0.0.1");
        socket.once("connect", () => (socket.destroy(), resolve(true)));
        socket.once("error", () => resolve(false));
      });
      if (ok) return;
      if (exited(ferret)) throw new Error(`own FerretDB exited with ${ferret.exitCode}`);
      if (Date.now() > deadline) throw new Error("own FerretDB did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function stopFerret(): Promise<void> {
    if (!ferret || exited(ferret)) return;
    const exit = once(ferret, "exit");
    ferret.kill("SIGKILL");
    await exit;
  }

  before(async function () {
    if (!existsSync(FERRETDB_BIN)) {
      if (process.env.CI === "true") throw new Error(`FerretDB binary not found at ${FERRETDB_BIN} (set FERRETDB_BIN)`);
      this.skip();
    }
    // Never leave our FerretDB behind, even if mocha exits without running `after`.
    process.once("exit", () => ferret?.kill("SIGKILL"));
    stateDir = mkdtempSync(join(tmpdir(), "tessera-ferretdb-"));
    mkdirSync(join(stateDir, "data"));
    port = await freePort();
    await startFerret();
  });

  after(async () => {
    await stopFerret();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it("answers UNAVAILABLE while it is down and serves the same data once it is back", async () => {
    const store = await openStore({
      mongodbUri: `mongodb://127.0.0.1:${port}`,
      dataDir: "",
      mongoDbName: "tessera_reconnect",
      serverSelectionTimeoutMs: 500,
      warn: () => {},
    });
    try {
      const user = {
        id: randomUUID(),
        login: "reconnect@example.com",
        emails: ["reconnect@example.com"],
        passwordHash: "$argon2id$h",
        createdAt: new Date(),
      };
      await store.users.create(user);

      await stopFerret();
      for (let i = 0; i < 3; i++) {
        const { ms, result } = await elapsed(store.users.findById(user.id));
        assertUnavailable(result);
        assert.ok(ms < 3000, `call took ${ms} ms while down`);
      }
      assertUnavailable((await elapsed(store.ping())).result);

      await startFerret();
      const deadline = Date.now() + 20_000;
      let found = null;
      for (;;) {
        try {
          found = await store.users.findById(user.id);
          break;
        } catch (error) {
          assert.ok(error instanceof StoreUnavailableError, String(error));
          if (Date.now() > deadline) throw new Error("store did not reconnect within 20 s");
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      assert.equal(found?.login, user.login);
      await store.ping();
      await store.users.setLastLogin(user.id, new Date());
    } finally {
      await store.close();
    }
  });
});
