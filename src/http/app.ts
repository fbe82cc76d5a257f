// The HTTP API, built from injected dependencies (`createApp(deps)`); src/main.ts wires real ones.
import { Hono, type Context } from 'hono';
import { stream } from 'hono/streaming';
import { SETTLEMENT_EVIDENCE_TYPE } from '../core/settlement-verify.ts';
import { routePath } from 'hono/route';
import { randomUUID } from 'node:crypto';
import type { Countersignature, FullBundle, VerificationReport } from '../core/schemas.ts';
import type { AttestOutcome, AttestationRow } from '../service/attest.ts';
import { type Principal, isUnavailable, requireEveryTenant, requireScope } from '../service/auth.ts';
import { ServiceError } from '../service/errors.ts';
import { planView } from '../service/plans.ts';
import { type EvidenceRequest, evidenceLines, planEvidence } from '../service/evidence.ts';
import { storeLookup } from '../service/reconcile.ts';
import { ReconcileInputError, reconcile } from '../core/reconcile.ts';
import { renderAuditReport } from '../core/report.ts';
import { verifyEvidencePack, zkVerifier } from '../verifier/index.ts';
import type { SettlementRecord } from '../service/settlements.ts';
import { problemResponse, toProblem } from './problem.ts';
import { isStoreError } from '../db/faults.ts';
import { since } from '../service/metrics.ts';
import { type Logger, errorFields, requestLineWriter, silentLogger } from '../service/logger.ts';
import { type ProcessState, readiness, storeFigures } from '../service/health.ts';
import { proofQueueView } from '../service/proof-policy.ts';
import { bodyLines, query, readJson } from './input.ts';
import { adminRoutes, tariffView } from './admin-routes.ts';
import { logRoutes } from './log-routes.ts';
import { openApiDocument } from './openapi.ts';
import { DOCS_ASSETS, DOCS_PAGE, type DocsAsset, docsAsset, verifierPage } from './pages.ts';
import { EvidenceQuery, ReconcileQuery, ListQuery, SettlementListQuery, SyncQuery, VerifyQuery } from './schemas.ts';
import type { ServiceDeps } from '../service/container.ts';

/** The services (src/service/container.ts builds them) and the HTTP layer's own options. */
export interface AppDeps extends ServiceDeps {
  readonly onAttested?: () => void;
  readonly bodyLimitBytes?: number;
  /** The built verifier page GET /verify serves (default: dist/meterproof-verifier.html). */
  readonly verifierPagePath?: string;
  readonly syncProofTimeoutMs?: number;
  /** A waiting request re-reads its row at least this often even without a wake-up (default 10 s). */
  readonly syncSafetyMs?: number;
  /** Request and error log (default: none). */
  readonly logger?: Logger;
  /** The process's own state for GET /ready (serve.ts). */
  readonly state?: ProcessState;
}

export type Env = { Variables: { principal: Principal; requestId: string } };

/** An `X-Request-Id` we accept from the client and echo; anything else is replaced by a UUID. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const MAX_BATCH = 1000;
/** Bytes (UTF-16 code units) a streamed response gathers before it writes them. */
const STREAM_CHUNK = 64 * 1024;
/** Most bundles in one POST /v1/verify/batch (~1 MB of bundles: within the default body limit). */
export const MAX_VERIFY_BATCH = 256;

export const DEFAULT_BODY_LIMIT = 2 * 1024 * 1024;

/** POST /v1/reconcile: invoice lines up to this many bytes, read as a stream (never whole). */
export const RECONCILE_BODY_LIMIT = 256 * 1024 * 1024;
/** Unmatched items listed in a POST /v1/reconcile response (the counts and totals cover all). */
export const RECONCILE_MAX_ITEMS = 1000;

/** CloudEvents JSON event format media types: structured mode (one event) and batched mode. */
const CE_STRUCTURED = 'application/cloudevents+json';
const CE_BATCH = 'application/cloudevents-batch+json';
const mediaType = (c: Context) => (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
const isCloudEvent = (x: unknown) => !!x && typeof x === 'object' && !Array.isArray(x) && 'specversion' in x;


export function createApp(deps: AppDeps) {
  const app = new Hono<Env>();
  const logger = deps.logger ?? silentLogger();
  const logRequest = requestLineWriter(logger);
  const metrics = deps.metrics;

  /** The route pattern that answered (never the raw path: bounded, and free of ids). */
  const routeOf = (c: Context) => {
    const r = routePath(c, -1);
    return r === '' || r === '*' || r === '/*' ? 'unmatched' : r;
  };
  const httpLabels = (key: string): Record<string, string> => {
    const [method, route, status] = key.split(' ');
    return status === undefined ? { method: method!, route: route! } : { method: method!, route: route!, status };
  };

  /** Responses made by plainResponse, which carry the request id already. */
  const withRequestId = new WeakSet<Response>();
  /** A response whose headers stay a plain object (the request id among them): the node adapter
   *  writes it as it is, where Hono's c.body would first build a Headers object of them (and
   *  the adapter iterate it): the attest route's answer. */
  const plainResponse = (c: Context<Env>, body: string, status: number, headers: Record<string, string>): Response => {
    const res = new Response(body, { status, headers: { ...headers, 'x-request-id': c.get('requestId') } });
    withRequestId.add(res);
    return res;
  };

  // One log line and the HTTP metrics per request; X-Request-Id accepted or made, and echoed.
  app.use('*', async function observe(c, next) {
    const started = performance.now();
    const given = c.req.header('x-request-id');
    const id = given !== undefined && REQUEST_ID.test(given) ? given : randomUUID();
    c.set('requestId', id);
    // set before the handler, so that the response is made with it: setting a header on a finished
    // response rebuilds it as a full web Response, which the node adapter then writes out through a
    // stream (a slower path for every request). A handler that made its own Response gets it after.
    c.header('x-request-id', id);
    await next();
    if (!withRequestId.has(c.res) && !c.res.headers.has('x-request-id')) c.header('x-request-id', id);
    const seconds = since(started);
    const route = routeOf(c);
    const status = c.res.status;
    const key = `${c.req.method} ${route}`;
    metrics.httpDuration.observe(key, httpLabels, seconds);
    metrics.httpRequests.inc(`${key} ${status}`, httpLabels);
    logRequest({ req_id: id, method: c.req.method, route, status, duration_ms: Math.round(seconds * 1e6) / 1000 });
  });

  app.onError((e, c) => {
    const p = toProblem(e);
    if (p.status >= 500 && p.code === 'INTERNAL') logger.error({ req_id: c.get('requestId'), method: c.req.method, route: routeOf(c), err: errorFields(e) }, 'unhandled error');
    // a store error answered 503: its SQLSTATE and class, so that an operator sees the cause
    else if (p.status === 503 && isStoreError(e)) logger.warn({ req_id: c.get('requestId'), method: c.req.method, route: routeOf(c), err: errorFields(e) }, 'store unavailable');
    return problemResponse(c, p);
  });
  app.notFound((c) => problemResponse(c, { type: 'about:blank', title: 'Not Found', status: 404, code: 'NOT_FOUND', detail: `no route for ${c.req.method} ${c.req.path}` }));

  // U+0000 in a path or query parameter would reach PostgreSQL, which refuses it in text (the
  // body has its own check in readJson): refused at the door, for every route.
  app.use('*', async (c, next) => {
    if (c.req.url.includes('%00')) throw new ServiceError(400, 'UNSUPPORTED_CHARACTER', 'the URL may not contain U+0000 (%00)');
    await next();
  });

  const bodyLimit = deps.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  const jsonBody = (c: Context) => readJson(c, bodyLimit);

  const authed = async (c: Context<Env>, next: () => Promise<void>) => {
    c.set('principal', await deps.auth.authenticate(c.req.header('authorization')));
    await next();
  };
  /** authed for the attest routes, timed as the attest path's auth phase: a key seen lately is
   *  taken from memory, and the attest service confirms it where it acts (Auth.attestPrincipal). */
  const authedAttest = async (c: Context<Env>, next: () => Promise<void>) => {
    const started = performance.now();
    const principal = await deps.auth.attestPrincipal(c.req.header('authorization'));
    c.set('principal', principal);
    metrics.attestPhase(0, since(started));
    await next();
    // refused before the attest service confirmed the key (a malformed body, say): a revoked key
    // is answered 401 instead (one look-up per request: the service's, if it made one)
    if (principal.unconfirmed && c.error && !isUnavailable(c.error)) {
      try {
        await deps.auth.confirm(principal);
      } catch (e) {
        c.res = undefined;
        c.res = problemResponse(c, toProblem(e));
      }
    }
  };

  /** The stored bundle with its receipt and the consumers' countersignatures (`countersigned`:
   *  those of a list, fetched at once; otherwise read for this row). */
  async function render(row: AttestationRow, countersigned?: ReadonlyMap<string, Countersignature[]>): Promise<FullBundle> {
    const bundle = row.bundle as FullBundle;
    const [receipt, countersignatures] = await Promise.all([
      deps.log?.receipt(row),
      countersigned ? countersigned.get(row.id) : deps.consumers.countersignaturesOf([row]).then((m) => m.get(row.id)),
    ]);
    return { ...bundle, ...(receipt ? { receipt } : {}), ...(countersignatures ? { countersignatures } : {}) };
  }

  /** render() as JSON text. A row this process has just written carries its bundle's JSON text
   *  (made once, for the store) and is not in the log yet (so it has no receipt): it is answered
   *  with that text instead of serializing the bundle a second time. */
  async function renderText(row: AttestationRow): Promise<string> {
    if (row.bundleText !== undefined && row.logIndex === null) return row.bundleText;
    return JSON.stringify(await render(row));
  }
  const JSON_TYPE = { 'content-type': 'application/json' };

  const reread = (id: string) => deps.attest.get({ id: 'internal', scopes: new Set(['read']), tenants: null }, id);

  /**
   * Wait (bounded) until the proof is no longer pending and/or the log has integrated the row,
   * without polling: the wait is registered first, then the row is re-read (so that nothing
   * finished in between is missed), and it is read again only after a wake-up (its proof job
   * finished, the log took it in), the safety interval, or shutdown.
   */
  async function waitFor(row: AttestationRow, what: { proof: boolean; log: boolean }): Promise<AttestationRow> {
    const needsProof = (r: AttestationRow) => what.proof && r.proofStatus === 'pending';
    const needsLog = (r: AttestationRow) => what.log && !!deps.log && r.logIndex === null;
    if (!needsProof(row) && !needsLog(row)) return row;
    await deps.waiters.listening();
    const deadline = Date.now() + (deps.syncProofTimeoutMs ?? 30_000);
    const safety = deps.syncSafetyMs ?? 10_000;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return row;
      const wait = deps.waiters.wait(row.id, { proof: needsProof(row), log: needsLog(row) }, Math.min(left, safety));
      row = await reread(row.id);
      if (!needsProof(row) && !needsLog(row)) {
        wait.cancel();
        return row;
      }
      const why = await wait.woken;
      if (why === 'closed') return reread(row.id);
    }
  }

  /** `?proof=sync` on an attestation without a proof job (`on_demand`, `deferred`): queue one
   *  (ahead of the eager backlog) before waiting for it. */
  async function proveNow(row: AttestationRow): Promise<AttestationRow> {
    if (row.proofStatus !== 'on_demand' && row.proofStatus !== 'deferred') return row;
    const status = (await deps.proofs.ensureProofs([row.id])).get(row.id) ?? row.proofStatus;
    deps.onAttested?.();
    if (status === row.proofStatus) return row;
    // the stored text (if this process has it) is the bundle before the status changed
    const { bundleText: _stale, ...rest } = row;
    return { ...rest, proofStatus: status };
  }

  /** RFC 7240 `Prefer: return=minimal`: answer with the attestation's identity and charge
   *  instead of the whole bundle (fetch it later with GET /v1/attestations/{id}). */
  const wantsMinimal = (c: Context) => /(^|,)\s*return\s*=\s*"?minimal"?\s*(;|,|$)/i.test(c.req.header('prefer') ?? '');
  const minimal = (row: AttestationRow) => ({ id: row.id, statement_digest: row.statementDigest, charge_micros: row.chargeMicros, proof_status: row.proofStatus });

  const bundleHeaders = (row: AttestationRow) => ({
    location: `/v1/attestations/${row.id}`,
    'x-attestation-id': row.id,
    'x-proof-status': row.proofStatus,
  });

  // ── public ────────────────────────────────────────────────────────────────────────────
  // liveness: the process answers; no I/O
  app.get('/health', (c) => c.json({ status: 'ok' }));
  // readiness: the store answers with every migration applied, the signing key is loaded, the
  // log sequencer runs, and the process is not shutting down
  app.get('/ready', async (c) => {
    const checks = await readiness(deps.db, deps.keys, deps.state);
    const failing = Object.entries(checks).filter(([, v]) => v !== 'ok');
    if (!failing.length) return c.json({ status: 'ready', checks });
    const detail = `not ready: ${failing.map(([k, v]) => `${k} (${v})`).join(', ')}`;
    return c.body(JSON.stringify({ ...toProblem(new ServiceError(503, 'NOT_READY', detail)), checks }), 503, { 'content-type': 'application/problem+json', 'retry-after': '1' });
  });
  // Prometheus metrics: an API key with the `metrics` scope (or the admin token) and no tenant
  // allowlist, since the series name every tenant and its volumes
  app.get('/metrics', authed, async (c) => {
    requireScope(c.get('principal'), 'metrics');
    requireEveryTenant(c.get('principal'));
    metrics.setStoreFigures(await storeFigures(deps.db).catch(() => undefined));
    return c.body(await metrics.text(), 200, { 'content-type': metrics.contentType });
  });
  app.get('/v1/status', async (c) => {
    const key = await deps.keys.current();
    return c.json({
      status: 'operational',
      version: deps.version ?? '0.0.0',
      store: deps.storeKind,
      signing_key_id: key.keyId,
      proof_jobs: await deps.proofs.counts(),
      // the backlog and its bound: depth (queued + running), limit, oldest job's age, deferred
      proof_queue: proofQueueView(await storeFigures(deps.db), deps.policies.queueLimit),
      // this process's group commit: attestations stored, the statements that stored them, and
      // the recent statements' wall time (commit included)
      store_writes: { statements: deps.attest.writer.stats.statements, attestations: deps.attest.writer.stats.events, statement_ms: deps.attest.writer.statementLatency() },
      log_size: deps.log ? await deps.log.size() : null,
    });
  });
  app.get('/.well-known/jwks.json', async (c) => c.json(await deps.keys.jwks()));
  app.get('/v1/trust', async (c) => {
    const trust = await deps.trust();
    metrics.revocationLists.inc({ endpoint: '/v1/trust' });
    return c.json(trust);
  });
  app.get('/.well-known/billing-revocations.json', async (c) => {
    const list = await deps.revocations.signedList();
    metrics.revocationLists.inc({ endpoint: '/.well-known/billing-revocations.json' });
    return c.json(list);
  });
  app.get('/openapi.json', (c) => c.json(openApiDocument(deps.version)));
  // interactive documentation of that document (Swagger UI, its assets from the package)
  app.get('/docs', (c) => c.html(DOCS_PAGE));
  app.get('/docs/:file', async (c) => {
    const file = c.req.param('file') as DocsAsset;
    if (!DOCS_ASSETS.includes(file)) throw new ServiceError(404, 'NOT_FOUND', `no documentation asset ${JSON.stringify(file)}`);
    const asset = await docsAsset(file);
    return c.body(asset.body, 200, { 'content-type': asset.type, 'cache-control': 'public, max-age=3600' });
  });
  // the browser verifier, this service's trust material embedded (no fetch at verify time)
  app.get('/verify', async (c) => {
    const page = await verifierPage(await deps.trust(), new URL(c.req.url).host, deps.verifierPagePath);
    if (page === null) throw new ServiceError(404, 'NOT_FOUND', 'the verifier page is not built (npm run build:verifier)');
    return c.body(page, 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  });

  app.post('/v1/verify', async (c) => {
    const q = query(c, VerifyQuery);
    let t = performance.now();
    const body = await jsonBody(c);
    metrics.verifyPhase(0, since(t));
    t = performance.now();
    const trust = await deps.trust();
    metrics.verifyPhase(1, since(t));
    t = performance.now();
    const report = await deps.verify(body, trust, q.profile);
    metrics.verifyPhase(2, since(t));
    metrics.verifications.inc({ result: verdict(report) });
    return c.json(report);
  });

  // Many bundles against the same trust material: each gets the report POST /v1/verify would
  // give it, in order, with its index; the Groth16 pairing checks are batched, on worker threads.
  app.post('/v1/verify/batch', async (c) => {
    const q = query(c, VerifyQuery);
    const body = await jsonBody(c);
    const bundles = Array.isArray(body) ? body : body && typeof body === 'object' && Object.keys(body).length === 1 ? (body as { bundles?: unknown }).bundles : undefined;
    if (!Array.isArray(bundles)) throw new ServiceError(400, 'BAD_REQUEST', 'expected [bundle, …] or {"bundles": [bundle, …]}');
    if (bundles.length === 0 || bundles.length > MAX_VERIFY_BATCH) throw new ServiceError(400, 'BATCH_SIZE', `a verification batch holds 1 to ${MAX_VERIFY_BATCH} bundles`);
    const trust = await deps.trust();
    const reports = await deps.verifyMany(bundles.map((bundle: unknown) => ({ bundle })), trust, q.profile);
    let valid = 0;
    for (const r of reports) {
      if (r.valid) valid++;
      metrics.verifications.inc({ result: verdict(r) });
    }
    return c.json({ summary: { total: reports.length, valid, invalid: reports.length - valid }, results: reports.map((r, index) => ({ index, ...r })) });
  });

  // ── attest ────────────────────────────────────────────────────────────────────────────
  app.post('/v1/attest', authedAttest, async (c) => {
    const q = query(c, SyncQuery);
    const body = await jsonBody(c);
    if (mediaType(c) === CE_STRUCTURED && !isCloudEvent(body)) throw new ServiceError(400, 'INVALID_CLOUDEVENT', `an ${CE_STRUCTURED} body is one CloudEvent (an object with specversion)`);
    const result = await deps.attest.attest(c.get('principal'), body);
    const created = result.created;
    let row = result.row;
    if (created) deps.onAttested?.();
    // proof=sync waits for the proof (proving it now if the tenant's policy did not queue it) and
    // the receipt: the bundle is then complete (strict-valid).
    if (q.proof === 'sync') row = await proveNow(row);
    if (q.proof === 'sync' || q.log === 'sync') row = await waitFor(row, { proof: q.proof === 'sync', log: true });
    if (wantsMinimal(c)) return c.json(minimal(row), created ? 201 : 200, { ...bundleHeaders(row), 'preference-applied': 'return=minimal' });
    return plainResponse(c, await renderText(row), created ? 201 : 200, { ...JSON_TYPE, ...bundleHeaders(row) });
  });

  app.post('/v1/attest/batch', authedAttest, async (c) => {
    const body = (await jsonBody(c)) as { events?: unknown } | null;
    let items: unknown[];
    if (mediaType(c) === CE_BATCH) {
      // CloudEvents batched mode: a JSON array of CloudEvents, each priced as a structured-mode event
      if (!Array.isArray(body)) throw new ServiceError(400, 'BAD_REQUEST', `an ${CE_BATCH} body is a JSON array of CloudEvents`);
      const bad = body.findIndex((x) => !isCloudEvent(x));
      if (bad >= 0) throw new ServiceError(400, 'INVALID_CLOUDEVENT', `item ${bad} is not a CloudEvent (an object with specversion)`, [{ path: `[${bad}]`, message: 'expected a CloudEvent' }]);
      items = body;
    } else {
      const events = body && typeof body === 'object' && !Array.isArray(body) ? body.events : undefined;
      if (!Array.isArray(events) || Object.keys(body ?? {}).length !== 1) {
        throw new ServiceError(400, 'BAD_REQUEST', 'expected {events: [{meter_event, tariff_snapshot | tariff}, …]}');
      }
      items = events;
    }
    if (items.length === 0 || items.length > MAX_BATCH) throw new ServiceError(400, 'BATCH_SIZE', `a batch holds 1 to ${MAX_BATCH} events`);
    const outcomes: (AttestOutcome | ServiceError | undefined)[] = await deps.attest.attestMany(c.get('principal'), items);
    items.length = 0; // the request's events are not needed any more
    if (outcomes.some((o) => o && !(o instanceof ServiceError) && o.created)) deps.onAttested?.();
    const small = wantsMinimal(c);
    if (small) {
      const results = outcomes.map((o, index) => JSON.stringify(o instanceof ServiceError ? { index, status: o.status, error: toProblem(o) } : { index, status: (o as AttestOutcome).created ? 201 : 200, ...minimal((o as AttestOutcome).row) }));
      return c.body(`{"results":[${results.join(',')}]}`, 200, { ...JSON_TYPE, 'preference-applied': 'return=minimal' });
    }
    // {"results": [...]} streamed from each item's JSON text (the bundle text the writer stored), in
    // chunks of about 64 KiB; an item's outcome is dropped once written, so the response never
    // holds the bundles twice over: at most the stored texts not yet sent and one chunk
    let next = 0;
    const encoder = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        let chunk = next === 0 ? '{"results":[' : '';
        while (next < outcomes.length && chunk.length < STREAM_CHUNK) {
          const index = next++;
          const o = outcomes[index] as AttestOutcome | ServiceError;
          outcomes[index] = undefined;
          const sep = index === 0 ? '' : ',';
          if (o instanceof ServiceError) chunk += `${sep}${JSON.stringify({ index, status: o.status, error: toProblem(o) })}`;
          else chunk += `${sep}{"index":${index},"status":${o.created ? 201 : 200},"id":"${o.row.id}","bundle":${await renderText(o.row)}}`;
        }
        if (next === outcomes.length) {
          controller.enqueue(encoder.encode(`${chunk}]}`));
          controller.close();
        } else controller.enqueue(encoder.encode(chunk));
      },
    });
    return c.body(stream, 200, JSON_TYPE);
  });

  app.get('/v1/attestations/:id', authed, async (c) => {
    const q = query(c, SyncQuery);
    let row = await deps.attest.get(c.get('principal'), c.req.param('id') ?? '');
    if (q.proof === 'sync') row = await proveNow(row);
    if (q.proof === 'sync' || q.log === 'sync') row = await waitFor(row, { proof: q.proof === 'sync', log: true });
    return c.json(await render(row), 200, bundleHeaders(row));
  });

  // the consumer's countersignature of an attestation (bilateral metering)
  app.post('/v1/attestations/:id/countersignatures', authed, async (c) => {
    const principal = c.get('principal');
    const row = await deps.attest.get(principal, c.req.param('id') ?? '');
    const r = await deps.consumers.countersign(principal, row, await jsonBody(c));
    return c.json(r.countersignature, r.created ? 201 : 200);
  });

  // Prove an attestation now (on_demand, deferred; a queued job moves ahead): 202 while its job
  // runs, 200 once it is proved (or failed for good).
  app.post('/v1/attestations/:id/prove', authed, async (c) => {
    const row = await deps.attest.get(c.get('principal'), c.req.param('id') ?? '');
    const status = (await deps.proofs.ensureProofs([row.id])).get(row.id) ?? row.proofStatus;
    if (status === 'pending') deps.onAttested?.();
    const headers = { location: `/v1/attestations/${row.id}`, 'x-attestation-id': row.id, 'x-proof-status': status };
    return c.json({ id: row.id, proof_status: status }, status === 'pending' ? 202 : 200, headers);
  });

  app.get('/v1/attestations', authed, async (c) => {
    const q = query(c, ListQuery);
    const rows = await deps.attest.list(c.get('principal'), { tenantId: q.tenant_id, windowId: q.window, after: q.cursor ? Number(q.cursor) : undefined, limit: q.limit });
    const countersigned = await deps.consumers.countersignaturesOf(rows);
    const items = await Promise.all(rows.map(async (r) => ({ id: r.id, proof_status: r.proofStatus, bundle: await render(r, countersigned) })));
    const last = rows.at(-1);
    return c.json({ items, next_cursor: rows.length === q.limit && last ? String(last.cursor) : null });
  });

  // An evidence pack (docs/protocol.md §6): NDJSON, streamed as it is read from the store page
  // by page. The scope is resolved and authorised, and the header made, before the first byte:
  // a refusal is a problem response, never a broken pack.
  const evidenceRequest = (c: Context): EvidenceRequest => {
    const q = query(c, EvidenceQuery);
    return q.attestation_id !== undefined ? { attestation_id: q.attestation_id } : q.settlement_id !== undefined ? { settlement_id: q.settlement_id } : { tenant_id: q.tenant_id!, window: q.window! };
  };
  app.get('/v1/evidence', authed, async (c) => {
    const plan = await planEvidence(deps, c.get('principal'), evidenceRequest(c));
    const lines = evidenceLines(deps, plan);
    const first = await lines.next();
    c.header('content-type', 'application/x-ndjson');
    c.header('content-disposition', `attachment; filename="evidence-${plan.scope.kind}.ndjson"`);
    return stream(c, async (out) => {
      if (!first.done) await out.write(`${first.value}\n`);
      for await (const line of lines) await out.write(`${line}\n`);
    });
  });

  // The auditor's report (docs/disputes.md) of the same scopes: the pack is made and verified
  // here, line by line, against the service's current JWKS and log key, then rendered as HTML.
  app.get('/v1/reports', authed, async (c) => {
    const plan = await planEvidence(deps, c.get('principal'), evidenceRequest(c));
    const trust = await deps.trust();
    const verdict = await verifyEvidencePack(evidenceLines(deps, plan), { zk: zkVerifier, pinned: trust, ...(deps.clock ? { now: deps.clock() } : {}) });
    const html = renderAuditReport({ verdict, packFile: `evidence-${plan.scope.kind}.ndjson`, trustFile: 'pinned.json', generator: `meterproof ${deps.version ?? ''} (GET /v1/reports)`.replace('  ', ' '), ...(deps.clock ? { generatedAt: deps.clock() } : {}) });
    return c.body(html, 200, { 'content-type': 'text/html; charset=utf-8' });
  });

  // Reconciliation (docs/disputes.md): invoice lines (text/csv, application/x-ndjson or
  // application/json) against the window's attested charges, the body read as it arrives.
  app.post('/v1/reconcile', authed, async (c) => {
    const q = query(c, ReconcileQuery);
    const type = mediaType(c);
    const format = type === 'text/csv' ? 'csv' : type === 'application/x-ndjson' ? 'ndjson' : type === 'application/json' ? 'json' : null;
    if (!format) throw new ServiceError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the invoice lines as text/csv, application/x-ndjson or application/json');
    const lookup = storeLookup(deps.db, c.get('principal'), q.tenant_id, q.window);
    try {
      const report = await reconcile(bodyLines(c, RECONCILE_BODY_LIMIT), { lookup, format, maxListed: RECONCILE_MAX_ITEMS });
      return c.json({ tenant_id: q.tenant_id, billing_window_id: q.window, ...report });
    } catch (e) {
      if (e instanceof ReconcileInputError) throw new ServiceError(400, 'INVALID_INVOICE', e.message);
      throw e;
    }
  });

  app.get('/v1/tariffs/:id/:version', authed, async (c) => {
    requireScope(c.get('principal'), 'read');
    const t = await deps.tariffs.get(c.req.param('id') ?? '', c.req.param('version') ?? '');
    if (!t) throw new ServiceError(404, 'NOT_FOUND', 'tariff version not found');
    return c.json(tariffView(t));
  });

  // ── settlements ───────────────────────────────────────────────────────────────────────
  const settlementView = async (r: SettlementRecord) => ({
    id: r.id,
    status: r.status,
    status_changed_at: r.statusChangedAt.toISOString(),
    settlement: { statement: r.statement, statement_digest: r.statementDigest, key_id: r.keyId, signature: r.signature },
    receipt: (await deps.log?.receipt({ logIndex: r.logIndex })) ?? null,
    history: r.history,
  });
  app.post('/v1/settlements', authed, async (c) => {
    const r = await deps.settlements.run(c.get('principal'), await jsonBody(c));
    deps.onAttested?.(); // its log leaf is queued
    return c.json(await settlementView(r), 201, { location: `/v1/settlements/${r.id}` });
  });
  app.get('/v1/settlements', authed, async (c) => {
    const q = query(c, SettlementListQuery);
    return c.json({ items: await deps.settlements.list(c.get('principal'), q.tenant_id) });
  });
  app.get('/v1/settlements/:id', authed, async (c) => c.json(await settlementView(await deps.settlements.get(c.get('principal'), c.req.param('id') ?? ''))));
  app.post('/v1/settlements/adjustments', authed, async (c) => {
    const { replayed, ...r } = await deps.settlements.adjust(c.get('principal'), await jsonBody(c), c.req.header('idempotency-key'));
    return c.json(r, replayed ? 200 : 201, { location: `/v1/settlements/adjustments/${r.id}`, ...(replayed ? { 'idempotent-replayed': 'true' } : {}) });
  });
  app.get('/v1/settlements/adjustments/:id', authed, async (c) => c.json(await deps.settlements.adjustment(c.get('principal'), c.req.param('id') ?? '')));
  app.get('/v1/settlements/:id/evidence', authed, async (c) => {
    const e = await deps.settlements.evidence(c.get('principal'), c.req.param('id') ?? '');
    const r = e.record;
    const receipt = (await deps.log?.receipt({ logIndex: r.logIndex })) ?? null;
    const head = JSON.stringify({ type: SETTLEMENT_EVIDENCE_TYPE, settlement: { statement: r.statement, statement_digest: r.statementDigest, key_id: r.keyId, signature: r.signature }, receipt, plan: e.plan, adjustments: e.adjustments });
    // the attested statements are written after the rest, as the store yields them page by page
    // (a window holds many): the evidence is never whole in memory
    c.header('content-type', 'application/json');
    return stream(c, async (out) => {
      await out.write(`${head.slice(0, -1)},"attestations":[`);
      let first = true;
      let buf = '';
      for await (const a of e.attestations) {
        buf += first ? a : `,${a}`;
        first = false;
        if (buf.length > 1 << 16) {
          await out.write(buf);
          buf = '';
        }
      }
      await out.write(`${buf}]}`);
    });
  });
  app.patch('/v1/settlements/:id/status', authed, async (c) => {
    const r = await deps.settlements.setStatus(c.get('principal'), c.req.param('id') ?? '', await jsonBody(c));
    return c.json(await settlementView(r));
  });
  app.get('/v1/sla', authed, async (c) => c.json(await deps.settlements.sla(c.get('principal'), c.req.query())));
  app.get('/v1/plans/:id/:version', authed, async (c) => {
    requireScope(c.get('principal'), 'read');
    const p = await deps.plans.get(c.req.param('id') ?? '', c.req.param('version') ?? '');
    if (!p) throw new ServiceError(404, 'NOT_FOUND', 'plan version not found');
    return c.json(planView(p));
  });

  app.route('/v1/admin', adminRoutes(deps, authed, jsonBody));

  if (deps.log) logRoutes(app, deps.log);
  return app;
}

/** A report's label in the verifications metric: valid, or the code of its first failure. */
const verdict = (r: VerificationReport) => (r.valid ? 'valid' : (r.checks.find((x) => x.status === 'fail')?.code ?? 'invalid'));
