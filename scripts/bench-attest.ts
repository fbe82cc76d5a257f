// npm run bench:attest — drives a real `meterproof serve` process over loopback on PostgreSQL
// (DATABASE_URL, default the local test server; a fresh database per run) with proofs async, and
// prints throughput and p50/p95/p99 for /v1/attest and /v1/attest/batch next to this machine's
// raw Ed25519 signing rate measured in the same run.
//
//   npm run bench:attest [-- --duration 10 --rate 1000 --concurrency 32 --batch 1000
//                            --batch-concurrency 4 --meters 64
//                            --only fixed,max,max-minimal,batch,batch-minimal]
// Phases: fixed (open loop at --rate), max and max-minimal (closed loop; full bundles, then
// `Prefer: return=minimal`), batch and batch-minimal. BENCH_SERVER_NODE_ARGS passes node flags to
// the server (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
import { spawn } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { generateEd25519, ed25519Signer } from '../src/core/ed25519.ts';

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    rate: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '32' },
    batch: { type: 'string', default: '1000' },
    'batch-concurrency': { type: 'string', default: '4' },
    port: { type: 'string', default: '18088' },
    only: { type: 'string' },
    meters: { type: 'string', default: '64' },
  },
});
const DURATION = Number(opt.duration) * 1000;
const PORT = Number(opt.port);
const METERS = Number(opt.meters);
const BASE = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const ADMIN = `bench-admin-${Date.now()}-0123456789abcdef`;
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

function request(method: string, p: string, body: unknown, token: string, extra: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: PORT, method, path: p, agent, headers: { authorization: `Bearer ${token}`, ...extra, ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(2)} ms, p95 ${pct(xs, 95).toFixed(2)} ms, p99 ${pct(xs, 99).toFixed(2)} ms`;

let seq = 0;
const event = (runId: string) => {
  const n = seq++;
  return {
    meter_event: {
      event_id: `${runId}-${n}`,
      event_timestamp: '2026-05-29T12:00:00.000Z',
      tenant_id: 'tenant_bench',
      api_key_id: 'api_live_001',
      endpoint: `/v1/m${n % METERS}`,
      usage_units: 1 + (n % 5000),
      contract_version: 'contract-v1',
      billing_window_id: '2026-05',
    },
    tariff: { tariff_id: 'tariff_bench', tariff_version: '1' },
  };
};

function signingRate(): number {
  const sign = ed25519Signer(generateEd25519().seed);
  const msg = Buffer.alloc(400, 7);
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 2000) {
    sign(msg);
    n++;
  }
  return (n / (performance.now() - t0)) * 1000;
}

async function main() {
  const name = `mp_bench_${Date.now().toString(36)}`;
  const baseUrl = new URL(BASE);
  const socketDir = baseUrl.searchParams.get('host');
  baseUrl.searchParams.delete('host');
  const admin = postgres(baseUrl.toString(), { max: 1, onnotice: () => {}, ...(socketDir ? { host: socketDir } : {}) });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(BASE);
  url.pathname = `/${name}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-bench-'));
  const server = spawn(process.execPath, [...(process.env['BENCH_SERVER_NODE_ARGS']?.split(' ').filter(Boolean) ?? []), 'bin/meterproof.js', 'serve'], {
    env: { ...process.env, PORT: String(PORT), DATABASE_URL: url.toString(), DATA_DIR: dataDir, METERPROOF_ADMIN_TOKEN: ADMIN, PROVER_WORKERS: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    server.stdout.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    server.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  const results: string[] = [];
  try {
    await request('POST', '/v1/admin/tenants', { id: 'tenant_bench' }, ADMIN);
    await request('POST', '/v1/admin/tariffs', { tariff_id: 'tariff_bench', tariff_version: '1', tariff_class: 'usage_graduated', currency: 'USD', tiers: [{ up_to: 100000, unit_price_micros: 120 }, { up_to: null, unit_price_micros: 90 }], min_charge_micros: 0 }, ADMIN);
    const key = JSON.parse((await request('POST', '/v1/admin/api-keys', { scopes: ['attest'] }, ADMIN)).text).secret as string;
    const check = (r: { status: number; text: string }) => {
      if (r.status !== 201 && r.status !== 200) throw new Error(`unexpected ${r.status}: ${r.text.slice(0, 300)}`);
    };
    // warm-up (not measured): JIT, connection pools, chain heads and caches reach steady state
    let warm = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (warm++ < 3000) check(await request('POST', '/v1/attest', event('warm'), key));
    }));

    const phase = (p: string) => !opt.only || opt.only.split(',').includes(p);
    // 1. open loop at a fixed rate: latency measured from the scheduled send time
    const rate = Number(opt.rate);
    const lat: number[] = [];
    if (phase('fixed')) {
      const start = performance.now();
      const total = Math.floor((rate * DURATION) / 1000);
      const inflight: Promise<void>[] = [];
      for (let i = 0; i < total; i++) {
        const due = start + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        inflight.push(request('POST', '/v1/attest', event('fixed'), key).then((r) => {
          check(r);
          lat.push(performance.now() - due);
        }));
      }
      await Promise.all(inflight);
      const secs = (performance.now() - start) / 1000;
      results.push(`/v1/attest at a fixed ${rate} req/s for ${(DURATION / 1000).toFixed(0)} s: achieved ${(total / secs).toFixed(0)} req/s, ${fmt(lat)}`);
    }

    /** `conc` connections each sending `send()` back to back for DURATION; events/s and latencies. */
    const closedLoop = async (conc: number, send: () => Promise<number>) => {
      const l: number[] = [];
      let n = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: conc }, async () => {
          while (performance.now() - start < DURATION) {
            const t = performance.now();
            const sent = await send(); // (not `n += await …`: that would read n before the await)
            n += sent;
            l.push(performance.now() - t);
          }
        }),
      );
      return `${(n / ((performance.now() - start) / 1000)).toFixed(0)} events/s, ${fmt(l)}`;
    };

    // 2. closed loop: maximum single-event throughput, with the full bundle in each response
    //    and with `Prefer: return=minimal`
    for (const minimal of [false, true]) {
      if (!phase(minimal ? 'max-minimal' : 'max')) continue;
      const conc = Number(opt.concurrency);
      const headers: Record<string, string> = minimal ? { prefer: 'return=minimal' } : {};
      const figures = await closedLoop(conc, async () => {
        check(await request('POST', '/v1/attest', event('max'), key, headers));
        return 1;
      });
      results.push(`/v1/attest max${minimal ? ' (Prefer: return=minimal)' : ''}, ${conc} connections, ${METERS} meters: ${figures}`);
    }

    // 3. batch endpoint, full bundles and minimal results; every item must be 201
    for (const minimal of [false, true]) {
      if (!phase(minimal ? 'batch-minimal' : 'batch')) continue;
      const size = Number(opt.batch);
      const conc = Number(opt['batch-concurrency']);
      const headers: Record<string, string> = minimal ? { prefer: 'return=minimal' } : {};
      const figures = await closedLoop(conc, async () => {
        const events = Array.from({ length: size }, () => event('batch'));
        const r = await request('POST', '/v1/attest/batch', { events }, key, headers);
        if (r.status !== 200) throw new Error(`batch ${r.status}: ${r.text.slice(0, 300)}`);
        const body = JSON.parse(r.text) as { results: { status: number }[] };
        if (body.results.length !== size || body.results.some((x) => x.status !== 201)) throw new Error('a batch item failed');
        return size;
      });
      results.push(`/v1/attest/batch${minimal ? ' (Prefer: return=minimal)' : ''}, ${size} events per request, ${conc} connections: ${figures} per request`);
    }
    results.push(`raw Ed25519 signing (node:crypto, one core, same run): ${signingRate().toFixed(0)} signatures/s`);
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
    fs.rmSync(dataDir, { recursive: true, force: true });
    agent.destroy();
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  console.log(`machine: ${cpu}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}; PostgreSQL via ${socketDir ? `Unix socket ${socketDir}` : `TCP ${baseUrl.host}`}`);
  for (const r of results) console.log(r);
}

await main();
