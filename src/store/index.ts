import { openMongoStore } from "./mongo/mongo-store.js";
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
    });
  }
  return openSqliteStore(config.dataDir, {
    ...(config.warn !== undefined && { warn: config.warn }),
    ...(config.fsync !== undefined && { fsync: config.fsync }),
    ...(config.failures !== undefined && { failures: config.failures }),
  });
}
