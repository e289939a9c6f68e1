// Connections refused at TESSERA_MAX_CONNECTIONS, as the operator is told of them.
import type { Logger } from "../logger.js";

/**
 * What a port does with a connection refused at TESSERA_MAX_CONNECTIONS: `count` it (the main
 * port's, in the metrics), and log it at warn at most once an interval (`intervalMs`, a minute;
 * tests shorten it), not once a connection (a flood of them would be a flood of lines): the
 * first at once, then, each interval that saw more, how many (`refused`). An interval that saw
 * none ends the summaries: the next refusal is logged at once again.
 */
export function refusalLog(
  logger: Logger,
  port: "main" | "metrics",
  maxConnections: number,
  { count, intervalMs = 60_000 }: { count?: (() => void) | undefined; intervalMs?: number | undefined } = {},
): () => void {
  let timer: NodeJS.Timeout | undefined;
  let unlogged = 0;
  const flush = () => {
    if (unlogged === 0) {
      timer = undefined;
      return;
    }
    logger.warn("connections refused: TESSERA_MAX_CONNECTIONS reached", { port, refused: unlogged, maxConnections });
    unlogged = 0;
    timer = setTimeout(flush, intervalMs).unref();
  };
  return () => {
    count?.();
    unlogged++;
    if (timer === undefined) flush();
  };
}
