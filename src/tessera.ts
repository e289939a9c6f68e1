// Tessera assembled: configuration -> store -> services -> one server. `main.ts` runs it as a
// process; tests and benchmarks start it in-process.
import { onNews, onNewsReports, onSharedStoreFailure, shareNews, shareStoreFailure, type PortSharing } from "./cluster.js";
import { configuredSecret, type Config } from "./config.js";
import { systemClock, type Clock } from "./core/clock.js";
import type { Logger } from "./logger.js";
import { errorDomain } from "./server/error-details.js";
import { describeError } from "./server/error-report.js";
import { startServer, type RestHandlerFactory, type RunningServer } from "./server/index.js";
import type { NodeRequest, NodeResponse } from "./server/dispatch.js";
import { createServices } from "./services/index.js";
import { createTranscoder } from "./transcode/index.js";
import { restRoutes } from "./rest-routes.js";
import { openStoreWaiting } from "./store-start-wait.js";
import { instrumentStore } from "./store/instrumented.js";
import { createMetrics, type Metrics } from "./server/metrics.js";
import { createTracing } from "./server/tracing.js";
import { packageVersion } from "./project-files.js";
import type { StoreCallHook } from "./store/instrumented.js";
import type { Store, StoreConfig } from "./store/ports.js";

export { restMount, successStatus } from "./rest-routes.js";

export interface Tessera {
  readonly server: RunningServer;
  readonly store: Store;
  readonly url: string;
  /** The Prometheus registry and hooks; undefined with TESSERA_METRICS=off. */
  readonly metrics: Metrics | undefined;
  /**
   * The lame-duck period of a stop (TESSERA_SHUTDOWN_DELAY_SECONDS, RunningServer.drain):
   * readiness fails, so that a load balancer takes the instance out, and the connections clients
   * keep are drained: a client that does not follow the probes, or holds a connection the
   * balancer no longer routes through it, moves to another instance before the listener closes,
   * rather than meeting a reset when the stop closes its idle connection.
   */
  drain(): void;
  /** Graceful stop: the server drains, then the store closes. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger: Logger;
  clock?: Clock;
  /** Under TESSERA_WORKERS: how this worker shares the one port (cluster.ts). */
  sharing?: PortSharing | undefined;
  /** The embedded store's fsync of its log (default fs.fsync): tests fail it. */
  fsync?: StoreConfig["fsync"];
  /** The audit budget's window in ms (default a minute, as TESSERA_AUDIT_REFUSALS_PER_MINUTE says): tests shorten it. */
  auditWindowMs?: number | undefined;
  /** How often connections refused at TESSERA_MAX_CONNECTIONS are logged, in ms (default a minute): tests shorten it. */
  refusalLogIntervalMs?: number | undefined;
  /** Aborted by a stop during the start: a wait for MongoDB (TESSERA_STORE_START_WAIT_SECONDS) ends, rejecting with OpenStopped. */
  stopped?: AbortSignal | undefined;
}

/** REST routes for every service, each mounted where restMount says. */
function restFactory(config: Config): RestHandlerFactory {
  const isSecret = configuredSecret(config);
  return ({ handlers, services, contextValues, adminGate, onError, refused }) => {
    const transcoder = createTranscoder({
      handlers,
      // The routes the configuration checked (rest-routes.ts compiles them once).
      services: services.map((service) => ({ service, routes: restRoutes(service, config.jwtBasePath) })),
      maxBodyBytes: config.bodyLimitBytes,
      // CORS is applied before routing, for every protocol (server/cors.ts), not here.
      errorDomain,
      isSecret,
      contextValues,
      adminGate,
      onError,
      refused,
    });
    return Object.assign((req: NodeRequest, res: NodeResponse) => transcoder.handle(req, res), { routes: transcoder.routes });
  };
}

/** News between workers (cluster.ts shareNews): the signing keys changed; an API token (its hash, or its link when the store answered the revocation with an error) was revoked. */
const keysChanged = "keys-changed";
const apiTokenRevoked = "api-token-revoked";
const storeFull = "store-full";

export async function startTessera(config: Config, options: StartOptions): Promise<Tessera> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const metrics = config.metrics ? createMetrics() : undefined;
  const tracing = await createTracing(config.otlpEndpoint, packageVersion);
  // Under TESSERA_WORKERS a key rotated or revoked, or an API token revoked, takes effect in every
  // worker at once, as in the one that answered (not when their own key list or cache is next
  // read): the call answers once every other worker has acknowledged the news, or been given up
  // on, or said that it failed (each logged and counted, by the worker that waited for it);
  // instances on one MongoDB learn of it as before, within the reload interval or cache TTL. A
  // worker whose handler of news fails logs its error itself: the error, its message masked
  // (describeError), and where it was thrown, never the news's value (an API token's hash). Set
  // before the store opens, whose news (store-full) may be applied while this worker starts.
  onNewsReports({
    late(kind, worker) {
      logger.warn("worker did not apply news in time", { kind, lateWorker: worker });
      metrics?.newsUnacknowledged(kind);
    },
    failed(kind, worker) {
      logger.warn("worker failed to apply news", { kind, failedWorker: worker });
      metrics?.newsFailed(kind);
    },
    failedHere(kind, error) {
      logger.error("news handler failed", { kind, ...describeError(error) });
    },
  });
  const opened = await openStoreWaiting({
    mongodbUri: config.mongodbUri,
    dataDir: config.dataDir,
    mongoDbName: config.mongodbDatabase,
    serverSelectionTimeoutMs: config.storeTimeoutMs,
    warn: (message, fields) => logger.warn(message, { component: "store", ...fields }),
    // The first worker alone warns of FerretDB 1.x's pool, naming them all.
    workers: options.sharing === undefined ? 1 : config.workers,
    serverWarned: options.sharing?.leads === false,
    ...(options.fsync !== undefined && { fsync: options.fsync }),
    failures: {
      // Logged once, by the worker whose fsync failed; the others are told (cluster.ts).
      failed: (error) => {
        logger.error("store failed", { component: "store", error: error.message });
        shareStoreFailure(error.message);
      },
      listen: onSharedStoreFailure,
      // A full disk is every worker's (one file system): each then fails readiness and probes it
      // with a write, and is ready again once its own probe commits. The news is not kept: a
      // worker started later (a replacement) finds the disk full by its own first probe, which
      // is a write too (sqlite-store.ts), so it is never told of a disk full no longer.
      full: () => shareNews(storeFull),
      listenFull: (fill) => onNews(storeFull, fill),
    },
  }, { waitSeconds: config.storeStartWaitSeconds, logger, stopped: options.stopped });
  // Store calls are timed (metrics) around their span (tracing), each when enabled.
  const timed = metrics?.storeHook(opened.kind);
  const traced = tracing.storeHook;
  const hook: StoreCallHook | undefined = timed && traced ? (op, call) => timed(op, () => traced(op, call)) : (timed ?? traced);
  const store = hook ? instrumentStore(opened, hook) : opened;
  let services;
  try {
    services = await createServices({ config, store, logger, clock, auditWindowMs: options.auditWindowMs });
  } catch (e) {
    await store.close();
    throw e;
  }
  // The news each worker acts on (onNewsReports, above).
  const { keyRing, apiTokens } = services.core;
  keyRing.onChange(() => shareNews(keysChanged));
  onNews(keysChanged, () => keyRing.reloadNow().catch((e: unknown) => logger.warn("signing keys not reloaded", { error: e instanceof Error ? e.message : String(e) })));
  apiTokens.onRevoke((hashOrLink) => shareNews(apiTokenRevoked, hashOrLink));
  onNews(apiTokenRevoked, (hashOrLink) => apiTokens.forget(hashOrLink));
  services.core.hashPool.observe({
    ...(metrics && { waited: (ms: number) => metrics.hashWaited(ms) }),
    ...(tracing.aroundHash && { around: tracing.aroundHash }),
  });
  metrics?.watch({
    hashPool: services.core.hashPool,
    audit: services.core.audit,
    apiTokens: services.core.apiTokens,
    verifier: services.core.verifier,
    keyRing: services.core.keyRing,
  });
  const ready = () => store.ping().then(() => true, () => false);
  // Only a store failed for good fails liveness: a restart is what recovers it.
  const live = () => store.failure() === undefined;
  let server: RunningServer;
  try {
    server = await startServer({ config, logger, bindings: services.bindings, verifiers: services.verifiers, ready, live, rest: restFactory(config), metrics, audit: services.core.audit, tracing, sharing: options.sharing, refusalLogIntervalMs: options.refusalLogIntervalMs });
  } catch (e) {
    await services.close();
    await store.close();
    throw e;
  }
  // The dummy hash is made now, as the service begins to answer, so that the first unknown-login
  // attempt costs about what the rest do: not before (that was ~100 ms, a hash and a
  // verification), nor beside the start-up, where its memory (TESSERA_ARGON2_MEMORY_KIB) and CPU
  // delayed the first answer: on a busy machine the start's own work on libuv's pool (the
  // signing keys' fsyncs) waited behind it, its threads all at TESSERA_HASH_NICE.
  services.core.passwords.prepareDummy();
  return {
    server,
    store,
    url: server.url,
    metrics,
    drain() {
      server.drain();
    },
    async close() {
      await server.close();
      await services.close();
      await store.close();
      await tracing.shutdown();
    },
  };
}
