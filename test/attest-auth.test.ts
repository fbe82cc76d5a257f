// The attest routes take a key they saw lately from memory (Auth.attestPrincipal) and check it
// where they act: the store statement refuses a revoked key atomically, and every other answer
// waits for a look-up. A revocation made by another process (here: written straight to the
// database, so this process's memory still holds the key) is refused on the next request, whatever
// that request is: a new event, a batch, a replay, a conflict, a malformed body, a PoP.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rowsOf } from '../src/db/index.ts';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { testService, type TestService } from './support/service.ts';

let s: TestService;
let n = 0;
const ev = (over: Record<string, unknown> = {}) => ({ meter_event: { ...pilotEvent, event_id: `aa-${n++}`, ...over }, tariff_snapshot: pilotTariff });

beforeAll(async () => {
  s = await testService();
  expect((await s.call('POST', '/v1/admin/tenants', { body: { id: 'tenant_acme', name: 'acme' } })).status).toBe(201);
});
afterAll(async () => s?.close());

/** A new attest key, used twice so that this process holds it in memory. */
async function warmKey(): Promise<{ id: string; secret: string; stored: ReturnType<typeof ev> }> {
  const k = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest'] } })).body;
  const stored = ev();
  expect((await s.call('POST', '/v1/attest', { token: k.secret, body: stored })).status).toBe(201);
  expect((await s.call('POST', '/v1/attest', { token: k.secret, body: ev() })).status).toBe(201);
  return { id: k.id, secret: k.secret, stored };
}

/** Revokes a key as another process would: in the database only. */
const revokeElsewhere = (id: string) => s.store.database.db.execute(sql`update api_keys set revoked_at = now() where id = ${id}`);

const expect401 = (r: { status: number; body: { code?: string } }) => {
  expect(r.status).toBe(401);
  expect(r.body.code).toBe('UNAUTHENTICATED');
};

describe('attest keys revoked by another process', () => {
  it('a new event is refused, and nothing is stored for it', async () => {
    const k = await warmKey();
    await revokeElsewhere(k.id);
    const body = ev();
    expect401(await s.call('POST', '/v1/attest', { token: k.secret, body }));
    expect(rowsOf(await s.store.database.db.execute(sql`select 1 from attestations where event_id = ${body.meter_event.event_id}`))).toHaveLength(0);
    // and the key stays refused (it is forgotten, then looked up)
    expect401(await s.call('POST', '/v1/attest', { token: k.secret, body: ev() }));
  });

  it('a batch is refused as a whole, and counts for nothing in the metrics', async () => {
    const metric = async () => ((await s.call('GET', '/metrics')).body as string).split('\n').filter((l) => l.startsWith('meterproof_attestations_total{')).join('\n');
    const before = await metric();
    for (const events of [[ev(), ev({ endpoint: '/other' })], [ev(), (await warmKey()).stored], [{ meter_event: { nope: 1 } }]]) {
      const k = await warmKey();
      await revokeElsewhere(k.id);
      const counted = await metric();
      expect401(await s.call('POST', '/v1/attest/batch', { token: k.secret, body: { events } }));
      expect(await metric()).toBe(counted);
    }
    expect(before).not.toBe('');
  });

  it('looks a key up once per request, however many refusals ask for it', async () => {
    const k = await warmKey();
    const byId = (s.container.deps.auth as unknown as { byId: { execute: (...a: unknown[]) => unknown } }).byId;
    const spy = vi.spyOn(byId, 'execute');
    const conflict = await s.call('POST', '/v1/attest', { token: k.secret, body: { ...k.stored, tariff_snapshot: { ...pilotTariff, tariff_version: 'other' } } });
    expect(conflict.status).toBe(409);
    expect(spy).toHaveBeenCalledTimes(1);
    spy.mockRestore();
  });

  it('a replay of a stored event gets no bundle', async () => {
    const k = await warmKey();
    await revokeElsewhere(k.id);
    expect401(await s.call('POST', '/v1/attest', { token: k.secret, body: k.stored }));
  });

  it('a conflicting replay, a malformed body and a bad batch are answered 401, not with their own refusal', async () => {
    for (const body of [
      { ...(await warmKey()).stored, tariff_snapshot: { ...pilotTariff, tariff_version: 'other' } },
      { meter_event: { nope: 1 } },
      'a string',
    ]) {
      const k = await warmKey();
      await revokeElsewhere(k.id);
      expect401(await s.call('POST', '/v1/attest', { token: k.secret, body }));
    }
    const bad = await warmKey();
    await revokeElsewhere(bad.id);
    expect401(await s.call('POST', '/v1/attest', { token: bad.secret, raw: '{"meter_event": ' }));
    const k = await warmKey();
    await revokeElsewhere(k.id);
    expect401(await s.call('POST', '/v1/attest/batch', { token: k.secret, body: { events: [] } }));
  });

  it('a key revoked through this process is forgotten at once', async () => {
    const k = await warmKey();
    const first = await s.call('DELETE', `/v1/admin/api-keys/${k.id}`);
    expect(first.status).toBe(200);
    expect401(await s.call('POST', '/v1/attest', { token: k.secret, body: ev() }));
    // revoked once: revoking again answers the first time, and leaves it stored
    await new Promise((r) => setTimeout(r, 5));
    expect((await s.call('DELETE', `/v1/admin/api-keys/${k.id}`)).body.revoked_at).toBe(first.body.revoked_at);
    const listed = (await s.call('GET', '/v1/admin/api-keys')).body.items.find((x: { id: string }) => x.id === k.id);
    expect(listed.revoked_at).toBe(first.body.revoked_at);
  });

  it('a key that is not revoked keeps attesting, replaying and being refused for its own faults', async () => {
    const k = await warmKey();
    expect((await s.call('POST', '/v1/attest', { token: k.secret, body: k.stored })).status).toBe(200);
    expect((await s.call('POST', '/v1/attest', { token: k.secret, body: { meter_event: { nope: 1 } } })).status).toBe(400);
    const r = await s.call('POST', '/v1/attest/batch', { token: k.secret, body: { events: [ev(), k.stored] } });
    expect(r.body.results.map((x: { status: number }) => x.status)).toEqual([201, 200]);
  });
});
