import { loadMongoDriver } from "./mongo-driver.js";
import { outsideCall, timeLeftMs } from "../../call-scope.js";
import { DeadlineExceededError, StoreSettingError, StoreUnavailableError, withLateOperation, type Store } from "../ports.js";
import { mongoApiTokens } from "./mongo-api-tokens.js";
import { mongoAuditEvents } from "./mongo-audit-events.js";
import { mongoAuthTokens } from "./mongo-auth-tokens.js";
import { abandonable, type MongoContext } from "./mongo-context.js";
import { isMaxTimeExpired, isSrvLookupFailure, isUnavailable, mapMongoError } from "./mongo-errors.js";
import { warnOfFerretDbPool } from "./mongo-ferretdb.js";
import { ensureIndexes, type Warn } from "./mongo-indexes.js";
import { Marks } from "./mongo-marks.js";
import { mongoJwtRefreshTokens } from "./mongo-jwt-refresh-tokens.js";
import { mongoLoginAttempts } from "./mongo-login-attempts.js";
import { databaseInUri, withoutPassword } from "./mongo-uri.js";
import { mongoRefreshTokens } from "./mongo-refresh-tokens.js";
import { mongoSessions } from "./mongo-sessions.js";
import { mongoSigningKeys } from "./mongo-signing-keys.js";
import { mongoUserTokens } from "./mongo-user-tokens.js";
import { mongoUsers } from "./mongo-users.js";

export interface MongoStoreOptions {
  /** Wins over a database named in the URI; default: the URI's database, else "tessera". */
  dbName?: string;
  /** How long an operation waits for a reachable server before StoreUnavailableError. */
  serverSelectionTimeoutMs?: number;
  warn?: Warn;
  /** A server that cannot be reached fails the open (StoreUnavailableError), the client closed (StoreConfig.failUnreachable). */
  failUnreachable?: boolean;
  /** Aborted during the open: the client is closed, and the open fails at once. */
  stopped?: AbortSignal;
  /** Worker processes of this instance (TESSERA_WORKERS), each with its own client: named in the warning on FerretDB 1.x's pool. Default 1. */
  workers?: number;
  /** Another worker of this instance warns of the server (FerretDB 1.x's pool): this one does not. */
  serverWarned?: boolean;
}

export const DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 2000;

/**
 * A server that is up but does not answer (frozen, partitioned) would hold a call until the
 * socket timeout; server selection only bounds the wait for a server that is gone. So every
 * operation gets the same bound: past `ms` the caller gets StoreUnavailableError (UNAVAILABLE).
 * When the call being served has a deadline closer than that, the wait ends there instead
 * (DeadlineExceededError), and an operation asked for after it is not started at all.
 * The abandoned operation may still complete later, as with any lost connection: the caller was
 * never told it succeeded. One still waiting for a pooled connection by then gives up too
 * (waitQueueTimeoutMS below), so abandoned work is bounded by the pool, not by the calls' rate,
 * and a step of it still waiting its turn in the adapter (abandoned()) is not made.
 */
function withDeadline<T>(operation: () => Promise<T>, ms: number): Promise<T> {
  const left = timeLeftMs();
  if (left !== undefined && left <= 0) return Promise.reject(new DeadlineExceededError());
  const callersBound = left !== undefined && left < ms;
  const wait = callersBound ? left : ms;
  let timer: NodeJS.Timeout | undefined;
  const { running, abandon } = abandonable(operation, wait);
  const timedOut = () => (callersBound ? new DeadlineExceededError() : new StoreUnavailableError(`MongoDB did not answer within ${ms} ms`));
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abandon();
      // The operation goes on, and may still write: the error says so (settledOf).
      reject(withLateOperation(timedOut(), running));
    }, wait);
  });
  running.catch(() => {}); // a late failure of an abandoned operation is not unhandled
  // A read given this wait as its maxTimeMS (waitedForMs) that MongoDB stopped at it is answered
  // as the wait's end is, whichever came first: it is over, nothing of it goes on.
  const answered = running.catch((error: unknown) => {
    throw isMaxTimeExpired(error) ? timedOut() : error;
  });
  return Promise.race([answered, deadline]).finally(() => clearTimeout(timer));
}

/**
 * A mongodb+srv:// URI whose DNS records (SRV, TXT) could not be looked up, as an error naming
 * MONGODB_URI and the host: the driver's own ("querySrv ENOTFOUND _mongodb._tcp.host") named
 * neither the variable nor what it was looking up for. Undefined for any other error.
 */
function srvLookupFailure(error: unknown, uri: string): Error | undefined {
  if (!(error instanceof Error) || !isSrvLookupFailure(error)) return undefined;
  const host = /^mongodb\+srv:\/\/(?:[^/?]*@)?([^/?@]*)/.exec(uri)?.[1] ?? "";
  return new Error(withoutPassword(`MONGODB_URI: the DNS lookup of the mongodb+srv host ${host} failed (${error.message})`, uri), { cause: error });
}

/**
 * Opens the MongoDB store. It does not need the server to be up: when it is down, open still
 * succeeds, every call answers StoreUnavailableError after serverSelectionTimeoutMs, and the
 * indexes are created on the first call that reaches the server (no write runs before them).
 * The driver's monitor reconnects by itself when the server returns.
 */
export async function openMongoStore(uri: string, options: MongoStoreOptions = {}): Promise<Store> {
  const timeoutMs = options.serverSelectionTimeoutMs ?? DEFAULT_SERVER_SELECTION_TIMEOUT_MS;
  const warn: Warn = options.warn ?? ((message, fields) => {
    process.stderr.write(`${JSON.stringify({ level: "warn", component: "store", msg: message, ...fields })}\n`);
  });
  const { MongoClient } = await loadMongoDriver();
  const clientOptions = {
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    // A server that accepted a request and then went silent must not hang the caller forever.
    socketTimeoutMS: Math.max(10_000, 5 * timeoutMs),
    // An operation waits for a connection of the pool no longer than its caller waits for it
    // (withDeadline): it then leaves the pool's queue. The driver's default is to wait without
    // end, so while the database answered slower than calls came, the queue grew without bound
    // with operations whose callers had been answered UNAVAILABLE, each run later, stale.
    waitQueueTimeoutMS: timeoutMs,
    // Leave unset optional fields out of documents instead of storing null.
    ignoreUndefined: true,
    appName: "tessera",
  };
  let client: InstanceType<typeof MongoClient>;
  try {
    client = new MongoClient(uri, clientOptions);
  } catch (error) {
    // The driver's parse errors ("Invalid connection string", "Unable to parse h:x with URL")
    // named neither the variable nor, at times, the part; never the password.
    const why = error instanceof Error ? error.message : String(error);
    throw new StoreSettingError(`MONGODB_URI: not a usable connection string: ${withoutPassword(why, uri)}`, { cause: error });
  }
  const db = client.db(options.dbName ?? databaseInUri(uri) ?? "tessera");

  let indexed = false;
  let indexing: Promise<void> | null = null;
  const ready = (): Promise<void> => {
    indexing ??= ensureIndexes(db, warn).then(
      () => {
        indexed = true;
        // Once, as the server is first reached (at the start, or by a later call when it was down
        // then: no part of that call, nor of its log lines).
        if (!options.serverWarned) {
          outsideCall(() => warnOfFerretDbPool(db, warn, { maxPoolSize: client.options.maxPoolSize, workers: options.workers ?? 1 }));
        }
      },
      (error: unknown) => {
        indexing = null; // try again on the next call
        throw error;
      },
    );
    return indexing;
  };

  /**
   * Why the first connection failed, until one succeeds. The driver then closes its topology and
   * never reconnects by itself: every later call failed at once with "Topology is closed", for
   * good, and said nothing of why. So while it is set, a call starts a new connection (one at a
   * time) and is answered UNAVAILABLE at once with this reason (the start of a process then names
   * it: the refused port, the refused authentication); once one connects, calls go through.
   */
  let unreachable: Error | undefined;
  let reconnecting: Promise<void> | undefined;
  const reconnect = (): void => {
    reconnecting ??= client
      .connect()
      .then(
        () => {
          unreachable = undefined;
        },
        (error: unknown) => {
          if (error instanceof Error) unreachable = error;
        },
      )
      .finally(() => {
        reconnecting = undefined;
      });
  };

  const ctx: MongoContext = {
    db,
    marks: new Marks(db),
    async run(idKey, op) {
      if (unreachable !== undefined && !closed) {
        reconnect();
        throw new StoreUnavailableError("MongoDB unavailable", { cause: unreachable });
      }
      try {
        return await withDeadline(async () => {
          if (!indexed) await ready();
          return op();
        }, timeoutMs);
      } catch (error) {
        throw mapMongoError(error, idKey);
      }
    },
  };

  const stop = () => void client.close().catch(() => {});
  options.stopped?.addEventListener("abort", stop, { once: true });
  // Aborted while the driver loaded or the client was made: the listener above never hears it.
  if (options.stopped?.aborted) stop();
  try {
    await ready();
  } catch (error) {
    if (!isUnavailable(error)) {
      await client.close().catch(() => {});
      throw srvLookupFailure(error, uri) ?? error;
    }
    if (options.failUnreachable) {
      await client.close().catch(() => {});
      throw new StoreUnavailableError("MongoDB unavailable", { cause: error });
    }
    if (error instanceof Error) unreachable = error;
    warn("MongoDB unreachable at start-up; calls answer UNAVAILABLE until it is back", {
      error: error instanceof Error ? error.message : String(error),
    });
  } finally {
    options.stopped?.removeEventListener("abort", stop);
  }

  let closed = false;
  const users = mongoUsers(ctx);
  const loginAttempts = mongoLoginAttempts(ctx);
  return {
    kind: "mongo",
    users,
    sessions: mongoSessions(ctx, users),
    refreshTokens: mongoRefreshTokens(ctx),
    apiTokens: mongoApiTokens(ctx),
    userTokens: mongoUserTokens(ctx, users),
    authTokens: mongoAuthTokens(ctx),
    jwtRefreshTokens: mongoJwtRefreshTokens(ctx),
    keys: mongoSigningKeys(ctx),
    loginAttempts: loginAttempts.attempts,
    auditEvents: mongoAuditEvents(ctx),
    ping: async () => {
      if (closed) throw new StoreUnavailableError("store is closed");
      await ctx.run("id", () => db.command({ ping: 1 }));
    },
    // The server keeps its own durability (write concern); an outage passes, never fails for good.
    failure: () => undefined,
    close: async () => {
      if (closed) return;
      closed = true;
      // Its slots owed to the store are given back once more while the client still can.
      await loginAttempts.close();
      await client.close();
    },
  };
}
