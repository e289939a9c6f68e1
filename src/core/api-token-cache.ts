// A small, bounded, per-instance cache of token lookups (SHA-256 hash -> record) for the
// Authenticate hot path. Entries live at most `ttlMs`, which bounds how long another instance's
// revocation can go unseen here; the instance that revokes evicts at once. Bounded size with
// least-recently-used eviction (a Map keeps insertion order; a hit re-inserts its key), so a
// flood of distinct tokens cannot grow memory.
export class ApiTokenCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  /** The most recently used key (already at the map's end). */
  private lastKey: string | undefined;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  get enabled(): boolean {
    return this.ttlMs > 0 && this.maxEntries > 0;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string, nowMs: number): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= nowMs) {
      this.entries.delete(key);
      return undefined;
    }
    // Move to the most-recent end, but only when it is not already there: a single hot token
    // (the common case) then costs one Map lookup per hit.
    if (this.lastKey !== key) {
      this.entries.delete(key);
      this.entries.set(key, entry);
      this.lastKey = key;
    }
    return entry.value;
  }

  set(key: string, value: V, nowMs: number): void {
    if (!this.enabled) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: nowMs + this.ttlMs });
    this.lastKey = key;
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
    if (this.lastKey === key) this.lastKey = undefined;
  }

  clear(): void {
    this.entries.clear();
    this.lastKey = undefined;
  }
}
