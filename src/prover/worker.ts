// A prover pool worker: builds one proving engine from the keys it is given, proves one input at a
// time, and on `close` stops snarkjs's curve threads so the thread can exit.
import { parentPort, workerData } from 'node:worker_threads';
import { createEngine, type ProvingKeys } from './engine.ts';
import { terminateCurve } from '../verifier/groth16.ts';
import type { ToWorker, FromWorker } from './protocol.ts';

const port = parentPort;
if (!port) throw new Error('src/prover/worker.ts must run in a worker thread');

const post = (m: FromWorker) => port.postMessage(m);

try {
  const data = workerData as ProvingKeys & { singleThreadCurve: boolean };
  const engine = await createEngine(data, { singleThreadCurve: data.singleThreadCurve });
  port.on('message', (m: ToWorker) => {
    if (m.type === 'close') {
      void terminateCurve().finally(() => port.close());
      return;
    }
    engine.prove(m.input).then(
      (result) => post({ type: 'result', id: m.id, result }),
      (e: unknown) => {
        const err = e instanceof Error ? e : new Error(String(e));
        post({ type: 'error', id: m.id, name: err.name, message: err.message, code: (err as { code?: unknown }).code as string | undefined });
      },
    );
  });
  post({ type: 'ready' });
} catch (e) {
  post({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
}
