// Claiming proof jobs (ProofQueue.claim), on a real store (PGlite, or PostgreSQL with
// DATABASE_URL): ready jobs oldest first, each claimed by one worker however many claim at once,
// a running job claimable again only once its lease has run out, and nothing else touched.
import { asc, sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { schema } from '../src/db/index.ts';
import { ProofQueue } from '../src/service/proofs.ts';
import { testStore, type TestStore } from './support/db.ts';

let store: TestStore;
let queue: ProofQueue;
const at = (s: number) => new Date(Date.UTC(2026, 11, 6, 12, 0, s));

beforeAll(async () => {
  store = await testStore();
  queue = new ProofQueue(store.database.db);
});
afterAll(async () => store.cleanup());
beforeEach(async () => {
  await store.database.db.execute(sql`delete from proof_jobs`);
});

const jobs = () => store.database.db.select().from(schema.proofJobs).orderBy(asc(schema.proofJobs.attestationId));
const insert = (rows: { id: string; status: string; runAfter: Date }[]) =>
  store.database.db.insert(schema.proofJobs).values(rows.map((r) => ({ attestationId: r.id, status: r.status, runAfter: r.runAfter })));

describe('ProofQueue.claim', () => {
  it('claims the ready jobs, oldest first, up to n; leases them; leaves the others as they were', async () => {
    await insert([
      { id: 'a', status: 'queued', runAfter: at(3) },
      { id: 'b', status: 'queued', runAfter: at(1) },
      { id: 'c', status: 'queued', runAfter: at(2) },
      { id: 'later', status: 'queued', runAfter: at(50) }, // a retry's backoff not yet over
      { id: 'done', status: 'done', runAfter: at(0) },
      { id: 'failed', status: 'failed', runAfter: at(0) },
    ]);
    expect((await queue.claim(2, 'w1', at(10))).sort()).toEqual(['b', 'c']);
    const after = new Map((await jobs()).map((j) => [j.attestationId, j]));
    for (const id of ['b', 'c']) {
      expect(after.get(id)).toMatchObject({ status: 'running', lockedBy: 'w1', attempts: 1 });
      expect(after.get(id)!.lockedAt!.getTime()).toBe(at(10).getTime());
      expect(after.get(id)!.runAfter.getTime()).toBe(at(10).getTime() + 120_000); // the lease
    }
    for (const id of ['a', 'later', 'done', 'failed']) expect(after.get(id)).toMatchObject({ attempts: 0, lockedBy: null });
    expect(await queue.claim(5, 'w2', at(10))).toEqual(['a']);
    expect(await queue.claim(5, 'w2', at(10))).toEqual([]);
  });

  it('a running job is claimed again only when its lease has run out (its worker died)', async () => {
    await insert([{ id: 'j', status: 'queued', runAfter: at(0) }]);
    expect(await queue.claim(1, 'w1', at(10))).toEqual(['j']);
    expect(await queue.claim(1, 'w2', at(20))).toEqual([]); // leased until at(10) + 120 s
    expect(await queue.claim(1, 'w2', new Date(at(10).getTime() + 120_000))).toEqual(['j']);
    expect((await jobs())[0]).toMatchObject({ status: 'running', lockedBy: 'w2', attempts: 2 });
  });

  it('concurrent claims never hand out a job twice', async () => {
    await insert(Array.from({ length: 60 }, (_, i) => ({ id: `j${String(i).padStart(2, '0')}`, status: 'queued', runAfter: at(i % 7) })));
    const claimed = await Promise.all(Array.from({ length: 12 }, (_, w) => queue.claim(7, `w${w}`, at(30))));
    // a claim may come back short when rows it read were claimed meanwhile (they are re-checked
    // and dropped, and LIMIT is not refilled): what is left is claimed afterwards, once
    const rest = await queue.claim(60, 'w12', at(30));
    claimed.push(rest);
    const all = claimed.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(60);
    expect(await queue.claim(60, 'w13', at(30))).toEqual([]);
    const byJob = new Map((await jobs()).map((j) => [j.attestationId, j.lockedBy]));
    claimed.forEach((ids, w) => ids.forEach((id) => expect(byJob.get(id)).toBe(`w${w}`)));
  });
});
