// Groth16 verification of bn128-poseidon8-v1 proofs and the commitment recomputation, wired
// into the core verify algorithm. Loads no proving key and starts no prover.
import { bindingCommitments } from '../core/commitment.ts';
import type { ZkVerifier } from '../core/verify.ts';
import { terminateCurve, verifyGroth16 } from './groth16.ts';

export const zkVerifier: ZkVerifier = {
  verifyGroth16: (vkey, publicSignals, proof) => verifyGroth16(vkey, publicSignals, proof),
  bindingCommitments,
};

/** Release snarkjs's curve threads so a CLI process can exit. */
export const releaseZk = terminateCurve;
