// Preloaded (node --import) into a cluster's workers: NEWS_DELAYS lists workers and how late each
// applies the news the others send it, as "worker:delay" pairs separated by commas (a delay in ms,
// or "never": not at all), as a worker whose event loop is busy or whose store is slow to answer
// would. Worker 1 is the first (it has no TESSERA_WORKER_ID): the news its followers send, over
// each one's channel (a ChildProcess's "message" events), is delayed; a follower's is the news
// the first worker sends it (its own process's "message" events). Every other message arrives
// as sent.
import { ChildProcess } from "node:child_process";

const delays = new Map((process.env.NEWS_DELAYS ?? "").split(",").filter(Boolean).map((pair) => pair.split(":") as [string, string]));
const delay = delays.get(process.env.TESSERA_WORKER_ID ?? "1");

/** `emitter`'s "message" events carrying news are emitted `delay` late, or never. */
function delayNews(emitter: { emit: (event: string | symbol, ...args: unknown[]) => boolean }): void {
  const emit = emitter.emit;
  emitter.emit = function (this: unknown, event: string | symbol, ...args: unknown[]) {
    if (event !== "message" || (args[0] as { type?: unknown } | null)?.type !== "tessera:news") return emit.call(this, event, ...args);
    if (delay !== "never") setTimeout(() => emit.call(this, event, ...args), Number(delay));
    return true;
  };
}

if (delay !== undefined) delayNews(process.env.TESSERA_WORKER_ID === undefined ? ChildProcess.prototype : (process as unknown as Parameters<typeof delayNews>[0]));
