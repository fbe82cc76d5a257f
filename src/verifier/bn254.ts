// bn128 (alt_bn128, BN254) points as snarkjs JSON carries them, checked before any pairing
// (docs/zk-binding.md §5): one canonical affine encoding, on the curve, not the identity, in the
// prime-order subgroup. Every failure is a PointError; nothing else escapes.
//
// Encoding: a G1 point is ["x", "y", "1"], a G2 point [["x0","x1"], ["y0","y1"], ["1","0"]] (an
// F_q² element c0 + c1·u as [c0, c1]); each coordinate a decimal string without sign, leading zeros
// or whitespace, below q. Any other z (Jacobian or projective forms, the identity ["0","1","0"]) is
// refused, so each point has exactly one accepted spelling.
//
// On-curve and identity checks use @noble/curves. The G2 subgroup check runs on the wasm curve of
// snarkjs (ffjavascript) that also computes the pairing (pairing.ts): in bigint arithmetic (noble's
// own endomorphism check included) it takes several milliseconds, more than the rest of a verification.
import { bn254 } from '@noble/curves/bn254.js';
import type * as Snarkjs from 'snarkjs';

/** snarkjs, loaded on first use: it takes a few hundred ms to load, which a server that has not
 *  been asked to verify a proof (or a verifier given a bundle without one) need not spend. */
let snarkjsModule: Promise<typeof Snarkjs> | undefined;
const loadSnarkjs = () => (snarkjsModule ??= import('snarkjs'));

/** The bn128 base field modulus q: point coordinates live in F_q. */
export const BN128_Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583n;
/** q has 77 decimal digits; so does every canonical coordinate that may be below it. */
const DECIMAL = /^(?:0|[1-9][0-9]{0,76})$/;

const { Fp2 } = bn254.fields;
type Fp2 = ReturnType<typeof Fp2.fromBigTuple>;
/** b of the twist E'/F_q²: y² = x³ + 3/(9 + u). */
const B2 = bn254.G2.Point.CURVE().b;

export type G1Affine = { readonly x: bigint; readonly y: bigint };
export type G2Affine = { readonly x: readonly [bigint, bigint]; readonly y: readonly [bigint, bigint] };

/** A point that is not a canonical affine encoding of a non-identity subgroup point. */
export class PointError extends Error {
  override readonly name = 'PointError';
}

const isArray = (v: unknown, n: number): v is unknown[] => Array.isArray(v) && v.length === n;

/** A canonical decimal string below q. */
export function coordinate(v: unknown, what: string): bigint {
  if (typeof v !== 'string' || !DECIMAL.test(v)) throw new PointError(`${what} is not a canonical decimal string`);
  const n = BigInt(v);
  if (n >= BN128_Q) throw new PointError(`${what} is not below the base field modulus q`);
  return n;
}

/** A G1 point ["x","y","1"]: on y² = x³ + 3 and not the identity (G1 has cofactor 1, so every
 *  curve point is in the order-r group). */
export function g1(v: unknown, what: string): G1Affine {
  if (!isArray(v, 3)) throw new PointError(`${what} is not a G1 point ["x","y","1"]`);
  if (v[2] !== '1') throw new PointError(`${what} is not in affine form (z must be exactly "1")`);
  const x = coordinate(v[0], `${what}.x`);
  const y = coordinate(v[1], `${what}.y`);
  // noble reads (0, 0) as the identity (the EIP-196 encoding); it is not a curve point here
  if (x === 0n && y === 0n) throw new PointError(`${what} is the identity`);
  const p = bn254.G1.Point.fromAffine({ x, y });
  if (p.is0()) throw new PointError(`${what} is the identity`);
  try {
    p.assertValidity();
  } catch {
    throw new PointError(`${what} is not on the curve`);
  }
  return { x, y };
}

function fp2(v: unknown, what: string): readonly [bigint, bigint] {
  if (!isArray(v, 2)) throw new PointError(`${what} is not an F_q² element ["c0","c1"]`);
  return [coordinate(v[0], `${what}[0]`), coordinate(v[1], `${what}[1]`)];
}

/** A G2 point [["x0","x1"],["y0","y1"],["1","0"]] on the twist and not the identity. Subgroup
 *  membership is a separate, asynchronous step: `inG2Subgroup`. */
export function g2OnCurve(v: unknown, what: string): G2Affine {
  if (!isArray(v, 3)) throw new PointError(`${what} is not a G2 point [x, y, ["1","0"]]`);
  const z = v[2];
  if (!isArray(z, 2) || z[0] !== '1' || z[1] !== '0') throw new PointError(`${what} is not in affine form (z must be exactly ["1","0"])`);
  const x = fp2(v[0], `${what}.x`);
  const y = fp2(v[1], `${what}.y`);
  if (x[0] === 0n && x[1] === 0n && y[0] === 0n && y[1] === 0n) throw new PointError(`${what} is the identity`);
  const X: Fp2 = Fp2.fromBigTuple([x[0], x[1]]);
  const Y: Fp2 = Fp2.fromBigTuple([y[0], y[1]]);
  if (!Fp2.eql(Fp2.sqr(Y), Fp2.add(Fp2.mul(Fp2.sqr(X), X), B2))) throw new PointError(`${what} is not on the curve`);
  return { x, y };
}

/** The bn128 curve of ffjavascript, as far as pairing.ts and this file use it. */
export interface WasmPairingCurve {
  readonly G1: WasmGroup;
  readonly G2: WasmGroup;
  readonly Gt: { readonly one: Uint8Array; mul(a: Uint8Array, b: Uint8Array): Uint8Array; eq(a: Uint8Array, b: Uint8Array): boolean };
  prepareG1(p: Uint8Array): Uint8Array;
  prepareG2(q: Uint8Array): Uint8Array;
  millerLoop(preP: Uint8Array, preQ: Uint8Array): Uint8Array;
  finalExponentiation(f: Uint8Array): Uint8Array;
}
interface WasmGroup {
  readonly zero: Uint8Array;
  fromObject(p: unknown[]): Uint8Array;
  toJacobian(p: Uint8Array): Uint8Array;
  timesScalar(p: Uint8Array, s: Uint8Array): Uint8Array;
  add(a: Uint8Array, b: Uint8Array): Uint8Array;
  neg(a: Uint8Array): Uint8Array;
  isZero(p: Uint8Array): boolean;
}

/** The verifier's own bn128 wasm curve, built on first use (a few hundred ms): single-threaded,
 *  so a verification starts no helper threads and posts no messages; every operation used here
 *  is synchronous on the calling thread (a pool of verifier threads, pool.ts, runs one each). */
let ownCurve: Promise<WasmPairingCurve> | undefined;
export function wasmCurve(): Promise<WasmPairingCurve> {
  ownCurve ??= loadSnarkjs()
    .then((s) => s.curves.getCurveFromName('bn128', { singleThread: true }) as Promise<unknown> as Promise<WasmPairingCurve>)
    .catch((e: unknown) => {
      ownCurve = undefined; // a later call tries again
      throw e;
    });
  return ownCurve;
}

interface WasmCurve {
  readonly F1: { neg(a: Uint8Array): Uint8Array };
  readonly F2: { mul(a: Uint8Array, b: Uint8Array): Uint8Array; fromObject(a: bigint[]): Uint8Array };
  readonly G2: {
    fromObject(p: bigint[][]): Uint8Array;
    timesScalar(p: Uint8Array, s: Uint8Array): Uint8Array;
    add(a: Uint8Array, b: Uint8Array): Uint8Array;
    sub(a: Uint8Array, b: Uint8Array): Uint8Array;
    double(a: Uint8Array): Uint8Array;
    isZero(p: Uint8Array): boolean;
  };
}

/** The BN parameter x₀ of bn254 (q and r are polynomials in it), little-endian for timesScalar. */
const SEED = 4965661367192848881n;
const SEED_LE = Uint8Array.from({ length: 8 }, (_, i) => Number((SEED >> BigInt(8 * i)) & 0xffn));

/** ψ = twist⁻¹ ∘ Frobenius ∘ twist on E'(F_q²): (x, y) ↦ (x̄·ξ^((q−1)/3), ȳ·ξ^((q−1)/2)), ξ = 9 + u. */
let psiConstants: { curve: WasmCurve; x: Uint8Array; y: Uint8Array } | null = null;

function psiOf(curve: WasmCurve) {
  if (psiConstants?.curve !== curve) {
    const xi = Fp2.fromBigTuple([9n, 1n]);
    const wasm = (e: Fp2) => curve.F2.fromObject([e.c0, e.c1]);
    const q = bn254.fields.Fp.ORDER;
    psiConstants = { curve, x: wasm(Fp2.pow(xi, (q - 1n) / 3n)), y: wasm(Fp2.pow(xi, (q - 1n) / 2n)) };
  }
  const { x: cx, y: cy } = psiConstants;
  const n = 32; // bytes of an F_q element; an F_q² element is two, a projective point three of those
  const conj = (a: Uint8Array) => {
    const out = new Uint8Array(2 * n);
    out.set(a.subarray(0, n));
    out.set(curve.F1.neg(a.slice(n, 2 * n)), n);
    return out;
  };
  // ψ is a field automorphism followed by constant factors, so it maps projective (X : Y : Z) to
  // (X̄·cx : Ȳ·cy : Z̄) in both Jacobian and homogeneous coordinates.
  return (p: Uint8Array): Uint8Array => {
    const out = new Uint8Array(6 * n);
    out.set(curve.F2.mul(conj(p.subarray(0, 2 * n)), cx));
    out.set(curve.F2.mul(conj(p.subarray(2 * n, 4 * n)), cy), 2 * n);
    out.set(conj(p.subarray(4 * n, 6 * n)), 4 * n);
    return out;
  };
}

/**
 * true iff the curve point P (from g2OnCurve) is in the subgroup of order r, i.e. [r]P = O.
 * Computed as in Dai, Lin, Zhao, Zhou, "Fast subgroup membership testings for G1, G2 and GT on
 * pairing-friendly curves" (eprint 2022/348, §3 and §5.1; also gnark-crypto's bn254 G2 test):
 * for BN curves [r]P = O ⟺ [x₀+1]P + ψ([x₀]P) + ψ²([x₀]P) = ψ³([2x₀]P), a 63-bit scalar
 * multiplication instead of a 254-bit one. test/verifier-hygiene.test.ts checks it against [r]P.
 * Runs on the verifier's wasm curve (the one its pairing uses).
 */
export async function inG2Subgroup(p: G2Affine): Promise<boolean> {
  const curve = (await wasmCurve()) as unknown as WasmCurve;
  const { G2 } = curve;
  const psi = psiOf(curve);
  const P = G2.fromObject([[p.x[0], p.x[1]], [p.y[0], p.y[1]]]);
  const xP = G2.timesScalar(P, SEED_LE);
  const psi1 = psi(xP);
  const psi2 = psi(psi1);
  const lhs = G2.add(G2.add(G2.add(xP, P), psi1), psi2);
  return G2.isZero(G2.sub(G2.double(psi(psi2)), lhs));
}

/** A G2 point that is canonical, on the curve, not the identity and in the order-r subgroup. */
export async function g2(v: unknown, what: string): Promise<G2Affine> {
  const p = g2OnCurve(v, what);
  if (!(await inG2Subgroup(p))) throw new PointError(`${what} is not in the prime-order subgroup`);
  return p;
}
