import fs from 'node:fs';
import path from 'node:path';
import canonicalize from 'canonicalize';
import { describe, expect, it } from 'vitest';
import { canonicalBytes, canonicalString, digestOf } from '../src/core/canonical.ts';
import { CanonicalizationError } from '../src/core/errors.ts';
import { VECTORS, hasVectors } from './support/fixtures.ts';

const JCS = path.join(VECTORS, 'jcs-cyberphone/testdata');
const cases = hasVectors('jcs-cyberphone') ? fs.readdirSync(path.join(JCS, 'input')).filter((f) => f.endsWith('.json')) : [];

describe.skipIf(!hasVectors('jcs-cyberphone'))('RFC 8785 vectors (../shared/vectors/jcs-cyberphone; skipped when absent)', () => {
  it('has the cases', () => expect(cases.length).toBeGreaterThanOrEqual(6));
  for (const f of cases) {
    it(`canonicalizes ${f} to the expected bytes`, () => {
      const input = JSON.parse(fs.readFileSync(path.join(JCS, 'input', f), 'utf8'));
      const want = fs.readFileSync(path.join(JCS, 'output', f));
      expect(Buffer.from(canonicalBytes(input)).equals(want)).toBe(true);
      const hex = fs.readFileSync(path.join(JCS, 'outhex', f.replace(/\.json$/, '.txt')), 'utf8').replace(/\s+/g, '');
      expect(Buffer.from(canonicalBytes(input)).toString('hex')).toBe(hex.toLowerCase());
    });
  }
});

describe('canonical bytes', () => {
  it('rejects input JCS cannot represent', () => {
    for (const bad of [{ a: Number.NaN }, { a: Infinity }, { a: '\ud800' }, { ['\udc00']: 1 }, { a: 1n }, { a: undefined }, [() => 1]]) {
      expect(() => canonicalString(bad)).toThrow(CanonicalizationError);
    }
  });
  it('says where the value is that it cannot represent', () => {
    expect(() => canonicalString({ a: [1, { b: Number.NaN }] })).toThrow('non-finite number at $.a[1].b');
    expect(() => canonicalString({ x: { y: undefined } })).toThrow('undefined value at $.x.y');
    expect(() => canonicalString([1, 2n])).toThrow('bigint is not representable in JSON at $[1]');
    expect(() => canonicalString({ k: 'a\udfff' })).toThrow('lone surrogate in string at $.k');
    // eslint-disable-next-line no-sparse-arrays
    expect(() => canonicalString([1, , 2])).toThrow('undefined is not representable in JSON at $[1]');
  });
  it('refuses circular and very deep values with its own error, not a stack overflow', () => {
    const loop: Record<string, unknown> = {};
    loop['self'] = loop;
    expect(() => canonicalString(loop)).toThrow(CanonicalizationError);
    let deep: unknown = 1;
    for (let i = 0; i < 1000; i++) deep = [deep];
    expect(() => canonicalString(deep)).toThrow(/nesting deeper than 200/);
    const selfJson = { toJSON: () => selfJson };
    expect(() => canonicalString(selfJson)).toThrow(CanonicalizationError);
    let ok: unknown = 1;
    for (let i = 0; i < 150; i++) ok = { a: ok };
    expect(canonicalString(ok)).toBe(`${'{"a":'.repeat(150)}1${'}'.repeat(150)}`);
  });
  it('writes what toJSON gives, as JSON.stringify does', () => {
    expect(canonicalString({ at: new Date(Date.UTC(2026, 10, 23)) })).toBe('{"at":"2026-11-23T00:00:00.000Z"}');
  });
  it('gives the same text as the canonicalize package (the implementation it replaced) for varied values', () => {
    // deterministic pseudo-random values: nested objects and arrays, keys and strings with
    // escapes, non-ASCII, astral characters and code units on both sides of the surrogates,
    // numbers of every magnitude, negative zero, integers beyond 2^53
    let seed = 0x2545f491;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const chars = ['a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', '\u0000', '\u001f', '\u007f', 'é', 'ß', '€', '\u2028', '\ud83d\ude00', '\uffff', '\ue000', '\ud7ff'];
    const str = () => Array.from({ length: Math.floor(rnd() * 8) }, () => chars[Math.floor(rnd() * chars.length)]).join('');
    const nums = [0, -0, 1, -1, 0.1, 1e21, 1e-7, 123456789012345680000, 2 ** 53 + 2, -1.5e-300, 5e-324, Number.MAX_VALUE, 333333333.3333333];
    const value = (depth: number): unknown => {
      const r = rnd();
      if (depth > 4 || r < 0.3) return [str(), nums[Math.floor(rnd() * nums.length)], rnd() < 0.5, null, Math.floor(rnd() * 1e9) / 1e3][Math.floor(rnd() * 5)];
      if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 5) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 6) }, () => [str(), value(depth + 1)]));
    };
    for (let i = 0; i < 2000; i++) {
      const v = value(0);
      expect(canonicalString(v)).toBe(canonicalize(v));
    }
  });
  it('sorts keys and writes digests as sha256:<hex>', () => {
    expect(canonicalString({ b: 1, a: [true, null, 'x'] })).toBe('{"a":[true,null,"x"],"b":1}');
    expect(digestOf({})).toBe('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  });
});
