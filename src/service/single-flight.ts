// Concurrent reads of one key share one promise. The attest path normalizes a batch's events
// concurrently; when a cached policy, subscription list or tenant check has expired, each of a
// thousand events would otherwise send its own identical query (a stampede: a thousand drizzle
// builds and round trips once a second under batch load). A read shared this way may have
// started before a write of this process: the owner calls forget() after writing, and caches
// what a read returns only if no write happened since it started (see plans.ts).

export class SingleFlight<K, V> {
  private readonly inflight = new Map<K, Promise<V>>();

  /** `read()`'s promise for `key`, shared with every caller until it settles. */
  run(key: K, read: () => Promise<V>): Promise<V> {
    let p = this.inflight.get(key);
    if (!p) {
      const q: Promise<V> = read().finally(() => {
        if (this.inflight.get(key) === q) this.inflight.delete(key);
      });
      this.inflight.set(key, (p = q));
    }
    return p;
  }

  /** After a write: callers from now on start a fresh read instead of joining one in flight. */
  forget(key: K): void {
    this.inflight.delete(key);
  }
}
