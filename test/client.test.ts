// meterproof/client against the real server over HTTP: typed results and problems, retries that
// are safe because attest is idempotent (a lost answer is retried into a replay), Retry-After,
// no retry of calls that are not idempotent, and the auto-batcher.
import type { AddressInfo } from 'node:net';
import { serve as serveHttp } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeterproofClient, MeterproofNetworkError, MeterproofProblem, type AttestBody, type TariffSnapshotInput } from '../src/client/index.ts';
import { createApp } from '../src/http/app.ts';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { ADMIN, testService, type TestService } from './support/service.ts';

let s: TestService;
let server: ReturnType<typeof serveHttp>;
let baseUrl: string;
let key: string;

const body = (eventId: string, over: Record<string, unknown> = {}): AttestBody => ({
  meter_event: { ...pilotEvent, event_id: eventId, ...over },
  tariff: { tariff_id: pilotTariff.tariff_id, tariff_version: pilotTariff.tariff_version },
});

/** A fetch that counts calls and can misbehave on chosen ones. */
function spyFetch(misbehave: (n: number, url: string) => 'lose-answer' | 'refuse' | Response | undefined = () => undefined) {
  const calls: string[] = [];
  const f = (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const url = String(input);
    calls.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`);
    const m = misbehave(calls.length, url);
    if (m === 'refuse') throw new TypeError('fetch failed: connect ECONNREFUSED');
    if (m instanceof Response) return m;
    const res = await fetch(input, init);
    if (m === 'lose-answer') {
      await res.text(); // the server has done the work; the answer never reaches the caller
      throw new TypeError('fetch failed: socket hang up');
    }
    return res;
  }) as typeof fetch;
  return { f, calls };
}

const noSleep = () => {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
};

beforeAll(async () => {
  s = await testService();
  server = serveHttp({ fetch: createApp(s.container.deps).fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((r) => server.once('listening', () => r()));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const admin = new MeterproofClient({ baseUrl, apiKey: ADMIN });
  await admin.admin.createTenant({ id: 'tenant_acme' });
  await admin.admin.publishTariff(pilotTariff as TariffSnapshotInput);
  key = (await admin.admin.createApiKey({ scopes: ['attest', 'read'], tenants: ['tenant_acme'] })).secret;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await s?.close();
});

describe('typed calls', () => {
  it('attests, answers a repeat as a replay, reads, lists and verifies', async () => {
    const c = new MeterproofClient({ baseUrl, apiKey: key });
    const a = await c.attest(body('cl-1'));
    expect(a.created).toBe(true);
    expect(a.bundle.attestation.statement.charge_micros).toBe('221040');
    const again = await c.attest(body('cl-1'));
    expect([again.created, again.id]).toEqual([false, a.id]);
    const min = await c.attestMinimal(body('cl-2'));
    expect(min).toMatchObject({ created: true, proof_status: 'pending' });
    expect((await c.getAttestation(a.id)).attestation.statement).toEqual(a.bundle.attestation.statement);
    const report = await c.verify(await c.getAttestation(a.id, {}), { profile: 'standard' });
    expect(report.checks.find((x) => x.name === 'signature')?.status).toBe('pass');
    const ids: string[] = [];
    for await (const item of c.attestations({ tenantId: 'tenant_acme', pageSize: 1 })) ids.push(item.id);
    expect(ids).toContain(a.id);
    expect(ids).toContain(min.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('turns problem+json into a MeterproofProblem with its code, field errors and no retry', async () => {
    const spy = spyFetch();
    const c = new MeterproofClient({ baseUrl, apiKey: key, fetch: spy.f });
    const err = await c.attest(body('cl-bad', { usage_units: -1 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeterproofProblem);
    expect(err).toMatchObject({ status: 400, code: 'INVALID_METER_EVENT' });
    expect((err as MeterproofProblem).errors[0]?.path).toBe('meter_event.usage_units');
    expect(spy.calls).toHaveLength(1);
    const forbidden = await c.attest(body('cl-x', { tenant_id: 'tenant_other' })).catch((e: unknown) => e);
    expect(forbidden).toMatchObject({ status: 403, code: 'TENANT_FORBIDDEN' });
    const unauth = await new MeterproofClient({ baseUrl, apiKey: 'mp_nope' }).listAttestations({ tenantId: 'tenant_acme' }).catch((e: unknown) => e);
    expect(unauth).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
  });
});

describe('retries', () => {
  it('a lost answer is retried into a replay: one attestation, the same id', async () => {
    const spy = spyFetch((n) => (n === 1 ? 'lose-answer' : undefined));
    const waits = noSleep();
    const c = new MeterproofClient({ baseUrl, apiKey: key, fetch: spy.f, sleep: waits.sleep });
    const a = await c.attest(body('cl-lost'));
    expect(spy.calls).toEqual(['POST /v1/attest', 'POST /v1/attest']);
    expect(a.created).toBe(false); // the first attempt created it; the retry is its replay
    const all: string[] = [];
    for await (const item of new MeterproofClient({ baseUrl, apiKey: key }).attestations({ tenantId: 'tenant_acme' })) if (item.bundle.meter_event.event_id === 'cl-lost') all.push(item.id);
    expect(all).toEqual([a.id]);
    expect(waits.waits).toHaveLength(1);
  });

  it('honours Retry-After on 503 and gives up after the retry budget with the last problem', async () => {
    const unavailable = () => new Response(JSON.stringify({ status: 503, code: 'STORE_UNAVAILABLE', detail: 'down' }), { status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': '2' } });
    const spy = spyFetch((n) => (n <= 2 ? unavailable() : undefined));
    const waits = noSleep();
    const c = new MeterproofClient({ baseUrl, apiKey: key, fetch: spy.f, sleep: waits.sleep });
    expect((await c.attest(body('cl-503'))).created).toBe(true);
    expect(waits.waits).toEqual([2000, 2000]);
    const always = spyFetch(() => unavailable());
    const w2 = noSleep();
    const err = await new MeterproofClient({ baseUrl, apiKey: key, fetch: always.f, sleep: w2.sleep, retry: { retries: 3, maxMs: 500 } }).attest(body('cl-503b')).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, code: 'STORE_UNAVAILABLE', retryAfter: 2 });
    expect(always.calls).toHaveLength(4);
    expect(w2.waits).toEqual([500, 500, 500]); // Retry-After capped by maxMs
  });

  it('backs off exponentially on refused connections', async () => {
    const spy = spyFetch((n) => (n <= 3 ? 'refuse' : undefined));
    const waits = noSleep();
    const c = new MeterproofClient({ baseUrl, apiKey: key, fetch: spy.f, sleep: waits.sleep, retry: { baseMs: 100 } });
    expect((await c.attest(body('cl-refused'))).created).toBe(true);
    expect(waits.waits).toHaveLength(3);
    waits.waits.forEach((w, i) => expect(w).toBeLessThanOrEqual(100 * 2 ** i));
  });

  it('does not retry a call that is not idempotent', async () => {
    const spy = spyFetch((n) => (n === 1 ? 'refuse' : undefined));
    const c = new MeterproofClient({ baseUrl, apiKey: ADMIN, fetch: spy.f, sleep: noSleep().sleep });
    await expect(c.admin.createApiKey({ scopes: ['read'] })).rejects.toBeInstanceOf(MeterproofNetworkError);
    expect(spy.calls).toHaveLength(1);
  });
});

describe('auto-batcher', () => {
  it('gathers calls into batches of at most 1,000 and answers each call with its own item', async () => {
    const spy = spyFetch();
    const c = new MeterproofClient({ baseUrl, apiKey: key, fetch: spy.f });
    const b = c.batcher({ maxEvents: 1000, maxDelayMs: 50 });
    const n = 2100;
    const calls: Promise<unknown>[] = Array.from({ length: n }, (_, i) => b.attest(body(`cl-ab-${i}`, i === 7 ? { usage_units: 'x' } : {})).then(
      (r) => r.bundle.meter_event.event_id,
      (e: unknown) => e,
    ));
    await b.flush();
    const results = await Promise.all(calls);
    expect(spy.calls).toEqual(['POST /v1/attest/batch', 'POST /v1/attest/batch', 'POST /v1/attest/batch']);
    results.forEach((r: unknown, i: number) => {
      if (i === 7) expect(r).toMatchObject({ status: 400, code: 'INVALID_METER_EVENT' });
      else expect(r).toBe(`cl-ab-${i}`);
    });
  });

  it('sends a partial batch after maxDelayMs', async () => {
    const spy = spyFetch();
    const b = new MeterproofClient({ baseUrl, apiKey: key, fetch: spy.f }).batcher({ maxDelayMs: 20 });
    const [x, y] = await Promise.all([b.attest(body('cl-d-1')), b.attest(body('cl-d-2'))]);
    expect([x.created, y.created]).toEqual([true, true]);
    expect(spy.calls).toEqual(['POST /v1/attest/batch']);
  });
});
