// Bundles of binding bn128-poseidon8-v1 (issued before v2) keep verifying under v1's rules, a v1
// job left pending at the upgrade is still proved with v1's keys, and the two versions' parts
// cannot be mixed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tariffCommitment } from '../src/core/commitment.ts';
import { normalizeTariff } from '../src/core/attest.ts';
import type { FullBundle, VerificationReport } from '../src/core/schemas.ts';
import { createProveFn } from '../src/service/prove.ts';
import type { KeyRing } from '../src/service/keyring.ts';
import { redact, verify, releaseZk } from '../src/verifier/index.ts';
import { keyA, pilotBundle, pilotBundleV1, pilotTariff, trustFor } from './support/fixtures.ts';

const check = (r: VerificationReport, n: string) => r.checks.find((c) => c.name === n);
let provedV1: FullBundle;
let prove: Awaited<ReturnType<typeof createProveFn>>;

beforeAll(async () => {
  // the service's prove function, as a worker runs it: a v1 bundle goes to the v1 prover
  const ring = { signer: async () => ({ key: keyA, issuedAt: new Date('2026-06-01T00:00:00.000Z') }) } as unknown as KeyRing;
  prove = await createProveFn(ring, { workers: 0 });
  const { bundle, statementDigest } = pilotBundleV1();
  const bp = await prove.prove({ bundle, blinding: 12345678901234567890n, statementDigest });
  provedV1 = { ...bundle, attestation: { ...bundle.attestation, proof_status: 'proved', billing_proof: bp } };
}, 120_000);

afterAll(async () => {
  await prove?.close();
  await releaseZk();
});

describe('bn128-poseidon8-v1 bundles after v2', () => {
  it('a pending v1 job is proved with v1 keys and its proof statement; the bundle verifies under v1 rules', async () => {
    expect(provedV1.attestation.billing_proof).toMatchObject({ statement: { binding: 'bn128-poseidon8-v1' } });
    const r = await verify(provedV1, trustFor(keyA), { profile: 'standard' });
    expect(r.checks.filter((c) => c.status === 'fail')).toEqual([]);
    for (const n of ['digests', 'fingerprint', 'charge', 'proof_signature', 'commitments', 'proof']) expect(check(r, n), n).toMatchObject({ status: 'pass' });
    expect(r.valid).toBe(true);
  });

  it('a redacted v1 bundle is checked against the published v1 commitment; a v2 entry of the same version does not count for it', async () => {
    const red = redact(provedV1);
    const v1Commitment = (await tariffCommitment(normalizeTariff(pilotTariff))).toString();
    const id = { tariff_id: pilotTariff.tariff_id, tariff_version: pilotTariff.tariff_version };
    const published = { ...trustFor(keyA), tariffs: [{ ...id, tariff_commitment: v1Commitment }] };
    const ok = await verify(red, published, { profile: 'standard' });
    expect(check(ok, 'commitments')).toMatchObject({ status: 'pass' });
    expect(ok.valid).toBe(true);
    const wrong = { ...trustFor(keyA), tariffs: [{ ...id, tariff_commitment: '1' }] };
    expect(check(await verify(red, wrong, { profile: 'standard' }), 'commitments')).toMatchObject({ status: 'fail', code: 'COMMITMENT_MISMATCH' });
    // a v2 entry with another value is not v1's: the v1 rule (no published v1 commitment: not checked) applies
    const onlyV2 = { ...trustFor(keyA), tariffs: [{ ...id, binding: 'bn128-poseidon8-v2', tariff_commitment: '1' }] };
    expect(check(await verify(red, onlyV2, { profile: 'standard' }), 'commitments')).toMatchObject({ status: 'skipped', reason: 'redacted' });
  });

  it('the parts of the two versions cannot be mixed', async () => {
    const v2 = pilotBundle().bundle;
    // a v2 statement with a v1 proof, a v1 statement with a v2 proof
    const mixed1 = structuredClone(v2) as FullBundle;
    mixed1.attestation.proof_status = 'proved';
    mixed1.attestation.billing_proof = structuredClone(provedV1.attestation.billing_proof);
    const mixed2 = structuredClone(provedV1);
    mixed2.attestation.billing_proof = { binding: 'bn128-poseidon8-v2', proof: provedV1.attestation.billing_proof!.proof };
    // salts on a v1 bundle, none on a v2 bundle
    const salted = { ...structuredClone(provedV1), salts: { event: '1', tariff: '2' } };
    const { salts: _, ...unsalted } = structuredClone(v2);
    for (const b of [mixed1, mixed2, salted, unsalted]) {
      const r = await verify(b, trustFor(keyA), { profile: 'standard' });
      expect(r.valid).toBe(false);
      expect(check(r, 'schema')).toMatchObject({ status: 'fail', code: 'SCHEMA_INVALID' });
    }
  });
});
