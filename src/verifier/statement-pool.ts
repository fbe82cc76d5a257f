// Checking attested statements on several threads: a settlement's evidence (or a settlement run)
// holds up to millions of statements, and the Ed25519 check of each is most of the cost. Chunks
// of statements (JSON text) go to worker threads, each answering checkSignedStatement's result
// per statement; `check` resolves in the order chunks were given. threads 0 checks on the
// calling thread. The caller feeds the results, in order, to SettlementEvidenceVerifier.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { JsonTextError, parseJsonStrict } from '../core/json.ts';
import { Jwks, type PublicJwk } from '../core/keys.ts';
import { type CheckedStatement, checkSignedStatement } from '../core/settlement-verify.ts';

export type ToStatementWorker = { type: 'keys'; jwks: unknown } | { type: 'check'; id: number; texts: string[]; first: number; pick?: boolean } | { type: 'close' };
export type FromStatementWorker = { type: 'ready' } | { type: 'result'; id: number; results: CheckedStatement[] };

export interface StatementPool {
  /** The results for `texts` (statement `first` onwards, for the messages), in order. `pick`:
   *  each text is an object holding {statement, key_id, signature} among other members (a
   *  stored bundle's `attestation`); only those three are checked. */
  check(texts: string[], first: number, pick?: boolean): Promise<CheckedStatement[]>;
  readonly threads: number;
  close(): Promise<void>;
}

function workerURL(): URL {
  return import.meta.url.endsWith('.ts') ? new URL('./statement-worker-boot.mjs', import.meta.url) : new URL('./statement-worker.js', import.meta.url);
}

/** checkSignedStatement over JSON texts (what a worker runs). */
export function checkTexts(jwks: ReadonlyMap<string, PublicJwk>, texts: string[], first: number, pick = false): CheckedStatement[] {
  return texts.map((text, i) => {
    try {
      const v = parseJsonStrict(text) as { statement?: unknown; key_id?: unknown; signature?: unknown };
      return checkSignedStatement(jwks, pick && v && typeof v === 'object' ? { statement: v.statement, key_id: v.key_id, signature: v.signature } : v, first + i);
    } catch (e) {
      return { failure: { code: e instanceof JsonTextError ? e.code : 'INVALID_JSON', message: `attestations[${first + i}]: ${e instanceof Error ? e.message : String(e)}` } };
    }
  });
}

export interface StatementPoolOptions {
  /** Each worker's young generation (MiB; V8's default when absent). V8's default lets a
   *  worker's heap grow by ~50 MiB of short-lived chunk texts and statements before collecting
   *  them. The server's settlement runs use 4: same CPU time, ~90 MiB less peak RSS for a
   *  million-event run (`npm run bench:settle`); the CLI keeps the default, ~15% faster there. */
  readonly youngGenerationMb?: number;
}

/** `jwks`: the trust material's JWKS ({keys: [...]}). `threads` default: the available cores. */
export function createStatementPool(jwks: unknown, threads = os.availableParallelism(), options: StatementPoolOptions = {}): StatementPool {
  const keys = new Map(Jwks.parse(jwks).keys.map((k) => [k.kid, k]));
  if (threads <= 0) return { threads: 0, check: async (texts, first, pick) => checkTexts(keys, texts, first, pick), close: async () => undefined };
  const workers = Array.from({ length: threads }, () => new Worker(workerURL(), options.youngGenerationMb ? { resourceLimits: { maxYoungGenerationSizeMb: options.youngGenerationMb } } : {}));
  const waiting = new Map<number, { resolve(r: CheckedStatement[]): void; reject(e: Error): void }>();
  const load = workers.map(() => 0);
  let nextId = 1;
  let broken: Error | null = null;
  workers.forEach((w, i) => {
    w.postMessage({ type: 'keys', jwks } satisfies ToStatementWorker);
    w.on('message', (m: FromStatementWorker) => {
      if (m.type !== 'result') return;
      load[i]!--;
      const p = waiting.get(m.id);
      waiting.delete(m.id);
      p?.resolve(m.results);
    });
    w.on('error', (e) => {
      broken = e;
      for (const p of waiting.values()) p.reject(e);
      waiting.clear();
    });
  });
  return {
    threads,
    check(texts, first, pick) {
      if (broken) return Promise.reject(broken);
      const id = nextId++;
      const i = load.indexOf(Math.min(...load));
      load[i]!++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        workers[i]!.postMessage({ type: 'check', id, texts, first, ...(pick ? { pick } : {}) } satisfies ToStatementWorker);
      });
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
