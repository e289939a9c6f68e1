// Stores opened directly (no server) for core and store tests: SQLite in a temp directory, or a
// MongoDB database with a random name, both removed afterwards.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import { MongoClient } from "mongodb";
import { openStore } from "../../src/store/index.js";
import type { NewSigningKey, Store } from "../../src/store/ports.js";
import { SQLITE_FILE_NAME } from "../../src/store/sqlite/sqlite-store.js";
import { storesUnderTest, type StoreKind } from "./server.js";

/** An account as a version without login keys stored it (or, with `loginKey`, one whose key function gave it that key). */
export interface LegacyUser {
  id: string;
  login: string;
  loginKey?: string;
  emails: string[];
  passwordHash: string;
  createdAt: Date;
}

export interface StoreHarness {
  /** The adapter every store of this harness must be. */
  readonly kind: StoreKind;
  /**
   * Opens a store on database `name`; the same name reaches the same database (another instance).
   * `timeoutMs`: MongoDB's bound on each store call (the store's default otherwise).
   */
  open(name: string, options?: { timeoutMs?: number }): Promise<Store>;
  /** Writes accounts into database `name` (opened before) as a version without login keys did: straight to the database. */
  insertLegacyUsers(name: string, users: LegacyUser[]): Promise<void>;
  /** Closes every store opened and deletes their databases. */
  cleanup(): Promise<void>;
}

/** Where a MongoDB harness or test server takes its databases from, and gives them back to (see freshStores). */
export interface DatabasePool {
  /** An empty database's name, for a harness's database `name`. */
  take(): string;
  /** Gives back `names`, the harness's stores closed: emptied for the next harness. */
  give(names: string[]): Promise<void>;
}

/**
 * A harness of `kind`: every database it opens lives until cleanup(). With `pool` (MongoDB), its
 * databases are the pool's, given back at cleanup instead of dropped.
 */
export function storeHarness(kind: StoreKind, pool?: DatabasePool): StoreHarness {
  const opened: Store[] = [];
  if (kind === "sqlite") {
    const root = mkdtempSync(join(tmpdir(), "tessera-store-"));
    return {
      kind,
      async open(name) {
        const store = await openStore({ dataDir: join(root, name) });
        opened.push(store);
        return store;
      },
      async insertLegacyUsers(name, users) {
        const db = new Database(join(root, name, SQLITE_FILE_NAME));
        try {
          const insert = db.prepare(`INSERT INTO users (id, login, login_key, emails, password_hash, active, created_at, password_changed_at, version)
            VALUES (?, ?, ?, ?, ?, 1, ?, ?, 0)`);
          for (const u of users) insert.run(u.id, u.login, u.loginKey ?? null, JSON.stringify(u.emails), u.passwordHash, u.createdAt.getTime(), u.createdAt.getTime());
        } finally {
          db.close();
        }
      },
      async cleanup() {
        for (const store of opened) await store.close();
        rmSync(root, { recursive: true, force: true });
      },
    };
  }
  const uri = process.env.MONGODB_URI;
  if (!uri) throw new Error("MONGODB_URI is not set");
  const run = randomBytes(4).toString("hex");
  const databases = new Set<string>();
  const taken = new Map<string, string>();
  // Names stay short: FerretDB on PostgreSQL limits database name length.
  const dbName = (name: string) => {
    if (pool === undefined) return `tessera_test_${run}_${name.replace(/[^a-z0-9]/gi, "").slice(-12)}`;
    let db = taken.get(name);
    if (db === undefined) taken.set(name, (db = pool.take()));
    return db;
  };
  return {
    kind,
    async open(name, options) {
      const mongoDbName = dbName(name);
      databases.add(mongoDbName);
      const timeout = options?.timeoutMs !== undefined && { serverSelectionTimeoutMs: options.timeoutMs };
      const store = await openStore({ mongodbUri: uri, dataDir: "", mongoDbName, warn: () => {}, ...timeout });
      opened.push(store);
      return store;
    },
    async insertLegacyUsers(name, users) {
      const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
      try {
        await client.db(dbName(name)).collection<{ _id: string }>("users").insertMany(
            users.map(({ id, loginKey, ...rest }) => ({ _id: id, ...rest, ...(loginKey !== undefined && { loginKey }) })),
          );
      } finally {
        await client.close();
      }
    },
    async cleanup() {
      for (const store of opened) await store.close();
      if (pool !== undefined) return pool.give([...taken.values()]);
      const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
      try {
        for (const name of databases) await client.db(name).dropDatabase();
      } finally {
        await client.close();
      }
    },
  };
}

export interface OpenedStore {
  store: Store;
  close(): Promise<void>;
}

/** A fresh, empty store of that kind, removed on close(). */
export async function openTestStore(kind: StoreKind): Promise<OpenedStore> {
  const harness = storeHarness(kind);
  const store = await harness.open("store");
  return { store, close: () => harness.cleanup() };
}

/**
 * Fresh, empty stores of `kind`, for the describe block this is called in (it registers an
 * `after` hook there that removes them): `open()` one store, `harness()` a harness whose
 * databases are fresh too, `databases` (MongoDB) for startTestServer's own. On MongoDB a new database costs its collections and some forty
 * createIndex calls, a second or more on FerretDB: so a database whose stores are closed is
 * emptied (every document of every collection deleted) and is a later test's, opened again as
 * a restart opens it (its indexes found made). Each test still starts on a store that holds
 * nothing, through a Store of its own. SQLite stores are new every time.
 */
export function freshStores(kind: StoreKind): { open(): Promise<OpenedStore>; harness(): StoreHarness; databases?: DatabasePool } {
  if (kind === "sqlite") return { open: () => openTestStore(kind), harness: () => storeHarness(kind) };
  const uri = process.env.MONGODB_URI;
  if (!uri) throw new Error("MONGODB_URI is not set");
  const run = randomBytes(4).toString("hex");
  const made: string[] = [];
  const spare: string[] = [];
  const admin = () => new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  const pool: DatabasePool = {
    take() {
      let name = spare.pop();
      if (name === undefined) made.push((name = `tessera_test_${run}_fresh${made.length}`));
      return name;
    },
    async give(names) {
      const client = admin();
      try {
        for (const name of names) {
          const db = client.db(name);
          for (const { name: collection } of await db.listCollections({}, { nameOnly: true }).toArray()) {
            if (!collection.startsWith("system.")) await db.collection(collection).deleteMany({});
          }
        }
      } finally {
        await client.close();
      }
      spare.push(...names);
    },
  };
  after(async () => {
    const client = admin();
    try {
      for (const name of made) await client.db(name).dropDatabase();
    } finally {
      await client.close();
    }
  });
  return {
    async open() {
      const harness = storeHarness(kind, pool);
      const store = await harness.open("store");
      return { store, close: () => harness.cleanup() };
    },
    harness: () => storeHarness(kind, pool),
    databases: pool,
  };
}

/**
 * For a file whose servers (startTestServer's `databases`) follow one another: each store's
 * pool of freshStores, called at the file's top level (its databases dropped after the file).
 */
export function freshDatabases(): Partial<Record<StoreKind, DatabasePool>> {
  return Object.fromEntries(storesUnderTest().map((kind) => [kind, freshStores(kind).databases]));
}

/** A signing key of `generation` (a random kid unless given), created and active at `createdAt`. */
export function newSigningKey(generation: number, createdAt: Date, kid = `kid-${randomUUID()}`): NewSigningKey {
  return {
    kid,
    alg: "EdDSA",
    privateJwk: JSON.stringify({ kty: "OKP", crv: "Ed25519", d: "private", x: kid }),
    publicJwk: JSON.stringify({ kty: "OKP", crv: "Ed25519", x: kid }),
    generation,
    createdAt,
    activatedAt: createdAt,
  };
}
