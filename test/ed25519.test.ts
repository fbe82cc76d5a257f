import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { ED25519_SIGNER, ed25519Verify, generateEd25519, ed25519Signer, nodeEd25519Signer, publicKeyFromSeed, sodiumEd25519Signer } from '../src/core/ed25519.ts';
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

describe('Ed25519 signing implementations', () => {
  const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
  // RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte)
  const rfc = [
    {
      seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
      pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
      msg: '',
      sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    },
    {
      seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
      pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
      msg: '72',
      sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
    },
  ];
  const signers = { 'node:crypto': nodeEd25519Signer, libsodium: sodiumEd25519Signer, [`ed25519Signer (${ED25519_SIGNER})`]: ed25519Signer };

  it('the service signs with libsodium where sodium-native loads (it does in CI), else with node:crypto', () => {
    let installed = true;
    try {
      createRequire(import.meta.url)('sodium-native');
    } catch {
      installed = false; // an optional dependency: e.g. no prebuilt binary for this platform
    }
    if (process.env['CI']) expect(installed).toBe(true); // the CI machine (linux-x64, glibc) has a prebuild
    expect(ED25519_SIGNER).toBe(installed && process.env['METERPROOF_ED25519'] !== 'node' ? 'libsodium' : 'node:crypto');
  });

  for (const [name, make] of Object.entries(signers)) {
    it(`${name}: RFC 8032 §7.1 test vectors 1 and 2`, () => {
      for (const v of rfc) {
        expect(Buffer.from(publicKeyFromSeed(hex(v.seed))).toString('hex')).toBe(v.pub);
        const sign = make(hex(v.seed));
        if (!sign) return expect(name).toBe('libsodium'); // only libsodium may be absent
        expect(Buffer.from(sign(hex(v.msg))).toString('hex')).toBe(v.sig);
      }
    });
  }

  it.skipIf(!sodiumEd25519Signer(new Uint8Array(32)))('libsodium and node:crypto give the same signature for 300 random keys and messages (0–5,000 bytes)', () => {
    for (let i = 0; i < 300; i++) {
      const seed = new Uint8Array(randomBytes(32));
      const msg = new Uint8Array(randomBytes(i % 3 === 0 ? i * 17 : i));
      const a = nodeEd25519Signer(seed)(msg);
      const b = sodiumEd25519Signer(seed)!(msg);
      expect(Buffer.from(b).toString('hex')).toBe(Buffer.from(a).toString('hex'));
      expect(ed25519Verify(publicKeyFromSeed(seed), msg, b)).toBe(true);
    }
  });
});
