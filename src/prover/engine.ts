// One proving engine: the proving key parsed and the circuit's witness calculator built once,
// proofs made from memory by groth16-prove.ts (no file reads, no zkey parsing per proof). Used
// in-process and inside each pool worker.
// snarkjs and circom_runtime are imported when an engine is built: a worker pool's parent
// thread (which only imports WitnessError from here) never loads them.
import { groth16Prove, readProvingKey, witnessOf, type ProvingCurve } from './groth16-prove.ts';

/** A snarkjs Groth16 proof object (affine coordinates as decimal strings). */
export interface Groth16ProofJson {
  pi_a: string[];
  pi_b: string[][];
  pi_c: string[];
  protocol: string;
  curve: string;
}

export interface ProofResult {
  proof: Groth16ProofJson;
  publicSignals: string[];
}

export type CircuitInput = Record<string, string | string[]>;

export interface ProvingKeys {
  /** The final proving key (keys/billing.zkey). */
  readonly zkey: Uint8Array;
  /** The circuit's witness calculator (keys/billing.wasm). */
  readonly wasm: Uint8Array;
}

export interface ProvingEngine {
  prove(input: CircuitInput): Promise<ProofResult>;
}

/** Thrown when the input has no witness (e.g. a wrong claimed charge): a circuit assertion failed. */
export class WitnessError extends Error {
  override readonly name = 'WitnessError';
  readonly code = 'WITNESS_FAILED';
}

/** Makes snarkjs compute on this thread only: ffjavascript reuses `globalThis.curve_bn128` as its
 *  bn128 curve when one is set, so a single-thread curve placed there first is used by every
 *  proof. In a pool of workers this avoids each worker starting its own helper threads. */
export async function useSingleThreadCurve(): Promise<void> {
  const g = globalThis as { curve_bn128?: unknown };
  if (g.curve_bn128) return;
  const snarkjs = await import('snarkjs');
  g.curve_bn128 = await snarkjs.curves.getCurveFromName('bn128', { singleThread: true });
}

/** The newest circom assertion in a witness-calculator error (its message accumulates them). */
function lastAssertion(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const lines = msg.split('\n').filter((l) => l.trim() !== '');
  return lines.at(-1) ?? msg;
}

export async function createEngine(keys: ProvingKeys, opts: { singleThreadCurve?: boolean } = {}): Promise<ProvingEngine> {
  if (opts.singleThreadCurve) await useSingleThreadCurve();
  // the global curve when one is set (the single-thread one above), else snarkjs's shared default
  const [snarkjs, { WitnessCalculatorBuilder }] = await Promise.all([import('snarkjs'), import('circom_runtime')]);
  const g = globalThis as { curve_bn128?: unknown };
  const curve = (g.curve_bn128 ?? (await snarkjs.curves.getCurveFromName('bn128'))) as unknown as ProvingCurve;
  const pk = readProvingKey(keys.zkey);
  let wc = await WitnessCalculatorBuilder(keys.wasm);
  let queue: Promise<unknown> = Promise.resolve();
  const witness = async (input: CircuitInput): Promise<Uint8Array> => {
    try {
      return await wc.calculateWTNSBin(input, true);
    } catch (e) {
      // a failed run leaves the calculator with stale error text: start from a fresh instance
      wc = await WitnessCalculatorBuilder(keys.wasm);
      throw new WitnessError(`no witness for this input: ${lastAssertion(e)}`);
    }
  };
  return {
    async prove(input) {
      // the calculator owns one wasm instance: run witness computations one at a time
      const wtns = queue.then(() => witness(input));
      queue = wtns.catch(() => undefined);
      return groth16Prove(curve, pk, witnessOf(await wtns, pk));
    },
  };
}
