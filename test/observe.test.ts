// GET /health and /ready, GET /metrics (Prometheus), and the JSON request log.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/http/app.ts';
import { createLogger, requestLineWriter } from '../src/service/logger.ts';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { ADMIN, testService, type TestService } from './support/service.ts';

let s: TestService;
let attestKey: string;
let metricsKey: string;

const body = (id: string, over: Record<string, unknown> = {}) => ({ meter_event: { ...pilotEvent, event_id: id, ...over }, tariff_snapshot: pilotTariff });

/** A Prometheus text exposition parsed into `name{labels}` → value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function scrape(token = metricsKey): Promise<Map<string, number>> {
  const r = await s.call('GET', '/metrics', { token });
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(r.body as string);
}

beforeAll(async () => {
  s = await testService();
  expect((await s.call('POST', '/v1/admin/tenants', { body: { id: 'tenant_acme', name: 'Acme' } })).status).toBe(201);
  attestKey = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest', 'read'] } })).body.secret;
  metricsKey = (await s.call('POST', '/v1/admin/api-keys', { body: { name: 'prometheus', scopes: ['metrics'] } })).body.secret;
});
afterAll(async () => s?.close());

describe('health and readiness', () => {
  it('/health answers without I/O; /ready lists every check as ok', async () => {
    expect((await s.call('GET', '/health', { token: null })).body).toEqual({ status: 'ok' });
    const r = await s.call('GET', '/ready', { token: null });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ready', checks: { store: 'ok', migrations: 'ok', keys: 'ok' } });
  });

  it('/ready is 503 problem+json naming what is not ready: a stopped sequencer, a shutdown', async () => {
    let running = false;
    let draining = false;
    const app = createApp({ ...s.container.deps, state: { sequencerRunning: () => running, draining: () => draining } });
    let r = await app.request('/ready');
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    let p = (await r.json()) as { code: string; detail: string; checks: Record<string, string> };
    expect(p.code).toBe('NOT_READY');
    expect(p.detail).toBe('not ready: sequencer (stopped)');
    expect(p.checks).toEqual({ store: 'ok', migrations: 'ok', keys: 'ok', sequencer: 'stopped' });
    running = true;
    expect((await app.request('/ready')).status).toBe(200);
    draining = true;
    r = await app.request('/ready');
    expect(r.status).toBe(503);
    p = (await r.json()) as typeof p;
    expect(p.detail).toBe('not ready: process (shutting down)');
    // liveness does not change while draining
    expect((await app.request('/health')).status).toBe(200);
  });
});

describe('GET /metrics', () => {
  it('needs a key with the metrics scope (or the admin token)', async () => {
    expect((await s.call('GET', '/metrics', { token: null })).status).toBe(401);
    expect((await s.call('GET', '/metrics', { token: attestKey })).status).toBe(403);
    expect((await s.call('GET', '/metrics', { token: ADMIN })).status).toBe(200);
  });

  it('counts attestations by tenant and outcome, phases, verifications, revocation lists, proof backlog and log', async () => {
    const before = await scrape();
    const created: any[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await s.call('POST', '/v1/attest', { token: attestKey, body: body(`m-${i}`) });
      expect(r.status).toBe(201);
      created.push(r.body);
      ids.push(r.headers.get('x-attestation-id')!);
    }
    expect((await s.call('POST', '/v1/attest', { token: attestKey, body: body('m-0') })).status).toBe(200); // replay
    expect((await s.call('POST', '/v1/attest', { token: attestKey, body: body('m-x', { tenant_id: 'tenant_nobody' }) })).status).toBe(422);
    const batch = await s.call('POST', '/v1/attest/batch', { token: attestKey, body: { events: [body('m-b1'), body('m-b2'), body('m-0', { usage_units: 7 })] } });
    expect(batch.body.results.map((x: any) => x.status)).toEqual([201, 201, 409]);
    expect((await s.call('POST', '/v1/verify?profile=standard', { token: null, body: created[0] })).body.valid).toBe(true);
    const tampered = structuredClone(created[1]);
    tampered.attestation.statement.charge_micros = '1';
    const bad = (await s.call('POST', '/v1/verify?profile=standard', { token: null, body: tampered })).body;
    expect(bad.valid).toBe(false);
    const badCode = bad.checks.find((c: any) => c.status === 'fail').code as string;
    expect((await s.call('GET', '/.well-known/billing-revocations.json', { token: null })).status).toBe(200);
    expect((await s.call('GET', `/v1/attestations/${ids[2]!}`, { token: attestKey })).status).toBe(200);

    const m = await scrape();
    const delta = (k: string) => (m.get(k) ?? 0) - (before.get(k) ?? 0);
    expect(delta('meterproof_attestations_total{tenant="tenant_acme",outcome="created"}')).toBe(5);
    expect(delta('meterproof_attestations_total{tenant="tenant_acme",outcome="replayed"}')).toBe(1);
    expect(delta('meterproof_attestations_total{tenant="tenant_acme",outcome="rejected"}')).toBe(1); // the batch's conflicting repeat of m-0
    // refused before its tenant was established: no series for an unknown tenant
    expect(delta('meterproof_attestations_total{tenant="",outcome="rejected"}')).toBe(1);
    expect([...m.keys()].some((k) => k.includes('tenant_nobody'))).toBe(false);
    // phases: auth and normalize once per attest request (6), sign and store once per chain group
    expect(delta('meterproof_attest_phase_seconds_count{phase="auth"}')).toBe(6);
    expect(delta('meterproof_attest_phase_seconds_count{phase="normalize"}')).toBe(6);
    expect(delta('meterproof_attest_phase_seconds_count{phase="sign"}')).toBeGreaterThanOrEqual(4);
    expect(delta('meterproof_attest_phase_seconds_count{phase="store"}')).toBe(delta('meterproof_attest_phase_seconds_count{phase="sign"}'));
    expect(delta('meterproof_attest_phase_seconds_bucket{phase="store",le="+Inf"}')).toBe(delta('meterproof_attest_phase_seconds_count{phase="store"}'));
    expect(delta('meterproof_store_statement_seconds_count{result="ok"}')).toBeGreaterThanOrEqual(4);
    for (const phase of ['read', 'trust', 'check']) expect(delta(`meterproof_verify_phase_seconds_count{phase="${phase}"}`)).toBe(2);
    expect(delta('meterproof_verifications_total{result="valid"}')).toBe(1);
    expect(delta(`meterproof_verifications_total{result="${badCode}"}`)).toBe(1);
    expect(delta('meterproof_revocation_lists_served_total{endpoint="/.well-known/billing-revocations.json"}')).toBe(1);
    // verify reads the trust material, which holds the revocation list, but does not serve it
    expect(delta('meterproof_revocation_lists_served_total{endpoint="/v1/trust"}')).toBe(0);
    // route patterns, not paths
    expect(delta('meterproof_http_requests_total{method="GET",route="/v1/attestations/:id",status="200"}')).toBe(1);
    expect(delta('meterproof_http_requests_total{method="POST",route="/v1/attest",status="201"}')).toBe(3);
    expect([...m.keys()].some((k) => k.includes(ids[2]!))).toBe(false);
    // from the store: no prover runs here, so every job of this file is queued
    expect(m.get('meterproof_proof_jobs{status="queued"}')).toBe(5);
    expect(m.get('meterproof_proof_jobs{status="failed"}')).toBe(0);
    expect(m.get('meterproof_proof_queue_oldest_age_seconds')).toBeGreaterThan(0);
    expect(m.get('meterproof_store_up')).toBe(1);
    // the log: every acknowledged attestation ends up in it
    // The service's own sequencer runs every 5 ms: integrate() skips a round while it holds the
    // lock, so wait (bounded) for the signed checkpoint to cover all five.
    let after = await scrape();
    for (let i = 0; i < 200 && after.get('meterproof_log_size') !== 5; i++) {
      await s.log.integrate();
      await new Promise((r) => setTimeout(r, 25));
      after = await scrape();
    }
    expect(after.get('meterproof_log_size')).toBe(5);
    expect(after.get('meterproof_log_queue_depth')).toBe(0);
    expect(after.get('meterproof_log_checkpoint_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(after.get('meterproof_sync_waiters')).toBe(0);
    expect(after.has('meterproof_process_cpu_seconds_total')).toBe(true);
  });

  it('reports the store as down when it does not answer', async () => {
    const { testStore } = await import('./support/db.ts');
    const store = await testStore();
    await store.cleanup(); // closed: every query fails
    const app = createApp({ ...s.container.deps, db: store.database.db });
    const r = await app.request('/metrics', { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(r.status).toBe(200);
    expect(parse(await r.text()).get('meterproof_store_up')).toBe(0);
    const ready = await app.request('/ready');
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { checks: unknown }).checks).toMatchObject({ store: 'unreachable', migrations: 'unknown' });
  });
});

describe('request log', () => {
  function capture() {
    const lines: string[] = [];
    const dest = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        cb();
      },
    });
    return { lines, logger: createLogger({ level: 'info', destination: dest }) };
  }

  it('one JSON line per request: request id (accepted or made, and returned), method, route pattern, status, duration; never the bearer token', async () => {
    const { lines, logger } = capture();
    const app = createApp({ ...s.container.deps, logger });
    const r = await app.request('/v1/attest', {
      method: 'POST',
      headers: { authorization: `Bearer ${attestKey}`, 'content-type': 'application/json', 'x-request-id': 'req-42.a:b' },
      body: JSON.stringify(body('log-1')),
    });
    expect(r.status).toBe(201);
    expect(r.headers.get('x-request-id')).toBe('req-42.a:b');
    const id = r.headers.get('x-attestation-id')!;
    const g = await app.request(`/v1/attestations/${id}`, { headers: { authorization: `Bearer ${attestKey}`, 'x-request-id': 'bad id with spaces' } });
    expect(g.status).toBe(200);
    const made = g.headers.get('x-request-id')!;
    expect(made).toMatch(/^[0-9a-f-]{36}$/);
    expect((await app.request('/v1/attestations/nope', { headers: { authorization: 'Bearer mp_wrong_secret_123' } })).status).toBe(401);
    const out = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(out).toHaveLength(3);
    expect(out[0]).toMatchObject({ level: 'info', msg: 'request', req_id: 'req-42.a:b', method: 'POST', route: '/v1/attest', status: 201 });
    expect(typeof out[0]!['duration_ms']).toBe('number');
    expect(typeof out[0]!['time']).toBe('string');
    expect(out[1]).toMatchObject({ req_id: made, method: 'GET', route: '/v1/attestations/:id', status: 200 });
    expect(out[2]).toMatchObject({ route: '/v1/attestations/:id', status: 401 });
    const all = lines.join('\n');
    expect(all).not.toContain(attestKey);
    expect(all).not.toContain('mp_wrong_secret_123');
    expect(all).not.toContain(id); // the raw path is never logged
    expect(all.toLowerCase()).not.toContain('bearer');
  });

  it('a store error answered 503 is logged at warn with its SQLSTATE, never its message', async () => {
    const { lines, logger } = capture();
    const failing = Object.create(s.container.deps.attest) as typeof s.container.deps.attest;
    failing.get = async () => {
      throw Object.assign(new Error('Failed query: select * from api_keys where secret_hash = $1 params: deadbeefcafe'), { code: '57P01' });
    };
    const app = createApp({ ...s.container.deps, attest: failing, logger });
    const r = await app.request(`/v1/attestations/${'a'.repeat(64)}`, { headers: { authorization: `Bearer ${attestKey}` } });
    expect(r.status).toBe(503);
    const out = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(out.find((l) => l['msg'] === 'store unavailable')).toMatchObject({ level: 'warn', route: '/v1/attestations/:id', err: { type: 'StoreError', code: '57P01' } });
    expect(lines.join('\n')).not.toContain('deadbeefcafe');
  });

  it('the request line is the line pino writes for the same fields, and JSON whatever the method', () => {
    const { lines, logger } = capture();
    const write = requestLineWriter(logger);
    for (const method of ['POST', 'M"E\\T\nHOD\u2028']) {
      const f = { req_id: 'req-1', method, route: '/v1/attest', status: 201, duration_ms: 1.25 };
      logger.info(f, 'request');
      write(f);
    }
    logger.flush();
    expect(lines).toHaveLength(4);
    const untimed = (l: string) => ({ ...(JSON.parse(l) as Record<string, unknown>), time: 't' });
    expect(untimed(lines[1]!)).toStrictEqual(untimed(lines[0]!));
    expect(Object.keys(JSON.parse(lines[1]!) as object)).toEqual(Object.keys(JSON.parse(lines[0]!) as object));
    expect(untimed(lines[3]!)).toStrictEqual(untimed(lines[2]!));
    expect((JSON.parse(lines[3]!) as { time: string }).time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // a child logger's own bindings are kept (it is written through pino)
    requestLineWriter(logger.child({ component: 'edge' }))({ req_id: 'req-2', method: 'GET', route: '/health', status: 200, duration_ms: 0.5 });
    logger.flush();
    expect(JSON.parse(lines[4]!)).toMatchObject({ component: 'edge', req_id: 'req-2', msg: 'request' });
  });

  it('LOG_LEVEL=warn leaves out the request lines', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });
    const app = createApp({ ...s.container.deps, logger });
    expect((await app.request('/health')).status).toBe(200);
    expect(lines).toEqual([]);
  });
});
