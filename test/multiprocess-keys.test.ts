// Two real server processes on one PostgreSQL: an API key revoked through one is refused by the
// other on its very next request, and bundles signed across key rotations under load all verify
// (KEY_ROTATION_GRACE_MS at its minimum, the key refresh interval). Needs DATABASE_URL.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEY_REFRESH_MS } from '../src/service/keyring.ts';
import { verify } from '../src/verifier/index.ts';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { createTestDatabaseUrl, usingPostgres } from './support/db.ts';
import { api, startServer, type ServerProcess } from './support/server.ts';

describe.skipIf(!usingPostgres())('keys across two server processes on one PostgreSQL (skipped without DATABASE_URL)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabaseUrl>>;
  let dataDir: string;
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    db = await createTestDatabaseUrl();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-mpk-'));
    const env = { DATABASE_URL: db!.url, DATA_DIR: dataDir, KEY_ROTATION_GRACE_MS: String(KEY_REFRESH_MS) };
    [a, b] = await Promise.all([startServer(env), startServer(env)]);
    expect((await api(a.url, 'POST', '/v1/admin/tenants', { id: 'tenant_acme' })).status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('an API key revoked in A is refused by B on the very next request', async () => {
    const k = (await api(a.url, 'POST', '/v1/admin/api-keys', { scopes: ['read'] })).body;
    const get = (p: ServerProcess) => api(p.url, 'GET', '/v1/attestations?tenant_id=tenant_acme&limit=1', undefined, k.secret);
    // B has just used the key (so a cache, were there one, would hold it)
    expect((await get(b)).status).toBe(200);
    expect((await get(b)).status).toBe(200);
    expect((await api(a.url, 'DELETE', `/v1/admin/api-keys/${k.id}`)).status).toBe(200);
    const next = await get(b);
    expect(next.status).toBe(401);
    expect(next.body.code).toBe('UNAUTHENTICATED');
    expect((await get(a)).status).toBe(401);
  });

  it('an attest key revoked in A is refused by B on the very next attest, though B took it from memory', async () => {
    const k = (await api(a.url, 'POST', '/v1/admin/api-keys', { scopes: ['attest'] })).body;
    const attest = (p: ServerProcess, id: string) => api(p.url, 'POST', '/v1/attest', { meter_event: { ...pilotEvent, event_id: id, endpoint: '/revoked' }, tariff_snapshot: pilotTariff }, k.secret);
    // B looks the key up once, then keeps it in memory for the attest routes
    expect((await attest(b, 'mpk-1')).status).toBe(201);
    expect((await attest(b, 'mpk-2')).status).toBe(201);
    expect((await api(a.url, 'DELETE', `/v1/admin/api-keys/${k.id}`)).status).toBe(200);
    for (const id of ['mpk-3', 'mpk-1']) {
      const next = await attest(b, id); // a new event, then a replay of a stored one
      expect(next.status).toBe(401);
      expect(next.body.code).toBe('UNAUTHENTICATED');
    }
  });

  it('every bundle signed by either process while both rotate keys under load verifies', async () => {
    const key = (await api(a.url, 'POST', '/v1/admin/api-keys', { scopes: ['attest'] })).body.secret;
    const bundles: any[] = [];
    const refused: string[] = [];
    let stop = false;
    let n = 0;
    const load = async (p: ServerProcess, lane: number) => {
      while (!stop) {
        const id = `rot-${lane}-${n++}`;
        const r = await api(p.url, 'POST', '/v1/attest', { meter_event: { ...pilotEvent, event_id: id, endpoint: `/lane/${lane}` }, tariff_snapshot: pilotTariff }, key);
        if (r.status === 201) bundles.push(r.body);
        else refused.push(`${r.status} ${r.body?.code}`);
      }
    };
    const lanes = [a, b, a, b, a, b].map((p, i) => load(p, i));
    const rotations: string[] = [];
    for (const p of [a, b, a]) {
      await new Promise((r) => setTimeout(r, 700));
      const rot = await api(p.url, 'POST', '/v1/admin/keys/rotate');
      expect(rot.status).toBe(201);
      rotations.push(rot.body.key_id);
    }
    await new Promise((r) => setTimeout(r, 700));
    stop = true;
    await Promise.all(lanes);

    // KEY_UNAVAILABLE (503, retryable) is the one refusal allowed; none is expected
    expect(refused.filter((x) => x !== '503 KEY_UNAVAILABLE')).toEqual([]);
    const trust = (await api(b.url, 'GET', '/v1/trust')).body;
    expect(trust.jwks.keys).toHaveLength(4);
    const used = new Set(bundles.map((x) => x.attestation.key_id));
    expect(used.size, 'bundles were signed by several keys').toBeGreaterThanOrEqual(3);
    expect(bundles.length).toBeGreaterThan(50);
    const failures: string[] = [];
    for (const bundle of bundles) {
      const rep = await verify(bundle, trust, { profile: 'standard' });
      if (!rep.valid) failures.push(`${bundle.attestation.key_id} ${bundle.attestation.statement.issued_at}: ${JSON.stringify(rep.checks.filter((c) => c.status === 'fail'))}`);
    }
    expect(failures.slice(0, 5), `${failures.length} of ${bundles.length} bundles fail`).toEqual([]);
  }, 120_000);
});
