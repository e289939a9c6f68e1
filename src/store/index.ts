import { openMongoStore } from "./mongo/mongo-store.js";
import { mayOpenLater } from "./mongo/mongo-errors.js";
import type { Store, StoreConfig } from "./ports.js";
import { openSqliteStore } from "./sqlite/sqlite-store.js";

export * from "./ports.js";

/** MONGODB_URI set -> MongoDB; otherwise the embedded SQLite file under dataDir. */
export async function openStore(config: StoreConfig): Promise<Store> {
  if (config.mongodbUri) {
    return openMongoStore(config.mongodbUri, {
      ...(config.mongoDbName !== undefined && { dbName: config.mongoDbName }),
      ...(config.serverSelectionTimeoutMs !== undefined && { serverSelectionTimeoutMs: config.serverSelectionTimeoutMs }),
      ...(config.warn !== undefined && { warn: config.warn }),
      ...(config.failUnreachable !== undefined && { failUnreachable: config.failUnreachable }),
      ...(config.stopped !== undefined && { stopped: config.stopped }),
      ...(config.workers !== undefined && { workers: config.workers }),
      ...(config.serverWarned !== undefined && { serverWarned: config.serverWarned }),
    });
  }
  return openSqliteStore(config.dataDir, {
    ...(config.warn !== undefined && { warn: config.warn }),
    ...(config.fsync !== undefined && { fsync: config.fsync }),
    ...(config.failures !== undefined && { failures: config.failures }),
  });
}

/**
 * Whether a store that could not be opened may open when tried again (a start's wait,
 * TESSERA_STORE_START_WAIT_SECONDS): MongoDB's alone (mongo-errors.ts mayOpenLater); the embedded
 * store's failures (its directory, its file) are not waited for.
 */
export function openMayPass(config: StoreConfig, error: unknown): boolean {
  return config.mongodbUri !== undefined && mayOpenLater(error);
}
