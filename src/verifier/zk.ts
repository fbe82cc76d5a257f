// Groth16 verification of billing proofs and the commitment recomputation, wired into the core
// verify algorithm: the proof is checked under the verifier's pinned key of its binding version
// (vkeys.ts), its points as bn254.ts accepts them. Loads no proving key and starts no prover.
import { bindingCommitments } from '../core/commitment.ts';
import { tariffCommitmentV2 } from '../core/binding-v2.ts';
import { VerificationError, type ZkVerifier } from '../core/verify.ts';
import { checkProof, pairingAlone, terminateCurve, type PairingFn } from './groth16.ts';
import { verificationKeyFor } from './vkeys.ts';

/** The ZK checks of one bundle, its pairing equation handed to `pairing` (alone by default; a
 *  batch collects them, batch.ts). Everything else is the same whichever is given. */
export function createZkVerifier(pairing: PairingFn = pairingAlone): ZkVerifier {
  return {
    async verifyProof(binding, trustKey, publicSignals, proof) {
      const failure = await checkProof(await verificationKeyFor(binding, trustKey), publicSignals, proof, pairing);
      if (failure) throw new VerificationError(failure.code, failure.reason);
    },
    bindingCommitments,
    tariffCommitmentV2,
  };
}

export const zkVerifier: ZkVerifier = createZkVerifier();

/** Release snarkjs's curve threads so a CLI process can exit. */
export const releaseZk = terminateCurve;
