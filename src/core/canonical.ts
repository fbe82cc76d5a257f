// Canonical bytes (RFC 8785, JSON Canonicalization Scheme) through the maintained `canonicalize`
// package, plus SHA-256 digests written `sha256:<lowercase hex>` (DESIGN §4).
import canonicalize from 'canonicalize';
import { sha256, toHex, utf8 } from './bytes.ts';
import { CanonicalizationError } from './errors.ts';

/** Reject what JCS cannot represent: non-finite numbers, lone surrogates (RFC 8785 §3.2.2), and
 *  values JSON has no form for (undefined, functions, bigint, symbols). */
function assertRepresentable(v: unknown, path: string): void {
  switch (typeof v) {
    case 'string':
      if (!v.isWellFormed()) throw new CanonicalizationError(`lone surrogate in string at ${path}`);
      return;
    case 'number':
      if (!Number.isFinite(v)) throw new CanonicalizationError(`non-finite number at ${path}`);
      return;
    case 'boolean':
      return;
    case 'object':
      if (v === null) return;
      if (Array.isArray(v)) {
        v.forEach((x, i) => assertRepresentable(x, `${path}[${i}]`));
        return;
      }
      for (const [k, x] of Object.entries(v)) {
        if (!k.isWellFormed()) throw new CanonicalizationError(`lone surrogate in key at ${path}`);
        if (x === undefined) throw new CanonicalizationError(`undefined value at ${path}.${k}`);
        assertRepresentable(x, `${path}.${k}`);
      }
      return;
    default:
      throw new CanonicalizationError(`${typeof v} is not representable in JSON at ${path}`);
  }
}

export function canonicalString(value: unknown): string {
  assertRepresentable(value, '$');
  const s = canonicalize(value);
  if (typeof s !== 'string') throw new CanonicalizationError('value has no canonical JSON form');
  return s;
}

export function canonicalBytes(value: unknown): Uint8Array {
  return utf8(canonicalString(value));
}

export function digestBytes(data: Uint8Array): string {
  return `sha256:${toHex(sha256(data))}`;
}

/** `sha256:<hex>` of the RFC 8785 canonical bytes of `value`. */
export function digestOf(value: unknown): string {
  return digestBytes(canonicalBytes(value));
}
