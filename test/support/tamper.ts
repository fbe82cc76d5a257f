// Generates every single mutation of a bundle: each leaf changed, each field removed, an extra
// field added at every object, each signature bit flipped. Each mutation carries the set of
// verification codes that may legitimately reject it (depending on where it landed).
import { ED25519_L } from '../../src/core/ed25519.ts';
import type { VerifyCode } from '../../src/core/schemas.ts';

export interface Mutation {
  readonly desc: string;
  readonly bundle: unknown;
  readonly codes: readonly VerifyCode[];
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const clone = <T>(v: T): T => structuredClone(v);

/** Change a leaf to a different value of (where possible) the same form. */
function mutateLeaf(v: Json): Json {
  if (v === null) return 'x';
  if (typeof v === 'boolean') return !v;
  if (typeof v === 'number') return v + 1;
  if (typeof v !== 'string') throw new Error('not a leaf');
  if (/^(0|[1-9][0-9]*)$/.test(v)) return (BigInt(v) + 1n).toString();
  if (/^sha256:[0-9a-f]{64}$/.test(v)) return v.slice(0, -1) + (v.endsWith('0') ? '1' : '0');
  if (/^\d{4}-\d{2}-\d{2}T/.test(v)) return v.replace(/(\d)(\D*)$/, (_m, d: string, rest: string) => `${d === '0' ? '1' : '0'}${rest}`);
  const enums: Record<string, string> = { floor: 'ceil', ceil: 'floor', half_up: 'half_even', half_even: 'half_up', success: 'partial', partial: 'success', error: 'timeout', timeout: 'error', USD: 'EUR', EUR: 'USD' };
  if (v in enums) return enums[v]!;
  const last = v.at(-1) ?? 'a';
  return v.slice(0, -1) + (last === 'A' ? 'B' : 'A');
}

function walk(v: Json, path: string[], out: { path: string[]; value: Json; parent: 'object' | 'array' | null }[], parent: 'object' | 'array' | null) {
  out.push({ path, value: v, parent });
  if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, String(i)], out, 'array'));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k], out, 'object');
}

function setAt(root: Json, path: string[], f: (parent: Record<string, Json> | Json[], key: string) => void) {
  let cur = root as Record<string, Json>;
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string, Json>;
  f(cur, path.at(-1)!);
}

export function generateMutations(bundle: object, expect: (path: string[], kind: 'leaf' | 'remove' | 'extra') => readonly VerifyCode[]): Mutation[] {
  const nodes: { path: string[]; value: Json; parent: 'object' | 'array' | null }[] = [];
  walk(bundle as Json, [], nodes, null);
  const out: Mutation[] = [];
  for (const n of nodes) {
    const isLeaf = n.value === null || typeof n.value !== 'object';
    if (isLeaf && n.path.length) {
      const b = clone(bundle) as Json;
      setAt(b, n.path, (p, k) => ((p as Record<string, Json>)[k] = mutateLeaf(n.value)));
      out.push({ desc: `change ${n.path.join('.')}`, bundle: b, codes: expect(n.path, 'leaf') });
    }
    if (n.path.length) {
      const b = clone(bundle) as Json;
      setAt(b, n.path, (p, k) => (Array.isArray(p) ? p.splice(Number(k), 1) : delete (p as Record<string, Json>)[k]));
      out.push({ desc: `remove ${n.path.join('.')}`, bundle: b, codes: expect(n.path, 'remove') });
    }
    if (n.value && typeof n.value === 'object' && !Array.isArray(n.value)) {
      const b = clone(bundle) as Json;
      const target = n.path.length ? n.path : [];
      if (target.length) setAt(b, target, (p, k) => (((p as Record<string, Json>)[k] as Record<string, Json>)['x_extra'] = 'x'));
      else (b as Record<string, Json>)['x_extra'] = 'x';
      out.push({ desc: `extra field in ${n.path.join('.') || '(root)'}`, bundle: b, codes: expect([...n.path, 'x_extra'], 'extra') });
    }
  }
  return out;
}

/** Every single-bit flip of a base64url Ed25519 signature. */
export function signatureBitFlips(sigB64Url: string): string[] {
  const sig = Buffer.from(sigB64Url, 'base64url');
  const out: string[] = [];
  for (let bit = 0; bit < sig.length * 8; bit++) {
    const s = Buffer.from(sig);
    s[bit >> 3]! ^= 1 << (bit & 7);
    out.push(s.toString('base64url'));
  }
  return out;
}

/** The same signature with S replaced by S + L (malleability; must be rejected). */
export function signaturePlusL(sigB64Url: string): string {
  const sig = Buffer.from(sigB64Url, 'base64url');
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
  s += ED25519_L;
  for (let i = 0; i < 32; i++) sig[32 + i] = Number((s >> BigInt(8 * i)) & 0xffn);
  return sig.toString('base64url');
}

/** Where a mutation lands decides which codes may reject it. */
export function expectedCodes(path: string[], kind: 'leaf' | 'remove' | 'extra'): VerifyCode[] {
  const p = path.join('.');
  if (kind === 'extra' && !p.startsWith('meter_event.dimensions')) return ['SCHEMA_INVALID'];
  if (kind === 'remove' && p === 'attestation.billing_proof.blinding') return ['COMMITMENT_MISMATCH'];
  if (kind === 'remove' && !/^meter_event\.dimensions\./.test(p) && p !== 'meter_event.dimensions' && !p.startsWith('receipt') && p !== 'attestation.billing_proof') {
    return ['SCHEMA_INVALID'];
  }
  // content changes break the digest binding; recomputations may fail alongside it (v2: a tariff
  // other than the one committed leaves the proof without its commitment)
  if (p.startsWith('meter_event') || p.startsWith('tariff_snapshot') || p.startsWith('billing') || p.startsWith('salts')) {
    return ['DIGEST_MISMATCH', 'SCHEMA_INVALID', 'FINGERPRINT_MISMATCH', 'CHARGE_MISMATCH', 'TARIFF_INVALID', 'COMMITMENT_MISMATCH', 'PROOF_INVALID'];
  }
  if (p.startsWith('attestation.statement')) {
    // the signature breaks first; the statement no longer matches the content either
    return [
      'SIGNATURE_INVALID',
      'SCHEMA_INVALID',
      'KEY_UNKNOWN',
      'KEY_NOT_VALID_AT_TIME',
      'DIGEST_MISMATCH',
      'FINGERPRINT_MISMATCH',
      'CHARGE_MISMATCH',
      'CHAIN_INVALID',
      // with a proof and a receipt, the statement digest also ties both of them
      'PROOF_SIGNATURE_INVALID',
      'PROOF_INVALID',
      'INCLUSION_INVALID',
      'COMMITMENT_MISMATCH',
    ];
  }
  if (p === 'attestation.signature' || p === 'attestation.key_id') return ['SIGNATURE_INVALID', 'SCHEMA_INVALID', 'KEY_UNKNOWN'];
  if (p.startsWith('attestation.billing_proof')) return ['PROOF_SIGNATURE_INVALID', 'SCHEMA_INVALID', 'COMMITMENT_MISMATCH', 'PROOF_INVALID', 'PROOF_MALFORMED', 'KEY_UNKNOWN'];
  if (p.startsWith('receipt')) return ['INCLUSION_INVALID', 'SCHEMA_INVALID', 'CHECKPOINT_INVALID'];
  return ['SCHEMA_INVALID'];
}
