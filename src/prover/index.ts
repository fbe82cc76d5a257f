// The prover (docs/zk-binding.md §5): circuit input → Groth16 proof under a binding version's keys.
// The proving key and the witness calculator are read from its keys directory once; proofs run on a pool of worker
// threads (or in-process with `workers: 0`). `close()` stops every thread, snarkjs's included.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createEngine, WitnessError, type CircuitInput, type ProofResult, type ProvingKeys } from './engine.ts';
import type { FromWorker, ToWorker } from './protocol.ts';
import { terminateCurve } from '../verifier/groth16.ts';

export { verifyGroth16, terminateCurve } from '../verifier/groth16.ts';
export { WitnessError, type CircuitInput, type Groth16ProofJson, type ProofResult } from './engine.ts';

export const DEFAULT_KEYS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'keys');

export interface ProverOptions {
  /** Directory holding billing.zkey and billing.wasm (default: the repository's keys/). */
  readonly keysDir?: string;
  /** Worker threads (default: min(2, CPUs)); 0 proves in the calling thread. */
  readonly workers?: number;
}

export interface Prover {
  prove(input: CircuitInput): Promise<ProofResult>;
  close(): Promise<void>;
  readonly workers: number;
}

export class ProverClosedError extends Error {
  override readonly name = 'ProverClosedError';
  readonly code = 'PROVER_CLOSED';
}

/** Reads the proving key and the witness calculator from `keysDir`. */
export function loadProvingKeys(keysDir: string = DEFAULT_KEYS_DIR): ProvingKeys {
  return {
    zkey: new Uint8Array(fs.readFileSync(path.join(keysDir, 'billing.zkey'))),
    wasm: new Uint8Array(fs.readFileSync(path.join(keysDir, 'billing.wasm'))),
  };
}

export async function createProver(opts: ProverOptions = {}): Promise<Prover> {
  const keys = loadProvingKeys(opts.keysDir);
  const workers = opts.workers ?? Math.min(2, os.availableParallelism());
  if (!Number.isSafeInteger(workers) || workers < 0) throw new RangeError('workers must be a non-negative integer');
  return workers === 0 ? inProcessProver(keys) : poolProver(keys, workers);
}

async function inProcessProver(keys: ProvingKeys): Promise<Prover> {
  const engine = await createEngine(keys);
  let closed = false;
  let inFlight = new Set<Promise<unknown>>();
  return {
    workers: 0,
    prove(input) {
      if (closed) return Promise.reject(new ProverClosedError('prover is closed'));
      const p = engine.prove(input);
      inFlight.add(p);
      void p.catch(() => undefined).finally(() => inFlight.delete(p));
      return p;
    },
    async close() {
      closed = true;
      await Promise.allSettled([...inFlight]);
      inFlight = new Set();
      await terminateCurve();
    },
  };
}

/** How a worker is started: from TypeScript sources through a tiny JS entry that registers tsx
 *  in the worker (worker-boot.mjs), or the compiled worker.js next to us. */
function workerURL(): URL {
  return import.meta.url.endsWith('.ts') ? new URL('./worker-boot.mjs', import.meta.url) : new URL('./worker.js', import.meta.url);
}

interface Job {
  readonly id: number;
  readonly input: CircuitInput;
  resolve(r: ProofResult): void;
  reject(e: Error): void;
}

interface Slot {
  readonly worker: Worker;
  job: Job | null;
  exited: boolean;
}

async function poolProver(keys: ProvingKeys, size: number): Promise<Prover> {
  const url = workerURL();
  const queue: Job[] = [];
  const slots: Slot[] = [];
  let nextId = 1;
  let closing = false;
  let respawning = 0;
  const inFlight = new Set<Promise<unknown>>();

  const send = (slot: Slot, m: ToWorker) => slot.worker.postMessage(m);

  const dispatch = () => {
    for (const slot of slots) {
      if (slot.job || slot.exited) continue;
      const job = queue.shift();
      if (!job) return;
      slot.job = job;
      send(slot, { type: 'prove', id: job.id, input: job.input });
    }
  };

  const spawn = (): Promise<Slot> =>
    new Promise((resolve, reject) => {
      // snarkjs's multi-threaded curve cannot start its helper threads from inside a worker thread
      // (its web-worker shim takes any non-main thread for one of its own), and for one proof of
      // this size it is barely faster than one thread: each pool worker computes on its own thread.
      // ffjavascript's web-worker shim runs its worker-side bootstrap in every non-main thread it is
      // imported in and loads `workerData.mod`: give it an empty module rather than an error.
      const workerData = { ...keys, singleThreadCurve: true, mod: 'data:text/javascript,', name: 'meterproof-prover' };
      const worker = new Worker(url, { workerData });
      const slot: Slot = { worker, job: null, exited: false };
      let ready = false;
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          ready = true;
          resolve(slot);
        } else if (m.type === 'failed') {
          reject(new Error(`prover worker failed to start: ${m.message}`));
        } else {
          const job = slot.job;
          if (!job || job.id !== m.id) return;
          slot.job = null;
          if (m.type === 'result') job.resolve(m.result);
          else {
            const err = m.code === 'WITNESS_FAILED' ? new WitnessError(m.message) : new Error(m.message);
            job.reject(err);
          }
          dispatch();
        }
      });
      worker.on('error', (e) => {
        if (!ready) reject(e);
      });
      worker.on('exit', () => {
        slot.exited = true;
        const job = slot.job;
        slot.job = null;
        if (!ready) reject(new Error('prover worker exited during start-up'));
        const i = slots.indexOf(slot);
        if (i >= 0) slots.splice(i, 1);
        job?.reject(new Error('prover worker exited'));
        // an unexpected exit of a worker that had started: replace it (one that never started
        // is reported by its spawn() instead, so a broken set-up cannot loop)
        if (closing || !ready) return;
        respawning++;
        void spawn()
          .then(
            (s) => {
              if (closing) send(s, { type: 'close' });
              else {
                slots.push(s);
                dispatch();
              }
            },
            (e: unknown) => {
              if (slots.length > 0) return;
              for (const j of queue.splice(0)) j.reject(e instanceof Error ? e : new Error(String(e)));
            },
          )
          .finally(() => respawning--);
      });
    });

  const started = await Promise.allSettled(Array.from({ length: size }, () => spawn()));
  for (const s of started) if (s.status === 'fulfilled') slots.push(s.value);
  const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) {
    closing = true;
    await Promise.all(slots.map((s) => s.worker.terminate()));
    throw failure.reason instanceof Error ? failure.reason : new Error(String(failure.reason));
  }

  return {
    workers: size,
    prove(input) {
      if (closing) return Promise.reject(new ProverClosedError('prover is closed'));
      if (slots.length === 0 && respawning === 0) return Promise.reject(new Error('no prover worker is running'));
      const p = new Promise<ProofResult>((resolve, reject) => {
        queue.push({ id: nextId++, input, resolve, reject });
        dispatch();
      });
      inFlight.add(p);
      void p.catch(() => undefined).finally(() => inFlight.delete(p));
      return p;
    },
    async close() {
      if (closing) return;
      closing = true;
      for (const j of queue.splice(0)) j.reject(new ProverClosedError('prover closed before this proof started'));
      // proofs already running finish first
      await Promise.allSettled([...inFlight]);
      await Promise.all(
        slots.map(
          (slot) =>
            new Promise<void>((resolve) => {
              if (slot.exited) return resolve();
              const timer = setTimeout(() => void slot.worker.terminate(), 10_000);
              slot.worker.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
              send(slot, { type: 'close' });
            }),
        ),
      );
    },
  };
}
