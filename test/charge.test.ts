import { describe, expect, it } from 'vitest';
import { computeCharge, pricingFromTariff, roundDiv, type PricingTariff, type RoundingMode, type Outcome } from '../src/core/charge.ts';
import { ChargeError } from '../src/core/errors.ts';
import { normalizeTariff } from '../src/core/attest.ts';
import { U64_MAX } from '../src/core/u64.ts';
import { pilotTariff, graduatedTariff } from './support/fixtures.ts';

const MODES: RoundingMode[] = ['floor', 'ceil', 'half_up', 'half_even'];
const OUTCOMES: Outcome[] = ['success', 'error', 'timeout', 'partial'];

/** A deliberately naive second implementation: price unit by unit, round by comparing
 *  candidate quotients with multiplication only. Only for small domains. */
function naiveCharge(units: number, outcome: Outcome, cumulative: number, t: PricingTariff): bigint {
  if (outcome === 'error' || outcome === 'timeout') return 0n;
  let raw = 0n;
  for (let pos = cumulative; pos < cumulative + units; pos++) {
    let lo = 0n;
    for (const tier of t.tiers) {
      if (BigInt(pos) >= lo && (tier.upTo === null || BigInt(pos) < tier.upTo)) {
        raw += tier.price;
        break;
      }
      lo = tier.upTo!;
    }
  }
  let q = 0n;
  while ((q + 1n) * t.quantum <= raw) q++;
  const twiceRem = 2n * (raw - q * t.quantum);
  let rounded = q;
  if (raw !== q * t.quantum) {
    if (t.rounding === 'ceil') rounded = q + 1n;
    if (t.rounding === 'half_up' && twiceRem >= t.quantum) rounded = q + 1n;
    if (t.rounding === 'half_even' && (twiceRem > t.quantum || (twiceRem === t.quantum && q % 2n === 1n))) rounded = q + 1n;
  }
  if (rounded < t.min) return t.min;
  if (rounded > t.max) return t.max;
  return rounded;
}

const charge = (units: bigint, outcome: Outcome, c: bigint, t: PricingTariff) => computeCharge({ units, outcome, cumulativeBefore: c }, t).charge;

describe('charge engine: hand-written cases', () => {
  it("prices the seed's pilot: 1,842 units × 120 micros, floor, 50,000 minimum → 221,040 micros", () => {
    const t = pricingFromTariff(normalizeTariff(pilotTariff));
    expect(charge(1842n, 'success', 0n, t)).toBe(221_040n);
  });
  it('applies the minimum to small billable events, not to error or timeout', () => {
    const t = pricingFromTariff(normalizeTariff(pilotTariff));
    expect(charge(10n, 'success', 0n, t)).toBe(50_000n);
    expect(charge(10n, 'partial', 0n, t)).toBe(50_000n);
    expect(charge(1842n, 'error', 0n, t)).toBe(0n);
    expect(charge(1842n, 'timeout', 0n, t)).toBe(0n);
    expect(computeCharge({ units: 0n, outcome: 'success', cumulativeBefore: 0n }, t).clamped).toBe('min');
  });
  it('applies the maximum', () => {
    const t = pricingFromTariff(normalizeTariff({ ...pilotTariff, max_charge_micros: 1_000_000 }));
    expect(charge(1_000_000n, 'success', 0n, t)).toBe(1_000_000n);
  });
  it('splits graduated tiers over the running total', () => {
    const t = pricingFromTariff(normalizeTariff(graduatedTariff));
    // entirely in tier 1
    expect(charge(100n, 'success', 0n, t)).toBe(500_000n);
    // straddles the 50,000 boundary: 10 units at 5,000 and 20 at 8,000
    expect(charge(30n, 'success', 49_990n, t)).toBe(10n * 5000n + 20n * 8000n);
    // starts exactly at the boundary: all tier 2
    expect(charge(3n, 'success', 50_000n, t)).toBe(24_000n);
    // ends exactly at the boundary: all tier 1
    expect(charge(10n, 'success', 49_990n, t)).toBe(50_000n);
  });
  it('divides by unit_quantum with each rounding mode', () => {
    const base = { ...pilotTariff, min_charge_micros: 0, unit_price_micros: 3, unit_quantum: 2 };
    const at = (mode: RoundingMode, units: bigint) => charge(units, 'success', 0n, pricingFromTariff(normalizeTariff({ ...base, rounding_mode: mode })));
    // 1 unit × 3 = 3 → 1.5 quanta; 3 units × 3 = 9 → 4.5 quanta
    expect([at('floor', 1n), at('ceil', 1n), at('half_up', 1n), at('half_even', 1n)]).toEqual([1n, 2n, 2n, 2n]);
    expect([at('floor', 3n), at('ceil', 3n), at('half_up', 3n), at('half_even', 3n)]).toEqual([4n, 5n, 5n, 4n]);
    expect(roundDiv(7n, 1000n, 'half_up')).toEqual([0n, 7n, 0n]);
    expect(roundDiv(500n, 1000n, 'half_up')[2]).toBe(1n);
    expect(roundDiv(500n, 1000n, 'half_even')[2]).toBe(0n);
    expect(roundDiv(1500n, 1000n, 'half_even')[2]).toBe(2n);
    expect(roundDiv(1001n, 1000n, 'ceil')[2]).toBe(2n);
  });
  it('handles the extremes of u64 exactly', () => {
    const t = pricingFromTariff(normalizeTariff({ ...pilotTariff, min_charge_micros: 0, max_charge_micros: U64_MAX.toString(), unit_price_micros: U64_MAX.toString() }));
    expect(computeCharge({ units: U64_MAX, outcome: 'success', cumulativeBefore: U64_MAX }, t).raw).toBe(U64_MAX * U64_MAX);
    expect(charge(U64_MAX, 'success', 0n, t)).toBe(U64_MAX);
  });
});

describe('charge engine: named errors for out-of-range values', () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e instanceof ChargeError ? e.code : `not a ChargeError: ${String(e)}`;
    }
    return 'no error';
  };
  const lin = (over: Record<string, unknown>) => () => normalizeTariff({ ...pilotTariff, ...over });
  it('rejects min > max, zero quantum and bad tiers', () => {
    expect(code(lin({ min_charge_micros: 10, max_charge_micros: 9 }))).toBe('MIN_EXCEEDS_MAX');
    expect(code(lin({ unit_quantum: 0 }))).toBe('QUANTUM_OUT_OF_RANGE');
    const g = (tiers: unknown) => () => normalizeTariff({ ...graduatedTariff, tiers });
    expect(code(g([{ up_to: 10, unit_price_micros: 1 }, { up_to: 10, unit_price_micros: 1 }, { up_to: null, unit_price_micros: 1 }]))).toBe('TIERS_NOT_INCREASING');
    expect(code(g([{ up_to: 10, unit_price_micros: 1 }, { up_to: 5, unit_price_micros: 1 }, { up_to: null, unit_price_micros: 1 }]))).toBe('TIERS_NOT_INCREASING');
    expect(code(g([{ up_to: 10, unit_price_micros: 1 }]))).toBe('TIERS_INVALID');
    expect(code(g([{ up_to: null, unit_price_micros: 1 }, { up_to: null, unit_price_micros: 1 }]))).toBe('TIERS_INVALID');
    expect(code(g([{ up_to: 0, unit_price_micros: 1 }, { up_to: null, unit_price_micros: 1 }]))).toBe('TIERS_INVALID');
  });
  it('rejects units and running totals outside [0, 2^64)', () => {
    const t = pricingFromTariff(normalizeTariff(pilotTariff));
    expect(code(() => charge(U64_MAX + 1n, 'success', 0n, t))).toBe('UNITS_OUT_OF_RANGE');
    expect(code(() => charge(-1n, 'success', 0n, t))).toBe('UNITS_OUT_OF_RANGE');
    expect(code(() => charge(1n, 'success', U64_MAX + 1n, t))).toBe('CUMULATIVE_OUT_OF_RANGE');
    expect(code(() => charge(1n, 'refunded' as Outcome, 0n, t))).toBe('OUTCOME_INVALID');
  });
  it('rejects 2^64 in every amount field at the schema (decimal strings) and the engine (bigints)', () => {
    const big = (2n ** 64n).toString();
    for (const f of ['unit_price_micros', 'min_charge_micros', 'max_charge_micros', 'unit_quantum']) {
      expect(() => normalizeTariff({ ...pilotTariff, [f]: big })).toThrow();
      expect(() => normalizeTariff({ ...pilotTariff, [f]: -1 })).toThrow();
    }
    const t = normalizeTariff(pilotTariff);
    for (const [f, c] of [
      ['unit_price_micros', 'PRICE_OUT_OF_RANGE'],
      ['min_charge_micros', 'MIN_OUT_OF_RANGE'],
      ['max_charge_micros', 'MAX_OUT_OF_RANGE'],
      ['unit_quantum', 'QUANTUM_OUT_OF_RANGE'],
    ] as const) {
      expect(code(() => pricingFromTariff({ ...t, [f]: big } as typeof t))).toBe(c);
    }
  });
});

describe('charge engine agrees with a naive unit-by-unit implementation', () => {
  it('exhaustively over a small domain (every mode, outcome, quantum 1–4, tier shape, c and u ≤ 9)', () => {
    const tierShapes: PricingTariff['tiers'][] = [
      [{ upTo: null, price: 3n }],
      [{ upTo: 4n, price: 5n }, { upTo: null, price: 2n }],
      [{ upTo: 2n, price: 7n }, { upTo: 5n, price: 0n }, { upTo: 6n, price: 11n }, { upTo: null, price: 1n }],
    ];
    let n = 0;
    for (const tiers of tierShapes)
      for (const rounding of MODES)
        for (const quantum of [1n, 2n, 3n, 4n])
          for (const [min, max] of [[0n, U64_MAX], [5n, 20n]] as const) {
            const t: PricingTariff = { tiers, quantum, min, max, rounding };
            for (const outcome of OUTCOMES)
              for (let c = 0; c <= 9; c++)
                for (let u = 0; u <= 9; u++) {
                  expect(charge(BigInt(u), outcome, BigInt(c), t), `${JSON.stringify({ c, u, outcome, rounding, quantum: String(quantum) })}`).toBe(naiveCharge(u, outcome, c, t));
                  n++;
                }
          }
    expect(n).toBe(3 * 4 * 4 * 2 * 4 * 100);
  });
});

/** Deterministic PRNG (xorshift128+) so random cases are reproducible. */
function rng(seed: bigint) {
  let s0 = seed | 1n, s1 = (seed * 6364136223846793005n) | 1n;
  const M = (1n << 64n) - 1n;
  return (): bigint => {
    let x = s0;
    const y = s1;
    s0 = y;
    x = (x ^ (x << 23n)) & M;
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return (s1 + y) & M;
  };
}

describe('charge engine: random cases up to 2^64 − 1', () => {
  it('satisfies the defining identities on 5,000 random inputs', () => {
    const next = rng(20261123n);
    const pick = () => {
      const r = next();
      const bits = r % 65n;
      return bits === 64n ? U64_MAX : next() % (1n << bits);
    };
    for (let i = 0; i < 5000; i++) {
      const k = Number(next() % 4n) + 1;
      const bounds = Array.from({ length: k - 1 }, () => pick() + 1n).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const uniq = [...new Set(bounds)];
      const tiers = [...uniq.map((b) => ({ upTo: b as bigint | null, price: pick() })), { upTo: null, price: pick() }];
      let [min, max] = [pick(), pick()];
      if (min > max) [min, max] = [max, min];
      const t: PricingTariff = { tiers, quantum: pick() + 1n > U64_MAX ? U64_MAX : pick() + 1n, min, max, rounding: MODES[Number(next() % 4n)]! };
      const units = pick();
      const c = pick();
      const out = computeCharge({ units, outcome: 'success', cumulativeBefore: c }, t);
      // units are conserved across tiers, raw is their priced sum, and division is exact
      expect(out.tierUnits.reduce((a, b) => a + b, 0n)).toBe(units);
      expect(out.raw).toBe(out.tierUnits.reduce((a, n, j) => a + n * tiers[j]!.price, 0n));
      expect(out.quotient * t.quantum + out.remainder).toBe(out.raw);
      expect(out.remainder < t.quantum).toBe(true);
      expect(out.rounded - out.quotient === 0n || out.rounded - out.quotient === 1n).toBe(true);
      expect(out.charge >= t.min && out.charge <= t.max && out.charge <= U64_MAX).toBe(true);
      // tier units follow positions [c, c+u)
      let lo = 0n;
      tiers.forEach((tier, j) => {
        const hi = tier.upTo ?? 1n << 66n;
        const a = c > lo ? c : lo;
        const b = c + units < hi ? c + units : hi;
        expect(out.tierUnits[j]).toBe(b > a ? b - a : 0n);
        lo = hi;
      });
      expect(computeCharge({ units, outcome: 'timeout', cumulativeBefore: c }, t).charge).toBe(0n);
    }
  });
});
