import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ed25519Verify, generateEd25519, ed25519Signer } from '../src/core/ed25519.ts';
import { jwkThumbprint, verifyBytes, signingKeyFromJwk, generateSigningKey } from '../src/core/keys.ts';
import { toB64Url } from '../src/core/bytes.ts';
import { VECTORS, hasVectors } from './support/fixtures.ts';

interface WyTest { tcId: number; comment: string; msg: string; sig: string; result: 'valid' | 'invalid' | 'acceptable' }
const file = path.join(VECTORS, 'wycheproof-ed25519/ed25519_test.json');
const groups: { publicKey: { pk: string }; tests: WyTest[] }[] = hasVectors('wycheproof-ed25519')
  ? JSON.parse(fs.readFileSync(file, 'utf8')).testGroups
  : [];

describe.skipIf(!hasVectors('wycheproof-ed25519'))('Wycheproof Ed25519 (../shared/vectors; skipped when absent)', () => {
  const all = groups.flatMap((g) => g.tests.map((t) => ({ pk: g.publicKey.pk, t })));
  it('has all 151 cases', () => expect(all.length).toBe(151));
  it('every case gives its expected result through the primitive', () => {
    for (const { pk, t } of all) {
      const ok = ed25519Verify(Buffer.from(pk, 'hex'), Buffer.from(t.msg, 'hex'), Buffer.from(t.sig, 'hex'));
      expect(ok, `tcId ${t.tcId} ${t.comment}`).toBe(t.result === 'valid');
    }
  });
  it("every case gives its expected result through the bundle verifier's signature path (JWK + base64url)", () => {
    for (const { pk, t } of all) {
      const pub = Buffer.from(pk, 'hex');
      const jwk = { kty: 'OKP', crv: 'Ed25519', x: toB64Url(pub), kid: jwkThumbprint(pub), valid_from: '2020-01-01T00:00:00Z' } as const;
      const ok = verifyBytes(jwk, Buffer.from(t.msg, 'hex'), toB64Url(Buffer.from(t.sig, 'hex')));
      expect(ok, `tcId ${t.tcId} ${t.comment}`).toBe(t.result === 'valid');
    }
  });
});

describe('Ed25519 keys', () => {
  it('signs and verifies; rejects S + L and wrong lengths', () => {
    const { seed, publicKey } = generateEd25519();
    const msg = new TextEncoder().encode('hello');
    const sig = ed25519Signer(seed)(msg);
    expect(ed25519Verify(publicKey, msg, sig)).toBe(true);
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
    const s2 = s + L;
    const mall = new Uint8Array(sig);
    for (let i = 0; i < 32; i++) mall[32 + i] = Number((s2 >> BigInt(8 * i)) & 0xffn);
    expect(ed25519Verify(publicKey, msg, mall)).toBe(false);
    expect(ed25519Verify(publicKey, msg, sig.subarray(0, 63))).toBe(false);
    expect(ed25519Verify(publicKey.subarray(1), msg, sig)).toBe(false);
  });
  it('key_id is the RFC 7638 thumbprint (RFC 8037 appendix A.3 example)', () => {
    const x = Buffer.from('11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', 'base64url');
    expect(jwkThumbprint(x)).toBe('kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
  });
  it('round-trips a private JWK and refuses an inconsistent one', () => {
    const k = generateSigningKey();
    expect(signingKeyFromJwk(k.privateJwk).keyId).toBe(k.keyId);
    expect(() => signingKeyFromJwk({ ...k.privateJwk, kid: 'x' })).toThrow();
  });
});
