// The bn128-poseidon8-v1 circuit (circuits/billing.circom, compiled here from source) against the
// TypeScript reference: computeCharge (src/core/charge.ts) and the commitments
// (src/core/commitment.ts). Soundness probes: wrong charges, out-of-range and field-edge inputs,
// malformed tariffs and codes have no witness; a hand-crafted witness with a wrong quotient and an
// out-of-range remainder does not satisfy the R1CS. Then one Groth16 proof with the committed keys.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WitnessCalculatorBuilder, type WitnessCalculator } from 'circom_runtime';
import { compileCircuit, CIRCUIT } from '../scripts/ceremony.ts';
import { normalizeMeterEvent, normalizeTariff } from '../src/core/attest.ts';
import { computeCharge, pricingFromTariff, type ChargeBreakdown, type Outcome } from '../src/core/charge.ts';
import {
  bindingCommitments,
  circuitInputs,
  eventCommitmentOf,
  poseidonHash,
  randomBlinding,
  tariffCommitment,
  tariffCommitmentOf,
  type BindingArgs,
} from '../src/core/commitment.ts';
import { BN128_P, TAG_BINDING, TAG_EVENT, TAG_TARIFF, TIER_BOUND_INF, digestLimbs, encodeEvent, encodeTariff, pack } from '../src/core/field.ts';
import { digestOf } from '../src/core/canonical.ts';
import type { TariffSnapshot } from '../src/core/schemas.ts';
import { createProver, ProverClosedError, terminateCurve, verifyGroth16, WitnessError, type Prover } from '../src/prover/index.ts';
import { eventOf, tariffOf, type TariffSpec } from './support/tariffs.ts';
import { readR1cs, type Lc, type R1cs } from './support/r1cs.ts';
import { prng, randomScenario, type Prng } from './support/random-cases.ts';

const P = BN128_P;
const TWO64 = 1n << 64n;
const U64_MAX = TWO64 - 1n;
const mod = (x: bigint) => ((x % P) + P) % P;
type Input = Record<string, string | string[]>;

// ---------------------------------------------------------------- circuit, r1cs and symbols

let tmp: string;
let wc: WitnessCalculator;
let wires: Map<string, number>;
let r1cs: R1cs;
/** Line numbers of the three public-signal equalities in billing.circom. */
let publicLines: { charge: number; tariff: number; binding: number };
let circuitSource: string[];
/** The line of billing.circom holding `snippet` (the check a failed assertion is reported at). */
const lineOf = (snippet: string): number => {
  const i = circuitSource.findIndex((l) => l.includes(snippet));
  if (i < 0) throw new Error(`billing.circom has no line with ${snippet}`);
  return i + 1;
};


/** Indices of the constraints (A·w)(B·w) = C·w that the witness violates. */
function unsatisfied(w: readonly bigint[]): number[] {
  const ev = (l: Lc) => l.reduce((acc, [wire, coef]) => (acc + coef * w[wire]!) % P, 0n);
  const bad: number[] = [];
  r1cs.constraints.forEach(([a, b, c], i) => {
    if ((ev(a) * ev(b) - ev(c)) % P !== 0n) bad.push(i);
  });
  return bad;
}

const wire = (name: string): number => {
  const w = wires.get(name);
  if (w === undefined) throw new Error(`no witness wire for ${name}`);
  return w;
};

/** Witness wires of the signals whose names start with one of the prefixes. */
const wiresOf = (...prefixes: string[]) => new Set([...wires].filter(([n]) => prefixes.some((p) => n.startsWith(p))).map(([, i]) => i));
/** Does constraint i involve one of the wires? */
const touches = (i: number, ws: Set<number>) => r1cs.constraints[i]!.some((lc) => lc.some(([w]) => ws.has(w)));
/** The signal names of constraint i (for failure messages). */
const describeConstraint = (i: number) => {
  const names = new Map([...wires].map(([n, w]) => [w, n]));
  return `constraint ${i}: ${[...new Set(r1cs.constraints[i]!.flat().map(([w]) => names.get(w) ?? `wire ${w}`))].join(' ')}`;
};

beforeAll(async () => {
  // the witness calculator logs every failed assertion: these tests fail many on purpose
  vi.spyOn(console, 'error').mockImplementation(() => {});
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meterproof-circuit-test-'));
  const compiled = await compileCircuit(tmp);
  wc = await WitnessCalculatorBuilder(new Uint8Array(fs.readFileSync(compiled.wasm)));
  r1cs = readR1cs(fs.readFileSync(compiled.r1cs));
  wires = new Map();
  for (const line of fs.readFileSync(compiled.sym, 'utf8').split('\n')) {
    const [, varIdx, , name] = line.split(',');
    if (name && Number(varIdx) >= 0) wires.set(name, Number(varIdx));
  }
  circuitSource = fs.readFileSync(CIRCUIT, 'utf8').split('\n');
  publicLines = {
    charge: lineOf('charge === computedCharge'),
    tariff: lineOf('tariff_commitment === tariffHash.out'),
    binding: lineOf('binding_commitment === bindingHash.out'),
  };
}, 120_000);

afterAll(async () => {
  vi.restoreAllMocks();
  fs.rmSync(tmp, { recursive: true, force: true });
  await terminateCurve();
});

// ---------------------------------------------------------------- building cases

interface Case {
  readonly name: string;
  readonly args: BindingArgs;
  readonly ref: ChargeBreakdown;
  readonly input: Input;
}

async function makeCase(name: string, tariff: TariffSnapshot, units: bigint, cumulativeBefore: bigint, outcome: Outcome = 'success'): Promise<Case> {
  const event = eventOf(units, outcome);
  const ref = computeCharge({ units, outcome, cumulativeBefore }, pricingFromTariff(tariff));
  const args: BindingArgs = { event, tariff, cumulativeBefore, blinding: randomBlinding(), charge: ref.charge };
  return { name, args, ref, input: await circuitInputs(args) };
}

/** A random valid (tariff, event, running total), see randomScenario. */
async function randomCase(r: Prng, i: number): Promise<Case> {
  const { tariff, units, before, outcome } = randomScenario(r);
  return makeCase(`random #${i}`, tariff, units, before, outcome);
}

// ---------------------------------------------------------------- expectations

/** The witness of a valid input: public signals in order, and the quotient/remainder the
 *  reference computed. */
async function expectAccepted(c: Case): Promise<bigint[]> {
  let w: bigint[];
  try {
    w = await wc.calculateWitness(c.input, true);
  } catch (e) {
    throw new Error(`${c.name}: valid input rejected (${JSON.stringify(c.input)})`, { cause: e });
  }
  expect(w.slice(1, 4), c.name).toEqual([BigInt(c.input.binding_commitment as string), c.ref.charge, BigInt(c.input.tariff_commitment as string)]);
  if (c.ref.billable) {
    expect(w[wire('main.quotient')], c.name).toBe(c.ref.quotient);
    expect(w[wire('main.remainder')], c.name).toBe(c.ref.remainder);
  }
  return w;
}

/** Witness generation fails; returns the circom assertion "template X line N" that failed. */
async function expectRejected(input: Input, what: string): Promise<{ template: string; line: number }> {
  let message = '';
  try {
    await wc.calculateWitness(input, true);
  } catch (e) {
    message = e instanceof Error ? e.message : String(e);
  }
  expect(message, `${what}: expected no witness`).toMatch(/Assert Failed|Error/);
  // the calculator accumulates error text across runs: the newest assertion is the last one
  const all = [...message.matchAll(/Error in template (\w+) line: (\d+)/g)];
  const last = all.at(-1);
  return last ? { template: last[1]!, line: Number(last[2]) } : { template: '?', line: 0 };
}

/** Recomputes the three commitments from the (possibly tampered) raw input values, straight
 *  from the documented formulas (docs/zk-binding.md), arithmetic mod p and no range checks. */
async function reseal(input: Input): Promise<Input> {
  const n = (k: string) => BigInt(input[k] as string);
  const price = (i: number) => BigInt((input.tier_price as string[])[i]!);
  const bound = (i: number) => BigInt((input.tier_bound as string[])[i]!);
  const lin = (a: bigint, b: bigint, c = 0n) => mod(a + b * (1n << 66n) + c * (1n << 132n));
  const tariffC = await poseidonHash([
    TAG_TARIFF,
    mod(n('tariff_digest_hi')),
    mod(n('tariff_digest_lo')),
    lin(n('unit_quantum'), n('min_charge_micros'), n('max_charge_micros')),
    lin(price(0), bound(0)),
    lin(price(1), bound(1)),
    lin(price(2), bound(2)),
    lin(price(3), n('rounding_mode')),
  ]);
  const eventC = await poseidonHash(
    [n('event_digest_hi'), n('event_digest_lo'), n('usage_units'), n('outcome'), n('cumulative_units_before'), n('blinding')].reduce<bigint[]>(
      (acc, v) => [...acc, mod(v)],
      [TAG_EVENT],
    ).concat([0n]),
  );
  const bindingC = await poseidonHash([TAG_BINDING, eventC, tariffC, mod(n('charge'))]);
  return { ...input, tariff_commitment: tariffC.toString(), binding_commitment: bindingC.toString() };
}

/** The same input claiming another charge (mod p), with the binding commitment recomputed for it. */
const withCharge = (input: Input, charge: bigint) => reseal({ ...input, charge: mod(charge).toString() });

async function expectWrongChargesRejected(c: Case): Promise<void> {
  for (const delta of [1n, -1n]) {
    const at = await expectRejected(await withCharge(c.input, c.ref.charge + delta), `${c.name}, charge ${delta > 0n ? '+' : '-'}1`);
    expect(at.line, `${c.name}: rejected by the charge equality`).toBe(publicLines.charge);
  }
}

// ---------------------------------------------------------------- the tests

describe('field encoding and commitments', () => {
  it('encodes digests as two big-endian 128-bit limbs and packs injectively', () => {
    const d = `sha256:${'00'.repeat(15)}01${'ff'.repeat(16)}`;
    expect(digestLimbs(d)).toEqual({ hi: 1n, lo: (1n << 128n) - 1n });
    expect(() => digestLimbs('sha256:ABC')).toThrow(RangeError);
    expect(pack(1n, 2n, 3n)).toBe(1n + (2n << 66n) + (3n << 132n));
    expect(() => pack(1n << 66n)).toThrow(RangeError);
    expect(() => pack(-1n)).toThrow(RangeError);
    expect(TAG_TARIFF).toBe(BigInt(`0x${Buffer.from('meterproof.tariff.v1').toString('hex')}`));
  });

  it('encodes a linear tariff as one tier with INF padding and a graduated one tier by tier', () => {
    const lin = encodeTariff(tariffOf({ price: 120n, min: 5n, max: 9n, mode: 'half_even', quantum: 1000n }));
    expect([lin.prices, lin.bounds, lin.rounding, lin.quantum, lin.min, lin.max]).toEqual([[120n, 0n, 0n, 0n], [TIER_BOUND_INF, TIER_BOUND_INF, TIER_BOUND_INF], 3n, 1000n, 5n, 9n]);
    const t = tariffOf({ tiers: [[10n, 5n], [20n, 4n], [null, 3n]], mode: 'ceil' });
    const grad = encodeTariff(t);
    expect([grad.prices, grad.bounds, grad.rounding]).toEqual([[5n, 4n, 3n, 0n], [10n, 20n, TIER_BOUND_INF], 1n]);
    expect(grad.digest).toBe(digestOf(t));
    expect(digestLimbs(grad.digest)).toEqual({ hi: grad.digestHi, lo: grad.digestLo });
  });

  it('computes the commitments of the documented formulas, deterministic for tariffs and blinded for events', async () => {
    const c = await makeCase('pilot', tariffOf({ price: 120n, min: 50_000n, max: 5_000_000_000n }), 1842n, 0n);
    expect(await reseal(c.input)).toEqual(c.input);
    const t = c.args.tariff;
    expect(await tariffCommitment(t)).toBe(BigInt(c.input.tariff_commitment as string));
    expect(await tariffCommitment(t)).toBe(await tariffCommitmentOf(encodeTariff(t)));
    const a = await bindingCommitments(c.args);
    expect(a.bindingCommitment.toString()).toBe(c.input.binding_commitment);
    const b = await bindingCommitments({ ...c.args, blinding: c.args.blinding + 1n });
    expect(b.tariffCommitment).toBe(a.tariffCommitment);
    expect(b.eventCommitment).not.toBe(a.eventCommitment);
    expect(b.eventCommitment).toBe(await eventCommitmentOf(encodeEvent(c.args.event, c.args.cumulativeBefore, c.args.blinding + 1n)));
    await expect(bindingCommitments({ ...c.args, charge: TWO64 })).rejects.toThrow(RangeError);
    await expect(bindingCommitments({ ...c.args, blinding: P })).rejects.toThrow(RangeError);
  });

  it('reproduces the test vector of docs/zk-binding.md §6, and the circuit accepts it', async () => {
    const full = fs.readFileSync(path.join(path.dirname(CIRCUIT), '..', 'docs', 'zk-binding.md'), 'utf8');
    const doc = full.slice(full.indexOf('### 6.2 bn128-poseidon8-v1')); // the v1 vector (§6.1 is v2's)
    expect(doc.length).toBeLessThan(full.length);
    const documented = (name: string) => BigInt(new RegExp(`^${name}\\s+(\\d+)$`, 'm').exec(doc)?.[1] ?? '-1');
    const event = normalizeMeterEvent({
      event_id: 'evt_pilot_001',
      event_timestamp: '2026-05-29T12:00:00.000Z',
      tenant_id: 'tenant_acme',
      api_key_id: 'api_live_001',
      endpoint: '/v1/completions',
      usage_units: 1842,
      contract_version: 'contract-v1',
      billing_window_id: '2026-05',
    });
    const tariff = normalizeTariff({
      tariff_id: 'tariff_vex',
      tariff_version: '2026.1',
      tariff_class: 'usage_graduated',
      currency: 'USD',
      tiers: [
        { up_to: 50000, unit_price_micros: 5000 },
        { up_to: null, unit_price_micros: 8000 },
      ],
      unit_quantum: 1,
      rounding_mode: 'half_even',
    });
    const ref = computeCharge({ units: 1842n, outcome: 'success', cumulativeBefore: 49_000n }, pricingFromTariff(tariff));
    expect(ref.charge).toBe(11_736_000n);
    const args = { event, tariff, cumulativeBefore: 49_000n, blinding: 12345678901234567890n, charge: ref.charge };
    const c = await bindingCommitments(args);
    expect(c).toEqual({
      eventCommitment: documented('event_commitment'),
      tariffCommitment: documented('tariff_commitment'),
      bindingCommitment: documented('binding_commitment'),
    });
    expect(doc).toContain(encodeEvent(event, 0n, 0n).digest);
    expect(doc).toContain(encodeTariff(tariff).digest);
    await expectAccepted({ name: 'docs vector', args, ref, input: await circuitInputs(args) });
  });

  it('draws blinding uniformly below p', () => {
    const seen = new Set<bigint>();
    for (let i = 0; i < 200; i++) {
      const b = randomBlinding();
      expect(b >= 0n && b < P).toBe(true);
      seen.add(b);
    }
    expect(seen.size).toBe(200);
  });
});

describe('circuit agrees with computeCharge', () => {
  it('on 520 random valid inputs (both tariff classes, small and huge values)', async () => {
    const r = prng(0x5eed_b111);
    const stats = { linear: 0, graduated: 0, billable: 0, clampedMax: 0, clampedMin: 0, hugeQuotient: 0 };
    for (let i = 0; i < 520; i++) {
      const c = await randomCase(r, i);
      await expectAccepted(c);
      if (i % 10 === 0) await expectWrongChargesRejected(c);
      stats[c.args.tariff.tariff_class === 'usage_linear' ? 'linear' : 'graduated']++;
      if (c.ref.billable) stats.billable++;
      if (c.ref.clamped === 'max') stats.clampedMax++;
      if (c.ref.clamped === 'min') stats.clampedMin++;
      if (c.ref.quotient >= TWO64) stats.hugeQuotient++;
    }
    // the generator really covers what it claims to
    for (const v of Object.values(stats)) expect(v).toBeGreaterThan(10);
  }, 120_000);

  const G = { tiers: [[100n, 50n], [1000n, 40n], [5000n, 30n], [null, 20n]] as [bigint | null, bigint][], quantum: 7n };
  const edges: [string, TariffSpec, bigint, bigint, Outcome?][] = [
    ['0 units (success, min 0)', G, 0n, 123n],
    ['0 units hits the minimum', { ...G, min: 500n }, 0n, 123n],
    ['0 units at a bound', G, 0n, 100n],
    ['c at a bound', G, 50n, 100n],
    ['c + u at a bound', G, 50n, 50n],
    ['c one below a bound', G, 1n, 99n],
    ['ends exactly on the last finite bound', G, 5000n, 0n],
    ['spans all four tiers', G, 10_000n, 0n],
    ['starts beyond every finite bound', G, 77n, 5000n],
    ['starts far beyond every finite bound', G, U64_MAX, U64_MAX],
    ['smallest and largest finite bounds', { tiers: [[1n, 3n], [2n, 5n], [U64_MAX, 7n], [null, 11n]] }, 10n, U64_MAX - 4n],
    ['graduated, a single tier', { tiers: [[null, 9n]] }, 12345n, 10n],
    ['half a quantum, floor', { price: 1n, quantum: 10n, mode: 'floor' }, 25n, 0n],
    ['half a quantum, ceil', { price: 1n, quantum: 10n, mode: 'ceil' }, 25n, 0n],
    ['half a quantum, half_up', { price: 1n, quantum: 10n, mode: 'half_up' }, 25n, 0n],
    ['half a quantum, half_even, even quotient (down)', { price: 1n, quantum: 10n, mode: 'half_even' }, 25n, 0n],
    ['half a quantum, half_even, odd quotient (up)', { price: 1n, quantum: 10n, mode: 'half_even' }, 35n, 0n],
    ['just below half, half_up', { price: 1n, quantum: 10n, mode: 'half_up' }, 24n, 0n],
    ['just above half, half_even', { price: 1n, quantum: 10n, mode: 'half_even' }, 26n, 0n],
    ['exact multiple, ceil', { price: 1n, quantum: 10n, mode: 'ceil' }, 30n, 0n],
    ['remainder 1, ceil', { price: 1n, quantum: 10n, mode: 'ceil' }, 31n, 0n],
    ['half of an odd quantum cannot tie, half_even', { price: 1n, quantum: 9n, mode: 'half_even' }, 13n, 0n],
    ['quantum 1', { price: 3n, quantum: 1n, mode: 'half_even' }, 99n, 0n],
    ['quantum 2^64 - 1, ceil', { price: 5n, quantum: U64_MAX, mode: 'ceil' }, 3n, 0n],
    ['quantum 2^64 - 1, half_up', { price: 1n << 63n, quantum: U64_MAX, mode: 'half_up' }, 1n, 0n],
    ['minimum hit', { price: 10n, min: 1000n, max: 2000n }, 3n, 0n],
    ['maximum hit', { price: 10n, min: 1000n, max: 2000n }, 300n, 0n],
    ['min = max', { price: 10n, min: 1500n, max: 1500n }, 300n, 0n],
    ['raw ~ 2^128: quotient >= 2^64 clamps to max', { price: U64_MAX, quantum: 1n, max: 12345n }, U64_MAX, 0n],
    ['largest everything', { price: U64_MAX, quantum: 1n, mode: 'ceil' }, U64_MAX, U64_MAX],
    ['quotient 2^64 - 1 exactly (floor)', { tiers: [[3n, U64_MAX], [null, 1n]], quantum: 3n, mode: 'floor' }, 4n, 0n],
    ['rounded = 2^64 by ceil, clamped to max', { tiers: [[3n, U64_MAX], [null, 1n]], quantum: 3n, mode: 'ceil' }, 4n, 0n],
    ['rounded = 2^64 by half_up, clamped to max', { tiers: [[3n, U64_MAX], [null, 2n]], quantum: 3n, mode: 'half_up' }, 4n, 0n],
    ['error: 0, no minimum', { ...G, min: 500n }, 1000n, 0n, 'error'],
    ['timeout: 0, no minimum', { ...G, min: 500n }, 1000n, 0n, 'timeout'],
    ['timeout with huge values', { price: U64_MAX, min: U64_MAX }, U64_MAX, U64_MAX, 'timeout'],
    ['partial is billed', { ...G, min: 500n }, 1000n, 0n, 'partial'],
    ['partial, 0 units, minimum', { ...G, min: 500n }, 0n, 0n, 'partial'],
  ];

  it.each(edges)('edge: %s', async (name, spec, units, c, outcome = 'success') => {
    const kase = await makeCase(name, tariffOf(spec), units, c, outcome);
    await expectAccepted(kase);
    await expectWrongChargesRejected(kase);
  });

  it('edge cases exercise what their names say', async () => {
    const ref = (spec: TariffSpec, u: bigint, c: bigint, o: Outcome = 'success') => computeCharge({ units: u, outcome: o, cumulativeBefore: c }, pricingFromTariff(tariffOf(spec)));
    expect(ref({ price: 1n, quantum: 10n, mode: 'half_even' }, 25n, 0n)).toMatchObject({ quotient: 2n, remainder: 5n, charge: 2n });
    expect(ref({ price: 1n, quantum: 10n, mode: 'half_even' }, 35n, 0n)).toMatchObject({ quotient: 3n, remainder: 5n, charge: 4n });
    expect(ref({ tiers: [[3n, U64_MAX], [null, 1n]], quantum: 3n, mode: 'ceil' }, 4n, 0n)).toMatchObject({ quotient: U64_MAX, rounded: TWO64, charge: U64_MAX, clamped: 'max' });
    expect(ref(G, 50n, 50n).tierUnits).toEqual([50n, 0n, 0n, 0n]);
    expect(ref(G, 50n, 100n).tierUnits).toEqual([0n, 50n, 0n, 0n]);
    expect(ref({ ...G, min: 500n }, 1000n, 0n, 'error').charge).toBe(0n);
  });
});

describe('no witness for bad inputs', () => {
  let base: Input;
  beforeAll(async () => {
    base = (await makeCase('base', tariffOf({ tiers: [[100n, 5n], [1000n, 4n], [5000n, 3n], [null, 2n]], quantum: 3n, min: 10n, max: 1_000_000n, mode: 'half_even' }), 777n, 60n)).input;
  });
  /** Rejected, and by the named check on the private values (reported at the line of
   *  billing.circom that feeds it): the public inputs were recomputed for the tampered values, so
   *  the public equalities are not what fails. */
  async function expectRangeRejected(tamper: (i: Input) => Input, what: string, check: string) {
    const bad = await reseal(tamper(structuredClone(base)));
    const at = await expectRejected(bad, what);
    expect(`${at.template}:${at.line}`, `${what}: rejected by ${check}`).toBe(`${at.template}:${lineOf(check)}`);
    expect(at.template).toMatch(/^Billing/);
  }

  type Setter = (i: Input, v: bigint) => void;
  const scalar: [string, string][] = [
    ['usage_units', 'unitsRange.in'],
    ['cumulative_units_before', 'cumulativeRange.in'],
    ['unit_quantum', 'quantumRange.in'],
    ['min_charge_micros', 'minRange.in'],
    ['max_charge_micros', 'maxRange.in'],
  ];
  const arrays: [string, number, string][] = [
    ['tier_price', 4, 'priceRange[i].in'],
    ['tier_bound', 3, 'bounds.bound <== tier_bound'],
  ];
  const targets: [string, Setter, string][] = [
    ...scalar.map(([k, check]): [string, Setter, string] => [k, (i, v) => void (i[k] = v.toString()), check]),
    ...arrays.flatMap(([k, n, check]) =>
      Array.from({ length: n }, (_, j): [string, Setter, string] => [`${k}[${j}]`, (i, v) => void ((i[k] as string[])[j] = v.toString()), check]),
    ),
  ];

  it.each(targets)('%s = 2^64, 2^64 + 1 and p - 1', async (name, set, check) => {
    for (const v of [TWO64, TWO64 + 1n, P - 1n]) {
      const tamper = (i: Input) => {
        set(i, v);
        return i;
      };
      await expectRangeRejected(tamper, `${name} = ${v}`, check);
    }
  });

  it('outcome and rounding codes 4, 7 and p - 1', async () => {
    for (const [k, check] of [
      ['outcome', 'outcomeBits.in'],
      ['rounding_mode', 'modeBits.in'],
    ] as const) {
      for (const v of [4n, 7n, P - 1n]) await expectRangeRejected((i) => ({ ...i, [k]: v.toString() }), `${k} = ${v}`, check);
    }
  });

  it('quantum 0 and min > max', async () => {
    await expectRangeRejected((i) => ({ ...i, unit_quantum: '0' }), 'quantum 0', 'remainderBelowQuantum.in');
    await expectRangeRejected((i) => ({ ...i, min_charge_micros: '1000001' }), 'min > max', 'minLeMax.in');
  });

  it('tier bounds out of order, repeated, zero, INF before a finite bound, price behind INF', async () => {
    const INF = TIER_BOUND_INF.toString();
    const cases: [string, string[], string[]?][] = [
      ['B1 > B2', ['1000', '100', '5000']],
      ['B2 > B3', ['100', '5000', '1000']],
      ['B1 = B2', ['100', '100', '5000']],
      ['B1 = 0', ['0', '100', '5000']],
      ['INF then finite', [INF, '1000', '5000']],
      ['INF, INF, finite', [INF, INF, '5000']],
      ['2^65 - 1 as a bound', ['100', '1000', (TIER_BOUND_INF - 1n).toString()]],
      ['2^65 + 1 as a bound', ['100', '1000', (TIER_BOUND_INF + 1n).toString()]],
      ['price behind INF padding', ['100', INF, INF], ['5', '4', '3', '0']],
    ];
    for (const [what, bounds, prices] of cases) {
      const check = prices ? 'bounds.isInf[i] * tier_price[i + 1] === 0' : 'bounds.bound <== tier_bound';
      await expectRangeRejected((i) => ({ ...i, tier_bound: bounds, ...(prices ? { tier_price: prices } : {}) }), what, check);
    }
    // control: the same tariff with INF padding and zero prices behind it is fine
    const ok = await reseal({ ...base, tier_bound: ['100', INF, INF], tier_price: ['5', '4', '0', '0'] });
    const t = tariffOf({ tiers: [[100n, 5n], [null, 4n]], quantum: 3n, min: 10n, max: 1_000_000n, mode: 'half_even' });
    const ref = computeCharge({ units: 777n, outcome: 'success', cumulativeBefore: 60n }, pricingFromTariff(t));
    await expect(wc.calculateWitness(await withCharge(ok, ref.charge), true)).resolves.toBeDefined();
  });

  it('a wrong digest limb or blinding changes the commitments (public equality fails)', async () => {
    for (const k of ['event_digest_hi', 'tariff_digest_lo', 'blinding']) {
      const at = await expectRejected({ ...base, [k]: (BigInt(base[k] as string) + 1n).toString() }, k);
      expect([publicLines.tariff, publicLines.binding]).toContain(at.line);
    }
  });
});

describe('R1CS rejects a crafted witness with a wrong quotient', () => {
  // Floor mode and min = max, so the charge (and every commitment) is the same whatever the
  // quotient: only the division's own signals and what is derived from them have to change.
  const spec: TariffSpec = { price: 7n, quantum: 10n, min: 500_000n, max: 500_000n, mode: 'floor' };
  const QUANTUM = 10n;
  const MIN = 500_000n;
  const MAX = 500_000n;
  const MODE = 0n;

  const bitsOf = (x: bigint, n: number) => Array.from({ length: n }, (_, i) => (mod(x) >> BigInt(i)) & 1n);
  const inv = (x: bigint): bigint => {
    // Fermat: x^(p-2)
    let [b, e, r] = [mod(x), P - 2n, 1n];
    while (e > 0n) {
      if (e & 1n) r = (r * b) % P;
      b = (b * b) % P;
      e >>= 1n;
    }
    return r;
  };

  /** Every witness signal that depends on (quotient, remainder), as the circuit defines it. */
  function derived(q: bigint, r: bigint): Map<string, bigint> {
    const s = new Map<string, bigint>();
    const num2bits = (prefix: string, x: bigint, n: number) => bitsOf(x, n).forEach((b, i) => s.set(`${prefix}.out[${i}]`, b));
    const isZero = (prefix: string, x: bigint) => {
      const v = mod(x);
      s.set(`${prefix}.inv`, v === 0n ? 0n : inv(v));
      s.set(`${prefix}.out`, v === 0n ? 1n : 0n);
      return v === 0n ? 1n : 0n;
    };
    const nonNegative = (prefix: string, x: bigint, n: number) => {
      const bits = bitsOf(mod(x + (1n << BigInt(n))), n + 1);
      num2bits(`${prefix}.bits`, mod(x + (1n << BigInt(n))), n + 1);
      s.set(`${prefix}.out`, bits[n]!);
      return bits[n]!;
    };
    s.set('main.quotient', mod(q));
    s.set('main.remainder', mod(r));
    num2bits('main.quotientBits', q, 128);
    num2bits('main.remainderRange.bits', r, 64);
    num2bits('main.remainderBelowQuantum.bits', QUANTUM - r - 1n, 64);
    const rz = isZero('main.remainderZero', r);
    const ge = nonNegative('main.halfOrMore', 2n * r - QUANTUM, 65);
    const eq = isZero('main.exactlyHalf', 2n * r - QUANTUM);
    const [m0, m1] = [MODE & 1n, MODE >> 1n];
    const qb = bitsOf(q, 128);
    const ceilUp = m0 * (1n - rz);
    const ceilUpHigh = m1 * ceilUp;
    const halfUp = m1 * ge;
    const tieEvenQuotient = eq * (1n - qb[0]!);
    const tieDown = m1 * m0 * tieEvenQuotient;
    Object.entries({ ceilUp, ceilUpHigh, halfUp, halfEven: m1 * m0, tieEvenQuotient, tieDown }).forEach(([k, v]) => s.set(`main.${k}`, v));
    const up = ceilUp - ceilUpHigh + halfUp - tieDown;
    const qLow = qb.slice(0, 64).reduce((acc, b, i) => acc + (b << BigInt(i)), 0n);
    const qHigh = qb.slice(64).reduce((acc, b, i) => acc + (b << BigInt(i)), 0n);
    const small = isZero('main.quotientSmall', qHigh);
    const capped = qLow + up + (1n - small) * (TWO64 - qLow - up);
    s.set('main.capped', mod(capped));
    const geMin = nonNegative('main.atLeastMin', capped - MIN, 65);
    const leMax = nonNegative('main.atMostMax', MAX - capped, 65);
    const raised = capped + (1n - geMin) * (MIN - capped);
    const clamped = raised + (1n - leMax) * (MAX - raised);
    s.set('main.raised', mod(raised));
    s.set('main.clamped', mod(clamped));
    return s;
  }

  function patched(w: readonly bigint[], signals: Map<string, bigint>): bigint[] {
    const out = [...w];
    for (const [name, v] of signals) {
      const idx = wires.get(name);
      if (idx !== undefined) out[idx] = v;
    }
    return out;
  }


  let honest: bigint[];
  let q: bigint;
  let r: bigint;
  beforeAll(async () => {
    const c = await makeCase('division', tariffOf(spec), 1234n, 0n);
    honest = await wc.calculateWitness(c.input, true);
    [q, r] = [c.ref.quotient, c.ref.remainder];
    expect([q, r, c.ref.charge]).toEqual([863n, 8n, MIN]);
  });

  /** The model of the division signals reproduces the honest witness exactly (so a crafted
   *  witness built from it differs from an honest one only where the values differ). */
  function expectFaithfulModel(): void {
    expect(honest.length).toBe(r1cs.nWires);
    expect(unsatisfied(honest)).toEqual([]);
    const model = derived(q, r);
    let compared = 0;
    for (const [name, v] of model) {
      const idx = wires.get(name);
      if (idx === undefined) continue;
      expect(honest[idx], name).toBe(v);
      compared++;
    }
    expect(compared).toBeGreaterThan(300);
    expect(patched(honest, model)).toEqual(honest);
  }

  /** A crafted witness with quotient q2 and remainder r2 (everything derived from them updated):
   *  some constraint fails, and every failing one belongs to the named range checks. */
  function expectCaughtBy(q2: bigint, r2: bigint, ...rangeChecks: string[]): void {
    expectFaithfulModel();
    const bad = unsatisfied(patched(honest, derived(q2, r2)));
    expect(bad.length).toBeGreaterThan(0);
    const rangeWires = wiresOf(...rangeChecks);
    expect(rangeWires.size).toBeGreaterThan(0);
    for (const i of bad) expect(touches(i, rangeWires), `${describeConstraint(i)} is outside ${rangeChecks.join(', ')}`).toBe(true);
  }

  it('the honest witness satisfies every constraint, and the patch model reproduces it exactly', () => {
    expectFaithfulModel();
  });

  it('remainder >= quantum with quotient - 1 (raw = q·quantum + r still holds) fails only the remainder < quantum check', () => {
    const [q2, r2] = [q - 1n, r + QUANTUM];
    expect(q2 * QUANTUM + r2).toBe(q * QUANTUM + r);
    expectCaughtBy(q2, r2, 'main.remainderBelowQuantum.');
  });

  it('a negative remainder with quotient + 1 fails the remainder range checks', () => {
    const [q2, r2] = [q + 1n, r - QUANTUM];
    expect(q2 * QUANTUM + r2).toBe(q * QUANTUM + r);
    expectCaughtBy(q2, r2, 'main.remainderRange.', 'main.halfOrMore.');
  });

  it('a quotient that satisfies the division only modulo p (q + k, k = Δr / quantum mod p) fails the quotient range check', () => {
    const r2 = (r + 1n) % QUANTUM; // an in-range remainder other than the true one
    const k = mod((r - r2) * inv(QUANTUM));
    const q2 = mod(q + k);
    expect(mod(q2 * QUANTUM + r2)).toBe(q * QUANTUM + r);
    expect(q2 >= 1n << 128n).toBe(true);
    expectCaughtBy(q2, r2, 'main.quotientBits.');
  });
});

describe('R1CS rejects a crafted witness with a wrong tier index', () => {
  // Four tiers with equal prices: the raw charge is price × units whatever the tier split (the
  // tier units telescope to u), so a wrong tier index changes only the position signals and the
  // per-tier products.
  const INF = TIER_BOUND_INF;
  const BOUNDS = [100n, 1000n, 2000n] as const;
  const PRICE = 5n;
  const C = 150n; // in tier index 1: B1 <= c < B2
  const U = 10n;
  let honest: bigint[];

  /** The signals of MinWithBounds at `prefix` for position x when the prover claims tier k. */
  function minSignals(prefix: string, x: bigint, xBits: number, k: bigint): { signals: Map<string, bigint>; mins: bigint[] } {
    const s = new Map<string, bigint>();
    const [k0, k1] = [k & 1n, k >> 1n];
    const k01 = k0 * k1;
    const sel = [1n - k0 - k1 + k01, k0 - k01, k1 - k01, k01];
    const [b1, b2, b3] = BOUNDS;
    const lo = [sel[1]! * b1, sel[2]! * b2, sel[3]! * b3];
    const hi = [sel[0]! * b1, sel[1]! * b2, sel[2]! * b3];
    const bits = (name: string, v: bigint, n: number) => {
      for (let i = 0; i < n; i++) s.set(`${prefix}.${name}.bits.out[${i}]`, (mod(v) >> BigInt(i)) & 1n);
    };
    Object.entries({ k0, k1, k01 }).forEach(([n, v]) => s.set(`${prefix}.${n}`, v));
    lo.forEach((v, i) => s.set(`${prefix}.lo[${i}]`, mod(v)));
    hi.forEach((v, i) => s.set(`${prefix}.hi[${i}]`, mod(v)));
    bits('aboveLo', x - (lo[0]! + lo[1]! + lo[2]!), xBits);
    bits('belowHi', hi[0]! + hi[1]! + hi[2]! + sel[3]! * INF - x - 1n, 65);
    const mins = [b1 + sel[0]! * (x - b1), b2 + (1n - k1) * (x - b2), b3 + (1n - k01) * (x - b3)];
    mins.forEach((v, i) => s.set(`${prefix}.out[${i}]`, mod(v)));
    return { signals: s, mins };
  }

  function crafted(kStart: bigint, kEnd: bigint): bigint[] {
    const start = minSignals('main.atStart', C, 64, kStart);
    const end = minSignals('main.atEnd', C + U, 65, kEnd);
    const below = end.mins.map((m, i) => m - start.mins[i]!);
    const units = [below[0]!, below[1]! - below[0]!, below[2]! - below[1]!, U - below[2]!];
    const w = [...honest];
    for (const [name, v] of [...start.signals, ...end.signals, ...units.map((n, i): [string, bigint] => [`main.tierCharge[${i}]`, mod(n * PRICE)])]) {
      const idx = wires.get(name);
      if (idx !== undefined) w[idx] = v;
    }
    return w;
  }

  beforeAll(async () => {
    const c = await makeCase('tiers', tariffOf({ tiers: [[BOUNDS[0], PRICE], [BOUNDS[1], PRICE], [BOUNDS[2], PRICE], [null, PRICE]] }), U, C);
    honest = await wc.calculateWitness(c.input, true);
  });

  it('the model reproduces the honest witness (start in tier index 1, end in tier index 1)', () => {
    expect(unsatisfied(honest)).toEqual([]);
    expect(crafted(1n, 1n)).toEqual(honest);
  });

  it.each([
    [0n, 'main.atStart.belowHi.'],
    [2n, 'main.atStart.aboveLo.'],
    [3n, 'main.atStart.aboveLo.'],
  ])('claiming the start is in tier index %s fails only that position check', (k, check) => {
    const bad = unsatisfied(crafted(k, 1n));
    expect(bad.length).toBeGreaterThan(0);
    const ws = wiresOf(check);
    expect(ws.size).toBeGreaterThan(0);
    for (const i of bad) expect(touches(i, ws), `${describeConstraint(i)} is outside ${check}`).toBe(true);
  });

  it('a wrong tier index for the end position fails too', () => {
    expect(unsatisfied(crafted(1n, 0n)).length).toBeGreaterThan(0);
    expect(unsatisfied(crafted(1n, 2n)).length).toBeGreaterThan(0);
  });
});

describe('Groth16 with the committed keys', () => {
  const keysDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'keys');
  let prover: Prover;
  let vkey: Record<string, unknown>;
  let pilot: Case;

  beforeAll(async () => {
    vkey = JSON.parse(fs.readFileSync(path.join(keysDir, 'verification_key.json'), 'utf8')) as Record<string, unknown>;
    prover = await createProver({ keysDir, workers: 1 });
    pilot = await makeCase('pilot', tariffOf({ tiers: [[50_000n, 5000n], [null, 8000n]], mode: 'half_even', min: 50_000n }), 1842n, 49_000n);
  }, 60_000);
  afterAll(async () => {
    await prover?.close();
  });

  it('proves on a worker thread and verifies; a changed public signal does not verify', async () => {
    const { proof, publicSignals } = await prover.prove(pilot.input);
    const c = await bindingCommitments(pilot.args);
    expect(publicSignals).toEqual([c.bindingCommitment.toString(), pilot.ref.charge.toString(), c.tariffCommitment.toString()]);
    expect(await verifyGroth16(vkey, publicSignals, proof)).toBe(true);
    for (let i = 0; i < 3; i++) {
      const changed = [...publicSignals];
      changed[i] = (BigInt(changed[i]!) + 1n).toString();
      expect(await verifyGroth16(vkey, changed, proof), `signal ${i} + 1`).toBe(false);
    }
    expect(await verifyGroth16(vkey, [publicSignals[0], publicSignals[2], publicSignals[1]], proof)).toBe(false);
    // malformed input: false, never an exception
    const malformed: [unknown, unknown, unknown][] = [
      [vkey, publicSignals.slice(0, 2), proof],
      [vkey, [...publicSignals, '0'], proof],
      [vkey, [publicSignals[0], P.toString(), publicSignals[2]], proof],
      [vkey, [publicSignals[0], '-1', publicSignals[2]], proof],
      [vkey, [publicSignals[0], '0x10', publicSignals[2]], proof],
      [vkey, publicSignals, { ...proof, pi_a: ['1', '2'] }],
      [vkey, publicSignals, { ...proof, pi_a: ['1', '3', '1'] }],
      [vkey, publicSignals, { ...proof, pi_c: 'garbage' }],
      [vkey, publicSignals, null],
      [{}, publicSignals, proof],
      [{ ...vkey, IC: [] }, publicSignals, proof],
      [null, null, null],
    ];
    for (const [k, s, p] of malformed) expect(await verifyGroth16(k, s, p)).toBe(false);
  }, 60_000);

  it('rejects a wrong claimed charge with a WitnessError and keeps proving', async () => {
    await expect(prover.prove(await withCharge(pilot.input, pilot.ref.charge + 1n))).rejects.toBeInstanceOf(WitnessError);
    const again = await prover.prove(pilot.input);
    expect(await verifyGroth16(vkey, again.publicSignals, again.proof)).toBe(true);
  }, 60_000);

  it('fails to start, without retrying forever, when the keys are broken', async () => {
    const broken = fs.mkdtempSync(path.join(os.tmpdir(), 'meterproof-broken-keys-'));
    try {
      fs.copyFileSync(path.join(keysDir, 'billing.zkey'), path.join(broken, 'billing.zkey'));
      fs.writeFileSync(path.join(broken, 'billing.wasm'), 'not wasm');
      await expect(createProver({ keysDir: broken, workers: 1 })).rejects.toThrow(/prover worker/);
      await expect(createProver({ keysDir: broken, workers: 0 })).rejects.toThrow();
      await expect(createProver({ keysDir: path.join(broken, 'missing') })).rejects.toThrow(/ENOENT/);
    } finally {
      fs.rmSync(broken, { recursive: true, force: true });
    }
  }, 60_000);

  it('proves in-process too, and refuses work after close()', async () => {
    const local = await createProver({ keysDir, workers: 0 });
    const { proof, publicSignals } = await local.prove(pilot.input);
    expect(await verifyGroth16(vkey, publicSignals, proof)).toBe(true);
    await local.close();
    await expect(local.prove(pilot.input)).rejects.toBeInstanceOf(ProverClosedError);
  }, 60_000);
});
