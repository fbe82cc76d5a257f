// The Poseidon commitments of bn128-poseidon8-v1 (docs/zk-binding.md §9.1), computed in
// TypeScript exactly as circuits/billing.circom computes them, plus the circuit's witness input.
// Poseidon is circomlibjs's (the reference of circomlib's poseidon.circom); its wasm is built once.
import { randomBytes } from './platform.ts';
import { toHex } from './bytes.ts';
import type { Poseidon } from 'circomlibjs';
import {
  BN128_P,
  bindingHashInputs,
  encodeEvent,
  encodeTariff,
  eventHashInputs,
  privateCircuitInputs,
  tariffHashInputs,
  assertField,
  type EventEncoding,
  type TariffEncoding,
} from './field.ts';
import type { MeterEvent, TariffSnapshot } from './schemas.ts';

let poseidonPromise: Promise<Poseidon> | undefined;

function getPoseidon(): Promise<Poseidon> {
  // circomlibjs is imported on first use (it takes a few hundred ms to load)
  poseidonPromise ??= import('circomlibjs').then((m) => m.buildPoseidon()).catch((e: unknown) => {
    poseidonPromise = undefined; // let a later call retry
    throw e;
  });
  return poseidonPromise;
}

/** A Poseidon implementation (circomlib parameters): this wasm one, or poseidon.ts's bigint one. */
export type PoseidonHash = (inputs: readonly bigint[]) => Promise<bigint>;

/** Poseidon (circomlib parameters, bn128, width inputs.length + 1) of field elements. */
export async function poseidonHash(inputs: readonly bigint[]): Promise<bigint> {
  if (inputs.length < 1 || inputs.length > 16) throw new RangeError('Poseidon takes 1 to 16 inputs');
  inputs.forEach((x, i) => assertField(x, `Poseidon input ${i}`));
  const poseidon = await getPoseidon();
  return poseidon.F.toObject(poseidon(inputs));
}

export interface BindingArgs {
  readonly event: MeterEvent;
  readonly tariff: TariffSnapshot;
  /** Running total of billable units before this event (the statement chain's). */
  readonly cumulativeBefore: bigint;
  /** Uniform in [0, p), fresh per event: see randomBlinding(). */
  readonly blinding: bigint;
  /** The claimed charge in micros. */
  readonly charge: bigint;
}

export interface BindingCommitments {
  readonly eventCommitment: bigint;
  readonly tariffCommitment: bigint;
  readonly bindingCommitment: bigint;
}

export function tariffCommitmentOf(encoding: TariffEncoding, hash: PoseidonHash = poseidonHash): Promise<bigint> {
  return hash(tariffHashInputs(encoding));
}

export function eventCommitmentOf(encoding: EventEncoding, hash: PoseidonHash = poseidonHash): Promise<bigint> {
  return hash(eventHashInputs(encoding));
}

/** The public commitment of a tariff version: deterministic (no blinding). Throws ChargeError on
 *  a tariff the charge engine rejects. */
export async function tariffCommitment(tariff: TariffSnapshot, hash: PoseidonHash = poseidonHash): Promise<bigint> {
  return tariffCommitmentOf(encodeTariff(tariff), hash);
}

async function commitmentsOf(e: EventEncoding, t: TariffEncoding, charge: bigint, hash: PoseidonHash = poseidonHash): Promise<BindingCommitments> {
  const [eventCommitment, tariffCommitment] = await Promise.all([eventCommitmentOf(e, hash), tariffCommitmentOf(t, hash)]);
  const bindingCommitment = await hash(bindingHashInputs(eventCommitment, tariffCommitment, charge));
  return { eventCommitment, tariffCommitment, bindingCommitment };
}

/** Event, tariff and binding commitments; the digests are computed here from the canonical JSON. */
export async function bindingCommitments(args: BindingArgs, hash: PoseidonHash = poseidonHash): Promise<BindingCommitments> {
  const e = encodeEvent(args.event, args.cumulativeBefore, args.blinding);
  const t = encodeTariff(args.tariff);
  return commitmentsOf(e, t, args.charge, hash);
}

/** The witness input object of circuits/billing.circom (decimal strings; arrays for the tiers).
 *  The claimed charge is passed through unchecked: a wrong one has no witness. */
export async function circuitInputs(args: BindingArgs): Promise<Record<string, string | string[]>> {
  const e = encodeEvent(args.event, args.cumulativeBefore, args.blinding);
  const t = encodeTariff(args.tariff);
  const c = await commitmentsOf(e, t, args.charge);
  return {
    binding_commitment: c.bindingCommitment.toString(),
    charge: args.charge.toString(),
    tariff_commitment: c.tariffCommitment.toString(),
    ...privateCircuitInputs(e, t),
  };
}

/** Random bytes from the platform CSPRNG, drawn 8 KiB at a time (one call into it per 256 salts
 *  instead of one per salt; each byte is handed out once). */
const pool: { buf: Uint8Array; at: number } = { buf: new Uint8Array(0), at: 0 };
function random32(): Uint8Array {
  if (pool.at + 32 > pool.buf.length) {
    pool.buf = randomBytes(8192);
    pool.at = 0;
  }
  const b = pool.buf.slice(pool.at, pool.at + 32);
  pool.buf.fill(0, pool.at, pool.at + 32);
  pool.at += 32;
  return b;
}

/** A blinding salt uniform in [0, p): rejection sampling of 254-bit strings from the CSPRNG. */
export function randomBlinding(): bigint {
  for (;;) {
    const b = random32();
    b[0]! &= 0x3f; // keep 254 bits: p > 2^253, so each try succeeds with probability > 1/2
    const v = BigInt(`0x${toHex(b)}`);
    if (v < BN128_P) return v;
  }
}
