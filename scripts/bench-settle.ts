// `npm run bench:settle [-- --events 1000000 --meters 4]`: a settlement run over a window of a
// million attested events, and the offline verification of its evidence, on PostgreSQL.
//
// Method. A fresh database on DATABASE_URL (default the local test server; dropped at the end).
// Setup, untimed: a tariff, a plan (several meters, included and reserved units, graduated
// overage tiers, a platform fee), a tenant and its subscription through the service; then the
// events are attested with the real code (attestEvent: statements, chain links, Ed25519
// signatures by the service's key) by two child processes, one per half of the meters, and bulk
// inserted in the rows the service writes (bundle text, statement digest, chain and seq; proof
// status on_demand, so no proof jobs), with the chains' heads. Outcomes are mixed (success,
// partial, error, timeout). Timed:
//   1. the settlement run (SettlementService.run, as POST /v1/settlements: seal, claim in pages,
//      re-verify every statement signature, aggregate, sign, claims written), with its wall time,
//      this process's CPU time, PostgreSQL's CPU time (every postgres process, from /proc; the
//      machine's other users included) and this process's peak RSS (sampled every 50 ms);
//   2. the evidence written to a file through GET /v1/settlements/{id}/evidence (streamed);
//   3. `meterproof settlement verify` on that file in a child process (reads it as a stream), its
//      wall and CPU time and peak RSS from /usr/bin/time.
// The machine may be shared: wall time is noisy; CPU time is the steadier figure. The service
// parts are the built package (dist/, what `npm start` and the CLI run; `npm install` builds it,
// `npm run build` after changing src/).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { GENESIS, attestEvent, normalizeMeterEvent, normalizeTariff } from '../dist/core/attest.js';
import { randomSalt } from '../dist/core/binding-v2.js';
import { digestOf } from '../dist/core/canonical.js';
import { generateSigningKey, signingKeyFromJwk } from '../dist/core/keys.js';
import { chainId } from '../dist/core/statement.js';
import { openDatabase } from '../dist/db/index.js';
import { createApp } from '../dist/http/app.js';
import { createLogService, type LogService } from '../dist/log/service.js';
import { requestDigestOf } from '../dist/service/chain-writer.js';
import { buildContainer } from '../dist/service/container.js';
import { zkParts } from '../dist/service/zk.js';
import { postgresCpuMs } from './cpu.ts';
import { machineLine, postgresVersion, signingLine } from './machine.ts';

const { values: opt } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    meters: { type: 'string', default: '4' },
    child: { type: 'string' },
    /** Keep the database and stop after the setup (its name and key are printed for --db). */
    'setup-only': { type: 'boolean', default: false },
    /** Reuse a database made by --setup-only (its settlement, if any, is voided first). */
    db: { type: 'string' },
    /** Keep the evidence and trust files under this directory (for `meterproof settlement verify` runs of your own). */
    'keep-evidence': { type: 'string' },
    /** Stop after the settlement run (no evidence, no offline verification). */
    'run-only': { type: 'boolean', default: false },
  },
});
const BASE = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const TENANT = 'tenant_bench';
const WINDOW = '2026-05';
const ADMIN = 'bench-admin-token-0123456789abcdef';
const OUTCOMES = ['success', 'success', 'success', 'success', 'partial', 'error', 'success', 'timeout'] as const;
const TARIFF = { tariff_id: 'bench', tariff_version: '1', tariff_class: 'usage_linear', unit_price_micros: 120, currency: 'USD' };
const endpoint = (m: number) => `/v1/meter${m}`;
const PRINCIPAL = { id: 'bench', scopes: new Set(['admin', 'read', 'attest']), tenants: null } as never;

interface ChildJob {
  url: string;
  jwk: unknown;
  meters: number[];
  perMeter: number;
}

/** A child: attest `perMeter` events on each of its meters and insert them as the service does. */
async function child(job: ChildJob): Promise<void> {
  const key = signingKeyFromJwk(job.jwk);
  const tariff = normalizeTariff(TARIFF);
  const tariffDigest = digestOf(tariff);
  const tariffSalt = randomSalt();
  const sqlc = postgres(job.url, { max: 1, onnotice: () => {} });
  const issuedAt = new Date().toISOString();
  const BATCH = 2000;
  for (const m of job.meters) {
    const cid = chainId(TENANT, endpoint(m), WINDOW);
    let link = GENESIS;
    let pending: Promise<unknown> = Promise.resolve();
    for (let from = 0; from < job.perMeter; from += BATCH) {
      const cols: string[][] = Array.from({ length: 14 }, () => []);
      for (let n = from; n < Math.min(from + BATCH, job.perMeter); n++) {
        const event = normalizeMeterEvent({ event_id: `m${m}-${n}`, event_timestamp: '2026-05-29T12:00:00.000Z', tenant_id: TENANT, api_key_id: 'api_bench', endpoint: endpoint(m), usage_units: 1 + ((n * 7 + m) % 13), contract_version: 'c1', billing_window_id: WINDOW, outcome: OUTCOMES[(n + m) % OUTCOMES.length] });
        const r = attestEvent({ event, tariff, key, chain: link, issuedAt, eventSalt: randomSalt(), tariffSalt, chainId: cid });
        const row = [r.statementDigest.slice(7), TENANT, event.event_id, requestDigestOf(digestOf(event), tariffDigest), r.statementDigest, WINDOW, cid, link.seq.toString(), r.statement.charge_micros, r.statement.currency, JSON.stringify(r.bundle), r.bundle.salts!.event, issuedAt, event.event_timestamp];
        row.forEach((v, i) => cols[i]!.push(v));
        link = r.next;
      }
      await pending;
      pending = sqlc`insert into attestations (id, tenant_id, event_id, request_digest, statement_digest, billing_window_id, chain_id, seq, charge_micros, currency, bundle, blinding, proof_status, created_at, event_at)
        select id, tenant_id, event_id, request_digest, statement_digest, billing_window_id, chain_id, seq::bigint, charge_micros::numeric, currency, bundle::json, blinding, 'on_demand', created_at::timestamptz, event_at::timestamptz
        from unnest(${cols[0]!}::text[], ${cols[1]!}::text[], ${cols[2]!}::text[], ${cols[3]!}::text[], ${cols[4]!}::text[], ${cols[5]!}::text[], ${cols[6]!}::text[], ${cols[7]!}::text[], ${cols[8]!}::text[], ${cols[9]!}::text[], ${cols[10]!}::text[], ${cols[11]!}::text[], ${cols[12]!}::text[], ${cols[13]!}::text[])
          as x(id, tenant_id, event_id, request_digest, statement_digest, billing_window_id, chain_id, seq, charge_micros, currency, bundle, blinding, created_at, event_at)`;
    }
    await pending;
    await sqlc`insert into chains (chain_id, tenant_id, next_seq, prev_digest, cumulative_units) values (${cid}, ${TENANT}, ${link.seq.toString()}, ${link.prev}, ${link.cumulativeBefore.toString()})`;
  }
  await sqlc.end();
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function main(): Promise<void> {
  const EVENTS = Number(opt.events);
  const METERS = Number(opt.meters);
  if (!Number.isSafeInteger(EVENTS) || EVENTS < METERS || !Number.isSafeInteger(METERS) || METERS < 2) throw new Error('--events ≥ --meters ≥ 2');
  const perMeter = Math.floor(EVENTS / METERS);
  const total = perMeter * METERS;
  const name = opt.db ?? `mp_bench_settle_${Date.now().toString(36)}`;
  const keyFile = path.join(os.tmpdir(), `${name}.key.json`);
  const admin = postgres(BASE, { max: 1, onnotice: () => {} });
  console.log(machineLine());
  console.log(`PostgreSQL ${await postgresVersion(admin)}`);
  console.log(signingLine());
  if (!opt.db) await admin.unsafe(`create database ${name}`);
  const url = new URL(BASE);
  url.pathname = `/${name}`;
  const database = await openDatabase({ url: url.toString() });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-bench-settle-'));
  try {
    await database.migrate();
    if (!opt.db) fs.writeFileSync(keyFile, JSON.stringify(generateSigningKey(new Date(Date.now() - 3_600_000).toISOString()).privateJwk), { mode: 0o600 });
    const key = signingKeyFromJwk(JSON.parse(fs.readFileSync(keyFile, 'utf8')));
    const container = await buildContainer({
      database,
      dataDir,
      adminToken: ADMIN,
      zk: await zkParts(),
      signingKey: key,
      log: ({ notifier, metrics }) => createLogService({ db: database.db, origin: 'bench.meterproof.local/log', logKey: generateSigningKey(), notifier, metrics }),
    });
    const log = container.deps.log as LogService;
    await log.init();
    const app = createApp(container.deps);
    const call = async (method: string, p: string, body?: unknown) => {
      const res = await app.request(p, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
      return res;
    };
    if (opt.db) {
      // again on the same events: void the earlier settlement (releases its claims)
      for (const x of await container.deps.settlements.list(PRINCIPAL, TENANT)) if (x.status !== 'void') await container.deps.settlements.setStatus(PRINCIPAL, x.id, { status: 'void' });
      // as autovacuum would after the void's million deleted claims (else the run's claim probes
      // walk them all)
      const vacuum = postgres(url.toString(), { max: 1, onnotice: () => {} });
      await vacuum.unsafe('vacuum analyze settlement_claims');
      await vacuum.unsafe('vacuum analyze attestations');
      await vacuum.end();
    } else {
      await call('POST', '/v1/admin/tariffs', TARIFF);
      const tiers = [
        { up_to: Math.floor(perMeter * 2), unit_price_micros: 90 },
        { up_to: Math.floor(perMeter * 4), unit_price_micros: 70 },
        { up_to: null, unit_price_micros: 50 },
      ];
      const plan = {
        plan_id: 'bench',
        plan_version: '1',
        currency: 'USD',
        fixed_fee_micros: 99_000_000,
        platform_fee_bps: 250,
        meters: Array.from({ length: METERS }, (_, m) => ({ endpoint: endpoint(m), tariff: { tariff_id: 'bench', tariff_version: '1' }, included_units: 10_000, reserved_units: 50_000, reserved_unit_price_micros: 100, overage_tiers: tiers, contracted_uptime_bps: 9_000 })),
      };
      await call('POST', '/v1/admin/plans', plan);
      await call('POST', '/v1/admin/tenants', { id: TENANT });
      await call('POST', '/v1/admin/subscriptions', { tenant_id: TENANT, plan_id: 'bench', plan_version: '1', effective_from: '2026-01-01T00:00:00Z' });

      // setup: attest and insert, two child processes (the attest code is the service's; untimed)
      const t0 = performance.now();
      const halves = [0, 1].map((h) => Array.from({ length: METERS }, (_, m) => m).filter((m) => m % 2 === h));
      await Promise.all(
        halves.map(
          (meters) =>
            new Promise<void>((resolve, reject) => {
              const job: ChildJob = { url: url.toString(), jwk: key.privateJwk, meters, perMeter };
              const c = spawn(process.execPath, ['--import', 'tsx', process.argv[1]!, '--child', JSON.stringify(job)], { stdio: ['ignore', 'inherit', 'inherit'] });
              c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`generator exited ${code}`))));
            }),
        ),
      );
      // as autovacuum would after a load (the run's page statements are bounded without it)
      await database.db.execute(sql`analyze attestations`);
      console.log(`setup: ${total} attested events (${METERS} meters, mixed outcomes) attested and inserted in ${secs(performance.now() - t0)}`);
    }
    if (opt['setup-only']) {
      console.log(`kept: npm run bench:settle -- --db ${name} --events ${total} --meters ${METERS}`);
      return;
    }

    // 1. the settlement run
    const before = process.memoryUsage().rss;
    let peak = before;
    let heapPeak = 0;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.rss);
      heapPeak = Math.max(heapPeak, m.heapTotal);
    }, 50);
    const cpu0 = process.cpuUsage();
    const pg0 = postgresCpuMs();
    let t = performance.now();
    const rec = await container.deps.settlements.run(PRINCIPAL, { tenant_id: TENANT, billing_window_id: WINDOW });
    const runMs = performance.now() - t;
    const cpu = process.cpuUsage(cpu0);
    const pgMs = postgresCpuMs() - pg0;
    clearInterval(sampler);
    const st = rec.statement;
    if (st.attestations.count !== String(st.meters.reduce((n, m) => n + Number(m.events), 0)) || BigInt(st.chains.reduce((n, c) => n + Number(c.count), 0)) !== BigInt(total)) throw new Error('the settlement does not cover every event');
    const runCpuMs = (cpu.user + cpu.system) / 1000;
    console.log(`settlement run: ${total} events in ${secs(runMs)} wall; CPU: this process ${secs(runCpuMs)} (${((runCpuMs * 1000) / total).toFixed(1)} µs/event), PostgreSQL ${secs(pgMs)} (${((pgMs * 1000) / total).toFixed(1)} µs/event); peak RSS ${mib(peak)} (${mib(before)} before the run: the service with its keys and ZK parameters; main thread's V8 heap at most ${mib(heapPeak)}, the rest is the worker threads); total ${st.total_micros} micros`);

    if (opt['run-only']) return;

    // 2. the evidence, streamed to a file
    for (let i = 0; i < 100 && (await log.integrate(1000)) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const file = path.join(dataDir, 'evidence.json');
    t = performance.now();
    const res = await call('GET', `/v1/settlements/${rec.id}/evidence`);
    const out = fs.createWriteStream(file);
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) if (!out.write(chunk)) await new Promise<void>((r) => void out.once('drain', () => r()));
    await new Promise<void>((r) => void out.end(() => r()));
    console.log(`evidence: ${mib(fs.statSync(file).size)} written through GET /v1/settlements/{id}/evidence in ${secs(performance.now() - t)}`);
    const trust = await (await call('GET', '/v1/trust')).json();
    fs.writeFileSync(path.join(dataDir, 'trust.json'), JSON.stringify(trust));

    // 3. the offline verifier, a child process
    const v = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S %M', process.execPath, path.resolve('bin/meterproof.js'), 'settlement', 'verify', file, '--trust', path.join(dataDir, 'trust.json')], { encoding: 'utf8', env: process.env });
    const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(v.stderr);
    if (v.status !== 0 || !m) throw new Error(`settlement verify: exit ${v.status}\n${v.stdout}\n${v.stderr}`);
    const vCpu = Number(m[2]) + Number(m[3]);
    if (opt['keep-evidence']) {
      fs.mkdirSync(opt['keep-evidence'], { recursive: true });
      for (const f of ['evidence.json', 'trust.json']) fs.copyFileSync(path.join(dataDir, f), path.join(opt['keep-evidence'], f));
      console.log(`kept: ${path.join(opt['keep-evidence'], 'evidence.json')} and trust.json`);
    }
    console.log(`offline verify (meterproof settlement verify, every check): VALID in ${m[1]} s wall; CPU ${vCpu.toFixed(1)} s (${((vCpu * 1e6) / total).toFixed(1)} µs/event); peak RSS ${(Number(m[4]) / 1024).toFixed(0)} MiB`);
  } finally {
    await database.close();
    if (!opt['setup-only'] && !opt.db) {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      fs.rmSync(keyFile, { force: true });
    }
    await admin.end();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (opt.child) await child(JSON.parse(opt.child) as ChildJob);
else await main();
