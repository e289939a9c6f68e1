// Starts a real Tessera server in-process for API tests: real listener on 127.0.0.1:0, real
// store (SQLite in a temp dir, or MongoDB in a fresh database), cheap argon2 parameters.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { MongoClient } from "mongodb";
import { loadConfig, type Config } from "../../src/config.js";
import type { Clock } from "../../src/core/clock.js";
import { createLogger, type Logger } from "../../src/logger.js";
import { startTessera, type StartOptions, type Tessera } from "../../src/tessera.js";
import type { DatabasePool } from "./store.js";

export type StoreKind = "sqlite" | "mongo";

export const testClientId = "test-client";
export const otherClientId = "other-client";
export const testAdminToken = "test-admin-token-0123456789abcdef";

export interface TestServer {
  readonly url: string;
  readonly port: number;
  readonly config: Config;
  readonly tessera: Tessera;
  /** Every log line the server wrote (JSON text), for asserting that no secret is logged. */
  readonly logs: string[];
  close(): Promise<void>;
}

export interface TestServerOptions {
  store?: StoreKind;
  /** Extra environment (overrides the test defaults). */
  env?: Record<string, string>;
  clock?: Clock;
  /** The embedded store's fsync of its log (default fs.fsync): a test fails it. */
  fsync?: StartOptions["fsync"];
  /** The audit budget's window in ms (default a minute). */
  auditWindowMs?: number;
  /** How often connections refused at TESSERA_MAX_CONNECTIONS are logged, in ms (default a minute). */
  refusalLogIntervalMs?: number;
  /**
   * On MongoDB, the database comes from these (freshStores' `databases`: emptied, its indexes
   * made) and goes back to them at close(), instead of a new one dropped at close().
   */
  databases?: DatabasePool;
}

/**
 * The stores to run API suites against: SQLite always; MongoDB when MONGODB_URI is set. With
 * CI=true a missing MONGODB_URI is an error, never a silent skip.
 */
export function storesUnderTest(): StoreKind[] {
  if (process.env.MONGODB_URI) return ["sqlite", "mongo"];
  if (process.env.CI === "true") throw new Error("CI=true but MONGODB_URI is unset: the MongoDB suites cannot run");
  return ["sqlite"];
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const kind = options.store ?? "sqlite";
  const dataDir = mkdtempSync(join(tmpdir(), "tessera-test-"));
  const pooled = kind === "mongo" && options.databases !== undefined && options.env?.TESSERA_MONGODB_DATABASE === undefined && options.env?.MONGODB_URI === undefined;
  const dbName = pooled ? options.databases!.take() : `tessera_test_${randomBytes(6).toString("hex")}`;
  const env: Record<string, string> = {
    PORT: "0",
    HOST: "127.0.0.1",
    TESSERA_DATA_DIR: dataDir,
    TESSERA_CLIENT_IDS: `${testClientId},${otherClientId}`,
    TESSERA_ADMIN_TOKEN: testAdminToken,
    TESSERA_LOG_LEVEL: "info",
    TESSERA_ARGON2_MEMORY_KIB: "1024",
    TESSERA_ARGON2_ITERATIONS: "1",
    TESSERA_SHUTDOWN_GRACE_SECONDS: "2",
    // Suites sign many users up from 127.0.0.1; the sign-up limit's own tests set theirs.
    TESSERA_SIGNUP_MAX_PER_ADDRESS: "1000000",
    ...(kind === "mongo" ? { MONGODB_URI: options.env?.MONGODB_URI ?? mongoUri(), TESSERA_MONGODB_DATABASE: dbName } : {}),
    ...options.env,
  };
  const config = loadConfig(env);
  const logs: string[] = [];
  const logger: Logger = createLogger(config.logLevel, (line) => logs.push(line));
  const tessera = await startTessera(config, {
    logger,
    clock: options.clock,
    ...(options.fsync !== undefined && { fsync: options.fsync }),
    ...(options.auditWindowMs !== undefined && { auditWindowMs: options.auditWindowMs }),
    ...(options.refusalLogIntervalMs !== undefined && { refusalLogIntervalMs: options.refusalLogIntervalMs }),
  });
  return {
    url: tessera.url,
    port: tessera.server.port,
    config,
    tessera,
    logs,
    async close() {
      await tessera.close();
      rmSync(dataDir, { recursive: true, force: true });
      if (pooled) {
        await options.databases!.give([dbName]);
      } else if (config.mongodbUri) {
        // Best effort: a test may have stopped the database on purpose.
        const client = new MongoClient(config.mongodbUri, { serverSelectionTimeoutMS: 1000 });
        try {
          await client.db(config.mongodbDatabase).dropDatabase();
        } catch {
          // ignore
        } finally {
          await client.close();
        }
      }
    },
  };
}

function mongoUri(): string {
  const uri = process.env.MONGODB_URI;
  if (!uri) throw new Error("MONGODB_URI is not set");
  return uri;
}
