// Real `meterproof serve` processes for tests: spawned from bin/meterproof.js, killed at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabaseUrl } from './db.ts';

export const ADMIN_TOKEN = 'server-test-admin-token-0123456789abcdef';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface ServerProcess {
  readonly url: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `env` is added to this process's environment; a variable given as undefined is removed. */
export async function startServer(env: Record<string, string | undefined>): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.resolve('bin/meterproof.js'), 'serve'], {
    env: { ...process.env, PORT: String(port), METERPROOF_ADMIN_TOKEN: ADMIN_TOKEN, PROVER_WORKERS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 60_000);
    child.stdout!.on('data', () => {
      if (out.includes('listening')) {
        clearTimeout(t);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}

export async function api(base: string, method: string, p: string, body?: unknown, token = ADMIN_TOKEN): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(base + p, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* text */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export interface ServerPair {
  readonly a: ServerProcess;
  readonly b: ServerProcess;
  readonly dataDir: string;
  stop(): Promise<void>;
}

/** Two server processes on one fresh PostgreSQL database (DATABASE_URL) and one data directory,
 *  started at once; `stop` ends both and drops the database. */
export async function startServerPair(env: Record<string, string | undefined> = {}): Promise<ServerPair> {
  const db = await createTestDatabaseUrl();
  if (!db) throw new Error('startServerPair needs DATABASE_URL');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-pair-'));
  const all = { DATABASE_URL: db.url, DATA_DIR: dataDir, ...env };
  const [a, b] = await Promise.all([startServer(all), startServer(all)]);
  return {
    a,
    b,
    dataDir,
    async stop() {
      await Promise.all([a.stop(), b.stop()]);
      await db.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
