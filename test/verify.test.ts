import { describe, expect, it } from 'vitest';
import { verifyBundle } from '../src/core/verify.ts';
import { normalizeMeterEvent, normalizeTariff, GENESIS } from '../src/core/attest.ts';
import { keyA, keyB, pilotBundle, testAttest, trustFor, pilotEvent, pilotTariff, graduatedTariff } from './support/fixtures.ts';
import { expectedCodes, generateMutations, signatureBitFlips, signaturePlusL } from './support/tamper.ts';

const failed = (r: Awaited<ReturnType<typeof verifyBundle>>) => r.checks.filter((c) => c.status === 'fail').map((c) => c.code);

describe('verifyBundle on a fresh bundle (no proof, no receipt yet)', () => {
  const { bundle } = pilotBundle();
  const trust = trustFor(keyA, keyB);

  it('passes every core check under the standard profile', async () => {
    const r = await verifyBundle(bundle, trust, { profile: 'standard' });
    expect(failed(r)).toEqual([]);
    expect(r.valid).toBe(true);
    for (const n of ['schema', 'signature', 'key_validity', 'digests', 'fingerprint', 'charge', 'chain'] as const) {
      expect(r.checks.find((c) => c.name === n)?.status, n).toBe('pass');
    }
    expect(r.checks.find((c) => c.name === 'proof')).toMatchObject({ status: 'skipped' });
  });

  it('is not valid under the strict profile while required checks are skipped', async () => {
    const r = await verifyBundle(bundle, trust, { profile: 'strict' });
    expect(failed(r)).toEqual([]);
    expect(r.valid).toBe(false);
  });

  it('rejects a key outside its validity window and an unknown key', async () => {
    const t = { jwks: { keys: [{ ...trust.jwks.keys[0]!, valid_until: '2026-05-01T00:00:00Z' }] } };
    expect(failed(await verifyBundle(bundle, t, { profile: 'standard' }))).toEqual(['KEY_NOT_VALID_AT_TIME']);
    const r = await verifyBundle(bundle, trustFor(keyB), { profile: 'standard' });
    expect(r.valid).toBe(false);
    expect(failed(r)).toContain('KEY_UNKNOWN');
  });

  it('reports unusable input as a schema failure, never an exception', async () => {
    for (const bad of [null, 42, 'x', [], {}, { attestation: {} }, JSON.parse('{"__proto__":{"x":1}}')]) {
      const r = await verifyBundle(bad, trust);
      expect(r.valid).toBe(false);
      expect(failed(r)).toEqual(['SCHEMA_INVALID']);
    }
    const r = await verifyBundle(bundle, { jwks: 'nope' });
    expect(r.valid).toBe(false);
  });

  it('turns an exception inside a check into INTERNAL_ERROR (fail closed)', async () => {
    const zk = {
      verifyProof: async () => {},
      bindingCommitments: async () => {
        throw new Error('unused');
      },
      tariffCommitmentV2: async () => {
        throw new Error('boom');
      },
    };
    const proofBundle = structuredClone(bundle) as typeof bundle;
    // a well-formed but bogus proof object, so the commitments check runs and throws inside
    proofBundle.attestation.proof_status = 'proved';
    proofBundle.attestation.billing_proof = {
      binding: 'bn128-poseidon8-v2',
      proof: { pi_a: ['1', '2', '1'], pi_b: [['1', '2'], ['3', '4'], ['1', '0']], pi_c: ['1', '2', '1'], protocol: 'groth16', curve: 'bn128' },
    };
    const r = await verifyBundle(proofBundle, trust, { profile: 'standard', zk });
    expect(r.valid).toBe(false);
    expect(r.checks.find((c) => c.name === 'commitments')).toMatchObject({ status: 'fail', code: 'INTERNAL_ERROR' });
  });

  it('verifies a graduated chain and refuses a statement that lies about its chain position', async () => {
    const event = normalizeMeterEvent(pilotEvent);
    const tariff = normalizeTariff(graduatedTariff);
    const a = testAttest({ event, tariff, key: keyA, chain: GENESIS, issuedAt: '2026-05-29T12:00:01Z' });
    const b = testAttest({ event: { ...event, event_id: 'evt_2', usage_units: '60000' }, tariff, key: keyA, chain: a.next, issuedAt: '2026-05-29T12:00:02Z' });
    expect(b.statement.chain).toMatchObject({ seq: '1', prev: a.statementDigest, cumulative_units_before: '1842' });
    expect(b.bundle.billing.expected_charge_micros).toBe(((50000n - 1842n) * 5000n + (60000n - 48158n) * 8000n).toString());
    expect((await verifyBundle(b.bundle, trust, { profile: 'standard' })).valid).toBe(true);
    const lie = testAttest({ event, tariff, key: keyA, chain: { seq: 0n, prev: null, cumulativeBefore: 5n }, issuedAt: '2026-05-29T12:00:01Z' });
    expect(failed(await verifyBundle(lie.bundle, trust, { profile: 'standard' }))).toEqual(['CHAIN_INVALID']);
  });
});

describe('tamper suite: every single mutation of a valid bundle is rejected with the expected code', () => {
  const { bundle } = pilotBundle();
  const trust = trustFor(keyA, keyB);

  const mutations = generateMutations(bundle, expectedCodes);
  it(`rejects all ${mutations.length} structural mutations`, async () => {
    expect(mutations.length).toBeGreaterThan(80);
    for (const m of mutations) {
      const r = await verifyBundle(m.bundle, trust, { profile: 'standard' });
      expect(r.valid, m.desc).toBe(false);
      const codes = failed(r);
      expect(codes.length, `${m.desc} failed no check`).toBeGreaterThan(0);
      for (const c of codes) expect(m.codes, `${m.desc}: unexpected ${c}`).toContain(c);
      // the first listed code is the primary one (schema is always allowed to catch it first)
      expect(codes.includes(m.codes[0]!) || codes.includes('SCHEMA_INVALID'), `${m.desc}: ${codes.join(',')}`).toBe(true);
    }
  });

  it('rejects every one of the 512 single-bit flips of the signature, and S + L', async () => {
    const flips = signatureBitFlips(bundle.attestation.signature);
    expect(flips).toHaveLength(512);
    for (const sig of [...flips, signaturePlusL(bundle.attestation.signature)]) {
      const b = structuredClone(bundle);
      b.attestation.signature = sig;
      const r = await verifyBundle(b, trust, { profile: 'standard' });
      expect(r.valid).toBe(false);
      expect(failed(r)).toEqual(['SIGNATURE_INVALID']);
    }
  });

  it('rejects an own "__proto__" key added to any object of the bundle', async () => {
    // a bundle whose meter event has dimensions, so the record schema is among those exercised
    const withDims = testAttest({ event: normalizeMeterEvent({ ...pilotEvent, dimensions: { model: 'gpt-x' } }), tariff: normalizeTariff(pilotTariff), key: keyA, chain: GENESIS, issuedAt: '2026-05-29T12:00:01.000Z' }).bundle;
    expect((await verifyBundle(withDims, trust, { profile: 'standard' })).valid).toBe(true);
    const paths: string[][] = [];
    const walk = (v: unknown, at: string[]) => {
      if (!v || typeof v !== 'object') return;
      if (!Array.isArray(v)) paths.push(at);
      for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
    };
    walk(withDims, []);
    expect(paths.length).toBeGreaterThanOrEqual(8); // root, meter_event, dimensions, tariff_snapshot, billing, attestation, statement, chain
    for (const at of paths) {
      // as JSON.parse makes it: an own, enumerable data property named __proto__
      const b = JSON.parse(JSON.stringify(withDims));
      const node = at.reduce((o, k) => o[k], b);
      Object.defineProperty(node, '__proto__', { value: 'smuggled', enumerable: true, writable: true, configurable: true });
      const r = await verifyBundle(b, trust, { profile: 'standard' });
      expect(r.valid, at.join('.') || '(root)').toBe(false);
      expect(failed(r)).toEqual(['SCHEMA_INVALID']);
    }
    // a string with no canonical form (a lone surrogate) is a schema failure too, not an exception
    const b = JSON.parse(JSON.stringify(withDims));
    b.meter_event.dimensions.model = 'gpt\udc00';
    expect(failed(await verifyBundle(b, trust, { profile: 'standard' }))).toEqual(['SCHEMA_INVALID']);
    // an in-memory bundle with an optional member set to undefined is the same bundle as JSON
    expect((await verifyBundle({ ...withDims, receipt: undefined }, trust, { profile: 'standard' })).valid).toBe(true);
  });

  it('rejects the key_id swapped for another valid key', async () => {
    const b = structuredClone(bundle);
    b.attestation.key_id = keyB.keyId;
    expect(failed(await verifyBundle(b, trust, { profile: 'standard' }))).toEqual(['SIGNATURE_INVALID']);
    b.attestation.statement.key_id = keyB.keyId;
    expect(failed(await verifyBundle(b, trust, { profile: 'standard' }))).toEqual(['SIGNATURE_INVALID']);
  });
});
