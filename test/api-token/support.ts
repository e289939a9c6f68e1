// Helpers of the API token suites: the stores to run on, a store opened directly (core tests),
// and a spy that counts calls of one store method.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { MongoClient } from "mongodb";
import { openStore } from "../../src/store/index.js";
import type { Store } from "../../src/store/ports.js";
import { storesUnderTest, type StoreKind } from "../support/server.js";

/**
 * Declares `suite` once per store under test: SQLite always, MongoDB when MONGODB_URI is set.
 * With CI=true and no MONGODB_URI, a failing test says so (never a silent skip).
 */
export function forEachStore(suite: (kind: StoreKind) => void): void {
  let kinds: StoreKind[];
  try {
    kinds = storesUnderTest();
  } catch (e) {
    it("runs the MongoDB suites in CI", () => {
      throw e;
    });
    kinds = ["sqlite"];
  }
  for (const kind of kinds) describe(`on ${kind}`, () => suite(kind));
}

export interface OpenedStore {
  store: Store;
  close(): Promise<void>;
}

/** A fresh, empty store of that kind (a temp dir, or a random MongoDB database dropped on close). */
export async function openTestStore(kind: StoreKind): Promise<OpenedStore> {
  if (kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "tessera-apitoken-"));
    const store = await openStore({ dataDir: dir });
    return {
      store,
      async close() {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const uri = process.env.MONGODB_URI!;
  const dbName = `tessera_test_${randomBytes(6).toString("hex")}`;
  const store = await openStore({ mongodbUri: uri, dataDir: "", mongoDbName: dbName, warn: () => {} });
  return {
    store,
    async close() {
      await store.close();
      const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 2000 });
      try {
        await client.db(dbName).dropDatabase();
      } finally {
        await client.close();
      }
    },
  };
}

export interface Spy<A extends unknown[]> {
  readonly calls: A[];
  restore(): void;
}

/**
 * Wraps `obj[key]` (a method) so every call is recorded, then passed on (or to `replacement`).
 * The core calls `store.apiTokens.findByHash(...)` through the object each time, so a spy
 * installed on a running server's store sees every lookup.
 */
export function spyOn<T extends object, K extends keyof T>(
  obj: T,
  key: K,
  replacement?: T[K],
): Spy<T[K] extends (...args: infer A) => unknown ? A : never> {
  const original = obj[key] as unknown as (...args: unknown[]) => unknown;
  const target = (replacement ?? original) as unknown as (...args: unknown[]) => unknown;
  const calls: unknown[][] = [];
  (obj as Record<PropertyKey, unknown>)[key as PropertyKey] = (...args: unknown[]) => {
    calls.push(args);
    return target.apply(obj, args);
  };
  return {
    calls: calls as never,
    restore: () => {
      (obj as Record<PropertyKey, unknown>)[key as PropertyKey] = original;
    },
  };
}
