// The one source of "now" for the core, injectable so tests can move time.
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/**
 * How far apart instances' clocks may be (README, "Clocks": the nbf leeway). A stored time
 * further ahead of the clock than this was written before the clock was stepped back (an NTP
 * step, an operator setting the time): how long ago it was can no longer be told.
 */
export const CLOCK_SKEW_MS = 5_000;

/**
 * Whether `sinceMs` (now minus a stored time) lies within a window of `windowMs` from that
 * time: a negative age counts only within CLOCK_SKEW_MS (another instance's clock a little
 * ahead); further back, the clock was stepped back, and a grace window must not stretch to
 * the size of the step.
 */
export function withinWindow(sinceMs: number, windowMs: number): boolean {
  return sinceMs >= -CLOCK_SKEW_MS && sinceMs <= windowMs;
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
