// Ed25519 (RFC 8032) through node:crypto, the fast path on this runtime (OpenSSL), with strict
// verification: 32-byte key, 64-byte signature, S < L checked here (RFC 8032 §5.1.7), malformed
// points rejected by OpenSSL. All 151 Wycheproof cases give their expected result (test/ed25519).
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** Group order L of edwards25519. */
export const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;

export interface Ed25519KeyPair {
  /** 32-byte RFC 8032 seed. Secret. */
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

export function generateEd25519(): Ed25519KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length);
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  return { seed: new Uint8Array(seed), publicKey: new Uint8Array(pub) };
}

export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  const pub = createPublicKey(privateKeyObject(seed)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(pub.subarray(SPKI_PREFIX.length));
}

export function privateKeyObject(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new Error('Ed25519 seed must be 32 bytes');
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** A signing function bound to one key; the KeyObject is built once (hot path). */
export function ed25519Signer(seed: Uint8Array): (msg: Uint8Array) => Uint8Array {
  const key = privateKeyObject(seed);
  return (msg) => new Uint8Array(sign(null, msg, key));
}

const publicKeyCache = new Map<string, KeyObject | null>();

function publicKeyObject(pub: Uint8Array): KeyObject | null {
  const k = Buffer.from(pub).toString('hex');
  let obj = publicKeyCache.get(k);
  if (obj === undefined) {
    try {
      obj = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' });
    } catch {
      obj = null;
    }
    if (publicKeyCache.size > 1024) publicKeyCache.clear();
    publicKeyCache.set(k, obj);
  }
  return obj;
}

/** Strict verification. Never throws: any malformed input is `false`. */
export function ed25519Verify(pub: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  try {
    if (pub.length !== 32 || sig.length !== 64) return false;
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
    if (s >= ED25519_L) return false; // RFC 8032 §5.1.7: reject non-canonical S
    const key = publicKeyObject(pub);
    if (!key) return false;
    return verify(null, msg, key, sig);
  } catch {
    return false;
  }
}
