// ReadCache: the attest path's per-tenant caches (src/service/read-cache.ts).
import { describe, expect, it } from 'vitest';
import { ReadCache } from '../src/service/read-cache.ts';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('ReadCache', () => {
  it('concurrent misses of a key share one read; a fresh entry is used until ttl; one read per key', async () => {
    let t = 0;
    const c = new ReadCache<string, number>({ ttlMs: 1000, now: () => t });
    let reads = 0;
    const read = async () => {
      reads++;
      await tick();
      return reads;
    };
    const first = await Promise.all(Array.from({ length: 1000 }, () => c.get('t', read)));
    expect(reads).toBe(1);
    expect(new Set(first)).toEqual(new Set([1]));
    t = 999;
    expect(await c.get('t', read)).toBe(1); // still fresh
    t = 1000;
    expect(await c.get('t', read)).toBe(2); // expired: read again
    await Promise.all([c.get('a', read), c.get('b', read), c.get('a', read)]);
    expect(reads).toBe(4);
  });

  it('an entry is as old as the start of its read', async () => {
    let t = 0;
    const c = new ReadCache<string, string>({ ttlMs: 100, now: () => t });
    await c.get('k', async () => {
      t = 90; // the query took 90 ms
      return 'v1';
    });
    t = 100;
    expect(await c.get('k', async () => 'v2')).toBe('v2');
  });

  it('hands a failed read to every waiting caller, caches nothing, and reads again', async () => {
    const c = new ReadCache<string, number>({ ttlMs: 60_000 });
    let reads = 0;
    const failing = async () => {
      reads++;
      await Promise.resolve();
      throw new Error('store down');
    };
    const settled = await Promise.allSettled([c.get('t', failing), c.get('t', failing)]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect(reads).toBe(1);
    expect(await c.get('t', async () => 7)).toBe(7);
  });

  it('invalidate(): later callers read afresh, and a read from before the write is not cached', async () => {
    const c = new ReadCache<string, string>({ ttlMs: 60_000 });
    let release!: () => void;
    const old = c.get('t', () => new Promise<string>((r) => (release = () => r('before the write'))));
    c.invalidate('t');
    let fresh = 0;
    const slow = async () => {
      await tick(10);
      return `after the write ${++fresh}`;
    };
    const next = c.get('t', slow);
    release();
    expect(await old).toBe('before the write');
    const joined = c.get('t', slow); // joins the read after the write, in flight
    expect(await next).toBe('after the write 1');
    expect(await joined).toBe('after the write 1');
    expect(await c.get('t', slow)).toBe('after the write 1'); // cached: the old read was not
    expect(fresh).toBe(1);
  });

  it('fresh() joins no read in flight; set() is known at once; keep() leaves other values uncached', async () => {
    const c = new ReadCache<string, boolean>({ ttlMs: 60_000, keep: (v) => v });
    let release!: () => void;
    const stale = c.get('t', () => new Promise<boolean>((r) => (release = () => r(false))));
    expect(await c.fresh('t', async () => true)).toBe(true);
    release();
    expect(await stale).toBe(false);
    let reads = 0;
    const missing = async () => {
      reads++;
      return false;
    };
    const d = new ReadCache<string, boolean>({ ttlMs: 60_000, keep: (v) => v });
    expect(await d.get('x', missing)).toBe(false);
    expect(await d.get('x', missing)).toBe(false);
    expect(reads).toBe(2); // false is not kept
    d.set('x', true);
    expect(await d.get('x', missing)).toBe(true);
    expect(reads).toBe(2);
  });
});
