// Verifier hygiene (issue 14, point 4): the verification key of each binding version is pinned by
// digest; key and proof points are accepted only canonical, affine, on the curve, not the identity
// and in the order-r subgroup; a re-randomized proof is the same attestation.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import canonicalize from 'canonicalize';
import * as snarkjs from 'snarkjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BINDINGS } from '../scripts/ceremony.ts';
import { digestOf } from '../src/core/canonical.ts';
import { signObject } from '../src/core/keys.ts';
import { BINDING_VERSION, type BillingProofV1, type FullBundle, type VerifyCode } from '../src/core/schemas.ts';
import { REVOCATIONS_TYPE, type TrustMaterial } from '../src/core/trust.ts';
import { VerificationError } from '../src/core/verify.ts';
import { createProver, type Prover } from '../src/prover/index.ts';
import { inG2Subgroup } from '../src/verifier/bn254.ts';
import { checkGroth16, terminateCurve, verificationKeyProblem } from '../src/verifier/groth16.ts';
import { verify } from '../src/verifier/index.ts';
import { PINNED_VKEYS, verificationKeyFor } from '../src/verifier/vkeys.ts';
import { zkVerifier } from '../src/verifier/zk.ts';
import { keyA, provedPilotBundle, trustFor } from './support/fixtures.ts';
import {
  Fp2,
  G1,
  G2,
  Q,
  R,
  g1Jacobian,
  g1Json,
  g1Of,
  g2Jacobian,
  g2Json,
  g2Of,
  nonSubgroupG2,
  publicTerm,
  rerandomize,
  times,
  type G1Json,
  type G2Json,
  type ProofJson,
} from './support/bn254.ts';

/** Where each binding version's key is committed (the ceremony's table of bindings). */
const committedKeyFile = (binding: string) => path.join(BINDINGS[binding]!.keysDir, 'verification_key.json');
const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, unknown>;

interface VKey {
  protocol: string;
  curve: string;
  nPublic: number;
  vk_alpha_1: G1Json;
  vk_beta_2: G2Json;
  vk_gamma_2: G2Json;
  vk_delta_2: G2Json;
  IC: G1Json[];
  [k: string]: unknown;
}

const vkey = readJson(committedKeyFile(BINDING_VERSION)) as unknown as VKey;
const clone = <T>(v: T): T => structuredClone(v);
const plus = (s: string, d: bigint) => (BigInt(s) + d).toString();

let prover: Prover;
let proved: FullBundle;
let proof: ProofJson;
let signals: string[];
const trust: TrustMaterial = trustFor(keyA);

beforeAll(async () => {
  prover = await createProver({ workers: 0 });
  proved = await provedPilotBundle(prover);
  const bp = proved.attestation.billing_proof as BillingProofV1;
  proof = bp.proof as ProofJson;
  signals = [bp.statement.binding_commitment, bp.statement.charge_micros, bp.statement.tariff_commitment];
}, 120_000);

afterAll(async () => {
  await prover?.close();
  await terminateCurve();
});

const proofCheck = (r: Awaited<ReturnType<typeof verify>>) => r.checks.find((c) => c.name === 'proof')!;
const withProof = (p: unknown): FullBundle => {
  const b = clone(proved);
  (b.attestation.billing_proof as { proof: unknown }).proof = p;
  return b;
};
async function zkCode(binding: string, trustKey: unknown, sig: string[], pf: unknown): Promise<VerifyCode | null> {
  try {
    await zkVerifier.verifyProof(binding, trustKey as Record<string, unknown> | undefined, sig, pf as ProofJson);
    return null;
  } catch (e) {
    if (e instanceof VerificationError) return e.code;
    throw e;
  }
}

describe('pinned verification keys', () => {
  it('pins, for every binding version, the SHA-256 of the RFC 8785 form of the key committed in keys/ (a new ceremony must update the pin)', () => {
    expect(Object.keys(PINNED_VKEYS)).toContain(BINDING_VERSION);
    // every binding whose keys are committed has a pin, and every pin a committed key
    const committed = Object.keys(BINDINGS).filter((b) => fs.existsSync(committedKeyFile(b)));
    expect(Object.keys(PINNED_VKEYS).sort()).toEqual(committed.sort());
    for (const [binding, pin] of Object.entries(PINNED_VKEYS)) {
      const committed = readJson(committedKeyFile(binding));
      // computed here with an independent RFC 8785 implementation and node:crypto
      const digest = `sha256:${createHash('sha256').update(canonicalize(committed)!).digest('hex')}`;
      expect(pin.digest, binding).toBe(digest);
      expect(digestOf(pin.key), `${binding}: the shipped copy`).toBe(digest);
      expect(pin.key, binding).toEqual(committed);
    }
  });

  it('verifies under the shipped key when the trust material has none, and under a trust-material key that is the pinned one (in any member order)', async () => {
    const bare = await verify(proved, trust, { profile: 'standard' });
    expect(bare.valid).toBe(true);
    expect(proofCheck(bare)).toMatchObject({ status: 'pass' });
    const reordered = Object.fromEntries(Object.entries(clone(vkey)).reverse());
    for (const key of [vkey, reordered]) {
      const r = await verify(proved, { ...trust, verification_key: key }, { profile: 'standard' });
      expect(proofCheck(r)).toMatchObject({ status: 'pass' });
      expect(r.valid).toBe(true);
    }
  });

  it('reproduces the review: a key with known discrete logs verifies a forged proof of arbitrary signals — and the verifier refuses that key (VKEY_NOT_PINNED)', async () => {
    // γ = 2·G2, δ = G2 (both logs known); A = α, B = β, C = −2·L gives e(A,B) = e(α,β)·e(L,γ)·e(C,δ)
    const forgedSignals = [signals[0]!, '999999999', signals[2]!];
    const forgedKey = { ...clone(vkey), vk_gamma_2: g2Json(G2.BASE.double()), vk_delta_2: g2Json(G2.BASE) };
    const forgedProof: ProofJson = { ...proof, pi_a: vkey.vk_alpha_1, pi_b: vkey.vk_beta_2, pi_c: g1Json(publicTerm(vkey.IC, forgedSignals).double().negate()) };
    // every point of that key and proof is fine: only the pin stops it
    expect(await checkGroth16(forgedKey, forgedSignals, forgedProof)).toBeNull();
    expect(await snarkjs.groth16.verify(forgedKey, forgedSignals, forgedProof)).toBe(true);
    const forgedBundle = withProof(forgedProof);
    (forgedBundle.attestation.billing_proof as BillingProofV1).statement.charge_micros = '999999999'; // (its signature breaks too)
    for (const b of [withProof(forgedProof), forgedBundle]) {
      const r = await verify(b, { ...trust, verification_key: forgedKey }, { profile: 'standard' });
      expect(r.valid).toBe(false);
      expect(proofCheck(r)).toMatchObject({ status: 'fail' });
    }
    const r = await verify(withProof(forgedProof), { ...trust, verification_key: forgedKey }, { profile: 'standard' });
    expect(proofCheck(r)).toMatchObject({ status: 'fail', code: 'VKEY_NOT_PINNED' });
    // without the forged key the same proof meets the pinned key, and fails the pairing
    expect(proofCheck(await verify(withProof(forgedProof), trust, { profile: 'standard' }))).toMatchObject({ status: 'fail', code: 'PROOF_INVALID' });
    expect(await zkCode(BINDING_VERSION, forgedKey, forgedSignals, forgedProof)).toBe('VKEY_NOT_PINNED');
  });

  it('refuses the degenerate γ = δ key (any signals verify, no secret needed) with VKEY_NOT_PINNED, and the key check alone calls it VKEY_INVALID', async () => {
    const anySignals = ['1', '2', '3'];
    const degenerate = { ...clone(vkey), vk_delta_2: vkey.vk_gamma_2 };
    const forged: ProofJson = { ...proof, pi_a: vkey.vk_alpha_1, pi_b: vkey.vk_beta_2, pi_c: g1Json(publicTerm(vkey.IC, anySignals).negate()) };
    expect(await snarkjs.groth16.verify(degenerate, anySignals, forged)).toBe(true); // the finding
    expect(await checkGroth16(degenerate, anySignals, forged)).toMatchObject({ code: 'VKEY_INVALID', reason: expect.stringMatching(/vk_gamma_2 equals vk_delta_2/) });
    expect(await zkCode(BINDING_VERSION, degenerate, anySignals, forged)).toBe('VKEY_NOT_PINNED');
    expect(proofCheck(await verify(withProof(forged), { ...trust, verification_key: degenerate }, { profile: 'standard' }))).toMatchObject({ code: 'VKEY_NOT_PINNED' });
  });

  it('refuses any other key that differs from the pin, however slightly, and a binding version without a pin', async () => {
    const oneIC = clone(vkey);
    oneIC.IC[1] = vkey.IC[2]!; // a well-formed key of another statement
    const variants: unknown[] = [oneIC, { ...clone(vkey), nPublic: 4 }, { ...clone(vkey), extra: 1 }, { ...clone(vkey), vk_alphabeta_12: [] }, {}, { protocol: 'groth16' }];
    for (const [i, key] of variants.entries()) {
      const r = await verify(proved, { ...trust, verification_key: key as Record<string, unknown> }, { profile: 'standard' });
      expect(proofCheck(r), `variant ${i}`).toMatchObject({ status: 'fail', code: 'VKEY_NOT_PINNED' });
      expect(r.valid).toBe(false);
    }
    expect(await zkCode('bn128-poseidon8-v0', undefined, signals, proof)).toBe('VKEY_NOT_PINNED');
    expect(await zkCode('__proto__', undefined, signals, proof)).toBe('VKEY_NOT_PINNED');
    expect(await zkCode('toString', vkey, signals, proof)).toBe('VKEY_NOT_PINNED');
  });

  it('checks each version under its own key: a trust-material key pinned for another version is set aside, an unpinned one refused', async () => {
    // a second version pinned to a (fabricated) key, as v2 will be
    const other = { ...clone(vkey), vk_delta_2: g2Json(G2.BASE.multiply(5n)) };
    const pins = { ...PINNED_VKEYS, 'test-v2': { digest: digestOf(other), key: other } };
    const v1Key = await verificationKeyFor(BINDING_VERSION, other, pins); // the service moved on to v2
    expect(v1Key).toEqual(vkey);
    expect(await verificationKeyFor('test-v2', vkey, pins)).toEqual(other);
    await expect(verificationKeyFor('test-v2', oneOff(other), pins)).rejects.toMatchObject({ code: 'VKEY_NOT_PINNED' });
    // a pin whose shipped key does not hash to it is refused too
    await expect(verificationKeyFor('bad', undefined, { bad: { digest: digestOf(vkey), key: other } })).rejects.toMatchObject({ code: 'VKEY_INVALID' });
    // and a pinned key that fails the point checks
    const offCurve = { ...clone(vkey), vk_alpha_1: [vkey.vk_alpha_1[0], plus(vkey.vk_alpha_1[1], 1n), '1'] };
    await expect(verificationKeyFor('off', undefined, { off: { digest: digestOf(offCurve), key: offCurve } })).rejects.toMatchObject({
      code: 'VKEY_INVALID',
      message: expect.stringMatching(/vk_alpha_1 is not on the curve/),
    });
  });
});

const oneOff = (k: VKey): VKey => ({ ...clone(k), IC: [k.IC[0]!, k.IC[0]!, ...k.IC.slice(2)] });

describe('verification key points', () => {
  const G2_ID: G2Json = [
    ['0', '0'],
    ['0', '0'],
    ['1', '0'],
  ];
  const cases: [string, (k: VKey) => void, RegExp][] = [
    ['alpha is the identity (affine zero)', (k) => (k.vk_alpha_1 = ['0', '0', '1']), /vk_alpha_1 is the identity/],
    ['alpha is the identity (projective)', (k) => (k.vk_alpha_1 = ['0', '1', '0']), /vk_alpha_1 is not in affine form/],
    ['an IC point is the identity', (k) => (k.IC[2] = ['0', '0', '1']), /IC\[2\] is the identity/],
    ['delta is the identity', (k) => (k.vk_delta_2 = G2_ID), /vk_delta_2 is the identity/],
    ['beta is the projective identity', (k) => (k.vk_beta_2 = [['0', '0'], ['1', '0'], ['0', '0']]), /vk_beta_2 is not in affine form/],
    ['alpha off the curve', (k) => (k.vk_alpha_1[1] = plus(k.vk_alpha_1[1], 1n)), /vk_alpha_1 is not on the curve/],
    ['IC[0] off the curve', (k) => (k.IC[0]![0] = plus(k.IC[0]![0], 1n)), /IC\[0\] is not on the curve/],
    ['gamma off the curve', (k) => (k.vk_gamma_2[1][0] = plus(k.vk_gamma_2[1][0], 1n)), /vk_gamma_2 is not on the curve/],
    ['delta on the twist but outside the order-r subgroup', (k) => (k.vk_delta_2 = g2Json(nonSubgroupG2('vkey-delta'))), /vk_delta_2 is not in the prime-order subgroup/],
    ['beta outside the subgroup', (k) => (k.vk_beta_2 = g2Json(nonSubgroupG2('vkey-beta'))), /vk_beta_2 is not in the prime-order subgroup/],
    ['alpha in Jacobian form', (k) => (k.vk_alpha_1 = g1Jacobian(k.vk_alpha_1, 7n)), /vk_alpha_1 is not in affine form/],
    ['delta in Jacobian form', (k) => (k.vk_delta_2 = g2Jacobian(k.vk_delta_2, Fp2.fromBigTuple([3n, 5n]))), /vk_delta_2 is not in affine form/],
    ['alpha.x + q', (k) => (k.vk_alpha_1[0] = plus(k.vk_alpha_1[0], Q)), /vk_alpha_1\.x is not below the base field modulus q/],
    ['delta.x0 + q', (k) => (k.vk_delta_2[0][0] = plus(k.vk_delta_2[0][0], Q)), /vk_delta_2\.x\[0\] is not below/],
    ['a leading zero', (k) => (k.IC[1]![1] = `0${k.IC[1]![1]}`), /IC\[1\]\.y is not a canonical decimal string/],
    ['gamma = delta', (k) => (k.vk_delta_2 = clone(k.vk_gamma_2)), /vk_gamma_2 equals vk_delta_2/],
    ['nPublic does not match IC', (k) => (k.nPublic = 2), /IC does not hold nPublic \+ 1 = 3 points/],
    ['another curve', (k) => (k.curve = 'bls12381'), /not a Groth16 bn128 verification key/],
  ];
  for (const [desc, mutate, reason] of cases) {
    it(`refuses a key whose ${desc} (VKEY_INVALID)`, async () => {
      const k = clone(vkey);
      mutate(k);
      expect(await verificationKeyProblem(k)).toMatch(reason);
      expect(await checkGroth16(k, signals, proof)).toMatchObject({ code: 'VKEY_INVALID', reason: expect.stringMatching(reason) });
    });
  }

  it('accepts the committed key', async () => {
    expect(await verificationKeyProblem(vkey)).toBeNull();
  });
});

describe('proof points', () => {
  it('accepts the canonical proof', async () => {
    expect(await checkGroth16(vkey, signals, proof)).toBeNull();
  });

  it('decides the pairing check as snarkjs.groth16.verify does, on its own single-threaded curve (snarkjs’s worker threads are not started)', async () => {
    await terminateCurve();
    const g = globalThis as { curve_bn128?: unknown };
    expect(g.curve_bn128 ?? null).toBeNull();
    const rr = rerandomize(proof, vkey.vk_delta_2, 7n, 11n);
    const cases: [string, VKey, string[], ProofJson][] = [
      ['the proof', vkey, signals, proof],
      ['a re-randomized proof', vkey, signals, rr],
      ['another charge', vkey, [signals[0]!, plus(signals[1]!, 1n), signals[2]!], proof],
      ['A and C swapped', vkey, signals, { ...proof, pi_a: proof.pi_c, pi_c: proof.pi_a }],
      ['B doubled', vkey, signals, { ...proof, pi_b: g2Json(g2Of(proof.pi_b).double()) }],
      ['A negated', vkey, signals, { ...proof, pi_a: g1Json(g1Of(proof.pi_a).negate()) }],
      ['C of the re-randomized proof', vkey, signals, { ...proof, pi_c: rr.pi_c }],
    ];
    const ours: boolean[] = [];
    for (const [, k, s, p] of cases) ours.push((await checkGroth16(k, s, p)) === null);
    expect(g.curve_bn128 ?? null).toBeNull(); // verification built no multi-threaded curve
    expect(ours).toEqual([true, true, false, false, false, false, false]);
    for (const [i, [desc, k, s, p]] of cases.entries()) expect(await snarkjs.groth16.verify(k, s, p), desc).toBe(ours[i]);
  });

  it('reproduces the review: snarkjs verifies A, B or C in Jacobian form (z ≠ 1); the verifier refuses them (PROOF_MALFORMED)', async () => {
    const jacobian: [string, ProofJson][] = [
      ['A, z = 2', { ...proof, pi_a: g1Jacobian(proof.pi_a, 2n) }],
      ['A, z = q − 1', { ...proof, pi_a: g1Jacobian(proof.pi_a, Q - 1n) }],
      ['C, z = 12345', { ...proof, pi_c: g1Jacobian(proof.pi_c, 12345n) }],
      ['B, z = 3 + 5u', { ...proof, pi_b: g2Jacobian(proof.pi_b, Fp2.fromBigTuple([3n, 5n])) }],
      ['B, z = 2', { ...proof, pi_b: g2Jacobian(proof.pi_b, Fp2.fromBigTuple([2n, 0n])) }],
    ];
    for (const [desc, p] of jacobian) {
      expect(await snarkjs.groth16.verify(vkey, signals, p), desc).toBe(true);
      expect(await checkGroth16(vkey, signals, p), desc).toMatchObject({ code: 'PROOF_MALFORMED', reason: expect.stringMatching(/not in affine form/) });
      const r = await verify(withProof(p), trust, { profile: 'standard' });
      expect(proofCheck(r), desc).toMatchObject({ status: 'fail', code: 'PROOF_MALFORMED' });
      expect(r.valid).toBe(false);
    }
  });

  it('refuses B on the twist but outside the order-r subgroup (PROOF_MALFORMED)', async () => {
    for (const label of ['proof-b-1', 'proof-b-2']) {
      const p = { ...proof, pi_b: g2Json(nonSubgroupG2(label)) };
      expect(await checkGroth16(vkey, signals, p)).toMatchObject({ code: 'PROOF_MALFORMED', reason: 'pi_b is not in the prime-order subgroup' });
      expect(proofCheck(await verify(withProof(p), trust, { profile: 'standard' }))).toMatchObject({ status: 'fail', code: 'PROOF_MALFORMED' });
    }
    // B + T for a point T outside the subgroup: still on the curve, no longer in the subgroup
    const shifted = { ...proof, pi_b: g2Json(g2Of(proof.pi_b).add(nonSubgroupG2('shift'))) };
    expect(await checkGroth16(vkey, signals, shifted)).toMatchObject({ code: 'PROOF_MALFORMED', reason: 'pi_b is not in the prime-order subgroup' });
  });

  const malformed: [string, (p: ProofJson) => unknown, RegExp][] = [
    ['A is the projective identity', (p) => ({ ...p, pi_a: ['0', '1', '0'] }), /pi_a is not in affine form/],
    ['A is the affine zero', (p) => ({ ...p, pi_a: ['0', '0', '1'] }), /pi_a is the identity/],
    ['C is the identity', (p) => ({ ...p, pi_c: ['0', '0', '1'] }), /pi_c is the identity/],
    ['B is the identity', (p) => ({ ...p, pi_b: [['0', '0'], ['0', '0'], ['1', '0']] }), /pi_b is the identity/],
    ['B is the projective identity', (p) => ({ ...p, pi_b: [['0', '0'], ['1', '0'], ['0', '0']] }), /pi_b is not in affine form/],
    ['A off the curve', (p) => ({ ...p, pi_a: [p.pi_a[0], plus(p.pi_a[1], 1n), '1'] }), /pi_a is not on the curve/],
    ['C off the curve', (p) => ({ ...p, pi_c: [plus(p.pi_c[0], 1n), p.pi_c[1], '1'] }), /pi_c is not on the curve/],
    ['B off the curve', (p) => ({ ...p, pi_b: [p.pi_b[0], [plus(p.pi_b[1][0], 1n), p.pi_b[1][1]], p.pi_b[2]] }), /pi_b is not on the curve/],
    ['A.x + q (the same point mod q)', (p) => ({ ...p, pi_a: [plus(p.pi_a[0], Q), p.pi_a[1], '1'] }), /pi_a\.x is not below the base field modulus q/],
    ['C.y + q', (p) => ({ ...p, pi_c: [p.pi_c[0], plus(p.pi_c[1], Q), '1'] }), /pi_c\.y is not below/],
    ['B.y1 + q', (p) => ({ ...p, pi_b: [p.pi_b[0], [p.pi_b[1][0], plus(p.pi_b[1][1], Q)], p.pi_b[2]] }), /pi_b\.y\[1\] is not below/],
    ['A.x with a leading zero', (p) => ({ ...p, pi_a: [`0${p.pi_a[0]}`, p.pi_a[1], '1'] }), /pi_a\.x is not a canonical decimal string/],
    ['B.x0 with a leading zero', (p) => ({ ...p, pi_b: [[`00${p.pi_b[0][0]}`, p.pi_b[0][1]], p.pi_b[1], p.pi_b[2]] }), /pi_b\.x\[0\] is not a canonical/],
    ['A.y with a plus sign', (p) => ({ ...p, pi_a: [p.pi_a[0], `+${p.pi_a[1]}`, '1'] }), /pi_a\.y is not a canonical/],
    ['A.x with whitespace', (p) => ({ ...p, pi_a: [` ${p.pi_a[0]}`, p.pi_a[1], '1'] }), /pi_a\.x is not a canonical/],
    ['A.x in hex', (p) => ({ ...p, pi_a: [`0x${BigInt(p.pi_a[0]).toString(16)}`, p.pi_a[1], '1'] }), /pi_a\.x is not a canonical/],
    ['A.x as a number', (p) => ({ ...p, pi_a: [Number(p.pi_a[0]), p.pi_a[1], '1'] }), /pi_a\.x is not a canonical/],
    ['A.x negative (−(q − x))', (p) => ({ ...p, pi_a: [(BigInt(p.pi_a[0]) - Q).toString(), p.pi_a[1], '1'] }), /pi_a\.x is not a canonical/],
    ['z of A is "01"', (p) => ({ ...p, pi_a: [p.pi_a[0], p.pi_a[1], '01'] }), /pi_a is not in affine form/],
    ['z of B is ["1","0 "]', (p) => ({ ...p, pi_b: [p.pi_b[0], p.pi_b[1], ['1', '0 ']] }), /pi_b is not in affine form/],
    ['z of B is ["1","1"]', (p) => ({ ...p, pi_b: [p.pi_b[0], p.pi_b[1], ['1', '1']] }), /pi_b is not in affine form/],
    ['A has two coordinates', (p) => ({ ...p, pi_a: p.pi_a.slice(0, 2) }), /pi_a is not a G1 point/],
    ['B has an element of three limbs', (p) => ({ ...p, pi_b: [[...p.pi_b[0], '0'], p.pi_b[1], p.pi_b[2]] }), /pi_b\.x is not an F_q² element/],
    ['B is a string', (p) => ({ ...p, pi_b: 'garbage' }), /pi_b is not a G2 point/],
    ['another protocol', (p) => ({ ...p, protocol: 'plonk' }), /not a Groth16 proof/],
    ['no proof at all', () => null, /the proof is not an object/],
  ];
  for (const [desc, mutate, reason] of malformed) {
    it(`refuses a proof whose ${desc} (PROOF_MALFORMED), without throwing`, async () => {
      const p = mutate(clone(proof));
      expect(await checkGroth16(vkey, signals, p)).toMatchObject({ code: 'PROOF_MALFORMED', reason: expect.stringMatching(reason) });
    });
  }

  it('fails a bundle with non-canonical points at the proof check (the schema lets decimal strings through)', async () => {
    for (const [desc, mutate] of malformed.slice(0, 13)) {
      const r = await verify(withProof(mutate(clone(proof))), trust, { profile: 'standard' });
      expect(r.valid, desc).toBe(false);
      const proofResult = proofCheck(r);
      // the schema already refuses what is not a decimal string of at most 77 digits
      if (proofResult.status === 'skipped') expect(r.checks.find((c) => c.name === 'schema'), desc).toMatchObject({ code: 'SCHEMA_INVALID' });
      else expect(proofResult, desc).toMatchObject({ status: 'fail', code: 'PROOF_MALFORMED' });
    }
  });

  it('refuses public signals that are not canonical elements of F_r (PROOF_INVALID)', async () => {
    for (const bad of [[signals[0]!, plus(signals[1]!, R), signals[2]!], [signals[0]!, `0${signals[1]}`, signals[2]!], signals.slice(0, 2), [...signals, '0']]) {
      expect(await checkGroth16(vkey, bad, proof)).toMatchObject({ code: 'PROOF_INVALID' });
    }
    expect(await checkGroth16(vkey, [signals[0]!, plus(signals[1]!, 1n), signals[2]!], proof)).toMatchObject({ code: 'PROOF_INVALID', reason: expect.stringMatching(/pairing/) });
  });
});

describe('the G2 subgroup check agrees with the definition [r]P = O', () => {
  it('on key and proof points, multiples of the generator and points outside the subgroup', async () => {
    const inside = [
      ...[vkey.vk_beta_2, vkey.vk_gamma_2, vkey.vk_delta_2, proof.pi_b].map(g2Of),
      ...[1n, 2n, R - 1n, 0x1234567890abcdefn, 4965661367192848881n, (R + 1n) / 2n].map((k) => G2.BASE.multiply(k)),
    ];
    const away = Array.from({ length: 12 }, (_, i) => nonSubgroupG2(`agree-${i}`));
    const outside = [
      ...away,
      times(away[0]!, R), // order dividing the cofactor
      times(away[1]!, R).add(G2.BASE), // a subgroup point plus a cofactor-order one
      away[2]!.add(g2Of(proof.pi_b)),
      times(away[3]!, 4965661367192848881n),
    ];
    for (const [i, p] of [...inside, ...outside].entries()) {
      const byDefinition = times(p, R).is0();
      expect(byDefinition, `point ${i}`).toBe(i < inside.length);
      expect(p.isTorsionFree(), `point ${i}: noble's endomorphism check`).toBe(byDefinition);
      const { x, y } = p.toAffine();
      expect(await inG2Subgroup({ x: [x.c0, x.c1], y: [y.c0, y.c1] }), `point ${i}`).toBe(byDefinition);
    }
    // G1 has cofactor 1: every curve point is in the group of order r
    expect(times(g1Of(proof.pi_a), R).is0()).toBe(true);
    expect(G1.BASE.multiply(5n).isTorsionFree()).toBe(true);
  });
});

describe('re-randomized proofs (Groth16 is malleable): the same attestation', () => {
  it('a re-randomized proof is a different, valid proof of the same statement; every identifier stays the statement digest', async () => {
    const again = rerandomize(proof, vkey.vk_delta_2, 0x1234567n, 0xfeedfacen);
    expect(again.pi_a).not.toEqual(proof.pi_a);
    expect(again.pi_b).not.toEqual(proof.pi_b);
    expect(again.pi_c).not.toEqual(proof.pi_c);
    expect(await checkGroth16(vkey, signals, again)).toBeNull();
    const original = await verify(proved, trust, { profile: 'standard' });
    const rerandomized = await verify(withProof(again), trust, { profile: 'standard' });
    expect(rerandomized.valid).toBe(true);
    // same statement digest (the attestation id, the log leaf's content, the revocation key)
    expect(rerandomized.statement_digest).toBe(original.statement_digest);
    expect(rerandomized.checks).toEqual(original.checks);
    // revoking the attestation revokes it in every proof's spelling
    const now = Date.now();
    const list = {
      type: REVOCATIONS_TYPE,
      sequence: '1',
      issued_at: new Date(now - 60_000).toISOString(),
      expires_at: new Date(now + 3_600_000).toISOString(),
      keys: [],
      attestations: [{ statement_digest: original.statement_digest!, revoked_at: '2026-06-01T00:00:00Z', reason: 'test' }],
    };
    const revoking = { ...trust, revocations: { list, key_id: keyA.keyId, signature: signObject(keyA, list) } };
    for (const b of [proved, withProof(again)]) {
      const r = await verify(b, revoking, { profile: 'standard' });
      expect(r.checks.find((c) => c.name === 'revocation')).toMatchObject({ status: 'fail', code: 'REVOKED' });
      expect(r.valid).toBe(false);
    }
  });

  it('re-randomizing does not carry a proof over to other public signals', async () => {
    const again = rerandomize(proof, vkey.vk_delta_2, 3n, 5n);
    expect(await checkGroth16(vkey, [signals[0]!, plus(signals[1]!, 1n), signals[2]!], again)).toMatchObject({ code: 'PROOF_INVALID' });
  });
});
