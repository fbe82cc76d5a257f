// Groth16 verification of bn128 proofs, fail-closed: a malformed or degenerate key, a
// non-canonical signal or point, gives a coded failure, never an exception. No key files and no
// threads: the pairing check runs on a single-threaded wasm curve of the verifier's own
// (bn254.ts), so a process that verifies exits by itself and never shares snarkjs's global
// multi-threaded curve with a prover. Which key is trusted for which binding version is vkeys.ts's
// job; this checks any key it is given.
import { BN128_P } from '../core/field.ts';
import { coordinate, g1, g2, g2OnCurve, PointError, verifierCurve, type G1Affine, type G2Affine } from './bn254.ts';
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

interface ProofPoints {
  readonly a: G1Affine;
  readonly b: G2Affine;
  readonly c: G1Affine;
}

/** The points of `proof`, or the reason it is not a canonical proof (points as bn254.ts accepts them). */
async function proofPoints(proof: unknown): Promise<ProofPoints | string> {
  if (!record(proof)) return 'the proof is not an object';
  if (proof.protocol !== undefined && proof.protocol !== 'groth16') return 'not a Groth16 proof';
  if (proof.curve !== undefined && proof.curve !== 'bn128') return 'not a bn128 proof';
  try {
    return { a: g1(proof.pi_a, 'pi_a'), b: await g2(proof.pi_b, 'pi_b'), c: g1(proof.pi_c, 'pi_c') };
  } catch (e) {
    if (e instanceof PointError) return e.message;
    throw e;
  }
}

/** `signals` as nPublic canonical elements of F_r, or the reason they are not. */
function signalValues(signals: unknown, n: number): bigint[] | string {
  if (!Array.isArray(signals) || signals.length !== n) return `expected ${n} public signals`;
  const values: bigint[] = [];
  for (const [i, s] of signals.entries()) {
    try {
      const v = coordinate(s, `public signal ${i}`);
      if (v >= BN128_P) return `public signal ${i} is not below the scalar field modulus r`;
      values.push(v);
    } catch (e) {
      if (e instanceof PointError) return e.message;
      throw e;
    }
  }
  return values;
}

/** snarkjs's object form of an affine point (z = 1), which the wasm curve reads as affine. */
const g1Object = (p: G1Affine) => [p.x, p.y, 1n];
const g2Object = (p: G2Affine) => [[p.x[0], p.x[1]], [p.y[0], p.y[1]], [1n, 0n]];
/** A point of a key verificationKeyProblem accepted (subgroup included), so parsing cannot fail. */
const keyG1 = (v: unknown) => g1Object(g1(v, 'key point'));
const keyG2 = (v: unknown) => g2Object(g2OnCurve(v, 'key point'));

/** The 32-byte little-endian form of a scalar below r (what the wasm multi-exponentiation reads). */
function scalarLE(out: Uint8Array, offset: number, v: bigint): void {
  for (let i = 0; i < 32; i++) out[offset + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

/**
 * The Groth16 equation e(−A, B)·e(vk_x, γ)·e(C, δ)·e(α, β) = 1 with vk_x = IC₀ + Σ sᵢ·ICᵢ₊₁
 * (Groth 2016, §3.2; the same product of pairings snarkjs's groth16.verify checks).
 */
async function pairingHolds(vkey: CheckedKey, signals: readonly bigint[], p: ProofPoints): Promise<boolean> {
  const curve = await verifierCurve();
  const { G1, G2 } = curve;
  const ic = vkey.IC as unknown[];
  let vkX = G1.fromObject(keyG1(ic[0]));
  if (signals.length > 0) {
    const n8 = G1.F.n8;
    const points = new Uint8Array(2 * n8 * signals.length);
    const scalars = new Uint8Array(32 * signals.length);
    signals.forEach((s, i) => {
      points.set(G1.fromObject(keyG1(ic[i + 1])), 2 * n8 * i);
      scalarLE(scalars, 32 * i, s);
    });
    vkX = G1.add(await G1.multiExpAffine(points, scalars), vkX);
  }
  return curve.pairingEq(
    G1.neg(G1.fromObject(g1Object(p.a))),
    G2.fromObject(g2Object(p.b)),
    vkX,
    G2.fromObject(keyG2(vkey.vk_gamma_2)),
    G1.fromObject(g1Object(p.c)),
    G2.fromObject(keyG2(vkey.vk_delta_2)),
    G1.fromObject(keyG1(vkey.vk_alpha_1)),
    G2.fromObject(keyG2(vkey.vk_beta_2)),
  );
}

declare const checked: unique symbol;
/** A key that verificationKeyProblem found nothing wrong with (vkeys.ts checks each pinned key once). */
export type CheckedKey = Readonly<Record<string, unknown>> & { readonly nPublic: number; readonly [checked]: true };

/** `checkGroth16` for a key already checked: PROOF_MALFORMED or PROOF_INVALID, never throws. */
export async function checkProof(vkey: CheckedKey, publicSignals: unknown, proof: unknown): Promise<Groth16Failure | null> {
  try {
    const signals = signalValues(publicSignals, vkey.nPublic);
    if (typeof signals === 'string') return { code: 'PROOF_INVALID', reason: signals };
    const points = await proofPoints(proof);
    if (typeof points === 'string') return { code: 'PROOF_MALFORMED', reason: points };
    const ok = (await pairingHolds(vkey, signals, points)) === true;
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

/** Stops snarkjs's global bn128 worker threads (started by its first proof, witness check or
 *  ceremony step; never by verification here) so the process can exit. Safe to call more than
 *  once; the next snarkjs call starts them again. */
export async function terminateCurve(): Promise<void> {
  const g = globalThis as { curve_bn128?: { terminate(): Promise<void> } | null };
  const curve = g.curve_bn128;
  if (curve) await curve.terminate();
}
