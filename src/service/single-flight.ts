// Concurrent reads of one key share one promise. The attest path normalizes a batch's events
// concurrently; when a cached policy, subscription list or tenant check has expired, each of a
// thousand events would otherwise send its own identical query (a stampede: a thousand drizzle
// builds and round trips once a second under batch load).

export class SingleFlight<K, V> {
  private readonly inflight = new Map<K, Promise<V>>();

  /** `read()`'s promise for `key`, shared with every caller until it settles. */
  run(key: K, read: () => Promise<V>): Promise<V> {
    let p = this.inflight.get(key);
    if (!p) {
      p = read().finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }
}
