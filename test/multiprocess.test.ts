// Two real server processes on one PostgreSQL: concurrent attests, a shared transparency log,
// and a SIGKILL in the middle of a load. Needs DATABASE_URL (CI sets it); skipped otherwise.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verify } from '../src/verifier/index.ts';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { createTestDatabaseUrl, usingPostgres } from './support/db.ts';
import { api, startServer, type ServerProcess } from './support/server.ts';

const ev = (id: string, endpoint: string) => ({ meter_event: { ...pilotEvent, event_id: id, endpoint }, tariff_snapshot: pilotTariff });

describe.skipIf(!usingPostgres())('two server processes on one PostgreSQL (skipped without DATABASE_URL)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabaseUrl>>;
  let dataDir: string;
  let a: ServerProcess;
  let b: ServerProcess;
  let key: string;
  let provedBundle: unknown;
  const env = () => ({ DATABASE_URL: db!.url, DATA_DIR: dataDir });

  beforeAll(async () => {
    db = await createTestDatabaseUrl();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-mp-'));
    // start both at once: they must agree on one signing key and one migration run
    [a, b] = await Promise.all([startServer(env()), startServer(env())]);
    await api(a.url, 'POST', '/v1/admin/tenants', { id: 'tenant_acme' });
    key = (await api(a.url, 'POST', '/v1/admin/api-keys', { scopes: ['attest', 'read'] })).body.secret;
  }, 120_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('agree on one signing key', async () => {
    const [ja, jb] = await Promise.all([api(a.url, 'GET', '/.well-known/jwks.json'), api(b.url, 'GET', '/.well-known/jwks.json')]);
    expect(ja.body.keys).toHaveLength(1);
    expect(jb.body).toEqual(ja.body);
  });

  it('a separate `meterproof worker` process proves jobs for servers that run no prover', async () => {
    const { spawn } = await import('node:child_process');
    const worker = spawn(process.execPath, [path.resolve('bin/meterproof.js'), 'worker'], { env: { ...process.env, ...env(), PROVER_WORKERS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    worker.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    worker.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const r = await api(b.url, 'POST', '/v1/attest?proof=sync', ev('worker-1', '/w'), key);
      expect(r.status, out).toBe(201);
      expect(r.body.attestation.proof_status, out).toBe('proved');
      const trust = (await api(a.url, 'GET', '/v1/trust')).body;
      const rep = await verify(r.body, trust, { profile: 'strict' });
      expect(rep.valid, JSON.stringify(rep.checks.filter((c) => c.status !== 'pass'))).toBe(true);
      provedBundle = r.body;
    } finally {
      const exited = new Promise((res) => worker.once('exit', res));
      worker.kill('SIGTERM');
      await exited;
    }
    expect(out).toMatch(/pulling proof jobs/);
  }, 180_000);

  it('a server that has checked a Groth16 proof for POST /v1/verify still exits promptly on SIGTERM', async () => {
    expect(provedBundle).toBeDefined();
    const c = await startServer(env());
    try {
      const rep = await api(c.url, 'POST', '/v1/verify', provedBundle);
      expect(rep.body.valid, JSON.stringify(rep.body.checks?.filter((x: { status: string }) => x.status !== 'pass'))).toBe(true);
      // the bn128 curve built for the check runs worker threads of its own: they must not keep
      // the process alive after shutdown
      const exited = await Promise.race([c.stop().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 20_000))]);
      expect(exited, 'the server did not exit within 20 s of SIGTERM').toBe(true);
    } finally {
      await c.stop('SIGKILL');
    }
  }, 90_000);

  it('attest concurrently on shared chains without a conflict or a lost event; the log stays one consistent tree', async () => {
    const ids = Array.from({ length: 300 }, (_, i) => `mp-${i}`);
    // every event goes to one server, 20% are also replayed on the other; 3 shared chains
    const reqs = ids.flatMap((id, i) => {
      const body = ev(id, `/m${i % 3}`);
      const first = i % 2 ? a : b;
      const other = i % 2 ? b : a;
      return i % 5 === 0 ? [{ srv: first, body }, { srv: other, body }] : [{ srv: first, body }];
    });
    const res = await Promise.all(reqs.map((r) => api(r.srv.url, 'POST', '/v1/attest', r.body, key)));
    for (const r of res) expect([200, 201], JSON.stringify(r.body).slice(0, 200)).toContain(r.status);
    const byEvent = new Map<string, Set<string>>();
    for (const r of res) {
      const set = byEvent.get(r.body.meter_event.event_id) ?? new Set();
      set.add(r.headers.get('x-attestation-id')!);
      byEvent.set(r.body.meter_event.event_id, set);
    }
    expect(byEvent.size).toBe(300);
    for (const s of byEvent.values()) expect(s.size).toBe(1);
    expect(res.filter((r) => r.status === 201)).toHaveLength(300);

    // chains are linear across both processes
    for (const m of ['/m0', '/m1', '/m2']) {
      const chain = res.filter((r) => r.status === 201 && r.body.meter_event.endpoint === m).map((r) => r.body.attestation.statement.chain);
      const seqs = chain.map((c: any) => Number(c.seq)).sort((x: number, y: number) => x - y);
      expect(seqs).toEqual(seqs.map((_: number, i: number) => i));
      expect(chain.find((c: any) => c.seq === '0').prev).toBeNull();
    }

    // every receipt, fetched from either server, verifies; the log is gap- and duplicate-free
    const bundles = await Promise.all([...byEvent.values()].map((s, i) => api(i % 2 ? a.url : b.url, 'GET', `/v1/attestations/${[...s][0]}?log=sync`, undefined, key)));
    const indexes = bundles.map((r) => Number(r.body.receipt.log_index)).sort((x, y) => x - y);
    // consecutive: no gap and no duplicate (entry 0 belongs to the worker test's attestation)
    expect(indexes).toEqual(indexes.map((_, i) => indexes[0]! + i));
    expect(indexes[0]).toBe(1);
    const trust = (await api(a.url, 'GET', '/v1/trust')).body;
    // the newest checkpoint among the receipts (a server's /v1/trust may lag the other server's
    // last round by up to its checkpoint cache time, so it is not taken as the newest)
    const latestSize = Math.max(...bundles.map((r) => Number(r.body.receipt.tree_size)));
    expect(Number((trust.log.latest_checkpoint as string).split('\n')[1])).toBeLessThanOrEqual(latestSize);
    for (const r of bundles) {
      const rep = await verify(r.body, trust, { profile: 'standard' });
      expect(rep.checks.find((c) => c.name === 'inclusion')?.status).toBe('pass');
      expect(rep.checks.find((c) => c.name === 'checkpoint')?.status).toBe('pass');
    }
    // each receipt's checkpoint is consistent with the latest one
    const sizes = new Set(bundles.map((r) => r.body.receipt.tree_size as string));
    for (const size of sizes) {
      const cp = bundles.find((r) => r.body.receipt.tree_size === size)!.body.receipt.checkpoint;
      const proof = (await api(b.url, 'GET', `/v1/log/proof/consistency?from=${size}&to=${latestSize}`)).body;
      const t = { ...trust, log: { ...trust.log, trusted_checkpoint: cp } };
      const newest = bundles.find((r) => Number(r.body.receipt.tree_size) === latestSize)!;
      const rep = await verify(newest.body, t, { profile: 'standard', consistencyProof: proof.hashes });
      expect(rep.checks.find((c) => c.name === 'consistency'), `from ${size}`).toMatchObject({ status: 'pass' });
    }
  }, 180_000);

  it('a server killed with SIGKILL mid-load loses no acknowledged attestation; its log stays consistent after restart', async () => {
    const before = (await api(b.url, 'GET', '/v1/trust')).body.log.latest_checkpoint as string;
    const acked: string[] = [];
    let stop = false;
    let n = 0;
    const load = Promise.all(
      Array.from({ length: 16 }, async () => {
        while (!stop) {
          const i = n++;
          try {
            const r = await api(a.url, 'POST', '/v1/attest', ev(`kill-${i}`, `/k${i % 4}`), key);
            if (r.status === 201) acked.push(r.headers.get('x-attestation-id')!);
          } catch {
            /* connection reset by the kill: not acknowledged */
          }
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 1500));
    await a.stop('SIGKILL');
    stop = true;
    await load;
    expect(acked.length).toBeGreaterThan(10);
    a = await startServer(env());
    for (const id of acked) {
      const r = await api(a.url, 'GET', `/v1/attestations/${id}?log=sync`, undefined, key);
      expect(r.status, id).toBe(200);
      expect(r.body.receipt, id).toBeTruthy();
    }
    const trust = (await api(a.url, 'GET', '/v1/trust')).body;
    const after = trust.log.latest_checkpoint as string;
    const [s1, s2] = [before.split('\n')[1], after.split('\n')[1]];
    const proof = (await api(a.url, 'GET', `/v1/log/proof/consistency?from=${s1}&to=${s2}`)).body;
    const one = (await api(a.url, 'GET', `/v1/attestations/${acked.at(-1)}?log=sync`, undefined, key)).body;
    const rep = await verify(one, { ...trust, log: { ...trust.log, trusted_checkpoint: before } }, { profile: 'standard', consistencyProof: proof.hashes });
    expect(rep.checks.find((c) => c.name === 'consistency')).toMatchObject({ status: 'pass' });
    expect(rep.valid).toBe(true);
  }, 180_000);

});
