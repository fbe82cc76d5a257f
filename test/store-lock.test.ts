// One writer per embedded store: real `meterproof serve` / `migrate` processes on one PGlite
// DATA_DIR, and the lock file's stale-lock rules.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreLockedError, acquireStoreLock, isStale, processStart } from '../src/db/store-lock.ts';
import { api, startServer, type ServerProcess } from './support/server.ts';

const dirs: string[] = [];
const tmp = (p: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), p));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Run `meterproof <args>` to its end; PGlite on `dataDir`. */
function runCli(args: string[], dataDir: string): Promise<{ code: number | null; out: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, PORT: '0', PROVER_WORKERS: '0' };
  delete env['DATABASE_URL'];
  const child = spawn(process.execPath, [path.resolve('bin/meterproof.js'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
}

/** A pid that was running a moment ago and is not now. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('one process per PGlite DATA_DIR', () => {
  it('a second serve and a migrate refuse while a server runs; after kill -9 a new server starts', async () => {
    const dataDir = tmp('mp-lock-');
    const env = { DATA_DIR: dataDir, DATABASE_URL: undefined };
    let first: ServerProcess | null = null;
    let third: ServerProcess | null = null;
    try {
      first = await startServer(env);
      const pid = first.child.pid!;
      const tenant = await api(first.url, 'POST', '/v1/admin/tenants', { id: 'tenant_lock' });
      expect(tenant.status).toBe(201);

      for (const cmd of ['serve', 'migrate']) {
        const second = await runCli([cmd], dataDir);
        expect(second.code, second.out).toBe(3);
        const lines = second.out.trim().split('\n');
        expect(lines, second.out).toHaveLength(1);
        expect(lines[0]).toContain(`locked by pid ${pid}`);
        expect(lines[0]).toContain(dataDir);
      }
      // the worker needs PostgreSQL anyway: it refuses before touching the store
      const worker = await runCli(['worker'], dataDir);
      expect(worker.code).toBe(2);
      expect(worker.out).toMatch(/needs DATABASE_URL/);
      // the first server is untouched by the refusals
      expect((await api(first.url, 'GET', '/v1/admin/tenants')).body.items.map((t: { id: string }) => t.id)).toContain('tenant_lock');

      await first.stop('SIGKILL');
      expect(fs.existsSync(path.join(dataDir, 'pglite.lock')), 'kill -9 leaves the lock file behind').toBe(true);
      third = await startServer(env);
      expect((await api(third.url, 'GET', '/v1/admin/tenants')).body.items.map((t: { id: string }) => t.id)).toContain('tenant_lock');
      const lock = JSON.parse(fs.readFileSync(path.join(dataDir, 'pglite.lock'), 'utf8'));
      expect(lock.pid).toBe(third.child.pid);
      await third.stop('SIGTERM');
      expect(fs.existsSync(path.join(dataDir, 'pglite.lock')), 'a clean stop removes the lock').toBe(false);
    } finally {
      await first?.stop('SIGKILL');
      await third?.stop('SIGKILL');
    }
  }, 120_000);
});

describe('the store lock file', () => {
  const store = () => path.join(tmp('mp-lockf-'), 'pglite');
  const write = (s: string, info: Record<string, unknown>) => fs.writeFileSync(`${s}.lock`, JSON.stringify(info));
  const me = { host: os.hostname(), start: null, boot: null, taken_at: '2026-01-01T00:00:00.000Z' };

  it('is exclusive within a process too, and released by release()', () => {
    const s = store();
    const a = acquireStoreLock(s, 'the dir');
    expect(() => acquireStoreLock(s, 'the dir')).toThrow(StoreLockedError);
    // own pid in the lock file counts as stale only before we hold it: held, it is a live lock
    // of a running process (this one), so a second acquire above refused
    a.release();
    const b = acquireStoreLock(s);
    b.release();
    expect(fs.existsSync(`${s}.lock`)).toBe(false);
    expect(fs.readdirSync(path.dirname(s)).filter((f) => f.includes('.lock.'))).toEqual([]); // no temporary files left
  });

  it('takes over a lock whose process is gone', () => {
    const s = store();
    write(s, { ...me, pid: deadPid() });
    const l = acquireStoreLock(s);
    expect(JSON.parse(fs.readFileSync(`${s}.lock`, 'utf8')).pid).toBe(process.pid);
    l.release();
  });

  it('takes over a lock whose pid now belongs to another process (start time differs)', () => {
    const s = store();
    const parent = process.ppid; // running, and not this process
    const start = processStart(parent);
    if (start === null) return; // no /proc: the start time cannot be compared here
    write(s, { ...me, pid: parent, start: `${start}1` });
    acquireStoreLock(s).release();
    write(s, { ...me, pid: parent, start });
    expect(() => acquireStoreLock(s)).toThrow(/locked by pid/);
  });

  it('never takes over a lock from another host, or one it cannot read', () => {
    const s = store();
    write(s, { ...me, host: 'another-host', pid: deadPid() });
    const e = (() => {
      try {
        acquireStoreLock(s, 'DATA_DIR x');
      } catch (x) {
        return x as StoreLockedError;
      }
      return null;
    })();
    expect(e).toBeInstanceOf(StoreLockedError);
    expect(e!.message).toMatch(/^DATA_DIR x is in use: its embedded store is locked by pid \d+ on another-host/);
    expect(e!.holder?.host).toBe('another-host');
    fs.writeFileSync(`${s}.lock`, 'not a lock');
    expect(() => acquireStoreLock(s)).toThrow(/cannot be read as a lock/);
  });

  it('judges staleness by host, pid, boot and start time', () => {
    const self = { pid: 42, host: 'h', boot: 'b1' };
    const info = { pid: process.pid, host: 'h', start: processStart(process.pid), boot: 'b1', taken_at: '' };
    expect(isStale(info, self)).toBe(false); // this process is running
    expect(isStale({ ...info, host: 'other' }, self)).toBe(false);
    expect(isStale({ ...info, pid: 42 }, self)).toBe(true); // our own pid: an earlier incarnation
    expect(isStale({ ...info, boot: 'b0' }, self)).toBe(true); // before a reboot
    expect(isStale({ ...info, pid: deadPid() }, self)).toBe(true);
  });
});
