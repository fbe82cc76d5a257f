// Messages between the prover pool (src/prover/index.ts) and its workers (src/prover/worker.ts).
import type { CircuitInput, ProofResult } from './engine.ts';

export type ToWorker = { type: 'prove'; id: number; input: CircuitInput } | { type: 'close' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; result: ProofResult }
  | { type: 'error'; id: number; name: string; message: string; code: string | undefined };
