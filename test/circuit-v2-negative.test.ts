// Negative tests of the bn128-poseidon8-v2 circuit (circuits/billing_v2.circom, compiled here from
// source): every way a prover could cheat has no witness.
//   - wrong public claims: charge, running total after (for every outcome), the tariff commitment
//     of another tariff, salt or digest, out-of-range and malformed private values (witness
//     calculator, with the commitment recomputed for the raw values so only the range check can
//     reject);
//   - the hints and every other signal the prover computes, lied about with everything downstream
//     recomputed consistently (test/support/charge-model.ts), against the compiled .r1cs;
//   - the statement binding: a proof made for one statement (or for a running total other than the
//     statement's) does not verify with another statement's public signals (Groth16, committed keys);
//   - the salt: a price sweep cannot confirm a tariff against its salted digest or commitment.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG_TARIFF_V2, publicSignalsV2, saltedTariffDigest, tariffCommitmentV2 } from '../src/core/binding-v2.ts';
import type { Outcome } from '../src/core/charge.ts';
import { poseidonHash, randomBlinding } from '../src/core/commitment.ts';
import { BN128_P, TIER_BOUND_INF } from '../src/core/field.ts';
import type { StatementV2 } from '../src/core/schemas.ts';
import { createProver, terminateCurve, verifyGroth16, type Prover } from '../src/prover/index.ts';
import { PINNED_VKEYS } from '../src/verifier/vkeys.ts';
import { inv, mod, model, numericsOf, type Input, type Numerics, type Tamper } from './support/charge-model.ts';
import { CompiledCircuit, ROOT, lineIn } from './support/circuit-harness.ts';
import { statementV2Of, v2Case, type V2Case } from './support/statement-v2.ts';
import { tariffOf, type TariffSpec } from './support/tariffs.ts';

const P = BN128_P;
const TWO64 = 1n << 64n;
const U64_MAX = TWO64 - 1n;
const INF = TIER_BOUND_INF;
const CIRCUIT_V2 = path.join(ROOT, 'circuits', 'billing_v2.circom');
const CHARGE_V2 = path.join(ROOT, 'circuits', 'v2', 'charge_v2.circom');
const ENGINE = 'main.engine.';

let tmp: string;
let circuit: CompiledCircuit;
let mainSource: string[];
let chargeSource: string[];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meterproof-circuit-v2-negative-'));
  circuit = await CompiledCircuit.compile(CIRCUIT_V2, tmp);
  mainSource = fs.readFileSync(CIRCUIT_V2, 'utf8').split('\n');
  chargeSource = fs.readFileSync(CHARGE_V2, 'utf8').split('\n');
}, 120_000);

afterAll(async () => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  await terminateCurve();
});

const at = (source: string[], template: string, snippet: string) => `${template}:${lineIn(source, snippet)}`;
const CHARGE_EQ = () => at(mainSource, 'BillingV2', 'charge === engine.computedCharge');
const AFTER_EQ = () => at(mainSource, 'BillingV2', 'cumulative_units_after - cumulative_units_before === engine.billable * usage_units');
const COMMITMENT_EQ = () => at(mainSource, 'BillingV2', 'tariff_commitment === tariffHash.out');

/** Recomputes the tariff commitment for the raw (possibly out-of-domain) values of the input, with
 *  the documented formula (mod p, no range checks), so only the circuit's own checks can reject. */
async function reseal(input: Input): Promise<Input> {
  const n = numericsOf(input);
  const big = (k: string) => BigInt(input[k] as string);
  const lin = (a: bigint, b: bigint, c = 0n) => mod(a + b * (1n << 66n) + c * (1n << 132n));
  const commitment = await poseidonHash([
    TAG_TARIFF_V2,
    mod(big('tariff_digest_hi')),
    mod(big('tariff_digest_lo')),
    lin(n.quantum, n.min, n.max),
    lin(n.prices[0]!, n.bounds[0]!),
    lin(n.prices[1]!, n.bounds[1]!),
    lin(n.prices[2]!, n.bounds[2]!),
    lin(n.prices[3]!, n.mode),
    mod(big('tariff_salt')),
  ]);
  return { ...input, tariff_commitment: commitment.toString() };
}

// ---------------------------------------------------------------- witness calculator

describe('wrong public claims have no witness', () => {
  const G: TariffSpec = { tiers: [[100n, 50n], [1000n, 40n], [5000n, 30n], [null, 20n]], quantum: 7n, mode: 'half_even', min: 500n, max: 1_000_000n };

  it.each(['success', 'partial', 'error', 'timeout'] as Outcome[])('%s: charge ±1, an overcharge, the minimum, and every wrong running total after', async (outcome) => {
    const k = await v2Case(outcome, tariffOf(G), 777n, 60n, outcome);
    await expect(circuit.wc.calculateWitness(k.input, true)).resolves.toBeDefined();
    const claims = [k.ref.charge + 1n, k.ref.charge - 1n, k.ref.charge * 2n + 1n, 1_000_000n, 500n, P - 1n].filter((c) => c !== k.ref.charge);
    for (const c of claims) expect(await circuit.expectNoWitness({ ...k.input, charge: mod(c).toString() }, `charge ${c}`)).toEqual([CHARGE_EQ()]);
    const before = 60n;
    const afters = [k.after + 1n, k.after - 1n, before, before + 777n, 0n, P - 1n].filter((a) => a !== k.after);
    // error/timeout must keep the total (before + usage is refused); success/partial must advance it
    expect(afters).toContain(k.ref.billable ? before : before + 777n);
    for (const a of afters) expect(await circuit.expectNoWitness({ ...k.input, cumulative_units_after: mod(a).toString() }, `after ${a}`)).toEqual([AFTER_EQ()]);
  });

  it('the commitment of another tariff, the same tariff under another salt, or other digest limbs', async () => {
    const k = await v2Case('base', tariffOf(G), 777n, 60n);
    const other = await v2Case('other', tariffOf({ ...G, min: 501n }), 777n, 60n);
    const tries: [string, Input][] = [
      ['another tariff’s commitment', { ...k.input, tariff_commitment: other.tariffCommitment.toString() }],
      ['the same tariff under another salt', { ...k.input, tariff_commitment: (await tariffCommitmentV2(k.tariff, randomBlinding())).toString() }],
      ['a wrong salt for the commitment', { ...k.input, tariff_salt: (k.tariffSalt + 1n).toString() }],
      ['salt 0', { ...k.input, tariff_salt: '0' }],
      ['tariff_digest_hi + 1', { ...k.input, tariff_digest_hi: (BigInt(k.input.tariff_digest_hi as string) + 1n).toString() }],
      ['tariff_digest_lo of another tariff', { ...k.input, tariff_digest_lo: other.input.tariff_digest_lo! }],
      ['another tariff’s numerics', { ...k.input, min_charge_micros: '501' }],
    ];
    for (const [what, input] of tries) expect(await circuit.expectNoWitness(input, what), what).toEqual([COMMITMENT_EQ()]);
  });
});

describe('out-of-range and malformed private values have no witness (commitment recomputed)', () => {
  let base: Input;
  beforeAll(async () => {
    base = (await v2Case('base', tariffOf({ tiers: [[100n, 5n], [1000n, 4n], [5000n, 3n], [null, 2n]], quantum: 3n, min: 10n, max: 1_000_000n, mode: 'half_even' }), 777n, 60n)).input;
  });
  it.each([
    ['usage_units', 'unitsRange.in'],
    ['cumulative_units_before', 'cumulativeRange.in'],
    ['unit_quantum', 'quantumRange.in'],
    ['min_charge_micros', 'minRange.in'],
    ['max_charge_micros', 'maxRange.in'],
  ])('%s = 2^64, 2^64 + 1 and p − 1', async (key, check) => {
    for (const v of [TWO64, TWO64 + 1n, P - 1n]) {
      const trace = await circuit.expectNoWitness(await reseal({ ...base, [key]: v.toString() }), `${key} = ${v}`);
      // AssertBits reports inside Num2Bits; the caller's line is the range check's
      expect(trace, `${key} = ${v}`).toContain(at(chargeSource, 'ChargeV2', check));
    }
  });

  it('tier prices of 2^64, codes 4, 7 and p − 1, quantum 0, min > max', async () => {
    for (let j = 0; j < 4; j++) {
      const prices = [...(base.tier_price as string[])];
      prices[j] = TWO64.toString();
      expect(await circuit.expectNoWitness(await reseal({ ...base, tier_price: prices }), `price ${j}`)).toContain(at(chargeSource, 'ChargeV2', 'priceRange[i].in'));
    }
    for (const [k, check] of [
      ['outcome', 'outcomeBits.in'],
      ['rounding_mode', 'modeBits.in'],
    ] as const) {
      for (const v of [4n, 7n, P - 1n]) expect(await circuit.expectNoWitness(await reseal({ ...base, [k]: v.toString() }), `${k} ${v}`)).toContain(at(chargeSource, 'ChargeV2', check));
    }
    expect(await circuit.expectNoWitness(await reseal({ ...base, unit_quantum: '0' }), 'quantum 0')).toContain(at(chargeSource, 'ChargeV2', 'remainderBelowQuantum.in'));
    expect(await circuit.expectNoWitness(await reseal({ ...base, min_charge_micros: '1000001' }), 'min > max')).toContain(at(chargeSource, 'ChargeV2', 'minLeMax.in'));
  });

  it('tier bounds out of order, repeated, zero, INF before a finite bound, 2^64 as a bound, a price behind INF', async () => {
    const I = INF.toString();
    const cases: [string, string[], string[]?][] = [
      ['B1 > B2', ['1000', '100', '5000']],
      ['B1 = B2', ['100', '100', '5000']],
      ['B1 = 0', ['0', '100', '5000']],
      ['INF then finite', [I, '1000', '5000']],
      ['2^64 as the last finite bound', ['100', TWO64.toString(), I]],
      ['2^65 − 1 as a bound', ['100', '1000', (INF - 1n).toString()]],
      ['price behind INF padding', ['100', I, I], ['5', '4', '3', '0']],
    ];
    for (const [what, bounds, prices] of cases) {
      const trace = await circuit.expectNoWitness(await reseal({ ...base, tier_bound: bounds, ...(prices ? { tier_price: prices } : {}) }), what);
      const check = prices ? at(chargeSource, 'ChargeV2', 'bounds.isInf[i] * tier_price[i + 1] === 0') : at(chargeSource, 'ChargeV2', 'bounds.bound <== tier_bound');
      expect(trace.some((t) => t === check || t.startsWith('TierBounds:')), `${what}: ${trace.join(' ')}`).toBe(true);
    }
  });
});

// ---------------------------------------------------------------- R1CS: lies about computed signals

interface Crafted {
  readonly k: V2Case;
  readonly n: Numerics;
  readonly honest: bigint[];
}

async function crafted(name: string, spec: TariffSpec, u: bigint, c: bigint, outcome: Outcome = 'success'): Promise<Crafted> {
  const k = await v2Case(name, tariffOf(spec), u, c, outcome);
  const honest = await circuit.wc.calculateWitness(k.input, true);
  expect(circuit.unsatisfied(honest), `${name}: honest witness`).toEqual([]);
  return { k, n: numericsOf(k.input), honest };
}

/** The honest witness with the prover's choices t applied consistently (every downstream signal,
 *  the claimed charge and the running total after recomputed), unless claims override them. */
function craft(c: Crafted, t: Tamper, claims: { charge?: bigint; after?: bigint } = {}): { w: bigint[]; charge: bigint } {
  const m = model(c.n, t, ENGINE);
  const w = [...c.honest];
  for (const [name, v] of m.signals) {
    const idx = circuit.wires.get(name);
    if (idx !== undefined) w[idx] = v;
  }
  const billable = m.signals.get(`${ENGINE}billable`)!;
  const charge = claims.charge ?? m.charge;
  w[circuit.wire('main.charge')] = mod(charge);
  w[circuit.wire('main.cumulative_units_after')] = mod(claims.after ?? c.n.c + billable * c.n.u);
  return { w, charge: mod(charge) };
}

const CASES: [string, TariffSpec, bigint, bigint, Outcome][] = [
  ['ceil, graduated', { tiers: [[100n, 50n], [1000n, 40n], [5000n, 30n], [null, 20n]], quantum: 7n, mode: 'ceil', min: 10n }, 777n, 60n, 'success'],
  ['half_even tie', { price: 1n, quantum: 10n, mode: 'half_even' }, 35n, 0n, 'success'],
  ['half_up, minimum, partial', { price: 7n, quantum: 10n, mode: 'half_up', min: 1000n }, 105n, 0n, 'partial'],
  ['maximum', { price: 10n, quantum: 1n, min: 1000n, max: 2000n }, 300n, 0n, 'success'],
  ['huge quotient, c + u past 2^64', { price: U64_MAX, quantum: 1n, max: 12_345n, mode: 'ceil' }, U64_MAX, U64_MAX - 1n, 'success'],
  ['error with a minimum', { price: 3n, quantum: 10n, min: 500n, mode: 'half_even' }, 40n, 0n, 'error'],
];

describe('R1CS: no lie about a computed signal survives', () => {
  it.each(CASES)('%s: the model reproduces the honest witness and covers every computed signal', async (name, spec, u, c, outcome) => {
    const x = await crafted(name, spec, u, c, outcome);
    const { w, charge } = craft(x, {});
    expect(w).toEqual(x.honest);
    expect(charge).toBe(x.k.ref.charge);
    const modelled = new Set(model(x.n, {}, ENGINE).signals.keys());
    const inputsOnly = ['main.engine.unitsRange.', 'main.engine.cumulativeRange.', 'main.engine.quantumRange.', 'main.engine.minRange.', 'main.engine.maxRange.', 'main.engine.minLeMax.', 'main.engine.priceRange[', 'main.engine.bounds.', 'main.tariffHash.', 'main.tagSquare', 'main.eventHiSquare', 'main.eventLoSquare'];
    const uncovered = [...circuit.wires.keys()].filter((s) => s !== 'one' && !/^main\.[a-z_]+(\[\d+\])?$/.test(s) && !modelled.has(s) && !inputsOnly.some((p) => s.startsWith(p)));
    expect(uncovered).toEqual([]);
    expect([...modelled].filter((s) => !circuit.labels.has(s))).toEqual([]);
  });

  it.each(CASES)('%s: every computed signal (hints included: quotient, remainder, tier indices, IsZero inverses, bits) lied about, downstream consistent, fails a constraint', async (name, spec, u, c, outcome) => {
    const x = await crafted(name, spec, u, c, outcome);
    const honest = model(x.n, {}, ENGINE).signals;
    let checked = 0;
    let freeInverses = 0;
    for (const [signal, h] of honest) {
      if (!circuit.wires.has(signal)) continue;
      for (const lie of [h === 0n ? 1n : h === 1n ? 0n : mod(h + 1n), mod(h + 2n), P - 1n]) {
        if (lie === h) continue;
        const { w, charge } = craft(x, { set: { [signal]: lie } });
        const bad = circuit.unsatisfied(w, x.honest);
        // IsZero(in) with in = 0: out = 1 whatever the inverse hint, so that hint is free but
        // changes nothing else
        const isZeroOfZero = signal.endsWith('.inv') && honest.get(signal.replace(/\.inv$/, '.out')) === 1n;
        if (isZeroOfZero) {
          expect(bad, signal).toEqual([]);
          expect(charge, signal).toBe(x.k.ref.charge);
          freeInverses++;
        } else {
          expect(bad.length, `${name}: ${signal} = ${lie}`).toBeGreaterThan(0);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(1000);
    expect(freeInverses).toBeLessThanOrEqual(3 * 3);
  });

  it.each(CASES)('%s: every other (quotient, remainder) and every other pair of tier indices fails', async (name, spec, u, c, outcome) => {
    const x = await crafted(name, spec, u, c, outcome);
    const Q = x.n.quantum;
    // the circuit divides the raw charge for every outcome (computeCharge reports 0 when not billable)
    const [q, r] = [x.honest[circuit.wire(`${ENGINE}quotient`)]!, x.honest[circuit.wire(`${ENGINE}remainder`)]!];
    const raw = q * Q + r;
    if (x.k.ref.billable) expect([q, r]).toEqual([x.k.ref.quotient, x.k.ref.remainder]);
    const alternatives: [bigint, bigint][] = [-2n, -1n, 1n, 2n].map((d) => [q + d, r - d * Q]);
    for (const r2 of new Set([0n, 1n, Q / 2n, Q - 1n, r + 1n])) if (r2 >= 0n && r2 < Q && r2 !== r) alternatives.push([mod((raw - r2) * inv(Q)), r2]);
    for (const [q2, r2] of alternatives) {
      const { w } = craft(x, { q: q2, r: r2 });
      circuit.expectCaughtBy(`${name}: q ${q2}, r ${r2}`, w, x.honest, `${ENGINE}quotientBits.`, `${ENGINE}remainderRange.`, `${ENGINE}remainderBelowQuantum.`, `${ENGINE}halfOrMore.`);
    }
    const tierOf = (p: bigint) => BigInt(x.n.bounds.filter((b) => b <= p).length);
    const [ks, ke] = [tierOf(c), tierOf(c + u)];
    for (let kStart = 0n; kStart < 4n; kStart++) {
      for (let kEnd = 0n; kEnd < 4n; kEnd++) {
        if (kStart === ks && kEnd === ke) continue;
        const { w } = craft(x, { kStart, kEnd });
        expect(circuit.unsatisfied(w, x.honest).length, `${name}: kStart ${kStart}, kEnd ${kEnd}`).toBeGreaterThan(0);
      }
    }
  });

  it('a single changed wire (any signal but the inputs) breaks a constraint, except a free IsZero inverse', async () => {
    const x = await crafted('single wires', CASES[0]![1], CASES[0]![2], CASES[0]![3]);
    const inputs = new Set([...circuit.wires].filter(([s]) => /^main\.[a-z_]+(\[\d+\])?$/.test(s)).map(([, i]) => i));
    let free = 0;
    for (let i = 1; i < x.honest.length; i++) {
      if (inputs.has(i)) continue;
      const w = [...x.honest];
      w[i] = mod(w[i]! + 1n);
      if (circuit.unsatisfied(w, x.honest).length === 0) {
        expect(circuit.names.get(i), `wire ${i}`).toMatch(/\.inv$/);
        free++;
      }
    }
    expect(free).toBeLessThanOrEqual(5);
  });

  it('plain wrong claims against a consistent witness: the charge and running-total equalities catch them', async () => {
    for (const [name, spec, u, c, outcome] of CASES) {
      const x = await crafted(name, spec, u, c, outcome);
      circuit.expectCaughtBy(`${name}: charge + 1`, craft(x, {}, { charge: x.k.ref.charge + 1n }).w, x.honest, 'main.charge', `${ENGINE}computedCharge`, `${ENGINE}billable`, `${ENGINE}clamped`);
      const wrongAfter = x.k.ref.billable ? c : c + u;
      circuit.expectCaughtBy(`${name}: after ${wrongAfter}`, craft(x, {}, { after: wrongAfter }).w, x.honest, 'main.cumulative_units_after');
    }
  });
});

// ---------------------------------------------------------------- Groth16: the statement binding

describe('a proof is bound to its statement (Groth16, committed v2 keys)', () => {
  let prover: Prover;
  const vkey = () => PINNED_VKEYS['bn128-poseidon8-v2']!.key;
  beforeAll(async () => {
    prover = await createProver({ keysDir: path.join(ROOT, 'keys', 'bn128-poseidon8-v2'), workers: 0 });
  }, 60_000);
  afterAll(async () => {
    await prover?.close();
  });

  const PILOT: TariffSpec = { tiers: [[50_000n, 5000n], [null, 8000n]], quantum: 1000n, mode: 'half_even' };

  it('running total 50,000 where the statement says 49,000: no witness for the statement’s signals, and a proof at 50,000 does not verify with them', async () => {
    const k = await v2Case('pilot at 49,000', tariffOf(PILOT), 1842n, 49_000n);
    expect(k.ref.charge).toBe(11_736n);
    // the prover's running total 50,000 with everything else the statement's: no witness
    expect(await circuit.expectNoWitness({ ...k.input, cumulative_units_before: '50000' }, 'before 50,000')).toEqual([CHARGE_EQ()]);
    // a consistent proof at 50,000 (its own charge and after) ...
    const at50 = await v2Case('pilot at 50,000', k.tariff, 1842n, 50_000n);
    expect(at50.ref.charge).not.toBe(k.ref.charge);
    const cheat = { ...k.input, cumulative_units_before: '50000', cumulative_units_after: at50.after.toString(), charge: at50.ref.charge.toString() };
    const { proof, publicSignals } = await prover.prove(cheat);
    expect(await verifyGroth16(vkey(), publicSignals, proof)).toBe(true);
    // ... has public signals other than the statement's, and does not verify with the statement's
    const statementSignals = publicSignalsV2(k.statement, k.tariffCommitment).map(String);
    expect(publicSignals).not.toEqual(statementSignals);
    expect(await verifyGroth16(vkey(), statementSignals, proof)).toBe(false);
  }, 60_000);

  it('a proof for one statement does not verify with the signals of a statement that differs in tenant, window, seq, event digest, issued_at, before or charge', async () => {
    const k = await v2Case('pilot', tariffOf(PILOT), 1842n, 49_000n);
    const { proof, publicSignals } = await prover.prove(k.input);
    const own = publicSignalsV2(k.statement, k.tariffCommitment).map(String);
    expect(publicSignals).toEqual(own);
    expect(await verifyGroth16(vkey(), own, proof)).toBe(true);
    const variants: [string, StatementV2][] = [
      ['tenant', { ...k.statement, tenant_id: 'tenant_other' }],
      ['window', { ...k.statement, billing_window_id: '2026-06' }],
      ['seq', { ...k.statement, chain: { ...k.statement.chain, seq: '8' } }],
      ['prev', { ...k.statement, chain: { ...k.statement.chain, prev: `sha256:${'b'.repeat(64)}` } }],
      ['event digest', { ...k.statement, event_digest: `sha256:${'e'.repeat(64)}` }],
      ['issued_at', { ...k.statement, issued_at: '2026-05-29T12:00:02.000Z' }],
      ['key_id', { ...k.statement, key_id: 'test-key-2' }],
      ['running total before', { ...k.statement, chain: { ...k.statement.chain, cumulative_units_before: '50000', cumulative_units_after: '51842' } }],
      ['charge', { ...k.statement, charge_micros: (k.ref.charge + 1n).toString() }],
      ['another event’s statement', statementV2Of({ event: k.event, tariff: k.tariff, before: 49_000n, eventSalt: randomBlinding(), tariffSalt: k.tariffSalt, charge: k.ref.charge })],
    ];
    for (const [what, s] of variants) {
      const signals = publicSignalsV2(s, k.tariffCommitment).map(String);
      expect(signals, what).not.toEqual(own);
      expect(await verifyGroth16(vkey(), signals, proof), what).toBe(false);
    }
  }, 60_000);
});

// ---------------------------------------------------------------- the salt

describe('the tariff salt makes a price brute force infeasible', () => {
  it('with the salt a candidate tariff is confirmed; with a wrong or zero salt no candidate price of a sweep matches the salted digest or the commitment', async () => {
    // the salt is drawn like a blinding: 254 random bits, rejection-sampled below p; an attacker
    // without it faces ~2^253 salts per candidate tariff
    const salt = randomBlinding();
    expect(salt >= 0n && salt < P).toBe(true);
    const secret = { quantum: 1000n, min: 50_000n, mode: 'floor' as const };
    const base = tariffOf({ price: 120n, ...secret });
    const candidate = (price: bigint) => ({ ...base, unit_price_micros: price.toString() });
    const digest = saltedTariffDigest(base, salt);
    const commitment = await tariffCommitmentV2(base, salt);
    expect(saltedTariffDigest(candidate(120n), salt)).toBe(digest);
    expect(await tariffCommitmentV2(candidate(120n), salt)).toBe(commitment);
    const wrongSalts = [0n, salt + 1n, randomBlinding()];
    let tried = 0;
    for (let price = 1n; price <= 300n; price++) {
      for (const s of wrongSalts) {
        expect(saltedTariffDigest(candidate(price), s)).not.toBe(digest);
        expect(await tariffCommitmentV2(candidate(price), s)).not.toBe(commitment);
        tried++;
      }
      if (price !== 120n) expect(saltedTariffDigest(candidate(price), salt)).not.toBe(digest);
    }
    expect(tried).toBe(900);
  }, 60_000);
});
