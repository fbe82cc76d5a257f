// ed25519.ts for browsers (the verifier page, scripts/build-verifier.mjs): @noble/curves under
// the same strictness as the Node module (ed25519-strict.ts, RFC 8032 decoding: no ZIP-215
// leniency). Exports what the verifier's modules import from ed25519.ts; signing is here only
// because keys.ts and note.ts import it (the page never signs).
import { ed25519 } from '@noble/curves/ed25519.js';
import { strictShape } from './ed25519-strict.ts';
export { ED25519_L, type Ed25519KeyPair } from './ed25519-strict.ts';
import type { Ed25519KeyPair } from './ed25519-strict.ts';

export function generateEd25519(): Ed25519KeyPair {
  const seed = ed25519.utils.randomSecretKey();
  return { seed, publicKey: ed25519.getPublicKey(seed) };
}

export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  if (seed.length !== 32) throw new Error('Ed25519 seed must be 32 bytes');
  return ed25519.getPublicKey(seed);
}

export function ed25519Signer(seed: Uint8Array): (msg: Uint8Array) => Uint8Array {
  if (seed.length !== 32) throw new Error('Ed25519 seed must be 32 bytes');
  return (msg) => ed25519.sign(msg, seed);
}

/** Strict verification. Never throws: any malformed input is `false`. */
export function ed25519Verify(pub: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  try {
    if (!strictShape(pub, sig)) return false;
    return ed25519.verify(sig, msg, pub, { zip215: false });
  } catch {
    return false;
  }
}
