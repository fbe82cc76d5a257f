// A full bundle as the service issues it (Groth16 proof and log receipt), its trust material and
// the log's checkpoints, written to a directory: what `meterproof verify` is given offline. Made by
// the real service in-process (test store, real prover thread), then the service is closed.
import fs from 'node:fs';
import path from 'node:path';
import { generateEd25519 } from '../../src/core/ed25519.ts';
import { signingKeyFromSeed } from '../../src/core/keys.ts';
import { createProveFn } from '../../src/service/prove.ts';
import { startProofWorker } from '../../src/service/proofs.ts';
import { pilotEvent, pilotTariff } from './fixtures.ts';
import { testService } from './service.ts';

export const LOG_ORIGIN = 'test.meterproof/log';

export interface ProvedFiles {
  /** bundle.json: a full v2 bundle with proof and receipt. */
  readonly bundle: string;
  /** trust.json: GET /v1/trust after the bundle was logged. */
  readonly trust: string;
  /** checkpoint-at.txt: the signed checkpoint of the bundle's receipt (same tree size). */
  readonly checkpointAt: string;
  /** checkpoint-later.txt: a checkpoint after `later` more entries. */
  readonly checkpointLater: string;
  /** consistency.json: GET /v1/log/proof/consistency from the receipt's size to the later one. */
  readonly consistency: string;
  /** The log's signing key (to forge split views in tests). */
  readonly logSeed: Uint8Array;
  readonly treeSize: bigint;
}

/** Writes the files above into `dir`. `later`: how many events are attested after the bundle. */
export async function writeProvedFiles(dir: string, later = 2): Promise<ProvedFiles> {
  const logSeed = generateEd25519().seed;
  const s = await testService({ logKey: signingKeyFromSeed(logSeed) });
  const prover = await createProveFn(s.container.keys, { workers: 1 });
  const worker = startProofWorker(s.store.database.db, s.container.proofs, prover.prove, { pollMs: 20 });
  try {
    await s.call('POST', '/v1/admin/tenants', { body: { id: pilotEvent.tenant_id } });
    const key = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest', 'read'] } })).body.secret as string;
    const published = await s.call('POST', '/v1/admin/tariffs', { body: pilotTariff });
    if (published.status !== 201) throw new Error(`publishing the tariff: ${published.status} ${JSON.stringify(published.body)}`);
    const attest = async (eventId: string, proof: 'sync' | 'async') => {
      const r = await s.call('POST', `/v1/attest?proof=${proof}&log=sync`, {
        token: key,
        body: { meter_event: { ...pilotEvent, event_id: eventId }, tariff: { tariff_id: pilotTariff.tariff_id, tariff_version: pilotTariff.tariff_version } },
      });
      if (r.status !== 201) throw new Error(`attest: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    const bundle = await attest('evt_cli_0', 'sync');
    if (bundle.attestation.proof_status !== 'proved' || !bundle.receipt) throw new Error('the bundle has no proof or no receipt');
    const at = (await s.call('GET', '/v1/log/checkpoint', { token: null })).body as string;
    for (let i = 1; i <= later; i++) await attest(`evt_cli_${i}`, 'async');
    const laterCp = (await s.call('GET', '/v1/log/checkpoint', { token: null })).body as string;
    const size = BigInt(bundle.receipt.tree_size);
    const laterSize = BigInt(laterCp.split('\n')[1]!);
    const proof = (await s.call('GET', `/v1/log/proof/consistency?from=${size}&to=${laterSize}`, { token: null })).body;
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    const files = {
      bundle: path.join(dir, 'bundle.json'),
      trust: path.join(dir, 'trust.json'),
      checkpointAt: path.join(dir, 'checkpoint-at.txt'),
      checkpointLater: path.join(dir, 'checkpoint-later.txt'),
      consistency: path.join(dir, 'consistency.json'),
    };
    fs.writeFileSync(files.bundle, `${JSON.stringify(bundle, null, 2)}\n`);
    fs.writeFileSync(files.trust, `${JSON.stringify(trust, null, 2)}\n`);
    fs.writeFileSync(files.checkpointAt, at);
    fs.writeFileSync(files.checkpointLater, laterCp);
    fs.writeFileSync(files.consistency, `${JSON.stringify(proof, null, 2)}\n`);
    return { ...files, logSeed, treeSize: size };
  } finally {
    await worker.stop();
    await prover.close();
    await s.close();
  }
}
