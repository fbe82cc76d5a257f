// SingleFlight: concurrent reads of one key share one promise (the attest path's caches).
import { describe, expect, it } from 'vitest';
import { SingleFlight } from '../src/service/single-flight.ts';

describe('SingleFlight', () => {
  it('runs one read for concurrent callers of a key, a new one once it settled, one per key', async () => {
    const f = new SingleFlight<string, number>();
    let reads = 0;
    const read = async () => {
      reads++;
      await new Promise((r) => setTimeout(r, 5));
      return reads;
    };
    const first = await Promise.all(Array.from({ length: 1000 }, () => f.run('t', read)));
    expect(reads).toBe(1);
    expect(new Set(first)).toEqual(new Set([1]));
    expect(await f.run('t', read)).toBe(2);
    await Promise.all([f.run('a', read), f.run('b', read), f.run('a', read)]);
    expect(reads).toBe(4);
  });

  it('hands a failed read to every waiting caller and then reads again', async () => {
    const f = new SingleFlight<string, number>();
    let reads = 0;
    const failing = async () => {
      reads++;
      await Promise.resolve();
      throw new Error('store down');
    };
    const settled = await Promise.allSettled([f.run('t', failing), f.run('t', failing)]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect(reads).toBe(1);
    expect(await f.run('t', async () => 7)).toBe(7);
  });

  it('forget(): a caller after a write starts a fresh read; the read before it does not clear the new one', async () => {
    const f = new SingleFlight<string, string>();
    let release!: () => void;
    const old = f.run('t', () => new Promise<string>((r) => (release = () => r('before the write'))));
    f.forget('t');
    let fresh = 0;
    const slow = () => new Promise<string>((r) => setTimeout(() => r(`after the write ${++fresh}`), 10));
    const next = f.run('t', slow);
    release();
    expect(await old).toBe('before the write');
    // the settled old read left the new one in place: a third caller joins it
    const joined = f.run('t', slow);
    expect(await next).toBe('after the write 1');
    expect(await joined).toBe('after the write 1');
    expect(fresh).toBe(1);
  });
});
