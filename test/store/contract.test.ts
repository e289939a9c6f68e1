// Runs the store contract against every adapter: SQLite always; MongoDB when MONGODB_URI is set
// (CI sets it, so there a missing MONGODB_URI is a failure, not a skip).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { MongoClient } from "mongodb";
import { openStore } from "../../src/store/index.js";
import type { Store } from "../../src/store/ports.js";
import { storeContract, type StoreHarness } from "./contract.js";

describe("store contract: sqlite", () => {
  storeContract(async (): Promise<StoreHarness> => {
    const root = mkdtempSync(join(tmpdir(), "tessera-store-"));
    const opened: Store[] = [];
    return {
      async open(name) {
        const store = await openStore({ dataDir: join(root, name) });
        opened.push(store);
        return store;
      },
      async cleanup() {
        for (const store of opened) await store.close();
        rmSync(root, { recursive: true, force: true });
      },
    };
  });
});

describe("store contract: mongo", () => {
  const uri = process.env.MONGODB_URI;
  if (!uri) {
    if (process.env.CI === "true") {
      it("runs in CI", () => {
        throw new Error("MONGODB_URI is not set: CI must run the MongoDB store contract");
      });
    } else {
      it("needs MONGODB_URI (skipped locally)");
    }
    return;
  }
  storeContract(async (): Promise<StoreHarness> => {
    const run = randomBytes(4).toString("hex");
    const opened: Store[] = [];
    const databases = new Set<string>();
    // Names stay short: FerretDB on PostgreSQL limits database name length.
    const dbName = (name: string) => `tessera_test_${run}_${name.replace(/[^a-z0-9]/gi, "").slice(-12)}`;
    return {
      async open(name) {
        const mongoDbName = dbName(name);
        databases.add(mongoDbName);
        const store = await openStore({ mongodbUri: uri, dataDir: "", mongoDbName, warn: () => {} });
        opened.push(store);
        return store;
      },
      async cleanup() {
        for (const store of opened) await store.close();
        const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
        try {
          for (const name of databases) await client.db(name).dropDatabase();
        } finally {
          await client.close();
        }
      },
    };
  });
});
