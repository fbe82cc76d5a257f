import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { serve as serveHttp } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/http/app.ts';
import { answerClientErrors } from '../src/http/problem.ts';
import { verifyBundle } from '../src/core/verify.ts';
import { verify } from '../src/verifier/index.ts';
import { graduatedTariff, pilotEvent, pilotTariff } from './support/fixtures.ts';
import { testService, type TestService } from './support/service.ts';

let s: TestService;
let attestKey: string;
let readAcme: string;
let readOther: string;

const ev = (over: Record<string, unknown> = {}) => ({ ...pilotEvent, ...over });

beforeAll(async () => {
  s = await testService();
  for (const id of ['tenant_acme', 'tenant_other']) expect((await s.call('POST', '/v1/admin/tenants', { body: { id, name: id } })).status).toBe(201);
  attestKey = (await s.call('POST', '/v1/admin/api-keys', { body: { name: 'backend', scopes: ['attest'] } })).body.secret;
  readAcme = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['read'], tenants: ['tenant_acme'] } })).body.secret;
  readOther = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['read'], tenants: ['tenant_other'] } })).body.secret;
});
afterAll(async () => s?.close());

describe('public endpoints', () => {
  it('serves health, status, JWKS, trust and OpenAPI', async () => {
    expect((await s.call('GET', '/health', { token: null })).body).toEqual({ status: 'ok' });
    const st = await s.call('GET', '/v1/status', { token: null });
    expect(st.body).toMatchObject({ status: 'operational', store: s.store.database.kind });
    const jwks = await s.call('GET', '/.well-known/jwks.json', { token: null });
    expect(jwks.body.keys).toHaveLength(1);
    expect(jwks.body.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', valid_until: null });
    expect(jwks.body.keys[0].d).toBeUndefined();
    const trust = await s.call('GET', '/v1/trust', { token: null });
    expect(trust.body.jwks).toEqual(jwks.body);
    const oa = await s.call('GET', '/openapi.json', { token: null });
    expect(oa.body.openapi).toBe('3.1.0');
    expect(Object.keys(oa.body.paths)).toContain('/v1/attest');
  });
});

describe('auth', () => {
  it('refuses missing, unknown and under-scoped keys with problem+json', async () => {
    const none = await s.call('POST', '/v1/attest', { token: null, body: {} });
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(none.body).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    expect((await s.call('POST', '/v1/attest', { token: 'mp_nope', body: {} })).status).toBe(401);
    expect((await s.call('POST', '/v1/attest', { token: readAcme, body: { meter_event: ev(), tariff_snapshot: pilotTariff } })).body.code).toBe('FORBIDDEN');
    expect((await s.call('GET', '/v1/admin/tenants', { token: attestKey })).status).toBe(403);
  });
  it('stores API keys only as hashes and shows the secret once', async () => {
    const list = await s.call('GET', '/v1/admin/api-keys');
    expect(JSON.stringify(list.body)).not.toContain(attestKey);
    expect(list.body.items.length).toBeGreaterThanOrEqual(3);
  });
  it('an attest key with a tenant allowlist cannot attest for another tenant', async () => {
    const k = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest'], tenants: ['tenant_other'] } })).body.secret;
    const r = await s.call('POST', '/v1/attest', { token: k, body: { meter_event: ev({ event_id: 'x-allow' }), tariff_snapshot: pilotTariff } });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('TENANT_FORBIDDEN');
  });
});

describe('attest', () => {
  let first: any;
  it("attests the seed's pilot event: 201, charge 221,040 micros, signed bundle that verifies", async () => {
    const r = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: pilotEvent, tariff_snapshot: pilotTariff } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    first = r.body;
    expect(Object.keys(first).sort()).toEqual(['attestation', 'billing', 'meter_event', 'salts', 'tariff_snapshot'].sort().concat(first.receipt ? ['receipt'] : []).sort());
    expect(first.billing.expected_charge_micros).toBe('221040');
    expect(r.headers.get('location')).toBe(`/v1/attestations/${r.headers.get('x-attestation-id')}`);
    const rep = await s.call('POST', '/v1/verify?profile=standard', { token: null, body: first });
    expect(rep.body.valid, JSON.stringify(rep.body)).toBe(true);
    // the same verdict offline from /v1/trust
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    expect((await verifyBundle(first, trust, { profile: 'standard' })).valid).toBe(true);
  });

  it('answers an exact replay with 200 and the original bundle; other content with 409', async () => {
    const again = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: pilotEvent, tariff_snapshot: pilotTariff } });
    expect(again.status).toBe(200);
    expect(again.body.attestation).toEqual(first.attestation);
    // the fresh answer (the bundle's text as written) and the replay (read back from the store)
    // are the same bundle, the receipt aside (the log may have integrated it meanwhile)
    const noReceipt = ({ receipt: _, ...rest }: Record<string, unknown>) => rest;
    expect(noReceipt(again.body)).toStrictEqual(noReceipt(first));
    // number vs string form of the same units is the same event
    const sameNormalized = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: { ...pilotEvent, usage_units: '1842' }, tariff_snapshot: pilotTariff } });
    expect(sameNormalized.status).toBe(200);
    const conflict = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: ev({ usage_units: 1843 }), tariff_snapshot: pilotTariff } });
    expect(conflict.status).toBe(409);
    expect(conflict.body.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('attests against a published tariff version and refuses an inline snapshot that differs from it', async () => {
    const pub = await s.call('POST', '/v1/admin/tariffs', { body: graduatedTariff });
    expect(pub.status).toBe(201);
    expect(pub.body.tariff_commitment).toMatch(/^\d+$/);
    expect((await s.call('POST', '/v1/admin/tariffs', { body: graduatedTariff })).status).toBe(200);
    const changed = await s.call('POST', '/v1/admin/tariffs', { body: { ...graduatedTariff, rounding_mode: 'floor' } });
    expect(changed.status).toBe(409);
    expect(changed.body.code).toBe('TARIFF_VERSION_EXISTS');
    const ref = { tariff_id: graduatedTariff.tariff_id, tariff_version: graduatedTariff.tariff_version };
    const a = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: ev({ event_id: 'g-1', endpoint: '/v1/vex', usage_units: 49_000 }), tariff: ref } });
    expect(a.status).toBe(201);
    expect(a.body.tariff_snapshot).toMatchObject(ref);
    const b = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: ev({ event_id: 'g-2', endpoint: '/v1/vex', usage_units: 2000 }), tariff: ref } });
    expect(b.body.billing.cumulative_units_before).toBe('49000');
    expect(b.body.billing.expected_charge_micros).toBe(String(1000 * 5000 + 1000 * 8000));
    expect(b.body.attestation.statement.chain.prev).toBe(`sha256:${a.headers.get('x-attestation-id')}`);
    // error outcome does not advance the running total
    const c = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: ev({ event_id: 'g-3', endpoint: '/v1/vex', usage_units: 5, outcome: 'error' }), tariff: ref } });
    expect(c.body.billing.expected_charge_micros).toBe('0');
    const d = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: ev({ event_id: 'g-4', endpoint: '/v1/vex', usage_units: 1 }), tariff: ref } });
    expect(d.body.billing.cumulative_units_before).toBe('51000');
    const mismatch = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: ev({ event_id: 'g-5' }), tariff: ref, tariff_snapshot: { ...graduatedTariff, currency: 'EUR' } } });
    expect(mismatch.status).toBe(422);
    expect(mismatch.body.code).toBe('TARIFF_MISMATCH');
  });

  it('attesting with an inline tariff does not publish it (publishing is the admin\'s): each event gets its own tariff salt', async () => {
    const privateTariff = { ...pilotTariff, tariff_version: 'private-1', unit_price_micros: 777 };
    const bodyOf = (id: string) => ({ meter_event: ev({ event_id: id, endpoint: '/v1/private' }), tariff_snapshot: privateTariff });
    const x = await s.call('POST', '/v1/attest', { token: attestKey, body: bodyOf('p-1') });
    const y = await s.call('POST', '/v1/attest', { token: attestKey, body: bodyOf('p-2') });
    expect([x.status, y.status]).toEqual([201, 201]);
    expect(x.body.salts.tariff).not.toBe(y.body.salts.tariff);
    expect(x.body.attestation.statement.tariff_digest).not.toBe(y.body.attestation.statement.tariff_digest);
    // not a published version: not readable, not in the trust material, and the admin may still publish that id and version
    expect((await s.call('GET', `/v1/tariffs/${privateTariff.tariff_id}/private-1`, {})).status).toBe(404);
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    expect(trust.tariffs.some((t: { tariff_version: string }) => t.tariff_version === 'private-1')).toBe(false);
    expect((await verify(x.body, trust, { profile: 'standard' })).valid).toBe(true);
  });

  it('the trust material carries the salted v2 commitment of a published version and no unsalted v1 commitment (it would confirm guessed prices)', async () => {
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    const entries = trust.tariffs.filter((t: { tariff_id: string }) => t.tariff_id === graduatedTariff.tariff_id);
    expect(entries).toEqual([{ tariff_id: graduatedTariff.tariff_id, tariff_version: graduatedTariff.tariff_version, binding: 'bn128-poseidon8-v2', tariff_commitment: expect.stringMatching(/^\d+$/) }]);
    const published = (await s.call('GET', `/v1/tariffs/${graduatedTariff.tariff_id}/${graduatedTariff.tariff_version}`, {})).body;
    expect(entries[0].tariff_commitment).toBe(published.v2.tariff_commitment);
    expect(JSON.stringify(trust)).not.toContain(published.v2.salt);
    expect(JSON.stringify(trust)).not.toContain(published.tariff_commitment);
  });

  it('accepts the CloudEvents 1.0 form of an event', async () => {
    const ce = {
      specversion: '1.0',
      id: 'ce-1',
      source: 'urn:acme:gateway',
      type: 'dev.meterproof.usage',
      time: '2026-05-29T12:00:00Z',
      subject: '/v1/completions',
      data: { tenant_id: 'tenant_acme', api_key_id: 'k', usage_units: 10, contract_version: 'c1', billing_window_id: '2026-05' },
    };
    const r = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: ce, tariff_snapshot: pilotTariff } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.meter_event).toMatchObject({ event_id: 'ce-1', endpoint: '/v1/completions', usage_units: '10', outcome: 'success' });
    // an id starting with U+FEFF is refused in either form, with the field named
    const bom = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: { ...ce, id: '\ufeffce-2' }, tariff_snapshot: pilotTariff } });
    expect(bom.status).toBe(400);
    expect(bom.body.code).toBe('INVALID_METER_EVENT');
    expect(JSON.stringify(bom.body)).toMatch(/U\+FEFF/);
  });

  it('processes a batch with a result per item', async () => {
    const events = [
      { meter_event: ev({ event_id: 'b-1' }), tariff_snapshot: pilotTariff },
      { meter_event: pilotEvent, tariff_snapshot: pilotTariff },
      { meter_event: ev({ event_id: 'b-1', usage_units: 1 }), tariff_snapshot: pilotTariff },
      { meter_event: ev({ event_id: 'b-3', usage_units: -1 }), tariff_snapshot: pilotTariff },
      { meter_event: ev({ event_id: 'b-4', tenant_id: 'tenant_nobody' }), tariff_snapshot: pilotTariff },
      'garbage',
    ];
    const r = await s.call('POST', '/v1/attest/batch', { token: attestKey, body: { events } });
    expect(r.status).toBe(200);
    expect(r.body.results.map((x: { status: number }) => x.status)).toEqual([201, 200, 409, 400, 422, 400]);
    expect(r.body.results[3].error.errors[0].path).toBe('meter_event.usage_units');
    expect(r.headers.get('content-type')).toBe('application/json');
    // the new item's bundle (its text as written) is the one stored, and verifies
    const created = r.body.results[0];
    expect(created).toMatchObject({ index: 0, status: 201, id: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const stored = (await s.call('GET', `/v1/attestations/${created.id}`, { token: readAcme })).body;
    const { receipt: _, ...withoutReceipt } = stored;
    expect(withoutReceipt).toStrictEqual(created.bundle);
    // named by its statement digest (sha256: and the id), as bundles and adjustments name it, too
    expect((await s.call('GET', `/v1/attestations/sha256:${created.id}`, { token: readAcme })).body.attestation).toStrictEqual(stored.attestation);
    expect((await s.call('GET', `/v1/evidence?attestation_id=sha256:${created.id}`, { token: readAcme })).status).toBe(200);
    expect((await s.call('POST', '/v1/verify?profile=standard', { token: null, body: created.bundle })).body.valid).toBe(true);
    expect((await s.call('POST', '/v1/attest/batch', { token: attestKey, body: { events: Array(1001).fill(events[0]) } })).body.code).toBe('BATCH_SIZE');
  });

  it('the retry of an event that brought its chain to the running-total limit is a replay, not a refusal', async () => {
    const max = '18446744073709551615';
    const body = { meter_event: ev({ event_id: 'full-1', endpoint: '/v1/full', billing_window_id: '2026-07', usage_units: max }), tariff_snapshot: pilotTariff };
    const first = await s.call('POST', '/v1/attest', { token: attestKey, body });
    expect(first.status).toBe(201);
    const again = await s.call('POST', '/v1/attest', { token: attestKey, body });
    expect(again.status).toBe(200);
    expect(again.headers.get('x-attestation-id')).toBe(first.headers.get('x-attestation-id'));
    // in a one-item batch too; another event of the full chain is still refused, and a different
    // event under the same id is a conflict
    const batch = await s.call('POST', '/v1/attest/batch', { token: attestKey, body: { events: [body] } });
    expect(batch.body.results[0]).toMatchObject({ status: 200, id: first.headers.get('x-attestation-id') });
    const other = await s.call('POST', '/v1/attest', { token: attestKey, body: { ...body, meter_event: { ...body.meter_event, event_id: 'full-2', usage_units: 1 } } });
    expect(other.status).toBe(422);
    expect(other.body.code).toBe('CUMULATIVE_OUT_OF_RANGE');
    const changed = await s.call('POST', '/v1/attest', { token: attestKey, body: { ...body, meter_event: { ...body.meter_event, usage_units: 1 } } });
    expect(changed.status).toBe(409);
  });

  it("a batch item whose running total would overflow fails alone; its chain's other items are attested", async () => {
    const max = '18446744073709551615';
    const item = (id: string, units: number | string) => ({ meter_event: ev({ event_id: id, endpoint: '/v1/overflow', billing_window_id: '2026-07', usage_units: units }), tariff_snapshot: pilotTariff });
    const r = await s.call('POST', '/v1/attest/batch', { token: attestKey, body: { events: [item('ov-1', 1), item('ov-2', 2), item('ov-3', max), item('ov-4', 3)] } });
    expect(r.body.results.map((x: { status: number }) => x.status)).toEqual([201, 201, 422, 201]);
    expect(r.body.results[2].error.code).toBe('CUMULATIVE_OUT_OF_RANGE');
    // the chain skips the refused item: ov-4 follows ov-2, with the running total of ov-1 and ov-2
    const chain = r.body.results[3].bundle.attestation.statement.chain;
    expect(chain).toMatchObject({ seq: '2', prev: `sha256:${r.body.results[1].id}`, cumulative_units_before: '3' });
    // and it costs a few statements, not one per item: 200 items on one chain, item 150 refused
    const statements = async () => (await s.call('GET', '/v1/status', { token: null })).body.store_writes.statements as number;
    const before = await statements();
    const many = Array.from({ length: 200 }, (_, i) => ({ meter_event: ev({ event_id: `ov-many-${i}`, endpoint: '/v1/overflow-many', billing_window_id: '2026-07', usage_units: i === 150 ? max : 1 }), tariff_snapshot: pilotTariff }));
    const big = await s.call('POST', '/v1/attest/batch', { token: attestKey, body: { events: many } });
    const statuses = big.body.results.map((x: { status: number }) => x.status);
    expect(statuses.filter((x: number) => x === 201)).toHaveLength(199);
    expect(statuses[150]).toBe(422);
    expect((await statements()) - before).toBeLessThanOrEqual(3);
  });

  it('honours Prefer: return=minimal on both attest routes; the bundle stays one GET away', async () => {
    const headers = { prefer: 'respond-async, return=minimal' };
    const one = await s.call('POST', '/v1/attest', { token: attestKey, headers, body: { meter_event: ev({ event_id: 'min-1' }), tariff_snapshot: pilotTariff } });
    expect(one.status).toBe(201);
    expect(one.headers.get('preference-applied')).toBe('return=minimal');
    expect(Object.keys(one.body).sort()).toEqual(['charge_micros', 'id', 'proof_status', 'statement_digest']);
    expect(one.body).toMatchObject({ id: one.headers.get('x-attestation-id'), charge_micros: '221040', proof_status: 'pending' });
    const full = await s.call('GET', `/v1/attestations/${one.body.id}`, { token: attestKey });
    expect(full.status).toBe(403); // an attest-only key; the bundle is for read keys
    const bundle = (await s.call('GET', `/v1/attestations/${one.body.id}`)).body;
    expect(`sha256:${one.body.id}`).toBe(one.body.statement_digest);
    expect(bundle.attestation.statement.charge_micros).toBe(one.body.charge_micros);
    // a replay is answered minimally too, with 200
    expect((await s.call('POST', '/v1/attest', { token: attestKey, headers, body: { meter_event: ev({ event_id: 'min-1' }), tariff_snapshot: pilotTariff } })).status).toBe(200);

    const events = [{ meter_event: ev({ event_id: 'min-2' }), tariff_snapshot: pilotTariff }, { meter_event: ev({ event_id: 'min-1', usage_units: 5 }), tariff_snapshot: pilotTariff }];
    const batch = await s.call('POST', '/v1/attest/batch', { token: attestKey, headers: { prefer: 'return=minimal' }, body: { events } });
    expect(batch.headers.get('preference-applied')).toBe('return=minimal');
    expect(batch.body.results[0]).toEqual({ index: 0, status: 201, id: expect.stringMatching(/^[0-9a-f]{64}$/), statement_digest: expect.stringMatching(/^sha256:/), charge_micros: '221040', proof_status: 'pending' });
    expect(batch.body.results[1]).toMatchObject({ index: 1, status: 409, error: { code: 'IDEMPOTENCY_CONFLICT' } });
    // without the preference: bundles, no Preference-Applied
    const plain = await s.call('POST', '/v1/attest/batch', { token: attestKey, headers: { prefer: 'return=representation' }, body: { events: [events[0]] } });
    expect(plain.headers.get('preference-applied')).toBeNull();
    expect(plain.body.results[0].bundle.meter_event.event_id).toBe('min-2');
  });
});

describe('reading attestations', () => {
  it('gets one by id and lists by tenant and window with cursor pagination', async () => {
    const list1 = await s.call('GET', '/v1/attestations?tenant_id=tenant_acme&window=2026-05&limit=2', { token: readAcme });
    expect(list1.status).toBe(200);
    expect(list1.body.items).toHaveLength(2);
    const seen = new Set(list1.body.items.map((i: { id: string }) => i.id));
    let cursor = list1.body.next_cursor;
    while (cursor) {
      const page = await s.call('GET', `/v1/attestations?tenant_id=tenant_acme&window=2026-05&limit=2&cursor=${cursor}`, { token: readAcme });
      for (const i of page.body.items) {
        expect(seen.has(i.id)).toBe(false);
        seen.add(i.id);
      }
      cursor = page.body.next_cursor;
    }
    expect(seen.size).toBeGreaterThanOrEqual(7);
    const id = [...seen][0] as string;
    const one = await s.call('GET', `/v1/attestations/${id}`, { token: readAcme });
    expect(one.status).toBe(200);
    expect(one.headers.get('x-proof-status')).toMatch(/pending|proved/);
  });
  it("a read key of one tenant sees nothing of another's", async () => {
    const list = await s.call('GET', '/v1/attestations?tenant_id=tenant_acme', { token: readOther });
    expect(list.status).toBe(403);
    const anyId = (await s.call('GET', '/v1/attestations?tenant_id=tenant_acme&limit=1', { token: readAcme })).body.items[0].id;
    const one = await s.call('GET', `/v1/attestations/${anyId}`, { token: readOther });
    expect(one.status).toBe(404);
  });
});

describe('bad input never yields a 5xx', () => {
  const cases: [string, string, { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> }, number][] = [
    ['POST', '/v1/attest', { raw: '{bad json' }, 400],
    ['POST', '/v1/attest', { raw: '[]' }, 400],
    ['POST', '/v1/attest', { raw: 'null' }, 400],
    ['POST', '/v1/attest', { raw: '"x"' }, 400],
    ['POST', '/v1/attest', { body: { meter_event: pilotEvent } }, 400],
    ['POST', '/v1/attest', { body: { meter_event: pilotEvent, tariff_snapshot: pilotTariff, extra: 1 } }, 400],
    ['POST', '/v1/attest', { body: { meter_event: { ...pilotEvent, usage_units: '18446744073709551616' }, tariff_snapshot: pilotTariff } }, 400],
    ['POST', '/v1/attest', { body: { meter_event: { ...pilotEvent, event_timestamp: '2026-02-30T00:00:00Z' }, tariff_snapshot: pilotTariff } }, 400],
    ['POST', '/v1/attest', { body: { meter_event: pilotEvent, tariff_snapshot: { ...pilotTariff, min_charge_micros: 9, max_charge_micros: 1 } } }, 422],
    ['POST', '/v1/attest', { body: { meter_event: pilotEvent, tariff: { tariff_id: 'nope', tariff_version: '1' } } }, 422],
    ['POST', '/v1/attest', { body: { meter_event: pilotEvent, tariff: 'x' } }, 400],
    ['POST', '/v1/attest', { raw: JSON.stringify({ meter_event: pilotEvent, tariff_snapshot: pilotTariff }), headers: { 'content-type': 'text/plain' } }, 415],
    ['POST', '/v1/attest?proof=maybe', { body: { meter_event: pilotEvent, tariff_snapshot: pilotTariff } }, 400],
    ['POST', '/v1/attest', { raw: JSON.stringify({ meter_event: { ...pilotEvent, event_id: 'x'.repeat(3 * 1024 * 1024) } }) }, 413],
    // U+0000: refused before the store (PostgreSQL text and jsonb cannot hold it)
    ['POST', '/v1/attest', { body: { meter_event: { ...pilotEvent, event_id: 'nul-1', dimensions: { model: 'a\u0000b' } }, tariff_snapshot: pilotTariff } }, 400],
    ['POST', '/v1/attest', { body: { meter_event: { ...pilotEvent, event_id: 'nul-2', dimensions: { 'a\u0000': 'b' } }, tariff_snapshot: pilotTariff } }, 400],
    ['POST', '/v1/admin/tenants', { body: { id: 'tenant_nul', name: 'x\u0000y' } }, 400],
    ['POST', '/v1/admin/api-keys', { body: { name: '\u0000', scopes: ['read'] } }, 400],
    // a lone surrogate (only possible as a JSON escape): no canonical form (RFC 8785), so refused
    // before anything is signed, in a single event, a batch, a key or the admin API
    ['POST', '/v1/attest', { body: { meter_event: { ...pilotEvent, event_id: 'sur-1', dimensions: { model: 'a\udc00' } }, tariff_snapshot: pilotTariff } }, 400],
    ['POST', '/v1/attest', { body: { meter_event: { ...pilotEvent, event_id: 'sur-2', dimensions: { ['\ud800x']: 'b' } }, tariff_snapshot: pilotTariff } }, 400],
    ['POST', '/v1/attest/batch', { body: { events: [{ meter_event: { ...pilotEvent, event_id: 'sur-3', dimensions: { r: '\udfff\ud800' } }, tariff_snapshot: pilotTariff }] } }, 400],
    ['POST', '/v1/admin/tenants', { body: { id: 'tenant_sur', name: '\ud83d' } }, 400],
    // U+FEFF in an identifier: the embedded store's driver drops a leading one when it reads the
    // value back, so a replay of the event would not be recognized
    ['POST', '/v1/attest', { body: { meter_event: { ...pilotEvent, event_id: '\ufeffbom-1' }, tariff_snapshot: pilotTariff } }, 400],
    ['POST', '/v1/admin/tenants', { body: { id: '\ufeffT' } }, 400],
    // a dimension named "__proto__": zod's record would drop it from what is signed, so refused
    ['POST', '/v1/attest', { raw: JSON.stringify({ meter_event: { ...pilotEvent, event_id: 'proto-1', dimensions: { a: 'b' } }, tariff_snapshot: pilotTariff }).replace('"a":"b"', '"a":"b","__proto__":"x"') }, 400],
    // U+0000 in a path or query parameter (PostgreSQL cannot hold it): 400, not the store's error
    ['GET', '/v1/attestations?tenant_id=%00', {}, 400],
    ['GET', '/v1/attestations?tenant_id=tenant_acme&window=a%00b', {}, 400],
    ['GET', '/v1/tariffs/%00/1', {}, 400],
    ['DELETE', '/v1/admin/api-keys/%00', {}, 400],
    // a body nested far deeper than any schema allows, holding an escape that makes readJson look
    // at its strings: the walk must not overflow the stack
    ['POST', '/v1/verify', { raw: `${'['.repeat(5000)}"\\u0000"${']'.repeat(5000)}`, token: null }, 400],
    ['POST', '/v1/attest', { raw: `{"a":${'['.repeat(5000)}1${']'.repeat(5000)},"note":"C:\\\\u0000"}` }, 400],
    ['POST', '/v1/attest/batch', { body: { events: 'x' } }, 400],
    ['POST', '/v1/attest/batch', { body: [] }, 400],
    ['GET', '/v1/attestations/zzz', {}, 404],
    ['GET', '/v1/attestations/' + 'a'.repeat(64), {}, 404],
    ['GET', '/v1/attestations', {}, 400],
    ['GET', '/v1/attestations?tenant_id=tenant_acme&limit=0', {}, 400],
    ['GET', '/v1/attestations?tenant_id=tenant_acme&cursor=-1', {}, 400],
    ['POST', '/v1/verify', { raw: '{', token: null }, 400],
    ['POST', '/v1/verify?profile=lax', { body: {}, token: null }, 400],
    ['POST', '/v1/admin/tenants', { body: { id: '' } }, 400],
    ['POST', '/v1/admin/tenants', { body: { id: 't_num', name: 123 } }, 400],
    ['POST', '/v1/admin/tenants', { body: { id: 't_typo', nmae: 'x' } }, 400],
    ['POST', '/v1/admin/tenants', { body: [] }, 400],
    ['POST', '/v1/admin/api-keys', { body: { scopes: ['root'] } }, 400],
    ['POST', '/v1/admin/api-keys', { body: { scopes: [] } }, 400],
    ['POST', '/v1/admin/tariffs', { body: { tariff_id: 'x' } }, 400],
    ['POST', '/v1/admin/tariffs', { body: { ...graduatedTariff, tariff_version: 'bad', tiers: [{ up_to: 5, unit_price_micros: 1 }, { up_to: 5, unit_price_micros: 1 }, { up_to: null, unit_price_micros: 1 }] } }, 422],
    ['DELETE', '/v1/admin/api-keys/nope', {}, 404],
    ['GET', '/v1/tariffs/nope/1', {}, 404],
    ['GET', '/nope', {}, 404],
  ];
  for (const [method, url, opts, status] of cases) {
    it(`${method} ${url.slice(0, 60)} ${opts.raw?.slice(0, 20) ?? JSON.stringify(opts.body ?? '').slice(0, 60)} → ${status}`, async () => {
      const r = await s.call(method, url, opts);
      expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(status);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(typeof r.body.code).toBe('string');
    });
  }
  it('a tenant with a mistyped or misspelt member is refused naming it, nothing created', async () => {
    const typed = await s.call('POST', '/v1/admin/tenants', { body: { id: 't_num', name: 123 } });
    expect(typed.body).toMatchObject({ code: 'INVALID_TENANT', errors: [{ path: 'name' }] });
    const typo = await s.call('POST', '/v1/admin/tenants', { body: { id: 't_typo', nmae: 'x' } });
    expect(typo.body.code).toBe('INVALID_TENANT');
    expect(JSON.stringify(typo.body.errors)).toContain('nmae');
    for (const id of ['t_num', 't_typo']) expect((await s.call('GET', `/v1/admin/tenants/${id}`)).status).toBe(404);
    // an identifier not in NFC has its own code; a name defaults to the id
    expect((await s.call('POST', '/v1/admin/tenants', { body: { id: 'cafe\u0301' } })).body.code).toBe('NOT_NFC');
    expect((await s.call('POST', '/v1/admin/tenants', { body: { id: 't_plain' } })).body).toMatchObject({ id: 't_plain', name: 't_plain' });
  });

  it("reports where a refused character is, and keeps a deep body's path short", async () => {
    const r = await s.call('POST', '/v1/verify', { raw: `${'['.repeat(120)}"\\u0000"${']'.repeat(120)}`, token: null });
    expect(r.body.code).toBe('UNSUPPORTED_CHARACTER');
    expect(r.body.errors[0].path).toBe(`${'0.'.repeat(100)}…`);
    const shallow = await s.call('POST', '/v1/admin/tenants', { body: { id: 'tenant_x', name: 'a\u0000' } });
    expect(shallow.body.errors).toEqual([{ path: 'name', message: 'U+0000 is not allowed' }]);
  });
  it('POST /v1/verify answers garbage with an invalid report, not an error', async () => {
    for (const body of [{}, [], 'x', 1, null, { attestation: { statement: {} } }]) {
      const r = await s.call('POST', '/v1/verify', { body, token: null });
      expect(r.status).toBe(200);
      expect(r.body.valid).toBe(false);
    }
  });
});

describe('concurrency', () => {
  it('200 concurrent attests with 20% duplicate ids → exactly one attestation per event', async () => {
    const ids = Array.from({ length: 160 }, (_, i) => `conc-${i}`);
    const reqs = [...ids, ...ids.slice(0, 40)].map((id) => ({ meter_event: ev({ event_id: id, endpoint: `/m${Number(id.split('-')[1]) % 3}` }), tariff_snapshot: pilotTariff }));
    const res = await Promise.all(reqs.map((body) => s.call('POST', '/v1/attest', { token: attestKey, body })));
    const statuses = res.map((r) => r.status);
    expect(statuses.filter((x) => x === 201)).toHaveLength(160);
    expect(statuses.filter((x) => x === 200)).toHaveLength(40);
    const byId = new Map<string, string>();
    for (const r of res) {
      const eid = r.body.meter_event.event_id;
      const sid = r.headers.get('x-attestation-id')!;
      if (byId.has(eid)) expect(byId.get(eid)).toBe(sid);
      byId.set(eid, sid);
    }
    // chains stay linear: seq 0..n-1 with no gaps per meter
    for (const m of ['/m0', '/m1', '/m2']) {
      const seqs = res.filter((r) => r.status === 201 && r.body.meter_event.endpoint === m).map((r) => Number(r.body.attestation.statement.chain.seq)).sort((a, b) => a - b);
      expect(seqs).toEqual(seqs.map((_, i) => i));
    }
    // /v1/status counts them, and shows the group commit at work: fewer statements than attestations
    const { store_writes: w } = (await s.call('GET', '/v1/status', { token: null })).body;
    expect(w.attestations).toBeGreaterThanOrEqual(160);
    expect(w.statements).toBeLessThan(w.attestations);
    // …and how long the recent store statements took
    const ms = w.statement_ms;
    // (failed statements count too: duplicates in this crowd abort some shared statements)
    expect(ms.statements).toBeGreaterThanOrEqual(Math.min(1024, w.statements));
    expect(ms.statements).toBeLessThanOrEqual(1024);
    expect(ms.p50).toBeGreaterThan(0);
    expect(ms.p50).toBeLessThanOrEqual(ms.p95);
    expect(ms.p95).toBeLessThanOrEqual(ms.p99);
  });
});

describe('key rotation', () => {
  it('signs new bundles with the new key; old bundles keep verifying', async () => {
    const before = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: ev({ event_id: 'rot-1' }), tariff_snapshot: pilotTariff } });
    const rot = await s.call('POST', '/v1/admin/keys/rotate');
    expect(rot.status).toBe(201);
    expect(rot.body.jwks.keys).toHaveLength(2);
    const after = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: ev({ event_id: 'rot-2' }), tariff_snapshot: pilotTariff } });
    expect(after.body.attestation.key_id).toBe(rot.body.key_id);
    expect(before.body.attestation.key_id).not.toBe(rot.body.key_id);
    for (const b of [before.body, after.body]) expect((await s.call('POST', '/v1/verify?profile=standard', { token: null, body: b })).body.valid).toBe(true);
    const jwks = (await s.call('GET', '/.well-known/jwks.json', { token: null })).body.keys;
    expect(jwks.find((k: { kid: string }) => k.kid === before.body.attestation.key_id).valid_until).not.toBeNull();
  });
});

describe('revocation', () => {
  it('revokes one attestation and a signing key; verify fails those bundles with REVOKED, others stay valid', async () => {
    const mk = async (id: string) => (await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: ev({ event_id: id }), tariff_snapshot: pilotTariff } })).body;
    const a = await mk('rev-1');
    const b = await mk('rev-2');
    const verifyStd = async (x: unknown) => (await s.call('POST', '/v1/verify?profile=standard', { token: null, body: x })).body;
    expect((await verifyStd(a)).valid).toBe(true);

    const r1 = await s.call('POST', '/v1/admin/revocations/attestations', { body: { statement_digest: await digest(a), reason: 'duplicate billing' } });
    expect(r1.status).toBe(201);
    // revoked once: again, later, with another reason, it answers the stored revocation
    await new Promise((r) => setTimeout(r, 5));
    const again = await s.call('POST', '/v1/admin/revocations/attestations', { body: { attestation_id: (await digest(a)).slice(7), reason: 'other' } });
    expect({ revoked_at: again.body.revoked_at, reason: again.body.reason }).toEqual({ revoked_at: r1.body.revoked_at, reason: 'duplicate billing' });
    const ra = await verifyStd(a);
    expect(ra.valid).toBe(false);
    expect(ra.checks.find((c: { name: string }) => c.name === 'revocation')).toMatchObject({ status: 'fail', code: 'REVOKED' });
    expect((await verifyStd(b)).valid).toBe(true);

    // revoking the current key rotates first, so new bundles are signed by a good key
    const kid = b.attestation.key_id;
    const r2 = await s.call('POST', '/v1/admin/revocations/keys', { body: { key_id: kid, revoked_from: b.attestation.statement.issued_at, reason: 'key compromise drill' } });
    expect(r2.status).toBe(201);
    expect(r2.body.rotated_to).toBeTruthy();
    expect((await verifyStd(b)).checks.find((c: { name: string }) => c.name === 'revocation').code).toBe('REVOKED');
    const c = await mk('rev-3');
    expect(c.attestation.key_id).toBe(r2.body.rotated_to);
    expect((await verifyStd(c)).valid).toBe(true);

    const list = await s.call('GET', '/.well-known/billing-revocations.json', { token: null });
    expect(list.body.list.keys.map((k: { key_id: string }) => k.key_id)).toContain(kid);
    expect(list.body.key_id).toBe(r2.body.rotated_to);
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    expect(trust.revocations.list.attestations).toHaveLength(1);
    // offline with the trust file: same verdict
    expect((await verifyBundle(b, trust, { profile: 'standard' })).checks.find((x) => x.name === 'revocation')?.code).toBe('REVOKED');
    // a list signed by a rotated-out key is refused
    const forged = { ...trust, revocations: { ...trust.revocations, key_id: kid } };
    expect((await verifyBundle(c, forged, { profile: 'standard' })).checks.find((x) => x.name === 'revocation')?.code).toBe('REVOCATION_LIST_INVALID');
    expect((await s.call('POST', '/v1/admin/revocations/keys', { body: { key_id: 'nope', reason: 'x' } })).status).toBe(404);
    expect((await s.call('POST', '/v1/admin/revocations/attestations', { body: { reason: 'x' } })).status).toBe(400);
  });
});

async function digest(bundle: any): Promise<string> {
  const { digestOf } = await import('../src/core/canonical.ts');
  return digestOf(bundle.attestation.statement);
}

describe('log receipts', () => {
  it('?log=sync returns a receipt that verifies; a later GET refreshes it to the latest checkpoint', async () => {
    const r = await s.call('POST', '/v1/attest?log=sync', { token: attestKey, body: { meter_event: ev({ event_id: 'log-1' }), tariff_snapshot: pilotTariff } });
    expect(r.status).toBe(201);
    const receipt = r.body.receipt;
    expect(receipt).toMatchObject({ log_origin: 'test.meterproof/log' });
    // waiting leaves no waiter behind
    expect(s.container.waiters.size).toBe(0);
    const rep = (await s.call('POST', '/v1/verify?profile=standard', { token: null, body: r.body })).body;
    for (const n of ['inclusion', 'checkpoint']) expect(rep.checks.find((c: any) => c.name === n), n).toMatchObject({ status: 'pass' });
    // more entries, then the same bundle comes back with a receipt against a bigger tree
    for (let i = 2; i <= 4; i++) await s.call('POST', '/v1/attest?log=sync', { token: attestKey, body: { meter_event: ev({ event_id: `log-${i}` }), tariff_snapshot: pilotTariff } });
    const again = await s.call('GET', `/v1/attestations/${r.headers.get('x-attestation-id')}`, { token: readAcme });
    expect(BigInt(again.body.receipt.tree_size)).toBeGreaterThan(BigInt(receipt.tree_size));
    expect(again.body.receipt.log_index).toBe(receipt.log_index);
    const rep2 = (await s.call('POST', '/v1/verify?profile=standard', { token: null, body: again.body })).body;
    expect(rep2.valid).toBe(true);
    // the old receipt's checkpoint as trusted checkpoint: consistency through a proof from the log
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    trust.log.trusted_checkpoint = receipt.checkpoint;
    const proof = (await s.call('GET', `/v1/log/proof/consistency?from=${receipt.tree_size}&to=${again.body.receipt.tree_size}`, { token: null })).body;
    const rep3 = await verify(again.body, trust, { profile: 'standard', consistencyProof: proof.hashes });
    expect(rep3.checks.find((c) => c.name === 'consistency')).toMatchObject({ status: 'pass' });
    // tampered receipt
    const bad = structuredClone(again.body);
    bad.receipt.log_index = String(Number(bad.receipt.log_index) + 1);
    expect((await verify(bad, trust, { profile: 'standard', consistencyProof: proof.hashes })).checks.find((c) => c.name === 'inclusion')?.code).toBe('INCLUSION_INVALID');
  });
});

describe('over a real socket (@hono/node-server)', () => {
  // The body is read straight from the Node request there; these cases exercise that path.
  let server: ReturnType<typeof serveHttp>;
  let port: number;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  beforeAll(async () => {
    server = serveHttp({ fetch: createApp({ ...s.container.deps, bodyLimitBytes: 64 * 1024 }).fetch, port: 0, hostname: '127.0.0.1' });
    answerClientErrors(server); // as serve.ts does
    await new Promise<void>((r) => server.once('listening', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    agent.destroy();
    await new Promise((r) => server.close(r));
  });

  /** Send raw bytes on a new connection; the whole answer as text. */
  const raw = (bytes: string) =>
    new Promise<string>((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port }, () => sock.end(bytes));
      let text = '';
      sock.on('data', (d: Buffer) => (text += d.toString()));
      sock.on('close', () => resolve(text));
      sock.on('error', reject);
    });

  it("what Node's HTTP parser refuses is answered as problem+json too", async () => {
    for (const [bytes, status, code] of [
      ['FOO / HTTP/1.1\r\nhost: x\r\n\r\n', 400, 'MALFORMED_HTTP'],
      [`GET /health HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
      ['POST /v1/attest HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', 400, 'MALFORMED_HTTP'],
    ] as const) {
      const answer = await raw(bytes);
      const [head, body] = answer.split('\r\n\r\n');
      expect(head, answer.slice(0, 200)).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
      expect(head).toMatch(/content-type: application\/problem\+json/i);
      expect(JSON.parse(body!)).toMatchObject({ status, code });
    }
  });

  /** POST `chunks` (Content-Length unless chunked) and read the JSON answer. */
  const post = (path: string, chunks: string[], chunked = false) =>
    new Promise<{ status: number; body: any; type: string }>((resolve, reject) => {
      const size = chunks.reduce((n, c) => n + Buffer.byteLength(c), 0);
      const req = http.request(
        { host: '127.0.0.1', port, method: 'POST', path, agent, headers: { authorization: `Bearer ${attestKey}`, 'content-type': 'application/json', ...(chunked ? {} : { 'content-length': size }) } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), type: String(res.headers['content-type']) }));
        },
      );
      req.on('error', reject);
      (async () => {
        for (const c of chunks) {
          req.write(c);
          await new Promise((r) => setTimeout(r, 2));
        }
        req.end();
      })().catch(reject);
    });

  const body = (id: string, pad = 0) => JSON.stringify({ meter_event: ev({ event_id: id, endpoint: '/sock' }), tariff_snapshot: { ...pilotTariff, ...(pad ? { description: 'x'.repeat(pad) } : {}) } });

  it('attests with a Content-Length body and with a chunked one', async () => {
    expect((await post('/v1/attest', [body('sock-1')])).status).toBe(201);
    const whole = body('sock-2');
    const r = await post('/v1/attest', [whole.slice(0, 50), whole.slice(50, 200), whole.slice(200)], true);
    expect(r.status).toBe(201);
    expect(r.body.meter_event.event_id).toBe('sock-2');
  });

  it('refuses a body over the limit with 413 problem+json, declared or chunked; the connection keeps working', async () => {
    const big = body('sock-3', 70 * 1024);
    const declared = await post('/v1/attest', [big]);
    expect(declared.status).toBe(413);
    expect(declared.type).toMatch(/application\/problem\+json/);
    expect(declared.body.code).toBe('PAYLOAD_TOO_LARGE');
    const pieces = Array.from({ length: 8 }, (_, i) => big.slice((i * big.length) / 8, ((i + 1) * big.length) / 8));
    const streamed = await post('/v1/attest', pieces, true);
    expect(streamed.status).toBe(413);
    expect(streamed.body.code).toBe('PAYLOAD_TOO_LARGE');
    // nothing was stored for it (the same event id is new afterwards), and the connection serves on
    expect((await post('/v1/attest', [body('sock-3')])).status).toBe(201);
  });
});
