// Proof jobs → billing proofs: the circuit witness from the stored bundle, a Groth16 proof from
// the worker pool, and the proof statement signed with the current key (DESIGN §5).
import { bindingCommitments, circuitInputs } from '../core/commitment.ts';
import { signObject } from '../core/keys.ts';
import { BINDING_VERSION, PROOF_STATEMENT_TYPE, type BillingProof, type FullBundle, type ProofStatement, Groth16Proof } from '../core/schemas.ts';
import { createProver } from '../prover/index.ts';
import type { KeyRing } from './keyring.ts';
import type { ProveFn } from './proofs.ts';

export async function createProveFn(keys: KeyRing, opts: { workers?: number; keysDir?: string } = {}): Promise<{ prove: ProveFn; close(): Promise<void> }> {
  const prover = await createProver({ workers: opts.workers ?? 1, ...(opts.keysDir ? { keysDir: opts.keysDir } : {}) });
  const prove: ProveFn = async ({ bundle, blinding, statementDigest }) => proveBundle(prover, keys, bundle, blinding, statementDigest);
  return { prove, close: () => prover.close() };
}

type Prover = Awaited<ReturnType<typeof createProver>>;

export async function proveBundle(prover: Prover, keys: KeyRing, bundle: FullBundle, blinding: bigint, statementDigest: string): Promise<BillingProof> {
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
