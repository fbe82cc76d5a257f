// The transparency log over the store (docs/transparency-log.md): a sequencer that integrates queued
// attestations in batches under a Postgres advisory lock, and the read side that serves
// checkpoints, receipts, inclusion/consistency proofs and entries. This file puts the parts
// together:
// - store-reads.ts: the tables, the (briefly cached) latest checkpoint, node reads;
// - integrate.ts: one integration round, in one transaction, signing the new checkpoint;
// - sequencer.ts: the loop that runs the rounds;
// - proofs.ts: receipts, inclusion and consistency proofs, entries;
// - keys.ts: the checkpoint signing key;
// - api.ts: the port the HTTP layer builds on (src/http/log-routes.ts serves it).
import type { SigningKey } from '../core/keys.ts';
import { type NoteSigner, ed25519NoteSigner, formatVerifierKey, isValidKeyName } from '../core/note.ts';
import type { Db } from '../db/index.ts';
import type { Notifier } from '../db/notify.ts';
import type { Metrics } from '../service/metrics.ts';
import type { LogApi } from './api.ts';
import { createIntegrator } from './integrate.ts';
import { createProofReads } from './proofs.ts';
import { type Sequencer, type SequencerOptions, startSequencer } from './sequencer.ts';
import { createStoreReads } from './store-reads.ts';

export type { CheckpointRecord, ConsistencyProofResponse, InclusionProofResponse, LogApi, LogEntry } from './api.ts';
export { DEFAULT_BATCH } from './integrate.ts';
export { LOG_KEY_FILE, loadOrCreateLogKey } from './keys.ts';
export { MAX_ENTRIES } from './proofs.ts';
export { DEFAULT_MIN_ROUND_MS, type Sequencer, type SequencerOptions } from './sequencer.ts';

export interface LogServiceOptions {
  readonly db: Db;
  /** Checkpoint origin, also the signed-note key name (no spaces, no '+'), e.g. `meterproof.example.com/log`. */
  readonly origin: string;
  /** Ed25519 key that signs checkpoints. */
  readonly logKey: SigningKey;
  /** Announces each new checkpoint (its size) to waiting requests in every process of the store. */
  readonly notifier?: Notifier;
  readonly metrics?: Metrics;
}

export interface LogService extends LogApi {
  readonly origin: string;
  /** Makes the first (size 0) checkpoint when the log has none. Idempotent. */
  init(): Promise<void>;
  /** One sequencer step. Returns the number of leaves integrated (0 if another process holds the lock). */
  integrate(maxBatch?: number): Promise<number>;
  startSequencer(opts?: SequencerOptions): Sequencer;
  /** The log section of the trust material. */
  trust(): Promise<{ verifier_key: string; latest_checkpoint?: string }>;
}

export function createLogService(opts: LogServiceOptions): LogService {
  const { db, origin, logKey, notifier, metrics } = opts;
  if (!isValidKeyName(origin)) throw new Error(`log origin ${JSON.stringify(origin)} is not a valid signed-note key name (no spaces, no '+')`);
  const signer: NoteSigner = ed25519NoteSigner(origin, logKey.publicKey, logKey.sign);
  const vkey = formatVerifierKey(origin, logKey.publicKey);
  const reads = createStoreReads(db);
  const { init, integrate } = createIntegrator({ db, origin, signer, reads, notifier, metrics });
  const { receipt, inclusionProof, consistencyProof, entries } = createProofReads(db, origin, reads);

  return {
    origin,
    init,
    integrate,
    startSequencer: (so) => startSequencer(integrate, so, metrics),
    receipt,
    size: () => reads.currentSize(),
    verifierKey: () => vkey,
    latestCheckpoint: reads.latestCheckpoint,
    async trust() {
      const cp = await reads.currentCheckpoint();
      return { verifier_key: vkey, ...(cp ? { latest_checkpoint: cp.note } : {}) };
    },
    inclusionProof,
    consistencyProof,
    entries,
  };
}
