// `npm run bench:verify [-- --bundles 48 --batch 256 --rounds 2 --threads N]`: verification of
// whole bundles as the service issues them (bn128-poseidon8-v2, proved, with a receipt): every
// check (schema, signature, digests, charge, chain, commitments, Groth16, inclusion, checkpoint).
//  - single: verify() one bundle at a time (POST /v1/verify, `meterproof verify` with one file);
//  - bulk, one thread: verifyBatch (every check per bundle, one batched pairing check);
//  - bulk, pool: createVerifyPool (POST /v1/verify/batch), chunks on `--threads` workers (default:
//    the available cores), started and warmed before the clock starts.
// CPU is process.cpuUsage (all threads of the process), per bundle: the figure that travels
// between machines when the machine is shared. Then the parts of one proof's check, interleaved:
// snarkjs.groth16.verify (what the verifier used before), checkProof (point checks and the
// pairing equation on the verifier's own curve), the G2 subgroup check, the pairing alone.
// Bundles are made first by a test service (PGlite, or DATABASE_URL) and the production prover.
// Results go to stdout; docs/benchmarks.md ("Verifying") records a run.
import os from 'node:os';
import * as snarkjs from 'snarkjs';
import { publicSignalsV2 } from '../src/core/binding-v2.ts';
import { verifyBundle } from '../src/core/verify.ts';
import type { FullBundle, StatementV2 } from '../src/core/schemas.ts';
import { terminateCurve } from '../src/prover/index.ts';
import { g1, g2, g2OnCurve, inG2Subgroup } from '../src/verifier/bn254.ts';
import { checkProof, type CheckedKey } from '../src/verifier/groth16.ts';
import { createVerifyPool, verify, verifyBatch } from '../src/verifier/index.ts';
import { logVerifier } from '../src/verifier/log.ts';
import { pairingCheck } from '../src/verifier/pairing.ts';
import { verificationKeyFor } from '../src/verifier/vkeys.ts';
import { createZkVerifier } from '../src/verifier/zk.ts';
import { provedBundles } from '../test/support/proved-bundles.ts';
import { testService } from '../test/support/service.ts';
import { machineLine, signingLine } from './machine.ts';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${name} must be a non-negative integer`);
  return v;
}
const BUNDLES = arg('bundles', 48);
const BATCH = arg('batch', 256);
const ROUNDS = arg('rounds', 2);
const THREADS = arg('threads', os.availableParallelism());

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;
const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');

/** Runs `f` over `n` bundles: wall and process CPU per bundle, bundles/s. */
async function measure(n: number, f: () => Promise<void>) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const wall = performance.now() - t0;
  const cpu = cpuMs(process.cpuUsage(c0));
  return { perSecond: (n / wall) * 1000, cpuPerBundle: cpu / n, wallPerBundle: wall / n };
}

async function main(): Promise<void> {
  console.log('meterproof verification benchmark: whole bundles (bn128-poseidon8-v2, proved, with receipts)');
  console.log(`${machineLine()}, ${os.platform()} ${os.arch()}`);
  console.log(signingLine());
  console.log(`load average at start: ${load()}; bundles: ${BUNDLES}, batch: ${BATCH}, rounds: ${ROUNDS}, pool threads: ${THREADS}`);

  const s = await testService();
  let t = performance.now();
  const { bundles, trust } = await provedBundles(s, BUNDLES, { tag: 'bench' });
  console.log(`made ${bundles.length} proved bundles with receipts in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  await s.close();
  const batch: FullBundle[] = Array.from({ length: BATCH }, (_, i) => bundles[i % bundles.length]!);
  const items = batch.map((bundle) => ({ bundle }));
  const expectValid = (reports: { valid: boolean }[]) => {
    if (!reports.every((r) => r.valid)) throw new Error('a bundle of the benchmark does not verify');
  };

  // warm-up: the curve, Poseidon and the pinned keys on this thread; the pool's workers
  expectValid(await verifyBatch(items.slice(0, 8), trust));
  for (const b of bundles.slice(0, 4)) expectValid([await verify(b, trust)]);
  const pool = createVerifyPool({ threads: THREADS });
  t = performance.now();
  const c0 = process.cpuUsage();
  expectValid(await pool.verifyMany(items.slice(0, Math.max(1, THREADS)), trust));
  console.log(`pool start (${THREADS} workers, warmed): ${(performance.now() - t).toFixed(0)} ms wall, ${cpuMs(process.cpuUsage(c0)).toFixed(0)} ms CPU`);

  // single: one at a time, latency of each
  const latencies: number[] = [];
  const single = await measure(ROUNDS * bundles.length, async () => {
    for (let r = 0; r < ROUNDS; r++) {
      for (const b of bundles) {
        const t1 = performance.now();
        expectValid([await verify(b, trust)]);
        latencies.push(performance.now() - t1);
      }
    }
  });
  const oneThread = await measure(ROUNDS * BATCH, async () => {
    for (let r = 0; r < ROUNDS; r++) expectValid(await verifyBatch(items, trust));
  });
  const pooled = await measure(ROUNDS * BATCH, async () => {
    for (let r = 0; r < ROUNDS; r++) expectValid(await pool.verifyMany(items, trust));
  });
  await pool.close();
  // everything but the pairing equation (the same checks, the equation taken as holding)
  const noPairing = createZkVerifier(async () => true);
  const rest = await measure(ROUNDS * BATCH, async () => {
    for (let r = 0; r < ROUNDS; r++) for (const b of batch) expectValid([await verifyBundle(b, trust, { zk: noPairing, log: logVerifier })]);
  });

  console.log('');
  console.log('| path | bundles/s (wall) | CPU ms per bundle | bundles/s per core from CPU |');
  console.log('|---|---:|---:|---:|');
  const row = (name: string, m: Awaited<ReturnType<typeof measure>>) =>
    console.log(`| ${name} | ${m.perSecond.toFixed(0)} | ${m.cpuPerBundle.toFixed(2)} | ${(1000 / m.cpuPerBundle).toFixed(0)} |`);
  row('single: verify() one at a time', single);
  row(`bulk, one thread: verifyBatch of ${BATCH}`, oneThread);
  row(`bulk, pool of ${THREADS}: verifyMany of ${BATCH}`, pooled);
  row('every check but the pairing equation (one at a time)', rest);
  console.log('');
  console.log(`single-bundle latency: median ${median(latencies).toFixed(1)} ms, p90 ${p90(latencies).toFixed(1)} ms`);
  console.log(`bulk on 2 cores from CPU: ${((2 * 1000) / pooled.cpuPerBundle).toFixed(0)} bundles/s`);

  // the parts of one proof's check, interleaved
  const b0 = bundles[0]!;
  const st = b0.attestation.statement as StatementV2;
  const published = trust.tariffs!.find((x) => x.binding === 'bn128-poseidon8-v2' && x.tariff_id === st.tariff_id && x.tariff_version === st.tariff_version)!;
  const signals = publicSignalsV2(st, BigInt(published.tariff_commitment)).map(String);
  const proof = b0.attestation.billing_proof!.proof;
  const key: CheckedKey = await verificationKeyFor('bn128-poseidon8-v2', undefined);
  const silent: snarkjs.Logger = { debug() {}, info() {}, warn() {}, error() {} };
  const item = {
    key: { alpha: g1(key['vk_alpha_1'], 'α'), beta: await g2(key['vk_beta_2'], 'β'), gamma: await g2(key['vk_gamma_2'], 'γ'), delta: await g2(key['vk_delta_2'], 'δ'), ic: (key['IC'] as unknown[]).map((p) => g1(p, 'IC')) },
    signals: signals.map(BigInt),
    a: g1(proof.pi_a, 'a'),
    b: await g2(proof.pi_b, 'b'),
    c: g1(proof.pi_c, 'c'),
  };
  const parts: Record<string, () => Promise<unknown>> = {
    'snarkjs.groth16.verify (the former path)': async () => {
      if ((await snarkjs.groth16.verify(key, signals, proof, silent)) !== true) throw new Error('proof does not verify');
    },
    'checkProof: signals, points, subgroup, pairing equation': async () => {
      if (await checkProof(key, signals, proof)) throw new Error('proof does not verify');
    },
    'B in the order-r subgroup': async () => {
      if (!(await inG2Subgroup(g2OnCurve(proof.pi_b, 'b')))) throw new Error('B not in the subgroup');
    },
    'pairing equation of one proof': async () => {
      if (!(await pairingCheck([item]))) throw new Error('pairing fails');
    },
    'pairing equations of 64 proofs, batched (per proof)': async () => {
      if (!(await pairingCheck(Array.from({ length: 64 }, () => item)))) throw new Error('pairing fails');
    },
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(parts).map((k) => [k, []]));
  const cpu: Record<string, number> = Object.fromEntries(Object.keys(parts).map((k) => [k, 0]));
  for (const run of Object.values(parts)) await run();
  const partRounds = 20;
  for (let r = 0; r < partRounds; r++) {
    for (const [name, run] of Object.entries(parts)) {
      const c1 = process.cpuUsage();
      const t1 = performance.now();
      await run();
      times[name]!.push(performance.now() - t1);
      cpu[name]! += cpuMs(process.cpuUsage(c1));
    }
  }
  await terminateCurve();
  console.log('');
  console.log('| part of one proof check | median ms (wall) | CPU ms |');
  console.log('|---|---:|---:|');
  for (const name of Object.keys(parts)) {
    const per = name.includes('64 proofs') ? 64 : 1;
    console.log(`| ${name} | ${(median(times[name]!) / per).toFixed(2)} | ${(cpu[name]! / partRounds / per).toFixed(2)} |`);
  }
  console.log('');
  console.log(`load average at end: ${load()}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
