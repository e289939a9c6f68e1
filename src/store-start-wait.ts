// TESSERA_STORE_START_WAIT_SECONDS: a start whose MongoDB cannot be reached yet (the service and
// its database coming up together: docker compose, a rollout, a host reboot) keeps trying to open
// the store for that long instead of failing at once, each failed try logged at warn with its
// cause. What no retry mends (refused credentials, a refused TLS certificate, a TLS handshake
// that fails for a mismatch, a bad MONGODB_URI, the embedded store's directory) fails at once;
// once the wait has passed, the last try's failure is the start's, as it would have been without
// the wait. A stop (SIGTERM, SIGINT) during the wait ends it at once,
// even one that came as a try succeeded (the store it opened is closed).
import { setTimeout as sleep } from "node:timers/promises";
import { failureLine } from "./failure-line.js";
import type { Logger } from "./logger.js";
import { openMayPass, openStore } from "./store/index.js";
import { OpenStopped, type Store, type StoreConfig } from "./store/ports.js";

/** The pause after the first failed try; each next one is twice the last, up to maxPauseMs. */
const firstPauseMs = 500;
const maxPauseMs = 5000;

/**
 * Opens the store; with `waitSeconds` > 0, tries again while it fails for a reason that may pass,
 * until that long after the first try began (no try begins later: the last one's failure is
 * thrown). Rejects with OpenStopped once `stopped` is aborted during the wait, closing a store whose
 * open succeeded as the stop came. `open` is openStore unless given (tests).
 */
export async function openStoreWaiting(
  config: StoreConfig,
  o: { waitSeconds: number; logger: Logger; stopped?: AbortSignal | undefined; open?: (config: StoreConfig) => Promise<Store> },
): Promise<Store> {
  const open = o.open ?? openStore;
  if (o.waitSeconds === 0 || config.mongodbUri === undefined) return open(config);
  const until = performance.now() + o.waitSeconds * 1000;
  for (let pauseMs = firstPauseMs; ; pauseMs = Math.min(pauseMs * 2, maxPauseMs)) {
    if (o.stopped?.aborted) throw new OpenStopped();
    let store: Store;
    try {
      store = await open({ ...config, failUnreachable: true, ...(o.stopped !== undefined && { stopped: o.stopped }) });
    } catch (e) {
      if (o.stopped?.aborted) throw new OpenStopped();
      const leftMs = Math.ceil(until - performance.now());
      if (!openMayPass(config, e) || leftMs <= 0) throw e;
      const retryInMs = Math.min(pauseMs, leftMs);
      o.logger.warn("MongoDB could not be reached; the start tries again (TESSERA_STORE_START_WAIT_SECONDS)", { component: "store", error: failureLine(e), retryInMs });
      await sleep(retryInMs, undefined, o.stopped && { signal: o.stopped }).catch(() => {});
      continue;
    }
    // A try that succeeded as the stop came: the stop may have closed its client already.
    if (o.stopped?.aborted) {
      await store.close().catch(() => {});
      throw new OpenStopped();
    }
    return store;
  }
}
