// Groth16 verification of billing proofs and the commitment recomputation, wired into the core
// verify algorithm: the proof is checked under the verifier's pinned key of its binding version
// (vkeys.ts), its points as bn254.ts accepts them. Loads no proving key and starts no prover.
import { bindingCommitments, type PoseidonHash } from '../core/commitment.ts';
import { tariffCommitmentV2 } from '../core/binding-v2.ts';
import { poseidonBigint } from '../core/poseidon.ts';
import { VerificationError, type ZkVerifier } from '../core/verify.ts';
import { checkProof, pairingAlone, terminateCurve, type PairingFn } from './groth16.ts';
import { verificationKeyFor } from './vkeys.ts';

/** Poseidon in bigint arithmetic (poseidon.ts): for one bundle's one to three hashes it costs
 *  less than building the wasm one (~0.9 s), which pays off only over many bundles. */
export const bigintPoseidon: PoseidonHash = async (inputs) => poseidonBigint(inputs);

/** The ZK checks of one bundle, its pairing equation handed to `pairing` (alone by default; a
 *  batch collects them, batch.ts) and its commitments computed with `hash` (the wasm Poseidon by
 *  default). Everything else is the same whichever are given. */
export function createZkVerifier(pairing: PairingFn = pairingAlone, hash?: PoseidonHash): ZkVerifier {
  return {
    async verifyProof(binding, trustKey, publicSignals, proof) {
      const failure = await checkProof(await verificationKeyFor(binding, trustKey), publicSignals, proof, pairing);
      if (failure) throw new VerificationError(failure.code, failure.reason);
    },
    bindingCommitments: hash ? (args) => bindingCommitments(args, hash) : bindingCommitments,
    tariffCommitmentV2: hash ? (tariff, salt) => tariffCommitmentV2(tariff, salt, hash) : tariffCommitmentV2,
  };
}

/** One bundle at a time (the API's POST /v1/verify, the CLI with one file, the library). */
export const zkVerifier: ZkVerifier = createZkVerifier(pairingAlone, bigintPoseidon);

/** Release snarkjs's curve threads so a CLI process can exit. */
export const releaseZk = terminateCurve;
