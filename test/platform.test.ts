// The platform modules and their browser siblings (scripts/build-verifier.mjs swaps each `X.ts`
// for `X.browser.ts` in the verifier page) give the same answers: hashing, encodings and Ed25519
// (signatures and the strict verification, Wycheproof's cases included where ../shared/vectors
// has them). The page itself is tested in Chromium (test/verifier-page.test.ts).
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as node from '../src/core/platform.ts';
import * as browser from '../src/core/platform.browser.ts';
import * as nodeEd from '../src/core/ed25519.ts';
import * as browserEd from '../src/core/ed25519.browser.ts';
import { VECTORS, hasVectors } from './support/fixtures.ts';

const samples = [new Uint8Array(0), Uint8Array.of(0), Uint8Array.of(0xff, 0xfe), ...Array.from({ length: 40 }, (_, i) => new Uint8Array(randomBytes(i * 7 + 1)))];

describe('platform.ts and platform.browser.ts', () => {
  it('export the same names', () => {
    expect(Object.keys(browser).sort()).toEqual(Object.keys(node).sort());
  });

  it('hash and encode alike', () => {
    for (const b of samples) {
      expect(browser.sha256(b)).toEqual(node.sha256(b));
      expect(browser.sha256Hex(b)).toBe(node.sha256Hex(b));
      expect(browser.sha256Parts(b, b.subarray(1), b)).toEqual(node.sha256Parts(b, b.subarray(1), b));
      for (const enc of ['toHex', 'toB64', 'toB64Url'] as const) expect(browser[enc](b)).toBe(node[enc](b));
      expect(browser.decodeHex(node.toHex(b))).toEqual(b);
      expect(browser.decodeB64(node.toB64(b))).toEqual(b);
      expect(browser.decodeB64Url(node.toB64Url(b))).toEqual(b);
    }
    for (const s of ['', 'a', 'grüße €', '\u{1F600}']) expect(browser.sha256Hex(s)).toBe(node.sha256Hex(s));
    expect(browser.sha256Parts()).toEqual(node.sha256(new Uint8Array(0)));
  });

  it('draw random bytes of the length asked, beyond one getRandomValues call (64 KiB)', () => {
    for (const n of [0, 16, 70_000]) {
      expect(browser.randomBytes(n).length).toBe(n);
      expect(node.randomBytes(n).length).toBe(n);
    }
    expect(browser.randomBytes(32)).not.toEqual(browser.randomBytes(32));
  });
});

describe('ed25519.ts and ed25519.browser.ts', () => {
  it('derive the same key, sign the same bytes, and accept each other', () => {
    for (let i = 0; i < 8; i++) {
      const seed = new Uint8Array(randomBytes(32));
      const msg = new Uint8Array(randomBytes(i * 13));
      const pub = nodeEd.publicKeyFromSeed(seed);
      expect(browserEd.publicKeyFromSeed(seed)).toEqual(pub);
      const sig = nodeEd.ed25519Signer(seed)(msg);
      expect(browserEd.ed25519Signer(seed)(msg)).toEqual(sig);
      expect(browserEd.ed25519Verify(pub, msg, sig)).toBe(true);
      const bad = sig.slice();
      bad[5]! ^= 1;
      expect([nodeEd.ed25519Verify(pub, msg, bad), browserEd.ed25519Verify(pub, msg, bad)]).toEqual([false, false]);
    }
    const g = browserEd.generateEd25519();
    expect(nodeEd.publicKeyFromSeed(g.seed)).toEqual(g.publicKey);
  });

  it('refuse S + L (non-canonical S) and wrong lengths alike', () => {
    const seed = new Uint8Array(randomBytes(32));
    const pub = nodeEd.publicKeyFromSeed(seed);
    const msg = Uint8Array.of(1, 2, 3);
    const sig = nodeEd.ed25519Signer(seed)(msg);
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
    s += nodeEd.ED25519_L;
    const mall = sig.slice();
    for (let i = 0; i < 32; i++) mall[32 + i] = Number((s >> BigInt(8 * i)) & 0xffn);
    for (const [p, m] of [[pub, mall], [pub, sig.subarray(0, 63)], [pub.subarray(1), sig]] as const) {
      expect(nodeEd.ed25519Verify(p, msg, m)).toBe(false);
      expect(browserEd.ed25519Verify(p, msg, m)).toBe(false);
    }
  });

  it.skipIf(!hasVectors('wycheproof-ed25519'))("give Wycheproof's expected result on every case (../shared/vectors)", () => {
    const groups = JSON.parse(fs.readFileSync(path.join(VECTORS, 'wycheproof-ed25519/ed25519_test.json'), 'utf8')).testGroups as { publicKey: { pk: string }; tests: { tcId: number; msg: string; sig: string; result: string }[] }[];
    let n = 0;
    for (const g of groups) {
      for (const t of g.tests) {
        const args = [Buffer.from(g.publicKey.pk, 'hex'), Buffer.from(t.msg, 'hex'), Buffer.from(t.sig, 'hex')] as const;
        expect([nodeEd.ed25519Verify(...args), browserEd.ed25519Verify(...args)], `tcId ${t.tcId}`).toEqual([t.result === 'valid', t.result === 'valid']);
        n++;
      }
    }
    expect(n).toBe(151);
  });
});
