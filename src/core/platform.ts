// The platform pieces of the core, for Node: hashing, randomness and byte encodings through
// node:crypto and Buffer (the fastest here). The browser build of the verifier (scripts/
// build-verifier.mjs) swaps every module `X.ts` that has a sibling `X.browser.ts` for that
// sibling; platform.browser.ts has the same exports in Web APIs and @noble/hashes, so the
// algorithms that import this module are one code for both. test/platform.test.ts holds the two
// to the same answers.
import * as nodeCrypto from 'node:crypto';

/** node:crypto's one-shot digest (Node ≥ 20.12): no Hash object per call, and a string is
 *  hashed as UTF-8 without a separate encoding step. Older Nodes use createHash. */
const oneShot = (nodeCrypto as { hash?: (algorithm: string, data: string | Uint8Array, encoding: 'hex' | 'buffer') => string | Buffer }).hash;

export function sha256(data: Uint8Array | string): Uint8Array {
  return new Uint8Array(oneShot ? (oneShot('sha256', data, 'buffer') as Buffer) : nodeCrypto.createHash('sha256').update(data).digest());
}

/** Lowercase hex SHA-256 of bytes, or of a string's UTF-8 bytes. */
export function sha256Hex(data: Uint8Array | string): string {
  return oneShot ? (oneShot('sha256', data, 'hex') as string) : nodeCrypto.createHash('sha256').update(data).digest('hex');
}

/** SHA-256 over the concatenation of `parts`, without concatenating them first. */
export function sha256Parts(...parts: Uint8Array[]): Uint8Array {
  const h = nodeCrypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** `n` bytes from the operating system's CSPRNG. */
export function randomBytes(n: number): Uint8Array {
  return new Uint8Array(nodeCrypto.randomBytes(n));
}

export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const toB64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
export const toB64Url = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');

/** Decoders for input already checked against the strict alphabet of its encoding (bytes.ts):
 *  they do no validation of their own. */
export const decodeHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
export const decodeB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
export const decodeB64Url = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64url'));
