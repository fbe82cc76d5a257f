// `npm run bench:prove [-- --proofs N] [--binding bn128-poseidon8-v1|bn128-poseidon8-v2]`: Groth16
// proving throughput of a binding version (default v2, the one the service issues:
// keys/bn128-poseidon8-v2/; v1: keys/), side by
// side in one run:
//  - naive: a sequential loop of snarkjs.groth16.fullProve reading keys/billing.wasm and
//    keys/billing.zkey from disk on every call;
//  - production: createProver() (keys read once, one witness calculator per worker, the default
//    worker pool), N proofs submitted at once;
// plus single-proof latency of the production prover and verification time per proof.
// Results go to stdout; docs/benchmarks.md ("Proving") records a run.
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import * as snarkjs from 'snarkjs';
import { attestEvent, normalizeMeterEvent, normalizeTariff } from '../src/core/attest.ts';
import { computeCharge, pricingFromTariff } from '../src/core/charge.ts';
import { circuitInputs, randomBlinding } from '../src/core/commitment.ts';
import { circuitInputsV2, randomSalt } from '../src/core/binding-v2.ts';
import { generateSigningKey } from '../src/core/keys.ts';
import { isV2 } from '../src/core/schemas.ts';
import { createProver, terminateCurve, verifyGroth16, type ProofResult } from '../src/prover/index.ts';
import { BINDINGS } from './ceremony.ts';
import { machineLine, signingLine } from './machine.ts';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
  return v;
};

const N = arg('proofs', 12);
const bindingArg = process.argv.indexOf('--binding');
const binding = bindingArg >= 0 ? process.argv[bindingArg + 1]! : 'bn128-poseidon8-v2';
const BENCH_KEY = generateSigningKey();
if (!BINDINGS[binding]) throw new Error(`--binding must be one of ${Object.keys(BINDINGS).join(', ')}`);
const keysDir = BINDINGS[binding].keysDir;
const wasmPath = path.join(keysDir, 'billing.wasm');
const zkeyPath = path.join(keysDir, 'billing.zkey');
const ms = (t: number) => `${t.toFixed(0)} ms`;

async function sampleInput(i: number): Promise<Record<string, string | string[]>> {
  const event = normalizeMeterEvent({
    event_id: `bench_${i}`,
    event_timestamp: '2026-05-29T12:00:00.000Z',
    tenant_id: 'tenant_acme',
    api_key_id: 'api_live_001',
    endpoint: '/v1/completions',
    usage_units: 1842 + i,
    contract_version: 'contract-v1',
    billing_window_id: '2026-05',
  });
  const tariff = normalizeTariff({
    tariff_id: 'tariff_vex',
    tariff_version: '2026.1',
    tariff_class: 'usage_graduated',
    currency: 'USD',
    tiers: [
      { up_to: 50000, unit_price_micros: 5000 },
      { up_to: null, unit_price_micros: 8000 },
    ],
    unit_quantum: 1000,
    rounding_mode: 'half_even',
  });
  const cumulativeBefore = 49_000n;
  const units = BigInt(event.usage_units);
  const { charge } = computeCharge({ units, outcome: event.outcome, cumulativeBefore }, pricingFromTariff(tariff));
  if (binding === 'bn128-poseidon8-v1') return circuitInputs({ event, tariff, cumulativeBefore, blinding: randomBlinding(), charge });
  const tariffSalt = randomSalt();
  const { statement } = attestEvent({
    event,
    tariff,
    key: BENCH_KEY,
    chain: { seq: BigInt(i + 1), prev: `sha256:${'0'.repeat(64)}`, cumulativeBefore },
    issuedAt: '2026-05-29T12:00:01.000Z',
    eventSalt: randomSalt(),
    tariffSalt,
  });
  if (!isV2(statement)) throw new Error('attestEvent gives a bn128-poseidon8-v2 statement');
  return circuitInputsV2({ statement, tariff, tariffSalt });
}

async function main(): Promise<void> {
  console.log(`meterproof proving benchmark (${binding}, Groth16, snarkjs)`);
  console.log(`${machineLine()}, ${os.platform()} ${os.arch()}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`${signingLine()}; proofs per measurement: ${N}`);
  const vkey = JSON.parse(fs.readFileSync(path.join(keysDir, 'verification_key.json'), 'utf8')) as Record<string, unknown>;
  const inputs = await Promise.all(Array.from({ length: N }, (_, i) => sampleInput(i)));
  const warm = await sampleInput(N);

  // naive: everything from disk, every time (one warm-up call first, like the pool's warm-up)
  await snarkjs.groth16.fullProve(warm, wasmPath, zkeyPath);
  let t = performance.now();
  const naive: ProofResult[] = [];
  for (const input of inputs) naive.push(await snarkjs.groth16.fullProve(input, wasmPath, zkeyPath));
  const naiveMs = performance.now() - t;
  await terminateCurve();

  // production: pool started (and each worker warmed up) before the clock starts
  t = performance.now();
  const prover = await createProver({ keysDir });
  const startMs = performance.now() - t;
  await Promise.all(Array.from({ length: prover.workers }, () => prover.prove(warm)));
  t = performance.now();
  const pooled = await Promise.all(inputs.map((input) => prover.prove(input)));
  const poolMs = performance.now() - t;
  const latencies: number[] = [];
  for (const input of inputs.slice(0, Math.min(5, N))) {
    const t0 = performance.now();
    await prover.prove(input);
    latencies.push(performance.now() - t0);
  }
  await prover.close();

  // verification (after one warm-up call, which starts snarkjs's curve)
  await verifyGroth16(vkey, pooled[0]!.publicSignals, pooled[0]!.proof);
  t = performance.now();
  let valid = 0;
  for (const r of [...pooled, ...naive]) if (await verifyGroth16(vkey, r.publicSignals, r.proof)) valid++;
  const verifyMs = (performance.now() - t) / (pooled.length + naive.length);
  await terminateCurve();
  if (valid !== pooled.length + naive.length) throw new Error(`${pooled.length + naive.length - valid} proofs did not verify`);

  latencies.sort((a, b) => a - b);
  const naiveRate = (N * 1000) / naiveMs;
  const poolRate = (N * 1000) / poolMs;
  console.log('');
  console.log('| prover | proofs/s | ms/proof |');
  console.log('|---|---:|---:|');
  console.log(`| naive fullProve loop (wasm + zkey read from disk per proof) | ${naiveRate.toFixed(2)} | ${ms(naiveMs / N)} |`);
  console.log(`| createProver(), ${prover.workers} worker(s), ${N} concurrent proofs | ${poolRate.toFixed(2)} | ${ms(poolMs / N)} |`);
  console.log('');
  console.log(`speed-up: ${(poolRate / naiveRate).toFixed(2)}x`);
  console.log(`production single-proof latency (one at a time): median ${ms(latencies[Math.floor(latencies.length / 2)]!)}, min ${ms(latencies[0]!)}`);
  console.log(`prover start-up (keys read, workers started): ${ms(startMs)}`);
  console.log(`verify: ${verifyMs.toFixed(1)} ms/proof (${valid} proofs, all valid)`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
