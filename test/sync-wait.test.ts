// ?proof=sync / ?log=sync wait without polling: woken by LISTEN/NOTIFY on PostgreSQL (or an
// in-process signal on PGlite) when a proof job finishes or the log integrates rows.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/http/app.ts';
import { generateSigningKey } from '../src/core/keys.ts';
import { createLogService, type LogService } from '../src/log/service.ts';
import { buildContainer, type Container } from '../src/service/container.ts';
import { createProveFn } from '../src/service/prove.ts';
import { zkParts } from '../src/service/zk.ts';
import type { FullBundle } from '../src/core/schemas.ts';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { testStore, usingPostgres, type TestStore } from './support/db.ts';

const ADMIN = 'sync-wait-admin-token-0123456789abcdef';
const WAITERS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let store: TestStore;
let dataDir: string;
let container: Container;
let log: LogService;
let app: ReturnType<typeof createApp>;

const call = async (method: string, url: string, body?: unknown) => {
  const res = await app.request(url, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
};

/** Transactions committed or rolled back in this test's database, after every backend has flushed
 *  its statistics (PostgreSQL flushes an idle backend's counts within a second). */
async function transactions(): Promise<number> {
  await sleep(1500);
  const name = new URL(store.url!).pathname.slice(1);
  const admin = postgres(process.env['DATABASE_URL']!, { max: 1, onnotice: () => {} });
  try {
    const [r] = await admin`select xact_commit + xact_rollback as n from pg_stat_database where datname = ${name}`;
    return Number(r!['n']);
  } finally {
    await admin.end();
  }
}

beforeAll(async () => {
  store = await testStore();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-wait-'));
  const logKey = generateSigningKey();
  container = await buildContainer({
    database: store.database,
    dataDir,
    adminToken: ADMIN,
    zk: await zkParts(),
    log: ({ notifier, metrics }) => createLogService({ db: store.database.db, origin: 'test.meterproof/log', logKey, notifier, metrics }),
  });
  log = container.deps.log as LogService;
  await log.init();
  // no sequencer loop and no prover: the test decides when the log and the proofs move, and
  // nothing else touches the store while the waiters wait
  app = createApp({ ...container.deps, syncProofTimeoutMs: 600_000, syncSafetyMs: 600_000 });
  expect((await call('POST', '/v1/admin/tenants', { id: 'tenant_acme' })).status).toBe(201);
});

afterAll(async () => {
  await container?.waiters.close();
  await store?.cleanup();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('waiting without polling', () => {
  it.skipIf(!usingPostgres())('a proof finished by a separate `meterproof worker` process wakes the waiter (NOTIFY across processes)', async () => {
    const id = (await call('POST', '/v1/attest', { meter_event: { ...pilotEvent, event_id: 'cross-1' }, tariff_snapshot: pilotTariff })).headers.get('x-attestation-id')!;
    await log.integrate();
    const waiting = call('GET', `/v1/attestations/${id}?proof=sync`);
    while (container.waiters.size < 1) await sleep(20);
    const worker = spawn(process.execPath, [path.resolve('bin/meterproof.js'), 'worker'], {
      env: { ...process.env, DATABASE_URL: store.url!, DATA_DIR: dataDir, METERPROOF_ADMIN_TOKEN: ADMIN, PROVER_WORKERS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    worker.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    worker.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      // the waiter re-reads only when woken (its safety interval is ten minutes): a proved answer
      // means the worker's announcement reached this process
      const answer = await waiting;
      expect(answer.body.attestation.proof_status, out).toBe('proved');
    } finally {
      const exited = new Promise((r) => worker.once('exit', r));
      worker.kill('SIGTERM');
      await exited;
    }
    expect(out).toMatch(/pulling proof jobs/);
  }, 120_000);

  it(`${WAITERS} clients waiting on ?proof=sync add no database load; a finished proof wakes exactly its waiter`, async () => {
    const events = Array.from({ length: WAITERS }, (_, i) => ({ meter_event: { ...pilotEvent, event_id: `w-${i}`, endpoint: `/e/${i % 7}` }, tariff_snapshot: pilotTariff }));
    const batch = await call('POST', '/v1/attest/batch', { events });
    const ids: string[] = batch.body.results.map((r: any) => r.id);
    expect(ids).toHaveLength(WAITERS);
    // ?proof=sync waits for the receipt too: the log ought to hold them first (one round signs all)
    const logWaiter = call('GET', `/v1/attestations/${ids[0]}?log=sync`);
    await sleep(50);
    expect(await log.integrate()).toBe(WAITERS);
    const logged = await logWaiter;
    expect(logged.status).toBe(200);
    expect(logged.body.receipt.log_index).toBeDefined();

    const answers = ids.map((id) => call('GET', `/v1/attestations/${id}?proof=sync`));
    while (container.waiters.size < WAITERS) await sleep(20);
    if (usingPostgres()) {
      const before = await transactions();
      await sleep(3000);
      const during = (await transactions()) - before;
      // polling every 250 ms would have been ~4 reads per waiter and second (≈ 6,000 here)
      expect(during, 'transactions while 300 clients waited').toBeLessThanOrEqual(5);
    } else {
      await sleep(1000);
    }
    expect(container.waiters.size).toBe(WAITERS);

    // one real proof: only its waiter wakes, re-reads once and answers with the proof
    const prover = await createProveFn(container.keys, { workers: 0 });
    try {
      const [claimed] = await container.proofs.claim(1, 'test-worker');
      const row = await container.attest.get({ id: 'test', scopes: new Set(['read']), tenants: null }, claimed!);
      const proof = await prover.prove({ bundle: row.bundle as FullBundle, blinding: BigInt(row.blinding), statementDigest: row.statementDigest });
      await container.proofs.complete(claimed!, proof);
      const answer = await answers[ids.indexOf(claimed!)]!;
      expect(answer.status).toBe(200);
      expect(answer.body.attestation.proof_status).toBe('proved');
      expect(answer.headers.get('x-proof-status')).toBe('proved');
    } finally {
      await prover.close();
    }
    expect(container.waiters.size).toBe(WAITERS - 1);

    // shutdown: every remaining waiter answers at once with what there is (pending)
    await container.waiters.close();
    const rest = await Promise.all(answers);
    expect(rest.filter((r) => r.headers.get('x-proof-status') === 'pending')).toHaveLength(WAITERS - 1);
    expect(container.waiters.size).toBe(0);
  }, 120_000);
});
