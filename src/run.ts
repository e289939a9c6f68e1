// Tessera as a process: read the configuration, start (one process, or the first of
// TESSERA_WORKERS workers on the one port, which starts the others: cluster.ts), stop cleanly on
// SIGTERM/SIGINT, read the TLS certificate again on SIGHUP. `npm start` runs it from the compiled
// bundle (start.cts calls run()); `tsx src/main.ts` from the sources.
import { follow, lead, onLeaderDrain, reportStartFailure, roleOf, workerId, type Leader, type Role } from "./cluster.js";
import { ConfigError, connectionsBeyondOpenFiles, loadConfig, unknownVariables, unusedVariables, type Config } from "./config.js";
import { failureLine } from "./failure-line.js";
import { OpenStopped, StoreSettingError } from "./store/ports/errors.js";
import { createLogger, type Logger } from "./logger.js";
import type { CodeCacheUse } from "./bundle-loader.cjs";
import type { PoolPriority } from "./start.cjs";
import type { Tessera } from "./tessera.js";
import { lowerTierUpBudget } from "./tier-up.js";

/**
 * What start.cts left for this process to log (undefined when main.ts is run directly): the
 * priority of libuv's pool, and whether V8's code cache for the bundle was used.
 */
function fromStart<T>(name: "threadPoolPriority" | "codeCache"): T | undefined {
  return (globalThis as Record<symbol, unknown>)[Symbol.for(`tessera.${name}`)] as T | undefined;
}

function announce(config: Config, logger: Logger): void {
  if (config.generated.clientId) {
    // Development convenience: printed once so a developer can call the API. Set
    // TESSERA_CLIENT_IDS and TESSERA_ADMIN_TOKEN in any real deployment.
    process.stderr.write(`tessera: development client id (x-koms-clientid): ${config.generated.clientId}\n`);
  }
  if (config.generated.adminToken) {
    process.stderr.write(`tessera: development admin token (Authorization: Bearer ...): ${config.generated.adminToken}\n`);
  }
  // A misspelt variable is otherwise ignored without a word (its default applies).
  for (const unknown of unknownVariables()) logger.warn("unknown configuration variable, not read", unknown);
  // So is one set that the configuration chosen does not use (TESSERA_MONGODB_DATABASE on the embedded store).
  for (const unused of unusedVariables(config)) logger.warn("configuration variable not used", unused);
  // A connection cap the process's open files cannot hold is no cap (the start goes on).
  const beyond = connectionsBeyondOpenFiles(config);
  if (beyond !== undefined) logger.warn("TESSERA_MAX_CONNECTIONS beyond the open-file limit", beyond);
  logger.info("store", { kind: config.mongodbUri ? "mongodb" : "sqlite", dataDir: config.mongodbUri ? undefined : config.dataDir });
  if (config.keyEncryptionKey === undefined && config.jwtAlg !== "HS256") {
    logger.warn("private signing keys are stored unsealed; set TESSERA_KEY_ENCRYPTION_KEY to seal them");
  }
}

async function serve(config: Config, logger: Logger, role: Role, leader: Leader | undefined): Promise<void> {
  // Signals are handled from the first moment: one that arrives while the service is still
  // starting stops it as soon as it has started (a follower must not die mid-start with the
  // default action when the leader forwards a stop).
  let tessera: Tessera | undefined;
  let requested: string | undefined;
  let closing = false;
  // A stop during the start ends a wait for MongoDB (TESSERA_STORE_START_WAIT_SECONDS) at once;
  // any other part of the start runs to its end, and the stop follows.
  const starting = new AbortController();
  const close = () => {
    if (closing || tessera === undefined) return;
    closing = true;
    logger.info("stopping", { signal: requested, inFlight: tessera.server.listener.inFlight() });
    end(tessera.close());
  };
  /** The rest of a stop, once `closed` (this process's service) resolves. */
  const end = (closed: Promise<void>) => {
    // The leader stops accepting first (its listener closes), then its followers and itself drain.
    const followers = leader && requested !== "disconnect" ? leader.stopFollowers(requested === "SIGINT" ? "SIGINT" : "SIGTERM") : Promise.resolve(true);
    Promise.all([closed, followers]).then(
      ([, drained]) => {
        logger.info("stopped");
        process.exit(drained ? 0 : 1);
      },
      (e: unknown) => {
        logger.error("stop failed", { error: e instanceof Error ? e.message : String(e) });
        process.exit(1);
      },
    );
  };
  // TESSERA_SHUTDOWN_DELAY_SECONDS: the first signal begins a lame-duck period instead. Readiness
  // fails at once while the listener stays open and every call is served as before, so that a
  // load balancer, whose probes now fail, takes the instance out before its listener closes
  // (connections opened meanwhile would otherwise be reset in the listen backlog). Then the stop
  // above runs unchanged; a second signal ends the delay at once.
  const delayMs = config.shutdownDelaySeconds * 1000;
  let draining = false;
  let delay: NodeJS.Timeout | undefined;
  // A follower whose leader drains the instance: the leader ends the delay (its "stop", or its
  // end), as its own listener closes. A timer here could end it first, and a signal here may be
  // the same SIGTERM the leader got (sent to the whole process group), not a second one.
  let ledBy: string | undefined;
  const drain = (signal: string) => {
    if (draining || closing || tessera === undefined) return;
    draining = true;
    tessera.drain();
    logger.info("draining", { signal, delaySeconds: config.shutdownDelaySeconds });
    leader?.drainFollowers(signal === "SIGINT" ? "SIGINT" : "SIGTERM");
  };
  const stop = (signal: "SIGTERM" | "SIGINT" | "disconnect") => {
    const first = requested === undefined;
    requested ??= signal;
    if (tessera === undefined) starting.abort();
    if (signal !== "disconnect") leader?.stopRequested(signal);
    // One that comes while the service is still starting stops it once started, without a delay:
    // no balancer has taken it in yet.
    if (first && signal !== "disconnect" && delayMs > 0 && tessera !== undefined) {
      drain(signal);
      if (ledBy === undefined) delay = setTimeout(close, delayMs);
      return;
    }
    clearTimeout(delay);
    close();
  };
  if (role === "follower") {
    onLeaderDrain({
      drain(signal) {
        ledBy = signal;
        clearTimeout(delay);
        drain(signal);
      },
      stop(signal) {
        requested ??= signal;
        clearTimeout(delay);
        close();
      },
    });
  }
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // SIGHUP reloads the TLS certificate and key (in every worker), and never ends the process (its
  // default action). One that arrives while starting is not needed: the start reads the files.
  process.on("SIGHUP", () => {
    if (tessera === undefined || closing) return;
    tessera.server.reloadCertificate();
    leader?.reloadFollowers();
  });
  // A follower stops on the signal the leader forwards (a terminal's Ctrl-C reaches both: the
  // second is a no-op), and on its own when the leader is gone.
  if (role === "follower") process.on("disconnect", () => stop("disconnect"));

  // Housekeeping runs once per cluster: in the leader (or the only process).
  const housekeeping = role !== "follower" && config.housekeepingIntervalSeconds > 0;
  const sharing = role === "follower" ? follow() : leader?.sharing;
  const { startTessera } = await import("./tessera.js");
  try {
    tessera = await startTessera(housekeeping ? config : { ...config, housekeepingIntervalSeconds: 0 }, { logger, sharing, stopped: starting.signal });
  } catch (e) {
    if (!(e instanceof OpenStopped)) throw e;
    // A follower whose first worker is gone cannot serve: its start fails, as one that finds it
    // gone after its start does (cluster.ts follow).
    if (requested === "disconnect") throw new Error("the first worker is gone");
    // Stopped while it waited for MongoDB: nothing was served, so nothing drains.
    closing = true;
    logger.info("stopping", { signal: requested });
    end(Promise.resolve());
    return;
  }
  const pool = fromStart<PoolPriority>("threadPoolPriority");
  if (pool?.applied) logger.info("password hashing threads", { nice: pool.nice });
  else if (config.hashNice > 0) logger.warn("password hashing threads keep the process's CPU priority", { reason: pool?.reason ?? "not started through start.cjs (npm start)" });
  // Only in a start through start.cjs: the build's code-cache writer runs the bundle too, and the
  // cache it writes must be made under the flags a start compiles with (V8 refuses it otherwise).
  const codeCache = fromStart<CodeCacheUse>("codeCache");
  const interruptBudget = codeCache === undefined ? undefined : lowerTierUpBudget();
  logger.info("listening", {
    url: tessera.url,
    tls: tessera.server.listener.secure,
    metricsPort: tessera.server.metricsPort,
    housekeeping,
    pid: process.pid,
    codeCache,
    interruptBudget,
  });
  if (requested !== undefined) close();
  // Handed connections before its start ended, during the first worker's delay: it drains too.
  else if (ledBy !== undefined) drain(ledBy);
}

/** The first worker's side of the cluster (its start failing ends the others it forked, still starting). */
let leading: Leader | undefined;

async function main(): Promise<void> {
  // A ConfigError is written as run() writes a failed start's line, exit 2: a worker forked by the
  // first, which reads the TLS files again (a renewal half written), tells the first.
  const config = loadConfig();
  const role = roleOf(config.workers);
  const id = workerId(role);
  const logger = createLogger(config.logLevel, undefined, id === undefined ? undefined : { worker: id });
  if (role !== "follower") announce(config, logger);
  // The followers are forked once this process listens (cluster.ts), not while it starts.
  const leader = role === "leader" ? lead(config, logger) : undefined;
  leading = leader;
  await serve(config, logger, role, leader);
}

/** Runs Tessera as this process (until a signal stops it). */
export function run(): void {
  main().catch((e: unknown) => {
    // A ConfigError's message hides the secrets itself (config.ts withSecretsHidden): failureLine
    // would hide a short secret's text wherever the message holds it ("must b<hidden> at l...").
    const line = e instanceof ConfigError ? e.message : failureLine(e);
    // A store setting found unusable as the store opens (MONGODB_URI) is a configuration error
    // like those found before: exit 2, as the README says of a bad value.
    const [what, code] = e instanceof ConfigError || e instanceof StoreSettingError ? ["configuration error", 2] : ["failed to start", 1];
    // One line for the whole start: a worker forked by the first tells it (the first logs it as
    // that worker's exit), and the first ends the others still starting before it writes its own.
    reportStartFailure(line, (told) => {
      leading?.startFailed();
      if (!told) process.stderr.write(`tessera: ${what}: ${line}\n`);
      process.exit(code);
    });
  });
}
