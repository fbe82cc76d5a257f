import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyBundle } from '../src/core/verify.ts';
import { startProofWorker, type ProveFn } from '../src/service/proofs.ts';
import { createProveFn } from '../src/service/prove.ts';
import { redact, verify } from '../src/verifier/index.ts';
import { rerandomize } from './support/bn254.ts';
import { graduatedTariff, pilotEvent, pilotTariff } from './support/fixtures.ts';
import { testService, type TestService } from './support/service.ts';
import { expectedCodes, generateMutations, signatureBitFlips, signaturePlusL } from './support/tamper.ts';

let s: TestService;
let key: string;
let prover: Awaited<ReturnType<typeof createProveFn>>;
let failuresLeft = 2;
let worker: ReturnType<typeof startProofWorker>;

beforeAll(async () => {
  s = await testService();
  await s.call('POST', '/v1/admin/tenants', { body: { id: 'tenant_acme' } });
  key = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest', 'read'] } })).body.secret;
  prover = await createProveFn(s.container.keys, { workers: 1 });
  // Fault injection around the real prover: the first two jobs fail, to exercise retries.
  const flaky: ProveFn = async (args) => {
    if (failuresLeft-- > 0) throw new Error('injected prover failure');
    return prover.prove(args);
  };
  worker = startProofWorker(s.store.database.db, s.container.proofs, flaky, { pollMs: 20 });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await prover?.close();
  await s?.close();
});

const ev = (over: Record<string, unknown> = {}) => ({ ...pilotEvent, ...over });

describe('asynchronous Groth16 proofs', () => {
  let proved: any;
  it('retries a failed job with backoff and delivers the proof; ?proof=sync waits for it', async () => {
    const r = await s.call('POST', '/v1/attest?proof=sync', { token: key, body: { meter_event: pilotEvent, tariff_snapshot: pilotTariff } });
    expect(r.status).toBe(201);
    expect(r.headers.get('x-proof-status')).toBe('proved');
    proved = r.body;
    expect(proved.attestation.proof_status).toBe('proved');
    expect(proved.attestation.billing_proof.statement).toMatchObject({ binding: 'bn128-poseidon8-v1', charge_micros: '221040' });
    expect(failuresLeft).toBeLessThan(0); // both injected failures happened and the job still finished
    // the original statement and its signature are untouched by the additive proof
    const again = await s.call('GET', `/v1/attestations/${r.headers.get('x-attestation-id')}`, { token: key });
    expect(again.body.attestation.signature).toBe(proved.attestation.signature);
  }, 120_000);

  it('verifies the proof, the commitments and the proof signature (API and offline)', async () => {
    const rep = (await s.call('POST', '/v1/verify?profile=standard', { token: null, body: proved })).body;
    for (const n of ['proof_signature', 'commitments', 'proof']) expect(rep.checks.find((c: any) => c.name === n), n).toMatchObject({ status: 'pass' });
    expect(rep.valid).toBe(true);
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    expect(trust.verification_key.protocol).toBe('groth16');
    const off = await verify(proved, trust, { profile: 'standard' });
    expect(off.checks).toEqual(rep.checks);
  });

  it('a re-randomized proof (Groth16 is malleable) verifies as the same attestation: same receipt, statement digest and checks, API and offline', async () => {
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    const again = structuredClone(proved);
    again.attestation.billing_proof.proof = rerandomize(proved.attestation.billing_proof.proof, trust.verification_key.vk_delta_2, 7n, 11n);
    for (const k of ['pi_a', 'pi_b', 'pi_c']) expect(again.attestation.billing_proof.proof[k]).not.toEqual(proved.attestation.billing_proof.proof[k]);
    expect(proved.receipt).toBeTruthy();
    const original = await verify(proved, trust, { profile: 'strict' });
    const rerandomized = await verify(again, trust, { profile: 'strict' });
    expect(original.valid).toBe(true);
    expect(rerandomized.valid).toBe(true);
    expect(rerandomized.statement_digest).toBe(original.statement_digest);
    expect(rerandomized.checks).toEqual(original.checks);
    const api = (await s.call('POST', '/v1/verify', { token: null, body: again })).body;
    expect(api).toMatchObject({ valid: true, statement_digest: original.statement_digest });
    // the service knows the attestation by its statement digest, whichever proof a holder shows
    const stored = await s.call('GET', `/v1/attestations/${original.statement_digest!.slice('sha256:'.length)}`, { token: key });
    expect(stored.status).toBe(200);
    expect(stored.body.attestation.statement).toEqual(again.attestation.statement);
  });

  it('a redacted bundle still verifies: signature, proof, tariff commitment against the published version', async () => {
    await s.call('POST', '/v1/admin/tariffs', { body: graduatedTariff });
    const ref = { tariff_id: graduatedTariff.tariff_id, tariff_version: graduatedTariff.tariff_version };
    const full = (await s.call('POST', '/v1/attest?proof=sync', { token: key, body: { meter_event: ev({ event_id: 'red-1' }), tariff: ref } })).body;
    const red = redact(full) as any;
    expect(red.attestation.billing_proof.blinding).toBeUndefined();
    expect(JSON.stringify(red)).not.toContain('/v1/completions');
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    const rep = await verify(red, trust, { profile: 'standard' });
    expect(rep.valid).toBe(true);
    expect(rep.redacted).toBe(true);
    const st = (n: string) => rep.checks.find((c) => c.name === n);
    expect(st('commitments')).toMatchObject({ status: 'pass' });
    expect(st('proof')).toMatchObject({ status: 'pass' });
    for (const n of ['digests', 'fingerprint', 'charge']) expect(st(n)).toMatchObject({ status: 'skipped', reason: 'redacted' });
    // a redacted bundle whose tariff commitment does not match the published version fails
    const wrong = structuredClone(trust);
    wrong.tariffs = trust.tariffs.map((t: any) => ({ ...t, tariff_commitment: '1' }));
    expect((await verify(red, wrong, { profile: 'standard' })).checks.find((c) => c.name === 'commitments')?.code).toBe('COMMITMENT_MISMATCH');
  }, 120_000);

  it('rejects every mutation of the proof part', async () => {
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    const onlyProof = generateMutations(proved, () => ['PROOF_SIGNATURE_INVALID', 'SCHEMA_INVALID', 'COMMITMENT_MISMATCH', 'PROOF_INVALID', 'PROOF_MALFORMED', 'KEY_UNKNOWN']).filter((m) =>
      m.desc.includes('attestation.billing_proof'),
    );
    expect(onlyProof.length).toBeGreaterThan(30);
    for (const m of onlyProof) {
      const rep = await verifyBundle(m.bundle, trust, { profile: 'standard', zk: (await import('../src/verifier/zk.ts')).zkVerifier });
      expect(rep.valid, m.desc).toBe(false);
      for (const c of rep.checks.filter((x) => x.status === 'fail')) expect(m.codes, `${m.desc}: ${c.code}`).toContain(c.code);
    }
    // a proof for another event cannot be grafted onto this bundle
    const other = (await s.call('POST', '/v1/attest?proof=sync', { token: key, body: { meter_event: ev({ event_id: 'graft', usage_units: 1842 }), tariff_snapshot: pilotTariff } })).body;
    const grafted = structuredClone(proved);
    grafted.attestation.billing_proof = other.attestation.billing_proof;
    expect((await verify(grafted, trust, { profile: 'standard' })).checks.find((c) => c.name === 'proof_signature')?.code).toBe('PROOF_SIGNATURE_INVALID');
  }, 120_000);

  it('strict profile: a complete bundle (proof + receipt) is valid, and every single mutation of it is rejected', async () => {
    const r = await s.call('POST', '/v1/attest?proof=sync', { token: key, body: { meter_event: ev({ event_id: 'strict-1', dimensions: { region: 'eu' } }), tariff_snapshot: pilotTariff } });
    const complete = r.body;
    expect(complete.receipt).toBeTruthy();
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    const ok = await verify(complete, trust, { profile: 'strict' });
    expect(ok.checks.filter((c) => c.status !== 'pass').map((c) => `${c.name}:${c.reason}`)).toEqual(['consistency:no trusted checkpoint given']);
    expect(ok.valid).toBe(true);
    expect((await s.call('POST', '/v1/verify', { token: null, body: complete })).body.valid).toBe(true);

    const mutations = generateMutations(complete, expectedCodes);
    expect(mutations.length).toBeGreaterThan(150);
    for (const m of mutations) {
      const rep = await verify(m.bundle, trust, { profile: 'strict' });
      expect(rep.valid, m.desc).toBe(false);
      const codes = rep.checks.filter((c) => c.status === 'fail').map((c) => c.code!);
      if (codes.length === 0) {
        // only removing the whole receipt fails by a required check being skipped
        expect(m.desc).toBe('remove receipt');
        expect(rep.checks.find((c) => c.name === 'inclusion')?.status).toBe('skipped');
        continue;
      }
      for (const c of codes) expect(m.codes, `${m.desc}: unexpected ${c}`).toContain(c);
    }
    for (const sig of [...signatureBitFlips(complete.attestation.billing_proof.signature).filter((_, i) => i % 8 === 0), signaturePlusL(complete.attestation.billing_proof.signature)]) {
      const b = structuredClone(complete);
      b.attestation.billing_proof.signature = sig;
      const rep = await verify(b, trust, { profile: 'strict' });
      expect(rep.checks.find((c) => c.name === 'proof_signature')?.code).toBe('PROOF_SIGNATURE_INVALID');
    }
  }, 300_000);
});
