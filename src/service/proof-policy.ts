// Which attestations are proved at attest time (docs/operations.md, "Proof policies"), and the
// bound on the proof backlog:
// - a tenant's policy (eager | on_demand | sampled at a rate), read through a per-process cache
//   that answers for at most POLICY_CACHE_MS after a change made by another process (a change made
//   here applies at once);
// - the proof queue's depth, read from the store at most every QUEUE_CHECK_MS and counted up
//   locally in between: at PROOF_QUEUE_LIMIT, jobs that would be queued are `deferred` instead;
// - the sweeper, which queues deferred attestations again once the queue is below half the limit.
// The policy is decided per statement (src/core/proof-policy.ts) inside the chain writer, once the
// statement digest is known. A plan's policy, once plans exist, overrides the tenant's
// (effectivePolicy): `decider()` is where it is looked up.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { EAGER, ProofPolicyInput, effectivePolicy, initialProofStatus, type InitialProofStatus, type ProofPolicy } from '../core/proof-policy.ts';
import { type Db, schema } from '../db/index.ts';
import { ServiceError, invalidInput } from './errors.ts';
import type { Metrics, StoreFigures } from './metrics.ts';
import type { ProofQueue } from './proofs.ts';
import { tenantView } from './tariffs.ts';

/** Longest a process keeps using a tenant's policy after another process changed it. */
export const POLICY_CACHE_MS = 2000;
/** Longest between two reads of the queue depth from the store (per process). */
export const QUEUE_CHECK_MS = 1000;
export const DEFAULT_PROOF_QUEUE_LIMIT = 10_000;
/** The sweeper's period, and the most it queues per round. */
export const SWEEP_MS = 1000;
const SWEEP_BATCH = 1000;

/** Decides a new statement's stored proof status from its digest (called by the chain writer). */
export type ProofDecider = (statementDigest: string) => InitialProofStatus;

export interface ProofPolicyOptions {
  readonly secret: Uint8Array;
  readonly queueLimit?: number;
  readonly policyCacheMs?: number;
  readonly queueCheckMs?: number;
  readonly metrics?: Metrics;
}

export const policyOfRow = (r: { proofPolicy: string; proofSampleRate: number | null }): ProofPolicy =>
  r.proofPolicy === 'sampled' ? { policy: 'sampled', rate: r.proofSampleRate ?? 0 } : r.proofPolicy === 'on_demand' ? { policy: 'on_demand' } : EAGER;

export class ProofPolicyService {
  readonly queueLimit: number;
  private readonly cacheMs: number;
  private readonly checkMs: number;
  private readonly cache = new Map<string, { at: number; decide: ProofDecider }>();
  private readonly reads = new Map<string, Promise<ProofDecider>>();
  /** Raised by every change made here: a read that began before one is not cached. */
  private changes = 0;
  /** The queue depth as last read, plus the jobs this process queued since. */
  private depth = 0;
  private depthAt = -Infinity;
  private depthRead: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    private readonly queue: ProofQueue,
    private readonly opts: ProofPolicyOptions,
  ) {
    this.queueLimit = opts.queueLimit ?? DEFAULT_PROOF_QUEUE_LIMIT;
    this.cacheMs = opts.policyCacheMs ?? POLICY_CACHE_MS;
    this.checkMs = opts.queueCheckMs ?? QUEUE_CHECK_MS;
    opts.metrics?.proofQueueLimit.set(this.queueLimit);
  }

  /** PUT /v1/admin/tenants/{id}/proof-policy: 404 for an unknown tenant, 400 for a bad policy. */
  async set(tenantId: string, body: unknown) {
    const r = ProofPolicyInput.safeParse(body);
    if (!r.success) throw invalidInput(r.error, 'INVALID_PROOF_POLICY', 'expected {policy: "eager" | "on_demand"} or {policy: "sampled", rate: 0 < rate ≤ 1}', '');
    const p = r.data;
    const rows = await this.db
      .update(schema.tenants)
      .set({ proofPolicy: p.policy, proofSampleRate: p.policy === 'sampled' ? p.rate : null, proofPolicyUpdatedAt: new Date() })
      .where(eq(schema.tenants.id, tenantId))
      .returning();
    if (!rows.length) throw new ServiceError(404, 'NOT_FOUND', 'tenant not found');
    this.changes++;
    this.cache.delete(tenantId);
    this.reads.delete(tenantId);
    return tenantView(rows[0]!);
  }

  /** The decider for a tenant's new statements (cached; see POLICY_CACHE_MS). */
  decider(tenantId: string): ProofDecider | Promise<ProofDecider> {
    const hit = this.cache.get(tenantId);
    if (hit && Date.now() - hit.at < this.cacheMs) return hit.decide;
    let read = this.reads.get(tenantId);
    if (!read) {
      read = this.read(tenantId).finally(() => this.reads.delete(tenantId));
      this.reads.set(tenantId, read);
    }
    return read;
  }

  private async read(tenantId: string): Promise<ProofDecider> {
    const started = Date.now();
    const changes = this.changes;
    const [row] = await this.db
      .select({ proofPolicy: schema.tenants.proofPolicy, proofSampleRate: schema.tenants.proofSampleRate })
      .from(schema.tenants)
      .where(eq(schema.tenants.id, tenantId));
    // a plan's policy, once plans exist, is passed here as effectivePolicy's second argument
    const policy = effectivePolicy(row ? policyOfRow(row) : undefined);
    const decide: ProofDecider = policy.policy === 'on_demand' ? () => 'on_demand' : (digest) => initialProofStatus(policy, digest, this.opts.secret, this.queueFull());
    if (changes === this.changes) this.cache.set(tenantId, { at: started, decide });
    return decide;
  }

  /** Whether new eager jobs are deferred now: the queue (as last read, plus what this process
   *  queued since) has reached the limit. Starts a new read of the depth when the last is stale. */
  queueFull(): boolean {
    if (Date.now() - this.depthAt >= this.checkMs) this.refreshDepth();
    return this.depth >= this.queueLimit;
  }

  /** Read the queue depth now (one read at a time); the sweeper and tests await it. */
  refreshDepth(): Promise<void> {
    this.depthRead ??= this.queue
      .depth()
      .then((n) => {
        this.depth = n;
        this.depthAt = Date.now();
      })
      .catch(() => undefined) // the store is unreachable: keep the last figure; attest fails anyway
      .finally(() => (this.depthRead = null));
    return this.depthRead;
  }

  /** After a write: `queued` jobs this process added to the queue; deferred ones counted by tenant. */
  noteWritten(tenantId: string, queued: number, deferred: number): void {
    this.depth += queued;
    if (deferred) this.opts.metrics?.proofJobsDeferred.inc(tenantId, tenantLabels, deferred);
  }

  /** One sweeper round: when the queue is below half the limit, queue deferred attestations (at
   *  most up to half the limit, SWEEP_BATCH per round). Returns how many were queued. */
  async sweep(): Promise<number> {
    const depth = await this.queue.depth();
    this.depth = depth;
    this.depthAt = Date.now();
    const room = Math.floor(this.queueLimit / 2) - depth;
    if (room <= 0) return 0;
    const n = await this.queue.requeueDeferred(Math.min(room, SWEEP_BATCH));
    this.depth += n;
    return n;
  }

  /** The sweeper loop; `stop()` waits for the round in progress. `onQueued` nudges a local worker. */
  startSweeper(opts: { intervalMs?: number; onQueued?: (n: number) => void; onError?: (e: unknown) => void } = {}) {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let wake: (() => void) | undefined;
    const loop = (async () => {
      while (!stopped) {
        try {
          const n = await this.sweep();
          if (n) opts.onQueued?.(n);
        } catch (e) {
          opts.onError?.(e);
        }
        if (stopped) break;
        await new Promise<void>((r) => {
          wake = r;
          timer = setTimeout(r, opts.intervalMs ?? SWEEP_MS);
        });
      }
    })();
    return {
      async stop() {
        stopped = true;
        clearTimeout(timer);
        wake?.();
        await loop;
      },
    };
  }
}

const tenantLabels = (tenant: string) => ({ tenant });

/** The proof backlog as GET /v1/status shows it. */
export function proofQueueView(f: StoreFigures, limit: number) {
  const depth = f.proofJobs.queued + f.proofJobs.running;
  return { depth, limit, full: depth >= limit, oldest_age_seconds: f.proofJobs.oldestAgeSeconds, deferred: f.proofJobs.deferred };
}

/** At least 32 characters: the sampling secret from METERPROOF_SAMPLING_SECRET. */
export const MIN_SAMPLING_SECRET = 32;

/** The sampling secret: `fromEnv` when given, else DATA_DIR/keys/sampling.key (created once with
 *  32 random bytes, mode 0600). Every API process of a store should use the same one, so that
 *  whoever holds it can recompute which events were proved at attest time. */
export function loadOrCreateSamplingSecret(keysDir: string, fromEnv?: string): Uint8Array {
  if (fromEnv !== undefined) return Buffer.from(fromEnv, 'utf8');
  const file = path.join(keysDir, 'sampling.key');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(keysDir, { recursive: true, mode: 0o700 });
    try {
      fs.writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  const text = fs.readFileSync(file, 'utf8').trim();
  if (text.length < MIN_SAMPLING_SECRET) throw new Error(`the sampling secret in ${file} is shorter than ${MIN_SAMPLING_SECRET} characters`);
  return Buffer.from(text, 'utf8');
}
