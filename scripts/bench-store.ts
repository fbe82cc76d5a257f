// npm run bench:store — the attest store path without HTTP: what signing, storing and logging an
// event costs in this process and in PostgreSQL, measured as CPU time per event. It shows where
// the ceiling of `npm run bench:attest` comes from on a given machine.
//
//   npm run bench:store [-- --events 20000 --concurrency 32]
//
// On a fresh PostgreSQL database (DATABASE_URL, default the local test server) it runs the
// service's ChainWriter (price, sign, store with proof job and log-queue entry, group commit) and
// the log sequencer's integrate():
//   1. batch: 4 writers each submitting 1,000 events at a time over 64 meters (as /v1/attest/batch);
//   2. single: `--concurrency` writers each submitting one event at a time (as /v1/attest);
//   3. one at a time: one writer, one event per statement (the fixed cost of a statement);
//   4. the log: integrate() in rounds of 40 and of 1,000 leaves.
// CPU time is this process's (all threads: process.cpuUsage) and PostgreSQL's (every `postgres`
// process, from /proc; Linux only), so a figure includes the database's background work.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { normalizeMeterEvent, normalizeTariff } from '../src/core/attest.ts';
import { digestOf } from '../src/core/canonical.ts';
import { generateEd25519 } from '../src/core/ed25519.ts';
import { signingKeyFromSeed } from '../src/core/keys.ts';
import { chainId } from '../src/core/statement.ts';
import { openDatabase, rowsOf } from '../src/db/index.ts';
import { createLogService } from '../src/log/service.ts';
import { ChainWriter, type PendingEvent, requestDigestOf } from '../src/service/chain-writer.ts';
import { postgresCpuMs } from './cpu.ts';
import { machineLine, postgresVersion, signingLine } from './machine.ts';
import { randomSalt, saltedTariffDigest } from '../src/core/binding-v2.ts';

const { values: opt } = parseArgs({
  options: {
    events: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '32' },
  },
});
const EVENTS = Number(opt.events);
const CONCURRENCY = Number(opt.concurrency);
const BASE = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Runs `fn`, then prints events/s and µs of CPU per unit here and in PostgreSQL. */
async function measure(label: string, unit: string, fn: () => Promise<number>): Promise<void> {
  const cpu0 = process.cpuUsage();
  const pg0 = postgresCpuMs();
  const t0 = performance.now();
  const n = await fn();
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const pg = postgresCpuMs() - pg0;
  const here = (cpu.user + cpu.system) / n;
  const there = (pg * 1000) / n;
  console.log(`${label}: ${(n / secs).toFixed(0)} ${unit === 'leaf' ? 'leaves' : `${unit}s`}/s; CPU per ${unit}: this process ${here.toFixed(0)} µs, PostgreSQL ${there.toFixed(0)} µs, together ${(here + there).toFixed(0)} µs`);
}

async function main() {
  const name = `mp_bench_store_${Date.now().toString(36)}`;
  const baseUrl = new URL(BASE);
  const admin = postgres(baseUrl.toString(), { max: 1, onnotice: () => {} });
  const pgVersion = await postgresVersion(admin);
  await admin.unsafe(`create database ${name}`);
  const url = new URL(BASE);
  url.pathname = `/${name}`;
  const database = await openDatabase({ url: url.toString() });
  try {
    await database.migrate();
    const writer = new ChainWriter(database.db);
    const log = createLogService({ db: database.db, origin: 'bench.meterproof.local/log', logKey: signingKeyFromSeed(generateEd25519().seed) });
    await log.init();
    const key = signingKeyFromSeed(generateEd25519().seed);
    const tariff = normalizeTariff({ tariff_id: 'tariff_bench', tariff_version: '1', tariff_class: 'usage_graduated', currency: 'USD', tiers: [{ up_to: 100000, unit_price_micros: 120 }, { up_to: null, unit_price_micros: 90 }], min_charge_micros: 0 });
    const tariffDigest = digestOf(tariff);
    const tariffSalt = randomSalt();
    const tariffDigestV2 = saltedTariffDigest(tariff, tariffSalt);
    let seq = 0;
    const pending = (): { cid: string; item: PendingEvent } => {
      const n = seq++;
      const event = normalizeMeterEvent({ event_id: `evt-${n}`, event_timestamp: '2026-05-29T12:00:00.000Z', tenant_id: 'tenant_bench', api_key_id: 'api_live_001', endpoint: `/v1/m${n % 64}`, usage_units: 1 + (n % 5000), contract_version: 'contract-v1', billing_window_id: '2026-05' });
      return { cid: chainId(event.tenant_id, event.endpoint, event.billing_window_id), item: { event, tariff, tariffSalt, tariffDigestV2, requestDigest: requestDigestOf(digestOf(event), tariffDigest) } };
    };
    /** Submit `size` new events, grouped by chain as the attest service does; resolves when stored. */
    const submit = async (size: number) => {
      const byChain = new Map<string, PendingEvent[]>();
      for (let i = 0; i < size; i++) {
        const { cid, item } = pending();
        byChain.set(cid, [...(byChain.get(cid) ?? []), item]);
      }
      await Promise.all([...byChain].map(([cid, items]) => writer.submit(cid, 'tenant_bench', items, async () => ({ key, issuedAt: new Date() }))));
    };
    const drainLog = async (round: number) => {
      let leaves = 0;
      for (let k; (k = await log.integrate(round)) > 0; ) leaves += k;
      return leaves;
    };

    await submit(2000); // warm-up: JIT, connections, chain heads
    await drainLog(1000);

    await measure(`batch (4 writers × 1,000 events per submission)`, 'event', async () => {
      const rounds = Math.ceil(EVENTS / 4000);
      await Promise.all(Array.from({ length: 4 }, async () => {
        for (let i = 0; i < rounds; i++) await submit(1000);
      }));
      return rounds * 4000;
    });
    await measure(`log integrate(), rounds of 1,000 leaves`, 'leaf', () => drainLog(1000));

    await measure(`single (${CONCURRENCY} writers × 1 event per submission)`, 'event', async () => {
      let left = EVENTS / 2;
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (left-- > 0) await submit(1);
      }));
      return EVENTS / 2;
    });
    await measure(`log integrate(), rounds of 40 leaves`, 'leaf', () => drainLog(40));

    const statementsBefore = writer.stats.statements;
    await measure(`one at a time (1 writer, 1 event per statement)`, 'event', async () => {
      for (let i = 0; i < 1000; i++) await submit(1);
      return 1000;
    });
    if (writer.stats.statements - statementsBefore !== 1000) throw new Error('expected one statement per event');
    await drainLog(1000);
    // the store's size per attestation, indexes included
    const [row] = rowsOf<{ bytes: string; n: string }>(await database.db.execute(sql`select (pg_total_relation_size('attestations') + pg_total_relation_size('proof_jobs')
      + pg_total_relation_size('log_queue') + pg_total_relation_size('log_leaves') + pg_total_relation_size('log_nodes'))::text as bytes,
      (select count(*) from attestations)::text as n`));
    if (row) console.log(`stored: ${(Number(row.bytes) / Number(row.n)).toFixed(0)} bytes per attestation (rows and indexes of attestations, proof_jobs, log_queue, log_leaves, log_nodes)`);
  } finally {
    await database.close();
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
  console.log(`${machineLine()}; PostgreSQL ${pgVersion} via TCP ${baseUrl.host}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(signingLine());
}

await main();
