// bn254 helpers for the verifier-hygiene tests, on @noble/curves (an implementation independent of
// the snarkjs wasm curve the verifier uses for its subgroup check and pairing).
import { createHash } from 'node:crypto';
import { bn254 } from '@noble/curves/bn254.js';

export const { Fp, Fp2, Fr } = bn254.fields;
export const G1 = bn254.G1.Point;
export const G2 = bn254.G2.Point;
export type G1Point = InstanceType<typeof G1>;
export type G2Point = InstanceType<typeof G2>;
type Fp2El = ReturnType<typeof Fp2.fromBigTuple>;
export const Q = Fp.ORDER;
export const R = Fr.ORDER;

export type G1Json = [string, string, string];
export type G2Json = [[string, string], [string, string], [string, string]];
export interface ProofJson {
  pi_a: G1Json;
  pi_b: G2Json;
  pi_c: G1Json;
  protocol: 'groth16';
  curve: 'bn128';
}

const fp2 = (c: readonly string[]): Fp2El => Fp2.fromBigTuple([BigInt(c[0]!), BigInt(c[1]!)]);
const fp2Json = (e: Fp2El): [string, string] => [e.c0.toString(), e.c1.toString()];

/** A snarkjs affine point as a noble point (no validation: the tests feed it on purpose). */
export const g1Of = (p: readonly string[]): G1Point => G1.fromAffine({ x: BigInt(p[0]!), y: BigInt(p[1]!) });
export const g2Of = (p: readonly (readonly string[])[]): G2Point => G2.fromAffine({ x: fp2(p[0]!), y: fp2(p[1]!) });

export function g1Json(p: G1Point): G1Json {
  const { x, y } = p.toAffine();
  return [x.toString(), y.toString(), '1'];
}
export function g2Json(p: G2Point): G2Json {
  const { x, y } = p.toAffine();
  return [fp2Json(x), fp2Json(y), ['1', '0']];
}

/** The same G1 point in Jacobian form (x·z², y·z³, z), which snarkjs also reads. */
export function g1Jacobian(p: readonly string[], z: bigint): G1Json {
  const [x, y] = [BigInt(p[0]!), BigInt(p[1]!)];
  return [Fp.mul(x, Fp.sqr(z)).toString(), Fp.mul(y, Fp.pow(z, 3n)).toString(), z.toString()];
}
export function g2Jacobian(p: readonly (readonly string[])[], z: Fp2El): G2Json {
  const [x, y] = [fp2(p[0]!), fp2(p[1]!)];
  return [fp2Json(Fp2.mul(x, Fp2.sqr(z))), fp2Json(Fp2.mul(y, Fp2.mul(Fp2.sqr(z), z))), fp2Json(z)];
}

/** [k]P by plain double-and-add: the definition, for any k (noble refuses k ≥ r). */
export function times<P extends G1Point | G2Point>(p: P, k: bigint): P {
  let acc = (p instanceof G1 ? G1.ZERO : G2.ZERO) as P;
  for (let i = k.toString(2).length - 1; i >= 0; i--) {
    acc = acc.double() as P;
    if ((k >> BigInt(i)) & 1n) acc = acc.add(p as never) as P;
  }
  return acc;
}

/** A point of the twist E'(F_q²) outside the order-r subgroup: x from SHA-256 of a label and a
 *  counter, y a square root of x³ + b; checked by the definition ([r]P ≠ O). */
export function nonSubgroupG2(label: string): G2Point {
  const b = G2.CURVE().b;
  for (let i = 0; ; i++) {
    const h = (s: string) => BigInt(`0x${createHash('sha256').update(`${label}/${i}/${s}`).digest('hex')}`) % Q;
    const x = Fp2.fromBigTuple([h('c0'), h('c1')]);
    let y: Fp2El;
    try {
      y = Fp2.sqrt(Fp2.add(Fp2.mul(Fp2.sqr(x), x), b));
    } catch {
      continue; // x³ + b is not a square
    }
    const p = G2.fromAffine({ x, y });
    if (!times(p, R).is0()) return p;
  }
}

/** Groth16 re-randomization (anyone can do it, without the witness): A' = A/s, B' = s·B + s·t·δ,
 *  C' = C + t·A. e(A', B') = e(A, B)·e(t·A, δ), so the verification equation still holds. */
export function rerandomize(proof: ProofJson, deltaG2: readonly (readonly string[])[], s: bigint, t: bigint): ProofJson {
  const A = g1Of(proof.pi_a);
  const B = g2Of(proof.pi_b);
  const C = g1Of(proof.pi_c);
  const delta = g2Of(deltaG2);
  return {
    ...proof,
    pi_a: g1Json(A.multiply(Fr.inv(s))),
    pi_b: g2Json(B.multiply(s).add(delta.multiply(Fr.mul(s, t)))),
    pi_c: g1Json(C.add(A.multiply(t))),
  };
}

/** L = IC₀ + Σ signalᵢ·ICᵢ, the public-input term of the verification equation. */
export function publicTerm(ic: readonly (readonly string[])[], signals: readonly string[]): G1Point {
  return signals.reduce((acc, s, i) => acc.add(g1Of(ic[i + 1]!).multiplyUnsafe(BigInt(s) % R)), g1Of(ic[0]!));
}
