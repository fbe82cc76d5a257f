// The `meterproof` command in a child process, run asynchronously (vitest's RPC with the worker
// keeps being answered while it runs).
import { spawn } from 'node:child_process';
import path from 'node:path';

export const BIN = path.resolve('bin/meterproof.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** bin/meterproof.js with `args` in `cwd`, DATA_DIR = `cwd`/data. `env` is added to this
 *  process's environment (an entry given as undefined is removed); `stdin` is its standard input. */
export function runCli(args: string[], cwd: string, opts: { env?: Record<string, string | undefined>; stdin?: string } = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = { ...process.env, DATA_DIR: path.join(cwd, 'data'), ...opts.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: env as NodeJS.ProcessEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(opts.stdin ?? '');
  });
}

/** runCli without options. */
export const runAsync = (args: string[], cwd: string) => runCli(args, cwd);
