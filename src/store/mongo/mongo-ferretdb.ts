// FerretDB 1.x on PostgreSQL stops answering for good (every command, `ping` included, until it
// is restarted) once as many updates are in flight as its PostgreSQL pool has connections
// (`pool_max_conns`, default 50): each holds one for its read and waits for a second for its
// write (src/store/README.md). A MongoClient carries up to maxPoolSize commands at once, so the
// operator is told at start, once the server has been reached, what this process may send.
import type { Db } from "mongodb";
import type { Warn } from "./mongo-indexes.js";

export interface FerretDbPoolWarning {
  /** The client's maxPoolSize (MONGODB_URI's, else the driver's default). */
  maxPoolSize: number;
  /** Worker processes of this instance, each with a client of its own (TESSERA_WORKERS). */
  workers: number;
}

/**
 * Asks the server its buildInfo and, when it is FerretDB 1.x (its `ferretdbVersion`; MongoDB has
 * none), warns once naming the version, the pool and the rule. Never waited for, never fails: a
 * buildInfo that errors is ignored (one answered late warns late). Says nothing of the URI.
 */
export function warnOfFerretDbPool(db: Db, warn: Warn, pool: FerretDbPoolWarning): void {
  void db.command({ buildInfo: 1 }).then((answer) => {
    const version = (answer as { ferretdbVersion?: unknown }).ferretdbVersion;
    if (typeof version !== "string" || !/^v?1\./.test(version)) return;
    warn(
      "FerretDB 1.x stops answering for good once as many updates are in flight as its PostgreSQL pool has connections: keep the sum of every process's maxPoolSize (a MONGODB_URI option) below FerretDB's pool_max_conns (default 50; see src/store/README.md)",
      { ferretdbVersion: version, maxPoolSize: pool.maxPoolSize, workers: pool.workers },
    );
  }, () => {});
}
