// An admin key with a tenant allowlist administers those tenants only, over the real service and
// store (PostgreSQL with DATABASE_URL, PGlite otherwise): routes for one tenant check the
// allowlist, lists keep its tenants, and what acts for every tenant needs an admin key without an
// allowlist — so such a key cannot mint itself a wider key, rotate the service key or publish
// into the shared catalogues. Every refusal is checked to have changed nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pilotEvent } from './support/fixtures.ts';
import { testService, type TestService } from './support/service.ts';

let s: TestService;
let tenantAdmin: string;
const tariff = { tariff_id: 'ta_t', tariff_version: '1', tariff_class: 'usage_linear', unit_price_micros: 1_000, currency: 'USD' };
const plan = {
  plan_id: 'ta_plan',
  plan_version: '1',
  currency: 'USD',
  meters: [{ endpoint: '/v1/ta', tariff: { tariff_id: 'ta_t', tariff_version: '1' }, overage_tiers: [{ up_to: null, unit_price_micros: 1_000 }] }],
};
const subscription = (tenant: string) => ({ tenant_id: tenant, plan_id: 'ta_plan', plan_version: '1', effective_from: '2026-01-01T00:00:00Z' });
const asTenantAdmin = (method: string, url: string, body?: unknown) => s.call(method, url, { token: tenantAdmin, ...(body === undefined ? {} : { body }) });
const codeOf = async (method: string, url: string, body?: unknown) => {
  const r = await asTenantAdmin(method, url, body);
  return `${r.status} ${r.body?.code ?? ''}`.trim();
};

beforeAll(async () => {
  s = await testService();
  for (const id of ['ta_mine', 'ta_theirs']) expect((await s.call('POST', '/v1/admin/tenants', { body: { id } })).status).toBe(201);
  expect((await s.call('POST', '/v1/admin/tariffs', { body: tariff })).status).toBe(201);
  expect((await s.call('POST', '/v1/admin/plans', { body: plan })).status).toBe(201);
  expect((await s.call('POST', '/v1/admin/subscriptions', { body: subscription('ta_theirs') })).status).toBe(201);
  tenantAdmin = (await s.call('POST', '/v1/admin/api-keys', { body: { name: 'mine', scopes: ['admin'], tenants: ['ta_mine'] } })).body.secret;
}, 60_000);
afterAll(async () => s?.close());

describe('an admin key with a tenant allowlist', () => {
  it('cannot act for every tenant: API keys, catalogues, the service key, revocations, webhooks, proofs, metrics (403 FORBIDDEN)', async () => {
    const keysBefore = (await s.call('GET', '/v1/admin/api-keys')).body.items.length;
    const jwksBefore = (await s.call('GET', '/v1/keys')).body;
    const refused = [
      ['POST', '/v1/admin/api-keys', { name: 'wider', scopes: ['admin'] }],
      ['GET', '/v1/admin/api-keys'],
      ['DELETE', '/v1/admin/api-keys/some-key'],
      ['POST', '/v1/admin/tariffs', { ...tariff, tariff_version: '2' }],
      ['POST', '/v1/admin/plans', { ...plan, plan_version: '2' }],
      ['POST', '/v1/admin/keys/rotate', {}],
      ['POST', '/v1/admin/revocations/keys', { key_id: 'k', reason: 'x' }],
      ['POST', '/v1/admin/revocations/attestations', { attestation_id: '0'.repeat(64), reason: 'x' }],
      ['POST', '/v1/admin/webhooks', { url: 'https://example.com/hook', tenant_id: 'ta_mine' }],
      ['GET', '/v1/admin/webhooks'],
      ['DELETE', '/v1/admin/webhooks/w1'],
      ['GET', '/v1/admin/webhooks/w1/deliveries'],
      ['POST', '/v1/admin/proofs/requeue', {}],
      ['GET', '/metrics'], // its series name every tenant and its volumes
    ] as const;
    for (const [method, url, body] of refused) expect(`${method} ${url} ${await codeOf(method, url, body)}`).toBe(`${method} ${url} 403 FORBIDDEN`);
    // nothing changed
    expect((await s.call('GET', '/v1/admin/api-keys')).body.items.length).toBe(keysBefore);
    expect((await s.call('GET', '/v1/keys')).body).toEqual(jwksBefore);
    expect((await s.call('GET', '/v1/tariffs/ta_t/2')).status).toBe(404);
    expect((await s.call('GET', '/v1/plans/ta_plan/2')).status).toBe(404);
    expect((await s.call('GET', '/v1/admin/webhooks')).body.items).toEqual([]);
    // a metrics key with an allowlist neither; one without reads them
    const metricsKey = async (tenants?: string[]) => (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['metrics'], ...(tenants ? { tenants } : {}) } })).body.secret;
    const scrape = async (token: string) => {
      const r = await s.call('GET', '/metrics', { token });
      return `${r.status} ${r.body?.code ?? ''}`.trim();
    };
    expect(await scrape(await metricsKey(['ta_mine']))).toBe('403 FORBIDDEN');
    expect(await scrape(await metricsKey())).toBe('200');
    // the shared catalogues stay readable
    expect((await asTenantAdmin('GET', '/v1/admin/tariffs')).status).toBe(200);
    expect((await asTenantAdmin('GET', '/v1/admin/plans')).status).toBe(200);
  });

  it("refuses another tenant's routes (403 TENANT_FORBIDDEN) and changes nothing", async () => {
    const pk = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };
    const refused = [
      ['POST', '/v1/admin/tenants', { id: 'ta_theirs' }],
      ['POST', '/v1/admin/tenants', { id: 'ta_new' }],
      ['GET', '/v1/admin/tenants/ta_theirs'],
      ['PUT', '/v1/admin/tenants/ta_theirs/proof-policy', { policy: 'on_demand' }],
      ['PUT', '/v1/admin/tenants/ta_theirs/consumer-pop', { consumer_pop: 'required' }],
      ['GET', '/v1/admin/tenants/ta_theirs/default-tariffs'],
      ['PUT', '/v1/admin/tenants/ta_theirs/default-tariffs/%2Fv1%2Fta', { tariff_id: 'ta_t', tariff_version: '1' }],
      ['DELETE', '/v1/admin/tenants/ta_theirs/default-tariffs/%2Fv1%2Fta'],
      ['POST', '/v1/admin/consumers', { tenant_id: 'ta_theirs', consumer_id: 'c1', public_key: pk }],
      ['GET', '/v1/admin/consumers?tenant_id=ta_theirs'],
      ['GET', '/v1/admin/consumers/ta_theirs/c1'],
      ['POST', '/v1/admin/consumers/ta_theirs/c1/keys', { public_key: pk }],
      ['POST', '/v1/admin/consumers/ta_theirs/c1/keys/k1/revoke', {}],
      ['POST', '/v1/admin/subscriptions', { ...subscription('ta_theirs'), effective_from: '2026-03-01T00:00:00Z' }],
      ['GET', '/v1/admin/subscriptions?tenant_id=ta_theirs'],
      ['POST', '/v1/settlements', { tenant_id: 'ta_theirs', billing_window_id: '2026-05' }],
      ['POST', '/v1/settlements/adjustments', { tenant_id: 'ta_theirs', kind: 'credit', amount_micros: 1, currency: 'USD', attestation_ids: [`sha256:${'0'.repeat(64)}`], reason: 'x' }],
    ] as const;
    for (const [method, url, body] of refused) expect(`${method} ${url} ${await codeOf(method, url, body)}`).toBe(`${method} ${url} 403 TENANT_FORBIDDEN`);
    expect((await s.call('GET', '/v1/admin/tenants/ta_new')).status).toBe(404);
    expect((await s.call('GET', '/v1/admin/tenants/ta_theirs')).body.proof_policy.policy).toBe('eager');
    expect((await s.call('GET', '/v1/admin/consumers?tenant_id=ta_theirs')).body.items).toEqual([]);
    expect((await s.call('GET', '/v1/admin/tenants/ta_theirs/default-tariffs')).body.items).toEqual([]);
    expect((await s.call('GET', '/v1/admin/subscriptions?tenant_id=ta_theirs')).body.items).toHaveLength(1);
    expect((await s.call('GET', '/v1/settlements?tenant_id=ta_theirs')).body.items).toEqual([]);
  });

  it('administers its own tenant; lists show only its tenants; another tenant’s settlement is not found', async () => {
    expect((await asTenantAdmin('POST', '/v1/admin/tenants', { id: 'ta_mine' })).status).toBe(200);
    expect((await asTenantAdmin('GET', '/v1/admin/tenants/ta_mine')).status).toBe(200);
    expect((await asTenantAdmin('GET', '/v1/admin/tenants')).body.items.map((t: { id: string }) => t.id)).toEqual(['ta_mine']);
    expect((await asTenantAdmin('POST', '/v1/admin/subscriptions', subscription('ta_mine'))).status).toBe(201);
    expect((await asTenantAdmin('GET', '/v1/admin/subscriptions?tenant_id=ta_mine')).body.items).toHaveLength(1);
    expect((await asTenantAdmin('GET', '/v1/admin/consumers')).body.items).toEqual([]);

    // one event for each tenant (ta_theirs takes one without a PoP: its PoP policy was not set
    // above); each window settled by the tenant admin or the admin token
    for (const [i, tenant] of ['ta_mine', 'ta_theirs'].entries()) {
      const body = { meter_event: { ...pilotEvent, event_id: `ta-e${i}`, tenant_id: tenant, endpoint: '/v1/ta', usage_units: 5 } };
      expect((await s.call('POST', '/v1/attest', { body })).status).toBe(201);
    }
    const mine = await asTenantAdmin('POST', '/v1/settlements', { tenant_id: 'ta_mine', billing_window_id: pilotEvent.billing_window_id });
    expect(mine.status).toBe(201);
    const theirs = await s.call('POST', '/v1/settlements', { body: { tenant_id: 'ta_theirs', billing_window_id: pilotEvent.billing_window_id } });
    expect(theirs.status).toBe(201);
    expect((await asTenantAdmin('PATCH', `/v1/settlements/${mine.body.id}/status`, { status: 'invoiced' })).status).toBe(200);
    expect(await codeOf('PATCH', `/v1/settlements/${theirs.body.id}/status`, { status: 'invoiced' })).toBe('404 NOT_FOUND');
    expect((await s.call('GET', `/v1/settlements/${theirs.body.id}`)).body.status).toBe('pending');
  });
});
