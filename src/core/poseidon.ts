// Poseidon with circomlib's parameters (poseidon.circom, circomlibjs) in bigint arithmetic: the
// same function as circomlibjs's wasm `buildPoseidon`, without building the bn128 wasm curve first
// (~0.9 s of CPU). The open verifier uses it (one or three hashes per bundle); the service, which
// hashes many times, uses the wasm one (commitment.ts). test/poseidon.test.ts checks both agree.
//
// Parameters (Grassi et al., "Poseidon", eprint 2019/458, as circomlib instantiates it): the bn128
// scalar field, x^5 S-box, width t = inputs + 1 with the capacity element 0 first, 8 full rounds,
// the partial rounds below per t, round constants and the MDS matrix from the reference Grain LFSR
// generator (generate_parameters_grain.sage), which @noble/curves implements. Output: state[0].
import { Field } from '@noble/curves/abstract/modular.js';
import { grainGenConstants, poseidon, type PoseidonFn } from '@noble/curves/abstract/poseidon.js';
import { BN128_P, assertField } from './field.ts';

/** Partial rounds of circomlib's Poseidon for t = 2 … 17 (poseidon.circom N_ROUNDS_P). */
const ROUNDS_PARTIAL = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68] as const;
const ROUNDS_FULL = 8;

const Fr = Field(BN128_P);
const permutations = new Map<number, PoseidonFn>();

function permutation(t: number): PoseidonFn {
  let p = permutations.get(t);
  if (!p) {
    const opts = { Fp: Fr, t, roundsFull: ROUNDS_FULL, roundsPartial: ROUNDS_PARTIAL[t - 2]! };
    p = poseidon({ ...opts, ...grainGenConstants(opts), sboxPower: 5 });
    permutations.set(t, p);
  }
  return p;
}

/** Poseidon (circomlib parameters) of 1 to 16 field elements. */
export function poseidonBigint(inputs: readonly bigint[]): bigint {
  if (inputs.length < 1 || inputs.length > 16) throw new RangeError('Poseidon takes 1 to 16 inputs');
  inputs.forEach((x, i) => assertField(x, `Poseidon input ${i}`));
  return permutation(inputs.length + 1)([0n, ...inputs])[0]!;
}
