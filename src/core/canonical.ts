// Canonical bytes (RFC 8785, JSON Canonicalization Scheme), plus SHA-256 digests written
// `sha256:<lowercase hex>` (docs/protocol.md §1).
//
// One pass validates and serializes. JCS on JavaScript values is JSON.stringify for strings and
// numbers (ES2019+ escapes exactly as RFC 8785 §3.2.2.2 asks, and Number-to-String is its number
// form), with object keys sorted by UTF-16 code units (what Array.prototype.sort does with
// strings). Until 2026-11-23 this delegated to the `canonicalize` package after a separate
// validation walk; the two walks and the package's intermediate arrays, template strings and a
// `new Set()` per key were ~28% of what the server allocated per attest request (a sampling heap
// profile at 1,000 req/s), so young-generation collections, which pause every request in flight,
// came about a third more often. test/canonical.test.ts checks this code against the RFC 8785
// vectors and, differentially, against that package.
import { sha256Hex, utf8 } from './bytes.ts';
import { CanonicalizationError } from './errors.ts';

/** Deeper values are refused (also what stops a circular structure). */
const MAX_DEPTH = 200;

/** Where in the value the walk is: keys and indexes from the root (only read to report an error). */
type Path = (string | number)[];

const pathText = (path: Path) => `$${path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('')}`;

function fail(what: string, path: Path): never {
  throw new CanonicalizationError(`${what} at ${pathText(path)}`);
}

function serialize(v: unknown, path: Path): string {
  switch (typeof v) {
    case 'string':
      if (!v.isWellFormed()) fail('lone surrogate in string', path);
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) fail('non-finite number', path);
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object': {
      if (v === null) return 'null';
      if (path.length >= MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH} (or circular)`, path);
      const toJSON = (v as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') {
        // e.g. a Date, as JSON.stringify does; one level deeper, so a toJSON that returns its own
        // object ends at MAX_DEPTH
        path.push('(toJSON)');
        const out = serialize(toJSON.call(v), path);
        path.pop();
        return out;
      }
      if (Array.isArray(v)) {
        let out = '[';
        for (let i = 0; i < v.length; i++) {
          path.push(i);
          out += (i ? ',' : '') + serialize(v[i], path);
          path.pop();
        }
        return `${out}]`;
      }
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o).sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        path.push(k);
        if (!k.isWellFormed()) fail('lone surrogate in key', path);
        const x = o[k];
        if (x === undefined) fail('undefined value', path);
        out += `${i ? ',' : ''}${JSON.stringify(k)}:${serialize(x, path)}`;
        path.pop();
      }
      return `${out}}`;
    }
    default:
      // undefined, bigint, function, symbol: JSON has no form for them
      return fail(`${typeof v} is not representable in JSON`, path);
  }
}

/** The RFC 8785 canonical JSON text of `value`; CanonicalizationError for what JCS cannot
 *  represent: non-finite numbers, lone surrogates (§3.2.2.2), undefined, bigint, functions,
 *  symbols, and nesting deeper than 200 levels. */
export function canonicalString(value: unknown): string {
  return serialize(value, []);
}

export function canonicalBytes(value: unknown): Uint8Array {
  return utf8(canonicalString(value));
}

export function digestBytes(data: Uint8Array): string {
  return `sha256:${sha256Hex(data)}`;
}

/** `sha256:<hex>` of the RFC 8785 canonical bytes of `value` (the UTF-8 of its canonical text). */
export function digestOf(value: unknown): string {
  return `sha256:${sha256Hex(canonicalString(value))}`;
}
