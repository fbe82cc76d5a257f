// Cold start: how long `meterproof serve` takes from spawn to its first 200 from GET /ready
// (GET /v1/status where the server has no /ready), on PGlite and on PostgreSQL, with a fresh
// data directory / database each run and with an existing one (already initialized and
// migrated). Prints every run and min / median / max per case, and the machine it ran on.
// Then the CPU an idle server takes (no requests, --idle seconds, from /proc): its pollers'
// cost, paid all day by a service that is mostly idle.
//
//   npm run bench:start [-- --runs 5] [-- --idle 20] [-- --only pglite|postgres]
//
// PostgreSQL: DATABASE_URL (default the local test server); a database is created per fresh run
// and one for the existing case, all dropped at the end.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { freePort } from '../test/support/server.ts';
import { postgresCpuMs, processCpuMs } from './cpu.ts';
import { machineLine, postgresVersion, signingLine } from './machine.ts';

const { values: opt } = parseArgs({ options: { runs: { type: 'string', default: '5' }, idle: { type: 'string', default: '20' }, only: { type: 'string' } } });
const RUNS = Number(opt.runs);
const IDLE_S = Number(opt.idle);
const BASE = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const ADMIN = 'bench-start-admin-token-0123456789abcdef';

interface Started {
  /** ms from spawn to the first 200 */
  readonly readyMs: number;
  /** the path that answered it */
  readonly probe: string;
  /** with `idleS`: CPU ms per second of the idle server, and of every PostgreSQL process */
  readonly idle?: { server: number; postgres: number };
}

/** Spawns a server, polls until it is ready (every 5 ms), stops it; the time to ready. With
 *  `idleS`, the server is first left without requests for 3 s, then its CPU (and PostgreSQL's)
 *  is measured over `idleS` seconds. */
async function startOnce(env: Record<string, string>, idleS = 0): Promise<Started> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, ['bin/meterproof.js', 'serve'], {
    env: { ...process.env, ...env, PORT: String(port), METERPROOF_ADMIN_TOKEN: ADMIN },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise((r) => child.once('exit', r));
  let probe = '/ready';
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}): ${stderr}`);
      if (performance.now() - t0 > 120_000) throw new Error(`server not ready after 120 s: ${stderr}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}${probe}`);
        await res.arrayBuffer();
        if (res.status === 200) {
          const readyMs = performance.now() - t0;
          return { readyMs, probe, ...(idleS > 0 ? { idle: await idleCpu(child.pid!, idleS) } : {}) };
        }
        if (res.status === 404 && probe === '/ready') probe = '/v1/status'; // a server without /ready
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

async function idleCpu(pid: number, seconds: number): Promise<{ server: number; postgres: number }> {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await sleep(3000); // start-up work (first checkpoint, caches) done
  const [s0, p0] = [processCpuMs(pid), postgresCpuMs()];
  await sleep(seconds * 1000);
  return { server: (processCpuMs(pid) - s0) / seconds, postgres: (postgresCpuMs() - p0) / seconds };
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const f = (x: number) => `${(x / 1000).toFixed(2)} s`;
  return `min ${f(s[0]!)}, median ${f(s[Math.floor(s.length / 2)]!)}, max ${f(s.at(-1)!)} (${s.map((x) => (x / 1000).toFixed(2)).join(', ')})`;
};

async function main() {
  const lines: string[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-bench-start-'));
  const admin = postgres(BASE, { max: 1, onnotice: () => {} });
  const databases: string[] = [];
  const newDatabase = async () => {
    const name = `mp_bench_start_${Date.now().toString(36)}_${databases.length}`;
    await admin.unsafe(`create database ${name}`);
    databases.push(name);
    const u = new URL(BASE);
    u.pathname = `/${name}`;
    return u.toString();
  };
  let probe = '';
  const idle: string[] = [];
  const idleRun = async (label: string, env: Record<string, string>) => {
    if (IDLE_S <= 0) return;
    const r = (await startOnce(env, IDLE_S)).idle!;
    idle.push(`${label}: server ${r.server.toFixed(1)} ms of CPU per second${label.startsWith('PostgreSQL') ? `, PostgreSQL ${r.postgres.toFixed(1)} ms per second` : ''}`);
  };
  const run = async (label: string, env: () => Promise<Record<string, string>>) => {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await startOnce(await env());
      probe = r.probe;
      times.push(r.readyMs);
    }
    lines.push(`${label}: ${stats(times)}`);
  };
  let pgLine = '';
  try {
    let n = 0;
    const dir = () => path.join(tmp, `d${n++}`);
    if (opt.only !== 'postgres') {
      await run('PGlite, fresh data directory', async () => ({ DATA_DIR: dir() }));
      const existing = dir();
      await startOnce({ DATA_DIR: existing }); // initialize and migrate once
      await run('PGlite, existing data directory', async () => ({ DATA_DIR: existing }));
      await idleRun('PGlite', { DATA_DIR: existing });
    }
    if (opt.only !== 'pglite') {
      pgLine = `; PostgreSQL ${await postgresVersion(admin)}`;
      await run('PostgreSQL, fresh database', async () => ({ DATA_DIR: dir(), DATABASE_URL: await newDatabase() }));
      const env = { DATA_DIR: dir(), DATABASE_URL: await newDatabase() };
      await startOnce(env);
      await run('PostgreSQL, existing database', async () => env);
      await idleRun('PostgreSQL', env);
    }
  } finally {
    for (const name of databases) await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`${machineLine()}${pgLine}; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  console.log(`${signingLine()}`);
  console.log(`cold start, spawn to the first 200 from ${probe} (${RUNS} runs each, PROVER_WORKERS default):`);
  for (const l of lines) console.log(`  ${l}`);
  if (idle.length) console.log(`idle, no requests for ${IDLE_S} s (after 3 s), PROVER_WORKERS default:`);
  for (const l of idle) console.log(`  ${l}`);
}

await main();
