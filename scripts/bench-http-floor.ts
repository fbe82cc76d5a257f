// npm run bench:floor — the floor under /v1/attest on this machine: the server CPU per request of a
// bare Hono server on @hono/node-server (the stack meterproof serves with) that reads a meter
// event's JSON body and answers ~2.2 KB of JSON (a bundle's size), driven exactly as
// `bench:attest` drives its fixed-rate phase (an open loop over 32 keep-alive connections).
// With `--pg`, each request also waits for one PostgreSQL statement (requests arriving while one
// is in flight share the next, as the attest path's group commit does). No signing, no log, no
// metrics: what any Node service on this machine pays per request, to read the attest figures
// against. With `--node`, the server is bare node:http instead of Hono (what Hono adds).
//
//   npm run bench:floor [-- --rate 1000 --burst 1 --duration 10] [-- --pg] [-- --node]
//
// The server runs in a child process (this file with --serve); its CPU is read from /proc.
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import postgres from 'postgres';
import { postgresCpuMs, processCpuMs } from './cpu.ts';
import { machineLine, signingLine } from './machine.ts';

const { values: opt } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    burst: { type: 'string', default: '1' },
    duration: { type: 'string', default: '10' },
    pg: { type: 'boolean', default: false },
    node: { type: 'boolean', default: false },
    serve: { type: 'boolean', default: false },
    port: { type: 'string', default: '18099' },
  },
});
const PORT = Number(opt.port);
/** Requests sent together in the fixed-rate phase (--burst). */
const burst = Number(opt.burst);
if (!Number.isSafeInteger(burst) || burst < 1) {
  console.error('bench:floor: --burst must be a positive integer');
  process.exit(2);
}
const DATABASE_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The bare server: parse the body, (with --pg) wait for the shared statement, answer. */
function serveFloor(): void {
  const db = opt.pg ? postgres(DATABASE_URL, { max: 1, prepare: true }) : null;
  const answer = JSON.stringify({ pad: 'x'.repeat(2200) });
  let waiting: { id: string; done: () => void }[] = [];
  let inFlight = false;
  const flush = async (): Promise<void> => {
    if (inFlight || !waiting.length || !db) return;
    inFlight = true;
    const taken = waiting;
    waiting = [];
    try {
      await db`select count(*) from unnest(${taken.map((t) => t.id)}::text[])`;
    } finally {
      for (const t of taken) t.done();
      inFlight = false;
      void flush();
    }
  };
  if (opt.node) {
    http
      .createServer({ requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 60_000 }, (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (d: Buffer) => chunks.push(d));
        req.on('end', () => {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as { meter_event: { event_id: string } };
          const reply = () => res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer);
          if (!db) return void reply();
          waiting.push({ id: body.meter_event.event_id, done: reply });
          void flush();
        });
      })
      .listen(PORT, '127.0.0.1', () => console.log('listening'));
    return;
  }
  const app = new Hono();
  app.post('/v1/attest', async (c) => {
    const body = (await c.req.json()) as { meter_event: { event_id: string } };
    if (db) await new Promise<void>((done) => (waiting.push({ id: body.meter_event.event_id, done }), void flush()));
    return c.body(answer, 201, { 'content-type': 'application/json' });
  });
  // no request or header timeouts, as for the bare node:http server above: with node's defaults,
  // its periodic timeout check answered some runs' requests 408 on the VMs measured here
  serve({ fetch: app.fetch, port: PORT, hostname: '127.0.0.1', serverOptions: { requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 60_000 } }, () => console.log('listening'));
}

/** One keep-alive connection: a request at a time, the answer read as far as its Content-Length. */
class Connection {
  busy = false;
  private buffer = '';
  private done: (() => void) | null = null;
  constructor(readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      const head = this.buffer.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = /content-length: *(\d+)/i.exec(this.buffer.slice(0, head));
      if (!length) throw new Error(`no Content-Length: ${this.buffer.slice(0, 200)}`);
      if (this.buffer.length < head + 4 + Number(length[1])) return;
      if (!this.buffer.startsWith('HTTP/1.1 201')) throw new Error(`unexpected answer: ${this.buffer.slice(0, 200)}`);
      this.buffer = '';
      this.busy = false;
      const done = this.done!;
      this.done = null;
      done();
    });
  }
  send(request: Buffer): Promise<void> {
    this.busy = true;
    return new Promise((resolve) => {
      this.done = resolve;
      this.socket.write(request);
    });
  }
}

async function drive(): Promise<void> {
  const server = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--serve', ...(opt.pg ? ['--pg'] : []), ...(opt.node ? ['--node'] : []), '--port', String(PORT)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.once('exit', () => server.kill()); // also when the driver fails
  await new Promise<void>((resolve, reject) => {
    server.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  const connections: Connection[] = [];
  for (let i = 0; i < 32; i++) {
    const socket = net.connect({ host: '127.0.0.1', port: PORT, noDelay: true });
    await new Promise((r) => socket.once('connect', r));
    connections.push(new Connection(socket));
  }
  let n = 0;
  const request = () => {
    const body = JSON.stringify({ meter_event: { event_id: `evt-${n++}`, event_timestamp: '2026-05-29T12:00:00.000Z', tenant_id: 'tenant_bench', endpoint: '/v1/m1', usage_units: 12, billing_window_id: '2026-05' } });
    return Buffer.from(`POST /v1/attest HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  };
  const send = () => {
    const c = connections.find((x) => !x.busy);
    if (!c) throw new Error('all 32 connections busy: the server cannot keep up with --rate');
    return c.send(request());
  };
  for (let i = 0; i < 3000; i++) await send(); // warm-up

  const rate = Number(opt.rate);
  const durationMs = Number(opt.duration) * 1000;
  const latencies: number[] = [];
  const [server0, pg0] = [processCpuMs(server.pid!), postgresCpuMs()];
  const start = performance.now();
  await new Promise<void>((finished) => {
    let sent = 0;
    let open = 0;
    const tick = () => {
      const now = performance.now() - start;
      // request i is due at i / rate; with --burst N, requests are released N at a time, each
      // group at its first request's time (the same number per second)
      const released = (Math.floor(((now / 1000) * rate) / burst) + 1) * burst;
      for (const due = Math.min(released, Math.floor((durationMs / 1000) * rate)); sent < due; sent++) {
        const scheduled = start + ((sent - (sent % burst)) * 1000) / rate;
        open++;
        void send().then(() => {
          latencies.push(performance.now() - scheduled);
          if (--open === 0 && performance.now() - start >= durationMs) finished();
        });
      }
      if (now < durationMs) setTimeout(tick, 1);
      else if (open === 0) finished();
    };
    tick();
  });
  const serverMs = processCpuMs(server.pid!) - server0;
  const pgMs = postgresCpuMs() - pg0;
  server.kill();
  for (const c of connections) c.socket.destroy();
  latencies.sort((a, b) => a - b);
  const count = latencies.length;
  console.log(machineLine());
  console.log(signingLine());
  console.log(
    `${opt.node ? 'bare node:http' : 'bare Hono'}${opt.pg ? ' + one shared PostgreSQL statement per request' : ''}, ${rate} req/s${burst > 1 ? ` in bursts of ${burst}` : ''} for ${opt.duration} s: ${count} requests; ` +
      `server CPU ${((serverMs * 1000) / count).toFixed(0)} µs per request${opt.pg ? `, PostgreSQL ${((pgMs * 1000) / count).toFixed(0)} µs` : ''}; ` +
      `p50 ${latencies[Math.floor(count * 0.5)]!.toFixed(2)} ms, p95 ${latencies[Math.floor(count * 0.95)]!.toFixed(2)} ms`,
  );
}

if (opt.serve) serveFloor();
else await drive();
