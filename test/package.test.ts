// The package as a user gets it (issue 19, point 1): `npm pack` of the build in dist/ (which
// `prepare` makes, and the suite's setup keeps fresh), installed into an empty directory, then used from plain Node with no TypeScript
// loader: `meterproof/verifier` verifies a real proved bundle and the process exits by itself;
// the installed `meterproof` command runs the build; the published types compile.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FullBundle } from '../src/core/schemas.ts';
import { createProver } from '../src/prover/index.ts';
import { V2_KEYS_DIR } from '../src/service/zk.ts';
import { keyA, provedPilotBundleV2, trustFor } from './support/fixtures.ts';

const ROOT = process.cwd();
/** How long a verifying script may take before it counts as hanging (a loaded CI machine included). */
const EXIT_WITHIN_MS = 60_000;

interface Run {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs a command to its end (killed after `timeoutMs`), without blocking vitest's worker. */
function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['METERPROOF_FROM_SOURCE']; // the installed package runs its build
  delete env['NODE_OPTIONS']; // plain Node: no loader from the test runner
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr, ms: Date.now() - t0 }));
  });
}

const ok = (r: Run, what: string) => expect(r, `${what}:\n${r.stdout}\n${r.stderr}`).toMatchObject({ status: 0, signal: null });

/** The consumer's script: plain ESM, no tsx. Prints one JSON line per bundle. */
const VERIFY_SCRIPT = `
import fs from 'node:fs';
import { verifyJson } from 'meterproof/verifier';
import * as api from 'meterproof';
import { MeterproofClient } from 'meterproof/client';
import { Consumer, generateConsumerKey } from 'meterproof/consumer';
const trust = JSON.parse(fs.readFileSync('trust.json', 'utf8'));
for (const f of ['bundle.json', 'tampered.json']) {
  const r = await verifyJson(fs.readFileSync(f, 'utf8'), trust, { profile: 'standard' });
  const proof = r.checks.find((c) => c.name === 'proof');
  console.log(JSON.stringify({ file: f, valid: r.valid, proof: proof.status, code: proof.code ?? null }));
}
console.log(JSON.stringify({ root: typeof api.verify === 'function' && typeof api.digestOf === 'function', client: typeof MeterproofClient, consumer: typeof new Consumer({ tenantId: 't', consumerId: 'c', secretKey: generateConsumerKey().secretKey }).signPop, pins: Object.keys(api.PINNED_VKEYS) }));
`;

/** What a TypeScript user writes; compiled strictly, the package's .d.ts files included. */
const TYPES_SCRIPT = `
import { verify, verifyJson, redact, advanceTrustState, type VerificationReport, type VerifyArgs } from 'meterproof/verifier';
import { digestOf, PINNED_VKEYS, TrustMaterial, FullBundle, type CheckResult, type VerifyCode } from 'meterproof';
import { MeterproofClient } from 'meterproof/client';
import { Consumer, generateConsumerKey } from 'meterproof/consumer';
export const consumer = new Consumer({ tenantId: 't', consumerId: 'c', secretKey: generateConsumerKey().secretKey });
export const client = new MeterproofClient({ baseUrl: 'http://127.0.0.1:8088' });
export async function check(bundle: unknown, trust: TrustMaterial, args: VerifyArgs): Promise<VerifyCode[]> {
  const r: VerificationReport = await verify(bundle, trust, args);
  const failed: CheckResult[] = r.checks.filter((c) => c.status === 'fail');
  void verifyJson; void redact(FullBundle.parse(bundle)); void advanceTrustState(trust, undefined);
  void digestOf(r); void PINNED_VKEYS['bn128-poseidon8-v2']?.digest;
  return failed.flatMap((c) => (c.code ? [c.code] : []));
}
`;

describe('the packed package', () => {
  let dir: string;
  let consumer: string;
  let tarball: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-package-'));
    consumer = path.join(dir, 'consumer');
    fs.mkdirSync(consumer);
    // a real bn128-poseidon8-v2 proof, and the same bundle with A and C of the proof swapped
    const prover = await createProver({ workers: 0, keysDir: V2_KEYS_DIR });
    let proved: FullBundle;
    try {
      proved = await provedPilotBundleV2(prover);
    } finally {
      await prover.close();
    }
    const tampered = structuredClone(proved);
    const p = tampered.attestation.billing_proof!.proof;
    [p.pi_a, p.pi_c] = [p.pi_c, p.pi_a];
    fs.writeFileSync(path.join(consumer, 'bundle.json'), JSON.stringify(proved));
    fs.writeFileSync(path.join(consumer, 'tampered.json'), JSON.stringify(tampered));
    fs.writeFileSync(path.join(consumer, 'trust.json'), JSON.stringify(trustFor(keyA)));
    fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    fs.writeFileSync(path.join(consumer, 'verify.mjs'), VERIFY_SCRIPT);
    fs.writeFileSync(path.join(consumer, 'check.ts'), TYPES_SCRIPT);
  }, 180_000);

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('npm pack ships the build, the command, the keys the verifier and server read and the docs; no sources, tests or ptau', async () => {
    // `prepare` builds dist/ on install and before a pack or publish. It is not run again here: the
    // suite's setup built dist/ from the present sources, and other test files run it meanwhile.
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['prepare']).toBe('npm run build');
    const r = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], ROOT, 600_000);
    ok(r, 'npm pack');
    const name = r.stdout.trim().split('\n').at(-1)!;
    tarball = path.join(dir, name);
    expect(fs.existsSync(tarball)).toBe(true);
    const list = await run('tar', ['-tzf', tarball], dir, 60_000);
    ok(list, 'tar');
    const files = list.stdout.trim().split('\n').map((f) => f.replace(/^package\//, ''));
    for (const f of [
      'package.json',
      'README.md',
      'bin/meterproof.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/verifier/index.js',
      'dist/verifier/index.d.ts',
      'dist/client/index.js',
      'dist/client/index.d.ts',
      'dist/consumer/index.js',
      'dist/consumer/index.d.ts',
      'dist/cli/usage.js',
      'dist/cli/main.js',
      'dist/prover/worker.js',
      'dist/db/migrations/meta/_journal.json',
      'dist/db/migrations/0000_init.sql',
      'scripts/patch-postgres.mjs',
      'keys/verification_key.json',
      'keys/bn128-poseidon8-v2/verification_key.json',
      'keys/bn128-poseidon8-v2/billing.zkey',
      'keys/bn128-poseidon8-v2/billing.wasm',
      'docs/protocol.md',
    ]) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => /^(src|test|circuits)\//.test(f) || f.endsWith('.ptau') || f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('dist/src/') || f.startsWith('dist/keys/'))).toEqual([]);
  }, 600_000);

  it('installs into an empty directory; plain Node imports meterproof/verifier, verifies a real proof, refuses a tampered one, and exits by itself', async () => {
    expect(tarball, 'the pack step ran').toBeDefined();
    const install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], consumer, 600_000);
    ok(install, 'npm install');
    // tsx is a development dependency: what runs below is the build
    expect(fs.existsSync(path.join(consumer, 'node_modules', 'tsx'))).toBe(false);

    const v = await run(process.execPath, ['verify.mjs'], consumer, EXIT_WITHIN_MS);
    ok(v, 'node verify.mjs'); // killed (signal SIGTERM) if it had not exited by itself
    const lines = v.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { file: 'bundle.json', valid: true, proof: 'pass', code: null },
      { file: 'tampered.json', valid: false, proof: 'fail', code: 'PROOF_INVALID' },
      { root: true, client: 'function', consumer: 'function', pins: ['bn128-poseidon8-v1', 'bn128-poseidon8-v2'] },
    ]);

    const cli = await run(process.execPath, [path.join('node_modules', 'meterproof', 'bin', 'meterproof.js'), 'verify', 'bundle.json', '--trust', 'trust.json', '--profile', 'standard'], consumer, EXIT_WITHIN_MS);
    ok(cli, 'meterproof verify');
    expect(cli.stdout).toMatch(/VALID \(standard\)/);
    expect(cli.stderr).not.toMatch(/running the sources/);
    const bad = await run(process.execPath, [path.join('node_modules', 'meterproof', 'bin', 'meterproof.js'), 'verify', 'tampered.json', '--trust', 'trust.json', '--profile', 'standard'], consumer, EXIT_WITHIN_MS);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/PROOF_INVALID/);
  }, 900_000);

  it('its type declarations compile against a strict TypeScript user, library checks included', async () => {
    expect(fs.existsSync(path.join(consumer, 'node_modules', 'meterproof', 'dist', 'index.d.ts')), 'the install step ran').toBe(true);
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = ['--noEmit', '--strict', '--skipLibCheck', 'false', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', 'check.ts'];
    const r = await run(process.execPath, [tsc, ...args], consumer, 300_000);
    ok(r, 'tsc');
  }, 300_000);
});
