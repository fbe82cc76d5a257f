// Asynchronous proofs: one job row per attestation, claimed by workers with FOR UPDATE SKIP LOCKED,
// retried with exponential backoff (never dropped). The proof and its signed proof statement are
// an additive part of the bundle (docs/protocol.md §2.8): the statement signed at attest time never changes.
import { hostname } from 'node:os';
import { eq, inArray, sql } from 'drizzle-orm';
import type { BillingProof, FullBundle } from '../core/schemas.ts';
import { type Db, rowsOf, schema } from '../db/index.ts';
import { PROOF_CHANNEL, type Notifier } from '../db/notify.ts';
import { type Metrics, since } from './metrics.ts';
import { describeStoreError, isStoreError } from '../db/faults.ts';
import { enqueueWebhook } from './webhooks.ts';
import { pauser } from './pause.ts';

export const MAX_ATTEMPTS = 12;

/** Turns a stored attestation into its billing proof (commitments, Groth16 proof, signature). */
export type ProveFn = (args: { bundle: FullBundle; blinding: bigint; statementDigest: string }) => Promise<BillingProof>;

/** The `data` of a proof.ready / proof.failed webhook: where to fetch the bundle. */
function proofEventData(id: string, statementDigest: string, status: 'proved' | 'failed') {
  return { attestation_id: id, statement_digest: statementDigest, proof_status: status, bundle_url: `/v1/attestations/${id}` };
}

export function backoffMs(attempts: number): number {
  return Math.min(60_000, 250 * 2 ** Math.max(0, attempts - 1));
}

export class ProofQueue {
  /** `notifier` announces each finished job (proved, or failed for good) to waiting requests in
   *  every process of the store. */
  constructor(
    private readonly db: Db,
    private readonly notifier?: Notifier,
  ) {}

  /** Never throws: the job's state is committed already; a waiter that misses the announcement
   *  re-reads after its safety timeout. */
  private async announce(id: string): Promise<void> {
    await this.notifier?.notify(PROOF_CHANNEL, id).catch(() => undefined);
  }

  /** Claim up to `n` ready jobs; claimed jobs are `running`. One statement (the ready rows are
   *  locked, skipping those another worker holds, and updated): the worker polls it every 100 ms
   *  when idle, where a transaction of three statements cost three times the CPU. A running job
   *  whose worker died becomes ready again when its lease (run_after) expires. */
  async claim(n: number, workerId: string, now = new Date()): Promise<string[]> {
    const j = schema.proofJobs;
    const at = now.toISOString();
    const lease = new Date(now.getTime() + 120_000).toISOString();
    const rows = rowsOf<{ id: string }>(
      await this.db.execute(sql`with ready as (
          select ${j.attestationId} as id from ${j}
          where ${j.status} in ('queued', 'running') and ${j.runAfter} <= ${at}::timestamptz
          order by ${j.runAfter} limit ${n} for update skip locked
        )
        update ${j} set status = 'running', locked_by = ${workerId}, locked_at = ${at}::timestamptz, attempts = ${j.attempts} + 1, run_after = ${lease}::timestamptz
        from ready where ${j.attestationId} = ready.id
        returning ready.id`),
    );
    return rows.map((r) => r.id);
  }

  async complete(id: string, proof: BillingProof): Promise<void> {
    await this.db.transaction(async (tx) => {
      const a = schema.attestations;
      const [row] = await tx.select({ bundle: a.bundle, tenantId: a.tenantId, statementDigest: a.statementDigest }).from(a).where(eq(a.id, id)).for('update');
      if (!row) return;
      const bundle = row.bundle as FullBundle;
      const updated: FullBundle = { ...bundle, attestation: { ...bundle.attestation, proof_status: 'proved', billing_proof: proof } };
      await tx.update(a).set({ bundle: updated, proofStatus: 'proved' }).where(eq(a.id, id));
      await tx.update(schema.proofJobs).set({ status: 'done', lastError: null }).where(eq(schema.proofJobs.attestationId, id));
      await enqueueWebhook(tx, 'proof.ready', row.tenantId, proofEventData(id, row.statementDigest, 'proved'));
    });
    await this.announce(id);
  }

  /** Record a failed attempt; true when the job has failed for good. */
  async fail(id: string, error: string, now = new Date()): Promise<boolean> {
    const j = schema.proofJobs;
    const [job] = await this.db.select().from(j).where(eq(j.attestationId, id));
    if (!job) return false;
    const final = job.attempts >= MAX_ATTEMPTS;
    await this.db
      .update(j)
      .set({ status: final ? 'failed' : 'queued', lastError: error.slice(0, 2000), runAfter: new Date(now.getTime() + backoffMs(job.attempts)) })
      .where(eq(j.attestationId, id));
    if (final) {
      await this.db.transaction(async (tx) => {
        const a = schema.attestations;
        const [row] = await tx.select({ bundle: a.bundle, tenantId: a.tenantId, statementDigest: a.statementDigest }).from(a).where(eq(a.id, id)).for('update');
        if (!row) return;
        const b = row.bundle as FullBundle;
        await tx.update(a).set({ proofStatus: 'failed', bundle: { ...b, attestation: { ...b.attestation, proof_status: 'failed' } } }).where(eq(a.id, id));
        await enqueueWebhook(tx, 'proof.failed', row.tenantId, proofEventData(id, row.statementDigest, 'failed'));
      });
      await this.announce(id);
    }
    return final;
  }

  /** Put failed jobs back in the queue (admin action after fixing the cause). */
  async requeueFailed(): Promise<number> {
    const j = schema.proofJobs;
    const rows = await this.db.update(j).set({ status: 'queued', attempts: 0, runAfter: new Date() }).where(eq(j.status, 'failed')).returning({ id: j.attestationId });
    if (rows.length) await this.db.update(schema.attestations).set({ proofStatus: 'pending' }).where(inArray(schema.attestations.id, rows.map((r) => r.id)));
    return rows.length;
  }

  /**
   * Make sure each of `ids` is being proved, or is proved: an attestation without a job
   * (`on_demand`, `deferred`) gets one, ahead of the queue (run_after = the epoch, so workers
   * claim it before the eager backlog), and a job still queued moves ahead too. Returns each
   * known id's proof status afterwards (`pending`, `proved` or `failed`); unknown ids are absent.
   * One statement. Proving on demand (`?proof=sync`, POST /v1/attestations/{id}/prove) and the
   * evidence export and settlement to come call this.
   */
  async ensureProofs(ids: readonly string[]): Promise<Map<string, string>> {
    if (!ids.length) return new Map();
    const list = JSON.stringify([...new Set(ids)]);
    const rows = rowsOf<{ id: string; proof_status: string }>(
      await this.db.execute(sql`
        with ids as (select jsonb_array_elements_text(${list}::jsonb) as id),
        d as (
          update attestations set proof_status = 'pending'
          where id in (select id from ids) and proof_status in ('on_demand', 'deferred')
          returning id
        ), j as (
          insert into proof_jobs (attestation_id, status, run_after) select id, 'queued', 'epoch'::timestamptz from d
          on conflict (attestation_id) do update set status = 'queued', attempts = 0, run_after = excluded.run_after, queued_at = now()
        ), b as (
          update proof_jobs set run_after = 'epoch'::timestamptz
          where attestation_id in (select id from ids) and status = 'queued' and attestation_id not in (select id from d)
        )
        select a.id, case when d.id is null then a.proof_status else 'pending' end as proof_status
        from attestations a left join d on d.id = a.id where a.id in (select id from ids)`),
    );
    return new Map(rows.map((r) => [r.id, r.proof_status]));
  }

  /** Queue up to `max` deferred attestations, oldest first (the sweeper, when the queue has room).
   *  Concurrent sweepers skip each other's rows. Returns how many were queued. */
  async requeueDeferred(max: number): Promise<number> {
    if (max <= 0) return 0;
    const [r] = rowsOf<{ n: string | number }>(
      await this.db.execute(sql`
        with d as (
          select id from attestations where proof_status = 'deferred' order by cursor limit ${Math.floor(max)} for update skip locked
        ), u as (
          update attestations a set proof_status = 'pending' from d where a.id = d.id returning a.id
        ), j as (
          insert into proof_jobs (attestation_id, status) select id, 'queued' from u
          on conflict (attestation_id) do update set status = 'queued', attempts = 0, run_after = now(), queued_at = now()
        )
        select count(*) as n from u`),
    );
    return Number(r?.n ?? 0);
  }

  /** Jobs waiting or being proved (the queue PROOF_QUEUE_LIMIT bounds). */
  async depth(): Promise<number> {
    const [r] = rowsOf<{ n: string | number }>(await this.db.execute(sql`select count(*) as n from proof_jobs where status in ('queued', 'running')`));
    return Number(r?.n ?? 0);
  }

  async counts(): Promise<Record<string, number>> {
    const rows = await this.db
      .select({ status: schema.proofJobs.status, n: sql<number>`count(*)::int` })
      .from(schema.proofJobs)
      .groupBy(schema.proofJobs.status);
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }
}

export interface WorkerOptions {
  readonly concurrency?: number;
  readonly pollMs?: number;
  readonly id?: string;
  readonly onError?: (e: unknown) => void;
  readonly metrics?: Metrics;
}

const noLabels = () => ({});

/** A worker loop: claims jobs, proves them, stores the result. `stop()` waits for in-flight work. */
export function startProofWorker(db: Db, queue: ProofQueue, prove: ProveFn, opts: WorkerOptions = {}) {
  const id = opts.id ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const concurrency = opts.concurrency ?? 1;
  const pollMs = opts.pollMs ?? 100;
  let stopped = false;
  let failures = 0;
  const { pause, wake } = pauser();
  const loop = async () => {
    while (!stopped) {
      let rows: (typeof schema.attestations.$inferSelect)[] = [];
      try {
        const ids = await queue.claim(concurrency, id);
        if (ids.length) rows = await db.select().from(schema.attestations).where(inArray(schema.attestations.id, ids));
        failures = 0;
      } catch (e) {
        // the store is down or slow: back off (up to 5 s) and try again; claimed jobs not read
        // here are claimed again when their lease ends
        failures++;
        opts.onError?.(e);
        await pause(Math.min(5000, pollMs * 2 ** failures));
        continue;
      }
      if (!rows.length) {
        await pause(pollMs);
        continue;
      }
      await Promise.all(
        rows.map(async (row) => {
          const started = performance.now();
          try {
            const proof = await prove({ bundle: row.bundle as FullBundle, blinding: BigInt(row.blinding), statementDigest: row.statementDigest });
            opts.metrics?.proveSeconds.observe('', noLabels, since(started));
            await queue.complete(row.id, proof);
            opts.metrics?.proofs.inc({ outcome: 'proved' });
          } catch (e) {
            opts.onError?.(e);
            // a store error's text can hold the statement and its parameters: its SQLSTATE only
            const reason = isStoreError(e) ? describeStoreError(e) : e instanceof Error ? e.message : String(e);
            const final = await queue.fail(row.id, reason).catch((f: unknown) => void opts.onError?.(f));
            opts.metrics?.proofs.inc({ outcome: final ? 'failed' : 'retry' });
          }
        }),
      );
    }
  };
  const running = loop();
  return {
    id,
    /** Nudge the worker to poll now (after an attest in this process). */
    poke: wake,
    async stop() {
      stopped = true;
      wake();
      await running;
    },
  };
}
