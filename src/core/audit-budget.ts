// The audit budget: how many events of refused calls without a verified credential the trail
// stores one by one. Anyone can send such calls (a wrong password, a wrong admin token), and each
// used to store a row, kept for TESSERA_AUDIT_RETENTION_DAYS: a flood filled the disk at its own
// rate. Within a minute, each client address may store `perAddress` of them and all addresses
// together `total`; beyond, an event is counted instead (by type, outcome and reason), and when
// the minute ends the counts are stored as one `audit.suppressed` event per address that went
// over its budget, and one without an address for what went over the total. No count is lost;
// successes, the events of a verified caller and those that name a user never reach this
// (core/audit.ts decides).
//
// Per worker process: under TESSERA_WORKERS each keeps its own minute and counts. Memory is
// bounded: an address is tracked only once one of its events was stored (at most `total` in a
// minute, and never more than `maxAddresses`), and every count is cleared when the minute ends.
import type { AuditEventRecord, SuppressedEvents } from "../store/ports/audit-events.js";
import type { Clock } from "./clock.js";

export interface AuditBudgetOptions {
  /** Events stored per client address per window; 0: no limit. */
  perAddress: number;
  /** Events stored over every address per window; 0: no limit. */
  total: number;
  /** The window, in ms (a minute; shorter in tests). */
  windowMs: number;
  /** Most addresses tracked in a window (further ones count against the total's summary). */
  maxAddresses?: number;
}

/** One summary to store: an address's (or, without one, every address's) counts. */
export interface SuppressedSummary {
  clientAddress?: string;
  suppressed: SuppressedEvents;
}

const defaultMaxAddresses = 10_000;

/** Counts by type, outcome and reason. */
class Tally {
  private readonly counts = new Map<string, { type: string; outcome: string; reason: string; count: number }>();
  total = 0;

  add(event: AuditEventRecord): void {
    const reason = event.reason ?? "";
    const key = `${event.type}\n${event.outcome}\n${reason}`;
    const entry = this.counts.get(key);
    if (entry) entry.count++;
    else this.counts.set(key, { type: event.type, outcome: event.outcome, reason, count: 1 });
    this.total++;
  }

  summary(since: Date): SuppressedEvents {
    const events = [...this.counts.values()].sort((a, b) => b.count - a.count || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
    return { since, count: this.total, events };
  }
}

interface AddressState {
  stored: number;
  over?: Tally;
}

export class AuditBudget {
  private readonly maxAddresses: number;
  /** When the open window started (ms); undefined: none open. */
  private windowStart: number | undefined;
  private stored = 0;
  private readonly addresses = new Map<string, AddressState>();
  private overTotal: Tally | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  /** `emit` receives the summaries of each window that ends with something counted. */
  constructor(
    private readonly options: AuditBudgetOptions,
    private readonly clock: Clock,
    private readonly emit: (summaries: SuppressedSummary[]) => void,
  ) {
    this.maxAddresses = options.maxAddresses ?? defaultMaxAddresses;
  }

  /** False when neither limit is set: every event is stored. */
  get limited(): boolean {
    return this.options.perAddress > 0 || this.options.total > 0;
  }

  /**
   * Whether `event` (a refusal of an unverified caller) may be stored; when not, it has been
   * counted for its window's summary.
   */
  admit(event: AuditEventRecord): boolean {
    if (!this.limited || this.stopped) return true;
    const now = this.clock.now().getTime();
    if (this.windowStart !== undefined && this.ended(this.windowStart, now)) this.close();
    this.windowStart ??= now;
    const address = event.clientAddress ?? "";
    const { perAddress, total } = this.options;
    let state = this.addresses.get(address);
    if (state !== undefined && perAddress > 0 && state.stored >= perAddress) return this.count((state.over ??= new Tally()), event);
    if ((total > 0 && this.stored >= total) || (state === undefined && this.addresses.size >= this.maxAddresses)) {
      return this.count((this.overTotal ??= new Tally()), event);
    }
    if (state === undefined) this.addresses.set(address, (state = { stored: 0 }));
    state.stored++;
    this.stored++;
    return true;
  }

  /** Ends the open window now, emitting its summaries, and stores every later event (shutdown). */
  stop(): void {
    this.stopped = true;
    this.close();
  }

  private count(tally: Tally, event: AuditEventRecord): false {
    tally.add(event);
    // The first event counted in a window sets the timer that ends it, so its summary is stored
    // when the window ends even if no further event comes. Not armed otherwise: a process within
    // its budget keeps no timer.
    if (this.timer === undefined) this.arm(this.options.windowMs);
    return false;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.windowStart === undefined) return;
      const now = this.clock.now().getTime();
      if (this.ended(this.windowStart, now)) this.close();
      else this.arm(this.windowStart + this.options.windowMs - now);
    }, ms);
    this.timer.unref();
  }

  /**
   * Whether the window that started at `start` has ended at `now`: a window's time has passed,
   * or the clock was stepped back since it started (an NTP step, an operator setting the time),
   * which leaves its age unknown: kept, it would hold the budget for as long as the step, and
   * its timer would wait that long (one further away than a timer holds, 24.8 days, fires at
   * once: again and again until the clock caught up).
   */
  private ended(start: number, now: number): boolean {
    return now >= start + this.options.windowMs || now < start;
  }

  /** Ends the open window: its summaries are emitted, its counts cleared. */
  private close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const start = this.windowStart;
    this.windowStart = undefined;
    if (start === undefined) return;
    const since = new Date(start);
    const summaries: SuppressedSummary[] = [];
    for (const [address, state] of this.addresses) {
      if (state.over) summaries.push({ ...(address !== "" && { clientAddress: address }), suppressed: state.over.summary(since) });
    }
    if (this.overTotal) summaries.push({ suppressed: this.overTotal.summary(since) });
    this.addresses.clear();
    this.overTotal = undefined;
    this.stored = 0;
    if (summaries.length > 0) this.emit(summaries);
  }
}
