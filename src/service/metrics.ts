// Prometheus metrics (prom-client): one registry per process (per app in tests). The hot path
// (attest) records into preallocated arrays and maps keyed by strings it already has, so a
// request costs a few additions and no objects; the registry reads them when scraped. Figures
// kept in the store (proof backlog, log size) are read once per scrape (`refresh`).
// Names follow the Prometheus conventions: `meterproof_` prefix, base units (seconds), `_total`
// for counters; labels have few values (never event or attestation ids).
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Seconds: 50 µs to 10 s, for phases from a cached lookup to a slow statement. */
const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds: proving (about half a second of one core per proof). */
const PROVE_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64];

/** What the registry formats: a value, its labels, and optionally its own name (_bucket, _sum…). */
type Values = { metricName?: string; labels: Record<string, string>; value: number }[];

/** A metric the registry reads through `get()`, filled by code that records without allocating. */
abstract class Custom {
  readonly aggregator = 'sum' as const;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }
  protected abstract values(): Values;
  get(): { name: string; help: string; type: string; values: Values; aggregator: 'sum' } {
    return { name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: this.aggregator };
  }
  reset(): void {}
}

/** A histogram whose label sets are identified by a string key; a set's labels object is built
 *  once, the first time its key is seen. */
export class FastHistogram extends Custom {
  private readonly series = new Map<string, { labels: Record<string, string>; counts: Float64Array; sum: number }>();
  constructor(name: string, help: string, registry: Registry, private readonly bounds: readonly number[] = BUCKETS) {
    super(name, help, 'histogram', registry);
  }
  observe(key: string, labels: (key: string) => Record<string, string>, seconds: number): void {
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { labels: labels(key), counts: new Float64Array(this.bounds.length + 1), sum: 0 }));
    let b = 0;
    while (b < this.bounds.length && seconds > this.bounds[b]!) b++;
    s.counts[b]!++;
    s.sum += seconds;
  }
  protected values(): Values {
    const out: Values = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      for (let b = 0; b <= this.bounds.length; b++) {
        cumulative += s.counts[b]!;
        out.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: b < this.bounds.length ? String(this.bounds[b]) : '+Inf' }, value: cumulative });
      }
      out.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum });
      out.push({ metricName: `${this.name}_count`, labels: s.labels, value: cumulative });
    }
    return out;
  }
}

/** A counter keyed like FastHistogram. */
export class FastCounter extends Custom {
  private readonly series = new Map<string, { labels: Record<string, string>; value: number }>();
  constructor(name: string, help: string, registry: Registry) {
    super(name, help, 'counter', registry);
  }
  inc(key: string, labels: (key: string) => Record<string, string>, n = 1): void {
    const s = this.series.get(key);
    if (s) s.value += n;
    else this.series.set(key, { labels: labels(key), value: n });
  }
  protected values(): Values {
    return [...this.series.values()].map((s) => ({ labels: s.labels, value: s.value }));
  }
}

export const ATTEST_OUTCOMES = ['created', 'replayed', 'rejected', 'failed'] as const;
export type AttestOutcomeLabel = (typeof ATTEST_OUTCOMES)[number];
export const ATTEST_PHASES = ['auth', 'normalize', 'sign', 'store'] as const;
export const VERIFY_PHASES = ['read', 'trust', 'check'] as const;

/** Attestations by tenant and outcome: per tenant an array of counts, one per outcome. */
class AttestationCounter extends Custom {
  private readonly byTenant = new Map<string, Float64Array>();
  constructor(registry: Registry) {
    super('meterproof_attestations_total', 'Attestation requests (events) by tenant and outcome: created, replayed (an exact repeat), rejected (4xx), failed (5xx). tenant is empty when the event was refused before its tenant was established.', 'counter', registry);
  }
  inc(tenant: string, outcome: number): void {
    let c = this.byTenant.get(tenant);
    if (!c) this.byTenant.set(tenant, (c = new Float64Array(ATTEST_OUTCOMES.length)));
    c[outcome]!++;
  }
  protected values(): Values {
    const out: Values = [];
    for (const [tenant, c] of this.byTenant) ATTEST_OUTCOMES.forEach((outcome, i) => c[i] && out.push({ labels: { tenant, outcome }, value: c[i]! }));
    return out;
  }
}

/** What a scrape reads from the store (shared by every process of it). */
export interface StoreFigures {
  readonly proofJobs: { queued: number; running: number; failed: number; oldestAgeSeconds: number | null; deferred: number };
  readonly log: { size: number; checkpointAgeSeconds: number | null; queued: number } | null;
}

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new FastCounter('meterproof_http_requests_total', 'HTTP requests by method, route pattern and status code.', this.registry);
  readonly httpDuration = new FastHistogram('meterproof_http_request_duration_seconds', 'HTTP request duration (until the response is handed to the server) by method and route pattern.', this.registry);
  readonly attestations = new AttestationCounter(this.registry);
  private readonly attestPhases = new FastHistogram(
    'meterproof_attest_phase_seconds',
    'Attest latency by phase: auth (per request), normalize (per request: all its events), sign (per chain group), store (per chain group: waiting for and running the group-commit statement).',
    this.registry,
  );
  private readonly verifyPhases = new FastHistogram('meterproof_verify_phase_seconds', 'POST /v1/verify latency by phase: read (body), trust (trust material), check (the verification).', this.registry);
  private readonly storeStatements = new FastHistogram('meterproof_store_statement_seconds', 'Wall time of the group-commit statements that store attestations (commit included), by result.', this.registry);
  readonly verifications = new Counter({ name: 'meterproof_verifications_total', help: 'POST /v1/verify reports by result: valid, or the code of the first failed check.', labelNames: ['result'], registers: [this.registry] });
  readonly revocationLists = new Counter({ name: 'meterproof_revocation_lists_served_total', help: 'Signed revocation lists served, by endpoint.', labelNames: ['endpoint'], registers: [this.registry] });
  readonly proofs = new Counter({ name: 'meterproof_proofs_total', help: "Proof jobs finished by this process's prover: proved, retry (failed, will be retried), failed (given up).", labelNames: ['outcome'], registers: [this.registry] });
  readonly proveSeconds = new FastHistogram('meterproof_proof_duration_seconds', "Time to prove one attestation in this process's prover (witness, Groth16, signature).", this.registry, PROVE_BUCKETS);
  readonly logLeaves = new Counter({ name: 'meterproof_log_leaves_integrated_total', help: "Leaves integrated into the transparency log by this process's sequencer.", registers: [this.registry] });
  readonly logRoundErrors = new Counter({ name: 'meterproof_log_round_errors_total', help: "Failed integration rounds of this process's sequencer (retried with backoff).", registers: [this.registry] });
  readonly syncWaiters = new Gauge({ name: 'meterproof_sync_waiters', help: 'Requests waiting for a proof or a log receipt (?proof=sync, ?log=sync) in this process.', registers: [this.registry] });
  private readonly proofJobs = new Gauge({ name: 'meterproof_proof_jobs', help: 'Proof jobs in the store by status (queued, running, failed); shared by every process of the store.', labelNames: ['status'], registers: [this.registry] });
  private readonly proofOldest = new Gauge({ name: 'meterproof_proof_queue_oldest_age_seconds', help: 'Age of the oldest queued or running proof job (since it was queued); 0 when none.', registers: [this.registry] });
  private readonly proofDepth = new Gauge({ name: 'meterproof_proof_queue_depth', help: 'Proof jobs queued or running (the queue PROOF_QUEUE_LIMIT bounds); shared by every process of the store.', registers: [this.registry] });
  private readonly proofDeferred = new Gauge({ name: 'meterproof_proof_deferred', help: 'Attestations whose eager proof job was deferred (the queue was at its limit) and is not queued yet.', registers: [this.registry] });
  readonly proofQueueLimit = new Gauge({ name: 'meterproof_proof_queue_limit', help: 'PROOF_QUEUE_LIMIT: at this queue depth new eager proof jobs are deferred.', registers: [this.registry] });
  readonly proofJobsDeferred = new FastCounter('meterproof_proof_jobs_deferred_total', "Eager proof jobs this process deferred because the proof queue was at its limit, by tenant.", this.registry);
  private readonly logSize = new Gauge({ name: 'meterproof_log_size', help: 'Leaves in the newest signed checkpoint of the transparency log.', registers: [this.registry] });
  private readonly logAge = new Gauge({ name: 'meterproof_log_checkpoint_age_seconds', help: 'Seconds since the newest checkpoint was signed (a new one is signed only when there are rows to integrate).', registers: [this.registry] });
  private readonly logQueue = new Gauge({ name: 'meterproof_log_queue_depth', help: 'Attestations acknowledged and waiting to be integrated into the log.', registers: [this.registry] });
  private readonly storeUp = new Gauge({ name: 'meterproof_store_up', help: '1 when the store answered the queries of this scrape, else 0.', registers: [this.registry] });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    // process CPU, memory, event-loop delay, GC: prom-client's standard set, under our prefix
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'meterproof_' });
  }

  attestPhase(phase: 0 | 1 | 2 | 3, seconds: number): void {
    this.attestPhases.observe(ATTEST_PHASES[phase], phaseLabels, seconds);
  }
  verifyPhase(phase: 0 | 1 | 2, seconds: number): void {
    this.verifyPhases.observe(VERIFY_PHASES[phase], phaseLabels, seconds);
  }
  storeStatement(ok: boolean, seconds: number): void {
    this.storeStatements.observe(ok ? 'ok' : 'error', resultLabels, seconds);
  }

  /** Set the store-derived gauges from one read (undefined: the store did not answer). */
  setStoreFigures(f: StoreFigures | undefined): void {
    this.storeUp.set(f ? 1 : 0);
    if (!f) return;
    this.proofJobs.set({ status: 'queued' }, f.proofJobs.queued);
    this.proofJobs.set({ status: 'running' }, f.proofJobs.running);
    this.proofJobs.set({ status: 'failed' }, f.proofJobs.failed);
    this.proofOldest.set(f.proofJobs.oldestAgeSeconds ?? 0);
    this.proofDepth.set(f.proofJobs.queued + f.proofJobs.running);
    this.proofDeferred.set(f.proofJobs.deferred);
    if (f.log) {
      this.logSize.set(f.log.size);
      this.logQueue.set(f.log.queued);
      if (f.log.checkpointAgeSeconds !== null) this.logAge.set(f.log.checkpointAgeSeconds);
    }
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

const phaseLabels = (phase: string) => ({ phase });
const resultLabels = (result: string) => ({ result });

/** Seconds elapsed since `start` (a performance.now() reading). */
export const since = (start: number) => (performance.now() - start) / 1000;
