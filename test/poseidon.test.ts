// The verifier's Poseidon (bigint, src/core/poseidon.ts) and the service's (circomlibjs wasm,
// src/core/commitment.ts) are the same function: every width, field edges, random inputs.
import { describe, expect, it } from 'vitest';
import { poseidonHash, randomBlinding } from '../src/core/commitment.ts';
import { BN128_P } from '../src/core/field.ts';
import { poseidonBigint } from '../src/core/poseidon.ts';

describe('Poseidon in bigint arithmetic', () => {
  it('equals circomlibjs for 1 to 16 inputs (random, zero and p − 1)', async () => {
    for (let n = 1; n <= 16; n++) {
      for (const inputs of [Array.from({ length: n }, () => randomBlinding()), Array<bigint>(n).fill(0n), Array<bigint>(n).fill(BN128_P - 1n)]) {
        expect(poseidonBigint(inputs), `${n} inputs`).toBe(await poseidonHash(inputs));
      }
    }
  }, 60_000);

  it('refuses what circomlibjs refuses: no inputs, more than 16, a value outside [0, p)', async () => {
    for (const bad of [[], Array<bigint>(17).fill(1n), [BN128_P], [-1n]]) {
      expect(() => poseidonBigint(bad)).toThrow(RangeError);
      await expect(poseidonHash(bad)).rejects.toThrow(RangeError);
    }
  });
});
