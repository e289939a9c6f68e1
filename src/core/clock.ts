// The one source of "now" for the core, injectable so tests can move time.
import { CLOCK_STEP_MS } from "../store/ports.js";

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

// The clock-step threshold lives with the store's login counters, the lowest layer that uses it.
export { CLOCK_STEP_MS };

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
