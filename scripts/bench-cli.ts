// `npm run bench:cli [-- --runs N]`: how long the `meterproof` command takes, end to end, as a user
// runs it: `meterproof --help`, and `meterproof verify <full bundle> --trust <trust.json>` offline
// (a bundle with its Groth16 proof and log receipt, issued first by the service in-process). Each
// is run N times as a new process; the median, min and max of wall time and of the process's CPU
// time (user + system, all its threads, from /proc/self/stat's cutime/cstime) are printed, with
// `node -e 0` as the floor. Targets: help ≤ 300 ms, verify ≤ 1.5 s. docs/benchmarks.md ("CLI")
// records a run.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeProvedFiles } from '../test/support/proved-files.ts';
import { machineLine, signingLine } from './machine.ts';

const i = process.argv.indexOf('--runs');
const RUNS = i >= 0 ? Number(process.argv[i + 1]) : 10;
if (!Number.isSafeInteger(RUNS) || RUNS < 1) throw new Error('--runs must be a positive integer');
const BIN = path.resolve('bin/meterproof.js');
const TICK_MS = 1000 / 100; // USER_HZ

/** CPU time (ms) of this process's waited-for children so far (Linux; NaN elsewhere). */
function childrenCpuMs(): number {
  try {
    const s = fs.readFileSync('/proc/self/stat', 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) * TICK_MS; // cutime, cstime
  } catch {
    return NaN;
  }
}

interface Sample {
  wall: number;
  cpu: number;
}

function measure(args: string[], cwd: string, expectStatus: number, expectOut: RegExp): Sample {
  const cpu0 = childrenCpuMs();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8' });
  const wall = performance.now() - t0;
  const cpu = childrenCpuMs() - cpu0;
  if (r.status !== expectStatus || !expectOut.test(r.stdout)) throw new Error(`${args.join(' ')}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return { wall, cpu };
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => {
  const s = sorted(xs);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

async function main(): Promise<void> {
  console.log('meterproof CLI benchmark: new processes, end to end');
  console.log(machineLine());
  console.log(signingLine());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-bench-cli-'));
  try {
    process.stdout.write('issuing a full bundle (proof and log receipt) in-process… ');
    await writeProvedFiles(dir);
    console.log('done');
    console.log(`load average at start: ${load()}; runs: ${RUNS} each, interleaved`);
    const cases: Record<string, { args: string[]; status: number; out: RegExp; target?: number }> = {
      'node -e 0 (floor)': { args: ['-e', '0'], status: 0, out: /^$/ },
      'meterproof --help': { args: [BIN, '--help'], status: 0, out: /^meterproof — /, target: 300 },
      'meterproof verify --help': { args: [BIN, 'verify', '--help'], status: 0, out: /^usage: meterproof verify/, target: 300 },
      'meterproof verify <full bundle> --trust <trust.json>': { args: [BIN, 'verify', 'bundle.json', '--trust', 'trust.json'], status: 0, out: /^VALID \(strict\)$/m, target: 1500 },
    };
    const samples: Record<string, Sample[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
    for (const c of Object.values(cases)) measure(c.args, dir, c.status, c.out); // warm-up: file cache, tsx's transform cache
    for (let r = 0; r < RUNS; r++) {
      for (const [name, c] of Object.entries(cases)) samples[name]!.push(measure(c.args, dir, c.status, c.out));
    }
    console.log('');
    console.log('| command | wall median (min – max) ms | CPU median (min – max) ms | target | met |');
    console.log('|---|---:|---:|---:|---|');
    for (const [name, c] of Object.entries(cases)) {
      const w = samples[name]!.map((s) => s.wall);
      const u = samples[name]!.map((s) => s.cpu);
      const range = (xs: number[]) => `${median(xs).toFixed(0)} (${sorted(xs)[0]!.toFixed(0)} – ${sorted(xs).at(-1)!.toFixed(0)})`;
      const met = c.target === undefined ? '' : median(w) <= c.target ? 'yes' : 'no';
      console.log(`| \`${name}\` | ${range(w)} | ${range(u)} | ${c.target === undefined ? '' : `≤ ${c.target}`} | ${met} |`);
    }
    console.log('');
    console.log(`load average at end: ${load()}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0), // the in-process service's store may keep handles open
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
