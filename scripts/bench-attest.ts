// npm run bench:attest — drives a real `meterproof serve` process over loopback on PostgreSQL
// (DATABASE_URL, default the local test server; a fresh database per run) with proofs async, and
// prints throughput and p50/p95/p99 for /v1/attest and /v1/attest/batch next to this machine's
// raw Ed25519 signing rate measured in the same run.
// After each phase a CPU line says where the time went (Linux, from /proc): µs of CPU per event in
// the server (and in its event loop, the one thread a Node process cannot spread), in every
// PostgreSQL process and in this load generator, and how many of the machine's cores were busy.
// The line ends with the server's resident memory: its peak (sampled every 100 ms) and at the end.
//
//   npm run bench:attest [-- --duration 10 --rate 1000 --burst 1 --concurrency 32 --batch 1000
//                            --batch-concurrency 4 --meters 64
//                            --only fixed,max,max-minimal,max-pop,batch,batch-minimal]
// Phases: fixed (open loop at --rate; with --burst N the requests are sent N at a time, the same
// number per second: how much of the CPU per event is paid per wake-up), max and max-minimal (closed loop; full bundles, then
// `Prefer: return=minimal`), max-pop (as max, every event with a consumer PoP: bilateral
// metering; the generator signs each PoP), batch and batch-minimal. BENCH_SERVER_NODE_ARGS passes node flags to
// the server (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"); BENCH_SERVER_LOG=<file> appends its
// standard output to a file (with BENCH_SERVER_NODE_ARGS=--trace-gc: each garbage collection).
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { machineBusyMs, mainThreadCpuMs, postgresCpuMs, processCpuMs, rssKiB } from './cpu.ts';
import { machineLine, postgresVersion, signingLine } from './machine.ts';
import { popMessage } from '../src/core/bilateral.ts';
import { digestOf } from '../src/core/canonical.ts';
import { generateSigningKey, publicJwk, signObject } from '../src/core/keys.ts';

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    rate: { type: 'string', default: '1000' },
    burst: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '32' },
    batch: { type: 'string', default: '1000' },
    'batch-concurrency': { type: 'string', default: '4' },
    port: { type: 'string', default: '18088' },
    only: { type: 'string' },
    meters: { type: 'string', default: '64' },
  },
});
const DURATION = Number(opt.duration) * 1000;
/** Requests sent together in the fixed-rate phase (--burst). */
const burst = Number(opt.burst);
if (!Number.isSafeInteger(burst) || burst < 1) {
  console.error('bench:attest: --burst must be a positive integer');
  process.exit(2);
}
const PORT = Number(opt.port);
const METERS = Number(opt.meters);
const BASE = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Where the server's standard output goes (its log lines, and e.g. `--trace-gc` output), if anywhere. */
const SERVER_LOG = process.env['BENCH_SERVER_LOG'];
const ADMIN = `bench-admin-${Date.now()}-0123456789abcdef`;

/**
 * The load generator's HTTP/1.1 client (set-up and measured phases alike): one keep-alive socket per
 * connection, requests written as one pre-built buffer, responses parsed only as far as the
 * status line, Content-Length and body. It does what a client must and nothing else, so that the
 * generator (which shares the two cores with the server and PostgreSQL) takes as little CPU from
 * them as it can; node:http's client costs several times more per request.
 */
class Connection {
  private readonly socket: net.Socket;
  private chunks: Buffer[] = [];
  private received = 0;
  /** Offsets of the current response's body in the received bytes (-1 while its head is incomplete). */
  private bodyStart = -1;
  private bodyEnd = -1;
  private status = 0;
  private chunked = false;
  private pending: { resolve(r: { status: number; text: string }): void; reject(e: Error): void } | null = null;
  readonly ready: Promise<void>;
  /** The server closes idle keep-alive connections (after its keepAliveTimeout): not reused. */
  closed = false;

  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.received += d.length;
      this.parse();
    });
    this.socket.on('error', (e) => this.pending?.reject(e));
    this.socket.on('close', () => {
      this.closed = true;
      this.pending?.reject(new Error('connection closed'));
    });
  }

  private parse(): void {
    if (!this.pending) return;
    if (this.bodyEnd < 0) {
      // still reading the head (small: joining its chunks is cheap)
      if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
      const buf = this.chunks[0]!;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const m = /\r\ncontent-length: *(\d+)/i.exec(head);
      this.chunked = !m && /\r\ntransfer-encoding: *chunked/i.test(head);
      if (!m && !this.chunked) return this.pending.reject(new Error(`response without Content-Length: ${head.slice(0, 200)}`));
      this.status = Number(head.slice(9, 12));
      this.bodyStart = end + 4;
      this.bodyEnd = m ? this.bodyStart + Number(m[1]) : Infinity;
    }
    let text: string;
    let all: Buffer;
    if (this.chunked) {
      // a streamed body (the batch answer): complete when the last chunk (size 0) has come; one
      // request at a time per connection, so it is the end of what was received
      const last = this.chunks.at(-1)!;
      if (last.length < 5 || last.subarray(-5).toString('latin1') !== '0\r\n\r\n') return;
      all = this.chunks.length > 1 ? Buffer.concat(this.chunks) : this.chunks[0]!;
      const parts: Buffer[] = [];
      let at = this.bodyStart;
      for (;;) {
        const eol = all.indexOf('\r\n', at);
        const size = parseInt(all.subarray(at, eol).toString('latin1'), 16);
        if (size === 0) break;
        parts.push(all.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
      }
      text = Buffer.concat(parts).toString('utf8');
      this.bodyEnd = all.length;
    } else {
      // a large body arrives in many chunks: join them once, when all are here
      if (this.received < this.bodyEnd) return;
      all = this.chunks.length > 1 ? Buffer.concat(this.chunks) : this.chunks[0]!;
      text = all.subarray(this.bodyStart, this.bodyEnd).toString('utf8');
    }
    const rest = all.subarray(this.bodyEnd);
    this.chunks = rest.length ? [rest] : [];
    this.received = rest.length;
    this.bodyEnd = -1;
    const p = this.pending;
    this.pending = null;
    p.resolve({ status: this.status, text });
  }

  /** Send one request (the previous one must have been answered) and wait for its response. */
  send(method: string, p: string, body: unknown, token: string, extra: Record<string, string> = {}): Promise<{ status: number; text: string }> {
    const data = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
    let head = `${method} ${p} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${token}\r\n`;
    if (body !== undefined) head += `content-type: application/json\r\ncontent-length: ${data.length}\r\n`;
    for (const [k, v] of Object.entries(extra)) head += `${k}: ${v}\r\n`;
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), data]));
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Connections to the server under test; idle ones are reused, at most MAX_CONNECTIONS are open
 *  (as node:http's agent would; beyond that a request waits for a free connection). A request on
 *  a connection the server closed just then (its keep-alive timeout) is sent once more on a new
 *  one: a repeated event is answered as a replay (200), which the checks accept. */
const MAX_CONNECTIONS = 512;
const idle: Connection[] = [];
const open: Connection[] = [];
const waiting: ((c: Connection | null) => void)[] = [];
async function connection(): Promise<Connection> {
  let c = idle.pop();
  while (c?.closed) c = idle.pop();
  if (c) return c;
  if (open.filter((o) => !o.closed).length >= MAX_CONNECTIONS) {
    const free = await new Promise<Connection | null>((r) => waiting.push(r));
    if (free && !free.closed) return free;
  }
  c = new Connection(PORT);
  open.push(c);
  await c.ready;
  return c;
}
function done(c: Connection): void {
  const next = waiting.shift();
  if (next) next(c);
  else idle.push(c);
}
function occurrences(text: string, marker: string): number {
  let n = 0;
  for (let at = text.indexOf(marker); at !== -1; at = text.indexOf(marker, at + marker.length)) n++;
  return n;
}

async function request(method: string, p: string, body: unknown, token: string, extra: Record<string, string> = {}, retry = true): Promise<{ status: number; text: string }> {
  const c = await connection();
  try {
    const r = await c.send(method, p, body, token, extra);
    done(c);
    return r;
  } catch (e) {
    waiting.shift()?.(null); // a waiter opens a connection of its own instead
    if (!retry || !c.closed) throw e;
    return request(method, p, body, token, extra, false);
  }
}
const send = (p: string, body: unknown, token: string, extra: Record<string, string> = {}) => request('POST', p, body, token, extra);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(2)} ms, p95 ${pct(xs, 95).toFixed(2)} ms, p99 ${pct(xs, 99).toFixed(2)} ms`;

/** Starts counting CPU time; `per(n)` gives µs of CPU per event since then, by process. */
function cpuMeter(serverPid: number) {
  const server0 = processCpuMs(serverPid);
  const main0 = mainThreadCpuMs(serverPid);
  const pg0 = postgresCpuMs();
  const gen0 = process.cpuUsage();
  const machine0 = machineBusyMs();
  const t0 = performance.now();
  // the server's resident memory, sampled every 100 ms through the phase
  let rssPeak = rssKiB(serverPid);
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssKiB(serverPid))), 100);
  return (n: number) => {
    clearInterval(sampler);
    const rssEnd = rssKiB(serverPid);
    rssPeak = Math.max(rssPeak, rssEnd);
    const g = process.cpuUsage(gen0);
    const machine = (machineBusyMs() - machine0) / (performance.now() - t0);
    const [server, main, pg, gen] = [processCpuMs(serverPid) - server0, mainThreadCpuMs(serverPid) - main0, postgresCpuMs() - pg0, (g.user + g.system) / 1000];
    const us = (ms: number) => ((ms * 1000) / n).toFixed(0);
    const busy = (server + pg + gen) / (performance.now() - t0);
    return `CPU per event: server ${us(server)} µs (event loop ${us(main)}), PostgreSQL ${us(pg)} µs, load generator ${us(gen)} µs; ${busy.toFixed(2)} of ${os.availableParallelism()} cores busy with these (${machine.toFixed(2)} with everything, kernel included); server RSS peak ${(rssPeak / 1024).toFixed(0)} MiB, ${(rssEnd / 1024).toFixed(0)} MiB at the end`;
  };
}

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

async function main() {
  const name = `mp_bench_${Date.now().toString(36)}`;
  const baseUrl = new URL(BASE);
  const socketDir = baseUrl.searchParams.get('host');
  baseUrl.searchParams.delete('host');
  const admin = postgres(baseUrl.toString(), { max: 1, onnotice: () => {}, ...(socketDir ? { host: socketDir } : {}) });
  const pgVersion = await postgresVersion(admin);
  await admin.unsafe(`create database ${name}`);
  const url = new URL(BASE);
  url.pathname = `/${name}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-bench-'));
  const server = spawn(process.execPath, [...(process.env['BENCH_SERVER_NODE_ARGS']?.split(' ').filter(Boolean) ?? []), 'bin/meterproof.js', 'serve'], {
    env: { ...process.env, PORT: String(PORT), DATABASE_URL: url.toString(), DATA_DIR: dataDir, METERPROOF_ADMIN_TOKEN: ADMIN, PROVER_WORKERS: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    server.stdout.on('data', (d: Buffer) => {
      if (SERVER_LOG) fs.appendFileSync(SERVER_LOG, d);
      if (d.toString().includes('listening')) resolve();
    });
    server.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  const results: string[] = [];
  try {
    await request('POST', '/v1/admin/tenants', { id: 'tenant_bench' }, ADMIN);
    const published = await request('POST', '/v1/admin/tariffs', { tariff_id: 'tariff_bench', tariff_version: '1', tariff_class: 'usage_graduated', currency: 'USD', tiers: [{ up_to: 100000, unit_price_micros: 120 }, { up_to: null, unit_price_micros: 90 }], min_charge_micros: 0 }, ADMIN);
    const tariffDigest = (JSON.parse(published.text) as { v2: { tariff_digest: string } }).v2.tariff_digest;
    const key = JSON.parse((await request('POST', '/v1/admin/api-keys', { scopes: ['attest'] }, ADMIN)).text).secret as string;
    // a consumer for the PoP phase; its PoPs are signed here (node:crypto or libsodium)
    const consumerKey = generateSigningKey();
    const { valid_from: _vf, valid_until: _vu, ...consumerJwk } = publicJwk(consumerKey, new Date().toISOString());
    await request('POST', '/v1/admin/consumers', { tenant_id: 'tenant_bench', consumer_id: 'bench_consumer', public_key: consumerJwk }, ADMIN);
    const withPop = (e: ReturnType<typeof event>) => {
      const fields = {
        tenant_id: 'tenant_bench',
        consumer_id: 'bench_consumer',
        key_id: consumerKey.keyId,
        event_id: e.meter_event.event_id,
        tariff_digest: tariffDigest,
        request_payload_hash: digestOf(e.meter_event.event_id),
        timestamp: new Date().toISOString(),
        nonce: `n-${e.meter_event.event_id}-0000000000`,
      };
      const { tenant_id: _t, event_id: _e, ...sent } = fields;
      return { ...e, consumer_pop: { ...sent, signature: signObject(consumerKey, popMessage(fields)) } };
    };
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
      const cpu = cpuMeter(server.pid!);
      const start = performance.now();
      const total = Math.floor((rate * DURATION) / 1000);
      const inflight: Promise<void>[] = [];
      for (let i = 0; i < total; i++) {
        // with --burst N, the requests of a group share its send time (i rounded down to N)
        const due = start + ((i - (i % burst)) * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        inflight.push(send('/v1/attest', event('fixed'), key).then((r) => {
          check(r);
          lat.push(performance.now() - due);
        }));
      }
      await Promise.all(inflight);
      const secs = (performance.now() - start) / 1000;
      results.push(`/v1/attest at a fixed ${rate} req/s${burst > 1 ? ` in bursts of ${burst}` : ''} for ${(DURATION / 1000).toFixed(0)} s: achieved ${(total / secs).toFixed(0)} req/s, ${fmt(lat)}`);
      results.push(`  ${cpu(total)}`);
      results.push(`  ${await storeStatements(key)}`);
    }

    /** The server's own view (GET /v1/status): wall time of its last 1,024 store statements. */
    async function storeStatements(token: string): Promise<string> {
      const st = JSON.parse((await request('GET', '/v1/status', undefined, token)).text) as { store_writes: { statements: number; attestations: number; statement_ms: { p50: number; p95: number; p99: number; statements: number } | null } };
      const w = st.store_writes;
      const ms = w.statement_ms;
      return `server: store statements (last ${ms?.statements ?? 0}) p50 ${ms?.p50} ms, p95 ${ms?.p95} ms, p99 ${ms?.p99} ms; ${(w.attestations / w.statements).toFixed(1)} attestations per statement since start`;
    }

    /** `conc` connections each sending `send()` back to back for DURATION; events/s and latencies. */
    const closedLoop = async (conc: number, send: () => Promise<number>) => {
      const l: number[] = [];
      let n = 0;
      const cpu = cpuMeter(server.pid!);
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
      return { figures: `${(n / ((performance.now() - start) / 1000)).toFixed(0)} events/s, ${fmt(l)}`, cpu: cpu(n) };
    };

    // 2. closed loop: maximum single-event throughput, with the full bundle in each response
    //    and with `Prefer: return=minimal`
    for (const minimal of [false, true]) {
      if (!phase(minimal ? 'max-minimal' : 'max')) continue;
      const conc = Number(opt.concurrency);
      const headers: Record<string, string> = minimal ? { prefer: 'return=minimal' } : {};
      const { figures, cpu } = await closedLoop(conc, async () => {
        check(await send('/v1/attest', event('max'), key, headers));
        return 1;
      });
      results.push(`/v1/attest max${minimal ? ' (Prefer: return=minimal)' : ''}, ${conc} connections, ${METERS} meters: ${figures}`);
      results.push(`  ${cpu}`);
      results.push(`  ${await storeStatements(key)}`);
    }

    // 2b. closed loop with a consumer PoP on every event (bilateral metering)
    if (phase('max-pop')) {
      const conc = Number(opt.concurrency);
      const { figures, cpu } = await closedLoop(conc, async () => {
        check(await send('/v1/attest', withPop(event('pop')), key));
        return 1;
      });
      results.push(`/v1/attest max with a consumer PoP, ${conc} connections, ${METERS} meters: ${figures}`);
      results.push(`  ${cpu}`);
      results.push(`  ${await storeStatements(key)}`);
    }

    // 3. batch endpoint, full bundles and minimal results; every item must be 201
    for (const minimal of [false, true]) {
      if (!phase(minimal ? 'batch-minimal' : 'batch')) continue;
      const size = Number(opt.batch);
      const conc = Number(opt['batch-concurrency']);
      const headers: Record<string, string> = minimal ? { prefer: 'return=minimal' } : {};
      const { figures, cpu } = await closedLoop(conc, async () => {
        const events = Array.from({ length: size }, () => event('batch'));
        const r = await send('/v1/attest/batch', { events }, key, headers);
        if (r.status !== 200) throw new Error(`batch ${r.status}: ${r.text.slice(0, 300)}`);
        // Every item is {"index":…,"status":201,…}. Counting both markers checks that without
        // parsing ~2 MB of JSON per response on a core the server needs (no field of a bundle
        // is named "index" or "status": they are log_index and proof_status).
        if (occurrences(r.text, '{"index":') !== size || occurrences(r.text, ',"status":201,') !== size) {
          throw new Error(`a batch item failed: ${r.text.slice(0, 300)}`);
        }
        return size;
      });
      results.push(`/v1/attest/batch${minimal ? ' (Prefer: return=minimal)' : ''}, ${size} events per request, ${conc} connections: ${figures} per request`);
      results.push(`  ${cpu}`);
    }
    results.push(signingLine());
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
    fs.rmSync(dataDir, { recursive: true, force: true });
    for (const c of open) c.close();
  }
  console.log(`${machineLine()}; PostgreSQL ${pgVersion} via ${socketDir ? `Unix socket ${socketDir}` : `TCP ${baseUrl.host}`}`);
  for (const r of results) console.log(r);
}

await main();
