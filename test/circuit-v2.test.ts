// The bn128-poseidon8-v2 circuit (circuits/billing_v2.circom over circuits/v2/charge_v2.circom,
// compiled here from source) against the TypeScript side of the binding (src/core/binding-v2.ts):
// the witness input circuitInputsV2 makes for a statement satisfies every constraint of the .r1cs,
// the circuit's charge and running total after are computeCharge's and cumulativeAfter's, and its
// public signals are publicSignalsV2 of the statement. Then Groth16 proofs with the committed keys.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUBLIC_SIGNAL_NAMES_V2, TAG_TARIFF_V2, cumulativeAfter, publicSignalsV2, tariffHashInputsV2 } from '../src/core/binding-v2.ts';
import { poseidonHash } from '../src/core/commitment.ts';
import { TIER_BOUND_INF, asciiTag, tariffNumerics } from '../src/core/field.ts';
import { StatementV2 } from '../src/core/schemas.ts';
import type { Outcome } from '../src/core/charge.ts';
import { createProver, terminateCurve, verifyGroth16, type Prover } from '../src/prover/index.ts';
import { PINNED_VKEYS } from '../src/verifier/vkeys.ts';
import { CompiledCircuit, ROOT, lineIn } from './support/circuit-harness.ts';
import { prng, randomScenario } from './support/random-cases.ts';
import { v2Case, type V2Case } from './support/statement-v2.ts';
import { tariffOf, type TariffSpec } from './support/tariffs.ts';

const CIRCUIT_V2 = path.join(ROOT, 'circuits', 'billing_v2.circom');
const KEYS_V2 = path.join(ROOT, 'keys', 'bn128-poseidon8-v2');
const U64_MAX = (1n << 64n) - 1n;

let tmp: string;
let circuit: CompiledCircuit;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meterproof-circuit-v2-'));
  circuit = await CompiledCircuit.compile(CIRCUIT_V2, tmp);
}, 120_000);

afterAll(async () => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  await terminateCurve();
});

/** The witness of an honest case: it satisfies every constraint, its public signals are the
 *  statement's, and charge / running total after are the reference's. */
async function expectAccepted(k: V2Case): Promise<bigint[]> {
  let w: bigint[];
  try {
    w = await circuit.wc.calculateWitness(k.input, true);
  } catch (e) {
    throw new Error(`${k.name}: valid input rejected (${JSON.stringify(k.input)})`, { cause: e });
  }
  expect(circuit.unsatisfied(w), `${k.name}: unsatisfied constraints`).toEqual([]);
  expect(w.slice(1, 12), k.name).toEqual(publicSignalsV2(k.statement, k.tariffCommitment));
  expect(w[circuit.wire('main.charge')], k.name).toBe(k.ref.charge);
  expect(w[circuit.wire('main.cumulative_units_after')], k.name).toBe(k.after);
  expect(k.after, k.name).toBe(cumulativeAfter(BigInt(k.statement.chain.cumulative_units_before), k.statement.outcome, BigInt(k.statement.usage_units)));
  if (k.ref.billable) {
    expect(w[circuit.wire('main.engine.quotient')], k.name).toBe(k.ref.quotient);
    expect(w[circuit.wire('main.engine.remainder')], k.name).toBe(k.ref.remainder);
  }
  return w;
}

/** The same input claiming another charge or running total after has no witness, and the failed
 *  check is that public equality. */
async function expectWrongClaimsRejected(k: V2Case): Promise<void> {
  const source = fs.readFileSync(CIRCUIT_V2, 'utf8').split('\n');
  const chargeLine = `BillingV2:${lineIn(source, 'charge === engine.computedCharge')}`;
  const afterLine = `BillingV2:${lineIn(source, 'cumulative_units_after - cumulative_units_before === engine.billable * usage_units')}`;
  for (const d of [1n, -1n]) {
    const charge = (k.ref.charge + d + (1n << 254n)) % (1n << 254n);
    expect((await circuit.expectNoWitness({ ...k.input, charge: charge.toString() }, `${k.name}: charge ${d}`))[0]).toBe(chargeLine);
    expect((await circuit.expectNoWitness({ ...k.input, cumulative_units_after: (k.after + d).toString() }, `${k.name}: after ${d}`))[0]).toBe(afterLine);
  }
}

describe('circuit bn128-poseidon8-v2', () => {
  it('has the public signals of PUBLIC_SIGNAL_NAMES_V2 in order, and at most 4,000 constraints', () => {
    expect(PUBLIC_SIGNAL_NAMES_V2.map((n) => circuit.wire(`main.${n}`))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(circuit.r1cs.constraints.length).toBeLessThanOrEqual(4000);
    expect(circuit.r1cs.constraints.length).toBe(2094);
    // the tag the circuit hard-codes is the one the JS side uses
    expect(fs.readFileSync(CIRCUIT_V2, 'utf8')).toContain(`var TAG_TARIFF_V2 = ${TAG_TARIFF_V2};`);
    expect(TAG_TARIFF_V2).toBe(asciiTag('meterproof.tariff.v2'));
  });

  it('agrees with computeCharge and cumulativeAfter on 520 random statements (all outcomes and modes, 1–4 tiers, values up to 2^64 − 1)', async () => {
    const r = prng(0x5eed_b222);
    const stats = { linear: 0, graduated: 0, billable: 0, notBillable: 0, clampedMax: 0, clampedMin: 0, hugeQuotient: 0, afterPast64: 0, schemaValid: 0 };
    const modes = new Set<string>();
    for (let i = 0; i < 520; i++) {
      const s = randomScenario(r);
      const k = await v2Case(`random #${i}`, s.tariff, s.units, s.before, s.outcome);
      await expectAccepted(k);
      if (i % 13 === 0) await expectWrongClaimsRejected(k);
      stats[k.tariff.tariff_class === 'usage_linear' ? 'linear' : 'graduated']++;
      stats[k.ref.billable ? 'billable' : 'notBillable']++;
      if (k.ref.clamped === 'max') stats.clampedMax++;
      if (k.ref.clamped === 'min') stats.clampedMin++;
      if (k.ref.quotient > U64_MAX) stats.hugeQuotient++;
      if (k.after > U64_MAX) stats.afterPast64++;
      if (StatementV2.safeParse(k.statement).success) stats.schemaValid++;
      modes.add(k.tariff.rounding_mode);
    }
    for (const [name, v] of Object.entries(stats)) expect(v, name).toBeGreaterThan(10);
    expect(modes.size).toBe(4);
  }, 120_000);

  const G = { tiers: [[100n, 50n], [1000n, 40n], [5000n, 30n], [null, 20n]] as [bigint | null, bigint][], quantum: 7n };
  const edges: [string, TariffSpec, bigint, bigint, Outcome?][] = [
    ['0 units, success: after = before', G, 0n, 123n],
    ['0 units hits the minimum', { ...G, min: 500n }, 0n, 123n],
    ['ends exactly on the last finite bound', G, 5000n, 0n],
    ['spans all four tiers', G, 10_000n, 0n],
    ['after = 2^64 − 1 exactly', G, U64_MAX - 5n, 5n],
    ['largest everything: after = 2^65 − 2', { price: U64_MAX, quantum: 1n, mode: 'ceil' }, U64_MAX, U64_MAX],
    ['error: 0, no minimum, after = before', { ...G, min: 500n }, 1000n, 77n, 'error'],
    ['timeout with huge values: after = before', { price: U64_MAX, min: U64_MAX }, U64_MAX, U64_MAX, 'timeout'],
    ['partial is billed and advances the total', { ...G, min: 500n }, 1000n, 0n, 'partial'],
    ['half_even tie, even quotient', { price: 1n, quantum: 10n, mode: 'half_even' }, 25n, 0n],
    ['half_even tie, odd quotient', { price: 1n, quantum: 10n, mode: 'half_even' }, 35n, 0n],
    ['half_up on the half', { price: 1n, quantum: 10n, mode: 'half_up' }, 25n, 0n],
    ['ceil, remainder 1', { price: 1n, quantum: 10n, mode: 'ceil' }, 31n, 0n],
    ['quantum 2^64 − 1, ceil', { price: 5n, quantum: U64_MAX, mode: 'ceil' }, 3n, 0n],
    ['raw ~ 2^128: quotient >= 2^64 clamps to max', { price: U64_MAX, quantum: 1n, max: 12345n }, U64_MAX, 0n],
    ['rounded = 2^64 by ceil, clamped to max', { tiers: [[3n, U64_MAX], [null, 1n]], quantum: 3n, mode: 'ceil' }, 4n, 0n],
    ['min = max', { price: 10n, min: 1500n, max: 1500n }, 300n, 0n],
    ['smallest and largest finite bounds', { tiers: [[1n, 3n], [2n, 5n], [U64_MAX, 7n], [null, 11n]] }, 10n, U64_MAX - 4n],
  ];

  it.each(edges)('edge: %s', async (name, spec, units, before, outcome = 'success') => {
    const k = await v2Case(name, tariffOf(spec), units, before, outcome);
    await expectAccepted(k);
    await expectWrongClaimsRejected(k);
    expect(k.after).toBe(k.ref.billable ? before + units : before);
  });

  it('the witness input carries the tariff numerics and the salt behind the commitment (Poseidon9 of tariffHashInputsV2)', async () => {
    const k = await v2Case('pilot', tariffOf({ tiers: [[50_000n, 5000n], [null, 8000n]], quantum: 1000n, mode: 'half_even' }), 1842n, 49_000n);
    expect(k.input.tariff_salt).toBe(k.tariffSalt.toString());
    expect(k.input.tier_bound).toEqual(['50000', TIER_BOUND_INF.toString(), TIER_BOUND_INF.toString()]);
    const inputs = tariffHashInputsV2(tariffNumerics(k.tariff), k.statement.tariff_digest, k.tariffSalt);
    expect(inputs).toHaveLength(9);
    expect(await poseidonHash(inputs)).toBe(k.tariffCommitment);
    expect(k.input.tariff_commitment).toBe(k.tariffCommitment.toString());
  });
});

describe('Groth16 with the committed bn128-poseidon8-v2 keys', () => {
  let prover: Prover;
  beforeAll(async () => {
    prover = await createProver({ keysDir: KEYS_V2, workers: 0 });
  }, 60_000);
  afterAll(async () => {
    await prover?.close();
  });

  it('proves and verifies under the pinned key; the proof’s public signals are publicSignalsV2 of the statement', async () => {
    const vkey = PINNED_VKEYS['bn128-poseidon8-v2']!.key;
    expect(vkey).toEqual(JSON.parse(fs.readFileSync(path.join(KEYS_V2, 'verification_key.json'), 'utf8')));
    const cases = [
      await v2Case('pilot', tariffOf({ tiers: [[50_000n, 5000n], [null, 8000n]], quantum: 1000n, mode: 'half_even', min: 50_000n }), 1842n, 49_000n),
      await v2Case('timeout', tariffOf({ price: 120n, min: 50_000n }), 99n, 1234n, 'timeout'),
      await v2Case('huge', tariffOf({ price: U64_MAX, quantum: 3n, mode: 'ceil' }), U64_MAX, U64_MAX, 'partial'),
    ];
    for (const k of cases) {
      const { proof, publicSignals } = await prover.prove(k.input);
      expect(publicSignals, k.name).toEqual(publicSignalsV2(k.statement, k.tariffCommitment).map(String));
      expect(await verifyGroth16(vkey, publicSignals, proof), k.name).toBe(true);
      for (let i = 0; i < publicSignals.length; i++) {
        const changed = [...publicSignals];
        changed[i] = (BigInt(changed[i]!) + 1n).toString();
        expect(await verifyGroth16(vkey, changed, proof), `${k.name}: signal ${PUBLIC_SIGNAL_NAMES_V2[i]} + 1`).toBe(false);
      }
    }
  }, 60_000);
});
