// Groth16 verification of bn128-poseidon8-v1 proofs and the commitment recomputation.
// Filled in by the ZK binding; until then the proof and commitment checks report `skipped`.
import type { ZkVerifier } from '../core/verify.ts';

export const zkVerifier: ZkVerifier | undefined = undefined;
