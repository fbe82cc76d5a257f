// Groth16 verification of bn128-poseidon8-v1 proofs (snarkjs), fail-closed: malformed keys,
// signals or proofs give false, never an exception. No key files, no worker threads of ours: the
// open verifier can use this without loading the prover.
import type * as Snarkjs from 'snarkjs';
import { BN128_P } from '../core/field.ts';

/** snarkjs, loaded on first use: it takes a few hundred ms to load, which a server that has not
 *  been asked to verify a proof (or a verifier given a bundle without one) need not spend. */
let snarkjsModule: Promise<typeof Snarkjs> | undefined;
const loadSnarkjs = () => (snarkjsModule ??= import('snarkjs'));

/** The bn128 base field modulus q: proof point coordinates live in F_q. */
export const BN128_Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583n;

const DECIMAL = /^(0|[1-9][0-9]{0,77})$/;
const silent: Snarkjs.Logger = { debug() {}, info() {}, warn() {}, error() {} };

function below(v: unknown, modulus: bigint): v is string {
  return typeof v === 'string' && DECIMAL.test(v) && BigInt(v) < modulus;
}

const isArray = (v: unknown, n: number): v is unknown[] => Array.isArray(v) && v.length === n;
const g1 = (p: unknown): boolean => isArray(p, 3) && p.every((c) => below(c, BN128_Q));
const g2 = (p: unknown): boolean => isArray(p, 3) && p.every((c) => isArray(c, 2) && c.every((x) => below(x, BN128_Q)));

/** Shape of a snarkjs Groth16 bn128 verification key and proof, and canonical public signals. */
function wellFormed(vkey: unknown, publicSignals: unknown, proof: unknown): boolean {
  if (typeof vkey !== 'object' || vkey === null || typeof proof !== 'object' || proof === null) return false;
  const vk = vkey as Record<string, unknown>;
  const pf = proof as Record<string, unknown>;
  if (vk.protocol !== 'groth16' || vk.curve !== 'bn128' || typeof vk.nPublic !== 'number') return false;
  const n = vk.nPublic;
  if (!Number.isSafeInteger(n) || n < 0 || !isArray(vk.IC, n + 1) || !vk.IC.every(g1)) return false;
  if (!g1(vk.vk_alpha_1) || !g2(vk.vk_beta_2) || !g2(vk.vk_gamma_2) || !g2(vk.vk_delta_2)) return false;
  if (!isArray(publicSignals, n) || !publicSignals.every((s) => below(s, BN128_P))) return false;
  if (pf.protocol !== undefined && pf.protocol !== 'groth16') return false;
  if (pf.curve !== undefined && pf.curve !== 'bn128') return false;
  return g1(pf.pi_a) && g2(pf.pi_b) && g1(pf.pi_c);
}

/** true iff `proof` is a valid Groth16 proof for `publicSignals` under `vkey`. Never throws. */
export async function verifyGroth16(vkey: unknown, publicSignals: unknown, proof: unknown): Promise<boolean> {
  try {
    if (!wellFormed(vkey, publicSignals, proof)) return false;
    const snarkjs = await loadSnarkjs();
    return (await snarkjs.groth16.verify(vkey, publicSignals, proof, silent)) === true;
  } catch {
    return false;
  }
}

/** Stops snarkjs's bn128 worker threads (started by its first proof or verification) so the
 *  process can exit. Safe to call more than once; the next snarkjs call starts them again. */
export async function terminateCurve(): Promise<void> {
  const g = globalThis as { curve_bn128?: { terminate(): Promise<void> } | null };
  const curve = g.curve_bn128;
  if (curve) await curve.terminate();
}
