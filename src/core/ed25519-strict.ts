// What every Ed25519 verification here refuses before the curve arithmetic, whichever library
// does it (ed25519.ts in Node, ed25519.browser.ts in the browser verifier): a key that is not
// 32 bytes, a signature that is not 64, and a non-canonical S (RFC 8032 §5.1.7: S < L).

/** Group order L of edwards25519. */
export const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;

export interface Ed25519KeyPair {
  /** 32-byte RFC 8032 seed. Secret. */
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** 32-byte key, 64-byte signature, S < L. */
export function strictShape(pub: Uint8Array, sig: Uint8Array): boolean {
  if (pub.length !== 32 || sig.length !== 64) return false;
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
  return s < ED25519_L;
}
