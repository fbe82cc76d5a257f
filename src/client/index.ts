// meterproof/client: a typed HTTP client for the meterproof API. Only `fetch` at run time (Node 20
// or a browser); the types come from the protocol schemas. Calls that are safe to repeat — attest
// (idempotent on tenant and event_id), reads, verification — are retried with exponential backoff
// and jitter on 503, 429 and network failures, honouring Retry-After. Errors are typed: a
// problem+json answer becomes a MeterproofProblem carrying its stable `code`.
import type { CloudEventInput as CloudEventSchemaInput, FullBundle, MeterEventInput as MeterEventSchemaInput, TariffSnapshotInput as TariffSchemaInput, VerificationReport } from '../core/schemas.ts';
import type { TrustMaterial } from '../core/trust.ts';

export type { FullBundle, VerificationReport, TrustMaterial };

/** Keys whose value may be undefined become optional (fields with a server-side default). */
type Loose<T> = T extends unknown ? { [K in keyof T as undefined extends T[K] ? K : never]?: T[K] } & { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } : never;
/** A meter event as a sender writes it: numbers or decimal strings, `outcome` defaults to success. */
export type MeterEventInput = Loose<MeterEventSchemaInput>;
export type CloudEventInput = Loose<CloudEventSchemaInput>;
/** A tariff snapshot as a publisher writes it (defaults filled in by the server). */
export type TariffSnapshotInput = Loose<TariffSchemaInput>;

/** One attest request: an event with an inline tariff, a published tariff reference, or neither
 *  (the tenant's default tariff for the meter). */
export interface AttestBody {
  readonly meter_event: MeterEventInput | CloudEventInput;
  readonly tariff_snapshot?: TariffSnapshotInput;
  readonly tariff?: { readonly tariff_id: string; readonly tariff_version: string };
}

/** The answer under `Prefer: return=minimal`. */
export interface MinimalAttestation {
  readonly id: string;
  readonly statement_digest: string;
  readonly charge_micros: string;
  readonly proof_status: string;
}

export interface Attested<B = FullBundle> {
  /** true: a new attestation (201); false: an exact replay of an earlier one (200). */
  readonly created: boolean;
  readonly id: string;
  readonly proofStatus: string;
  readonly bundle: B;
}

/** An RFC 9457 problem answered by the API. `code` is stable; switch on it. */
export class MeterproofProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly errors: readonly { path: string; message: string }[] = [],
    /** Seconds the server asked to wait (Retry-After), when it said. */
    readonly retryAfter?: number,
  ) {
    super(`${status} ${code}: ${detail}`);
    this.name = 'MeterproofProblem';
  }
}

/** The request did not get an answer (connection refused or reset, timeout). */
export class MeterproofNetworkError extends Error {
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'MeterproofNetworkError';
  }
}

export interface RetryPolicy {
  /** Attempts after the first (default 5). */
  readonly retries?: number;
  /** First backoff (default 200 ms), doubled each time, with full jitter. */
  readonly baseMs?: number;
  /** Longest wait between attempts (default 10 s); also caps Retry-After. */
  readonly maxMs?: number;
}

export interface ClientOptions {
  /** e.g. `http://127.0.0.1:8088` */
  readonly baseUrl: string;
  /** An API key secret or the admin token. */
  readonly apiKey?: string;
  readonly retry?: RetryPolicy;
  /** Per attempt (default 35 s: longer than a `?proof=sync` wait). */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  /** Injectable for tests. */
  readonly sleep?: (ms: number) => Promise<void>;
}

interface CallOptions {
  readonly body?: unknown;
  readonly query?: Record<string, string | number | undefined>;
  readonly headers?: Record<string, string>;
  /** Whether repeating the call is harmless (then 503/429/network failures are retried). */
  readonly idempotent: boolean;
}

const RETRYABLE = new Set([429, 503]);

export class MeterproofClient {
  private readonly base: string;
  private readonly fetchFn: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: ClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** One call, with retries when it is idempotent. Returns the response with its parsed body. */
  private async call<T>(method: string, path: string, o: CallOptions): Promise<{ status: number; headers: Headers; body: T }> {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...(o.headers ?? {}) };
    if (this.opts.apiKey) headers['authorization'] = `Bearer ${this.opts.apiKey}`;
    const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
    if (payload !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
    const retries = o.idempotent ? (this.opts.retry?.retries ?? 5) : 0;
    const baseMs = this.opts.retry?.baseMs ?? 200;
    const maxMs = this.opts.retry?.maxMs ?? 10_000;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await this.fetchFn(url, { method, headers, ...(payload !== undefined ? { body: payload } : {}), signal: AbortSignal.timeout(this.opts.timeoutMs ?? 35_000) });
      } catch (e) {
        if (attempt < retries) {
          await this.sleep(backoff(attempt, baseMs, maxMs));
          continue;
        }
        throw new MeterproofNetworkError(`${method} ${path}: ${e instanceof Error ? e.message : String(e)}`, e);
      }
      const text = await res.text();
      if (res.ok) return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as T };
      const problem = toProblem(res, text);
      if (attempt < retries && RETRYABLE.has(res.status)) {
        const wait = problem.retryAfter !== undefined ? Math.min(maxMs, problem.retryAfter * 1000) : backoff(attempt, baseMs, maxMs);
        await this.sleep(wait);
        continue;
      }
      throw problem;
    }
  }

  // ── attest ──────────────────────────────────────────────────────────────────────────────
  /** Attests one event. Safe to retry: a repeat is answered as a replay (`created: false`). */
  async attest(body: AttestBody, o: { proof?: 'sync'; log?: 'sync' } = {}): Promise<Attested> {
    const r = await this.call<FullBundle>('POST', '/v1/attest', { body, query: { proof: o.proof, log: o.log }, idempotent: true });
    return { created: r.status === 201, id: r.headers.get('x-attestation-id') ?? '', proofStatus: r.headers.get('x-proof-status') ?? '', bundle: r.body };
  }

  /** Attests one event and returns only its id, digest, charge and proof status. */
  async attestMinimal(body: AttestBody): Promise<{ created: boolean } & MinimalAttestation> {
    const r = await this.call<MinimalAttestation>('POST', '/v1/attest', { body, headers: { prefer: 'return=minimal' }, idempotent: true });
    return { created: r.status === 201, ...r.body };
  }

  /** Attests 1 to 1,000 events; one result per item, in order: the item's outcome or its problem. */
  async attestBatch(events: readonly AttestBody[]): Promise<(Attested | MeterproofProblem)[]> {
    const r = await this.call<{ results: BatchItem[] }>('POST', '/v1/attest/batch', { body: { events }, idempotent: true });
    return r.body.results.map(batchResult);
  }

  /** An auto-batcher: `attest()` calls are gathered into batches of up to `maxEvents` (≤ 1,000)
   *  or whatever arrived within `maxDelayMs`, and each call gets its own item's result. */
  batcher(o: { maxEvents?: number; maxDelayMs?: number } = {}): AutoBatcher {
    return new AutoBatcher(this, Math.min(1000, Math.max(1, o.maxEvents ?? 1000)), o.maxDelayMs ?? 10);
  }

  // ── read ────────────────────────────────────────────────────────────────────────────────
  async getAttestation(id: string, o: { proof?: 'sync' } = {}): Promise<FullBundle> {
    return (await this.call<FullBundle>('GET', `/v1/attestations/${encodeURIComponent(id)}`, { query: { proof: o.proof }, idempotent: true })).body;
  }

  async listAttestations(q: { tenantId: string; window?: string; cursor?: string; limit?: number }): Promise<{ items: { id: string; proof_status: string; bundle: FullBundle }[]; next_cursor: string | null }> {
    return (await this.call<{ items: { id: string; proof_status: string; bundle: FullBundle }[]; next_cursor: string | null }>('GET', '/v1/attestations', { query: { tenant_id: q.tenantId, window: q.window, cursor: q.cursor, limit: q.limit }, idempotent: true })).body;
  }

  /** Every attestation of a tenant (and window), page after page. */
  async *attestations(q: { tenantId: string; window?: string; pageSize?: number }): AsyncGenerator<{ id: string; proof_status: string; bundle: FullBundle }> {
    let cursor: string | undefined;
    do {
      const page = await this.listAttestations({ tenantId: q.tenantId, ...(q.window ? { window: q.window } : {}), ...(cursor ? { cursor } : {}), limit: q.pageSize ?? 500 });
      yield* page.items;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  // ── verify and trust ────────────────────────────────────────────────────────────────────
  async verify(bundle: unknown, o: { profile?: 'strict' | 'standard' } = {}): Promise<VerificationReport> {
    return (await this.call<VerificationReport>('POST', '/v1/verify', { body: bundle, query: { profile: o.profile }, idempotent: true })).body;
  }

  async trust(): Promise<TrustMaterial> {
    return (await this.call<TrustMaterial>('GET', '/v1/trust', { idempotent: true })).body;
  }

  // ── admin (admin token) ─────────────────────────────────────────────────────────────────
  readonly admin = {
    /** Creating an existing tenant answers it (200): idempotent. */
    createTenant: async (t: { id: string; name?: string }) => (await this.call<{ id: string; name: string; created_at: string }>('POST', '/v1/admin/tenants', { body: t, idempotent: true })).body,
    /** Not retried: a repeat would create a second key. The secret is in this answer only. */
    createApiKey: async (k: { name?: string; scopes: ('attest' | 'read' | 'admin')[]; tenants?: string[] }) =>
      (await this.call<{ id: string; secret: string; scopes: string[]; tenants: string[] | null }>('POST', '/v1/admin/api-keys', { body: k, idempotent: false })).body,
    /** Publishing the same content again answers the stored version: idempotent. */
    publishTariff: async (t: TariffSnapshotInput) => (await this.call<Record<string, unknown>>('POST', '/v1/admin/tariffs', { body: t, idempotent: true })).body,
    setDefaultTariff: async (tenantId: string, meter: string, ref: { tariff_id: string; tariff_version: string }) =>
      (await this.call<Record<string, unknown>>('PUT', `/v1/admin/tenants/${encodeURIComponent(tenantId)}/default-tariffs/${encodeURIComponent(meter)}`, { body: ref, idempotent: true })).body,
    /** Not retried (a repeat would register a second endpoint). */
    createWebhook: async (w: { url: string; events?: string[]; tenant_id?: string }) =>
      (await this.call<{ id: string; secret: string; url: string; events: string[] }>('POST', '/v1/admin/webhooks', { body: w, idempotent: false })).body,
  };
}

interface BatchItem {
  index: number;
  status: number;
  id?: string;
  bundle?: FullBundle;
  error?: { status: number; code: string; detail?: string; errors?: { path: string; message: string }[] };
}

function batchResult(x: BatchItem): Attested | MeterproofProblem {
  if (x.error) return new MeterproofProblem(x.error.status, x.error.code, x.error.detail ?? '', x.error.errors ?? []);
  const bundle = x.bundle!;
  return { created: x.status === 201, id: x.id ?? '', proofStatus: bundle.attestation.proof_status ?? '', bundle };
}

/** Exponential backoff with full jitter: uniform in [0, min(max, base·2^attempt)]. */
function backoff(attempt: number, baseMs: number, maxMs: number): number {
  return Math.floor(Math.random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

function toProblem(res: Response, text: string): MeterproofProblem {
  const ra = res.headers.get('retry-after');
  const retryAfter = ra !== null && /^\d+$/.test(ra) ? Number(ra) : undefined;
  try {
    const p = JSON.parse(text) as { code?: unknown; detail?: unknown; errors?: unknown };
    if (typeof p.code === 'string') return new MeterproofProblem(res.status, p.code, typeof p.detail === 'string' ? p.detail : '', Array.isArray(p.errors) ? (p.errors as { path: string; message: string }[]) : [], retryAfter);
  } catch {
    /* not JSON: described below */
  }
  return new MeterproofProblem(res.status, `HTTP_${res.status}`, text.slice(0, 200), [], retryAfter);
}

/** See MeterproofClient.batcher. */
export class AutoBatcher {
  private queue: { body: AttestBody; resolve: (a: Attested) => void; reject: (e: unknown) => void }[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly client: MeterproofClient,
    private readonly maxEvents: number,
    private readonly maxDelayMs: number,
  ) {}

  /** Resolves with this event's outcome; rejects with its MeterproofProblem (or the batch's). */
  attest(body: AttestBody): Promise<Attested> {
    return new Promise<Attested>((resolve, reject) => {
      this.queue.push({ body, resolve, reject });
      if (this.queue.length >= this.maxEvents) this.send();
      else this.timer ??= setTimeout(() => this.send(), this.maxDelayMs);
    });
  }

  /** Sends what is queued and waits for every batch in flight. */
  async flush(): Promise<void> {
    this.send();
    await Promise.all([...this.inFlight]);
  }

  private send(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.queue.length) return;
    const items = this.queue.splice(0, this.maxEvents);
    const p = this.client
      .attestBatch(items.map((i) => i.body))
      .then(
        (results) => {
          items.forEach((item, k) => {
            const r = results[k];
            if (r === undefined) item.reject(new MeterproofProblem(502, 'BATCH_INCOMPLETE', `the batch answer has no result for item ${k}`));
            else if (r instanceof MeterproofProblem) item.reject(r);
            else item.resolve(r);
          });
        },
        (e: unknown) => items.forEach((item) => item.reject(e)),
      )
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    if (this.queue.length) this.send();
  }
}
