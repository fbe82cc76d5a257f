// bn128 (alt_bn128, BN254) points as snarkjs JSON carries them, checked before any pairing
// (docs/zk-binding.md §5): one canonical affine encoding, on the curve, not the identity, in the
// prime-order subgroup. Every failure is a PointError; nothing else escapes.
//
// Encoding: a G1 point is ["x", "y", "1"], a G2 point [["x0","x1"], ["y0","y1"], ["1","0"]] (an
// F_q² element c0 + c1·u as [c0, c1]); each coordinate a decimal string without sign, leading zeros
// or whitespace, below q. Any other z (Jacobian or projective forms, the identity ["0","1","0"]) is
// refused, so each point has exactly one accepted spelling.
//
// Every check, and the pairing of groth16.ts, uses @noble/curves in bigint arithmetic: nothing
// to build or load first (snarkjs's wasm curve costs ~1 s of CPU to load and build, more than a
// whole verification here), and one engine for both.
import { bn254 } from '@noble/curves/bn254.js';

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

/** A checked G1 point as @noble/curves uses it. */
export const g1Point = (p: G1Affine) => bn254.G1.Point.fromAffine({ x: p.x, y: p.y });
/** A checked G2 point as @noble/curves uses it. */
export const g2Point = (p: G2Affine) => bn254.G2.Point.fromAffine({ x: Fp2.fromBigTuple([p.x[0], p.x[1]]), y: Fp2.fromBigTuple([p.y[0], p.y[1]]) });

/**
 * true iff the curve point P (from g2OnCurve) is in the subgroup of order r, i.e. [r]P = O.
 * @noble/curves's test for bn254 G2: ψ(P) = [6x₀²]P (El Housni, Guillevic, Piellard, "Co-factor
 * clearing and subgroup membership testing on pairing-friendly curves", eprint 2022/352, §3; the
 * EIP-197 order check), a 127-bit scalar multiplication instead of a 254-bit one.
 * test/verifier-hygiene.test.ts checks it against [r]P.
 */
export async function inG2Subgroup(p: G2Affine): Promise<boolean> {
  return g2Point(p).isTorsionFree();
}

/** A G2 point that is canonical, on the curve, not the identity and in the order-r subgroup. */
export async function g2(v: unknown, what: string): Promise<G2Affine> {
  const p = g2OnCurve(v, what);
  if (!(await inG2Subgroup(p))) throw new PointError(`${what} is not in the prime-order subgroup`);
  return p;
}
