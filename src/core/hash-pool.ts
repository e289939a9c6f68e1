// Admission control for password hashing. argon2id is made to be expensive (~50 ms of a core and
// ~19 MiB each at the default cost), and logins and sign-ups need no credential, so without a
// bound a flood of them queues unboundedly for libuv's threads and stalls every other request.
// At most `concurrency` hashes run at once; at most `queueLimit` more wait; beyond that a call is
// refused at once with UNAVAILABLE HASHER_BUSY and a Retry-After, before any hashing.
//
// Why UNAVAILABLE, not RESOURCE_EXHAUSTED: the condition is the server's, transient, and the
// call did nothing, which is what UNAVAILABLE means ("most likely a transient condition, which
// can be corrected by retrying with a backoff"); RESOURCE_EXHAUSTED (HTTP 429) tells a caller
// that it, in particular, has used up something (a quota, its login attempts: LOGIN_LOCKED).
// One code, so every protocol agrees: gRPC UNAVAILABLE, REST and Connect 503, with Retry-After.
import { callEnded, CallEndedError, currentCall } from "../call-scope.js";
import { unavailable, type AuthError } from "./errors.js";

export interface HashPoolLimits {
  /** Hashes running at once. */
  concurrency: number;
  /** Hashes waiting for a free hasher; past this, callers are refused. */
  queueLimit: number;
  /** The Retry-After of a refusal, in seconds (default: 1, 2 or 3 at random). */
  retryAfterSeconds?: () => number;
}

/** What the server layer may watch (metrics, tracing); the pool works the same without it. */
export interface HashPoolObserver {
  /** A job got a hasher after waiting `ms` (0 when one was free). */
  waited?(ms: number): void;
  /** Wraps each job as it runs (a trace span around the hashing). */
  around?<T>(job: () => Promise<T>): Promise<T>;
}

/**
 * The Retry-After of a refusal: 1, 2 or 3 seconds at random. A flood is refused in bursts, and
 * clients told the same wait come back together, as a burst again, each time; spread over three
 * seconds they come back a third at a time, and the hasher's queue (at ~50 ms a hash) has
 * drained in between.
 */
const jitteredRetryAfter = () => 1 + Math.floor(Math.random() * 3);

/** HASHER_BUSY: a password check the server could not make (or not in time); retry shortly. */
export const hasherBusy = (retryAfterSeconds: number): AuthError =>
  unavailable("HASHER_BUSY", "too many password checks in progress; retry shortly", { retryAfterSeconds });

export class HashPool {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private observer: HashPoolObserver = {};

  constructor(private readonly limits: HashPoolLimits) {
    if (!(limits.concurrency >= 1)) throw new Error("hash pool concurrency must be at least 1");
  }

  /** Hashes running now. */
  get inUse(): number {
    return this.running;
  }

  /** Hashes waiting for a hasher now. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Sets who watches the pool (one observer; a later call replaces it). */
  observe(observer: HashPoolObserver): void {
    this.observer = observer;
  }

  /** Throws HASHER_BUSY when a job submitted now would be refused: lets a caller refuse before any other work. */
  admit(): void {
    if (this.full()) throw this.refusal();
  }

  /**
   * Runs `job` when a hasher is free; HASHER_BUSY at once when the queue is full. A job of a call
   * that has ended (its client gone, its deadline passed) is not run (CallEndedError): it leaves
   * the queue as the call ends, and one found ended when its turn comes hands the hasher on, so
   * no hash is made for nobody while a live caller waits behind it or is refused for want of
   * the place it held.
   */
  async run<T>(job: () => Promise<T>): Promise<T> {
    const { waited, around } = this.observer;
    if (callEnded()) throw new CallEndedError();
    if (this.running < this.limits.concurrency) {
      this.running++;
      waited?.(0);
    } else {
      if (this.full()) throw this.refusal();
      const start = performance.now();
      // The finishing job hands its place over (see below): `running` stays as it is. A call
      // that ends while it waits leaves the queue at once, its place free for another.
      const signal = currentCall()?.signal;
      await new Promise<void>((resolve, reject) => {
        const turn = () => {
          signal?.removeEventListener("abort", ended);
          resolve();
        };
        const ended = () => {
          const i = this.waiting.indexOf(turn);
          if (i < 0) return;
          this.waiting.splice(i, 1);
          reject(new CallEndedError());
        };
        this.waiting.push(turn);
        signal?.addEventListener("abort", ended, { once: true });
      });
      if (callEnded()) {
        this.release();
        throw new CallEndedError();
      }
      waited?.(performance.now() - start);
    }
    try {
      return await (around ? around(job) : job());
    } finally {
      this.release();
    }
  }

  /** A hasher is done: the next job waiting gets it, else it is free. */
  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }

  private refusal(): AuthError {
    return hasherBusy((this.limits.retryAfterSeconds ?? jitteredRetryAfter)());
  }

  private full(): boolean {
    return this.running >= this.limits.concurrency && this.waiting.length >= this.limits.queueLimit;
  }
}
