// The witness model of the charge arithmetic shared by bn128-poseidon8-v1 (circuits/billing.circom)
// and bn128-poseidon8-v2 (circuits/v2/charge_v2.circom, the same arithmetic as one template): every
// signal that depends on a hint, a gadget output or the charge, computed with the circuits' own
// formulas, so a test can patch an honest witness with one consistent lie (test/circuit-negative
// and test/circuit-v2-negative). Signal names are relative to a prefix: `main.` for v1,
// `main.engine.` for v2.
import { BN128_P, TIER_BOUND_INF } from '../../src/core/field.ts';

const P = BN128_P;
const TWO64 = 1n << 64n;
const INF = TIER_BOUND_INF;
export const mod = (x: bigint) => ((x % P) + P) % P;
export type Input = Record<string, string | string[]>;

/** x^-1 mod p (Fermat). */
export function inv(x: bigint): bigint {
  let [b, e, r] = [mod(x), P - 2n, 1n];
  while (e > 0n) {
    if (e & 1n) r = (r * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return r;
}

/** Floor division and the remainder in [0, d) (BigInt's / truncates towards 0). */
export function euclid(a: bigint, d: bigint): [bigint, bigint] {
  let q = a / d;
  if (a % d !== 0n && a < 0n) q -= 1n;
  return [q, a - q * d];
}

/** The circuit numerics of an input object (integers). */
export interface Numerics {
  u: bigint;
  c: bigint;
  outcome: bigint;
  quantum: bigint;
  min: bigint;
  max: bigint;
  mode: bigint;
  prices: bigint[];
  bounds: bigint[];
}

export function numericsOf(i: Input): Numerics {
  const n = (k: string) => BigInt(i[k] as string);
  return {
    u: n('usage_units'),
    c: n('cumulative_units_before'),
    outcome: n('outcome'),
    quantum: n('unit_quantum'),
    min: n('min_charge_micros'),
    max: n('max_charge_micros'),
    mode: n('rounding_mode'),
    prices: (i.tier_price as string[]).map(BigInt),
    bounds: (i.tier_bound as string[]).map(BigInt),
  };
}

/** What a cheating prover chooses; unset, everything is honest. The hints (`<--`) of the circuit
 *  are the tier indices and the division; `set` overrides any other signal of the model by name
 *  (a gadget's output, a bit, an intermediate), and everything downstream is computed from the
 *  overridden value, so the one lie is the only inconsistency. */
export interface Tamper {
  /** tier index hints (k = k0 + 2·k1) of MinWithBounds for c and for c + u */
  kStart?: bigint;
  kEnd?: bigint;
  /** quotient and remainder hints of the division of the raw charge by the quantum (if only q
   *  is given, r = raw − q·Q) */
  q?: bigint;
  r?: bigint;
  set?: Readonly<Record<string, bigint>>;
}

/** Every signal of main outside the commitments that depends on a hint, a gadget output or the
 *  charge, computed with the formulas of billing.circom / billing_lib.circom (integers, stored
 *  mod p), for the prover's choices t. Returns the signals and the charge they compute. */
export function model(n: Numerics, t: Tamper, p = 'main.'): { signals: Map<string, bigint>; charge: bigint } {
  const s = new Map<string, bigint>();
  const used = new Set<string>();
  /** records signal `name` (the override if there is one) and returns its value */
  const sig = (name: string, v: bigint): bigint => {
    const o = t.set?.[name];
    if (o !== undefined) used.add(name);
    const x = o ?? v;
    s.set(name, mod(x));
    return x;
  };
  const bitsOf = (v: bigint, len: number) => Array.from({ length: len }, (_, i) => (mod(v) >> BigInt(i)) & 1n);
  const bitSignals = (prefix: string, bits: bigint[]) => bits.map((b, i) => sig(`${prefix}[${i}]`, b));
  const isZero = (prefix: string, v: bigint) => {
    const out = sig(`${prefix}.out`, mod(v) === 0n ? 1n : 0n);
    // for a lying out = 1 with v != 0, inv = 0 keeps out = 1 - v·inv; then v·out = 0 fails
    sig(`${prefix}.inv`, mod(v) === 0n || out === 1n ? 0n : inv(v));
    return out;
  };
  // NonNegative(len): bits of v + 2^len; out is bit len (the same signal as bits.out[len])
  const nonNegative = (prefix: string, v: bigint, len: number) => {
    const bits = bitsOf(v + (1n << BigInt(len)), len + 1);
    bits[len] = sig(`${prefix}.out`, bits[len]!);
    bitSignals(`${prefix}.bits.out`, bits);
    return bits[len]!;
  };
  const { u, c, prices, bounds, quantum: Q, min, max } = n;
  const [p0, p1, p2, p3] = prices as [bigint, bigint, bigint, bigint];
  const [B1, B2, B3] = bounds as [bigint, bigint, bigint];

  // outcome: billable = success (00) or partial (11)
  const [o0, o1] = bitSignals(`${p}outcomeBits.out`, bitsOf(n.outcome, 2)) as [bigint, bigint];
  const outcomeBoth = sig(`${p}outcomeBoth`, o0 * o1);
  const billable = sig(`${p}billable`, 1n - o0 - o1 + 2n * outcomeBoth);
  const [m0, m1] = bitSignals(`${p}modeBits.out`, bitsOf(n.mode, 2)) as [bigint, bigint];

  // MinWithBounds: min(x, B_i) from the claimed tier index k of x
  const minWithBounds = (prefix: string, x: bigint, xBits: number, k: bigint) => {
    const k0 = sig(`${prefix}.k0`, k & 1n);
    const k1 = sig(`${prefix}.k1`, (k >> 1n) & 1n);
    const k01 = sig(`${prefix}.k01`, k0 * k1);
    const [s0, s1, s2, s3] = [1n - k0 - k1 + k01, k0 - k01, k1 - k01, k01];
    const lo = [s1 * B1, s2 * B2, s3 * B3].map((v, i) => sig(`${prefix}.lo[${i}]`, v));
    const hi = [s0 * B1, s1 * B2, s2 * B3].map((v, i) => sig(`${prefix}.hi[${i}]`, v));
    bitSignals(`${prefix}.aboveLo.bits.out`, bitsOf(x - lo.reduce((a, b) => a + b), xBits));
    bitSignals(`${prefix}.belowHi.bits.out`, bitsOf(hi.reduce((a, b) => a + b) + s3 * INF - x - 1n, 65));
    return [B1 + s0 * (x - B1), B2 + (1n - k1) * (x - B2), B3 + (1n - k01) * (x - B3)].map((v, i) => sig(`${prefix}.out[${i}]`, v));
  };
  const tierOf = (x: bigint) => BigInt(bounds.filter((b) => b <= x).length);
  const atStart = minWithBounds(`${p}atStart`, c, 64, t.kStart ?? tierOf(c));
  const atEnd = minWithBounds(`${p}atEnd`, c + u, 65, t.kEnd ?? tierOf(c + u));
  const below = atEnd.map((e, i) => e - atStart[i]!) as [bigint, bigint, bigint];
  const tierCharge = [below[0] * p0, (below[1] - below[0]) * p1, (below[2] - below[1]) * p2, (u - below[2]) * p3].map((v, i) => sig(`${p}tierCharge[${i}]`, v));
  const raw = tierCharge.reduce((a, b) => a + b);

  // division and rounding
  const [hq, hr] = euclid(raw, Q);
  const q = sig(`${p}quotient`, t.q ?? hq);
  const r = sig(`${p}remainder`, t.r ?? (t.q === undefined ? hr : raw - q * Q));
  const qb = bitSignals(`${p}quotientBits.out`, bitsOf(q, 128));
  bitSignals(`${p}remainderRange.bits.out`, bitsOf(r, 64));
  bitSignals(`${p}remainderBelowQuantum.bits.out`, bitsOf(Q - r - 1n, 64));
  const rz = isZero(`${p}remainderZero`, r);
  const ge = nonNegative(`${p}halfOrMore`, 2n * r - Q, 65);
  const eq = isZero(`${p}exactlyHalf`, 2n * r - Q);
  const ceilUp = sig(`${p}ceilUp`, m0 * (1n - rz));
  const ceilUpHigh = sig(`${p}ceilUpHigh`, m1 * ceilUp);
  const halfUp = sig(`${p}halfUp`, m1 * ge);
  const halfEven = sig(`${p}halfEven`, m1 * m0);
  const tieEvenQuotient = sig(`${p}tieEvenQuotient`, eq * (1n - qb[0]!));
  const tieDown = sig(`${p}tieDown`, halfEven * tieEvenQuotient);
  const up = ceilUp - ceilUpHigh + halfUp - tieDown;

  // cap at 2^64, clamp to [min, max], zero unless billable
  const quotientLow = qb.slice(0, 64).reduce((a, b, i) => a + (b << BigInt(i)), 0n);
  const quotientHigh = qb.slice(64).reduce((a, b, i) => a + (b << BigInt(i)), 0n);
  const small = isZero(`${p}quotientSmall`, quotientHigh);
  const roundedSmall = quotientLow + up;
  const capped = sig(`${p}capped`, roundedSmall + (1n - small) * (TWO64 - roundedSmall));
  const geMin = nonNegative(`${p}atLeastMin`, capped - min, 65);
  const leMax = nonNegative(`${p}atMostMax`, max - capped, 65);
  const raised = sig(`${p}raised`, capped + (1n - geMin) * (min - capped));
  const clamped = sig(`${p}clamped`, raised + (1n - leMax) * (max - raised));
  const charge = sig(`${p}computedCharge`, billable * clamped);
  const unknown = Object.keys(t.set ?? {}).filter((k) => !used.has(k));
  if (unknown.length > 0) throw new Error(`the model has no signal ${unknown.join(', ')}`);
  return { signals: s, charge: mod(charge) };
}
