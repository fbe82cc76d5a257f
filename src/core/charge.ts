// The charge engine (docs/protocol.md §2.3): exact, deterministic bigint arithmetic. This is the reference
// the circuit must agree with. Every out-of-range value is a ChargeError with a stable code.
import { ChargeError } from './errors.ts';
import { OUTCOMES, ROUNDING_MODES, MAX_TIERS, type TariffSnapshot } from './schemas.ts';
import { U64_MAX } from './u64.ts';

export type Outcome = (typeof OUTCOMES)[number];
export type RoundingMode = (typeof ROUNDING_MODES)[number];

/** A tariff reduced to what the arithmetic needs. A linear tariff is one tier with upTo null. */
export interface PricingTariff {
  readonly tiers: readonly { readonly upTo: bigint | null; readonly price: bigint }[];
  readonly quantum: bigint;
  readonly min: bigint;
  readonly max: bigint;
  readonly rounding: RoundingMode;
}

export interface UsageInput {
  readonly units: bigint;
  readonly outcome: Outcome;
  /** Running total of billable units of this tenant, meter and window before this event. */
  readonly cumulativeBefore: bigint;
}

export interface ChargeBreakdown {
  readonly charge: bigint;
  readonly billable: boolean;
  /** Σ units_in_tier × price_in_tier, before division by the quantum. */
  readonly raw: bigint;
  readonly quotient: bigint;
  readonly remainder: bigint;
  /** The quotient after rounding, before clamping. */
  readonly rounded: bigint;
  readonly tierUnits: readonly bigint[];
  readonly clamped: 'min' | 'max' | null;
}

function inU64(v: bigint): boolean {
  return v >= 0n && v <= U64_MAX;
}

function parseU64(s: string, code: ConstructorParameters<typeof ChargeError>[0], field: string): bigint {
  let v: bigint;
  try {
    v = BigInt(s);
  } catch {
    throw new ChargeError(code, `${field} is not an integer`, field);
  }
  if (!inU64(v)) throw new ChargeError(code, `${field} must be an integer in [0, 2^64)`, field);
  return v;
}

/** Validate a canonical tariff snapshot and reduce it to bigints. */
export function pricingFromTariff(t: TariffSnapshot): PricingTariff {
  const quantum = parseU64(t.unit_quantum, 'QUANTUM_OUT_OF_RANGE', 'unit_quantum');
  if (quantum === 0n) throw new ChargeError('QUANTUM_OUT_OF_RANGE', 'unit_quantum must be at least 1', 'unit_quantum');
  const min = parseU64(t.min_charge_micros, 'MIN_OUT_OF_RANGE', 'min_charge_micros');
  const max = parseU64(t.max_charge_micros, 'MAX_OUT_OF_RANGE', 'max_charge_micros');
  if (min > max) throw new ChargeError('MIN_EXCEEDS_MAX', 'min_charge_micros exceeds max_charge_micros', 'min_charge_micros');
  if (!(ROUNDING_MODES as readonly string[]).includes(t.rounding_mode)) {
    throw new ChargeError('ROUNDING_MODE_INVALID', `unknown rounding_mode ${String(t.rounding_mode)}`, 'rounding_mode');
  }
  let tiers: { upTo: bigint | null; price: bigint }[];
  if (t.tariff_class === 'usage_linear') {
    if ('tiers' in t) throw new ChargeError('TARIFF_CLASS_MISMATCH', 'usage_linear takes unit_price_micros, not tiers', 'tiers');
    tiers = [{ upTo: null, price: parseU64(t.unit_price_micros, 'PRICE_OUT_OF_RANGE', 'unit_price_micros') }];
  } else if (t.tariff_class === 'usage_graduated') {
    if ('unit_price_micros' in t) {
      throw new ChargeError('TARIFF_CLASS_MISMATCH', 'usage_graduated takes tiers, not unit_price_micros', 'unit_price_micros');
    }
    if (!Array.isArray(t.tiers) || t.tiers.length === 0 || t.tiers.length > MAX_TIERS) {
      throw new ChargeError('TIERS_INVALID', `a graduated tariff has 1 to ${MAX_TIERS} tiers`, 'tiers');
    }
    tiers = t.tiers.map((tier, i) => {
      const last = i === t.tiers.length - 1;
      const field = `tiers.${i}.up_to`;
      if (last !== (tier.up_to === null)) {
        throw new ChargeError('TIERS_INVALID', 'the last tier, and only the last, has up_to null', field);
      }
      const upTo = tier.up_to === null ? null : parseU64(tier.up_to, 'TIERS_INVALID', field);
      if (upTo === 0n) throw new ChargeError('TIERS_INVALID', 'up_to must be at least 1', field);
      return { upTo, price: parseU64(tier.unit_price_micros, 'PRICE_OUT_OF_RANGE', `tiers.${i}.unit_price_micros`) };
    });
    for (let i = 1; i < tiers.length - 1; i++) {
      if (tiers[i]!.upTo! <= tiers[i - 1]!.upTo!) {
        throw new ChargeError('TIERS_NOT_INCREASING', 'tier up_to values must be strictly increasing', `tiers.${i}.up_to`);
      }
    }
  } else {
    throw new ChargeError('TARIFF_CLASS_MISMATCH', 'unknown tariff_class', 'tariff_class');
  }
  return { tiers, quantum, min, max, rounding: t.rounding_mode };
}

/** round(raw / quantum) in the given mode; returns [quotient, remainder, rounded]. */
export function roundDiv(raw: bigint, quantum: bigint, mode: RoundingMode): [bigint, bigint, bigint] {
  const q = raw / quantum;
  const r = raw % quantum;
  let up: boolean;
  switch (mode) {
    case 'floor':
      up = false;
      break;
    case 'ceil':
      up = r > 0n;
      break;
    case 'half_up':
      up = 2n * r >= quantum && r > 0n;
      break;
    case 'half_even':
      up = 2n * r > quantum || (2n * r === quantum && r > 0n && q % 2n === 1n);
      break;
  }
  return [q, r, up ? q + 1n : q];
}

/** The charge of one event (docs/protocol.md §2.3). */
export function computeCharge(usage: UsageInput, tariff: PricingTariff): ChargeBreakdown {
  if (!inU64(usage.units)) throw new ChargeError('UNITS_OUT_OF_RANGE', 'usage_units must be in [0, 2^64)', 'usage_units');
  if (!inU64(usage.cumulativeBefore)) {
    throw new ChargeError('CUMULATIVE_OUT_OF_RANGE', 'cumulative_units_before must be in [0, 2^64)', 'cumulative_units_before');
  }
  if (!(OUTCOMES as readonly string[]).includes(usage.outcome)) {
    throw new ChargeError('OUTCOME_INVALID', `unknown outcome ${String(usage.outcome)}`, 'outcome');
  }
  const billable = usage.outcome === 'success' || usage.outcome === 'partial';
  const tierUnits: bigint[] = tariff.tiers.map(() => 0n);
  if (!billable) return { charge: 0n, billable, raw: 0n, quotient: 0n, remainder: 0n, rounded: 0n, tierUnits, clamped: null };

  // The event covers unit positions [start, end); tier i covers [upTo_{i-1}, upTo_i).
  const start = usage.cumulativeBefore;
  const end = start + usage.units;
  let raw = 0n;
  let lo = 0n;
  tariff.tiers.forEach((tier, i) => {
    const hi = tier.upTo;
    const a = start > lo ? start : lo;
    const b = hi === null || end < hi ? end : hi;
    const n = b > a ? b - a : 0n;
    tierUnits[i] = n;
    raw += n * tier.price;
    if (hi !== null) lo = hi;
  });
  const [quotient, remainder, rounded] = roundDiv(raw, tariff.quantum, tariff.rounding);
  let charge = rounded;
  let clamped: ChargeBreakdown['clamped'] = null;
  if (charge < tariff.min) [charge, clamped] = [tariff.min, 'min'];
  else if (charge > tariff.max) [charge, clamped] = [tariff.max, 'max'];
  return { charge, billable, raw, quotient, remainder, rounded, tierUnits, clamped };
}

/** Units this event adds to the running total: only billable outcomes advance it (docs/protocol.md §2.3, §2.5). */
export function unitsAdvanced(outcome: Outcome, units: bigint): bigint {
  return outcome === 'success' || outcome === 'partial' ? units : 0n;
}
