// Database faults under load, against a real `meterproof serve` process and a PRIVATE PostgreSQL
// cluster (initdb into a temporary directory, a random port; never the shared server): its
// backends are terminated every 0.3 s, then it is stopped for some seconds and started again.
// The process must never die, every answer must be a success or 503 STORE_UNAVAILABLE within a
// bound, service must resume by itself, and nothing acknowledged may be lost.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromB64 } from '../src/core/bytes.ts';
import { rootFromLeafHashes } from '../src/core/merkle.ts';
import { hashSecret } from '../src/service/auth.ts';
import { verify } from '../src/verifier/index.ts';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { privateClusterUnavailable, startPrivateCluster, type PrivateCluster } from './support/pgcluster.ts';
import { api, startServer, type ServerProcess } from './support/server.ts';

const unavailable = privateClusterUnavailable();
const DB = 'meterproof_chaos';
/** No request may take longer (the server's own bound is a few statement deadlines of 4 s). */
const REQUEST_BOUND_MS = 15_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ev = (id: string, endpoint: string) => ({ meter_event: { ...pilotEvent, event_id: id, endpoint }, tariff_snapshot: pilotTariff });

interface Outcome {
  readonly what: string;
  readonly status: number;
  readonly code?: string;
  readonly retryAfter: string | null;
  readonly ms: number;
}

describe.skipIf(!!unavailable)(`database faults under load (private PostgreSQL cluster${unavailable ? `; skipped: ${unavailable}` : ''})`, () => {
  let cluster: PrivateCluster;
  let server: ServerProcess;
  let dataDir: string;
  let key: string;
  let admin: postgres.Sql;

  beforeAll(async () => {
    cluster = await startPrivateCluster();
    admin = postgres(cluster.url('postgres'), { max: 1, onnotice: () => {}, connect_timeout: 2 });
    await admin.unsafe(`create database ${DB}`);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-chaos-'));
    server = await startServer({
      DATABASE_URL: cluster.url(DB),
      DATA_DIR: dataDir,
      PROVER_WORKERS: '1',
      DB_CONNECT_TIMEOUT_MS: '1000',
      DB_STATEMENT_TIMEOUT_MS: '2000',
      LOG_CHECKPOINT_INTERVAL_MS: '50',
    });
    await api(server.url, 'POST', '/v1/admin/tenants', { id: 'tenant_acme' });
    key = (await api(server.url, 'POST', '/v1/admin/api-keys', { scopes: ['attest', 'read'] })).body.secret;
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await admin?.end({ timeout: 1 }).catch(() => {});
    cluster?.destroy();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const proofsDone = async () => {
    const db = postgres(cluster.url(DB), { max: 1, onnotice: () => {} });
    try {
      return (await db`select count(*)::int as n from proof_jobs where status = 'done'`)[0]!['n'] as number;
    } finally {
      await db.end({ timeout: 1 });
    }
  };

  /** One request, timed, bounded; a transport failure (the process died, a hang) is recorded as status 0. */
  async function timed(what: string, method: string, p: string, body?: unknown, token = key): Promise<Outcome & { body: any; headers?: Headers }> {
    const started = performance.now();
    try {
      const res = await fetch(server.url + p, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(REQUEST_BOUND_MS),
      });
      const text = await res.text();
      let parsed: any = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* text */
      }
      return { what, status: res.status, code: parsed?.code, retryAfter: res.headers.get('retry-after'), ms: performance.now() - started, body: parsed, headers: res.headers };
    } catch (e) {
      return { what: `${what}: ${(e as Error).name}`, status: 0, retryAfter: null, ms: performance.now() - started, body: null };
    }
  }

  it('terminated backends and a stopped database: no crash, only 2xx or 503 STORE_UNAVAILABLE within the bound, automatic recovery, nothing acknowledged lost, the log consistent', async () => {
    const before = (await api(server.url, 'GET', '/v1/log/checkpoint')).body as string;
    const acked = new Map<string, string>(); // event id → attestation id
    const outcomes: Outcome[] = [];
    let phase = 'terminate';
    const ackedIn = new Map<string, number>();
    let stop = false;
    let n = 0;
    const record = (o: Outcome) => {
      outcomes.push(o);
      if (o.status === 503) return sleep(50); // the service asked to wait: do not spin
    };

    // 12 attesting clients and one reader
    const writers = Array.from({ length: 12 }, async () => {
      while (!stop) {
        const id = `chaos-${n++}`;
        const o = await timed('attest', 'POST', '/v1/attest', ev(id, `/c${n % 6}`));
        if (o.status === 201 || o.status === 200) {
          acked.set(id, o.headers!.get('x-attestation-id')!);
          ackedIn.set(phase, (ackedIn.get(phase) ?? 0) + 1);
        }
        await record(o);
      }
    });
    const reader = (async () => {
      while (!stop) {
        await record(await timed('status', 'GET', '/v1/status'));
        const some = [...acked.values()].at(-1);
        if (some) await record(await timed('read', 'GET', `/v1/attestations/${some}`));
        await sleep(50);
      }
    })();

    // (a) terminate the server's backends every 0.3 s for 5 s
    const terminateUntil = Date.now() + 5000;
    let terminated = 0;
    while (Date.now() < terminateUntil) {
      const rows = await admin`select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = ${DB} and pid <> pg_backend_pid()`;
      terminated += rows[0]!['n'] as number;
      await sleep(300);
    }

    // (b) stop the database for 3 s: while it is down, status, reads, attests and an API-key
    // look-up (a key the server has not cached) answer 503 STORE_UNAVAILABLE, never 500 or 401
    phase = 'stopped';
    await admin.end({ timeout: 1 });
    await cluster.stop();
    const downStarted = Date.now();
    await sleep(500);
    const down = await Promise.all([
      timed('status (down)', 'GET', '/v1/status'),
      timed('attest (down)', 'POST', '/v1/attest', ev('down-1', '/down')),
      timed('unknown key (down)', 'GET', `/v1/attestations/${'0'.repeat(64)}`, undefined, `mp_${'x'.repeat(43)}`),
      timed('admin list (down)', 'GET', '/v1/admin/tenants', undefined, 'server-test-admin-token-0123456789abcdef'),
    ]);
    for (const o of down) {
      expect(o.status, `${o.what}; server output:\n${server.output().slice(-3000)}`).toBe(503);
      expect(o.code, o.what).toBe('STORE_UNAVAILABLE');
      expect(o.body.type, o.what).toBeTruthy();
      expect(o.headers!.get('content-type'), o.what).toBe('application/problem+json');
      expect(Number(o.retryAfter), o.what).toBeGreaterThan(0);
    }
    await sleep(Math.max(0, 3000 - (Date.now() - downStarted)));
    await cluster.start();
    admin = postgres(cluster.url('postgres'), { max: 1, onnotice: () => {}, connect_timeout: 2 });
    const provedBefore = await proofsDone();

    // (c) the service resumes by itself
    phase = 'restarted';
    const resumeBy = Date.now() + 15_000;
    while ((ackedIn.get('restarted') ?? 0) < 50 && Date.now() < resumeBy) await sleep(100);
    stop = true;
    await Promise.all([...writers, reader]);

    expect(terminated).toBeGreaterThan(5);
    expect(ackedIn.get('terminate') ?? 0).toBeGreaterThan(20);
    expect(ackedIn.get('restarted') ?? 0).toBeGreaterThanOrEqual(50);
    // the process never died
    expect(server.child.exitCode).toBeNull();
    expect(server.child.signalCode).toBeNull();
    // every answer: 2xx, or 503 STORE_UNAVAILABLE with Retry-After; none beyond the bound
    const bad = outcomes.filter((o) => !(o.status === 200 || o.status === 201 || (o.status === 503 && o.code === 'STORE_UNAVAILABLE' && o.retryAfter)));
    expect(bad.slice(0, 5), `${bad.length} bad answers`).toEqual([]);
    expect(outcomes.some((o) => o.status === 503)).toBe(true);
    expect(Math.max(...outcomes.map((o) => o.ms))).toBeLessThan(REQUEST_BOUND_MS);

    // every acknowledged attestation is stored, and the log (once caught up) holds exactly the
    // stored attestations, once each, in a tree whose root is the signed checkpoint's
    const db = postgres(cluster.url(DB), { max: 1, onnotice: () => {} });
    try {
      const ids = [...acked.values()];
      const found = await db`select count(*)::int as n from attestations where id = any(${ids})`;
      expect(found[0]!['n']).toBe(ids.length);
      const total = ((await db`select count(*)::int as n from attestations`)[0]!['n'] as number);
      let size = 0;
      let note = '';
      for (const until = Date.now() + 20_000; Date.now() < until; await sleep(200)) {
        note = (await api(server.url, 'GET', '/v1/log/checkpoint')).body as string;
        size = Number(note.split('\n')[1]);
        if (size >= total) break;
      }
      expect(size).toBe(total);
      const leaves = await db`select encode(leaf_hash, 'hex') as h, attestation_id from log_leaves order by idx`;
      expect(leaves.length).toBe(total);
      expect(new Set(leaves.map((l) => l['attestation_id'])).size).toBe(total);
      const root = rootFromLeafHashes(leaves.map((l) => Buffer.from(l['h'] as string, 'hex')));
      expect(Buffer.from(root).equals(Buffer.from(fromB64(note.split('\n')[2]!)!))).toBe(true);
      // the checkpoint before the faults and the one after: consistent (through the verifier)
      const last = [...acked.values()].at(-1)!;
      const bundle = (await api(server.url, 'GET', `/v1/attestations/${last}?log=sync`, undefined, key)).body;
      const trust = (await api(server.url, 'GET', '/v1/trust')).body;
      const to = bundle.receipt.tree_size;
      const proof = (await api(server.url, 'GET', `/v1/log/proof/consistency?from=${before.split('\n')[1]}&to=${to}`)).body;
      const rep = await verify(bundle, { ...trust, log: { ...trust.log, trusted_checkpoint: before } }, { profile: 'standard', consistencyProof: proof.hashes });
      expect(rep.checks.find((c) => c.name === 'consistency')).toMatchObject({ status: 'pass' });
      expect(rep.valid).toBe(true);
      // the proof worker resumed too: a proof completed after the restart
      for (const until = Date.now() + 30_000; Date.now() < until && (await proofsDone()) <= provedBefore; ) await sleep(250);
      expect(await proofsDone()).toBeGreaterThan(provedBefore);
    } finally {
      await db.end({ timeout: 1 });
    }

    // the log never holds SQL text, its parameters or a key hash, nor a crash
    const out = server.output();
    expect(out).not.toContain(hashSecret(key));
    expect(out).not.toMatch(/\b(select|insert|update|delete)\b.*\b(from|into|set|where)\b/i);
    expect(out).not.toMatch(/TypeError|uncaught|unhandled/i);
  }, 90_000);
});
