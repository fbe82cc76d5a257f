// pool.ts for browsers (scripts/build-verifier.mjs): no worker threads there, so a pool always
// verifies on the calling thread (pool.ts with `threads: 0`), with the same results.
import { type BatchItem, type BatchOptions, verifyBatch } from './batch.ts';
import type { VerificationReport } from '../core/schemas.ts';
export type { VerifyPool, VerifyPoolOptions } from './pool.ts';
import type { VerifyPool, VerifyPoolOptions } from './pool.ts';

export class VerifyPoolClosedError extends Error {
  override readonly name = 'VerifyPoolClosedError';
  readonly code = 'VERIFIER_CLOSED';
}

export function createVerifyPool(_opts: VerifyPoolOptions = {}): VerifyPool {
  let closed = false;
  return {
    threads: 0,
    verifyMany: (items: readonly BatchItem[], trust: unknown, o?: BatchOptions): Promise<VerificationReport[]> =>
      closed ? Promise.reject(new VerifyPoolClosedError('the verifier pool is closed')) : verifyBatch(items, trust, o),
    async close() {
      closed = true;
    },
  };
}
