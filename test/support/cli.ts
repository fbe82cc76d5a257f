// Runs bin/meterproof.js in a child process without blocking the test process (vitest's RPC with
// the worker keeps being answered), with DATA_DIR inside `cwd`.
import { spawn } from 'node:child_process';
import path from 'node:path';

export const BIN = path.resolve('bin/meterproof.js');

export const runAsync = (args: string[], cwd: string) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, DATA_DIR: path.join(cwd, 'data') } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
