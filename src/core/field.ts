// Field encoding of the ZK binding bn128-poseidon8-v1 (docs/zk-binding.md §1, §2, §9): how a
// meter event and a tariff snapshot become bn128 scalar-field elements — the circuit's inputs and
// the Poseidon preimages of the commitments. Pure: no I/O. Must stay in step with
// circuits/billing.circom; test/circuit.test.ts checks they agree.
import { toHex, utf8 } from './bytes.ts';
import { digestOf } from './canonical.ts';
import { pricingFromTariff, type Outcome, type RoundingMode } from './charge.ts';
import { ChargeError } from './errors.ts';
import type { MeterEvent, TariffSnapshot } from './schemas.ts';
import { MAX_TIERS } from './schemas.ts';
import { U64_MAX } from './u64.ts';

/** The bn128 (alt_bn128, BN254) scalar field modulus p: circuit signals live in Z_p. */
export { BN128_P } from './schemas.ts';
import { BN128_P } from './schemas.ts';

/** Tier-bound padding ("no further bound"). Positions are < 2^65 (c, u < 2^64), so never reach it. */
export const TIER_BOUND_INF = 1n << 65n;
/** Radix of `pack`: every packed value is < 2^66 (u64 numerics, bounds ≤ 2^65, 2-bit codes). */
export const PACK_BITS = 66n;
/** Tiers the circuit has room for (prices P1..P4, bounds B1..B3). */
export const CIRCUIT_TIERS = MAX_TIERS;

export const OUTCOME_CODES: Readonly<Record<Outcome, bigint>> = { success: 0n, error: 1n, timeout: 2n, partial: 3n };
export const ROUNDING_CODES: Readonly<Record<RoundingMode, bigint>> = { floor: 0n, ceil: 1n, half_up: 2n, half_even: 3n };

/** A domain tag: the big-endian integer of an ASCII string of at most 31 bytes (so < 2^248 < p). */
export function asciiTag(s: string): bigint {
  if (!/^[\x20-\x7e]{1,31}$/.test(s)) throw new RangeError('a domain tag is 1 to 31 printable ASCII characters');
  return BigInt(`0x${toHex(utf8(s))}`); // ASCII: its UTF-8 bytes
}

/** Domain tags, one per hash, so no commitment can be reinterpreted as another. */
export const TAG_TARIFF = asciiTag('meterproof.tariff.v1');
export const TAG_EVENT = asciiTag('meterproof.event.v1');
export const TAG_BINDING = asciiTag('meterproof.binding.v1');

/** `sha256:<64 hex>` → its 32 bytes as two big-endian 128-bit integers (hi = bytes 0..15). */
export function digestLimbs(digest: string): { hi: bigint; lo: bigint } {
  const hex = /^sha256:([0-9a-f]{64})$/.exec(digest)?.[1];
  if (hex === undefined) throw new RangeError('expected a digest sha256:<64 lowercase hex>');
  return { hi: BigInt(`0x${hex.slice(0, 32)}`), lo: BigInt(`0x${hex.slice(32)}`) };
}

/** pack(a, b, c) = a + b·2^66 + c·2^132, each value in [0, 2^66): injective, and < 2^198 < p. */
export function pack(...values: readonly bigint[]): bigint {
  if (values.length < 1 || values.length > 3) throw new RangeError('pack takes 1 to 3 values');
  return values.reduce((acc, v, i) => {
    if (v < 0n || v >= 1n << PACK_BITS) throw new RangeError('packed values must be in [0, 2^66)');
    return acc + (v << (PACK_BITS * BigInt(i)));
  }, 0n);
}

export type Quad = readonly [bigint, bigint, bigint, bigint];
export type Triple = readonly [bigint, bigint, bigint];

/** The tariff numerics as the circuit takes them. A linear tariff is one tier; unused tiers have
 *  price 0 and bound TIER_BOUND_INF. Tier i (1-based) covers positions [B_{i-1}, B_i), B_0 = 0. */
export interface TariffNumerics {
  readonly quantum: bigint;
  readonly min: bigint;
  readonly max: bigint;
  readonly rounding: bigint;
  readonly prices: Quad;
  readonly bounds: Triple;
}

export interface TariffEncoding extends TariffNumerics {
  readonly digest: string;
  readonly digestHi: bigint;
  readonly digestLo: bigint;
}

export interface EventEncoding {
  readonly digest: string;
  readonly digestHi: bigint;
  readonly digestLo: bigint;
  readonly units: bigint;
  readonly outcome: bigint;
  readonly cumulativeBefore: bigint;
  readonly blinding: bigint;
}

/** Validates the tariff with the charge engine (throws its ChargeError) and encodes its numerics. */
export function tariffNumerics(tariff: TariffSnapshot): TariffNumerics {
  const p = pricingFromTariff(tariff);
  const prices = [0n, 0n, 0n, 0n];
  const bounds = [TIER_BOUND_INF, TIER_BOUND_INF, TIER_BOUND_INF];
  p.tiers.forEach((tier, i) => {
    prices[i] = tier.price;
    if (tier.upTo !== null) bounds[i] = tier.upTo;
  });
  return {
    quantum: p.quantum,
    min: p.min,
    max: p.max,
    rounding: ROUNDING_CODES[p.rounding],
    prices: prices as unknown as Quad,
    bounds: bounds as unknown as Triple,
  };
}

/** The full tariff encoding: SHA-256 of the canonical snapshot (as limbs) and its numerics. */
export function encodeTariff(tariff: TariffSnapshot): TariffEncoding {
  const numerics = tariffNumerics(tariff);
  const digest = digestOf(tariff);
  const { hi, lo } = digestLimbs(digest);
  return { ...numerics, digest, digestHi: hi, digestLo: lo };
}

/** Encodes the private event data of one proof. Throws on out-of-range values. */
export function encodeEvent(event: MeterEvent, cumulativeBefore: bigint, blinding: bigint): EventEncoding {
  const units = BigInt(event.usage_units);
  if (units < 0n || units > U64_MAX) throw new ChargeError('UNITS_OUT_OF_RANGE', 'usage_units must be in [0, 2^64)', 'usage_units');
  if (cumulativeBefore < 0n || cumulativeBefore > U64_MAX) {
    throw new ChargeError('CUMULATIVE_OUT_OF_RANGE', 'cumulative_units_before must be in [0, 2^64)', 'cumulative_units_before');
  }
  const outcome = OUTCOME_CODES[event.outcome];
  if (outcome === undefined) throw new ChargeError('OUTCOME_INVALID', `unknown outcome ${String(event.outcome)}`, 'outcome');
  assertField(blinding, 'blinding');
  const digest = digestOf(event);
  const { hi, lo } = digestLimbs(digest);
  return { digest, digestHi: hi, digestLo: lo, units, outcome, cumulativeBefore, blinding };
}

export function assertField(v: bigint, what: string): void {
  if (typeof v !== 'bigint' || v < 0n || v >= BN128_P) throw new RangeError(`${what} must be a field element in [0, p)`);
}

/** The 8 Poseidon inputs of the tariff commitment. */
export function tariffHashInputs(t: TariffEncoding): bigint[] {
  return [
    TAG_TARIFF,
    t.digestHi,
    t.digestLo,
    pack(t.quantum, t.min, t.max),
    pack(t.prices[0], t.bounds[0]),
    pack(t.prices[1], t.bounds[1]),
    pack(t.prices[2], t.bounds[2]),
    pack(t.prices[3], t.rounding),
  ];
}

/** The 8 Poseidon inputs of the event commitment (the last one is reserved, 0). */
export function eventHashInputs(e: EventEncoding): bigint[] {
  return [TAG_EVENT, e.digestHi, e.digestLo, e.units, e.outcome, e.cumulativeBefore, e.blinding, 0n];
}

/** The 4 Poseidon inputs of the binding commitment. */
export function bindingHashInputs(eventCommitment: bigint, tariffCommitment: bigint, charge: bigint): bigint[] {
  assertField(eventCommitment, 'event commitment');
  assertField(tariffCommitment, 'tariff commitment');
  if (charge < 0n || charge > U64_MAX) throw new RangeError('charge must be in [0, 2^64)');
  return [TAG_BINDING, eventCommitment, tariffCommitment, charge];
}

/** The private, event- and tariff-derived part of the witness input (circuit signal names). */
export function privateCircuitInputs(e: EventEncoding, t: TariffEncoding): Record<string, string | string[]> {
  const s = (v: bigint) => v.toString();
  return {
    event_digest_hi: s(e.digestHi),
    event_digest_lo: s(e.digestLo),
    usage_units: s(e.units),
    outcome: s(e.outcome),
    cumulative_units_before: s(e.cumulativeBefore),
    blinding: s(e.blinding),
    tariff_digest_hi: s(t.digestHi),
    tariff_digest_lo: s(t.digestLo),
    unit_quantum: s(t.quantum),
    min_charge_micros: s(t.min),
    max_charge_micros: s(t.max),
    rounding_mode: s(t.rounding),
    tier_price: t.prices.map(s),
    tier_bound: t.bounds.map(s),
  };
}
