// The writes a start makes (login keys given to accounts stored without one; the key ring's
// promotion of a key and publication of the next key) when the store refuses them for a full
// disk: owed, not fatal. A restart or a worker replaced during a full-disk incident would
// otherwise turn a service that still answers reads into an outage. The start goes on with what
// is stored, and each owed write is tried again every second, by itself, until it is made. A
// retry that fails for another reason (SQLITE_IOERR, a corrupt row) is logged at warn, once for
// each reason in a row, and tried again all the same.
import type { Logger } from "../logger.js";
import { StoreUnavailableError } from "../store/ports/errors.js";

/** How often an owed start-up write is tried again. */
export const OWED_WRITE_RETRY_MS = 1000;

/** A retry's failure for a full disk, as the last failure (not logged: the start's warning said it). */
const diskFull = Symbol("disk full");

export class OwedWrites {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly trying = new Set<Promise<void>>();

  constructor(
    private readonly logger: Logger,
    private readonly retryMs = OWED_WRITE_RETRY_MS,
  ) {}

  /**
   * Runs `write`. Refused for a full disk (StoreUnavailableError.diskFull), and when `meanwhile`
   * says the start can go on without it, it is owed: logged once as a warning naming `what`, tried
   * again every second until it succeeds (logged at info), whatever probes the service; a retry
   * that fails for another reason is logged at warn with its message, once, and again only when
   * the reason changes. At the first try, any other error, or one the start cannot do without, is
   * thrown.
   */
  async run(what: string, write: () => Promise<void>, meanwhile: () => Promise<boolean> = () => Promise.resolve(true)): Promise<void> {
    try {
      return await write();
    } catch (error) {
      if (!(error instanceof StoreUnavailableError && error.diskFull) || !(await meanwhile())) throw error;
      this.logger.warn(`${what} met a full disk at start-up; the start goes on without it, and it is made once space is back (tried every second)`, { error: error.message });
    }
    // The reason the last retry failed: a full disk (still owed, said at the start) or another
    // error's message, logged when it is not the last one's (a retry every second would otherwise
    // fail unseen, or flood the log).
    let lastFailure: string | typeof diskFull = diskFull;
    const timer = setInterval(() => {
      if (this.trying.size > 0 || !this.timers.has(timer)) return;
      const attempt = write().then(
        () => {
          this.stop(timer);
          this.logger.info(`${what}, owed since start-up, made`);
        },
        (error: unknown) => {
          // The next tick tries again.
          const failure = error instanceof StoreUnavailableError && error.diskFull ? diskFull : error instanceof Error ? error.message : String(error);
          if (failure !== lastFailure && failure !== diskFull) {
            this.logger.warn(`${what}, owed since start-up, failed for another reason than a full disk; it is tried again every second`, { error: failure });
          }
          lastFailure = failure;
        },
      );
      this.trying.add(attempt);
      void attempt.finally(() => this.trying.delete(attempt));
    }, this.retryMs);
    timer.unref();
    this.timers.add(timer);
  }

  /** Stops the retries and waits for one under way (before the store closes). */
  async close(): Promise<void> {
    for (const timer of this.timers) this.stop(timer);
    await Promise.all(this.trying);
  }

  private stop(timer: NodeJS.Timeout): void {
    clearInterval(timer);
    this.timers.delete(timer);
  }
}
