// Canonical bytes (RFC 8785, JSON Canonicalization Scheme), plus SHA-256 digests written
// `sha256:<lowercase hex>` (docs/protocol.md §1). The canonical text itself is src/core/jcs.ts.
import { sha256Hex, utf8 } from './bytes.ts';
import { canonicalString } from './jcs.ts';

export { canonicalString };

export function canonicalBytes(value: unknown): Uint8Array {
  return utf8(canonicalString(value));
}

/** `sha256:<hex>` of bytes, or of a text's UTF-8 (a canonical text made already). */
export function digestBytes(data: Uint8Array | string): string {
  return `sha256:${sha256Hex(data)}`;
}

/** `sha256:<hex>` of the RFC 8785 canonical bytes of `value` (the UTF-8 of its canonical text). */
export function digestOf(value: unknown): string {
  return digestBytes(canonicalString(value));
}
