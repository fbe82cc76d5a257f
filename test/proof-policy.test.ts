// Proof policies (eager | on_demand | sampled), proving on demand, and the bounded proof queue
// (deferred jobs, the sweeper), over the real app, store and prover.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initialProofStatus, isSampled } from '../src/core/proof-policy.ts';
import { rowsOf } from '../src/db/index.ts';
import { startProofWorker } from '../src/service/proofs.ts';
import { ProofPolicyService, loadOrCreateSamplingSecret } from '../src/service/proof-policy.ts';
import { createProveFn } from '../src/service/prove.ts';
import { verify } from '../src/verifier/index.ts';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { testService, type TestService } from './support/service.ts';

const SECRET = 'proof-policy-test-sampling-secret-0123456789';
const OTHER_SECRET = 'another-sampling-secret-for-this-test-9876543210';

let s: TestService;
let key: string;
let otherKey: string;
let prover: Awaited<ReturnType<typeof createProveFn>>;
let worker: ReturnType<typeof startProofWorker> | null = null;

const ev = (tenant: string, id: string, over: Record<string, unknown> = {}) => ({ meter_event: { ...pilotEvent, tenant_id: tenant, event_id: id, ...over }, tariff: { tariff_id: pilotTariff.tariff_id, tariff_version: pilotTariff.tariff_version } });
const jobsOf = async (t: TestService, id: string) =>
  rowsOf<{ status: string; run_after: string }>(await t.store.database.db.execute(sql`select status, run_after::text from proof_jobs where attestation_id = ${id}`));
const setPolicy = (t: TestService, tenant: string, body: unknown) => t.call('PUT', `/v1/admin/tenants/${tenant}/proof-policy`, { body });

async function setUp(t: TestService, tenants: string[]) {
  for (const id of tenants) expect((await t.call('POST', '/v1/admin/tenants', { body: { id } })).status).toBe(201);
  expect((await t.call('POST', '/v1/admin/tariffs', { body: pilotTariff })).status).toBe(201);
}

beforeAll(async () => {
  s = await testService({ samplingSecret: SECRET, policyCacheMs: 300 });
  await setUp(s, ['tenant_eager', 'tenant_od', 'tenant_sampled', 'tenant_other']);
  key = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest', 'read'], tenants: ['tenant_eager', 'tenant_od', 'tenant_sampled'] } })).body.secret;
  otherKey = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest', 'read'], tenants: ['tenant_other'] } })).body.secret;
  prover = await createProveFn(s.container.keys, { workers: 1 });
  worker = startProofWorker(s.store.database.db, s.container.proofs, prover.prove, { pollMs: 20 });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await prover?.close();
  await s?.close();
});

describe('the proof policy of a tenant (admin API)', () => {
  it('is eager by default and shown in the admin reads', async () => {
    const one = await s.call('GET', '/v1/admin/tenants/tenant_eager');
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: 'tenant_eager', proof_policy: { policy: 'eager', updated_at: null } });
    const list = (await s.call('GET', '/v1/admin/tenants')).body.items;
    expect(list.find((t: { id: string }) => t.id === 'tenant_od').proof_policy.policy).toBe('eager');
  });

  it('is set with PUT …/proof-policy (admin only), and read back', async () => {
    const r = await setPolicy(s, 'tenant_od', { policy: 'on_demand' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: 'tenant_od', proof_policy: { policy: 'on_demand', updated_at: expect.any(String) } });
    expect(r.body.proof_policy).not.toHaveProperty('rate');
    expect((await s.call('GET', '/v1/admin/tenants/tenant_od')).body.proof_policy.policy).toBe('on_demand');
    const sampled = await setPolicy(s, 'tenant_sampled', { policy: 'sampled', rate: 0.5 });
    expect(sampled.body.proof_policy).toMatchObject({ policy: 'sampled', rate: 0.5 });
    // an attest/read key may not change it
    expect((await s.call('PUT', '/v1/admin/tenants/tenant_od/proof-policy', { token: key, body: { policy: 'eager' } })).status).toBe(403);
    expect((await s.call('PUT', '/v1/admin/tenants/tenant_od/proof-policy', { token: null, body: { policy: 'eager' } })).status).toBe(401);
  });

  it.each([
    [{ policy: 'sampled', rate: 0 }, 'rate'],
    [{ policy: 'sampled', rate: -0.1 }, 'rate'],
    [{ policy: 'sampled', rate: 1.01 }, 'rate'],
    [{ policy: 'sampled', rate: '0.5' }, 'rate'],
    [{ policy: 'sampled' }, 'rate'],
    [{ policy: 'eager', rate: 0.5 }, '(root)'],
    [{ policy: 'lazy' }, 'policy'],
    [{}, 'policy'],
    [[], '(root)'],
  ])('refuses %j with 400 INVALID_PROOF_POLICY (problem+json)', async (body, where) => {
    const r = await setPolicy(s, 'tenant_od', body);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(r.body.code).toBe('INVALID_PROOF_POLICY');
    expect(r.body.errors.map((e: { path: string }) => e.path)).toContain(where);
    expect((await s.call('GET', '/v1/admin/tenants/tenant_od')).body.proof_policy.policy).toBe('on_demand'); // unchanged
  });

  it('answers 404 for an unknown tenant, 400 for a body that is not JSON', async () => {
    const r = await setPolicy(s, 'tenant_nobody', { policy: 'eager' });
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('NOT_FOUND');
    expect((await s.call('GET', '/v1/admin/tenants/tenant_nobody')).status).toBe(404);
    expect((await s.call('PUT', '/v1/admin/tenants/tenant_od/proof-policy', { raw: '{"policy":', headers: { 'content-type': 'application/json' } })).body.code).toBe('INVALID_JSON');
  });

  it('a change applies at once in this process and within the cache bound in another', async () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    // another process of the same store: its own cache (here 300 ms; POLICY_CACHE_MS in production)
    const other = new ProofPolicyService(s.store.database.db, s.container.proofs, { secret: Buffer.from(SECRET), policyCacheMs: 300 });
    expect((await other.decider('tenant_eager'))(digest)).toBe('pending');
    expect((await setPolicy(s, 'tenant_eager', { policy: 'on_demand' })).status).toBe(200);
    expect((await s.container.policies.decider('tenant_eager'))(digest)).toBe('on_demand');
    expect((await other.decider('tenant_eager'))(digest)).toBe('pending'); // still cached there
    await new Promise((r) => setTimeout(r, 350));
    expect((await other.decider('tenant_eager'))(digest)).toBe('on_demand');
    expect((await setPolicy(s, 'tenant_eager', { policy: 'eager' })).status).toBe(200);
    expect((await s.container.policies.decider('tenant_eager'))(digest)).toBe('pending');
  });
});

describe('eager (the default)', () => {
  it('queues a proof job at attest, as before', async () => {
    const r = await s.call('POST', '/v1/attest', { token: key, body: ev('tenant_eager', 'e-1') });
    expect(r.status).toBe(201);
    expect(r.headers.get('x-proof-status')).toBe('pending');
    expect(r.body.attestation.proof_status).toBe('pending');
    const jobs = await jobsOf(s, r.headers.get('x-attestation-id')!);
    expect(jobs).toHaveLength(1);
    expect(['queued', 'running', 'done']).toContain(jobs[0]!.status);
  });
});

describe('on_demand', () => {
  let id: string;
  let unproved: any;

  it('creates no proof job at attest; the status is on_demand in the header and the reads, the bundle is unchanged', async () => {
    const r = await s.call('POST', '/v1/attest', { token: key, body: ev('tenant_od', 'od-1') });
    expect(r.status).toBe(201);
    id = r.headers.get('x-attestation-id')!;
    unproved = r.body;
    expect(r.headers.get('x-proof-status')).toBe('on_demand');
    // the bundle's own proof_status stays a protocol value: no proof in it
    expect(r.body.attestation.proof_status).toBe('pending');
    expect(r.body.attestation.billing_proof).toBeUndefined();
    expect(await jobsOf(s, id)).toEqual([]);
    const got = await s.call('GET', `/v1/attestations/${id}`, { token: key });
    expect(got.headers.get('x-proof-status')).toBe('on_demand');
    expect(got.body.attestation).toEqual(unproved.attestation);
    const list = await s.call('GET', '/v1/attestations?tenant_id=tenant_od', { token: key });
    expect(list.body.items.find((i: { id: string }) => i.id === id).proof_status).toBe('on_demand');
    const minimal = await s.call('POST', '/v1/attest', { token: key, body: ev('tenant_od', 'od-min'), headers: { prefer: 'return=minimal' } });
    expect(minimal.body.proof_status).toBe('on_demand');
    // nothing is proved meanwhile (the worker runs, but has no job for it)
    await new Promise((r) => setTimeout(r, 300));
    expect((await s.call('GET', `/v1/attestations/${id}`, { token: key })).headers.get('x-proof-status')).toBe('on_demand');
  });

  it('GET ?proof=sync proves it; the signed statement is unchanged and the bundle passes full verification', async () => {
    const r = await s.call('GET', `/v1/attestations/${id}?proof=sync`, { token: key });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-proof-status')).toBe('proved');
    expect(r.body.attestation.proof_status).toBe('proved');
    expect(r.body.attestation.statement).toEqual(unproved.attestation.statement);
    expect(r.body.attestation.signature).toBe(unproved.attestation.signature);
    expect(r.body.receipt).toBeDefined();
    const api = await s.call('POST', '/v1/verify', { token: null, body: r.body }); // strict
    expect(api.body.valid).toBe(true);
    expect(api.body.checks.find((c: { name: string }) => c.name === 'proof')).toMatchObject({ status: 'pass' });
    const offline = await verify(r.body, (await s.call('GET', '/v1/trust', { token: null })).body, { profile: 'strict' });
    expect(offline.valid).toBe(true);
    expect(await jobsOf(s, id)).toMatchObject([{ status: 'done' }]);
  }, 120_000);

  it('POST ?proof=sync on attest proves at once', async () => {
    const r = await s.call('POST', '/v1/attest?proof=sync', { token: key, body: ev('tenant_od', 'od-sync') });
    expect(r.status).toBe(201);
    expect(r.headers.get('x-proof-status')).toBe('proved');
    expect(r.body.attestation.billing_proof).toBeDefined();
  }, 120_000);

  it('POST /v1/attestations/{id}/prove: 202 and a job ahead of the queue, then 200 once proved', async () => {
    const a = await s.call('POST', '/v1/attest', { token: key, body: ev('tenant_od', 'od-2') });
    const id2 = a.headers.get('x-attestation-id')!;
    const r = await s.call('POST', `/v1/attestations/${id2}/prove`, { token: key });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ id: id2, proof_status: 'pending' });
    expect(r.headers.get('x-proof-status')).toBe('pending');
    expect(r.headers.get('location')).toBe(`/v1/attestations/${id2}`);
    const [job] = await jobsOf(s, id2);
    expect(job).toBeDefined();
    if (job!.status === 'queued') expect(job!.run_after.startsWith('1970-01-01')).toBe(true); // claimed before the eager backlog
    const done = await s.call('GET', `/v1/attestations/${id2}?proof=sync`, { token: key });
    expect(done.headers.get('x-proof-status')).toBe('proved');
    const again = await s.call('POST', `/v1/attestations/${id2}/prove`, { token: key });
    expect(again.status).toBe(200);
    expect(again.body.proof_status).toBe('proved');
    expect(await jobsOf(s, id2)).toHaveLength(1);
  }, 120_000);

  it('is per tenant: other tenants keep their policy, and cannot see or prove its attestations', async () => {
    const other = await s.call('POST', '/v1/attest', { token: otherKey, body: ev('tenant_other', 'o-1') });
    expect(other.headers.get('x-proof-status')).toBe('pending');
    const a = await s.call('POST', '/v1/attest', { token: key, body: ev('tenant_od', 'od-3') });
    const id3 = a.headers.get('x-attestation-id')!;
    expect(a.headers.get('x-proof-status')).toBe('on_demand');
    const refused = await s.call('POST', `/v1/attestations/${id3}/prove`, { token: otherKey });
    expect(refused.status).toBe(404);
    expect(refused.body.code).toBe('NOT_FOUND');
    expect((await s.call('GET', `/v1/attestations/${id3}?proof=sync`, { token: otherKey })).status).toBe(404);
    expect(await jobsOf(s, id3)).toEqual([]); // nothing was queued by the refused requests
    expect((await s.call('POST', `/v1/attestations/${'0'.repeat(64)}/prove`, { token: key })).status).toBe(404);
    expect((await s.call('POST', `/v1/attestations/${id3}/prove`, { token: null })).status).toBe(401);
  });

  it('ensureProofs (for evidence export and settlement) queues jobs for several attestations in one call', async () => {
    const ids: string[] = [];
    for (const n of [4, 5]) ids.push((await s.call('POST', '/v1/attest', { token: key, body: ev('tenant_od', `od-${n}`) })).headers.get('x-attestation-id')!);
    const got = await s.container.proofs.ensureProofs([...ids, ids[0]!, '0'.repeat(64)]);
    expect(Object.fromEntries(got)).toEqual({ [ids[0]!]: 'pending', [ids[1]!]: 'pending' });
    for (const id of ids) expect(await jobsOf(s, id)).toHaveLength(1);
    for (const id of ids) expect((await s.call('GET', `/v1/attestations/${id}?proof=sync`, { token: key })).headers.get('x-proof-status')).toBe('proved');
  }, 120_000);
});

describe('sampled', () => {
  const digests = Array.from({ length: 4000 }, (_, i) => `sha256:${createHash('sha256').update(`d${i}`).digest('hex')}`);
  const secret = Buffer.from(SECRET);

  it('rate 0 selects nothing and rate 1 everything; a mid rate is a deterministic function of the digest and the secret', () => {
    expect(digests.some((d) => isSampled(secret, d, 0))).toBe(false);
    expect(digests.every((d) => isSampled(secret, d, 1))).toBe(true);
    const pick = (sec: Buffer, rate: number) => digests.map((d) => isSampled(sec, d, rate));
    const a = pick(secret, 0.25);
    expect(pick(secret, 0.25)).toEqual(a); // deterministic
    const share = a.filter(Boolean).length / a.length;
    expect(share).toBeGreaterThan(0.22);
    expect(share).toBeLessThan(0.28);
    const b = pick(Buffer.from(OTHER_SECRET), 0.25);
    const differ = a.filter((x, i) => x !== b[i]).length;
    expect(differ).toBeGreaterThan(digests.length * 0.3); // independent selections differ on ~37.5%
    // monotone in the rate: what a lower rate selects, a higher one selects too
    const half = pick(secret, 0.5);
    expect(a.every((x, i) => !x || half[i])).toBe(true);
    // unsampled events are on_demand; sampled ones deferred when the queue is full
    const d = digests.find((x) => isSampled(secret, x, 0.25))!;
    const u = digests.find((x) => !isSampled(secret, x, 0.25))!;
    expect(initialProofStatus({ policy: 'sampled', rate: 0.25 }, d, secret, false)).toBe('pending');
    expect(initialProofStatus({ policy: 'sampled', rate: 0.25 }, d, secret, true)).toBe('deferred');
    expect(initialProofStatus({ policy: 'sampled', rate: 0.25 }, u, secret, false)).toBe('on_demand');
    expect(initialProofStatus({ policy: 'on_demand' }, d, secret, true)).toBe('on_demand');
  });

  it('the service stores what the secret selects: pending with a job, on_demand without', async () => {
    await worker?.stop(); // from here on jobs stay queued
    worker = null;
    const events = Array.from({ length: 24 }, (_, i) => ev('tenant_sampled', `s-${i}`));
    const r = await s.call('POST', '/v1/attest/batch', { token: key, body: { events }, headers: { prefer: 'return=minimal' } });
    expect(r.status).toBe(200);
    const results = r.body.results as { id: string; statement_digest: string; proof_status: string }[];
    const expected = results.map((x) => (isSampled(secret, x.statement_digest, 0.5) ? 'pending' : 'on_demand'));
    expect(results.map((x) => x.proof_status)).toEqual(expected);
    expect(new Set(expected).size).toBe(2); // both outcomes occur among 24 events (all alike: p = 2^-23)
    // with another secret the selection would differ
    expect(results.map((x) => isSampled(Buffer.from(OTHER_SECRET), x.statement_digest, 0.5) ? 'pending' : 'on_demand')).not.toEqual(expected);
    for (const x of results) expect(await jobsOf(s, x.id)).toHaveLength(x.proof_status === 'pending' ? 1 : 0);
    // rate 1: every event is proved eagerly
    expect((await setPolicy(s, 'tenant_sampled', { policy: 'sampled', rate: 1 })).status).toBe(200);
    const all = await s.call('POST', '/v1/attest/batch', { token: key, body: { events: Array.from({ length: 5 }, (_, i) => ev('tenant_sampled', `s1-${i}`)) }, headers: { prefer: 'return=minimal' } });
    expect(all.body.results.map((x: { proof_status: string }) => x.proof_status)).toEqual(Array(5).fill('pending'));
  });

  it('the secret is generated once into DATA_DIR/keys/sampling.key (mode 0600) when not given', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-sampling-'));
    try {
      const keys = path.join(dir, 'keys');
      const first = loadOrCreateSamplingSecret(keys);
      expect(first.length).toBeGreaterThanOrEqual(32);
      expect(fs.statSync(path.join(keys, 'sampling.key')).mode & 0o777).toBe(0o600);
      expect(Buffer.from(loadOrCreateSamplingSecret(keys)).equals(Buffer.from(first))).toBe(true);
      expect(Buffer.from(loadOrCreateSamplingSecret(keys, SECRET)).toString()).toBe(SECRET);
      expect(Buffer.from(loadOrCreateSamplingSecret(fs.mkdtempSync(path.join(dir, 'k2-')))).equals(Buffer.from(first))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the bounded proof queue (PROOF_QUEUE_LIMIT)', () => {
  let q: TestService;
  let qKey: string;

  beforeAll(async () => {
    q = await testService({ samplingSecret: randomBytes(24).toString('base64url'), proofQueueLimit: 2 });
    await setUp(q, ['tenant_q']);
    qKey = (await q.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest', 'read'] } })).body.secret;
  }, 120_000);
  afterAll(async () => {
    await q?.close();
  });

  it('defers new eager jobs at the limit (flag in header and reads, counter by tenant, status); on demand proves them; the sweeper re-queues the rest once the queue drains', async () => {
    const statuses: string[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await q.call('POST', '/v1/attest', { token: qKey, body: ev('tenant_q', `q-${i}`) });
      expect(r.status).toBe(201);
      statuses.push(r.headers.get('x-proof-status')!);
      ids.push(r.headers.get('x-attestation-id')!);
      // the depth as the store has it (in production: read at most every second, counted up locally between)
      await q.container.policies.refreshDepth();
      await q.container.policies.refreshDepth();
    }
    expect(statuses).toEqual(['pending', 'pending', 'deferred', 'deferred']);
    expect(await jobsOf(q, ids[2]!)).toEqual([]);
    const read = await q.call('GET', `/v1/attestations/${ids[2]}`, { token: qKey });
    expect(read.headers.get('x-proof-status')).toBe('deferred');
    expect(read.body.attestation.proof_status).toBe('pending');
    const listed = (await q.call('GET', '/v1/attestations?tenant_id=tenant_q', { token: qKey })).body.items;
    expect(listed.map((i: { proof_status: string }) => i.proof_status)).toEqual(statuses);

    const metrics = (await q.call('GET', '/metrics')).body as string;
    expect(metrics).toMatch(/^meterproof_proof_jobs_deferred_total\{tenant="tenant_q"\} 2$/m);
    expect(metrics).toMatch(/^meterproof_proof_queue_depth 2$/m);
    expect(metrics).toMatch(/^meterproof_proof_queue_limit 2$/m);
    expect(metrics).toMatch(/^meterproof_proof_deferred 2$/m);
    expect(metrics).toMatch(/^meterproof_proof_queue_oldest_age_seconds [0-9.e-]+$/m);
    const status = (await q.call('GET', '/v1/status', { token: null })).body;
    expect(status.proof_queue).toMatchObject({ depth: 2, limit: 2, full: true, deferred: 2 });
    expect(status.proof_queue.oldest_age_seconds).toBeGreaterThanOrEqual(0);

    // the sweeper does nothing while the queue is at or above half its limit
    expect(await q.container.policies.sweep()).toBe(0);

    // a deferred attestation is proved on demand, even with the queue full
    const qProver = await createProveFn(q.container.keys, { workers: 1 });
    const qWorker = startProofWorker(q.store.database.db, q.container.proofs, qProver.prove, { pollMs: 20 });
    try {
      const prove = await q.call('POST', `/v1/attestations/${ids[2]}/prove`, { token: qKey });
      expect(prove.status).toBe(202);
      for (const i of [0, 1, 2]) expect((await q.call('GET', `/v1/attestations/${ids[i]}?proof=sync`, { token: qKey })).headers.get('x-proof-status')).toBe('proved');
      // the queue has drained: one round of the sweeper queues the last deferred one
      expect(await q.container.policies.sweep()).toBe(1);
      expect((await jobsOf(q, ids[3]!)).length).toBe(1);
      expect((await q.call('GET', `/v1/attestations/${ids[3]}`, { token: qKey })).headers.get('x-proof-status')).toBe('pending');
      const last = await q.call('GET', `/v1/attestations/${ids[3]}?proof=sync`, { token: qKey });
      expect(last.headers.get('x-proof-status')).toBe('proved');
      expect((await q.call('POST', '/v1/verify', { token: null, body: last.body })).body.valid).toBe(true);
      expect(await q.container.policies.sweep()).toBe(0); // nothing left
      expect((await q.call('GET', '/v1/status', { token: null })).body.proof_queue).toMatchObject({ depth: 0, full: false, deferred: 0 });
    } finally {
      await qWorker.stop();
      await qProver.close();
    }
  }, 180_000);

  it('the sweeper loop runs rounds until stopped', async () => {
    // defer one more: two eager jobs fill the queue, the third is deferred
    const fill: string[] = [];
    for (let i = 0; i < 3; i++) {
      fill.push((await q.call('POST', '/v1/attest', { token: qKey, body: ev('tenant_q', `f-${i}`) })).headers.get('x-proof-status')!);
      await q.container.policies.refreshDepth();
      await q.container.policies.refreshDepth();
    }
    expect(fill).toEqual(['pending', 'pending', 'deferred']);
    // drain the queue as a worker would have (no prover here: mark the two jobs done)
    await q.store.database.db.execute(sql`update proof_jobs set status = 'done' where status = 'queued'`);
    let queued = 0;
    const sweeper = q.container.policies.startSweeper({ intervalMs: 20, onQueued: (n) => (queued += n) });
    for (let i = 0; i < 100 && queued === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await sweeper.stop();
    expect(queued).toBe(1);
    expect((await q.call('GET', '/v1/status', { token: null })).body.proof_queue).toMatchObject({ depth: 1, deferred: 0 });
  });
});
