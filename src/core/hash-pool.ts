// Admission control for password hashing. argon2id is made to be expensive (~50 ms of a core and
// ~19 MiB each at the default cost), and logins and sign-ups need no credential, so without a
// bound a flood of them queues unboundedly for libuv's threads and stalls every other request.
// At most `concurrency` hashes run at once; at most `queueLimit` more wait; beyond that a call is
// refused at once with UNAVAILABLE HASHER_BUSY and a Retry-After, before any hashing.
//
// A caller that has other work to do before it hashes (a sign-up looks its login up, a login
// takes its throttle slots and reads the account) is admitted first (admit()): the ticket it gets
// holds one of those places, counted as taken, until its job runs in it (ticket.run: never
// refused HASHER_BUSY) or it is given back (ticket.release, or its call ending). So what is
// answered after the admission does not depend on how full the pool got meanwhile: a sign-up of
// a taken login and one of a free login, admitted alike, are never told apart by a refusal. A
// held place is not a particular hasher: a hasher left free while it is held runs whatever else
// was admitted, and the ticket's job then waits its turn in the queue, a place it already counts.
//
// Why UNAVAILABLE, not RESOURCE_EXHAUSTED: the condition is the server's, transient, and the
// call did nothing, which is what UNAVAILABLE means ("most likely a transient condition, which
// can be corrected by retrying with a backoff"); RESOURCE_EXHAUSTED (HTTP 429) tells a caller
// that it, in particular, has used up something (a quota, its login attempts: LOGIN_LOCKED).
// One code, so every protocol agrees: gRPC UNAVAILABLE, REST and Connect 503, with Retry-After.
import { callEnded, CallEndedError, callSignal } from "../call-scope.js";
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

/** A place in the pool, held for one job from admit() on: run that job in it, or give it back. */
export interface HashTicket {
  /**
   * Runs `job` in the place held, at once when a hasher is free, else after the jobs waiting
   * before it; never refused HASHER_BUSY. Once only. A call that has ended is not hashed for
   * (CallEndedError, the place given back), as in HashPool.run.
   */
  run<T>(job: () => Promise<T>): Promise<T>;
  /** Gives the place back, unless run() took it; again, nothing. */
  release(): void;
}

export class HashPool {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  /** Places held by tickets whose job has not been run yet. */
  private held = 0;
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

  /** Places held now by admitted callers not hashing yet (tickets neither run nor released). */
  get reserved(): number {
    return this.held;
  }

  /** Sets who watches the pool (one observer; a later call replaces it). */
  observe(observer: HashPoolObserver): void {
    this.observer = observer;
  }

  /**
   * Takes a place for a job to come (HASHER_BUSY at once when none is left): the caller may do
   * other work first, then run its job in it, or release it. The place is given back as the
   * current call's signal aborts (its client gone, its deadline passed), as a waiting job leaves
   * the queue (a deadline without a signal is seen at run()), and by release(), which a caller
   * must reach on every path (try/finally, Passwords.admitted): until then it counts as taken.
   */
  admit(): HashTicket {
    if (this.full()) throw this.refusal();
    this.held++;
    let holding = true;
    const signal = callSignal();
    const giveBack = (): boolean => {
      if (!holding) return false;
      holding = false;
      this.held--;
      signal?.removeEventListener("abort", giveBack);
      return true;
    };
    signal?.addEventListener("abort", giveBack, { once: true });
    return {
      run: async (job) => {
        if (callEnded()) {
          giveBack();
          throw new CallEndedError();
        }
        if (!giveBack()) throw new Error("a hash ticket runs one job, and none once released");
        // The place passes to the job without a turn of the event loop: nothing takes it meanwhile.
        return this.place(job);
      },
      release: () => void giveBack(),
    };
  }

  /**
   * Runs `job` when a hasher is free; HASHER_BUSY at once when the queue is full. A job of a call
   * that has ended (its client gone, its deadline passed) is not run (CallEndedError): it leaves
   * the queue as the call ends, and one found ended when its turn comes hands the hasher on, so
   * no hash is made for nobody while a live caller waits behind it or is refused for want of
   * the place it held.
   */
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (callEnded()) throw new CallEndedError();
    if (this.full()) throw this.refusal();
    return this.place(job);
  }

  /** Runs `job`, admitted: on a free hasher, else in the queue (its place counted by the caller). */
  private async place<T>(job: () => Promise<T>): Promise<T> {
    const { waited, around } = this.observer;
    if (callEnded()) throw new CallEndedError();
    // While jobs wait, every hasher is busy: a free one means nothing waits.
    if (this.running < this.limits.concurrency) {
      this.running++;
      waited?.(0);
    } else {
      const start = performance.now();
      // The finishing job hands its place over (see below): `running` stays as it is. A call
      // that ends while it waits leaves the queue at once, its place free for another.
      const signal = callSignal();
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

  /** Every place taken: hashers running, jobs waiting and places held, `concurrency + queueLimit` in all. */
  private full(): boolean {
    return this.running + this.waiting.length + this.held >= this.limits.concurrency + this.limits.queueLimit;
  }
}
