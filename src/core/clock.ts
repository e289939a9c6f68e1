// The one source of "now" for the core, injectable so tests can move time.
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/**
 * How far a stored time may be ahead of the clock reading it before the clock is taken to have
 * been stepped back since it was written (an NTP step, an operator setting the time): how long
 * ago it was can no longer be told. A minute, far beyond the skew between instances' clocks
 * (README, "Clocks": within 5 s), so that skew is never read as a step (a retry answered by an
 * instance whose clock is a few seconds behind the one that stored the spend is a retry).
 */
export const CLOCK_STEP_MS = 60_000;

/**
 * Whether `sinceMs` (now minus a stored time) lies within a window of `windowMs` from that
 * time: a negative age counts only within CLOCK_STEP_MS (another instance's clock ahead of
 * this one); further back, the clock was stepped back, and a grace window must not stretch to
 * the size of the step.
 */
export function withinWindow(sinceMs: number, windowMs: number): boolean {
  return sinceMs >= -CLOCK_STEP_MS && sinceMs <= windowMs;
}

/** A clock for tests: starts at `start` and moves only when told. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start: Date | number = Date.now()) {
    this.t = typeof start === "number" ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(at: Date | number): void {
    this.t = typeof at === "number" ? at : at.getTime();
  }
}
