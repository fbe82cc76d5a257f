// Byte and encoding helpers shared by the core. Pure: no I/O.
import * as nodeCrypto from 'node:crypto';

const encoder = new TextEncoder();
export const utf8 = (s: string): Uint8Array => encoder.encode(s);

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

export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export const toB64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
export const toB64Url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const B64URL = /^[A-Za-z0-9_-]*$/;
const HEX = /^(?:[0-9a-f]{2})*$/;

/** Strict standard base64 (padded). Returns null on anything Buffer would silently repair. */
export function fromB64(s: string): Uint8Array | null {
  if (typeof s !== 'string' || !B64.test(s)) return null;
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/** Strict unpadded base64url (RFC 7515 §2). Rejects padding and non-canonical trailing bits. */
export function fromB64Url(s: string): Uint8Array | null {
  if (typeof s !== 'string' || !B64URL.test(s) || s.length % 4 === 1) return null;
  const out = new Uint8Array(Buffer.from(s, 'base64url'));
  return toB64Url(out) === s ? out : null;
}

export function fromHex(s: string): Uint8Array | null {
  if (typeof s !== 'string' || !HEX.test(s)) return null;
  return new Uint8Array(Buffer.from(s, 'hex'));
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
