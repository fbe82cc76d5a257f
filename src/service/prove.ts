// Proof jobs → billing proofs: the circuit witness from the stored bundle and a Groth16 proof from
// the worker pool. bn128-poseidon8-v2 (what the service issues) needs nothing more; a v1 bundle
// (attested before v2, still pending) gets its proof statement signed with the current key.
import { bindingCommitments, circuitInputs } from '../core/commitment.ts';
import { circuitInputsV2, publicSignalsV2 } from '../core/binding-v2.ts';
import { signObject } from '../core/keys.ts';
import {
  BINDING_VERSION,
  BINDING_VERSION_V2,
  PROOF_STATEMENT_TYPE,
  type BillingProofV1,
  type BillingProofV2,
  type FullBundle,
  type ProofStatement,
  Groth16Proof,
  isV2,
} from '../core/schemas.ts';
import { KEYS_DIR, V2_KEYS_DIR } from './zk.ts';
import { createProver } from '../prover/index.ts';
import type { KeyRing } from './keyring.ts';
import type { ProveFn } from './proofs.ts';

export async function createProveFn(
  keys: KeyRing,
  opts: { workers?: number; keysDir?: string; v2KeysDir?: string } = {},
): Promise<{ prove: ProveFn; close(): Promise<void> }> {
  const workers = opts.workers ?? 1;
  const prover = await createProver({ workers, keysDir: opts.v2KeysDir ?? V2_KEYS_DIR });
  // v1 jobs are only those left from before v2: their prover starts on the first one
  let v1: Promise<Prover> | undefined;
  const prove: ProveFn = async ({ bundle, blinding, statementDigest }) => {
    if (isV2(bundle.attestation.statement)) return proveBundleV2(prover, bundle);
    v1 ??= createProver({ workers: Math.min(workers, 1), keysDir: opts.keysDir ?? KEYS_DIR });
    return proveBundle(await v1, keys, bundle, blinding, statementDigest);
  };
  return { prove, close: async () => void (await Promise.all([prover.close(), v1?.then((p) => p.close())])) };
}

type Prover = Awaited<ReturnType<typeof createProver>>;

/** The proof of a v2 bundle: the witness from the statement, the tariff and its salt. */
export async function proveBundleV2(prover: Prover, bundle: FullBundle): Promise<BillingProofV2> {
  const st = bundle.attestation.statement;
  if (!isV2(st) || !bundle.salts) throw new Error('not a bn128-poseidon8-v2 bundle');
  const input = await circuitInputsV2({ statement: st, tariff: bundle.tariff_snapshot, tariffSalt: BigInt(bundle.salts.tariff) });
  const { proof, publicSignals } = await prover.prove(input);
  // The proof's public signals must be exactly the ones a verifier derives from the statement.
  const expected = publicSignalsV2(st, BigInt(input['tariff_commitment'] as string)).map(String);
  if (publicSignals.length !== expected.length || publicSignals.some((s, i) => s !== expected[i])) {
    throw new Error(`prover returned public signals ${publicSignals.join(',')} instead of ${expected.join(',')}`);
  }
  return { binding: BINDING_VERSION_V2, proof: Groth16Proof.parse({ pi_a: proof.pi_a, pi_b: proof.pi_b, pi_c: proof.pi_c, protocol: 'groth16', curve: 'bn128' }) };
}

export async function proveBundle(prover: Prover, keys: KeyRing, bundle: FullBundle, blinding: bigint, statementDigest: string): Promise<BillingProofV1> {
  const st = bundle.attestation.statement;
  const args = {
    event: bundle.meter_event,
    tariff: bundle.tariff_snapshot,
    cumulativeBefore: BigInt(st.chain.cumulative_units_before),
    blinding,
    charge: BigInt(st.charge_micros),
  };
  const [commitments, input] = await Promise.all([bindingCommitments(args), circuitInputs(args)]);
  const { proof, publicSignals } = await prover.prove(input);
  // The proof's public signals must be exactly the ones we sign: binding, charge, tariff commitment.
  const expected = [commitments.bindingCommitment.toString(), st.charge_micros, commitments.tariffCommitment.toString()];
  if (publicSignals.length !== 3 || publicSignals.some((s, i) => s !== expected[i])) {
    throw new Error(`prover returned public signals ${publicSignals.join(',')} instead of ${expected.join(',')}`);
  }
  const { key, issuedAt } = await keys.signer();
  const statement: ProofStatement = {
    type: PROOF_STATEMENT_TYPE,
    binding: BINDING_VERSION,
    statement_digest: statementDigest,
    binding_commitment: expected[0]!,
    charge_micros: st.charge_micros,
    tariff_commitment: expected[2]!,
    issued_at: issuedAt.toISOString(),
    key_id: key.keyId,
  };
  return {
    statement,
    key_id: key.keyId,
    signature: signObject(key, statement),
    proof: Groth16Proof.parse({ pi_a: proof.pi_a, pi_b: proof.pi_b, pi_c: proof.pi_c, protocol: 'groth16', curve: 'bn128' }),
    blinding: blinding.toString(),
  };
}
