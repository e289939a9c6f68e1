// TESSERA_WORKERS: that many worker processes on the one port (Node's cluster: the primary
// accepts connections and hands them round-robin to the workers, which serve them whole).
// The primary only supervises: it runs no server, opens no store. It generates the development
// credentials once, so every worker accepts the same ones; it forwards SIGTERM/SIGINT to every
// worker and exits when the last one has drained; a worker that dies unexpectedly is replaced
// (at most once a second, so a worker that cannot start does not spin).
//
// What stays per process, as it does across instances on one MongoDB: caches bounded by their
// TTLs (API tokens: TESSERA_API_TOKEN_CACHE_SECONDS; keys: the reload interval). Housekeeping
// runs in the first worker only. The embedded store is shared through SQLite's own locking
// (WAL, busy timeout, write transactions taken IMMEDIATE).
import cluster, { type Worker } from "node:cluster";
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";

/** Set in each worker's environment: its number, 1..TESSERA_WORKERS. */
export const workerIdVariable = "TESSERA_WORKER_ID";

export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/** The worker's number (1..n) in a cluster; undefined in a single process. */
export function workerId(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env[workerIdVariable];
  return cluster.isWorker && raw ? Number(raw) : undefined;
}

/** Runs the primary: forks `config.workers` workers and supervises them until a signal. */
export function runPrimary(config: Config, logger: Logger): void {
  // The same development credentials for every worker (each would otherwise generate its own).
  const shared: Record<string, string> = {};
  if (config.generated.clientId) shared.TESSERA_CLIENT_IDS = config.clientIds.join(",");
  if (config.generated.adminToken) shared.TESSERA_ADMIN_TOKEN = config.adminToken;

  let stopping = false;
  let lastRespawn = 0;
  const fork = (id: number): Worker => {
    const worker = cluster.fork({ ...shared, [workerIdVariable]: String(id) });
    worker.once("exit", (code, signal) => {
      if (stopping) return;
      logger.error("worker exited", { worker: id, code, signal });
      const wait = Math.max(0, lastRespawn + 1000 - Date.now());
      lastRespawn = Date.now() + wait;
      setTimeout(() => {
        if (!stopping) fork(id);
      }, wait);
    });
    return worker;
  };
  for (let id = 1; id <= config.workers; id++) fork(id);

  // A scrape of any worker's /metrics is answered with every worker's metrics, aggregated here.
  // Loaded once the workers are forked, so that they start while it loads (they ask nothing of
  // it before they serve).
  if (config.metrics) {
    import("./server/metrics.js").then(
      ({ serveClusterMetrics }) => serveClusterMetrics(),
      (e: unknown) => logger.error("cluster metrics unavailable", { error: e instanceof Error ? e.message : String(e) }),
    );
  }

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info("stopping", { signal, workers: Object.keys(cluster.workers ?? {}).length });
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
    // The grace period is the workers'; this only guards against one that never exits.
    const force = setTimeout(() => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGKILL");
    }, (config.shutdownGraceSeconds + 5) * 1000);
    force.unref();
  };
  let failed = false;
  cluster.on("exit", (_worker, code) => {
    if (code !== 0 && stopping) failed = true;
    if (stopping && Object.keys(cluster.workers ?? {}).length === 0) {
      logger.info("stopped");
      process.exit(failed ? 1 : 0);
    }
  });
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
