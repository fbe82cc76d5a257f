// Real proved bundles with receipts, as the service issues them: events attested through the API
// of a test service, proved by the production prover (bn128-poseidon8-v2), taken into the log.
// Used by the batch-verification tests and by `npm run bench:verify`.
import type { FullBundle } from '../../src/core/schemas.ts';
import type { TrustMaterial } from '../../src/core/trust.ts';
import { startProofWorker } from '../../src/service/proofs.ts';
import { createProveFn } from '../../src/service/prove.ts';
import { graduatedTariff, pilotEvent, pilotTariff } from './fixtures.ts';
import type { TestService } from './service.ts';

export interface ProvedSet {
  readonly bundles: FullBundle[];
  readonly trust: TrustMaterial;
}

/**
 * `n` full bundles of tenant_acme, each with its Groth16 proof and a receipt, and the service's
 * trust material. Events alternate between the linear pilot tariff and a graduated one (both
 * published) and spread over a few meters (endpoints), so chains and amounts differ.
 */
export async function provedBundles(s: TestService, n: number, opts: { workers?: number; tag?: string } = {}): Promise<ProvedSet> {
  await s.call('POST', '/v1/admin/tenants', { body: { id: 'tenant_acme' } });
  const key = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest', 'read'] } })).body.secret as string;
  for (const t of [pilotTariff, graduatedTariff]) {
    const r = await s.call('POST', '/v1/admin/tariffs', { body: t });
    if (r.status !== 201 && r.status !== 200) throw new Error(`publishing ${t.tariff_id}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  const tag = opts.tag ?? 'pb';
  const events = Array.from({ length: n }, (_, i) => ({
    meter_event: { ...pilotEvent, event_id: `${tag}-${i}`, endpoint: `/v1/m${i % 4}`, usage_units: 100 + 37 * i },
    tariff: i % 2 ? { tariff_id: graduatedTariff.tariff_id, tariff_version: graduatedTariff.tariff_version } : { tariff_id: pilotTariff.tariff_id, tariff_version: pilotTariff.tariff_version },
  }));
  const ids: string[] = [];
  for (let i = 0; i < events.length; i += 500) {
    const r = await s.call('POST', '/v1/attest/batch', { token: key, body: { events: events.slice(i, i + 500) } });
    if (r.status !== 200) throw new Error(`attest batch: ${r.status} ${JSON.stringify(r.body)}`);
    for (const item of r.body.results as { status: number; id?: string; error?: unknown }[]) {
      if (item.status !== 201 || !item.id) throw new Error(`attest: ${JSON.stringify(item)}`);
      ids.push(item.id);
    }
  }
  const workers = opts.workers ?? 2;
  const prover = await createProveFn(s.container.keys, { workers });
  const worker = startProofWorker(s.store.database.db, s.container.proofs, prover.prove, { pollMs: 10, concurrency: workers });
  try {
    const bundles: FullBundle[] = [];
    const deadline = Date.now() + 20 * 60_000; // a busy machine proves slowly
    for (const id of ids) {
      for (;;) {
        // ?proof=sync waits (up to its timeout) for the proof and the receipt
        const r = await s.call('GET', `/v1/attestations/${id}?proof=sync`, { token: key });
        if (r.status !== 200) throw new Error(`attestation ${id}: ${r.status} ${JSON.stringify(r.body)}`);
        if (r.body.attestation.proof_status === 'proved' && r.body.receipt) {
          bundles.push(r.body as FullBundle);
          break;
        }
        if (r.body.attestation.proof_status !== 'pending' || Date.now() > deadline) throw new Error(`attestation ${id} is not proved and logged (${r.body.attestation.proof_status})`);
      }
    }
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body as TrustMaterial;
    return { bundles, trust };
  } finally {
    await worker.stop();
    await prover.close();
  }
}
