// Negative tests of the bn128-poseidon8-v1 circuit (circuits/billing.circom and
// circuits/lib/billing_lib.circom, compiled here from source), complementing test/circuit.test.ts:
//   1. the prover-chosen tier indices (k0, k1 of MinWithBounds) tampered with;
//   2. the quotient/remainder hints tampered with under ceil, half_even (the quotient's parity
//      bit) and the clamp paths;
//   3. 2^64 as the last finite tier bound followed by INF;
//   4. a price behind INF padding (a 4th price behind B3 = INF, a linear tariff with a 2nd price);
//   5. plausible wrong charges: error/timeout claiming the minimum, a charge that skips the clamp
//      or the 2^64 cap, a charge rounded the other way.
// 1, 2 and 5 are checked against the compiled R1CS, not the witness calculator's assertions: an
// honest witness of the real circuit is patched consistently (every signal that depends on the
// tampered value recomputed with the circuit's own formulas, found by name in the .sym file; the
// binding commitment's Poseidon signals recomputed for the claimed charge) and must violate some
// constraint of the .r1cs, while the unpatched witness satisfies all of them. The binding hash's
// signals for a claimed charge come from circomlib's Poseidon(4) compiled alone (the real
// circuit's calculator stops at the failed charge equality, before the commitments).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as snarkjs from 'snarkjs';
import { WitnessCalculatorBuilder, type WitnessCalculator } from 'circom_runtime';
import { computeCharge, pricingFromTariff, type ChargeBreakdown, type Outcome, type PricingTariff, type RoundingMode } from '../src/core/charge.ts';
import { bindingCommitments, circuitInputs, poseidonHash, randomBlinding } from '../src/core/commitment.ts';
import {
  BN128_P,
  TAG_BINDING,
  TIER_BOUND_INF,
  bindingHashInputs,
  eventHashInputs,
  tariffHashInputs,
  type EventEncoding,
  type Quad,
  type TariffEncoding,
  type Triple,
} from '../src/core/field.ts';
import { terminateCurve } from '../src/verifier/groth16.ts';
import { eventOf, tariffOf as tariffOfSpec, type TariffSpec } from './support/tariffs.ts';
import { CompiledCircuit, ROOT, circom, lineIn, readSym } from './support/circuit-harness.ts';
import { inv, mod, model, numericsOf, type Input, type Numerics, type Tamper } from './support/charge-model.ts';

const P = BN128_P;
const TWO64 = 1n << 64n;
const U64_MAX = TWO64 - 1n;
const INF = TIER_BOUND_INF;

// ---------------------------------------------------------------- build: circuit, r1cs, symbols

const CIRCUIT = path.join(ROOT, 'circuits', 'billing.circom');
const LIB = path.join(ROOT, 'circuits', 'lib', 'billing_lib.circom');
/** iden3 .wtns (version 2) of a full witness, for snarkjs.wtns.check. */
function writeWtns(file: string, w: readonly bigint[]): void {
  const n8 = 32;
  const le = (v: bigint) => {
    const b = Buffer.alloc(n8);
    let x = v;
    for (let i = 0; i < n8; i++) {
      b[i] = Number(x & 255n);
      x >>= 8n;
    }
    return b;
  };
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  const section = (type: number, body: Buffer) => {
    const h = Buffer.alloc(12);
    h.writeUInt32LE(type, 0);
    h.writeBigUInt64LE(BigInt(body.length), 4);
    return Buffer.concat([h, body]);
  };
  const head = Buffer.concat([Buffer.from('wtns', 'ascii'), u32(2), u32(2)]);
  fs.writeFileSync(file, Buffer.concat([head, section(1, Buffer.concat([u32(n8), le(P), u32(w.length)])), section(2, Buffer.concat(w.map(le)))]));
}

let tmp: string;
let circuit: CompiledCircuit;
let r1csFile: string;
/** The real circuit's witness calculator (throws on a failed assertion). */
let wc: WitnessCalculator;
/** Poseidon(4) of circomlib compiled alone (--O0, every signal a wire): the binding hash's
 *  internal signals for a claimed charge the real circuit's calculator would refuse. */
let poseidon4: WitnessCalculator;
let wires: Map<string, number>;
/** every signal name of the circuit, including those O2 eliminated (no wire) */
let labels: Set<string>;
/** [billing wire of main.bindingHash.X, Poseidon(4) wire of main.X] */
let bindingHashWires: [number, number][];
let poseidonOut: number;
let libSource: string[];
let mainSource: string[];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meterproof-circuit-negative-'));
  const helper = path.join(tmp, 'poseidon4.circom');
  fs.writeFileSync(helper, 'pragma circom 2.1.5;\ninclude "poseidon.circom";\ncomponent main = Poseidon(4);\n');
  await Promise.all([circom(CIRCUIT, tmp, ['--r1cs', '--O2']), circom(helper, tmp, ['--O0'])]);
  circuit = await CompiledCircuit.load(CIRCUIT, tmp);
  ({ r1csFile, wc, wires, labels } = circuit);
  poseidon4 = await WitnessCalculatorBuilder(new Uint8Array(fs.readFileSync(path.join(tmp, 'poseidon4_js', 'poseidon4.wasm'))));
  const helperWires = readSym(path.join(tmp, 'poseidon4.sym'));
  bindingHashWires = [...wires]
    .filter(([n]) => n.startsWith('main.bindingHash.'))
    .map(([n, w]) => {
      const h = helperWires.get(`main.${n.slice('main.bindingHash.'.length)}`);
      if (h === undefined) throw new Error(`Poseidon(4) has no wire for ${n}`);
      return [w, h];
    });
  poseidonOut = helperWires.get('main.out') ?? -1;
  libSource = fs.readFileSync(LIB, 'utf8').split('\n');
  mainSource = fs.readFileSync(CIRCUIT, 'utf8').split('\n');
}, 120_000);

afterAll(async () => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  await terminateCurve(); // snarkjs.wtns.check starts bn128 worker threads
});

const wire = (name: string) => circuit.wire(name);
const unsatisfied = (w: readonly bigint[], base?: readonly bigint[]) => circuit.unsatisfied(w, base);
const wiresOf = (...prefixes: string[]) => circuit.wiresOf(...prefixes);
const touches = (i: number, ws: Set<number>) => circuit.touches(i, ws);

// ---------------------------------------------------------------- building cases

const tariffOf = (s: TariffSpec) => tariffOfSpec(s, 'tariff_negative');

/** A valid (tariff, event, running total) with its reference charge and the real circuit's
 *  witness, checked to claim that charge. */
interface Case {
  readonly name: string;
  readonly ref: ChargeBreakdown;
  readonly input: Input;
  readonly numerics: Numerics;
  readonly eventCommitment: bigint;
  readonly tariffCommitment: bigint;
  readonly honest: readonly bigint[];
}

async function makeCase(name: string, spec: TariffSpec, units: bigint, cumulativeBefore: bigint, outcome: Outcome = 'success'): Promise<Case> {
  const tariff = tariffOf(spec);
  const ref = computeCharge({ units, outcome, cumulativeBefore }, pricingFromTariff(tariff));
  const args = { event: eventOf(units, outcome, 'evt_negative'), tariff, cumulativeBefore, blinding: randomBlinding(), charge: ref.charge };
  const input = await circuitInputs(args);
  const c = await bindingCommitments(args);
  const honest = await wc.calculateWitness(input, true);
  expect(honest[wire('main.charge')], name).toBe(ref.charge);
  return { name, ref, input, numerics: numericsOf(input), eventCommitment: c.eventCommitment, tariffCommitment: c.tariffCommitment, honest };
}

// ---------------------------------------------------------------- the witness model

/** Input signals and the components that only see inputs (range checks, tier-bound validation,
 *  the event and tariff commitments): a tamper never changes them. */
const INPUT_ONLY = [
  'main.binding_commitment', // recomputed with the charge, below
  'main.charge',
  'main.tariff_commitment',
  'main.event_digest_hi',
  'main.event_digest_lo',
  'main.usage_units',
  'main.outcome',
  'main.cumulative_units_before',
  'main.blinding',
  'main.tariff_digest_hi',
  'main.tariff_digest_lo',
  'main.unit_quantum',
  'main.min_charge_micros',
  'main.max_charge_micros',
  'main.rounding_mode',
  'main.tier_price[',
  'main.tier_bound[',
  'main.unitsRange.',
  'main.cumulativeRange.',
  'main.quantumRange.',
  'main.minRange.',
  'main.maxRange.',
  'main.minLeMax.',
  'main.priceRange[',
  'main.bounds.',
  'main.tariffHash.',
  'main.eventHash.',
  'main.bindingHash.', // recomputed with the charge, below
];

/** The honest witness of k with the prover's choices t applied consistently: every signal of the
 *  model, the claimed charge (the one the model computes, unless `claim` overrides it) and the
 *  binding commitment with its Poseidon signals for that charge. */
async function craft(k: Case, t: Tamper = {}, claim?: bigint): Promise<{ w: bigint[]; charge: bigint }> {
  const m = model(k.numerics, t);
  const charge = claim === undefined ? m.charge : mod(claim);
  const w = [...k.honest];
  for (const [name, v] of m.signals) {
    const idx = wires.get(name);
    if (idx !== undefined) w[idx] = v;
  }
  // the binding hash over the claimed charge as a field element (no range check here: the
  // circuit's Poseidon takes any; a forced comparison may compute a charge >= 2^64)
  const h = await poseidon4.calculateWitness({ inputs: [TAG_BINDING, k.eventCommitment, k.tariffCommitment, charge].map(String) }, true);
  for (const [bw, hw] of bindingHashWires) w[bw] = h[hw]!;
  w[wire('main.charge')] = charge;
  w[wire('main.binding_commitment')] = h[poseidonOut]!;
  return { w, charge };
}

/** The honest witness satisfies every constraint and crafting with no tamper reproduces it
 *  exactly: the patching is faithful, so a crafted witness differs only where the lie does. */
async function expectHonest(k: Case): Promise<void> {
  expect(k.honest.length, k.name).toBe(circuit.r1cs.nWires);
  expect(unsatisfied(k.honest), `${k.name}: honest witness`).toEqual([]);
  const { w, charge } = await craft(k);
  expect(charge, k.name).toBe(k.ref.charge);
  expect(w, `${k.name}: the model reproduces the real circuit's witness`).toEqual(k.honest);
}

/** The crafted witness violates at least one constraint, and every violated constraint belongs to
 *  one of the named checks (so the patch is consistent everywhere else). */
const expectCaughtBy = (k: Case, what: string, w: readonly bigint[], ...checks: string[]): number[] => circuit.expectCaughtBy(`${k.name}, ${what}`, w, k.honest, ...checks);

const expectNoWitness = (input: Input, what: string) => circuit.expectNoWitness(input, what);

/** Recomputes the three commitments for (possibly out-of-domain) raw numerics with the
 *  reference hash inputs of src/core/field.ts, so only the circuit's own checks can reject. */
async function reseal(input: Input): Promise<Input> {
  const n = numericsOf(input);
  const big = (k: string) => BigInt(input[k] as string);
  const t: TariffEncoding = {
    digest: '',
    digestHi: big('tariff_digest_hi'),
    digestLo: big('tariff_digest_lo'),
    quantum: n.quantum,
    min: n.min,
    max: n.max,
    rounding: n.mode,
    prices: n.prices as unknown as Quad,
    bounds: n.bounds as unknown as Triple,
  };
  const e: EventEncoding = {
    digest: '',
    digestHi: big('event_digest_hi'),
    digestLo: big('event_digest_lo'),
    units: n.u,
    outcome: n.outcome,
    cumulativeBefore: n.c,
    blinding: big('blinding'),
  };
  const tariffC = await poseidonHash(tariffHashInputs(t));
  const eventC = await poseidonHash(eventHashInputs(e));
  const bindingC = await poseidonHash(bindingHashInputs(eventC, tariffC, big('charge')));
  return { ...input, tariff_commitment: tariffC.toString(), binding_commitment: bindingC.toString() };
}

// ---------------------------------------------------------------- the tests

describe('the witness patching used below', () => {
  it('covers every signal a tamper can change, and reproduces honest witnesses exactly', async () => {
    const k = await makeCase('graduated half_even', { tiers: [[100n, 50n], [1000n, 40n], [5000n, 30n], [null, 20n]], quantum: 7n, mode: 'half_even', min: 10n }, 777n, 60n);
    await expectHonest(k);
    const modelled = new Set(model(k.numerics, {}).signals.keys());
    const uncovered = [...wires.keys()].filter((n) => n !== 'one' && !modelled.has(n) && !INPUT_ONLY.some((p) => n.startsWith(p)));
    expect(uncovered).toEqual([]);
    // and the model names only real signals (some without a wire: O2 eliminated them)
    expect([...modelled].filter((n) => !labels.has(n))).toEqual([]);
    // a changed charge alone is caught by the charge equality (and nothing else)
    const { w } = await craft(k, {}, k.ref.charge + 1n);
    expectCaughtBy(k, 'charge + 1', w, 'main.charge');
  });
});

describe('gap 1: tampered tier-index hints k0/k1 of MinWithBounds (R1CS)', () => {
  const G: [bigint | null, bigint][] = [[100n, 50n], [1000n, 40n], [5000n, 30n], [null, 20n]];
  const cases: [string, TariffSpec, bigint, bigint][] = [
    ['c in tier 0, c + u in tier 1', { tiers: G, quantum: 7n, mode: 'half_even', min: 10n, max: 1_000_000n }, 777n, 60n],
    ['c on B1, c + u on B2 (boundaries)', { tiers: G, quantum: 3n, mode: 'ceil' }, 900n, 100n],
    ['c + u on B3, last finite bound', { tiers: G, quantum: 1n }, 4999n, 1n],
    ['two tiers with INF padding', { tiers: [[10n, 9n], [null, 2n]], quantum: 4n, mode: 'half_up' }, 6n, 8n],
    ['linear tariff (all bounds INF), largest positions', { price: 3n, quantum: 5n, mode: 'ceil' }, U64_MAX, U64_MAX],
    ['bounds 1, 2, 2^64 - 1; c + u beyond 2^64', { tiers: [[1n, 3n], [2n, 5n], [U64_MAX, 7n], [null, 11n]], quantum: 2n, mode: 'half_even' }, 4n, U64_MAX - 1n],
  ];

  it.each(cases)('%s: only the true tier indices satisfy the R1CS; all 15 other (kStart, kEnd) fail a position check', async (name, spec, u, c) => {
    const k = await makeCase(name, spec, u, c);
    await expectHonest(k);
    const tierOf = (x: bigint) => BigInt(k.numerics.bounds.filter((b) => b <= x).length);
    const [ks, ke] = [tierOf(c), tierOf(c + u)];
    let wrongCharges = 0;
    for (let kStart = 0n; kStart < 4n; kStart++) {
      for (let kEnd = 0n; kEnd < 4n; kEnd++) {
        if (kStart === ks && kEnd === ke) continue;
        const { w, charge } = await craft(k, { kStart, kEnd });
        if (charge !== k.ref.charge) wrongCharges++;
        const what = `kStart ${kStart} (true ${ks}), kEnd ${kEnd} (true ${ke})`;
        // caught by B_k <= x < B_{k+1} of a lying position, or (when the lie makes the raw charge
        // negative) by the quotient range as well; never elsewhere
        const lying = [...(kStart !== ks ? ['main.atStart.aboveLo.', 'main.atStart.belowHi.'] : []), ...(kEnd !== ke ? ['main.atEnd.aboveLo.', 'main.atEnd.belowHi.'] : [])];
        const bad = expectCaughtBy(k, what, w, ...lying, 'main.quotientBits.');
        const positionChecks = wiresOf(...lying);
        expect(bad.some((i) => touches(i, positionChecks)), `${name}, ${what}: a position check fails`).toBe(true);
      }
    }
    // the lies are not harmless: some of them would change the charge
    expect(wrongCharges, name).toBeGreaterThan(0);
  });

  it('non-boolean tier-index bits (2, −1, 1/2 for k0 or k1, at either position) fail', async () => {
    const k = await makeCase('non-boolean', { tiers: G, quantum: 7n, mode: 'half_even' }, 777n, 60n);
    await expectHonest(k);
    for (const pos of ['main.atStart', 'main.atEnd']) {
      for (const bit of ['k0', 'k1']) {
        for (const v of [2n, P - 1n, inv(2n)]) {
          const { w } = await craft(k, { set: { [`${pos}.${bit}`]: v } });
          expectCaughtBy(k, `${pos}.${bit} = ${v}`, w, `${pos}.k`, `${pos}.aboveLo.`, `${pos}.belowHi.`, 'main.quotientBits.');
        }
      }
    }
  });
});

describe('gap 2: tampered quotient/remainder hints under ceil, half_even and the clamp (R1CS)', () => {
  it('ceil: quotient − 1 with remainder + quantum would claim the floor result; only remainder < quantum catches it', async () => {
    const k = await makeCase('ceil', { price: 7n, quantum: 10n, mode: 'ceil' }, 1234n, 0n);
    await expectHonest(k);
    expect([k.ref.quotient, k.ref.remainder, k.ref.charge]).toEqual([863n, 8n, 864n]);
    const { w, charge } = await craft(k, { q: 862n, r: 18n });
    expect(charge).toBe(863n);
    expectCaughtBy(k, 'q − 1, r + Q', w, 'main.remainderBelowQuantum.');
  });

  it('ceil: quotient + 1 with a negative remainder is caught by the remainder range check', async () => {
    const k = await makeCase('ceil', { price: 7n, quantum: 10n, mode: 'ceil' }, 1234n, 0n);
    await expectHonest(k);
    const { w, charge } = await craft(k, { q: 864n, r: -2n });
    expect(charge).toBe(865n);
    expectCaughtBy(k, 'q + 1, r − Q', w, 'main.remainderRange.');
  });

  it('ceil: remainder 0 with the quotient solving the division mod p (claims no rounding up) fails the quotient range', async () => {
    const k = await makeCase('ceil', { price: 7n, quantum: 10n, mode: 'ceil', max: 100_000n }, 1234n, 0n);
    await expectHonest(k);
    const q = mod(8638n * inv(10n));
    expect(mod(q * 10n)).toBe(8638n);
    const { w } = await craft(k, { q, r: 0n });
    expectCaughtBy(k, 'r = 0, q = raw / Q mod p', w, 'main.quotientBits.');
  });

  // bit 0 is both the parity and the lowest bit of the quotient, so the flip moves the quotient too
  it.each([
    ['even quotient 2 rounds down to 2: parity 1 would round up (to 3 + 1)', 25n, 2n, 1n, 4n],
    ['odd quotient 3 rounds up to 4: parity 0 would round down (to 3 − 1)', 35n, 4n, 0n, 2n],
  ])('half_even on an exact half, %s; the flipped parity bit fails the quotient decomposition', async (_what, units, honestCharge, parity, lie) => {
    const k = await makeCase('half_even tie', { price: 1n, quantum: 10n, mode: 'half_even' }, units, 0n);
    await expectHonest(k);
    expect([k.ref.remainder, k.ref.charge]).toEqual([5n, honestCharge]);
    const { w, charge } = await craft(k, { set: { 'main.quotientBits.out[0]': parity } });
    expect(charge).toBe(lie);
    expectCaughtBy(k, `parity ${parity}`, w, 'main.quotientBits.');
  });

  it('half_even on an exact half: quotient ± 1 with remainder ∓ quantum fails the remainder checks', async () => {
    const k = await makeCase('half_even tie', { price: 1n, quantum: 10n, mode: 'half_even' }, 35n, 0n);
    await expectHonest(k);
    const down = await craft(k, { q: 2n, r: 15n });
    expect(down.charge).toBe(3n);
    expectCaughtBy(k, 'q − 1, r + Q', down.w, 'main.remainderBelowQuantum.');
    const upper = await craft(k, { q: 4n, r: -5n });
    expect(upper.charge).toBe(4n); // r < 0: not "half or more", so no rounding: q = 4
    expectCaughtBy(k, 'q + 1, r − Q', upper.w, 'main.remainderRange.', 'main.halfOrMore.');
  });

  it('clamp: a quotient ≥ 2^64 (capped, clamped to max) replaced by a small one, the remainder absorbing the rest, fails the remainder checks', async () => {
    const k = await makeCase('huge quotient', { price: U64_MAX, quantum: 3n, max: 1_000_000n }, 1n << 40n, 0n);
    await expectHonest(k);
    expect(k.ref.quotient >= TWO64 && k.ref.clamped === 'max').toBe(true);
    const q = 5n;
    const { w, charge } = await craft(k, { q, r: k.ref.raw - q * 3n });
    expect(charge).toBe(5n);
    expectCaughtBy(k, 'q = 5', w, 'main.remainderRange.', 'main.remainderBelowQuantum.', 'main.halfOrMore.');
  });

  it('clamp: below the minimum, quotient − 1 with remainder + quantum keeps the clamped charge but still fails remainder < quantum', async () => {
    const k = await makeCase('min clamp', { price: 7n, quantum: 10n, mode: 'half_up', min: 1000n }, 105n, 0n);
    await expectHonest(k);
    expect([k.ref.quotient, k.ref.remainder, k.ref.clamped]).toEqual([73n, 5n, 'min']);
    const { w, charge } = await craft(k, { q: 72n, r: 15n });
    expect(charge).toBe(1000n);
    expectCaughtBy(k, 'q − 1, r + Q', w, 'main.remainderBelowQuantum.');
  });

  const divisionCases: [string, TariffSpec, bigint, bigint][] = [
    ['ceil', { price: 7n, quantum: 10n, mode: 'ceil' }, 1234n, 0n],
    ['half_up', { tiers: [[100n, 5n], [null, 3n]], quantum: 9n, mode: 'half_up' }, 123n, 50n],
    ['half_even exact half, even quotient', { price: 1n, quantum: 10n, mode: 'half_even' }, 25n, 0n],
    ['half_even exact half, odd quotient', { price: 1n, quantum: 10n, mode: 'half_even' }, 35n, 0n],
    ['floor clamped to the minimum', { price: 7n, quantum: 10n, min: 1000n, max: 5000n }, 105n, 0n],
    ['ceil clamped to the maximum', { price: 10n, quantum: 3n, mode: 'ceil', min: 10n, max: 2000n }, 1000n, 0n],
    ['quotient ≥ 2^64 capped and clamped, half_even', { price: U64_MAX, quantum: U64_MAX - 1n, mode: 'half_even', max: 77n }, U64_MAX, 0n],
    ['quantum 2^64 − 1, ceil', { price: 5n, quantum: U64_MAX, mode: 'ceil' }, 3n, 0n],
  ];

  it.each(divisionCases)('%s: every alternative (quotient, remainder) fails the division range checks', async (name, spec, u, c) => {
    const k = await makeCase(name, spec, u, c);
    await expectHonest(k);
    const { raw, quotient: q, remainder: r } = k.ref;
    const Q = k.numerics.quantum;
    const alternatives: [bigint, bigint][] = [-2n, -1n, 1n, 2n].map((d) => [q + d, r - d * Q]);
    // every in-range remainder r' != r: the quotient then solves the division only modulo p
    for (const r2 of new Set([0n, 1n, Q / 2n, (Q + 1n) / 2n, Q - 1n, r - 1n, r + 1n])) {
      if (r2 >= 0n && r2 < Q && r2 !== r) alternatives.push([mod((raw - r2) * inv(Q)), r2]);
    }
    expect(alternatives.length).toBeGreaterThanOrEqual(6);
    for (const [q2, r2] of alternatives) {
      expect(mod(q2 * Q + r2), 'each alternative satisfies raw = q·Q + r mod p').toBe(mod(raw));
      const { w } = await craft(k, { q: q2, r: r2 });
      expectCaughtBy(k, `q = ${q2}, r = ${r2}`, w, 'main.quotientBits.', 'main.remainderRange.', 'main.remainderBelowQuantum.', 'main.halfOrMore.');
    }
  });
});

describe('gap 3: 2^64 as the last finite tier bound before INF (witness calculator)', () => {
  const I = INF.toString();
  const lastBoundCheck = () => `TierBounds:${lineIn(libSource, 'lastBits.in <==')}`;

  /** An input for raw bounds/prices, claiming the charge computeCharge gives for them (it does
   *  not validate a PricingTariff), with the commitments recomputed. */
  async function rawTariffInput(bounds: bigint[], prices: bigint[], u: bigint, c: bigint): Promise<{ input: Input; charge: bigint }> {
    const base = await makeCase('base', { tiers: [[100n, 1n], [null, 1n]] }, u, c);
    const nTiers = bounds.filter((b) => b !== INF).length + 1;
    const pricing: PricingTariff = {
      tiers: prices.slice(0, nTiers).map((price, i) => ({ upTo: i < nTiers - 1 ? bounds[i]! : null, price })),
      quantum: 1n,
      min: 0n,
      max: U64_MAX,
      rounding: 'floor',
    };
    const charge = computeCharge({ units: u, outcome: 'success', cumulativeBefore: c }, pricing).charge;
    const input = await reseal({ ...base.input, tier_bound: bounds.map(String), tier_price: prices.map(String), charge: charge.toString() });
    return { input, charge };
  }

  it.each([
    ['[2^64, INF, INF]', [TWO64, INF, INF], [5n, 4n, 0n, 0n]],
    ['[1, 2^64, INF]', [1n, TWO64, INF], [5n, 4n, 3n, 0n]],
  ])('bounds %s have no witness: the last finite bound must be < 2^64', async (what, bounds, prices) => {
    for (const [u, c] of [
      [2n, U64_MAX - 1n],
      [U64_MAX, U64_MAX],
      [10n, 0n],
    ] as const) {
      const { input, charge } = await rawTariffInput(bounds, prices, u, c);
      expect(input.tier_bound).toEqual(bounds.map(String));
      const trace = await expectNoWitness(input, `${what}, u ${u}, c ${c}, charge ${charge}`);
      expect(trace, what).toContain(lastBoundCheck());
    }
    // and no tariff snapshot encodes to them: up_to must be < 2^64
    expect(() => tariffOf({ tiers: [[TWO64, 5n], [null, 4n]] })).toThrow();
  });

  it('bounds [2^64 − 1, INF, INF] are accepted, agree with computeCharge, and satisfy the R1CS', async () => {
    for (const [u, c] of [
      [2n, U64_MAX - 1n], // one unit on each side of the bound
      [U64_MAX, U64_MAX],
      [10n, 0n],
    ] as const) {
      const k = await makeCase('[2^64 − 1, INF, INF]', { tiers: [[U64_MAX, 5n], [null, 4n]], quantum: 3n, mode: 'half_up' }, u, c);
      expect(k.input.tier_bound).toEqual([U64_MAX.toString(), I, I]);
      expect(unsatisfied(k.honest)).toEqual([]);
      if (c === U64_MAX - 1n) expect(k.ref.tierUnits).toEqual([1n, 1n]);
      // a wrong charge for the same tariff has no witness (the charge equality fails)
      const trace = await expectNoWitness(await reseal({ ...k.input, charge: (k.ref.charge ^ 1n).toString() }), 'charge with bit 0 flipped');
      expect(trace[0]).toBe(`Billing:${lineIn(mainSource, 'charge === computedCharge')}`);
    }
  });
});

describe('gap 4: a price behind the INF padding (witness calculator)', () => {
  const I = INF.toString();
  const priceBehindInf = () => `Billing:${lineIn(mainSource, 'bounds.isInf[i] * tier_price[i + 1] === 0')}`;

  it('a 4th price behind B3 = INF has no witness (it would not change the charge); with price 0 it is accepted', async () => {
    const k = await makeCase('three tiers', { tiers: [[100n, 5n], [1000n, 4n], [null, 3n]], quantum: 3n, mode: 'half_even' }, 2000n, 50n);
    expect(k.input.tier_bound).toEqual(['100', '1000', I]);
    expect(k.input.tier_price).toEqual(['5', '4', '3', '0']);
    await expect(wc.calculateWitness(await reseal(k.input), true)).resolves.toEqual(k.honest);
    for (const p3 of [1n, U64_MAX]) {
      const trace = await expectNoWitness(await reseal({ ...k.input, tier_price: ['5', '4', '3', p3.toString()] }), `tier_price[3] = ${p3}`);
      expect(trace[0]).toBe(priceBehindInf());
    }
  });

  it('a linear tariff with a 2nd (or 3rd, 4th) price ≠ 0 has no witness; with zeros it is accepted', async () => {
    const k = await makeCase('linear', { price: 5n, quantum: 2n, mode: 'ceil', min: 7n }, 1001n, 3n);
    expect(k.input.tier_bound).toEqual([I, I, I]);
    expect(k.input.tier_price).toEqual(['5', '0', '0', '0']);
    await expect(wc.calculateWitness(await reseal(k.input), true)).resolves.toEqual(k.honest);
    for (const prices of [
      ['5', '1', '0', '0'],
      ['5', '5', '0', '0'],
      ['5', '0', '1', '0'],
      ['5', '0', '0', '1'],
    ]) {
      const trace = await expectNoWitness(await reseal({ ...k.input, tier_price: prices }), `prices ${prices.join(',')}`);
      expect(trace[0]).toBe(priceBehindInf());
    }
  });
});

describe('gap 5: plausible wrong charges (R1CS)', () => {
  const OUTCOME_CHECK = ['main.outcome', 'main.outcomeBoth', 'main.billable'];

  it.each(['error', 'timeout'] as const)('%s claiming the minimum: rejected as a plain claim and when decoded as billable', async (outcome) => {
    const k = await makeCase(outcome, { price: 3n, quantum: 10n, min: 500n }, 40n, 0n, outcome);
    await expectHonest(k);
    expect(k.ref.charge).toBe(0n);
    // plain: everything honest but the charge
    const plain = await craft(k, {}, 500n);
    const bad = expectCaughtBy(k, 'charge = min', plain.w, 'main.charge');
    expect(bad.every((i) => touches(i, wiresOf('main.billable')))).toBe(true);
    // consistent: the outcome decoded as success (00) or partial (11), so billable = 1 and the
    // computed charge is the minimum
    for (const bits of [
      [0n, 0n],
      [1n, 1n],
    ] as [bigint, bigint][]) {
      const { w, charge } = await craft(k, { set: { 'main.outcomeBits.out[0]': bits[0], 'main.outcomeBits.out[1]': bits[1] } });
      expect(charge).toBe(500n);
      const caught = expectCaughtBy(k, `outcome bits ${bits.join('')}`, w, ...OUTCOME_CHECK);
      expect(caught.some((i) => touches(i, wiresOf('main.charge'))), 'not the charge equality').toBe(false);
    }
    // consistent: billable = 1 claimed directly, the decoding left honest
    const direct = await craft(k, { set: { 'main.billable': 1n } });
    expect(direct.charge).toBe(500n);
    expectCaughtBy(k, 'billable = 1', direct.w, ...OUTCOME_CHECK);
  });

  // The min and max clamps, skipped the same three ways: the plain unclamped value, the
  // comparison's output flipped, and the clamped signal set to the unclamped value directly.
  it.each([
    ['minimum', '≥ min', { spec: { price: 7n, quantum: 10n, min: 1000n, max: 2000n }, units: 100n, rounded: 70n, charge: 1000n, flag: 'main.atLeastMin', flagDesc: 'capped >= min claimed', signal: 'main.raised', signalDesc: 'raised = capped claimed' }],
    ['maximum', '≤ max', { spec: { price: 10n, quantum: 1n, min: 1000n, max: 2000n }, units: 300n, rounded: 3000n, charge: 2000n, flag: 'main.atMostMax', flagDesc: 'capped <= max claimed', signal: 'main.clamped', signalDesc: 'clamped = raised claimed' }],
  ] as const)('skipping the %s (claiming the unclamped rounded value) fails the %s comparison', async (bound, _check, t) => {
    const k = await makeCase(bound.slice(0, 3), t.spec, t.units, 0n);
    await expectHonest(k);
    expect([k.ref.rounded, k.ref.charge]).toEqual([t.rounded, t.charge]);
    expectCaughtBy(k, `plain ${t.rounded}`, (await craft(k, {}, t.rounded)).w, 'main.charge');
    const { w, charge } = await craft(k, { set: { [`${t.flag}.out`]: 1n } });
    expect(charge).toBe(t.rounded);
    expectCaughtBy(k, t.flagDesc, w, `${t.flag}.`);
    const direct = await craft(k, { set: { [t.signal]: t.rounded } });
    expect(direct.charge).toBe(t.rounded);
    expectCaughtBy(k, t.signalDesc, direct.w, t.signal);
  });

  it('skipping the 2^64 cap of a huge quotient (claiming its low 64 bits) fails the quotient-is-small check', async () => {
    const k = await makeCase('huge', { price: U64_MAX, quantum: 1n, max: 12_345n }, U64_MAX, 0n);
    await expectHonest(k);
    expect([k.ref.quotient, k.ref.charge]).toEqual([U64_MAX * U64_MAX, 12_345n]);
    const low = (U64_MAX * U64_MAX) % TWO64;
    expect(low).toBe(1n);
    expectCaughtBy(k, 'plain low bits', (await craft(k, {}, low)).w, 'main.charge');
    const { w, charge } = await craft(k, { set: { 'main.quotientSmall.out': 1n } });
    expect(charge).toBe(low);
    expectCaughtBy(k, 'quotient < 2^64 claimed', w, 'main.quotientSmall.');
    const direct = await craft(k, { set: { 'main.capped': low } });
    expect(direct.charge).toBe(low);
    expectCaughtBy(k, 'capped = low bits claimed', direct.w, 'main.capped');
  });

  it('ceil claiming the floor result (remainder claimed zero) fails the remainder-is-zero check', async () => {
    const k = await makeCase('ceil', { price: 7n, quantum: 10n, mode: 'ceil' }, 1234n, 0n);
    await expectHonest(k);
    expectCaughtBy(k, 'plain 863', (await craft(k, {}, 863n)).w, 'main.charge');
    const { w, charge } = await craft(k, { set: { 'main.remainderZero.out': 1n } });
    expect(charge).toBe(863n);
    expectCaughtBy(k, 'remainder = 0 claimed', w, 'main.remainderZero.');
  });

  it.each([
    ['half_up above half claiming down', 'half_up', 26n, 3n, { set: { 'main.halfOrMore.out': 0n } }, 2n, 'main.halfOrMore.'],
    ['half_up on the half claiming down', 'half_up', 25n, 3n, { set: { 'main.halfOrMore.out': 0n } }, 2n, 'main.halfOrMore.'],
    ['half_up below half claiming up', 'half_up', 24n, 2n, { set: { 'main.halfOrMore.out': 1n } }, 3n, 'main.halfOrMore.'],
    ['half_even above half claiming down', 'half_even', 26n, 3n, { set: { 'main.halfOrMore.out': 0n } }, 2n, 'main.halfOrMore.'],
    ['half_even tie, even quotient, claiming up (no tie)', 'half_even', 25n, 2n, { set: { 'main.exactlyHalf.out': 0n } }, 3n, 'main.exactlyHalf.'],
    ['half_even just above half claiming a tie with an even quotient', 'half_even', 26n, 3n, { set: { 'main.exactlyHalf.out': 1n } }, 2n, 'main.exactlyHalf.'],
  ] as [string, RoundingMode, bigint, bigint, Tamper, bigint, string][])('%s fails that comparison', async (what, mode, units, honestCharge, tamper, lie, check) => {
    const k = await makeCase(what, { price: 1n, quantum: 10n, mode }, units, 0n);
    await expectHonest(k);
    expect(k.ref.charge).toBe(honestCharge);
    expectCaughtBy(k, `plain ${lie}`, (await craft(k, {}, lie)).w, 'main.charge');
    const { w, charge } = await craft(k, tamper);
    expect(charge).toBe(lie);
    expectCaughtBy(k, what, w, check);
  });

  it('a floor tariff claiming the ceil result (rounding mode decoded as ceil) fails the mode decoding', async () => {
    const k = await makeCase('floor', { price: 7n, quantum: 10n, mode: 'floor' }, 1234n, 0n);
    await expectHonest(k);
    expect(k.ref.charge).toBe(863n);
    expectCaughtBy(k, 'plain 864', (await craft(k, {}, 864n)).w, 'main.charge');
    const { w, charge } = await craft(k, { set: { 'main.modeBits.out[0]': 1n, 'main.modeBits.out[1]': 0n } });
    expect(charge).toBe(864n);
    expectCaughtBy(k, 'mode bits 10', w, 'main.modeBits.', 'main.rounding_mode');
  });

  const DERIVED = [
    'main.outcomeBoth',
    'main.billable',
    'main.remainderZero.out',
    'main.halfOrMore.out',
    'main.exactlyHalf.out',
    'main.ceilUp',
    'main.ceilUpHigh',
    'main.halfUp',
    'main.halfEven',
    'main.tieEvenQuotient',
    'main.tieDown',
    'main.quotientSmall.out',
    'main.capped',
    'main.atLeastMin.out',
    'main.atMostMax.out',
    'main.raised',
    'main.clamped',
  ];
  const derivedCases: [string, TariffSpec, bigint, bigint, Outcome][] = [
    ['ceil', { price: 7n, quantum: 10n, mode: 'ceil' }, 1234n, 0n, 'success'],
    ['half_even tie', { price: 1n, quantum: 10n, mode: 'half_even' }, 35n, 0n, 'success'],
    ['half_up, minimum', { price: 7n, quantum: 10n, mode: 'half_up', min: 1000n }, 105n, 0n, 'partial'],
    ['maximum', { price: 10n, quantum: 1n, min: 1000n, max: 2000n }, 300n, 0n, 'success'],
    ['huge quotient', { price: U64_MAX, quantum: 1n, max: 12_345n, mode: 'ceil' }, U64_MAX, 0n, 'success'],
    ['error', { price: 3n, quantum: 10n, min: 500n, mode: 'half_even' }, 40n, 0n, 'error'],
  ];

  it.each(derivedCases)('%s: a lie about any one rounding, clamp or billing signal (downstream consistent) is rejected by its own constraint', async (name, spec, u, c, outcome) => {
    const k = await makeCase(name, spec, u, c, outcome);
    await expectHonest(k);
    const honest = model(k.numerics, {}).signals;
    for (const signal of DERIVED) {
      expect(wires.has(signal), signal).toBe(true);
      const h = honest.get(signal)!;
      const lie = h === 0n ? 1n : h === 1n ? 0n : h + 1n;
      const { w } = await craft(k, { set: { [signal]: lie } });
      expectCaughtBy(k, `${signal} = ${lie}`, w, signal);
    }
  });

  it('snarkjs wtns.check on the .r1cs agrees: the honest witness passes, the crafted ones fail', async () => {
    const k = await makeCase('ceil', { price: 7n, quantum: 10n, mode: 'ceil', min: 500n }, 1234n, 0n, 'error');
    await expectHonest(k);
    const logger = { debug() {}, info() {}, warn() {}, error() {} };
    const check = async (w: readonly bigint[], file: string) => {
      writeWtns(path.join(tmp, file), w);
      return snarkjs.wtns.check(r1csFile, path.join(tmp, file), logger);
    };
    expect(await check(k.honest, 'honest.wtns')).toBe(true);
    expect(await check((await craft(k, { set: { 'main.outcomeBits.out[0]': 0n, 'main.outcomeBits.out[1]': 0n } })).w, 'billable.wtns')).toBe(false);
    expect(await check((await craft(k, {}, 500n)).w, 'plain.wtns')).toBe(false);
  });
});
