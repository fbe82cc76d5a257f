// Groth16 verification of billing proofs and the commitment recomputation, wired into the core
// verify algorithm: the proof is checked under the verifier's pinned key of its binding version
// (vkeys.ts), its points as bn254.ts accepts them. Loads no proving key and starts no prover.
import { bindingCommitments } from '../core/commitment.ts';
import { tariffCommitmentV2 } from '../core/binding-v2.ts';
import { poseidonBigint } from '../core/poseidon.ts';
import { VerificationError, type ZkVerifier } from '../core/verify.ts';
import { checkProof, terminateCurve } from './groth16.ts';
import { verificationKeyFor } from './vkeys.ts';

const poseidon = async (inputs: readonly bigint[]) => poseidonBigint(inputs);

export const zkVerifier: ZkVerifier = {
  async verifyProof(binding, trustKey, publicSignals, proof) {
    const failure = await checkProof(await verificationKeyFor(binding, trustKey), publicSignals, proof);
    if (failure) throw new VerificationError(failure.code, failure.reason);
  },
  // Poseidon in bigint arithmetic: one to three hashes per bundle cost less than building the
  // wasm one (poseidon.ts)
  bindingCommitments: (args) => bindingCommitments(args, poseidon),
  tariffCommitmentV2: (tariff, salt) => tariffCommitmentV2(tariff, salt, poseidon),
};

/** Release snarkjs's curve threads so a CLI process can exit. */
export const releaseZk = terminateCurve;
