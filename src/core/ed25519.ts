// Ed25519 (RFC 8032). Verification through node:crypto (OpenSSL) and strict: 32-byte key, 64-byte
// signature, S < L checked here (RFC 8032 §5.1.7), malformed points rejected by OpenSSL. All 151
// Wycheproof cases give their expected result (test/ed25519).
// Signing through libsodium (the optional dependency sodium-native) when it loads: 2.1x faster
// than node:crypto here (16.6 against 34.7 us per signature), and signing is the largest single
// cost of an attestation. Ed25519 signatures are deterministic, so both give the same bytes
// (test/ed25519 compares them); without sodium-native, or with METERPROOF_ED25519=node, signing
// uses node:crypto.
// The browser build of the verifier uses ed25519.browser.ts instead (@noble/curves), under the
// same strictness (ed25519-strict.ts) and the same Wycheproof results (test/platform.test.ts).
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { bytesEqual, toHex } from './bytes.ts';

import { strictShape } from './ed25519-strict.ts';
export { ED25519_L, type Ed25519KeyPair } from './ed25519-strict.ts';
import type { Ed25519KeyPair } from './ed25519-strict.ts';

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

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

interface Sodium {
  crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void;
  crypto_sign_detached(sig: Uint8Array, msg: Uint8Array, sk: Uint8Array): void;
  crypto_sign_verify_detached(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean;
}

const sodium: Sodium | null = loadSodium();

/** sodium-native, if it is installed, loads, and passes a known-answer test (RFC 8032 §7.1
 *  TEST 2); otherwise null, with a warning unless it is simply not installed. */
function loadSodium(): Sodium | null {
  if (process.env['METERPROOF_ED25519'] === 'node') return null;
  let mod: Sodium;
  try {
    mod = createRequire(import.meta.url)('sodium-native') as Sodium;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (!msg.includes("'sodium-native'")) console.warn(`meterproof: sodium-native does not load (${msg.split('\n')[0]}); signing with node:crypto`);
    return null;
  }
  try {
    const pk = new Uint8Array(32);
    const sk = new Uint8Array(64);
    const sig = new Uint8Array(64);
    mod.crypto_sign_seed_keypair(pk, sk, Buffer.from('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', 'hex'));
    mod.crypto_sign_detached(sig, Uint8Array.of(0x72), sk);
    if (
      toHex(pk) === '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c' &&
      toHex(sig) === '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00'
    ) {
      return mod;
    }
  } catch {
    // fall through
  }
  console.warn('meterproof: libsodium (sodium-native) failed its Ed25519 self-test; signing with node:crypto');
  return null;
}

/** A signing function bound to one key, through node:crypto; the KeyObject is built once. */
export function nodeEd25519Signer(seed: Uint8Array): (msg: Uint8Array) => Uint8Array {
  const key = privateKeyObject(seed);
  return (msg) => new Uint8Array(sign(null, msg, key));
}

/** The same through libsodium, or null when sodium-native is not available (or its public key
 *  for the seed differs from node:crypto's, which would mean a broken build). */
export function sodiumEd25519Signer(seed: Uint8Array): ((msg: Uint8Array) => Uint8Array) | null {
  if (!sodium) return null;
  const expected = publicKeyFromSeed(seed); // also refuses a seed that is not 32 bytes
  const pk = new Uint8Array(32);
  const sk = new Uint8Array(64);
  sodium.crypto_sign_seed_keypair(pk, sk, seed);
  if (!bytesEqual(pk, expected)) {
    console.warn('meterproof: libsodium derived another public key than node:crypto for a signing key; signing with node:crypto');
    return null;
  }
  return (msg) => {
    const sig = new Uint8Array(64);
    sodium.crypto_sign_detached(sig, msg, sk);
    return sig;
  };
}

/** Which implementation `ed25519Signer` signs with. */
export const ED25519_SIGNER: 'libsodium' | 'node:crypto' = sodium ? 'libsodium' : 'node:crypto';

/** A signing function bound to one key (hot path): libsodium when available, else node:crypto. */
export function ed25519Signer(seed: Uint8Array): (msg: Uint8Array) => Uint8Array {
  return sodiumEd25519Signer(seed) ?? nodeEd25519Signer(seed);
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

/** Strict verification. Never throws: any malformed input is `false`. When libsodium is loaded it
 *  answers first (1.7x faster than node:crypto here: 59 against 99 us); a signature libsodium
 *  accepts node:crypto accepts too (libsodium is the stricter: it also refuses small-order keys
 *  and R), and one it refuses is asked of node:crypto: the verdict is always node:crypto's. */
export function ed25519Verify(pub: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  try {
    if (!strictShape(pub, sig)) return false;
    if (sodium?.crypto_sign_verify_detached(sig, msg, pub)) return true;
    const key = publicKeyObject(pub);
    if (!key) return false;
    return verify(null, msg, key, sig);
  } catch {
    return false;
  }
}
