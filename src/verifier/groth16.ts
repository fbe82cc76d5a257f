// Groth16 verification of bn128 proofs (the pairing check of snarkjs's groth16.verify, on
// @noble/curves), fail-closed: a malformed or degenerate key, a non-canonical signal or point,
// gives a coded failure, never an exception. No key files, no threads, no wasm: the open verifier
// can use this without loading the prover. Which key is trusted for which binding version is
// vkeys.ts's job; this checks any key it is given.
import { bn254 } from '@noble/curves/bn254.js';
import { BN128_P } from '../core/field.ts';
import { coordinate, g1, g1Point, g2, g2OnCurve, g2Point, PointError } from './bn254.ts';
export { BN128_Q } from './bn254.ts';
/** Largest nPublic accepted (a key is trust material, but need not be trusted to be small). */
const MAX_PUBLIC = 1024;

export type Groth16Code = 'VKEY_INVALID' | 'PROOF_MALFORMED' | 'PROOF_INVALID';
export interface Groth16Failure {
  readonly code: Groth16Code;
  readonly reason: string;
}

const record = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The reason `vkey` is not a usable snarkjs Groth16 bn128 key, or null: every point canonical
 * affine, on the curve, in the order-r subgroup and not the identity, and γ ≠ δ (with γ = δ the
 * proof A = α, B = β, C = −Σ aᵢ·ICᵢ verifies any public signals, no secret needed).
 */
export async function verificationKeyProblem(vkey: unknown): Promise<string | null> {
  if (!record(vkey)) return 'the verification key is not an object';
  if (vkey.protocol !== 'groth16' || vkey.curve !== 'bn128') return 'not a Groth16 bn128 verification key';
  const n = vkey.nPublic;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > MAX_PUBLIC) return 'nPublic is not a small non-negative integer';
  if (!Array.isArray(vkey.IC) || vkey.IC.length !== n + 1) return `IC does not hold nPublic + 1 = ${n + 1} points`;
  try {
    g1(vkey.vk_alpha_1, 'vk_alpha_1');
    vkey.IC.forEach((p, i) => g1(p, `IC[${i}]`));
    await g2(vkey.vk_beta_2, 'vk_beta_2');
    const gamma = await g2(vkey.vk_gamma_2, 'vk_gamma_2');
    const delta = await g2(vkey.vk_delta_2, 'vk_delta_2');
    if (gamma.x[0] === delta.x[0] && gamma.x[1] === delta.x[1] && gamma.y[0] === delta.y[0] && gamma.y[1] === delta.y[1]) {
      return 'vk_gamma_2 equals vk_delta_2 (a degenerate key under which any signals verify)';
    }
  } catch (e) {
    if (e instanceof PointError) return e.message;
    throw e;
  }
  return null;
}

/** The reason `proof` is not a canonical proof (points as bn254.ts accepts them), or null. */
async function proofProblem(proof: unknown): Promise<string | null> {
  if (!record(proof)) return 'the proof is not an object';
  if (proof.protocol !== undefined && proof.protocol !== 'groth16') return 'not a Groth16 proof';
  if (proof.curve !== undefined && proof.curve !== 'bn128') return 'not a bn128 proof';
  try {
    g1(proof.pi_a, 'pi_a');
    await g2(proof.pi_b, 'pi_b');
    g1(proof.pi_c, 'pi_c');
  } catch (e) {
    if (e instanceof PointError) return e.message;
    throw e;
  }
  return null;
}

/** The reason `signals` are not nPublic canonical elements of F_r, or null. */
function signalsProblem(signals: unknown, n: number): string | null {
  if (!Array.isArray(signals) || signals.length !== n) return `expected ${n} public signals`;
  for (const [i, s] of signals.entries()) {
    try {
      if (coordinate(s, `public signal ${i}`) >= BN128_P) return `public signal ${i} is not below the scalar field modulus r`;
    } catch (e) {
      if (e instanceof PointError) return e.message;
      throw e;
    }
  }
  return null;
}

declare const checked: unique symbol;
/** A key that verificationKeyProblem found nothing wrong with (vkeys.ts checks each pinned key once). */
export type CheckedKey = Readonly<Record<string, unknown>> & { readonly nPublic: number; readonly [checked]: true };

type G1 = ReturnType<typeof g1Point>;
type G2 = ReturnType<typeof g2Point>;
interface PreparedKey {
  readonly alpha: G1;
  readonly beta: G2;
  readonly gamma: G2;
  readonly delta: G2;
  readonly ic: readonly G1[];
}
/** A checked key's points as @noble/curves uses them, converted once per key object. */
const prepared = new WeakMap<CheckedKey, PreparedKey>();

function prepare(vkey: CheckedKey): PreparedKey {
  let k = prepared.get(vkey);
  if (!k) {
    // the points were checked (verificationKeyProblem): on the curve, in the subgroup, not O
    const p1 = (v: unknown) => g1Point(g1(v, 'key point'));
    const p2 = (v: unknown) => g2Point(g2OnCurve(v, 'key point'));
    k = { alpha: p1(vkey.vk_alpha_1), beta: p2(vkey.vk_beta_2), gamma: p2(vkey.vk_gamma_2), delta: p2(vkey.vk_delta_2), ic: (vkey.IC as unknown[]).map(p1) };
    prepared.set(vkey, k);
  }
  return k;
}

/**
 * Groth16 (snarkjs groth16.verify): e(−A, B)·e(α, β)·e(vk_x, γ)·e(C, δ) = 1 in G_T, where
 * vk_x = IC₀ + Σ sᵢ·ICᵢ₊₁. `proof`'s points have passed proofProblem, the signals signalsProblem.
 */
function pairingCheck(vkey: CheckedKey, signals: readonly bigint[], proof: Record<string, unknown>): boolean {
  const k = prepare(vkey);
  let vkX = k.ic[0]!;
  signals.forEach((s, i) => {
    if (s !== 0n) vkX = vkX.add(k.ic[i + 1]!.multiplyUnsafe(s)); // public scalars: no constant time needed
  });
  const A = g1Point(g1(proof.pi_a, 'pi_a'));
  const B = g2Point(g2OnCurve(proof.pi_b, 'pi_b'));
  const C = g1Point(g1(proof.pi_c, 'pi_c'));
  // a term with the identity contributes 1 (only vk_x can be it: the other points were refused)
  const terms = [
    { g1: A.negate(), g2: B },
    { g1: k.alpha, g2: k.beta },
    { g1: vkX, g2: k.gamma },
    { g1: C, g2: k.delta },
  ].filter((t) => !t.g1.is0());
  return bn254.fields.Fp12.eql(bn254.pairingBatch(terms), bn254.fields.Fp12.ONE);
}

/** `checkGroth16` for a key already checked: PROOF_MALFORMED or PROOF_INVALID, never throws. */
export async function checkProof(vkey: CheckedKey, publicSignals: unknown, proof: unknown): Promise<Groth16Failure | null> {
  try {
    const signals = signalsProblem(publicSignals, vkey.nPublic);
    if (signals) return { code: 'PROOF_INVALID', reason: signals };
    const malformed = await proofProblem(proof);
    if (malformed) return { code: 'PROOF_MALFORMED', reason: malformed };
    const ok = pairingCheck(vkey, (publicSignals as string[]).map(BigInt), proof as Record<string, unknown>);
    return ok ? null : { code: 'PROOF_INVALID', reason: 'the Groth16 pairing check fails for these public signals' };
  } catch (e) {
    return { code: 'PROOF_INVALID', reason: `unverifiable: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/**
 * null iff `proof` is a valid Groth16 proof for `publicSignals` under `vkey`, else the failure:
 * VKEY_INVALID (the key), PROOF_MALFORMED (a point not canonical, off the curve, the identity or
 * outside the subgroup), PROOF_INVALID (signals, or the pairing check). Never throws.
 */
export async function checkGroth16(vkey: unknown, publicSignals: unknown, proof: unknown): Promise<Groth16Failure | null> {
  let keyProblem: string | null;
  try {
    keyProblem = await verificationKeyProblem(vkey);
  } catch (e) {
    keyProblem = `unusable: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (keyProblem) return { code: 'VKEY_INVALID', reason: keyProblem };
  return checkProof(vkey as CheckedKey, publicSignals, proof);
}

/** true iff `proof` is a valid Groth16 proof for `publicSignals` under `vkey`. Never throws. */
export async function verifyGroth16(vkey: unknown, publicSignals: unknown, proof: unknown): Promise<boolean> {
  return (await checkGroth16(vkey, publicSignals, proof)) === null;
}

/** Stops snarkjs's bn128 worker threads (started by the prover, the ceremony or a witness check;
 *  the verifier starts none) so the process can exit. Safe to call more than once; the next snarkjs call starts them again. */
export async function terminateCurve(): Promise<void> {
  const g = globalThis as { curve_bn128?: { terminate(): Promise<void> } | null };
  const curve = g.curve_bn128;
  if (curve) await curve.terminate();
}
