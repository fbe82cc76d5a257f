// Minimal type declarations for the untyped JavaScript libraries of the ZK binding (snarkjs,
// circomlibjs, circom_runtime): only what meterproof calls. "File" arguments are a path or an
// in-memory fastfile descriptor { type: 'mem', data }.

declare module 'circomlibjs' {
  export interface PoseidonField {
    toObject(x: Uint8Array): bigint;
    e(x: bigint | number | string): Uint8Array;
  }
  export interface Poseidon {
    (inputs: readonly bigint[]): Uint8Array;
    F: PoseidonField;
  }
  export function buildPoseidon(): Promise<Poseidon>;
}

declare module 'circom_runtime' {
  export interface WitnessCalculator {
    calculateWTNSBin(input: Record<string, unknown>, sanityCheck?: number | boolean): Promise<Uint8Array>;
    calculateWitness(input: Record<string, unknown>, sanityCheck?: number | boolean): Promise<bigint[]>;
  }
  export function WitnessCalculatorBuilder(code: Uint8Array, options?: Record<string, unknown>): Promise<WitnessCalculator>;
}

declare module 'snarkjs' {
  export type SnarkFile = string | { type: 'mem'; data?: Uint8Array };
  export interface Logger {
    debug(msg: string): void;
    info(msg: string): void;
    warn(msg: string): void;
    error(msg: string): void;
  }
  export interface SnarkProof {
    pi_a: string[];
    pi_b: string[][];
    pi_c: string[];
    protocol: string;
    curve: string;
  }
  export const groth16: {
    prove(zkey: SnarkFile, witness: SnarkFile, logger?: Logger, options?: Record<string, unknown>): Promise<{ proof: SnarkProof; publicSignals: string[] }>;
    fullProve(
      input: Record<string, unknown>,
      wasm: SnarkFile,
      zkey: SnarkFile,
      logger?: Logger,
      wtnsCalcOptions?: Record<string, unknown>,
      proverOptions?: Record<string, unknown>,
    ): Promise<{ proof: SnarkProof; publicSignals: string[] }>;
    verify(vkey: unknown, publicSignals: unknown, proof: unknown, logger?: Logger): Promise<boolean>;
  };
  export const wtns: {
    calculate(input: Record<string, unknown>, wasm: SnarkFile, wtns: SnarkFile, options?: Record<string, unknown>): Promise<void>;
    check(r1cs: SnarkFile, wtns: SnarkFile, logger?: Logger): Promise<boolean>;
    exportJson(wtns: SnarkFile): Promise<bigint[]>;
  };
  export const zKey: {
    newZKey(r1cs: SnarkFile, ptau: SnarkFile, zkey: SnarkFile, logger?: Logger): Promise<Uint8Array>;
    contribute(oldZkey: SnarkFile, newZkey: SnarkFile, name: string, entropy: string, logger?: Logger): Promise<Uint8Array>;
    beacon(oldZkey: SnarkFile, newZkey: SnarkFile, name: string, beaconHash: string, numIterationsExp: number, logger?: Logger): Promise<Uint8Array | false>;
    verifyFromR1cs(r1cs: SnarkFile, ptau: SnarkFile, zkey: SnarkFile, logger?: Logger): Promise<boolean>;
    verifyFromInit(initZkey: SnarkFile, ptau: SnarkFile, zkey: SnarkFile, logger?: Logger): Promise<boolean>;
    exportVerificationKey(zkey: SnarkFile, logger?: Logger): Promise<Record<string, unknown>>;
  };
  export const powersOfTau: {
    newAccumulator(curve: unknown, power: number, ptau: SnarkFile, logger?: Logger): Promise<Uint8Array>;
    contribute(oldPtau: SnarkFile, newPtau: SnarkFile, name: string, entropy: string, logger?: Logger): Promise<Uint8Array>;
    beacon(oldPtau: SnarkFile, newPtau: SnarkFile, name: string, beaconHash: string, numIterationsExp: number, logger?: Logger): Promise<Uint8Array | false>;
    preparePhase2(oldPtau: SnarkFile, newPtau: SnarkFile, logger?: Logger): Promise<void>;
    verify(ptau: SnarkFile, logger?: Logger): Promise<boolean>;
  };
  export const r1cs: {
    info(r1cs: SnarkFile, logger?: Logger): Promise<{ nConstraints: number; nVars: number; nPubInputs: number; nPrvInputs: number; nOutputs: number }>;
  };
  export const curves: {
    getCurveFromName(name: string, options?: Record<string, unknown>): Promise<{ terminate(): Promise<void> }>;
  };
}
