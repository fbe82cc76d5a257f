// Groth16 verification of bn128 proofs, fail-closed: a malformed or degenerate key, a
// non-canonical signal or point, gives a coded failure, never an exception. Every check of a
// proof is made here, one proof at a time; the pairing equation (pairing.ts) is then handed to a
// PairingFn: alone, or collected with others into one batched check (batch.ts). No key files, no
// threads: the open verifier can use this without loading the prover.
// Which key is trusted for which binding version is vkeys.ts's job; this checks any key it is given.
import { BN128_P } from '../core/field.ts';
import { coordinate, g1, g2, g2OnCurve, type G1Affine, type G2Affine, PointError } from './bn254.ts';
import { pairingCheck, type PairingItem, type PairingKey } from './pairing.ts';
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

type Points = { a: G1Affine; b: G2Affine; c: G1Affine };

/** The points of a canonical proof (as bn254.ts accepts them), or the reason it is not one. */
async function proofPoints(proof: unknown): Promise<Points | string> {
  if (!record(proof)) return 'the proof is not an object';
  if (proof.protocol !== undefined && proof.protocol !== 'groth16') return 'not a Groth16 proof';
  if (proof.curve !== undefined && proof.curve !== 'bn128') return 'not a bn128 proof';
  try {
    const a = g1(proof.pi_a, 'pi_a');
    const b = await g2(proof.pi_b, 'pi_b');
    const c = g1(proof.pi_c, 'pi_c');
    return { a, b, c };
  } catch (e) {
    if (e instanceof PointError) return e.message;
    throw e;
  }
}

/** nPublic canonical elements of F_r, or the reason `signals` are not. */
function signalValues(signals: unknown, n: number): bigint[] | string {
  if (!Array.isArray(signals) || signals.length !== n) return `expected ${n} public signals`;
  const out: bigint[] = [];
  for (const [i, s] of signals.entries()) {
    try {
      const v = coordinate(s, `public signal ${i}`);
      if (v >= BN128_P) return `public signal ${i} is not below the scalar field modulus r`;
      out.push(v);
    } catch (e) {
      if (e instanceof PointError) return e.message;
      throw e;
    }
  }
  return out;
}

declare const checked: unique symbol;
/** A key that verificationKeyProblem found nothing wrong with (vkeys.ts checks each pinned key once). */
export type CheckedKey = Readonly<Record<string, unknown>> & { readonly nPublic: number; readonly [checked]: true };

/** The pairing equation of one checked proof: true iff it holds. Alone (`pairingAlone`) or as
 *  part of a batch (batch.ts); it may throw, which fails the proof as unverifiable. */
export type PairingFn = (item: PairingItem) => Promise<boolean>;
export const pairingAlone: PairingFn = (item) => pairingCheck([item]);

/** A checked key's points (already validated by verificationKeyProblem), parsed once per key. */
const pairingKeys = new WeakMap<CheckedKey, PairingKey>();
function pairingKeyOf(vkey: CheckedKey): PairingKey {
  let k = pairingKeys.get(vkey);
  if (!k) {
    const ic = vkey['IC'] as unknown[];
    k = {
      alpha: g1(vkey['vk_alpha_1'], 'vk_alpha_1'),
      beta: g2OnCurve(vkey['vk_beta_2'], 'vk_beta_2'),
      gamma: g2OnCurve(vkey['vk_gamma_2'], 'vk_gamma_2'),
      delta: g2OnCurve(vkey['vk_delta_2'], 'vk_delta_2'),
      ic: ic.map((p, i) => g1(p, `IC[${i}]`)),
    };
    pairingKeys.set(vkey, k);
  }
  return k;
}

/** The reason the pairing check of a proof fails (the code PROOF_INVALID names it). */
export const PAIRING_FAILS = 'the Groth16 pairing check fails for these public signals';

/** `checkGroth16` for a key already checked: PROOF_MALFORMED or PROOF_INVALID, never throws.
 *  Every check of the proof is made here; only the pairing equation goes to `pairing`. */
export async function checkProof(vkey: CheckedKey, publicSignals: unknown, proof: unknown, pairing: PairingFn = pairingAlone): Promise<Groth16Failure | null> {
  try {
    const signals = signalValues(publicSignals, vkey.nPublic);
    if (typeof signals === 'string') return { code: 'PROOF_INVALID', reason: signals };
    const points = await proofPoints(proof);
    if (typeof points === 'string') return { code: 'PROOF_MALFORMED', reason: points };
    const ok = await pairing({ key: pairingKeyOf(vkey), signals, ...points });
    return ok ? null : { code: 'PROOF_INVALID', reason: PAIRING_FAILS };
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

/** Stops snarkjs's bn128 worker threads (started by its first proof or verification) so the
 *  process can exit. Safe to call more than once; the next snarkjs call starts them again. */
export async function terminateCurve(): Promise<void> {
  const g = globalThis as { curve_bn128?: { terminate(): Promise<void> } | null };
  const curve = g.curve_bn128;
  if (curve) await curve.terminate();
}
