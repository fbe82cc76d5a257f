// The pure settlement arithmetic: fee rounding, overage tiers, reserved capacity, and the
// accumulator's completeness checks over real signed statements.
import { describe, expect, it } from 'vitest';
import { GENESIS, attestEvent, normalizeMeterEvent, normalizeTariff } from '../src/core/attest.ts';
import { ceilDiv, meterCharges, slaOf, overageByTier, platformFee, SettlementAccumulator, SettlementError, settlementDigest } from '../src/core/settlement.ts';
import { normalizePlan, PlanError, type Plan } from '../src/core/plan.ts';
import type { Statement } from '../src/core/schemas.ts';
import type { ChainLink } from '../src/core/statement.ts';
import { keyA, pilotEvent, pilotTariff } from './support/fixtures.ts';

const seedTiers = [
  { up_to: '50000', unit_price_micros: '5000' },
  { up_to: null, unit_price_micros: '8000' },
];

function plan(over: Record<string, unknown> = {}, meter: Record<string, unknown> = {}): Plan {
  return normalizePlan({
    plan_id: 'starter',
    plan_version: '1',
    currency: 'USD',
    fixed_fee_micros: 499_000_000,
    platform_fee_bps: 250,
    meters: [{ endpoint: '/v1/completions', tariff: { tariff_id: 'tariff_default', tariff_version: '1.0.0' }, overage_tiers: seedTiers, ...meter }],
    ...over,
  });
}

describe('fee arithmetic', () => {
  it('ceilDiv rounds up exactly at the edges', () => {
    expect(ceilDiv(0n, 10_000n)).toBe(0n);
    expect(ceilDiv(1n, 10_000n)).toBe(1n);
    expect(ceilDiv(9_999n, 10_000n)).toBe(1n);
    expect(ceilDiv(10_000n, 10_000n)).toBe(1n);
    expect(ceilDiv(10_001n, 10_000n)).toBe(2n);
    expect(() => ceilDiv(1n, 0n)).toThrow(RangeError);
  });

  it('platform fee is the ceiling of amount × bps / 10,000', () => {
    expect(platformFee(330_000_000n, 250)).toBe(8_250_000n); // exact: no rounding
    expect(platformFee(330_000_001n, 250)).toBe(8_250_001n); // 8,250,000.025 → up
    expect(platformFee(39n, 250)).toBe(1n); // 0.975 → 1
    expect(platformFee(40n, 250)).toBe(1n); // exactly 1
    expect(platformFee(41n, 250)).toBe(2n); // 1.025 → 2
    expect(platformFee(1n, 1)).toBe(1n); // the smallest share of the smallest amount is not 0
    expect(platformFee(0n, 10_000)).toBe(0n);
    expect(platformFee(123_456_789n, 10_000)).toBe(123_456_789n);
    expect(platformFee(123_456_789n, 0)).toBe(0n);
    // beyond 2^64: bigint, no overflow
    expect(platformFee(2n ** 70n + 1n, 1)).toBe((2n ** 70n + 1n + 9_999n) / 10_000n);
  });
});

describe('SLA', () => {
  const counts = (success: number, error: number, timeout: number, partial = 0) => ({ success: { events: BigInt(success) }, error: { events: BigInt(error) }, timeout: { events: BigInt(timeout) }, partial: { events: BigInt(partial) } });
  it('uptime in basis points, rounded down; compliance against the contract', () => {
    expect(slaOf(counts(9_990, 5, 5), 9_990)).toMatchObject({ actual_uptime_bps: 9_990, compliant: true });
    expect(slaOf(counts(9_989, 6, 5), 9_990)).toMatchObject({ actual_uptime_bps: 9_989, compliant: false });
    expect(slaOf(counts(2, 0, 1), 6_666)).toMatchObject({ actual_uptime_bps: 6_666, compliant: true }); // 6,666.67 → 6,666
    expect(slaOf(counts(0, 0, 0, 3), 10_000)).toMatchObject({ actual_uptime_bps: 10_000, compliant: true }); // partial is up
    expect(slaOf(counts(0, 0, 0), 9_000)).toMatchObject({ actual_uptime_bps: null, compliant: null });
    expect(slaOf(counts(1, 1, 0), undefined)).toMatchObject({ contracted_uptime_bps: null, actual_uptime_bps: 5_000, compliant: null });
  });
});

describe('overage tiers and reserved capacity', () => {
  it('the seed example: $0.005 up to 50,000 units, $0.008 beyond', () => {
    const at = (u: bigint) => overageByTier(plan().meters[0]!.overage_tiers, u);
    expect(at(60_000n).micros).toBe(50_000n * 5_000n + 10_000n * 8_000n); // $330
    expect(at(60_000n).lines.map((l) => l.units)).toEqual(['50000', '10000']);
    expect(at(50_000n).micros).toBe(250_000_000n);
    expect(at(50_001n).micros).toBe(250_008_000n);
    expect(at(49_999n).lines.map((l) => l.units)).toEqual(['49999', '0']);
    expect(at(0n).micros).toBe(0n);
  });

  it('included units first, then reserved, then overage; the unused reservation is the true-up', () => {
    const m = plan({}, { included_units: 10_000, reserved_units: 100_000, reserved_unit_price_micros: 4_000 }).meters[0]!;
    const low = meterCharges(m, 30_000n);
    expect(low).toMatchObject({ included_used_units: '10000', reserved_used_units: '20000', reserved_unused_units: '80000', reserved_micros: '400000000', true_up_micros: '320000000', overage_units: '0', overage_micros: '0', total_micros: '400000000' });
    const high = meterCharges(m, 170_000n);
    expect(high).toMatchObject({ reserved_used_units: '100000', reserved_unused_units: '0', true_up_micros: '0', overage_units: '60000', overage_micros: '330000000', total_micros: '730000000' });
    expect(meterCharges(m, 5_000n)).toMatchObject({ included_used_units: '5000', reserved_used_units: '0', true_up_micros: '400000000' });
  });

  it('refuses tiers that do not increase or do not end open, and duplicate meters', () => {
    const bad = (tiers: unknown) => () => plan({}, { overage_tiers: tiers });
    expect(bad([{ up_to: 10, unit_price_micros: 1 }])).toThrow(PlanError);
    expect(bad([{ up_to: 10, unit_price_micros: 1 }, { up_to: 10, unit_price_micros: 1 }, { up_to: null, unit_price_micros: 1 }])).toThrow(PlanError);
    expect(bad([{ up_to: null, unit_price_micros: 1 }, { up_to: null, unit_price_micros: 1 }])).toThrow(PlanError);
    const m = { endpoint: '/a', tariff: { tariff_id: 't', tariff_version: '1' }, overage_tiers: [{ up_to: null, unit_price_micros: 1 }] };
    expect(() => plan({ meters: [m, m] })).toThrow(expect.objectContaining({ code: 'PLAN_METERS_DUPLICATE' }));
    expect(() => plan({ platform_fee_bps: 10_001 })).toThrow();
    expect(() => plan({ fixed_fee_micros: -1 })).toThrow();
  });

  it('normalizes: defaults explicit, meters sorted, one digest for equal content', () => {
    const a = plan({ meters: [
      { endpoint: '/b', tariff: { tariff_id: 't', tariff_version: '1' }, overage_tiers: [{ up_to: null, unit_price_micros: 1 }] },
      { endpoint: '/a', tariff: { tariff_id: 't', tariff_version: '1' }, overage_tiers: [{ up_to: null, unit_price_micros: '1' }] },
    ] });
    expect(a.meters.map((m) => m.endpoint)).toEqual(['/a', '/b']);
    expect(a.meters[0]).toMatchObject({ included_units: '0', reserved_units: '0', reserved_unit_price_micros: '0' });
    expect(a.late_events).toBe('refuse');
  });
});

/** A chain of signed v2 statements of one meter. */
function chainOf(endpoint: string, units: number[], outcomes: string[] = [], saltBase = 11n) {
  const tariff = normalizeTariff(pilotTariff);
  let link: ChainLink = GENESIS;
  return units.map((u, i) => {
    const event = normalizeMeterEvent({ ...pilotEvent, event_id: `${endpoint}-${i}`, endpoint, usage_units: u, outcome: outcomes[i] ?? 'success' });
    const r = attestEvent({ event, tariff, key: keyA, chain: link, issuedAt: '2026-05-29T12:00:00.000Z', eventSalt: saltBase + BigInt(i), tariffSalt: 5n });
    link = r.next;
    return { digest: r.statementDigest, statement: r.statement as Statement };
  });
}

describe('the accumulator', () => {
  const p = () => plan({ platform_fee_bps: 250, fixed_fee_micros: 0 });
  const settle = (items: { digest: string; statement: Statement }[], heads?: Map<string, bigint>) => {
    const acc = new SettlementAccumulator('tenant_acme', '2026-05', p());
    const sorted = [...items].sort((a, b) => (a.statement.chain.id < b.statement.chain.id ? -1 : a.statement.chain.id > b.statement.chain.id ? 1 : Number(BigInt(a.statement.chain.seq) - BigInt(b.statement.chain.seq))));
    for (const it of sorted) acc.add(it.digest, it.statement);
    const h = heads ?? new Map([[items[0]!.statement.chain.id, BigInt(items.length)]]);
    return acc.finish({ heads: h, issuedAt: '2026-06-01T00:00:00.000Z', keyId: keyA.keyId });
  };

  it('the seed example end to end: 60,000 billable units → $330, fee ⌈$8.25⌉; errors count, not bill', () => {
    const items = chainOf('/v1/completions', [30_000, 25_000, 999, 5_000], ['success', 'success', 'error', 'partial']);
    const s = settle(items);
    expect(s.meters[0]).toMatchObject({ events: '4', billable_units: '60000', overage_micros: '330000000', total_micros: '330000000' });
    expect(s.outcomes.error).toEqual({ events: '1', units: '999' });
    expect(s.total_micros).toBe('330000000');
    expect(s.platform_fee_micros).toBe('8250000');
    expect(s.net_micros).toBe('321750000');
    expect(s.chains).toEqual([{ id: items[0]!.statement.chain.id, endpoint: '/v1/completions', first_seq: '0', last_seq: '3', count: '4', last_digest: items[3]!.digest }]);
    expect(settlementDigest(s)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('a missing statement fails with CHAIN_GAP; a trailing one missing with CHAIN_INCOMPLETE', () => {
    const items = chainOf('/v1/completions', [1, 2, 3]);
    expect(() => settle([items[0]!, items[2]!], new Map([[items[0]!.statement.chain.id, 3n]]))).toThrow(expect.objectContaining({ code: 'CHAIN_GAP' }));
    expect(() => settle([items[0]!, items[1]!], new Map([[items[0]!.statement.chain.id, 3n]]))).toThrow(expect.objectContaining({ code: 'CHAIN_INCOMPLETE' }));
    expect(() => settle([items[1]!, items[2]!], new Map([[items[0]!.statement.chain.id, 3n]]))).toThrow(expect.objectContaining({ code: 'CHAIN_GAP' }));
  });

  it('a statement that does not link to its predecessor fails with CHAIN_BROKEN', () => {
    const a = chainOf('/v1/completions', [1, 2]);
    const b = chainOf('/v1/completions', [1, 5], [], 99n); // same chain id, another history
    expect(() => settle([a[0]!, b[1]!])).toThrow(expect.objectContaining({ code: 'CHAIN_BROKEN' }));
  });

  it('a meter the plan does not list fails with UNPLANNED_METER', () => {
    const items = chainOf('/v1/other', [1]);
    expect(() => settle(items)).toThrow(SettlementError);
    expect(() => settle(items)).toThrow(expect.objectContaining({ code: 'UNPLANNED_METER' }));
  });

  it('the Merkle root depends on every included digest and their order', () => {
    const items = chainOf('/v1/completions', [1, 2, 3]);
    const s = settle(items);
    expect(settle(chainOf('/v1/completions', [1, 2, 3])).attestations.merkle_root).toBe(s.attestations.merkle_root); // deterministic
    const other = settle(chainOf('/v1/completions', [1, 2, 3], [], 99n));
    expect(other.attestations.merkle_root).not.toBe(s.attestations.merkle_root); // other salts → other digests
    expect(s.attestations.count).toBe('3');
  });
});
