// What is particular to the embedded store: its file, its durability and its migrations.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { openStore } from "../../src/store/index.js";

const here = dirname(fileURLToPath(import.meta.url));

describe("sqlite store", () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = join(mkdtempSync(join(tmpdir(), "tessera-sqlite-")), "nested", "data");
  });
  afterEach(() => {
    rmSync(dirname(dirname(dataDir)), { recursive: true, force: true });
  });

  it("creates tessera.db under the data directory, in WAL mode", async () => {
    const store = await openStore({ dataDir });
    assert.equal(store.kind, "sqlite");
    await store.close();
    const file = join(dataDir, "tessera.db");
    assert.ok(existsSync(file));
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
      const versions = db.prepare("SELECT version FROM schema_version ORDER BY version").all();
      assert.deepEqual(versions, [{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }]);
    } finally {
      db.close();
    }
  });

  const mode = (path: string) => `0${(statSync(path).mode & 0o777).toString(8)}`;

  it("creates its directory 0700 and its files 0600: the database, its -wal and -shm (signing keys live there)", async () => {
    const store = await openStore({ dataDir });
    try {
      await store.users.create({ id: "u1", login: "a@example.com", loginKey: "a@example.com", emails: ["a@example.com"], passwordHash: "$argon2id$x", createdAt: new Date() });
      const file = join(dataDir, "tessera.db");
      assert.equal(mode(dataDir), "0700");
      assert.equal(mode(file), "0600");
      assert.equal(mode(`${file}-wal`), "0600");
      assert.equal(mode(`${file}-shm`), "0600");
    } finally {
      await store.close();
    }
  });

  it("warns at start-up about an existing directory or database others can read, naming it and its mode", async () => {
    mkdirSync(dataDir, { recursive: true });
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, "tessera.db"), "");
    chmodSync(join(dataDir, "tessera.db"), 0o644);
    const warnings: Array<{ message: string; fields?: Record<string, unknown> }> = [];
    const store = await openStore({ dataDir, warn: (message, fields) => warnings.push({ message, fields }) });
    await store.close();
    assert.deepEqual(
      warnings.map((w) => w.fields),
      [
        { path: dataDir, mode: "0755" },
        { path: join(dataDir, "tessera.db"), mode: "0644" },
        // SQLite gives them the database file's mode.
        { path: join(dataDir, "tessera.db-wal"), mode: "0644" },
        { path: join(dataDir, "tessera.db-shm"), mode: "0644" },
      ],
    );
    assert.match(warnings[0]!.message, /readable or writable by other users/);
    assert.equal(mode(dataDir), "0755", "an existing mode is the operator's: reported, not changed");
  });

  it("keeps data and schema across reopen (migrations run once)", async () => {
    const first = await openStore({ dataDir });
    await first.users.create({
      id: "u1",
      login: "a@example.com",
      loginKey: "a@example.com",
      emails: ["a@example.com"],
      passwordHash: "$argon2id$h",
      createdAt: new Date(1_700_000_000_001),
    });
    await first.close();
    const second = await openStore({ dataDir });
    try {
      assert.equal((await second.users.findByLogin("a@example.com", "a@example.com"))?.createdAt.getTime(), 1_700_000_000_001);
    } finally {
      await second.close();
    }
  });

  it("keeps every acknowledged write when the process is killed with SIGKILL", async function () {
    this.timeout(30_000);
    const child = spawn(process.execPath, ["--import", "tsx", join(here, "fixtures", "sqlite-writer.ts"), dataDir], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const acked: string[] = [];
    let buffered = "";
    child.stdout.setEncoding("utf8");
    const enough = new Promise<void>((resolve) => {
      child.stdout.on("data", (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        acked.push(...lines);
        if (acked.length >= 50) resolve();
      });
    });
    const exited = once(child, "exit");
    await Promise.race([enough, exited.then(() => Promise.reject(new Error("writer exited early")))]);
    child.kill("SIGKILL");
    const [, signal] = await exited;
    assert.equal(signal, "SIGKILL");

    const store = await openStore({ dataDir });
    try {
      for (const id of acked) assert.ok(await store.users.findById(id), `acknowledged ${id} lost`);
    } finally {
      await store.close();
    }
  });
});
