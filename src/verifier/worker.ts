// A verifier pool worker (pool.ts): verifies one chunk of bundles at a time with verifyBatch, on
// this thread only (the verifier's single-thread wasm curve). Before saying it is ready it builds
// the curve and Poseidon and checks the pinned keys, so the first chunk does not pay for them.
import { parentPort } from 'node:worker_threads';
import { poseidonHash } from '../core/commitment.ts';
import { wasmCurve } from './bn254.ts';
import { verifyBatch } from './batch.ts';
import type { FromVerifyWorker, ToVerifyWorker } from './protocol.ts';
import { PINNED_VKEYS, verificationKeyFor } from './vkeys.ts';

const port = parentPort;
if (!port) throw new Error('src/verifier/worker.ts must run in a worker thread');
const post = (m: FromVerifyWorker) => port.postMessage(m);

try {
  await Promise.all([wasmCurve(), poseidonHash([0n]), ...Object.keys(PINNED_VKEYS).map((b) => verificationKeyFor(b, undefined))]);
  port.on('message', (m: ToVerifyWorker) => {
    if (m.type === 'close') return void port.close();
    verifyBatch(m.items, m.trust, m.opts).then(
      (reports) => post({ type: 'result', id: m.id, reports }),
      (e: unknown) => post({ type: 'error', id: m.id, message: e instanceof Error ? e.message : String(e) }),
    );
  });
  post({ type: 'ready' });
} catch (e) {
  post({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
}
