// `npm run bench:reconcile [-- --lines N]`: reconciliation of N invoice lines (default 1,000,000)
// against N attested charges, as `meterproof reconcile --pack … --out …` runs it once the pack is
// verified: the CSV file read line by line (node:readline), each line parsed (exact decimal
// amounts), looked up in the in-memory lookup a pack builds, the unbilled found, and every
// discrepancy written to a file. The file and the lookup are made first, untimed. Mix: 1% amount
// mismatches, 1% lines without attestation, N/100 more attested charges that no line bills.
// Target (issue 18): 1,000,000 lines in ≤ 60 s wall.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { MemoryLookup, reconcile } from '../src/core/reconcile.ts';
import { machineLine, signingLine } from './machine.ts';

const i = process.argv.indexOf('--lines');
const N = i >= 0 ? Number(process.argv[i + 1]) : 1_000_000;
if (!Number.isSafeInteger(N) || N < 100 || N % 100) throw new Error('--lines must be a multiple of 100');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-bench-reconcile-'));
const invoice = path.join(dir, 'invoice.csv');
const items = path.join(dir, 'discrepancies.ndjson');

const charge = (k: number) => BigInt(50_000 + ((k * 7919) % 5_000_000));
const decimal = (m: bigint) => `${m / 1_000_000n}.${(m % 1_000_000n).toString().padStart(6, '0')}`;

async function main(): Promise<void> {
  console.log(machineLine());
  console.log(signingLine());
  // the attested charges (what a verified pack's bundles give the lookup)
  const lookup = new MemoryLookup();
  const attested = N + N / 100; // the last 1% nobody bills
  for (let k = 0; k < attested; k++) lookup.add({ attestation_id: k.toString(16).padStart(64, '0'), event_id: `evt-${k}`, charge_micros: charge(k), currency: 'USD' });
  // the invoice: N lines; every 100th one micro over, every 100th (offset 2) an event nobody
  // attested; half by event id, half by attestation id
  const w = fs.createWriteStream(invoice);
  w.write('event_id,attestation_id,amount,currency\n');
  let lines = 0;
  for (let k = 0; k < N; k++) {
    const m = charge(k) + (k % 100 === 1 ? 1n : 0n);
    const ref = k % 100 === 2 ? `nobody-${k},` : k % 2 ? `evt-${k},` : `,${k.toString(16).padStart(64, '0')}`;
    if (!w.write(`${ref},${decimal(m)},USD\n`)) await new Promise<void>((r) => w.once('drain', () => r()));
    lines++;
  }
  await new Promise<void>((r) => w.end(r));
  console.log(`invoice: ${lines.toLocaleString('en-US')} lines, ${(fs.statSync(invoice).size / 2 ** 20).toFixed(1)} MiB CSV; ${attested.toLocaleString('en-US')} attested charges`);

  const out = fs.createWriteStream(items);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const rl = readline.createInterface({ input: fs.createReadStream(invoice), crlfDelay: Infinity });
  const report = await reconcile(rl, { lookup, maxListed: 0, onItem: (x) => void out.write(`${JSON.stringify(x)}\n`) });
  await new Promise<void>((r) => out.end(r));
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const c = report.categories;
  console.log(`categories: matched ${c.matched.count}, amount_mismatch ${c.amount_mismatch.count}, billed_without_attestation ${c.billed_without_attestation.count}, attested_unbilled ${c.attested_unbilled.count}; match rate ${report.match_rate_bps} bps`);
  console.log(`reconcile ${report.lines.toLocaleString('en-US')} lines: ${wall.toFixed(1)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU, ${Math.round(report.lines / wall).toLocaleString('en-US')} lines/s; heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`);
  console.log(`target: ${N.toLocaleString('en-US')} lines in ≤ 60 s — ${wall <= 60 ? 'met' : 'MISSED'}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
