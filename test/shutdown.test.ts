// Graceful shutdown of a real `meterproof serve` process: SIGTERM during a burst of attests.
// Every attestation answered 201 is there after a restart; the process exits 0.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { createTestDatabaseUrl } from './support/db.ts';
import { api, startServer, type ServerProcess } from './support/server.ts';

let db: Awaited<ReturnType<typeof createTestDatabaseUrl>>;
let dataDir: string;
let server: ServerProcess | undefined;
const env = () => ({ DATA_DIR: dataDir, ...(db ? { DATABASE_URL: db.url } : {}) });

beforeAll(async () => {
  db = await createTestDatabaseUrl(); // PostgreSQL when DATABASE_URL is set, else the embedded store
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-stop-'));
});

afterAll(async () => {
  await server?.stop('SIGKILL');
  await db?.drop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('graceful shutdown', () => {
  it('SIGTERM during a burst of attests: exit 0, and every 201-acknowledged attestation is present after a restart', async () => {
    server = await startServer(env());
    const base = server.url;
    expect((await api(base, 'POST', '/v1/admin/tenants', { id: 'tenant_acme' })).status).toBe(201);
    const key = (await api(base, 'POST', '/v1/admin/api-keys', { scopes: ['attest', 'read'] })).body.secret as string;
    expect((await api(base, 'GET', '/ready')).status).toBe(200);

    const acknowledged: string[] = [];
    let refused = 0;
    let n = 0;
    let stopping = false;
    // 16 clients attesting one event after another until the server stops answering
    const client = async (c: number) => {
      for (;;) {
        const id = `stop-${c}-${n++}`;
        try {
          const r = await api(base, 'POST', '/v1/attest', { meter_event: { ...pilotEvent, event_id: id, endpoint: `/c/${c % 4}` }, tariff_snapshot: pilotTariff }, key);
          if (r.status === 201) acknowledged.push(r.headers.get('x-attestation-id')!);
          else refused++;
        } catch {
          if (stopping) return; // connection refused or closed: the server has stopped accepting
          throw new Error('request failed before shutdown');
        }
      }
    };
    const clients = Array.from({ length: 16 }, (_, c) => client(c));
    while (acknowledged.length < 200) await new Promise((r) => setTimeout(r, 10));
    const exited = new Promise<number | null>((r) => server!.child.once('exit', (code) => r(code)));
    stopping = true;
    server.child.kill('SIGTERM');
    await Promise.all(clients);
    expect(await exited, server.output()).toBe(0);
    expect(server.output()).toMatch(/shutting down/);
    expect(server.output()).toMatch(/"msg":"stopped"/);
    expect(refused, 'no attest was refused (a 5xx would mean the store was closed under it)').toBe(0);

    server = await startServer(env());
    const missing: string[] = [];
    const queue = [...acknowledged];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let id = queue.pop(); id; id = queue.pop()) if ((await api(server!.url, 'GET', `/v1/attestations/${id}`, undefined, key)).status !== 200) missing.push(id);
      }),
    );
    expect(acknowledged.length).toBeGreaterThanOrEqual(200);
    expect(missing, `${missing.length} of ${acknowledged.length} acknowledged attestations are missing`).toEqual([]);
    await server.stop();
  }, 180_000);
});
