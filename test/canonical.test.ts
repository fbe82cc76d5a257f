import fs from 'node:fs';
import path from 'node:path';
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
  it('sorts keys and writes digests as sha256:<hex>', () => {
    expect(canonicalString({ b: 1, a: [true, null, 'x'] })).toBe('{"a":[true,null,"x"],"b":1}');
    expect(digestOf({})).toBe('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  });
});
