// Connections refused at TESSERA_MAX_CONNECTIONS, as the operator is told of them.
import type { Logger } from "../logger.js";

/** A port's refusals: `refused` is told of each, `stop` when the port has closed. */
export interface RefusalLog {
  refused(): void;
  /**
   * Logs the refusals not logged yet (those since the interval's line), as the interval's end
   * would: a stop within the interval does not lose them. Its timer is cleared.
   */
  stop(): void;
}

/**
 * What a port does with a connection refused at TESSERA_MAX_CONNECTIONS: `count` it (the main
 * port's, in the metrics), and log it at warn at most once an interval (`intervalMs`, a minute;
 * tests shorten it), not once a connection (a flood of them would be a flood of lines): the
 * first at once, then, each interval that saw more, how many (`refused`); at the port's stop,
 * how many since the last line. An interval that saw none ends the summaries: the next refusal
 * is logged at once again.
 */
export function refusalLog(
  logger: Logger,
  port: "main" | "metrics",
  maxConnections: number,
  { count, intervalMs = 60_000 }: { count?: (() => void) | undefined; intervalMs?: number | undefined } = {},
): RefusalLog {
  let timer: NodeJS.Timeout | undefined;
  let unlogged = 0;
  const log = () => {
    logger.warn("connections refused: TESSERA_MAX_CONNECTIONS reached", { port, refused: unlogged, maxConnections });
    unlogged = 0;
  };
  const flush = () => {
    if (unlogged === 0) {
      timer = undefined;
      return;
    }
    log();
    timer = setTimeout(flush, intervalMs).unref();
  };
  return {
    refused() {
      count?.();
      unlogged++;
      if (timer === undefined) flush();
    },
    stop() {
      clearTimeout(timer);
      timer = undefined;
      if (unlogged > 0) log();
    },
  };
}
