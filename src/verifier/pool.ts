// Bulk verification spread over worker threads: the bundles are cut into chunks, each chunk is
// verified by one worker with verifyBatch (every check per bundle, one batched pairing check per
// chunk), and the reports come back in the order of the bundles. Workers start on first use and
// hold the process open only while they have work; `close()` stops them.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { VerificationReport } from '../core/schemas.ts';
import { type BatchItem, type BatchOptions, verifyBatch } from './batch.ts';
import type { FromVerifyWorker, ToVerifyWorker } from './protocol.ts';

export interface VerifyPool {
  /** Reports for `items`, in order: the same as verifying each alone with verify / verifyJson. */
  verifyMany(items: readonly BatchItem[], trust: unknown, opts?: BatchOptions): Promise<VerificationReport[]>;
  /** Worker threads (0: verified on the calling thread). */
  readonly threads: number;
  close(): Promise<void>;
}

export interface VerifyPoolOptions {
  /** Worker threads (default: the available cores); 0 verifies on the calling thread. */
  readonly threads?: number;
  /** Most bundles per chunk (default 128): large enough to share a final exponentiation, small
   *  enough to spread a large request over every worker. */
  readonly maxChunk?: number;
}

export class VerifyPoolClosedError extends Error {
  override readonly name = 'VerifyPoolClosedError';
  readonly code = 'VERIFIER_CLOSED';
}

/** From TypeScript sources a tiny JS entry registers tsx in the worker; compiled, worker.js. */
function workerURL(): URL {
  return import.meta.url.endsWith('.ts') ? new URL('./worker-boot.mjs', import.meta.url) : new URL('./worker.js', import.meta.url);
}

interface Job {
  readonly id: number;
  readonly message: ToVerifyWorker & { type: 'verify' };
  resolve(r: VerificationReport[]): void;
  reject(e: Error): void;
}

interface Slot {
  readonly worker: Worker;
  job: Job | null;
}

export function createVerifyPool(opts: VerifyPoolOptions = {}): VerifyPool {
  const threads = opts.threads ?? os.availableParallelism();
  const maxChunk = opts.maxChunk ?? 128;
  if (!Number.isSafeInteger(threads) || threads < 0) throw new RangeError('threads must be a non-negative integer');
  if (!Number.isSafeInteger(maxChunk) || maxChunk < 1) throw new RangeError('maxChunk must be a positive integer');
  let closed = false;
  if (threads === 0) {
    return {
      threads,
      verifyMany: (items, trust, o) => (closed ? Promise.reject(new VerifyPoolClosedError('the verifier pool is closed')) : verifyBatch(items, trust, o)),
      async close() {
        closed = true;
      },
    };
  }

  const queue: Job[] = [];
  const slots: Slot[] = [];
  let starting: Promise<void> | null = null;
  let nextId = 1;

  const dispatch = () => {
    for (const slot of slots) {
      if (slot.job) continue;
      const job = queue.shift();
      if (!job) break;
      try {
        // cloning can fail (a value nested too deep for the structured clone): the job fails,
        // and the slot stays free for the next one
        slot.worker.postMessage(job.message);
      } catch (e) {
        job.reject(e instanceof Error ? e : new Error(String(e)));
        continue;
      }
      slot.job = job;
      slot.worker.ref(); // busy: the process waits for its answer
    }
  };

  const spawn = () =>
    new Promise<Slot>((resolve, reject) => {
      // ffjavascript's web-worker shim runs its worker-side bootstrap in every non-main thread it
      // is imported in and loads `workerData.mod`: an empty module (as for the prover's workers)
      const worker = new Worker(workerURL(), { workerData: { mod: 'data:text/javascript,', name: 'meterproof-verifier' } });
      const slot: Slot = { worker, job: null };
      let ready = false;
      worker.on('message', (m: FromVerifyWorker) => {
        if (m.type === 'ready') {
          ready = true;
          worker.unref();
          return resolve(slot);
        }
        if (m.type === 'failed') return reject(new Error(`verifier worker failed to start: ${m.message}`));
        const job = slot.job;
        if (!job || job.id !== m.id) return;
        slot.job = null;
        worker.unref(); // idle: it does not keep the process alive
        if (m.type === 'result') job.resolve(m.reports);
        else job.reject(new Error(`verifier worker: ${m.message}`));
        dispatch();
      });
      worker.on('error', (e) => {
        if (!ready) reject(e);
      });
      worker.on('exit', () => {
        if (!ready) reject(new Error('verifier worker exited during start-up'));
        const i = slots.indexOf(slot);
        if (i >= 0) slots.splice(i, 1); // the next verifyMany starts a replacement
        slot.job?.reject(new Error('verifier worker exited'));
        slot.job = null;
      });
    });

  /** Start workers up to `threads` (again after one has exited). */
  const ensureWorkers = (): Promise<void> => {
    starting ??= (async () => {
      const started = await Promise.allSettled(Array.from({ length: threads - slots.length }, spawn));
      for (const s of started) if (s.status === 'fulfilled') slots.push(s.value);
      const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed && slots.length === 0) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
    })().finally(() => (starting = null));
    return starting;
  };

  const run = (items: readonly BatchItem[], trust: unknown, o: BatchOptions) =>
    new Promise<VerificationReport[]>((resolve, reject) => {
      const id = nextId++;
      queue.push({ id, message: { type: 'verify', id, items, trust, opts: o }, resolve, reject });
      dispatch();
    });

  return {
    threads,
    async verifyMany(items, trust, o = {}) {
      if (closed) throw new VerifyPoolClosedError('the verifier pool is closed');
      if (items.length === 0) return [];
      if (slots.length < threads) await ensureWorkers();
      if (closed) throw new VerifyPoolClosedError('the verifier pool is closed');
      // as many chunks as workers, each at most maxChunk bundles
      const size = Math.min(maxChunk, Math.ceil(items.length / threads));
      const chunks: Promise<VerificationReport[]>[] = [];
      for (let i = 0; i < items.length; i += size) chunks.push(run(items.slice(i, i + size), trust, o));
      return (await Promise.all(chunks)).flat();
    },
    async close() {
      if (closed) return;
      closed = true;
      await starting?.catch(() => undefined);
      for (const j of queue.splice(0)) j.reject(new VerifyPoolClosedError('the verifier pool closed before this chunk started'));
      await Promise.all(
        slots.map(
          (slot) =>
            new Promise<void>((resolve) => {
              slot.worker.once('exit', () => resolve());
              slot.worker.ref();
              slot.worker.postMessage({ type: 'close' } satisfies ToVerifyWorker);
              setTimeout(() => void slot.worker.terminate(), 10_000).unref();
            }),
        ),
      );
    },
  };
}
