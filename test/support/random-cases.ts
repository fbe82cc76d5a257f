// Deterministic random cases for the circuit suites (test/circuit, test/circuit-v2): a seeded
// PRNG and random valid (tariff, usage, running total, outcome) scenarios.
import type { Outcome } from '../../src/core/charge.ts';
import type { TariffSnapshot } from '../../src/core/schemas.ts';
import { U64_MAX } from '../../src/core/u64.ts';
import { tariffOf } from './tariffs.ts';

/** Deterministic PRNG (mulberry32) so a failing random case can be replayed. */
export function prng(seed: number) {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const int = (n: number) => next() % n;
  const bits = (n: number): bigint => {
    let v = 0n;
    for (let i = 0; i < n; i += 32) v = (v << 32n) | BigInt(next());
    return n === 0 ? 0n : v & ((1n << BigInt(n)) - 1n);
  };
  const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
  /** Mixed magnitudes: 0, small, medium, up to 2^64 - 1, and the extremes. */
  const u64 = (): bigint => {
    const r = int(20);
    if (r === 0) return 0n;
    if (r === 1) return U64_MAX;
    return bits(pick([1, 3, 8, 16, 24, 32, 40, 48, 56, 63, 64]));
  };
  return { int, bits, pick, u64 };
}

export type Prng = ReturnType<typeof prng>;

/** The same PRNG as floats in [0, 1). */
export function uniform(seed: number): () => number {
  const p = prng(seed);
  return () => p.int(2 ** 32) / 2 ** 32;
}

/** A random valid (tariff, units, running total before, outcome): both classes, 1–4 tiers, small and huge values,
 *  positions at and around tier bounds. */
export function randomScenario(r: Prng): { tariff: TariffSnapshot; units: bigint; before: bigint; outcome: Outcome } {
  const nTiers = r.pick([1, 1, 2, 3, 4, 4]);
  const linear = nTiers === 1 && r.int(2) === 0;
  const scale = r.pick([4, 10, 20, 40, 63, 64]);
  const bounds = new Set<bigint>();
  while (bounds.size < nTiers - 1) {
    const b = r.bits(scale) + 1n;
    if (b <= U64_MAX) bounds.add(b);
  }
  const sorted = [...bounds].sort((a, b) => (a < b ? -1 : 1));
  const prices = Array.from({ length: nTiers }, () => r.u64());
  let [min, max] = [r.u64(), r.u64()];
  if (min > max) [min, max] = [max, min];
  if (r.int(3) === 0) [min, max] = [0n, U64_MAX];
  const quantum = r.int(4) === 0 ? 1n : r.u64() || 1n;
  const mode = r.pick(['floor', 'ceil', 'half_up', 'half_even'] as const);
  const tariff = tariffOf(
    linear
      ? { price: prices[0]!, quantum, min, max, mode }
      : { tiers: prices.map((p, j) => [j < nTiers - 1 ? sorted[j]! : null, p]), quantum, min, max, mode },
  );
  const near = (b: bigint) => {
    const x = b + BigInt(r.int(3)) - 1n;
    return x < 0n ? 0n : x > U64_MAX ? U64_MAX : x;
  };
  const c = sorted.length > 0 && r.int(3) === 0 ? near(r.pick(sorted)) : r.u64();
  let u = r.u64();
  if (sorted.length > 0 && r.int(4) === 0) {
    const b = r.pick(sorted);
    if (b >= c) u = b - c; // ends exactly on a bound
  }
  const outcome = r.pick(['success', 'success', 'success', 'partial', 'error', 'timeout'] as const);
  return { tariff, units: u, before: c, outcome };
}
