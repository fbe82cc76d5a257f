// The Groth16 pairing equation of one proof or of many at once (docs/zk-binding.md §5), on the
// bn128 wasm curve of ffjavascript (snarkjs's engine), computed on the calling thread only.
//
// One proof (A, B, C) with public signals x under a key (α, β, γ, δ, IC) holds iff
//   e(A, B) = e(α, β) · e(L, γ) · e(C, δ),   L = IC₀ + Σⱼ xⱼ·ICⱼ.
// n proofs are checked together with random 128-bit scalars rᵢ (a random linear combination,
// Bellare–Garay–Rabin small-exponent batch test): per key,
//   Πᵢ e(rᵢ·Aᵢ, Bᵢ) · e(−(Σ rᵢ)·α, β) · e(−Σ rᵢ·Lᵢ, γ) · e(−Σ rᵢ·Cᵢ, δ) = 1,
// with Σ rᵢ·Lᵢ = (Σ rᵢ)·IC₀ + Σⱼ (Σᵢ rᵢ·xᵢⱼ mod r)·ICⱼ: n Miller loops plus three per key, one
// shared final exponentiation. If any proof is invalid the product is 1 with probability at most
// 2⁻¹²⁸ over the choice of the rᵢ (GT has prime order r; every point has been checked to lie in
// its order-r group before it gets here), so the rᵢ must be unpredictable to whoever made the
// proofs: they come from the platform CSPRNG (node:crypto, crypto.getRandomValues in a browser), drawn anew for every batch.
import { randomBytes } from '../core/platform.ts';
import { BN128_P } from '../core/field.ts';
import { type G1Affine, type G2Affine, wasmCurve, type WasmPairingCurve } from './bn254.ts';

/** A verification key's points, as the pairing needs them. */
export interface PairingKey {
  readonly alpha: G1Affine;
  readonly beta: G2Affine;
  readonly gamma: G2Affine;
  readonly delta: G2Affine;
  readonly ic: readonly G1Affine[];
}

/** One proof to check: every point already canonical, on its curve and in its order-r group,
 *  every signal below r, signals.length = ic.length − 1. */
export interface PairingItem {
  readonly key: PairingKey;
  readonly signals: readonly bigint[];
  readonly a: G1Affine;
  readonly b: G2Affine;
  readonly c: G1Affine;
}

const R = BN128_P;
/** Bytes of a batch scalar: 128 bits, the soundness error 2⁻¹²⁸. */
const SCALAR_BYTES = 16;

/** A scalar as ffjavascript's timesScalar takes it: little-endian bytes. */
function le(s: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32 && s > 0n; i++, s >>= 8n) out[i] = Number(s & 0xffn);
  return out;
}

/** A non-zero random 128-bit scalar (little-endian bytes and value). */
function randomScalar(): { bytes: Uint8Array; value: bigint } {
  for (;;) {
    const bytes = randomBytes(SCALAR_BYTES);
    let value = 0n;
    for (let i = SCALAR_BYTES - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
    if (value !== 0n) return { bytes, value };
  }
}

interface PreparedKey {
  readonly alpha: Uint8Array;
  readonly ic: readonly Uint8Array[];
  readonly beta: Uint8Array;
  readonly gamma: Uint8Array;
  readonly delta: Uint8Array;
}

/** The G2 points of each key, prepared for the Miller loop once per key and curve. */
const preparedKeys = new WeakMap<PairingKey, { curve: WasmPairingCurve; prepared: PreparedKey }>();

const g1Of = (curve: WasmPairingCurve, p: G1Affine) => curve.G1.toJacobian(curve.G1.fromObject([p.x, p.y, 1n]));
const g2Of = (curve: WasmPairingCurve, p: G2Affine) => curve.G2.toJacobian(curve.G2.fromObject([[p.x[0], p.x[1]], [p.y[0], p.y[1]], [1n, 0n]]));

function prepareKey(curve: WasmPairingCurve, key: PairingKey): PreparedKey {
  const known = preparedKeys.get(key);
  if (known?.curve === curve) return known.prepared;
  const prepared: PreparedKey = {
    alpha: g1Of(curve, key.alpha),
    ic: key.ic.map((p) => g1Of(curve, p)),
    beta: curve.prepareG2(g2Of(curve, key.beta)),
    gamma: curve.prepareG2(g2Of(curve, key.gamma)),
    delta: curve.prepareG2(g2Of(curve, key.delta)),
  };
  preparedKeys.set(key, { curve, prepared });
  return prepared;
}

/**
 * true iff every item satisfies its Groth16 pairing equation (up to the 2⁻¹²⁸ soundness error of
 * the random combination when there are several; exact for one). Synchronous wasm work on the
 * calling thread once the curve is built. Throws only on a malformed item (a wrong signal count).
 */
export async function pairingCheck(items: readonly PairingItem[]): Promise<boolean> {
  if (items.length === 0) return true;
  const curve = await wasmCurve();
  const { G1 } = curve;
  const single = items.length === 1;
  let acc = curve.Gt.one;
  const loop = (p: Uint8Array, preparedQ: Uint8Array) => {
    if (G1.isZero(p)) return; // e(O, Q) = 1
    acc = curve.Gt.mul(acc, curve.millerLoop(curve.prepareG1(p), preparedQ));
  };
  // per key: Σ rᵢ, Σ rᵢ·xᵢⱼ (mod r) and Σ rᵢ·Cᵢ
  const groups = new Map<PairingKey, { r: bigint; x: bigint[]; c: Uint8Array }>();
  for (const it of items) {
    if (it.signals.length !== it.key.ic.length - 1) throw new Error(`expected ${it.key.ic.length - 1} public signals, got ${it.signals.length}`);
    const { bytes, value } = single ? { bytes: le(1n), value: 1n } : randomScalar();
    let g = groups.get(it.key);
    if (!g) groups.set(it.key, (g = { r: 0n, x: it.signals.map(() => 0n), c: G1.zero }));
    g.r = (g.r + value) % R;
    it.signals.forEach((x, j) => (g.x[j] = (g.x[j]! + value * x) % R));
    const a = g1Of(curve, it.a);
    const c = g1Of(curve, it.c);
    loop(single ? a : G1.timesScalar(a, bytes), curve.prepareG2(g2Of(curve, it.b)));
    g.c = G1.add(g.c, single ? c : G1.timesScalar(c, bytes));
  }
  for (const [key, g] of groups) {
    const k = prepareKey(curve, key);
    let l = G1.timesScalar(k.ic[0]!, le(g.r));
    g.x.forEach((x, j) => (l = G1.add(l, G1.timesScalar(k.ic[j + 1]!, le(x)))));
    loop(G1.neg(G1.timesScalar(k.alpha, le(g.r))), k.beta);
    loop(G1.neg(l), k.gamma);
    loop(G1.neg(g.c), k.delta);
  }
  return curve.Gt.eq(curve.finalExponentiation(acc), curve.Gt.one);
}
