import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyBundle } from '../src/core/verify.ts';
import { startProofWorker, type ProveFn } from '../src/service/proofs.ts';
import { createProveFn, proveBundleV2 } from '../src/service/prove.ts';
import { createProver } from '../src/prover/index.ts';
import { V2_KEYS_DIR } from '../src/service/zk.ts';
import { normalizeMeterEvent, normalizeTariff } from '../src/core/attest.ts';
import { signObject } from '../src/core/keys.ts';
import type { FullBundle, StatementV2 } from '../src/core/schemas.ts';
import { redact, verify } from '../src/verifier/index.ts';
import { rerandomize } from './support/bn254.ts';
import { graduatedTariff, pilotEvent, pilotTariff, testAttest } from './support/fixtures.ts';
import { testService, type TestService } from './support/service.ts';
import { expectedCodes, generateMutations } from './support/tamper.ts';

let s: TestService;
let key: string;
let prover: Awaited<ReturnType<typeof createProveFn>>;
let failuresLeft = 2;
let worker: ReturnType<typeof startProofWorker>;

beforeAll(async () => {
  s = await testService();
  await s.call('POST', '/v1/admin/tenants', { body: { id: 'tenant_acme' } });
  key = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest', 'read'] } })).body.secret;
  // the pilot tariff is a published version (events name it inline, as a copy of it)
  expect((await s.call('POST', '/v1/admin/tariffs', { body: pilotTariff })).status).toBe(201);
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

describe('asynchronous Groth16 proofs (bn128-poseidon8-v2)', () => {
  let proved: any;
  const check = (rep: { checks: { name: string; status?: string }[] }, n: string) => rep.checks.find((c) => c.name === n);
  const trustNow = async () => (await s.call('GET', '/v1/trust', { token: null })).body;

  it('retries a failed job with backoff and delivers the proof; ?proof=sync waits for it', async () => {
    const r = await s.call('POST', '/v1/attest?proof=sync', { token: key, body: { meter_event: pilotEvent, tariff_snapshot: pilotTariff } });
    expect(r.status).toBe(201);
    expect(r.headers.get('x-proof-status')).toBe('proved');
    proved = r.body;
    expect(proved.attestation.proof_status).toBe('proved');
    expect(proved.attestation.statement).toMatchObject({ binding: 'bn128-poseidon8-v2', charge_micros: '221040', usage_units: '1842', outcome: 'success' });
    expect(proved.attestation.statement.chain).toMatchObject({ cumulative_units_before: '0', cumulative_units_after: '1842' });
    expect(Object.keys(proved.attestation.billing_proof).sort()).toEqual(['binding', 'proof']);
    expect(failuresLeft).toBeLessThan(0); // both injected failures happened and the job still finished
    // the original statement and its signature are untouched by the additive proof
    const again = await s.call('GET', `/v1/attestations/${r.headers.get('x-attestation-id')}`, { token: key });
    expect(again.body.attestation.signature).toBe(proved.attestation.signature);
  }, 120_000);

  it('verifies the proof against public signals from the signed statement and the published commitment (API and offline)', async () => {
    const rep = (await s.call('POST', '/v1/verify?profile=standard', { token: null, body: proved })).body;
    for (const n of ['commitments', 'proof']) expect(check(rep, n), n).toMatchObject({ status: 'pass' });
    // v2 has no separately signed proof statement
    expect(check(rep, 'proof_signature')).toMatchObject({ status: 'skipped', reason: 'not applicable to binding bn128-poseidon8-v2' });
    expect(rep.valid).toBe(true);
    const trust = await trustNow();
    expect(trust.verification_keys['bn128-poseidon8-v2'].protocol).toBe('groth16');
    // the inline tariff is a copy of the published version: its salt, whose commitment is public (the salt is not)
    expect(trust.tariffs).toContainEqual(expect.objectContaining({ tariff_id: pilotTariff.tariff_id, binding: 'bn128-poseidon8-v2' }));
    const published = (await s.call('GET', `/v1/tariffs/${pilotTariff.tariff_id}/${pilotTariff.tariff_version}`, { token: key })).body;
    expect(proved.salts.tariff).toBe(published.v2.salt);
    expect(JSON.stringify(trust)).not.toContain(proved.salts.tariff);
    const off = await verify(proved, trust, { profile: 'standard' });
    expect(off.checks).toEqual(rep.checks);
  });

  it('a re-randomized proof (Groth16 is malleable) verifies as the same attestation: same receipt, statement digest and checks, API and offline', async () => {
    const trust = await trustNow();
    const again = structuredClone(proved);
    again.attestation.billing_proof.proof = rerandomize(proved.attestation.billing_proof.proof, trust.verification_keys['bn128-poseidon8-v2'].vk_delta_2, 7n, 11n);
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

  it('a redacted bundle verifies against the published commitment of its tariff version, and fails without one', async () => {
    await s.call('POST', '/v1/admin/tariffs', { body: graduatedTariff });
    const ref = { tariff_id: graduatedTariff.tariff_id, tariff_version: graduatedTariff.tariff_version };
    const full = (await s.call('POST', '/v1/attest?proof=sync', { token: key, body: { meter_event: ev({ event_id: 'red-1' }), tariff: ref } })).body;
    const red = redact(full) as any;
    expect(red.salts).toBeUndefined();
    for (const hidden of ['/v1/completions', 'red-1', full.salts.event, full.salts.tariff, 'api_live_001']) expect(JSON.stringify(red)).not.toContain(hidden);
    const trust = await trustNow();
    const rep = await verify(red, trust, { profile: 'standard' });
    expect(rep.valid).toBe(true);
    expect(rep.redacted).toBe(true);
    expect(check(rep, 'commitments')).toMatchObject({ status: 'pass' });
    expect(check(rep, 'proof')).toMatchObject({ status: 'pass' });
    for (const n of ['digests', 'fingerprint', 'charge']) expect(check(rep, n)).toMatchObject({ status: 'skipped', reason: 'redacted' });
    // another commitment for the version: the proof does not verify against it
    const wrong = structuredClone(trust);
    wrong.tariffs = trust.tariffs.map((t: any) => ({ ...t, tariff_commitment: '1' }));
    expect(check(await verify(red, wrong, { profile: 'standard' }), 'proof')).toMatchObject({ status: 'fail', code: 'PROOF_INVALID' });
    // no published v2 commitment for the version (only v1's, or none): TARIFF_NOT_PUBLISHED, with or without a proof
    const unpublished = structuredClone(trust);
    unpublished.tariffs = trust.tariffs.filter((t: any) => t.binding !== 'bn128-poseidon8-v2');
    for (const b of [red, { ...red, attestation: { ...red.attestation, proof_status: 'pending', billing_proof: undefined } }]) {
      const r = await verify(JSON.parse(JSON.stringify(b)), unpublished, { profile: 'standard' });
      expect(r.valid).toBe(false);
      expect(check(r, 'commitments')).toMatchObject({ status: 'fail', code: 'TARIFF_NOT_PUBLISHED' });
    }
    // an inline tariff that is not a published version: its full bundle is valid, its redacted one cannot be
    const own = { ...graduatedTariff, tariff_version: 'own-1' };
    const inline = (await s.call('POST', '/v1/attest?proof=sync', { token: key, body: { meter_event: ev({ event_id: 'red-2', endpoint: '/v1/own' }), tariff_snapshot: own } })).body;
    expect(inline.attestation.proof_status).toBe('proved');
    expect((await verify(inline, trust, { profile: 'standard' })).valid).toBe(true);
    const ownRed = await verify(redact(inline), await trustNow(), { profile: 'standard' });
    expect(ownRed.valid).toBe(false);
    expect(check(ownRed, 'commitments')).toMatchObject({ status: 'fail', code: 'TARIFF_NOT_PUBLISHED' });
  }, 120_000);

  it('rejects every mutation of the proof part, and a proof grafted from another event', async () => {
    const trust = await trustNow();
    const onlyProof = generateMutations(proved, () => ['SCHEMA_INVALID', 'PROOF_INVALID', 'PROOF_MALFORMED']).filter((m) => m.desc.includes('attestation.billing_proof'));
    expect(onlyProof.length).toBeGreaterThan(20);
    for (const m of onlyProof) {
      const rep = await verifyBundle(m.bundle, trust, { profile: 'standard', zk: (await import('../src/verifier/zk.ts')).zkVerifier });
      expect(rep.valid, m.desc).toBe(false);
      for (const c of rep.checks.filter((x) => x.status === 'fail')) expect(m.codes, `${m.desc}: ${c.code}`).toContain(c.code);
    }
    // the same usage and charge, another event: the public signals differ (event digest, tag)
    const other = (await s.call('POST', '/v1/attest?proof=sync', { token: key, body: { meter_event: ev({ event_id: 'graft', endpoint: '/v1/other' }), tariff_snapshot: pilotTariff } })).body;
    expect(other.attestation.statement.charge_micros).toBe(proved.attestation.statement.charge_micros);
    const grafted = structuredClone(proved);
    grafted.attestation.billing_proof = other.attestation.billing_proof;
    expect(check(await verify(grafted, trust, { profile: 'standard' }), 'proof')).toMatchObject({ status: 'fail', code: 'PROOF_INVALID' });
  }, 120_000);
});

describe('the review\'s attacks by a signing operator (bn128-poseidon8-v2)', () => {
  // The operator holds the signing key: it can sign any statement. The proof must still tie the
  // signed statement to the committed tariff and the arithmetic.
  const check = (rep: { checks: { name: string; status?: string }[] }, n: string) => rep.checks.find((c) => c.name === n);
  const resign = async (bundle: any, change: (st: StatementV2) => void) => {
    const b = structuredClone(bundle);
    change(b.attestation.statement);
    const { key: k } = await s.container.keys.signer();
    b.attestation.statement.key_id = k.keyId;
    b.attestation.key_id = k.keyId;
    b.attestation.signature = signObject(k, b.attestation.statement);
    delete b.receipt; // a receipt is for the original statement
    return b;
  };

  it('an honest proof re-signed for another tenant, window, chain position, event or time does not verify', async () => {
    const trust = await (async () => (await s.call('GET', '/v1/trust', { token: null })).body)();
    const base = (await s.call('POST', '/v1/attest?proof=sync', { token: key, body: { meter_event: ev({ event_id: 'move-1', endpoint: '/v1/move' }), tariff_snapshot: pilotTariff } })).body;
    const changes: [string, (st: StatementV2) => void][] = [
      ['tenant', (st) => (st.tenant_id = 'tenant_other')],
      ['window', (st) => (st.billing_window_id = '2026-06')],
      ['seq', (st) => (st.chain.seq = '7')],
      ['prev', (st) => (st.chain.prev = `sha256:${'ab'.repeat(32)}`)],
      ['chain id', (st) => (st.chain.id = `sha256:${'cd'.repeat(32)}`)],
      ['event', (st) => (st.event_digest = `sha256:${'ef'.repeat(32)}`)],
      ['issued_at', (st) => (st.issued_at = new Date().toISOString())],
    ];
    for (const [what, change] of changes) {
      const moved = await resign(base, change);
      for (const b of [moved, redact(moved)]) {
        const rep = await verify(b, trust, { profile: 'standard' });
        expect(rep.valid, what).toBe(false);
        expect(check(rep, 'signature'), what).toMatchObject({ status: 'pass' }); // the operator's signature is fine
        expect(check(rep, 'proof'), what).toMatchObject({ status: 'fail', code: 'PROOF_INVALID' });
      }
    }
  }, 120_000);

  it('overcharge through the running total: a real proof at 50,000 units does not verify for a statement at 49,000', async () => {
    // The graduated tariff: 5,000 micros per unit below 50,000, 8,000 above. The prover proves
    // an event of 1,000 units at running total 50,000 (charge 8,000,000); the operator signs a
    // statement saying 49,000 (where the honest charge is 5,000,000) with the larger charge.
    const tariff = normalizeTariff(graduatedTariff);
    const published = (await s.call('GET', `/v1/tariffs/${graduatedTariff.tariff_id}/${graduatedTariff.tariff_version}`, { token: key })).body;
    const tariffSalt = BigInt(published.v2.salt);
    const event = normalizeMeterEvent(ev({ event_id: 'over-1', usage_units: 1000, endpoint: '/v1/over' }));
    const { key: k, issuedAt } = await s.container.keys.signer();
    const at = (before: bigint) =>
      testAttest({ event, tariff, key: k, tariffSalt, chain: { seq: 9n, prev: `sha256:${'12'.repeat(32)}`, cumulativeBefore: before }, issuedAt: issuedAt.toISOString() });
    const honest50 = at(50_000n);
    expect(honest50.statement.charge_micros).toBe('8000000');
    expect(at(49_000n).statement.charge_micros).toBe('5000000');
    const p = await createProver({ workers: 0, keysDir: V2_KEYS_DIR });
    let proof;
    try {
      proof = await proveBundleV2(p, honest50.bundle);
    } finally {
      await p.close();
    }
    const proved50: FullBundle = { ...honest50.bundle, attestation: { ...honest50.bundle.attestation, proof_status: 'proved', billing_proof: proof } };
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    expect((await verify(proved50, trust, { profile: 'standard' })).valid).toBe(true); // the honest one verifies
    const lie = await resign(proved50, (st) => {
      st.chain.cumulative_units_before = '49000';
      st.chain.cumulative_units_after = '50000';
    });
    for (const b of [lie, redact(lie)]) {
      const rep = await verify(b, trust, { profile: 'standard' });
      expect(rep.valid).toBe(false);
      expect(check(rep, 'proof')).toMatchObject({ status: 'fail', code: 'PROOF_INVALID' });
    }
    // the full bundle shows the lie without the proof too
    expect(check(await verify(lie, trust, { profile: 'standard' }), 'charge')).toMatchObject({ status: 'fail', code: 'CHARGE_MISMATCH' });
  }, 180_000);

  it('strict profile: a complete bundle (proof + receipt) is valid, and every single mutation of it is rejected', async () => {
    const r = await s.call('POST', '/v1/attest?proof=sync', { token: key, body: { meter_event: ev({ event_id: 'strict-1', dimensions: { region: 'eu' } }), tariff_snapshot: pilotTariff } });
    const complete = r.body;
    expect(complete.receipt).toBeTruthy();
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    const ok = await verify(complete, trust, { profile: 'strict' });
    expect(ok.checks.filter((c) => c.status !== 'pass').map((c) => `${c.name}:${c.reason}`)).toEqual([
      'proof_signature:not applicable to binding bn128-poseidon8-v2',
      'consistency:no trusted checkpoint given',
      // bilateral metering's checks: this bundle carries no consumer PoP and no countersignature
      'consumer_pop:none in this bundle',
      'countersignatures:none in this bundle',
    ]);
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
        expect(check(rep, 'inclusion')?.status).toBe('skipped');
        continue;
      }
      for (const c of codes) expect(m.codes, `${m.desc}: unexpected ${c}`).toContain(c);
    }
  }, 300_000);
});
