// CloudEvents structured and batched mode, priced with the tenant's default tariff per meter.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verify } from '../src/verifier/index.ts';
import { graduatedTariff, pilotTariff } from './support/fixtures.ts';
import { testService, type TestService } from './support/service.ts';

let s: TestService;
let attestKey: string;
let attestOther: string;

const CE = 'application/cloudevents+json';
const CE_BATCH = 'application/cloudevents-batch+json';

const ce = (id: string, over: Record<string, unknown> = {}, data: Record<string, unknown> = {}) => ({
  specversion: '1.0',
  id,
  source: 'urn:acme:gateway',
  type: 'dev.acme.search',
  time: '2026-05-29T12:00:00Z',
  subject: '/v1/search',
  data: { tenant_id: 'tenant_ce', api_key_id: 'k', usage_units: 100, contract_version: 'c1', billing_window_id: '2026-05', ...data },
  ...over,
});

const post = (url: string, body: unknown, contentType: string, token = attestKey) => s.call('POST', url, { token, raw: JSON.stringify(body), headers: { 'content-type': contentType } });

beforeAll(async () => {
  s = await testService();
  for (const id of ['tenant_ce', 'tenant_ce_other']) expect((await s.call('POST', '/v1/admin/tenants', { body: { id } })).status).toBe(201);
  for (const t of [pilotTariff, graduatedTariff]) expect((await s.call('POST', '/v1/admin/tariffs', { body: t })).status).toBe(201);
  attestKey = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest'], tenants: ['tenant_ce'] } })).body.secret;
  attestOther = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest'], tenants: ['tenant_ce_other'] } })).body.secret;
});
afterAll(async () => s?.close());

const ref = (t: { tariff_id: string; tariff_version: string }) => ({ tariff_id: t.tariff_id, tariff_version: t.tariff_version });

describe('default tariffs (admin)', () => {
  it('sets, lists, replaces and deletes a default per meter; refuses unpublished versions and unknown tenants', async () => {
    const put = await s.call('PUT', '/v1/admin/tenants/tenant_ce/default-tariffs/*', { body: ref(pilotTariff) });
    expect(put.status, JSON.stringify(put.body)).toBe(201);
    expect(put.body).toMatchObject({ meter: '*', ...ref(pilotTariff) });
    expect((await s.call('PUT', '/v1/admin/tenants/tenant_ce/default-tariffs/*', { body: ref(pilotTariff) })).status).toBe(200);
    const tmp = await s.call('PUT', '/v1/admin/tenants/tenant_ce/default-tariffs/%2Fv1%2Ftmp', { body: ref(graduatedTariff) });
    expect(tmp.status).toBe(201);
    expect(tmp.body.meter).toBe('/v1/tmp'); // an endpoint, percent-encoded in the path
    const list = await s.call('GET', '/v1/admin/tenants/tenant_ce/default-tariffs');
    expect(list.body.items.map((x: { meter: string }) => x.meter)).toEqual(['*', '/v1/tmp']);
    expect((await s.call('DELETE', '/v1/admin/tenants/tenant_ce/default-tariffs/%2Fv1%2Ftmp')).status).toBe(204);
    expect((await s.call('DELETE', '/v1/admin/tenants/tenant_ce/default-tariffs/%2Fv1%2Ftmp')).body.code).toBe('NOT_FOUND');

    const unpublished = await s.call('PUT', '/v1/admin/tenants/tenant_ce/default-tariffs/*', { body: { tariff_id: 'nope', tariff_version: '1' } });
    expect([unpublished.status, unpublished.body.code]).toEqual([422, 'TARIFF_NOT_PUBLISHED']);
    const badRef = await s.call('PUT', '/v1/admin/tenants/tenant_ce/default-tariffs/*', { body: { tariff_id: 'x' } });
    expect([badRef.status, badRef.body.code]).toEqual([400, 'INVALID_TARIFF_REF']);
    const noTenant = await s.call('PUT', '/v1/admin/tenants/tenant_none/default-tariffs/*', { body: ref(pilotTariff) });
    expect([noTenant.status, noTenant.body.code]).toEqual([404, 'TENANT_UNKNOWN']);
    // only admins
    expect((await s.call('PUT', '/v1/admin/tenants/tenant_ce/default-tariffs/*', { token: attestKey, body: ref(graduatedTariff) })).status).toBe(403);
  });
});

describe('CloudEvents structured mode', () => {
  it('attests a bare CloudEvent priced with the default tariff, and the bundle verifies', async () => {
    const r = await post('/v1/attest', ce('ce-s-1'), CE);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.tariff_snapshot).toMatchObject(ref(pilotTariff));
    expect(r.body.meter_event).toMatchObject({ event_id: 'ce-s-1', endpoint: '/v1/search', usage_units: '100' });
    const report = await verify(r.body, (await s.call('GET', '/v1/trust', { token: null })).body, { profile: 'standard' });
    expect(report.valid, JSON.stringify(report.checks)).toBe(true);
    // an exact replay is a replay
    expect((await post('/v1/attest', ce('ce-s-1'), CE)).status).toBe(200);
  });

  it('the most specific default wins: CloudEvents type, then endpoint, then *', async () => {
    await s.call('PUT', '/v1/admin/tenants/tenant_ce/default-tariffs/%2Fv1%2Fsearch', { body: ref(graduatedTariff) });
    expect((await post('/v1/attest', ce('ce-s-2'), CE)).body.tariff_snapshot.tariff_id).toBe(graduatedTariff.tariff_id);
    await s.call('PUT', '/v1/admin/tenants/tenant_ce/default-tariffs/dev.acme.search', { body: ref(pilotTariff) });
    expect((await post('/v1/attest', ce('ce-s-3'), CE)).body.tariff_snapshot.tariff_id).toBe(pilotTariff.tariff_id);
    // another type on the same endpoint falls back to the endpoint's default
    expect((await post('/v1/attest', ce('ce-s-4', { type: 'dev.acme.other' }), CE)).body.tariff_snapshot.tariff_id).toBe(graduatedTariff.tariff_id);
    await s.call('DELETE', '/v1/admin/tenants/tenant_ce/default-tariffs/dev.acme.search');
    await s.call('DELETE', '/v1/admin/tenants/tenant_ce/default-tariffs/%2Fv1%2Fsearch');
  });

  it('the tariffid and tariffversion extension attributes name the tariff explicitly', async () => {
    const r = await post('/v1/attest', { ...ce('ce-s-5'), tariffid: graduatedTariff.tariff_id, tariffversion: graduatedTariff.tariff_version }, CE);
    expect(r.status).toBe(201);
    expect(r.body.tariff_snapshot.tariff_id).toBe(graduatedTariff.tariff_id);
    const half = await post('/v1/attest', { ...ce('ce-s-6'), tariffid: graduatedTariff.tariff_id }, CE);
    expect([half.status, half.body.code]).toEqual([400, 'INVALID_TARIFF_REF']);
    const unknown = await post('/v1/attest', { ...ce('ce-s-7'), tariffid: 'nope', tariffversion: '1' }, CE);
    expect([unknown.status, unknown.body.code]).toEqual([422, 'TARIFF_NOT_PUBLISHED']);
  });

  it('without a default the event is refused, naming the meters tried; nothing is stored', async () => {
    const r = await post('/v1/attest', ce('ce-o-1', {}, { tenant_id: 'tenant_ce_other' }), CE, attestOther);
    expect([r.status, r.body.code]).toEqual([400, 'TARIFF_REQUIRED']);
    expect(r.body.detail).toContain('dev.acme.search, /v1/search, *');
    const list = await s.call('GET', '/v1/attestations?tenant_id=tenant_ce_other');
    expect(list.body.items).toHaveLength(0);
  });

  it("a key for one tenant cannot probe another tenant's defaults", async () => {
    // tenant_ce_other has no default: a tenant_ce key learns nothing of that, it is refused first
    const r = await post('/v1/attest', ce('ce-x-1', {}, { tenant_id: 'tenant_ce_other' }), CE);
    expect([r.status, r.body.code]).toEqual([403, 'TENANT_FORBIDDEN']);
  });

  it('refuses a cloudevents+json body that is not a CloudEvent, and a malformed CloudEvent', async () => {
    const notCe = await post('/v1/attest', { meter_event: {} }, CE);
    expect([notCe.status, notCe.body.code]).toEqual([400, 'INVALID_CLOUDEVENT']);
    const bad = await post('/v1/attest', { ...ce('ce-bad'), specversion: '0.3' }, CE);
    expect([bad.status, bad.body.code]).toEqual([400, 'INVALID_METER_EVENT']);
    const extra = await post('/v1/attest', { ...ce('ce-bad'), traceparent: 'x' }, CE);
    expect([extra.status, extra.body.code]).toEqual([400, 'INVALID_METER_EVENT']);
  });

  it('a bare CloudEvent sent as application/json is accepted too', async () => {
    const r = await post('/v1/attest', ce('ce-s-8'), 'application/json');
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  });
});

describe('CloudEvents batched mode', () => {
  it('attests an array of CloudEvents with a result per item', async () => {
    const events = [ce('ce-b-1'), ce('ce-b-2', {}, { usage_units: 7 }), ce('ce-b-1'), ce('ce-b-3', {}, { usage_units: -1 })];
    const r = await post('/v1/attest/batch', events, CE_BATCH);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.results.map((x: { status: number }) => x.status)).toEqual([201, 201, 200, 400]);
    expect(r.body.results[1].bundle.meter_event.usage_units).toBe('7');
    expect(r.body.results[1].bundle.tariff_snapshot.tariff_id).toBe(pilotTariff.tariff_id);
  });

  it('refuses a body that is not an array of CloudEvents, naming the item', async () => {
    const notArray = await post('/v1/attest/batch', { events: [ce('ce-b-9')] }, CE_BATCH);
    expect([notArray.status, notArray.body.code]).toEqual([400, 'BAD_REQUEST']);
    const mixed = await post('/v1/attest/batch', [ce('ce-b-9'), { meter_event: {} }], CE_BATCH);
    expect([mixed.status, mixed.body.code]).toEqual([400, 'INVALID_CLOUDEVENT']);
    expect(mixed.body.errors[0].path).toBe('[1]');
    expect((await post('/v1/attest/batch', [], CE_BATCH)).body.code).toBe('BATCH_SIZE');
    // nothing of the refused batches was stored
    const list = await s.call('GET', '/v1/attestations?tenant_id=tenant_ce&limit=200');
    expect(list.body.items.map((x: { bundle: { meter_event: { event_id: string } } }) => x.bundle.meter_event.event_id)).not.toContain('ce-b-9');
  });
});
