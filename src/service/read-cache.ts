// A per-process read-through cache for the small per-tenant facts the attest path looks up on
// every event (the PoP policy, the subscriptions, the default tariffs, whether a tenant exists).
// Three rules every such cache needs, kept in one place:
// - concurrent misses of one key share one read: a batch's thousand events are normalized
//   concurrently, and an expired entry would otherwise send a thousand identical queries (a
//   stampede once per expiry under batch load);
// - an entry's age counts from before its query started (its answer is at least that fresh);
// - a write of this process (invalidate) applies at once: later callers start a fresh read, and
//   a read that started before the write is not cached.

export interface ReadCacheOptions<V> {
  /** How long an entry is used without reading again (ms). */
  readonly ttlMs: number;
  readonly now?: () => number;
  /** Which values are kept (default: all); others are read again every time. */
  readonly keep?: (value: V) => boolean;
  /** Entries kept at most (then the cache starts over). */
  readonly maxEntries?: number;
}

export class ReadCache<K, V> {
  private readonly entries = new Map<K, { readonly at: number; readonly value: V }>();
  private readonly inflight = new Map<K, Promise<V>>();
  /** Writes by this process: a read started before one is not cached. */
  private writes = 0;
  private readonly now: () => number;

  constructor(private readonly opts: ReadCacheOptions<V>) {
    this.now = opts.now ?? Date.now;
  }

  /** The cached value of `key` if younger than ttlMs; otherwise `read()`, shared with every
   *  concurrent caller of the key. */
  async get(key: K, read: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && this.now() - hit.at < this.opts.ttlMs) return hit.value;
    let p = this.inflight.get(key);
    if (!p) {
      const q: Promise<V> = this.load(key, read).finally(() => {
        if (this.inflight.get(key) === q) this.inflight.delete(key);
      });
      this.inflight.set(key, (p = q));
    }
    return p;
  }

  /** `read()` now, joining no read in flight (a caller that must see every committed write);
   *  its answer is cached like any other. */
  fresh(key: K, read: () => Promise<V>): Promise<V> {
    return this.load(key, read);
  }

  /** A value this process knows (it just wrote it): as invalidate, then cached. */
  set(key: K, value: V): void {
    this.invalidate(key);
    this.store(key, this.now(), value);
  }

  /** After a write of this process: no cached or in-flight read of before it is used again. */
  invalidate(key: K): void {
    this.writes++;
    this.entries.delete(key);
    this.inflight.delete(key);
  }

  private async load(key: K, read: () => Promise<V>): Promise<V> {
    const at = this.now();
    const writes = this.writes;
    const value = await read();
    if (writes === this.writes) this.store(key, at, value);
    return value;
  }

  private store(key: K, at: number, value: V): void {
    if (this.opts.keep && !this.opts.keep(value)) return;
    if (this.entries.size >= (this.opts.maxEntries ?? 10_000)) this.entries.clear();
    this.entries.set(key, { at, value });
  }
}
