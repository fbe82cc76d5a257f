// Settlement over the real service and store (PostgreSQL with DATABASE_URL, PGlite otherwise):
// plans and subscriptions, runs, concurrency, completeness, the signed statement in the log,
// the status machine and the immutability trigger.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { fromB64, fromHex, toHex } from '../src/core/bytes.ts';
import { canonicalBytes, digestBytes } from '../src/core/canonical.ts';
import { generateSigningKey, publicJwk, signObject, verifyObject } from '../src/core/keys.ts';
import { verifyEvidencePack, verifySettlementEvidence } from '../src/verifier/index.ts';
import { leafHash, rootFromLeafHashes, verifyInclusion } from '../src/core/merkle.ts';
import { SETTLEMENT_LEAF_TYPE, SettlementAccumulator, settlementLeaf } from '../src/core/settlement.ts';
import { rowsOf } from '../src/db/index.ts';
import { pilotEvent } from './support/fixtures.ts';
import { testService, type TestService } from './support/service.ts';

let s: TestService;
const BIN = path.resolve('bin/meterproof.js');
const TIERS = [
  { up_to: 50_000, unit_price_micros: 5_000 },
  { up_to: null, unit_price_micros: 8_000 },
];
const tariff = { tariff_id: 'vex', tariff_version: '1', tariff_class: 'usage_linear', unit_price_micros: 5_000, currency: 'USD' };
const plan = {
  plan_id: 'starter',
  plan_version: '1',
  currency: 'USD',
  fixed_fee_micros: 499_000_000,
  platform_fee_bps: 250,
  meters: [
    { endpoint: '/v1/vex', tariff: { tariff_id: 'vex', tariff_version: '1' }, included_units: 10_000, overage_tiers: TIERS, contracted_uptime_bps: 9_990 },
    { endpoint: '/v1/fu', tariff: { tariff_id: 'vex', tariff_version: '1' }, reserved_units: 1_000, reserved_unit_price_micros: 1_000, overage_tiers: [{ up_to: null, unit_price_micros: 800 }] },
  ],
};

let n = 0;
/** Attest one event for `tenant`'s window by subscription (no tariff named). */
const attest = (tenant: string, window: string, endpoint: string, units: number, outcome = 'success') =>
  s.call('POST', '/v1/attest', { body: { meter_event: { ...pilotEvent, event_id: `e${n++}`, tenant_id: tenant, billing_window_id: window, endpoint, usage_units: units, outcome } } });
const run = (tenant: string, window: string) => s.call('POST', '/v1/settlements', { body: { tenant_id: tenant, billing_window_id: window } });
const setStatus = (id: string, status: string) => s.call('PATCH', `/v1/settlements/${id}/status`, { body: { status } });
const db = () => s.store.database.db;

async function tenant(id: string) {
  expect((await s.call('POST', '/v1/admin/tenants', { body: { id } })).status).toBe(201);
  expect((await s.call('POST', '/v1/admin/subscriptions', { body: { tenant_id: id, plan_id: 'starter', plan_version: '1', effective_from: '2026-01-01T00:00:00Z' } })).status).toBe(201);
}

beforeAll(async () => {
  s = await testService();
  expect((await s.call('POST', '/v1/admin/tariffs', { body: tariff })).status).toBe(201);
  expect((await s.call('POST', '/v1/admin/plans', { body: plan })).status).toBe(201);
}, 60_000);
afterAll(async () => s?.close());

describe('plans and subscriptions', () => {
  it('a plan version is immutable: a replay is 200, other content 409; its tariffs must be published', async () => {
    const again = await s.call('POST', '/v1/admin/plans', { body: plan });
    expect(again.status).toBe(200);
    expect(again.body.plan_digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(digestBytes(canonicalBytes(again.body.plan))).toBe(again.body.plan_digest);
    expect((await s.call('POST', '/v1/admin/plans', { body: { ...plan, fixed_fee_micros: 1 } })).body.code).toBe('PLAN_VERSION_EXISTS');
    const unknownTariff = { ...plan, plan_version: '2', meters: [{ ...plan.meters[0], tariff: { tariff_id: 'nope', tariff_version: '1' } }] };
    expect((await s.call('POST', '/v1/admin/plans', { body: unknownTariff })).body.code).toBe('TARIFF_NOT_PUBLISHED');
    expect((await s.call('POST', '/v1/admin/plans', { body: { ...plan, plan_version: '3', platform_fee_bps: 10_001 } })).body.code).toBe('INVALID_PLAN');
    expect((await s.call('GET', '/v1/plans/starter/1')).body.plan.meters.map((m: { endpoint: string }) => m.endpoint)).toEqual(['/v1/fu', '/v1/vex']);
  });

  it('attest takes the tariff from the subscription in effect at the event time', async () => {
    await tenant('t_sub');
    const ok = await attest('t_sub', '2026-05', '/v1/vex', 3);
    expect(ok.status).toBe(201);
    expect(ok.body.tariff_snapshot).toMatchObject({ tariff_id: 'vex', tariff_version: '1' });
    expect(ok.body.billing.expected_charge_micros).toBe('15000');
    expect((await attest('t_sub', '2026-05', '/v1/unplanned', 3)).body.code).toBe('METER_NOT_IN_PLAN');
    const early = await s.call('POST', '/v1/attest', { body: { meter_event: { ...pilotEvent, event_id: 'early', tenant_id: 't_sub', endpoint: '/v1/vex', event_timestamp: '2025-12-31T23:59:59Z' } } });
    expect(early.body.code).toBe('NO_SUBSCRIPTION');
    await s.call('POST', '/v1/admin/tenants', { body: { id: 't_nosub' } });
    expect((await attest('t_nosub', '2026-05', '/v1/vex', 1)).body.code).toBe('TARIFF_REQUIRED'); // no subscription at all
    const clash = await s.call('POST', '/v1/admin/subscriptions', { body: { tenant_id: 't_sub', plan_id: 'starter', plan_version: '1', effective_from: '2026-01-01T00:00:00.000Z' } });
    expect(clash.status).toBe(200); // the same subscription again
  });
});

describe('a settlement run', () => {
  let settled: any;
  beforeAll(async () => {
    await tenant('t_seed');
    // the seed example on /v1/vex: 70,000 billable units, 10,000 included → 60,000 overage
    for (const [u, o] of [[30_000, 'success'], [999, 'error'], [25_000, 'success'], [15_000, 'partial'], [7, 'timeout']] as const) expect((await attest('t_seed', '2026-05', '/v1/vex', u, o)).status).toBe(201);
    // /v1/fu: 400 of 1,000 reserved units used
    for (const u of [100, 300]) expect((await attest('t_seed', '2026-05', '/v1/fu', u)).status).toBe(201);
    const r = await run('t_seed', '2026-05');
    expect(r.status).toBe(201);
    settled = r.body;
  }, 60_000);

  it('aggregates in bigint: overage by tier, reserved true-up, fixed fee, platform fee ⌈ ⌉', () => {
    const st = settled.settlement.statement;
    const vex = st.meters.find((m: any) => m.endpoint === '/v1/vex');
    const fu = st.meters.find((m: any) => m.endpoint === '/v1/fu');
    expect(vex).toMatchObject({ events: '5', billable_units: '70000', included_used_units: '10000', overage_units: '60000', overage_micros: '330000000', total_micros: '330000000' });
    expect(vex.overage_tiers.map((t: any) => [t.units, t.micros])).toEqual([['50000', '250000000'], ['10000', '80000000']]);
    expect(vex.outcomes).toMatchObject({ error: { events: '1', units: '999' }, timeout: { events: '1', units: '7' }, partial: { events: '1', units: '15000' } });
    expect(fu).toMatchObject({ billable_units: '400', reserved_used_units: '400', reserved_unused_units: '600', reserved_micros: '1000000', true_up_micros: '600000', total_micros: '1000000' });
    // 499,000,000 + 330,000,000 + 1,000,000 = 830,000,000; 2.5 % = 20,750,000 exactly
    // SLA: 5 events, 2 down (error, timeout) → ⌊3 × 10000 / 5⌋ = 6000 bps against 9990 contracted
    expect(vex.sla).toEqual({ success: '2', partial: '1', error: '1', timeout: '1', contracted_uptime_bps: 9990, actual_uptime_bps: 6000, compliant: false });
    expect(fu.sla).toMatchObject({ contracted_uptime_bps: null, actual_uptime_bps: 10000, compliant: null });
    expect(st).toMatchObject({ fixed_fee_micros: '499000000', total_micros: '830000000', platform_fee_bps: 250, platform_fee_micros: '20750000', net_micros: '809250000' });
    expect(st.attestations.count).toBe('7');
    expect(st.chains.map((c: any) => [c.endpoint, c.first_seq, c.last_seq])).toEqual(expect.arrayContaining([['/v1/vex', '0', '4'], ['/v1/fu', '0', '1']]));
    expect(st.plan.plan_digest).toMatch(/^sha256:/);
    expect(settled.status).toBe('pending');
  });

  it('is signed with the service key over its RFC 8785 bytes; its id is its content hash', async () => {
    const { statement, statement_digest, key_id, signature } = settled.settlement;
    expect(digestBytes(canonicalBytes(statement))).toBe(statement_digest);
    expect(settled.id).toBe(statement_digest.slice(7));
    const jwk = (await s.call('GET', '/.well-known/jwks.json', { token: null })).body.keys.find((k: any) => k.kid === key_id);
    expect(verifyObject(jwk, statement, signature)).toBe(true);
    expect(verifyObject(jwk, { ...statement, total_micros: '830000001' }, signature)).toBe(false);
  });

  it('is appended to the transparency log as a typed settlement leaf', async () => {
    let got: any;
    for (let i = 0; i < 200 && !got?.receipt; i++) {
      got = (await s.call('GET', `/v1/settlements/${settled.id}`)).body;
      if (!got.receipt) await new Promise((r) => setTimeout(r, 20));
    }
    const rc = got.receipt;
    expect(rc).toBeTruthy();
    const leaf = settlementLeaf(settled.settlement.statement_digest);
    expect(Buffer.from(leaf).toString()).toBe(`{"statement_digest":"${settled.settlement.statement_digest}","type":"${SETTLEMENT_LEAF_TYPE}"}`);
    expect(Buffer.from(fromB64(rc.leaf_hash)!)).toEqual(Buffer.from(leafHash(leaf)));
    const root = fromB64(rc.checkpoint.split('\n')[2])!;
    verifyInclusion(BigInt(rc.log_index), BigInt(rc.tree_size), leafHash(leaf), root, rc.inclusion_proof.map((h: string) => fromB64(h)!));
    const entries = await s.call('GET', `/v1/log/entries?start=${rc.log_index}&end=${Number(rc.log_index) + 1}`, { token: null });
    expect(entries.status).toBe(200);
    expect(JSON.stringify(entries.body)).toContain(SETTLEMENT_LEAF_TYPE);
  });

  it('claims every attestation once; refuses a second run and late events (PERIOD_SETTLED)', async () => {
    const claims = rowsOf<{ n: string | number }>(await db().execute(sql`select count(*) as n from settlement_claims where settlement_id = ${settled.id}`));
    expect(Number(claims[0]!.n)).toBe(7);
    expect((await run('t_seed', '2026-05')).body.code).toBe('SETTLEMENT_EXISTS');
    const late = await attest('t_seed', '2026-05', '/v1/vex', 1);
    expect(late.status).toBe(409);
    expect(late.body.code).toBe('PERIOD_SETTLED');
    const lateNewMeter = await attest('t_seed', '2026-05', '/v1/fu', 1);
    expect(lateNewMeter.body.code).toBe('PERIOD_SETTLED');
    expect((await attest('t_seed', '2026-06', '/v1/vex', 1)).status).toBe(201); // the next window is open
  });

  it("is not shown to a consumer-scoped key: it covers every consumer's events", async () => {
    const { valid_from: _f, valid_until: _u, ...jwk } = publicJwk(generateSigningKey(), new Date().toISOString());
    expect((await s.call('POST', '/v1/admin/consumers', { body: { tenant_id: 't_seed', consumer_id: 'carol', public_key: jwk } })).status).toBe(201);
    const carol = (await s.call('POST', '/v1/admin/api-keys', { body: { name: 'carol', scopes: ['read'], tenants: ['t_seed'], consumer_id: 'carol' } })).body.secret;
    const reader = (await s.call('POST', '/v1/admin/api-keys', { body: { name: 'seed-reader', scopes: ['read'], tenants: ['t_seed'] } })).body.secret;
    for (const path of [`/v1/settlements/${settled.id}`, `/v1/settlements/${settled.id}/evidence`]) {
      expect((await s.call('GET', path, { token: reader })).status).toBe(200);
      expect((await s.call('GET', path, { token: carol })).body.code).toBe('NOT_FOUND');
    }
    expect((await s.call('GET', '/v1/settlements?tenant_id=t_seed', { token: reader })).status).toBe(200);
    const sla = '/v1/sla?tenant_id=t_seed&start=2026-05-01T00:00:00Z&end=2026-06-01T00:00:00Z';
    expect((await s.call('GET', sla, { token: reader })).status).toBe(200);
    for (const path of ['/v1/settlements?tenant_id=t_seed', sla]) {
      const r = await s.call('GET', path, { token: carol });
      expect([r.status, r.body.code]).toEqual([403, 'CONSUMER_FORBIDDEN']);
    }
  });
});

describe('SLA', () => {
  it('GET /v1/sla: per meter counts and actual vs contracted uptime for any period', async () => {
    const q = (start: string, end: string, token?: string) => s.call('GET', `/v1/sla?tenant_id=t_seed&start=${start}&end=${end}`, token ? { token } : {});
    const all = await q('2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z');
    expect(all.status).toBe(200);
    const vex = all.body.meters.find((m: any) => m.endpoint === '/v1/vex');
    expect(vex).toMatchObject({ error: '1', timeout: '1', contracted_uptime_bps: 9990, compliant: false });
    expect(all.body.overall_compliant).toBe(false);
    expect(all.body.plan).toMatchObject({ plan_id: 'starter', plan_version: '1' });
    const none = await q('2020-01-01T00:00:00Z', '2020-02-01T00:00:00Z');
    expect(none.body.meters.every((m: any) => m.actual_uptime_bps === null)).toBe(true);
    expect((await q('2026-02-01T00:00:00Z', '2026-01-01T00:00:00Z')).body.code).toBe('INVALID_QUERY');
    expect((await s.call('GET', '/v1/sla?tenant_id=t_seed&start=yesterday&end=now')).body.code).toBe('INVALID_QUERY');
  });
});

describe('the status machine', () => {
  it('pending → invoiced → disputed → invoiced → paid; every change recorded; paid is final', async () => {
    await tenant('t_status');
    const hook = (await s.call('POST', '/v1/admin/webhooks', { body: { url: 'http://127.0.0.1:9/hook', tenant_id: 't_status', events: ['settlement.status_changed'] } })).body;
    await attest('t_status', '2026-05', '/v1/vex', 5);
    const id = (await run('t_status', '2026-05')).body.id;
    const illegal = await setStatus(id, 'paid');
    expect(illegal.status).toBe(409);
    expect(illegal.body.code).toBe('ILLEGAL_TRANSITION');
    expect((await setStatus(id, 'disputed')).body.code).toBe('ILLEGAL_TRANSITION');
    for (const to of ['invoiced', 'disputed', 'invoiced', 'paid']) expect((await setStatus(id, to)).status).toBe(200);
    for (const to of ['void', 'invoiced', 'disputed', 'pending']) expect((await setStatus(id, to)).body.code).toBe('ILLEGAL_TRANSITION');
    const got = (await s.call('GET', `/v1/settlements/${id}`)).body;
    expect(got.status).toBe('paid');
    expect(got.history.map((h: any) => [h.from, h.to])).toEqual([[null, 'pending'], ['pending', 'invoiced'], ['invoiced', 'disputed'], ['disputed', 'invoiced'], ['invoiced', 'paid']]);
    // each accepted move queued one settlement.status_changed webhook message (refused ones none)
    const queued = (await s.call('GET', `/v1/admin/webhooks/${hook.id}/deliveries`)).body.items;
    expect(queued.map((d: { event_type: string }) => d.event_type)).toEqual(Array(4).fill('settlement.status_changed'));
    const bodies = rowsOf<{ body: string }>(await db().execute(sql`select body from webhook_deliveries where endpoint_id = ${hook.id} order by created_at`)).map((r) => JSON.parse(r.body).data);
    expect(bodies.map((d: { from: string; to: string }) => [d.from, d.to])).toEqual([['pending', 'invoiced'], ['invoiced', 'disputed'], ['disputed', 'invoiced'], ['invoiced', 'paid']]);
    expect(bodies[0]).toMatchObject({ settlement_id: id, settlement_url: `/v1/settlements/${id}` });
    expect(got.history.every((h: any) => h.actor === 'admin-token' && !Number.isNaN(Date.parse(h.at)))).toBe(true);
    expect((await setStatus(id, 'bogus')).body.code).toBe('INVALID_STATUS');
    expect((await setStatus('0'.repeat(64), 'void')).status).toBe(404);
  });

  it('void releases the claims and reopens the window; a new run settles it again', async () => {
    await tenant('t_void');
    await attest('t_void', '2026-05', '/v1/vex', 5);
    const first = (await run('t_void', '2026-05')).body;
    expect((await setStatus(first.id, 'void')).body.status).toBe('void');
    expect((await setStatus(first.id, 'pending')).body.code).toBe('ILLEGAL_TRANSITION');
    expect((await attest('t_void', '2026-05', '/v1/vex', 6)).status).toBe(201);
    const second = (await run('t_void', '2026-05')).body;
    expect(second.settlement.statement.attestations.count).toBe('2');
    expect(second.settlement.statement.meters.find((m: any) => m.endpoint === '/v1/vex').billable_units).toBe('11');
  });
});

describe('completeness and concurrency', () => {
  it('a gap in a chain fails the run with CHAIN_GAP and leaves the window open', async () => {
    await tenant('t_gap');
    for (const u of [1, 2, 3]) await attest('t_gap', '2026-05', '/v1/vex', u);
    await db().execute(sql`delete from attestations where tenant_id = 't_gap' and seq = 1`);
    const r = await run('t_gap', '2026-05');
    expect(r.status).toBe(422);
    expect(r.body.code).toBe('CHAIN_GAP');
    const runs = rowsOf<{ status: string; error_code: string }>(await db().execute(sql`select status, error_code from settlement_runs where tenant_id = 't_gap'`));
    expect(runs).toEqual([{ status: 'failed', error_code: 'CHAIN_GAP' }]);
    expect((await attest('t_gap', '2026-05', '/v1/vex', 1)).status).toBe(201); // not sealed
  });

  it('a run left running by a dead process is taken over after 2 minutes; a live one never', async () => {
    await tenant('t_stuck');
    for (const w of ['2026-05', '2026-06', '2026-07']) expect((await attest('t_stuck', w, '/v1/vex', 10)).status).toBe(201);
    const stuck = async (id: string, window: string, age: string) =>
      db().execute(sql`insert into settlement_runs (id, tenant_id, billing_window_id, status, actor, started_at) values (${id}, 't_stuck', ${window}, 'running', 'test', now() - ${age}::interval)`);
    const statusOf = async (id: string) => rowsOf<{ status: string; error_code: string | null }>(await db().execute(sql`select status, error_code from settlement_runs where id = ${id}`))[0];
    // a process died mid-run three minutes ago: the window is not held for ever
    await stuck('dead-run', '2026-05', '3 minutes');
    expect((await run('t_stuck', '2026-05')).status).toBe(201);
    expect(await statusOf('dead-run')).toEqual({ status: 'failed', error_code: 'ABANDONED' });
    // a run in its first seconds (between its seal and its settling transaction) is left alone
    await stuck('young-run', '2026-06', '2 seconds');
    expect((await run('t_stuck', '2026-06')).body.code).toBe('SETTLEMENT_EXISTS');
    expect((await statusOf('young-run'))?.status).toBe('running');
    // a live run holds its row for its whole settling transaction: however old, it is not taken over
    const url = s.store.url;
    expect(!!url).toBe(!!process.env['DATABASE_URL']); // PostgreSQL: a second connection holds it
    if (url) {
      await stuck('live-run', '2026-07', '10 minutes');
      const other = postgres(url, { max: 1 });
      try {
        await other.begin(async (tx) => {
          await tx`select 1 from settlement_runs where id = 'live-run' for update`;
          expect((await run('t_stuck', '2026-07')).body.code).toBe('SETTLEMENT_EXISTS');
        });
      } finally {
        await other.end();
      }
      expect((await statusOf('live-run'))?.status).toBe('running');
    }
  });

  it('a missing last statement fails with CHAIN_INCOMPLETE', async () => {
    await tenant('t_tail');
    for (const u of [1, 2]) await attest('t_tail', '2026-05', '/v1/vex', u);
    await db().execute(sql`delete from attestations where tenant_id = 't_tail' and seq = 1`);
    expect((await run('t_tail', '2026-05')).body.code).toBe('CHAIN_INCOMPLETE');
  });

  it('two concurrent runs of one period: one settles, the other is refused; no attestation is claimed twice', async () => {
    await tenant('t_race');
    await Promise.all([1, 2, 3, 4].map((u) => attest('t_race', '2026-05', u % 2 ? '/v1/vex' : '/v1/fu', u)));
    const [a, b] = await Promise.all([run('t_race', '2026-05'), run('t_race', '2026-05')]);
    expect([a.status, b.status].sort()).toEqual([201, 409]);
    expect((a.status === 409 ? a : b).body.code).toBe('SETTLEMENT_EXISTS');
    const c = rowsOf<{ n: string | number; d: string | number }>(
      await db().execute(sql`select count(*) as n, count(distinct attestation_id) as d from settlement_claims sc join attestations a on a.id = sc.attestation_id where a.tenant_id = 't_race'`),
    );
    expect(Number(c[0]!.n)).toBe(4);
    expect(Number(c[0]!.d)).toBe(4);
  });

  it('a run racing new attests: every attest either lands in the settlement or is refused PERIOD_SETTLED', async () => {
    await tenant('t_busy');
    await attest('t_busy', '2026-05', '/v1/vex', 1);
    const attests = Array.from({ length: 30 }, (_, i) => attest('t_busy', '2026-05', i % 3 ? '/v1/vex' : '/v1/fu', 1));
    const settledRun = run('t_busy', '2026-05');
    const results = await Promise.all(attests);
    const r = await settledRun;
    expect(r.status).toBe(201);
    const accepted = results.filter((x) => x.status === 201).length;
    expect(results.every((x) => x.status === 201 || x.body.code === 'PERIOD_SETTLED')).toBe(true);
    expect(r.body.settlement.statement.attestations.count).toBe(String(1 + accepted));
    const unclaimed = rowsOf<{ n: string | number }>(
      await db().execute(sql`select count(*) as n from attestations a where a.tenant_id = 't_busy' and not exists (select 1 from settlement_claims c where c.attestation_id = a.id)`),
    );
    expect(Number(unclaimed[0]!.n)).toBe(0);
  });

  it('a revoked attestation keeps its chain place but counts for nothing (listed as excluded)', async () => {
    await tenant('t_rev');
    for (const u of [10, 20, 30]) expect((await attest('t_rev', '2026-05', '/v1/vex', u)).status).toBe(201);
    const second = (await s.call('GET', '/v1/attestations?tenant_id=t_rev')).body.items[1].bundle.attestation;
    const digest = digestBytes(canonicalBytes(second.statement));
    expect((await s.call('POST', '/v1/admin/revocations/attestations', { body: { statement_digest: digest, reason: 'duplicate upstream' } })).status).toBe(201);
    const st = (await run('t_rev', '2026-05')).body.settlement.statement;
    expect(st.excluded).toEqual([{ statement_digest: digest, reason: 'revoked: duplicate upstream' }]);
    expect(st.attestations.count).toBe('2');
    expect(st.chains[0]).toMatchObject({ first_seq: '0', last_seq: '2', count: '3' });
    expect(st.meters.find((m: any) => m.endpoint === '/v1/vex').billable_units).toBe('40');
  });


  it('a retried event of a settled window is a replay (200), not PERIOD_SETTLED; other content is a conflict', async () => {
    await tenant('t_retry');
    const body = { meter_event: { ...pilotEvent, event_id: 'retry-1', tenant_id: 't_retry', billing_window_id: '2026-05', endpoint: '/v1/vex', usage_units: 5 } };
    const first = await s.call('POST', '/v1/attest', { body });
    expect(first.status).toBe(201);
    expect((await run('t_retry', '2026-05')).status).toBe(201);
    const again = await s.call('POST', '/v1/attest', { body });
    expect(again.status).toBe(200);
    expect(again.body.attestation.statement).toEqual(first.body.attestation.statement);
    expect((await s.call('POST', '/v1/attest', { body: { meter_event: { ...body.meter_event, usage_units: 6 } } })).body.code).toBe('IDEMPOTENCY_CONFLICT');
    expect((await s.call('POST', '/v1/attest', { body: { meter_event: { ...body.meter_event, event_id: 'retry-2' } } })).body.code).toBe('PERIOD_SETTLED');
    const batch = await s.call('POST', '/v1/attest/batch', { body: { events: [body] } });
    expect(batch.body.results[0].status).toBe(200);
  });

  it('two currencies: adjustments wait for a settlement in theirs; a window priced in both settles once the odd statements are revoked', async () => {
    expect((await s.call('POST', '/v1/admin/tariffs', { body: { ...tariff, currency: 'EUR', tariff_id: 'vex-eur' } })).status).toBe(201);
    const eur = { ...plan, plan_id: 'starter-eur', currency: 'EUR', meters: plan.meters.map((m) => ({ ...m, tariff: { tariff_id: 'vex-eur', tariff_version: '1' } })) };
    expect((await s.call('POST', '/v1/admin/plans', { body: eur })).status).toBe(201);
    await tenant('t_two');
    expect((await s.call('POST', '/v1/admin/subscriptions', { body: { tenant_id: 't_two', plan_id: 'starter-eur', plan_version: '1', effective_from: '2026-05-15T00:00:00Z' } })).status).toBe(201);
    const at = (id: string, ts: string) => s.call('POST', '/v1/attest', { body: { meter_event: { ...pilotEvent, event_id: id, tenant_id: 't_two', billing_window_id: '2026-05', endpoint: '/v1/vex', usage_units: 2, event_timestamp: ts } } });
    const usd = await at('two-usd', '2026-05-10T00:00:00.000Z');
    const eurEvent = await at('two-eur', '2026-05-20T00:00:00.000Z');
    expect([usd.body.attestation.statement.currency, eurEvent.body.attestation.statement.currency]).toEqual(['USD', 'EUR']);
    const adjust = (currency: string) =>
      s.call('POST', '/v1/settlements/adjustments', { body: { tenant_id: 't_two', kind: 'credit', amount_micros: '1000', currency, attestation_ids: [digestBytes(canonicalBytes(usd.body.attestation.statement))], reason: 'goodwill' } });
    expect((await adjust('ZZZ')).body.code).toBe('CURRENCY_MISMATCH'); // not a currency the tenant is billed in
    const inEur = await adjust('EUR');
    const inUsd = await adjust('USD');
    expect([inEur.status, inUsd.status]).toEqual([201, 201]);
    // the window settles under the plan of its first event (USD): the EUR statement stops it
    expect((await run('t_two', '2026-05')).body.code).toBe('CURRENCY_MISMATCH');
    const eurDigest = digestBytes(canonicalBytes(eurEvent.body.attestation.statement));
    expect((await s.call('POST', '/v1/admin/revocations/attestations', { body: { statement_digest: eurDigest, reason: 'priced in EUR' } })).status).toBe(201);
    const r = await run('t_two', '2026-05');
    expect(r.status).toBe(201);
    const st = r.body.settlement.statement;
    expect(st.excluded).toEqual([{ statement_digest: eurDigest, reason: 'revoked: priced in EUR' }]);
    expect(st.adjustments.items.map((x: any) => x.adjustment_digest)).toEqual([inUsd.body.adjustment_digest]);
    expect((await s.call('GET', `/v1/settlements/adjustments/${inEur.body.id}`)).body.settlement_id).toBeNull();
    let ev: any;
    for (let i = 0; i < 200 && !ev?.receipt; i++) {
      if (i) await new Promise((res) => setTimeout(res, 20));
      ev = (await s.call('GET', `/v1/settlements/${r.body.id}/evidence`)).body;
    }
    expect(verifySettlementEvidence(ev, (await s.call('GET', '/v1/trust', { token: null })).body).valid).toBe(true);
  });
  it('refuses a period without attestations, an unknown tenant and a bad body', async () => {
    expect((await run('t_seed', '2030-01')).body.code).toBe('NOTHING_TO_SETTLE');
    expect((await run('nobody', '2026-05')).body.code).toBe('TENANT_UNKNOWN');
    expect((await s.call('POST', '/v1/settlements', { body: { tenant_id: 't_seed' } })).body.code).toBe('INVALID_SETTLEMENT_REQUEST');
  });
});

describe('the plan of a window', () => {
  it('is the plan in effect at its first event: from the event_at column, or the bundle for rows stored without it', async () => {
    const later = { ...plan, plan_version: 'mid-may', fixed_fee_micros: 1 };
    expect((await s.call('POST', '/v1/admin/plans', { body: later })).status).toBe(201);
    const at = (tenant: string, id: string, ts: string) =>
      s.call('POST', '/v1/attest', { body: { meter_event: { ...pilotEvent, event_id: id, tenant_id: tenant, billing_window_id: '2026-05', endpoint: '/v1/vex', usage_units: 1, event_timestamp: ts } } });
    for (const t of ['t_first_col', 't_first_legacy']) {
      await tenant(t);
      expect((await s.call('POST', '/v1/admin/subscriptions', { body: { tenant_id: t, plan_id: 'starter', plan_version: 'mid-may', effective_from: '2026-05-15T00:00:00Z' } })).status).toBe(201);
      // attested out of time order: the window's first event is the second one attested
      expect((await at(t, `${t}-late`, '2026-05-20T00:00:00.000Z')).status).toBe(201);
      expect((await at(t, `${t}-early`, '2026-05-10T00:00:00.000Z')).status).toBe(201);
    }
    const stored = rowsOf<{ event_id: string; event_at: Date | string }>(await db().execute(sql`select event_id, event_at from attestations where tenant_id = 't_first_col' order by event_id`));
    expect(stored.map((r) => [r.event_id, new Date(r.event_at).toISOString()])).toEqual([
      ['t_first_col-early', '2026-05-10T00:00:00.000Z'],
      ['t_first_col-late', '2026-05-20T00:00:00.000Z'],
    ]);
    // a row stored before migration 0021 has no event_at: the run reads its bundle
    await db().execute(sql`update attestations set event_at = null where event_id = 't_first_legacy-early'`);
    for (const t of ['t_first_col', 't_first_legacy']) {
      const r = await run(t, '2026-05');
      expect(r.status).toBe(201);
      expect(r.body.settlement.statement.plan).toMatchObject({ plan_id: 'starter', plan_version: '1' });
      expect(r.body.settlement.statement.fixed_fee_micros).toBe('499000000');
    }
  });
});

describe('immutability (a database trigger, raw SQL)', () => {
  it('refuses UPDATE of anything but status and status_changed_at, any DELETE, and changes once final', async () => {
    await tenant('t_trig');
    await attest('t_trig', '2026-05', '/v1/vex', 5);
    const id = (await run('t_trig', '2026-05')).body.id as string;
    const refused = async (q: ReturnType<typeof sql>) => {
      const e = await db().execute(q).then(() => null, (x: unknown) => x as { cause?: Error; message: string });
      expect(e, 'the statement must fail').not.toBeNull();
      expect(`${e!.message} ${e!.cause?.message ?? ''}`).toMatch(/settlements are immutable|is final/);
    };
    await refused(sql`update settlements set total_micros = 1 where id = ${id}`);
    await refused(sql`update settlements set statement = '{}'::json where id = ${id}`);
    await refused(sql`update settlements set signature = 'x', status = 'invoiced' where id = ${id}`);
    await refused(sql`delete from settlements where id = ${id}`);
    await db().execute(sql`update settlements set status = 'invoiced', status_changed_at = now() where id = ${id}`);
    await db().execute(sql`update settlements set status = 'paid' where id = ${id}`);
    await refused(sql`update settlements set status = 'invoiced' where id = ${id}`);
    await refused(sql`update settlements set status_changed_at = now() where id = ${id}`);
    // one attestation, one live settlement: the claims' primary key refuses a second claim
    const claimed = rowsOf<{ attestation_id: string }>(await db().execute(sql`select attestation_id from settlement_claims where settlement_id = ${id}`))[0]!.attestation_id;
    const dup = await db().execute(sql`insert into settlement_claims (attestation_id, settlement_id) values (${claimed}, ${id})`).then(() => null, (x: { cause?: { code?: string }; code?: string }) => x.cause?.code ?? x.code);
    expect(dup).toBe('23505');
    const [row] = rowsOf<{ status: string; total_micros: string }>(await db().execute(sql`select status, total_micros::text as total_micros from settlements where id = ${id}`));
    expect(row).toEqual({ status: 'paid', total_micros: '500000000' }); // the fixed fee and /v1/fu's reservation: 5 units are included
  });
});

describe('anyone can check a bill: the evidence and the offline verifier', () => {
  let evidence: any;
  let trust: any;
  beforeAll(async () => {
    await tenant('t_ev');
    for (const [e, u, o] of [['/v1/vex', 40_000, 'success'], ['/v1/vex', 30_000, 'success'], ['/v1/fu', 700, 'success'], ['/v1/vex', 3, 'error']] as const) await attest('t_ev', '2026-05', e, u, o);
    const id = (await run('t_ev', '2026-05')).body.id;
    for (let i = 0; i < 200 && !evidence?.receipt; i++) {
      const r = await s.call('GET', `/v1/settlements/${id}/evidence`);
      expect(r.status).toBe(200);
      evidence = r.body;
      if (!evidence.receipt) await new Promise((res) => setTimeout(res, 20));
    }
    trust = (await s.call('GET', '/v1/trust', { token: null })).body;
  }, 60_000);

  const codeOf = (ev: unknown, t = trust) => {
    const r = verifySettlementEvidence(ev, t);
    return r.valid ? 'VALID' : r.checks.find((c) => c.status === 'fail')!.code;
  };
  const clone = () => structuredClone(evidence);

  it('the evidence of a settlement verifies: hash, signature, plan, every statement, totals, Merkle root, log', () => {
    expect(evidence.attestations).toHaveLength(4);
    const r = verifySettlementEvidence(evidence, trust);
    expect(r.checks.map((c) => [c.name, c.status])).toEqual(['schema', 'content_hash', 'signature', 'plan', 'adjustment_signatures', 'attestation_signatures', 'recomputation', 'inclusion', 'checkpoint'].map((n) => [n, 'pass']));
    expect(r.valid).toBe(true);
  });

  it('tampered evidence fails closed, naming the first difference', () => {
    const t1 = clone();
    t1.settlement.statement.total_micros = '1';
    expect(codeOf(t1)).toBe('CONTENT_HASH_MISMATCH');
    const t2 = clone();
    t2.settlement.statement.total_micros = '1';
    t2.settlement.statement_digest = digestBytes(canonicalBytes(t2.settlement.statement));
    expect(codeOf(t2)).toBe('SIGNATURE_INVALID');
    const t3 = clone();
    t3.attestations.splice(1, 1);
    expect(['CHAIN_GAP', 'CHAIN_INCOMPLETE']).toContain(codeOf(t3));
    const t4 = clone();
    t4.attestations[0].statement.usage_units = '1';
    expect(codeOf(t4)).toBe('ATTESTATION_SIGNATURE_INVALID');
    const t5 = clone();
    t5.plan.platform_fee_bps = 0;
    expect(codeOf(t5)).toBe('PLAN_DIGEST_MISMATCH');
    const t6 = clone();
    t6.receipt.log_index = String(Number(t6.receipt.log_index) + 1);
    expect(codeOf(t6)).toBe('INCLUSION_INVALID');
    const t7 = clone();
    t7.receipt = null;
    expect(codeOf(t7)).toBe('RECEIPT_MISSING');
    expect(codeOf(evidence, { ...trust, jwks: { keys: [] } })).toBe('KEY_UNKNOWN');
    expect(codeOf({ ...evidence, extra: 1 })).toBe('SCHEMA_INVALID');
  });

  it('a statement signed by a trusted key but with wrong totals: TOTALS_MISMATCH at its path', () => {
    const key = generateSigningKey('2026-01-01T00:00:00Z');
    const t = clone();
    const st = t.settlement.statement;
    st.meters.find((m: any) => m.endpoint === '/v1/vex').overage_micros = '1';
    st.key_id = key.keyId;
    t.settlement.key_id = key.keyId;
    t.settlement.signature = signObject(key, st);
    t.settlement.statement_digest = digestBytes(canonicalBytes(st));
    const withKey = { ...trust, jwks: { keys: [...trust.jwks.keys, publicJwk(key, '2026-01-01T00:00:00Z')] } };
    const r = verifySettlementEvidence(t, withKey);
    expect(r.valid).toBe(false);
    expect(r.checks.find((c) => c.status === 'fail')).toMatchObject({ name: 'recomputation', code: 'TOTALS_MISMATCH' });
    expect(r.first_difference).toMatch(/^\$\.meters\[\d\]\.overage_micros$/);
  });

  it('meterproof settlement verify: exit 0 valid, 1 tampered, 2 unusable', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-settle-'));
    try {
      fs.writeFileSync(path.join(dir, 'e.json'), JSON.stringify(evidence));
      fs.writeFileSync(path.join(dir, 'trust.json'), JSON.stringify(trust));
      const t = clone();
      t.attestations[2].statement.charge_micros = String(BigInt(t.attestations[2].statement.charge_micros) + 1n);
      fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify(t));
      fs.writeFileSync(path.join(dir, 'junk.json'), '{"type":1,"type":2}');
      const cli = (f: string) => spawnSync(process.execPath, [BIN, 'settlement', 'verify', f, '--trust', 'trust.json'], { cwd: dir, encoding: 'utf8' });
      const ok = cli('e.json');
      expect(ok.stdout).toContain('VALID');
      expect(ok.status).toBe(0);
      const bad = cli('bad.json');
      expect(bad.stdout).toContain('ATTESTATION_SIGNATURE_INVALID');
      expect(bad.stdout).not.toMatch(/^VALID/m);
      expect(bad.status).toBe(1);
      const junk = cli('junk.json');
      expect(junk.status).toBe(2);
      expect(junk.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('late events, adjustments and the streamed run', () => {
  const latePlan = { ...plan, plan_id: 'late', late_events: 'next_period' };
  let lateTrust: any;
  const evidenceOf = async (id: string) => {
    for (let i = 0; i < 200; i++) {
      const r = await s.call('GET', `/v1/settlements/${id}/evidence`);
      if (r.body.receipt) return r.body;
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error('no receipt');
  };
  const subscribe = async (id: string, planId: string) => {
    expect((await s.call('POST', '/v1/admin/tenants', { body: { id } })).status).toBe(201);
    expect((await s.call('POST', '/v1/admin/subscriptions', { body: { tenant_id: id, plan_id: planId, plan_version: '1', effective_from: '2026-01-01T00:00:00Z' } })).status).toBe(201);
  };
  beforeAll(async () => {
    expect((await s.call('POST', '/v1/admin/plans', { body: latePlan })).status).toBe(201);
    lateTrust = (await s.call('GET', '/v1/trust', { token: null })).body;
  });

  it('late_events: refuse is the default and part of the digest; next_period is another plan', async () => {
    expect((await s.call('GET', '/v1/plans/starter/1')).body.plan.late_events).toBe('refuse');
    const p = (await s.call('GET', '/v1/plans/late/1')).body;
    expect(p.plan.late_events).toBe('next_period');
    expect(p.plan_digest).toBe(digestBytes(canonicalBytes(p.plan)));
    expect((await s.call('POST', '/v1/admin/plans', { body: { ...plan, plan_version: '9', late_events: 'later' } })).body.code).toBe('INVALID_PLAN');
  });

  it('next_period: a late event is attested and claimed by the next settlement, listed as late', async () => {
    await subscribe('t_late', 'late');
    for (const u of [10, 20]) expect((await attest('t_late', '2026-05', '/v1/vex', u)).status).toBe(201);
    const may = (await run('t_late', '2026-05')).body;
    expect(may.settlement.statement.late).toEqual([]);
    const late = await attest('t_late', '2026-05', '/v1/vex', 5); // after the seal: late, not refused
    expect(late.status).toBe(201);
    const lateDigest = digestBytes(canonicalBytes(late.body.attestation.statement));
    expect((await attest('t_late', '2026-06', '/v1/vex', 7)).status).toBe(201);
    const june = (await run('t_late', '2026-06')).body;
    const st = june.settlement.statement;
    expect(st.late).toEqual([{ statement_digest: lateDigest, chain_id: late.body.attestation.statement.chain.id, seq: '2', billing_window_id: '2026-05', issued_at: late.body.attestation.statement.issued_at }]);
    expect(st.attestations.count).toBe('2');
    expect(st.meters.find((m: any) => m.endpoint === '/v1/vex').billable_units).toBe('12');
    const claims = rowsOf<{ settlement_id: string }>(await db().execute(sql`select settlement_id from settlement_claims where attestation_id = ${lateDigest.slice(7)}`));
    expect(claims).toEqual([{ settlement_id: june.id }]);
    // May's settlement is unchanged (never rewritten); its evidence and June's verify offline
    expect((await s.call('GET', `/v1/settlements/${may.id}`)).body.settlement.statement.attestations.count).toBe('2');
    expect(verifySettlementEvidence(await evidenceOf(may.id), lateTrust).valid).toBe(true);
    const ev = await evidenceOf(june.id);
    expect(ev.attestations).toHaveLength(2);
    expect(verifySettlementEvidence(ev, lateTrust).valid).toBe(true);
    const dropped = structuredClone(ev);
    dropped.attestations.pop();
    expect(verifySettlementEvidence(dropped, lateTrust).first_difference).toMatch(/^\$\.(late|attestations|meters|outcomes)/);

    // June's evidence pack holds its late statement too, after the window's, and recomputes
    const packOf = async (id: string) => {
      const r = await s.call('GET', `/v1/evidence?settlement_id=${id}`);
      expect(r.status).toBe(200);
      return (r.body as string).trimEnd().split('\n');
    };
    const pack = await packOf(june.id);
    const bundleWindows = pack.slice(1, -2).map((l) => JSON.parse(l).bundle.attestation.statement.billing_window_id);
    expect(bundleWindows).toEqual(['2026-06', '2026-05']);
    const manifest = JSON.parse(pack.at(-1)!).manifest;
    expect(manifest.count).toBe('2');
    expect(manifest.chains).toEqual([{ id: june.settlement.statement.chains[0].id, count: '1' }]);
    const packVerdict = (ls: string[]) => verifyEvidencePack(ls, { pinned: lateTrust, profile: 'standard' });
    const v = await packVerdict(pack);
    expect(v.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(v.settlement?.valid).toBe(true);
    // the late line moved before the window's, or dropped: the pack fails closed
    const swapped = [pack[0]!, pack[2]!, pack[1]!, ...pack.slice(3)];
    const sv = await packVerdict(swapped);
    expect(sv.checks.find((c) => c.name === 'chains')).toMatchObject({ status: 'fail', code: 'CHAIN_GAP' });
    // the settlement check names the recomputation's failure, not a check skipped after it
    expect(sv.checks.find((c) => c.name === 'settlement')).toMatchObject({ status: 'fail', code: 'EVIDENCE_ORDER' });
    const withoutLate = [...pack.slice(0, 2), ...pack.slice(3)];
    expect((await packVerdict(withoutLate)).valid).toBe(false);
    // May's pack is the window's alone, as before
    expect((await packVerdict(await packOf(may.id))).valid).toBe(true);
  });

  it('a voided window whose late events another settlement holds: LATE_EVENTS_CLAIMED until that one is void too', async () => {
    await subscribe('t_relate', 'late');
    for (const u of [10, 20]) expect((await attest('t_relate', '2026-05', '/v1/vex', u)).status).toBe(201);
    const may = (await run('t_relate', '2026-05')).body;
    expect((await attest('t_relate', '2026-05', '/v1/vex', 5)).status).toBe(201); // late
    expect((await attest('t_relate', '2026-06', '/v1/vex', 7)).status).toBe(201);
    const june = (await run('t_relate', '2026-06')).body;
    expect(june.settlement.statement.late).toHaveLength(1);
    // May is settled: that comes first
    expect((await run('t_relate', '2026-05')).body.code).toBe('SETTLEMENT_EXISTS');
    expect((await setStatus(may.id, 'void')).status).toBe(200);
    const refused = await run('t_relate', '2026-05');
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('LATE_EVENTS_CLAIMED');
    expect(refused.body.detail).toContain(june.id);
    // a claim that lands after the check (a June run racing this one) is named once the run
    // fails on the missing statements: the first check is made to miss it here
    const settlements = s.container.deps.settlements as unknown as { refuseLateClaimed(t: string, w: string): Promise<void> };
    vi.spyOn(settlements, 'refuseLateClaimed').mockResolvedValueOnce(undefined);
    const raced = await run('t_relate', '2026-05');
    expect([raced.status, raced.body.code]).toEqual([409, 'LATE_EVENTS_CLAIMED']);
    vi.restoreAllMocks();
    // the refusal changed nothing: June still holds the late event, May is open
    expect((await s.call('GET', `/v1/settlements/${june.id}`)).body.status).toBe('pending');
    expect(rowsOf(await db().execute(sql`select 1 from settlement_runs where tenant_id = 't_relate' and billing_window_id = '2026-05' and status = 'running'`))).toEqual([]);
    // once June is void, May settles again in full (its late event included), then June alone
    expect((await setStatus(june.id, 'void')).status).toBe(200);
    const may2 = await run('t_relate', '2026-05');
    expect(may2.status).toBe(201);
    expect(may2.body.settlement.statement.attestations.count).toBe('3');
    const june2 = await run('t_relate', '2026-06');
    expect(june2.status).toBe(201);
    expect(june2.body.settlement.statement.late).toEqual([]);
    expect(june2.body.settlement.statement.attestations.count).toBe('1');
    for (const id of [may2.body.id, june2.body.id]) expect(verifySettlementEvidence(await evidenceOf(id), lateTrust).valid).toBe(true);
  });

  it('an adjustment is signed, claimed once by the next run, in its totals, and verified offline', async () => {
    await tenant('t_adj');
    const a1 = await attest('t_adj', '2026-05', '/v1/vex', 100);
    const first = (await run('t_adj', '2026-05')).body;
    const ref = digestBytes(canonicalBytes(a1.body.attestation.statement));
    const credit = await s.call('POST', '/v1/settlements/adjustments', { body: { tenant_id: 't_adj', kind: 'credit', amount_micros: '250000', currency: 'USD', attestation_ids: [ref], reason: 'double-counted retry' } });
    expect(credit.status, JSON.stringify(credit.body)).toBe(201);
    expect(credit.body.settlement_id).toBeNull();
    expect(credit.body.adjustment_digest).toBe(digestBytes(canonicalBytes(credit.body.adjustment)));
    const jwk = lateTrust.jwks.keys.find((k: any) => k.kid === credit.body.key_id);
    expect(verifyObject(jwk, credit.body.adjustment, credit.body.signature)).toBe(true);
    const debit = await s.call('POST', '/v1/settlements/adjustments', { body: { tenant_id: 't_adj', kind: 'debit', amount_micros: 1000, currency: 'USD', attestation_ids: [ref], reason: 'late fee' } });
    expect(debit.status).toBe(201);
    expect((await s.call('POST', '/v1/settlements/adjustments', { body: { tenant_id: 't_adj', kind: 'credit', amount_micros: '0', currency: 'USD', attestation_ids: [ref], reason: 'x' } })).body.code).toBe('INVALID_ADJUSTMENT');
    expect((await s.call('POST', '/v1/settlements/adjustments', { body: { tenant_id: 't_adj', kind: 'credit', amount_micros: '1', currency: 'USD', attestation_ids: [`sha256:${'0'.repeat(64)}`], reason: 'x' } })).body.code).toBe('ADJUSTMENT_ATTESTATION_UNKNOWN');
    // chains are never rewritten: the settled May statement is untouched
    expect((await s.call('GET', `/v1/settlements/${first.id}`)).body.settlement.statement.adjustments.items).toEqual([]);

    // Idempotency-Key: a retry (same key, same body) gets the adjustment first signed, even when
    // the retries race; another body under the key is a conflict; a key is per tenant
    const goodwill = { tenant_id: 't_adj', kind: 'credit', amount_micros: '5000', currency: 'USD', attestation_ids: [ref], reason: 'goodwill' };
    const keyed = (body: unknown, key: string) => s.call('POST', '/v1/settlements/adjustments', { body, headers: { 'idempotency-key': key } });
    const tries = await Promise.all([1, 2, 3].map(() => keyed(goodwill, 'retry-7f3a')));
    expect(tries.map((t) => t.status).sort()).toEqual([200, 200, 201]);
    expect(new Set(tries.map((t) => t.body.id)).size).toBe(1);
    expect(tries.filter((t) => t.headers.get('idempotent-replayed') === 'true')).toHaveLength(2);
    const again = await keyed(goodwill, 'retry-7f3a');
    expect([again.status, again.body.id, again.body.signature]).toEqual([200, tries[0]!.body.id, tries[0]!.body.signature]);
    // the same body as the signed adjustment sees it: its attestation ids are a set
    const ref2 = digestBytes(canonicalBytes((await attest('t_adj', '2026-06', '/v1/vex', 3)).body.attestation.statement));
    const pair = await keyed({ ...goodwill, attestation_ids: [ref, ref2] }, 'pair-01');
    expect(pair.status).toBe(201);
    for (const ids of [[ref2, ref], [ref, ref2, ref]]) expect((await keyed({ ...goodwill, attestation_ids: ids }, 'pair-01')).body.id).toBe(pair.body.id);
    expect((await keyed({ ...goodwill, amount_micros: '5001' }, 'retry-7f3a')).body.code).toBe('IDEMPOTENCY_CONFLICT');
    for (const bad of ['', 'a b', 'x'.repeat(256), 'café']) expect((await keyed(goodwill, bad)).body.code, bad).toBe('INVALID_IDEMPOTENCY_KEY');
    await tenant('t_adj2');
    const b2 = await attest('t_adj2', '2026-05', '/v1/vex', 1);
    const other = await keyed({ ...goodwill, tenant_id: 't_adj2', attestation_ids: [digestBytes(canonicalBytes(b2.body.attestation.statement))] }, 'retry-7f3a');
    expect(other.status).toBe(201);
    // many retries at once, signing in the same millisecond (the same adjustment id): one 201,
    // the rest replays, never an error
    for (let round = 0; round < 20; round++) {
      const body = { ...goodwill, tenant_id: 't_adj2', attestation_ids: [digestBytes(canonicalBytes(b2.body.attestation.statement))], amount_micros: String(100 + round) };
      const rs = await Promise.all(Array.from({ length: 8 }, () => keyed(body, `race-${round}`)));
      expect(rs.map((r) => r.status).sort(), JSON.stringify(rs.map((r) => r.body.code))).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
      expect(new Set(rs.map((r) => r.body.id)).size).toBe(1);
    }
    const goodwillId = tries[0]!.body.id as string;
    // an admin key limited to other tenants may not adjust this one's bills (nor probe its keys)
    const otherAdmin = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['admin'], tenants: ['t_adj2'] } })).body.secret;
    const foreign = await s.call('POST', '/v1/settlements/adjustments', { token: otherAdmin, body: { ...goodwill, amount_micros: '9' }, headers: { 'idempotency-key': 'retry-7f3a' } });
    expect([foreign.status, foreign.body.code]).toEqual([403, 'TENANT_FORBIDDEN']);

    await attest('t_adj', '2026-06', '/v1/vex', 1);
    const june = (await run('t_adj', '2026-06')).body;
    const st = june.settlement.statement;
    expect(st.adjustments.items.map((x: any) => x.adjustment_digest)).toEqual([credit.body.adjustment_digest, debit.body.adjustment_digest, `sha256:${goodwillId}`, pair.body.adjustment_digest].sort());
    expect(st.adjustments).toMatchObject({ debit_micros: '1000', credit_micros: '260000' });
    expect(BigInt(st.amount_due_micros)).toBe(BigInt(st.total_micros) + 1000n - 260_000n);
    // a retry after the settlement claimed it still answers the same adjustment, now claimed
    expect((await keyed(goodwill, 'retry-7f3a')).body).toMatchObject({ id: goodwillId, settlement_id: june.id });
    expect((await s.call('GET', `/v1/settlements/adjustments/${credit.body.id}`)).body.settlement_id).toBe(june.id);
    await attest('t_adj', '2026-07', '/v1/vex', 1);
    expect((await run('t_adj', '2026-07')).body.settlement.statement.adjustments.items).toEqual([]); // claimed once
    await expect(db().execute(sql`update settlement_adjustments set reason = 'x' where tenant_id = 't_adj'`)).rejects.toThrow();

    const ev = await evidenceOf(june.id);
    expect(ev.adjustments).toHaveLength(4);
    expect(verifySettlementEvidence(ev, lateTrust).valid).toBe(true);
    const tampered = structuredClone(ev);
    tampered.adjustments[0].adjustment.amount_micros = '1';
    const r = verifySettlementEvidence(tampered, lateTrust);
    expect(r.valid).toBe(false);
    expect(r.checks.find((c) => c.status === 'fail')).toMatchObject({ name: 'adjustment_signatures', code: 'ADJUSTMENT_SIGNATURE_INVALID' });
    const missing = structuredClone(ev);
    missing.adjustments.pop();
    expect(verifySettlementEvidence(missing, lateTrust).first_difference).toMatch(/^\$\.(adjustments|amount_due_micros)/);

    // the CLI reads the evidence as a stream: valid, and the tampered adjustment named
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-adj-'));
    try {
      fs.writeFileSync(path.join(dir, 'e.json'), JSON.stringify(ev));
      fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify(tampered));
      fs.writeFileSync(path.join(dir, 'trust.json'), JSON.stringify(lateTrust));
      const cli = (f: string) => spawnSync(process.execPath, [BIN, 'settlement', 'verify', f, '--trust', 'trust.json'], { cwd: dir, encoding: 'utf8' });
      const ok = cli('e.json');
      expect(ok.status, ok.stdout + ok.stderr).toBe(0);
      const bad = cli('bad.json');
      expect(bad.status).toBe(1);
      expect(bad.stdout).toContain('ADJUSTMENT_SIGNATURE_INVALID');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('two runs of one tenant at once (other windows): a pending adjustment is claimed by exactly one', async () => {
    await tenant('t_adj_race');
    const a = await attest('t_adj_race', '2026-05', '/v1/vex', 3);
    await attest('t_adj_race', '2026-06', '/v1/vex', 4);
    const ref = digestBytes(canonicalBytes(a.body.attestation.statement));
    const adj = await s.call('POST', '/v1/settlements/adjustments', { body: { tenant_id: 't_adj_race', kind: 'debit', amount_micros: '9', currency: 'USD', attestation_ids: [ref], reason: 'x' } });
    const [r1, r2] = await Promise.all([run('t_adj_race', '2026-05'), run('t_adj_race', '2026-06')]);
    expect([r1.status, r2.status]).toEqual([201, 201]);
    const holders = [r1, r2].filter((r) => r.body.settlement.statement.adjustments.items.length === 1);
    expect(holders).toHaveLength(1);
    expect((await s.call('GET', `/v1/settlements/adjustments/${adj.body.id}`)).body.settlement_id).toBe(holders[0]!.body.id);
  });

  it('a run in pages of 2, checked on worker threads, equals the in-memory result over the same statements', async () => {
    await tenant('t_pages');
    for (let i = 0; i < 9; i++) await attest('t_pages', '2026-05', i % 3 ? '/v1/vex' : '/v1/fu', 1000 * (i + 1), i === 4 ? 'error' : 'success');
    const svc = s.container.deps.settlements;
    const [page, evidencePage] = [svc.pageSize, svc.evidencePageSize];
    svc.pageSize = 2;
    svc.evidencePageSize = 2;
    svc.parallelFrom = 1; // the statements checked on worker threads, as for a large window
    let st: any;
    let ev: any;
    try {
      const r = (await run('t_pages', '2026-05')).body;
      st = r.settlement.statement;
      ev = await evidenceOf(r.id);
    } finally {
      svc.pageSize = page;
      svc.evidencePageSize = evidencePage;
      svc.parallelFrom = 20_000;
    }
    expect(ev.attestations).toHaveLength(9);
    // in memory: every statement at once, the Merkle root over all leaves (RFC 6962 recursion)
    const acc = new SettlementAccumulator('t_pages', '2026-05', ev.plan);
    const leaves: Uint8Array[] = [];
    for (const a of ev.attestations) {
      const d = digestBytes(canonicalBytes(a.statement));
      acc.add(d, a.statement);
      leaves.push(leafHash(fromHex(d.slice(7))!));
    }
    const heads = new Map<string, bigint>(st.chains.map((c: any) => [c.id, BigInt(c.count)]));
    expect(acc.finish({ heads, issuedAt: st.issued_at, keyId: st.key_id })).toEqual(st);
    expect(st.attestations.merkle_root).toBe(toHex(rootFromLeafHashes(leaves)));
  });
});
