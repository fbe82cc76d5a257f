// Groth16 verification of billing proofs and the commitment recomputation, wired into the core
// verify algorithm: the proof is checked under the verifier's pinned key of its binding version
// (vkeys.ts), its points as bn254.ts accepts them. Loads no proving key and starts no prover.
import { bindingCommitments } from '../core/commitment.ts';
import { tariffCommitmentV2 } from '../core/binding-v2.ts';
import { VerificationError, type ZkVerifier } from '../core/verify.ts';
import { checkProof } from './groth16.ts';
import { verificationKeyFor } from './vkeys.ts';

export const zkVerifier: ZkVerifier = {
  async verifyProof(binding, trustKey, publicSignals, proof) {
    const failure = await checkProof(await verificationKeyFor(binding, trustKey), publicSignals, proof);
    if (failure) throw new VerificationError(failure.code, failure.reason);
  },
  bindingCommitments,
  tariffCommitmentV2,
};
