// platform.ts for browsers (the verifier page, scripts/build-verifier.mjs): the same exports in
// Web APIs and @noble/hashes, synchronous like node:crypto's (WebCrypto's digest is async only).
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

const encoder = new TextEncoder();
const bytesOf = (data: Uint8Array | string): Uint8Array => (typeof data === 'string' ? encoder.encode(data) : data);

export function sha256(data: Uint8Array | string): Uint8Array {
  return nobleSha256(bytesOf(data));
}

export function sha256Hex(data: Uint8Array | string): string {
  return toHex(sha256(data));
}

export function sha256Parts(...parts: Uint8Array[]): Uint8Array {
  const h = nobleSha256.create();
  for (const p of parts) h.update(p);
  return h.digest();
}

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) globalThis.crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

const HEX_DIGITS = '0123456789abcdef';
export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += HEX_DIGITS[x >> 4]! + HEX_DIGITS[x & 15]!;
  return s;
}

export function toB64(b: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < b.length; i += 0x8000) bin += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(bin);
}

export const toB64Url = (b: Uint8Array): string => toB64(b).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

export function decodeHex(s: string): Uint8Array {
  const out = new Uint8Array(s.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function decodeB64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function decodeB64Url(s: string): Uint8Array {
  const std = s.replace(/-/g, '+').replace(/_/g, '/');
  return decodeB64(std + '='.repeat((4 - (std.length % 4)) % 4));
}
