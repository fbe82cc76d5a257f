// `npm run bench:verify [-- --rounds N]`: what the verifier's key pin and point checks add to the
// verification of one bn128-poseidon8-v1 proof. One proof is made, then in each round, interleaved:
//  - before: snarkjs.groth16.verify alone (the verifier's path before the checks, whose shape
//    check costs microseconds);
//  - after: zkVerifier.verifyProof with the key in the trust material (digest of that key, pinned
//    key, canonical affine points on the curve, [r]B = O, then the pairing product on the
//    verifier's single-threaded wasm curve, where snarkjs spreads it over its worker threads);
//  - the added parts alone: the key digest, the point checks, the G2 subgroup check.
// Wall-clock and CPU time (process.cpuUsage: all threads, snarkjs's workers included) per step.
// Results go to stdout; docs/benchmarks.md ("Verifying") records a run.
import os from 'node:os';
import * as snarkjs from 'snarkjs';
import { digestOf } from '../src/core/canonical.ts';
import { BINDING_VERSION, type BillingProofV1 } from '../src/core/schemas.ts';
import { createProver, terminateCurve } from '../src/prover/index.ts';
import { g1, g2OnCurve, inG2Subgroup } from '../src/verifier/bn254.ts';
import { PINNED_VKEYS } from '../src/verifier/vkeys.ts';
import { zkVerifier } from '../src/verifier/zk.ts';
import { provedPilotBundle } from '../test/support/fixtures.ts';

const i = process.argv.indexOf('--rounds');
const ROUNDS = i >= 0 ? Number(process.argv[i + 1]) : 200;
if (!Number.isSafeInteger(ROUNDS) || ROUNDS < 1) throw new Error('--rounds must be a positive integer');
const silent: snarkjs.Logger = { debug() {}, info() {}, warn() {}, error() {} };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;

async function main(): Promise<void> {
  const cpus = os.cpus();
  console.log('meterproof verification benchmark (bn128-poseidon8-v1): key pin and point checks');
  console.log(`machine: ${cpus[0]?.model ?? 'unknown cpu'}, ${os.availableParallelism()} cores, ${os.platform()} ${os.arch()}, node ${process.version}`);
  console.log(`load average at start: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; rounds: ${ROUNDS}`);

  const prover = await createProver({ workers: 0 });
  const bp = (await provedPilotBundle(prover)).attestation.billing_proof as BillingProofV1;
  await prover.close();
  const proof = bp.proof;
  const signals = [bp.statement.binding_commitment, bp.statement.charge_micros, bp.statement.tariff_commitment];
  const trustKey = structuredClone(PINNED_VKEYS[BINDING_VERSION]!.key) as Record<string, unknown>;

  const runs: Record<string, () => Promise<unknown>> = {
    before: async () => {
      if ((await snarkjs.groth16.verify(trustKey, signals, proof, silent)) !== true) throw new Error('proof does not verify');
    },
    after: () => zkVerifier.verifyProof(BINDING_VERSION, trustKey, signals, proof),
    'key digest': async () => digestOf(trustKey),
    'A, C, B on curve': async () => [g1(proof.pi_a, 'a'), g1(proof.pi_c, 'c'), g2OnCurve(proof.pi_b, 'b')],
    'B in the order-r subgroup': async () => {
      if (!(await inG2Subgroup(g2OnCurve(proof.pi_b, 'b')))) throw new Error('B not in the subgroup');
    },
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
  const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
  for (const run of Object.values(runs)) await run(); // warm-up: curve threads, pinned-key check
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, run] of Object.entries(runs)) {
      const t = performance.now();
      const c = process.cpuUsage();
      await run();
      times[name]!.push(performance.now() - t);
      const d = process.cpuUsage(c);
      cpu[name]!.push((d.user + d.system) / 1000);
    }
  }
  await terminateCurve();

  console.log('');
  console.log('| step | median ms | p90 ms | median CPU ms |');
  console.log('|---|---:|---:|---:|');
  for (const [name, xs] of Object.entries(times)) console.log(`| ${name} | ${median(xs).toFixed(3)} | ${p90(xs).toFixed(3)} | ${median(cpu[name]!).toFixed(3)} |`);
  const added = median(times.after!) - median(times.before!);
  console.log('');
  console.log(`added per verification (median after − median before): ${added.toFixed(3)} ms`);
  console.log(`load average at end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
