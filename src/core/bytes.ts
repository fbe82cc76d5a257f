// Byte and encoding helpers shared by the core. Pure: no I/O. The platform pieces (hashing,
// encodings) come from platform.ts, which the browser build swaps for platform.browser.ts.
import { decodeB64, decodeB64Url, decodeHex, toB64Url } from './platform.ts';
export { sha256, sha256Hex, toHex, toB64, toB64Url } from './platform.ts';

const encoder = new TextEncoder();
export const utf8 = (s: string): Uint8Array => encoder.encode(s);

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const B64URL = /^[A-Za-z0-9_-]*$/;
const HEX = /^(?:[0-9a-f]{2})*$/;

/** Strict standard base64 (padded). Returns null on anything Buffer would silently repair. */
export function fromB64(s: string): Uint8Array | null {
  if (typeof s !== 'string' || !B64.test(s)) return null;
  return decodeB64(s);
}

/** Strict unpadded base64url (RFC 7515 §2). Rejects padding and non-canonical trailing bits. */
export function fromB64Url(s: string): Uint8Array | null {
  if (typeof s !== 'string' || !B64URL.test(s) || s.length % 4 === 1) return null;
  const out = decodeB64Url(s);
  return toB64Url(out) === s ? out : null;
}

export function fromHex(s: string): Uint8Array | null {
  if (typeof s !== 'string' || !HEX.test(s)) return null;
  return decodeHex(s);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
