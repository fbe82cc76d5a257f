// Messages between the verifier pool (pool.ts) and its workers (worker.ts).
import type { VerificationReport } from '../core/schemas.ts';
import type { BatchItem, BatchOptions } from './batch.ts';

export type ToVerifyWorker = { type: 'verify'; id: number; items: readonly BatchItem[]; trust: unknown; opts: BatchOptions } | { type: 'close' };

export type FromVerifyWorker =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; reports: VerificationReport[] }
  | { type: 'error'; id: number; message: string };
