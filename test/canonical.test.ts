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
  it('gives the RFC 8785 forms, checked inline (the shared vectors may be absent)', () => {
    // RFC 8785 §3.2.3, the specification's own example
    const example = JSON.parse(String.raw`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}`);
    expect(canonicalString(example)).toBe(String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`);
    // numbers (ECMAScript Number-to-String, RFC 8785 §3.2.2.3), at the boundaries of each form
    const numbers: [number, string][] = [
      [-0, '0'],
      [1e21, '1e+21'],
      [1e20, '100000000000000000000'],
      [0.000001, '0.000001'],
      [1e-7, '1e-7'],
      [5e-324, '5e-324'],
      [Number('9007199254740993'), '9007199254740992'], // 2^53 + 1 is not a double: it parses to 2^53
      [295147905179352830000, '295147905179352830000'],
      [Number.MAX_VALUE, '1.7976931348623157e+308'],
      [-1.5, '-1.5'],
    ];
    for (const [n, text] of numbers) expect(canonicalString(n)).toBe(text);
    // strings: the short escapes, other controls as \u00xx in lowercase, U+2028/U+2029 and
    // everything else as themselves, no Unicode normalization
    expect(canonicalString('\b\f\n\r\t\u000b\u001f"\\/\u2028\u2029</script>')).toBe(String.raw`"\b\f\n\r\t\u000b\u001f\"\\/` + '\u2028\u2029</script>"');
    expect(canonicalString('A\u030a')).toBe('"A\u030a"');
    // keys sorted by UTF-16 code units: an astral character (a surrogate pair, 0xD83D…) sorts
    // before a BMP character above 0xD83D such as U+FB33; "10" before "2"
    expect(canonicalString({ '\ufb33': 1, '\ud83d\ude02': 2, '': 0 })).toBe('{"":0,"\ud83d\ude02":2,"\ufb33":1}');
    expect(canonicalString({ 10: 'a', 1: 'b', 2: 'c' })).toBe('{"1":"b","10":"a","2":"c"}');
    expect(canonicalString(JSON.parse('{"__proto__":1}'))).toBe('{"__proto__":1}');
    expect(canonicalString({ a: [], b: {}, c: [[], [{}]] })).toBe('{"a":[],"b":{},"c":[[],[{}]]}');
  });
  it('refuses every lone surrogate, in strings and keys, as the package it replaced does', () => {
    for (const bad of ['\ud800', '\udfff', '\ud800a', 'a\udc00', '\udc00\ud800', '\ud83d']) {
      expect(() => canonicalString(bad)).toThrow(CanonicalizationError);
      expect(() => canonicalString({ [bad]: 1 })).toThrow(CanonicalizationError);
      expect(() => canonicalize(bad)).toThrow();
    }
    expect(() => canonicalString({ ok: { ['k\udc00']: 1 } })).toThrow('lone surrogate in key at $.ok.k');
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
    for (let i = 0; i < 200; i++) ok = { a: ok };
    expect(canonicalString(ok)).toBe(`${'{"a":'.repeat(200)}1${'}'.repeat(200)}`);
    expect(() => canonicalString({ a: ok })).toThrow(/nesting deeper than 200/);
  });
  it('writes what toJSON gives, as JSON.stringify does', () => {
    expect(canonicalString({ at: new Date(Date.UTC(2026, 10, 23)) })).toBe('{"at":"2026-11-23T00:00:00.000Z"}');
    expect(canonicalString([Object.assign([1, 2], { toJSON: () => 'arr' })])).toBe(JSON.stringify([Object.assign([1, 2], { toJSON: () => 'arr' })]));
  });
  it('gives the same text as the canonicalize package (the implementation it replaced) for varied values', () => {
    // deterministic pseudo-random values: nested objects and arrays, keys and strings with
    // escapes, non-ASCII, astral characters and code units on both sides of the surrogates,
    // numbers of every magnitude, negative zero, integers beyond 2^53
    let seed = 0x2545f491;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const chars = ['a', 'Z', '0', ' ', '"', '\\', '/', '\b', '\f', '\n', '\r', '\t', '\u000b', '\u0000', '\u001f', '\u007f', 'é', 'ß', '€', '\u2028', '\u2029', '\ud83d\ude00', '\uffff', '\ue000', '\ud7ff', '\ufb33'];
    const str = () => Array.from({ length: Math.floor(rnd() * 8) }, () => chars[Math.floor(rnd() * chars.length)]).join('');
    // powers of ten from 1e-8 to 1e22 and their neighbouring doubles (where the number form
    // switches between plain digits and exponents), and doubles from random bit patterns
    const bits = new DataView(new ArrayBuffer(8));
    const neighbour = (x: number, step: bigint) => (bits.setFloat64(0, x), bits.setBigUint64(0, bits.getBigUint64(0) + step), bits.getFloat64(0));
    const nums = [0, -0, 1, -1, 0.1, 123456789012345680000, 2 ** 53 + 2, -1.5e-300, 5e-324, Number.MAX_VALUE, 333333333.3333333];
    for (let e = -8; e <= 22; e++) nums.push(10 ** e, neighbour(10 ** e, 1n), neighbour(10 ** e, -1n), -(10 ** e));
    while (nums.length < 400) {
      bits.setUint32(0, Math.floor(rnd() * 2 ** 32));
      bits.setUint32(4, Math.floor(rnd() * 2 ** 32));
      const x = bits.getFloat64(0);
      if (Number.isFinite(x)) nums.push(x);
    }
    const value = (depth: number): unknown => {
      const r = rnd();
      if (depth > 4 || r < 0.3) return [str(), nums[Math.floor(rnd() * nums.length)], rnd() < 0.5, null, Math.floor(rnd() * 1e9) / 1e3][Math.floor(rnd() * 5)];
      if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 5) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 6) }, () => [str(), value(depth + 1)]));
    };
    for (let i = 0; i < 2000; i++) {
      const v = value(0);
      expect(canonicalString(v)).toBe(canonicalize(v));
      // and as JSON.parse gives it back (what the service and the verifier canonicalize)
      const parsed = JSON.parse(JSON.stringify(v));
      expect(canonicalString(parsed)).toBe(canonicalize(parsed));
    }
    for (const n of nums) expect(canonicalString(n)).toBe(canonicalize(n));
  });
  it('sorts keys and writes digests as sha256:<hex>', () => {
    expect(canonicalString({ b: 1, a: [true, null, 'x'] })).toBe('{"a":[true,null,"x"],"b":1}');
    expect(digestOf({})).toBe('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  });
});
