// Tessera as a process: read the configuration, start, stop cleanly on SIGTERM/SIGINT.
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { startTessera } from "./tessera.js";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`tessera: configuration error: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const logger = createLogger(config.logLevel);
  if (config.generated.clientId) {
    // Development convenience: printed once so a developer can call the API. Set
    // TESSERA_CLIENT_IDS and TESSERA_ADMIN_TOKEN in any real deployment.
    process.stderr.write(`tessera: development client id (x-koms-clientid): ${config.generated.clientId}\n`);
  }
  if (config.generated.adminToken) {
    process.stderr.write(`tessera: development admin token (Authorization: Bearer ...): ${config.generated.adminToken}\n`);
  }
  logger.info("store", { kind: config.mongodbUri ? "mongodb" : "sqlite", dataDir: config.mongodbUri ? undefined : config.dataDir });
  if (config.keyEncryptionKey === undefined && config.jwtAlg !== "HS256") {
    logger.warn("private signing keys are stored unsealed; set TESSERA_KEY_ENCRYPTION_KEY to seal them");
  }
  const tessera = await startTessera(config, { logger });
  logger.info("listening", { url: tessera.url, tls: tessera.server.listener.secure });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("stopping", { signal, inFlight: tessera.server.listener.inFlight() });
    tessera.close().then(
      () => {
        logger.info("stopped");
        process.exit(0);
      },
      (e: unknown) => {
        logger.error("stop failed", { error: e instanceof Error ? e.message : String(e) });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((e: unknown) => {
  process.stderr.write(`tessera: failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
