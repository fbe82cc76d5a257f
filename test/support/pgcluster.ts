// A private PostgreSQL cluster for tests that stop, restart and kill the database: initdb into a
// temporary directory, a random port, a Unix socket in that directory. Never the shared server.
// initdb and postgres refuse to run as root: as root the cluster runs as the `postgres` user.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './server.ts';

/** The directory holding initdb, pg_ctl and postgres, or null. */
function findBinDir(): string | null {
  const has = (dir: string) => ['initdb', 'pg_ctl', 'postgres'].every((b) => fs.existsSync(path.join(dir, b)));
  const env = process.env['PG_BINDIR'];
  if (env) return has(env) ? env : null;
  const debian = '/usr/lib/postgresql';
  if (fs.existsSync(debian)) {
    const versions = fs.readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (has(path.join(debian, v, 'bin'))) return path.join(debian, v, 'bin');
  }
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir && has(dir)) return dir;
    // Debian links initdb and pg_ctl into /usr/local/bin or /usr/bin, not postgres: follow the link
    const initdb = path.join(dir, 'initdb');
    if (dir && fs.existsSync(initdb)) {
      const real = path.dirname(fs.realpathSync(initdb));
      if (has(real)) return real;
    }
  }
  return null;
}

/** As root, the user the cluster runs as (uid, gid), or null when there is none to run as. */
function runAs(): { uid: number; gid: number } | null {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    const runuser = spawnSync('runuser', ['--help'], { stdio: 'ignore' });
    return runuser.error ? null : { uid, gid };
  } catch {
    return null;
  }
}

/** Why a private cluster cannot be started here, or null when it can. */
export function privateClusterUnavailable(): string | null {
  if (!findBinDir()) return 'no PostgreSQL server binaries (initdb, pg_ctl, postgres; set PG_BINDIR)';
  if (process.getuid?.() === 0 && !runAs()) return 'running as root without a `postgres` user and runuser to run the cluster as';
  return null;
}

export interface PrivateCluster {
  readonly port: number;
  /** postgres:// URL of database `name` over TCP on 127.0.0.1. */
  url(name: string): string;
  start(): Promise<void>;
  /** pg_ctl stop -m fast: every connection is closed, the cluster is down until start(). */
  stop(): Promise<void>;
  /** Stops the cluster (immediately) and removes its directory. */
  destroy(): void;
}

export async function startPrivateCluster(): Promise<PrivateCluster> {
  const bin = findBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-pgc-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'postgres.log');
  const user = process.getuid?.() === 0 ? runAs() : null;
  if (user) fs.chownSync(dir, user.uid, user.gid);
  const argv = (tool: string, args: string[]): [string, string[]] => (user ? ['runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args]] : [path.join(bin, tool), args]);
  const failure = (tool: string, args: string[], status: unknown, output: string) =>
    new Error(`${tool} ${args.join(' ')} failed (${String(status)}): ${output}${fs.existsSync(log) ? `\n${fs.readFileSync(log, 'utf8').slice(-2000)}` : ''}`);
  const run = (tool: string, args: string[]) => {
    const [cmd, a] = argv(tool, args);
    const r = spawnSync(cmd, a, { encoding: 'utf8', cwd: dir, timeout: 60_000 });
    if (r.status !== 0) throw failure(tool, args, r.status, r.stderr || r.stdout);
  };
  // asynchronous, so that a test's load goes on while the server stops or starts
  const runAsync = (tool: string, args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const [cmd, a] = argv(tool, args);
      execFile(cmd, a, { cwd: dir, timeout: 60_000 }, (e, stdout, stderr) => (e ? reject(failure(tool, args, e.code, stderr || stdout)) : resolve()));
    });
  const port = await freePort();
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  // fsync off: the tests stop the server cleanly (a checkpoint) or kill client processes, never
  // the machine, and a slow shared disk would only make them slower
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`;
  let running = false;
  const cluster: PrivateCluster = {
    port,
    url: (name) => `postgres://postgres@127.0.0.1:${port}/${name}`,
    async start() {
      running = true;
      await runAsync('pg_ctl', ['-D', data, '-o', options, '-l', log, '-w', '-t', '30', 'start']);
    },
    async stop() {
      await runAsync('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
      running = false;
    },
    destroy() {
      try {
        if (running || fs.existsSync(path.join(data, 'postmaster.pid'))) run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  try {
    await cluster.start();
  } catch (e) {
    cluster.destroy();
    throw e;
  }
  return cluster;
}
