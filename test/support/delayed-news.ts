// Preloaded (node --import) into a cluster's workers: the worker numbered NEWS_DELAY_WORKER
// (a follower: TESSERA_WORKER_ID) applies the news the others send it (cluster.ts, its
// "tessera:news" messages) NEWS_DELAY_MS late, or with "never", not at all, as a worker whose
// event loop is busy or whose store is slow to answer would. Every other message arrives as sent.
const worker = process.env.NEWS_DELAY_WORKER;
const delay = process.env.NEWS_DELAY_MS;

if (worker !== undefined && process.env.TESSERA_WORKER_ID === worker) {
  const emit = process.emit.bind(process) as (event: string | symbol, ...args: unknown[]) => boolean;
  process.emit = ((event: string | symbol, ...args: unknown[]) => {
    if (event !== "message" || (args[0] as { type?: unknown } | null)?.type !== "tessera:news") return emit(event, ...args);
    if (delay !== "never") setTimeout(() => emit(event, ...args), Number(delay));
    return true;
  }) as typeof process.emit;
}
