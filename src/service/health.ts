// Readiness (GET /ready) and the store figures a metrics scrape reads (GET /metrics).
import { sql } from 'drizzle-orm';
import { type Db, pendingMigrations, rowsOf } from '../db/index.ts';
import type { KeyRing } from './keyring.ts';
import type { StoreFigures } from './metrics.ts';

/** Longest a readiness check or a scrape's store read may take before it counts as failed. */
export const CHECK_TIMEOUT_MS = 2000;

export type CheckResult = 'ok' | string;

/** What the process itself knows about its state (serve.ts fills it in). */
export interface ProcessState {
  /** The log sequencer's loop is running (null: this process runs none). */
  sequencerRunning(): boolean | null;
  /** SIGTERM/SIGINT received: stop taking traffic. */
  draining(): boolean;
}

function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Each readiness check: `ok`, or why not. */
export async function readiness(db: Db, keys: KeyRing, state: ProcessState | undefined): Promise<Record<string, CheckResult>> {
  const checks: Record<string, CheckResult> = {};
  const [migrations, key] = await Promise.allSettled([bounded(pendingMigrations(db), 'the store'), bounded(keys.current(), 'the key ring')]);
  if (migrations.status === 'rejected') {
    checks['store'] = 'unreachable';
    checks['migrations'] = 'unknown';
  } else {
    checks['store'] = 'ok';
    checks['migrations'] = migrations.value === 0 ? 'ok' : `${migrations.value} pending`;
  }
  checks['keys'] = key.status === 'fulfilled' ? 'ok' : 'unavailable';
  const seq = state?.sequencerRunning() ?? null;
  if (seq !== null) checks['sequencer'] = seq ? 'ok' : 'stopped';
  if (state?.draining()) checks['process'] = 'shutting down';
  return checks;
}

/** Proof backlog and log figures, in one statement. */
export async function storeFigures(db: Db): Promise<StoreFigures> {
  const [r] = rowsOf<Record<string, string | number | null>>(
    await bounded(
      db.execute(sql`select
        (select count(*) from proof_jobs where status = 'queued') as queued,
        (select count(*) from proof_jobs where status = 'running') as running,
        (select count(*) from proof_jobs where status = 'failed') as failed,
        (select extract(epoch from now() - min(queued_at)) from proof_jobs where status in ('queued', 'running')) as oldest,
        (select count(*) from attestations where proof_status = 'deferred') as deferred,
        (select tree_size from log_checkpoints order by tree_size desc limit 1) as log_size,
        (select extract(epoch from now() - created_at) from log_checkpoints order by tree_size desc limit 1) as log_age,
        (select count(*) from log_queue) as log_queued`),
      'the store',
    ),
  );
  const num = (v: string | number | null | undefined) => (v === null || v === undefined ? null : Number(v));
  return {
    proofJobs: { queued: num(r?.['queued']) ?? 0, running: num(r?.['running']) ?? 0, failed: num(r?.['failed']) ?? 0, oldestAgeSeconds: num(r?.['oldest']), deferred: num(r?.['deferred']) ?? 0 },
    log: { size: num(r?.['log_size']) ?? 0, checkpointAgeSeconds: num(r?.['log_age']), queued: num(r?.['log_queued']) ?? 0 },
  };
}
