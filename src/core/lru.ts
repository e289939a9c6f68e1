// A small bounded cache with least-recently-used eviction and optional expiry, for the core's
// per-instance caches (API token lookups, verified JWTs, last-use bookkeeping). A Map keeps
// insertion order: a hit re-inserts its key at the most-recent end, so the first key is always
// the least recently used. Bounded size means a flood of distinct keys cannot grow memory.
//
// Time is whatever the caller passes (the core's injected clock, in ms): the cache reads no
// clock of its own. That clock is the wall clock, which an NTP step or an operator can move back:
// an entry set at a time later than the one asked at is dropped as expired (how long it has been
// kept can no longer be told), so a step back never keeps an entry for longer than its TTL.
export interface LruOptions {
  /** Most entries kept; 0 or less: nothing is kept. */
  maxEntries: number;
  /** How long an entry lives after it is set, in ms; undefined: until evicted; 0 or less: nothing is kept. */
  ttlMs?: number;
}

interface Entry<V> {
  value: V;
  /** ms since the epoch after which the entry is gone; Infinity: never. */
  expiresAt: number;
  /** When it was set (ms since the epoch): asked before that, the clock has been stepped back. */
  setAt: number;
}

export class Lru<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private readonly maxEntries: number;
  private readonly ttlMs: number | undefined;
  /** The most recently used key (already at the map's end). */
  private lastKey: K | undefined;
  private hasLastKey = false;
  /** Lookups that found a live entry, and those that did not (for metrics; never reset). */
  hits = 0;
  misses = 0;

  constructor(options: LruOptions) {
    this.maxEntries = options.maxEntries;
    this.ttlMs = options.ttlMs;
  }

  /** False when the options keep nothing (set() is then a no-op). */
  get enabled(): boolean {
    return this.maxEntries > 0 && (this.ttlMs === undefined || this.ttlMs > 0);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value, unless absent or expired at `nowMs`, or set after it (an expired entry is dropped). */
  get(key: K, nowMs: number): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    if (entry.expiresAt <= nowMs || nowMs < entry.setAt) {
      this.misses++;
      this.delete(key);
      return undefined;
    }
    this.hits++;
    // Move to the most-recent end, but only when it is not already there: a single hot key
    // (the common case) then costs one Map lookup per hit.
    if (!this.hasLastKey || this.lastKey !== key) {
      this.entries.delete(key);
      this.entries.set(key, entry);
      this.lastKey = key;
      this.hasLastKey = true;
    }
    return entry.value;
  }

  /**
   * Stores `value` as the most recently used entry, evicting the least recently used beyond
   * maxEntries. It expires after ttlMs, or at `expiresAtMs` if that comes first.
   */
  set(key: K, value: V, nowMs: number, expiresAtMs = Infinity): void {
    if (!this.enabled) return;
    const expiresAt = Math.min(expiresAtMs, this.ttlMs === undefined ? Infinity : nowMs + this.ttlMs);
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt, setAt: nowMs });
    this.lastKey = key;
    this.hasLastKey = true;
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as K;
      this.entries.delete(oldest);
    }
  }

  delete(key: K): void {
    this.entries.delete(key);
    if (this.hasLastKey && this.lastKey === key) {
      this.lastKey = undefined;
      this.hasLastKey = false;
    }
  }

  /** Drops every entry whose value `test` holds for (a walk of all entries: for rare calls). */
  deleteWhere(test: (value: V) => boolean): void {
    for (const [key, entry] of this.entries) if (test(entry.value)) this.delete(key);
  }

  clear(): void {
    this.entries.clear();
    this.lastKey = undefined;
    this.hasLastKey = false;
  }
}
