// Groth16 proving from an in-memory proving key (docs/zk-binding.md §5): the same algorithm and
// the same zkey and witness formats as snarkjs's `groth16.prove`, arranged for a long-lived prover.
//
//   - The zkey is parsed once (readProvingKey): header, coefficients and the five point sections
//     become plain byte arrays, so a proof re-reads nothing.
//   - The QAP evaluations A·w, B·w and C = (A·w)(B·w) are built by ONE call into the curve's wasm
//     (`qap_buildABC`) instead of two JavaScript↔wasm field operations per coefficient, which
//     was about an eighth of a proof's time at this circuit size.
//   - The rest is the textbook pipeline on the curve's wasm engine (ffjavascript, as snarkjs
//     uses it): inverse FFTs, the shift to the odd coset, FFTs, (A·B − C) pointwise, then the
//     five multi-exponentiations, and r, s drawn from node:crypto.
//
// test/prover.test.ts checks that every proof verifies against the ceremony's verification key,
// that it is randomized, and that the public signals are the witness's.
import { randomBytes } from 'node:crypto';
import { BN128_P as BN128_R } from '../core/field.ts'; // the scalar field (the circuit's p is the curve's r)
import { BN128_Q } from '../verifier/groth16.ts';

/** The part of ffjavascript's bn128 curve object that proving uses (buffers are Uint8Array). */
export interface ProvingCurve {
  readonly Fr: {
    readonly n8: number;
    readonly s: number;
    readonly shift: Uint8Array;
    readonly w: Uint8Array[];
    e(x: bigint | number | string): Uint8Array;
    mul(a: Uint8Array, b: Uint8Array): Uint8Array;
    neg(a: Uint8Array): Uint8Array;
    ifft(buff: Uint8Array, inType?: string, outType?: string): Promise<Uint8Array>;
    fft(buff: Uint8Array, inType?: string, outType?: string): Promise<Uint8Array>;
    batchApplyKey(buff: Uint8Array, first: Uint8Array, inc: Uint8Array): Promise<Uint8Array>;
  };
  readonly G1: CurveGroup & { readonly F: { readonly n8: number } };
  readonly G2: CurveGroup & { readonly F: { readonly n8: number } };
  readonly tm: { queueAction(task: unknown[]): Promise<Uint8Array[]> };
}

interface CurveGroup {
  add(a: Uint8Array, b: Uint8Array): Uint8Array;
  timesFr(a: Uint8Array, s: Uint8Array): Uint8Array;
  toAffine(a: Uint8Array): Uint8Array;
  toObject(a: Uint8Array): bigint[] | bigint[][];
  multiExpAffine(bases: Uint8Array, scalars: Uint8Array): Promise<Uint8Array>;
}

/** A Groth16 proving key, parsed once from a snarkjs .zkey file. */
export interface ProvingKey {
  readonly nVars: number;
  readonly nPublic: number;
  readonly domainSize: number;
  readonly power: number;
  readonly r: bigint;
  readonly alpha1: Uint8Array;
  readonly beta1: Uint8Array;
  readonly beta2: Uint8Array;
  readonly delta1: Uint8Array;
  readonly delta2: Uint8Array;
  /** Section 4 without its count: nCoeffs records of (matrix u32, constraint u32, signal u32, coefficient). */
  readonly coeffs: Uint8Array;
  readonly nCoeffs: number;
  readonly pointsA: Uint8Array;
  readonly pointsB1: Uint8Array;
  readonly pointsB2: Uint8Array;
  readonly pointsC: Uint8Array;
  readonly pointsH: Uint8Array;
}

export class ProvingKeyError extends Error {
  override readonly name = 'ProvingKeyError';
  readonly code = 'PROVING_KEY_INVALID';
}


function leBigInt(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

/** The sections of a snarkjs binary file ("zkey", "wtns"): type → [start, end) of each. */
function sectionsOf(bytes: Uint8Array, magic: string): Map<number, [number, number]> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 4)) !== magic) throw new ProvingKeyError(`not a ${magic} file`);
  const n = dv.getUint32(8, true);
  const out = new Map<number, [number, number]>();
  let p = 12;
  for (let i = 0; i < n; i++) {
    if (p + 12 > bytes.length) throw new ProvingKeyError(`truncated ${magic} file`);
    const type = dv.getUint32(p, true);
    const size = Number(dv.getBigUint64(p + 4, true));
    p += 12;
    if (p + size > bytes.length) throw new ProvingKeyError(`truncated ${magic} file`);
    if (out.has(type)) throw new ProvingKeyError(`${magic} section ${type} appears twice`);
    out.set(type, [p, p + size]);
    p += size;
  }
  return out;
}

function section(bytes: Uint8Array, s: Map<number, [number, number]>, type: number, expectedSize?: number): Uint8Array {
  const r = s.get(type);
  if (!r) throw new ProvingKeyError(`section ${type} missing`);
  if (expectedSize !== undefined && r[1] - r[0] !== expectedSize) throw new ProvingKeyError(`section ${type} has the wrong size`);
  return bytes.slice(r[0], r[1]);
}

/** Parses a Groth16 bn128 proving key (snarkjs .zkey, version 1). */
export function readProvingKey(bytes: Uint8Array): ProvingKey {
  const s = sectionsOf(bytes, 'zkey');
  const h = section(bytes, s, 2);
  const proto = new DataView(section(bytes, s, 1).buffer).getUint32(0, true);
  if (proto !== 1) throw new ProvingKeyError('not a Groth16 proving key');
  const dv = new DataView(h.buffer);
  const n8q = dv.getUint32(0, true);
  const q = leBigInt(h.subarray(4, 4 + n8q));
  const n8r = dv.getUint32(4 + n8q, true);
  const r = leBigInt(h.subarray(8 + n8q, 8 + n8q + n8r));
  if (n8q !== 32 || n8r !== 32 || q !== BN128_Q || r !== BN128_R) throw new ProvingKeyError('proving key is not for bn128');
  let p = 8 + n8q + n8r;
  const nVars = dv.getUint32(p, true);
  const nPublic = dv.getUint32(p + 4, true);
  const domainSize = dv.getUint32(p + 8, true);
  p += 12;
  const power = Math.log2(domainSize);
  if (!Number.isInteger(power)) throw new ProvingKeyError('domain size is not a power of two');
  const g1 = 2 * n8q;
  const g2 = 4 * n8q;
  const take = (n: number) => h.slice(p, (p += n));
  const alpha1 = take(g1);
  const beta1 = take(g1);
  const beta2 = take(g2);
  take(g2); // gamma2: only the verifier needs it
  const delta1 = take(g1);
  const delta2 = take(g2);
  const coeffSection = section(bytes, s, 4);
  const nCoeffs = new DataView(coeffSection.buffer).getUint32(0, true);
  if (coeffSection.length !== 4 + nCoeffs * (12 + n8r)) throw new ProvingKeyError('coefficient section has the wrong size');
  return {
    nVars,
    nPublic,
    domainSize,
    power,
    r,
    alpha1,
    beta1,
    beta2,
    delta1,
    delta2,
    coeffs: coeffSection.subarray(4),
    nCoeffs,
    pointsA: section(bytes, s, 5, nVars * g1),
    pointsB1: section(bytes, s, 6, nVars * g1),
    pointsB2: section(bytes, s, 7, nVars * g2),
    pointsC: section(bytes, s, 8, (nVars - nPublic - 1) * g1),
    pointsH: section(bytes, s, 9, domainSize * g1),
  };
}

/** The witness vector (nVars little-endian field elements) of a snarkjs .wtns file. */
export function witnessOf(wtns: Uint8Array, pk: ProvingKey): Uint8Array {
  const s = sectionsOf(wtns, 'wtns');
  const header = section(wtns, s, 1);
  const dv = new DataView(header.buffer);
  const n8 = dv.getUint32(0, true);
  if (n8 !== 32 || leBigInt(header.subarray(4, 36)) !== pk.r) throw new ProvingKeyError('witness is not over the bn128 scalar field');
  const nWitness = dv.getUint32(36, true);
  if (nWitness !== pk.nVars) throw new ProvingKeyError(`witness has ${nWitness} values, the circuit ${pk.nVars}`);
  return section(wtns, s, 2, nWitness * n8);
}

/** A uniformly random nonzero scalar (rejection-free: 64 random bytes reduced mod r). */
function randomScalar(r: bigint): bigint {
  for (;;) {
    const x = leBigInt(randomBytes(64)) % r;
    if (x !== 0n) return x;
  }
}

export interface Groth16Proof {
  pi_a: string[];
  pi_b: string[][];
  pi_c: string[];
  protocol: 'groth16';
  curve: 'bn128';
}

/** Proves with witness `w` (nVars × 32 bytes, little-endian, standard form). */
export async function groth16Prove(curve: ProvingCurve, pk: ProvingKey, w: Uint8Array): Promise<{ proof: Groth16Proof; publicSignals: string[] }> {
  const { Fr, G1, G2 } = curve;
  const n8 = Fr.n8;
  const n = pk.domainSize;
  if (w.length !== pk.nVars * n8) throw new ProvingKeyError(`witness has ${w.length / n8} values, the circuit ${pk.nVars}`);

  // A·w, B·w and their product at the domain points (Montgomery form), in one wasm call
  const [aT, bT, cT] = await curve.tm.queueAction([
    { cmd: 'ALLOCSET', var: 0, buff: pk.coeffs },
    { cmd: 'ALLOCSET', var: 1, buff: w },
    { cmd: 'ALLOC', var: 2, len: n * n8 },
    { cmd: 'ALLOC', var: 3, len: n * n8 },
    { cmd: 'ALLOC', var: 4, len: n * n8 },
    { cmd: 'CALL', fnName: 'qap_buildABC', params: [{ var: 0 }, { val: pk.nCoeffs }, { var: 1 }, { var: 2 }, { var: 3 }, { var: 4 }, { val: 0 }, { val: n }, { val: 0 }, { val: pk.nVars }] },
    { cmd: 'GET', out: 0, var: 2, len: n * n8 },
    { cmd: 'GET', out: 1, var: 3, len: n * n8 },
    { cmd: 'GET', out: 2, var: 4, len: n * n8 },
  ]) as [Uint8Array, Uint8Array, Uint8Array];

  // evaluations on the odd coset: interpolate, shift, evaluate
  const inc = pk.power === Fr.s ? Fr.shift : Fr.w[pk.power + 1]!;
  const onCoset = async (evals: Uint8Array) => Fr.fft(await Fr.batchApplyKey(await Fr.ifft(evals), Fr.e(1), inc));
  const [aOdd, bOdd, cOdd] = [await onCoset(aT), await onCoset(bT), await onCoset(cT)];

  // h = A·B − C on the coset, as standard-form scalars for the H multi-exponentiation
  const [h] = await curve.tm.queueAction([
    { cmd: 'ALLOCSET', var: 0, buff: aOdd },
    { cmd: 'ALLOCSET', var: 1, buff: bOdd },
    { cmd: 'ALLOCSET', var: 2, buff: cOdd },
    { cmd: 'ALLOC', var: 3, len: n * n8 },
    { cmd: 'CALL', fnName: 'qap_joinABC', params: [{ var: 0 }, { var: 1 }, { var: 2 }, { val: n }, { var: 3 }] },
    { cmd: 'CALL', fnName: 'frm_batchFromMontgomery', params: [{ var: 3 }, { val: n }, { var: 3 }] },
    { cmd: 'GET', out: 0, var: 3, len: n * n8 },
  ]) as [Uint8Array];

  const msmA = await G1.multiExpAffine(pk.pointsA, w);
  const msmB1 = await G1.multiExpAffine(pk.pointsB1, w);
  const msmB2 = await G2.multiExpAffine(pk.pointsB2, w);
  const msmC = await G1.multiExpAffine(pk.pointsC, w.subarray((pk.nPublic + 1) * n8));
  const msmH = await G1.multiExpAffine(pk.pointsH, h);

  const r = Fr.e(randomScalar(pk.r));
  const s = Fr.e(randomScalar(pk.r));
  // A = α + Σ w·A + r·δ,  B = β + Σ w·B + s·δ,  C = Σ w·C + H + s·A + r·B1 − r·s·δ
  const piA = G1.add(G1.add(msmA, pk.alpha1), G1.timesFr(pk.delta1, r));
  const piB = G2.add(G2.add(msmB2, pk.beta2), G2.timesFr(pk.delta2, s));
  const b1 = G1.add(G1.add(msmB1, pk.beta1), G1.timesFr(pk.delta1, s));
  let piC = G1.add(msmC, msmH);
  piC = G1.add(piC, G1.timesFr(piA, s));
  piC = G1.add(piC, G1.timesFr(b1, r));
  piC = G1.add(piC, G1.timesFr(pk.delta1, Fr.neg(Fr.mul(r, s))));

  const publicSignals: string[] = [];
  for (let i = 1; i <= pk.nPublic; i++) publicSignals.push(leBigInt(w.subarray(i * n8, (i + 1) * n8)).toString());
  const str = (x: unknown): unknown => (Array.isArray(x) ? x.map(str) : String(x));
  return {
    proof: {
      pi_a: str(G1.toObject(G1.toAffine(piA))) as string[],
      pi_b: str(G2.toObject(G2.toAffine(piB))) as string[][],
      pi_c: str(G1.toObject(G1.toAffine(piC))) as string[],
      protocol: 'groth16',
      curve: 'bn128',
    },
    publicSignals,
  };
}
