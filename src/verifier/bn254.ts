// bn128 (alt_bn128, BN254) points as snarkjs JSON carries them, checked before any pairing
// (docs/zk-binding.md §5): one canonical affine encoding, on the curve, not the identity, in the
// prime-order subgroup. Every failure is a PointError; nothing else escapes.
//
// Encoding: a G1 point is ["x", "y", "1"], a G2 point [["x0","x1"], ["y0","y1"], ["1","0"]] (an
// F_q² element c0 + c1·u as [c0, c1]); each coordinate a decimal string without sign, leading zeros
// or whitespace, below q. Any other z (Jacobian or projective forms, the identity ["0","1","0"]) is
// refused, so each point has exactly one accepted spelling.
//
// Curve arithmetic is @noble/curves' (on-curve and identity checks). The G2 subgroup check
// [r]P = O runs on snarkjs's wasm curve (ffjavascript), the engine of the pairing itself: the same
// check in bigint arithmetic costs ~10× the time of a whole verification.
import { bn254 } from '@noble/curves/bn254.js';
import type * as Snarkjs from 'snarkjs';
import { BN128_P as BN128_R } from '../core/field.ts';

/** snarkjs, loaded on first use: it takes a few hundred ms to load, which a server that has not
 *  been asked to verify a proof (or a verifier given a bundle without one) need not spend. */
let snarkjsModule: Promise<typeof Snarkjs> | undefined;
export const loadSnarkjs = () => (snarkjsModule ??= import('snarkjs'));

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

interface WasmG2 {
  fromObject(p: bigint[][]): Uint8Array;
  timesScalar(p: Uint8Array, s: Uint8Array): Uint8Array;
  isZero(p: Uint8Array): boolean;
}

/** r little-endian, the scalar format of ffjavascript's timesScalar. */
const R_LE = (() => {
  const b = new Uint8Array(32);
  for (let i = 0, v = BN128_R; i < 32; i++, v >>= 8n) b[i] = Number(v & 0xffn);
  return b;
})();

/**
 * true iff [r]P = O for the curve point P (from g2OnCurve). The twist's group E'(F_q²) has order
 * r·h with r ∤ h, so its r-torsion is the one subgroup of order r: exactly the points that [r]
 * sends to the identity. Uses snarkjs's shared bn128 curve (the one its verify uses).
 */
export async function inG2Subgroup(p: G2Affine): Promise<boolean> {
  const curve = (await (await loadSnarkjs()).curves.getCurveFromName('bn128')) as unknown as { G2: WasmG2 };
  const point = curve.G2.fromObject([[p.x[0], p.x[1]], [p.y[0], p.y[1]]]);
  return curve.G2.isZero(curve.G2.timesScalar(point, R_LE));
}

/** A G2 point that is canonical, on the curve, not the identity and in the order-r subgroup. */
export async function g2(v: unknown, what: string): Promise<G2Affine> {
  const p = g2OnCurve(v, what);
  if (!(await inG2Subgroup(p))) throw new PointError(`${what} is not in the prime-order subgroup`);
  return p;
}
