// Binding version bn128-poseidon8-v2 (docs/zk-binding.md): salted digests, the tariff commitment,
// the statement tag and the public signals of circuits/billing_v2.circom, all from the signed
// statement. Pure except for Poseidon's lazily built wasm.
import { canonicalBytes, digestOf } from './canonical.ts';
import { sha256, toHex } from './bytes.ts';
import { unitsAdvanced } from './charge.ts';
import { OUTCOME_CODES, asciiTag, assertField, digestLimbs, pack, tariffNumerics, type TariffNumerics } from './field.ts';
import { type PoseidonHash, poseidonHash, randomBlinding } from './commitment.ts';
import { type MeterEvent, type Statement, type StatementV2, type TariffSnapshot, isV2 } from './schemas.ts';
import { reconciliationRecord } from './statement.ts';

/** A salt: uniform in [0, p) from node:crypto (254 random bits, rejection-sampled). */
export const randomSalt: () => bigint = randomBlinding;

export const EVENT_TYPE_V2 = 'meterproof/event/v2';
export const TARIFF_TYPE_V2 = 'meterproof/tariff/v2';
export const RECONCILIATION_TYPE_V2 = 'meterproof/reconciliation/v2';
export const LOG_LEAF_TYPE_V2 = 'meterproof/log-leaf/v2';

/** Domain tag of the v2 tariff commitment: the big-endian integer of the ASCII string. */
export const TAG_TARIFF_V2 = asciiTag('meterproof.tariff.v2');

/** The public signals of circuits/billing_v2.circom, in order. */
export const PUBLIC_SIGNAL_NAMES_V2 = [
  'statement_tag',
  'event_digest_hi',
  'event_digest_lo',
  'tariff_digest_hi',
  'tariff_digest_lo',
  'usage_units',
  'outcome',
  'cumulative_units_before',
  'cumulative_units_after',
  'charge',
  'tariff_commitment',
] as const;

/** A salt's decimal text, checked to be a field element. */
export function saltString(salt: bigint): string {
  assertField(salt, 'salt');
  return salt.toString();
}

/** sha256 over the canonical {type: meterproof/event/v2, salt, meter_event}. */
export function saltedEventDigest(event: MeterEvent, salt: bigint): string {
  return digestOf({ type: EVENT_TYPE_V2, salt: saltString(salt), meter_event: event });
}

/** sha256 over the canonical {type: meterproof/tariff/v2, salt, tariff_snapshot}. */
export function saltedTariffDigest(tariff: TariffSnapshot, salt: bigint): string {
  return digestOf({ type: TARIFF_TYPE_V2, salt: saltString(salt), tariff_snapshot: tariff });
}

/** The v2 reconciliation fingerprint: the v1 record with type meterproof/reconciliation/v2 and
 *  the event's salt, so a guessed event id and usage cannot be confirmed without the salt. */
export function saltedFingerprint(event: MeterEvent, tariff: TariffSnapshot, chargeMicros: string, eventSalt: bigint): string {
  return digestOf({ ...reconciliationRecord(event, tariff, chargeMicros), type: RECONCILIATION_TYPE_V2, salt: saltString(eventSalt) });
}

/** The running total after an event: before plus its billable units. */
export function cumulativeAfter(before: bigint, outcome: MeterEvent['outcome'], units: bigint): bigint {
  return before + unitsAdvanced(outcome, units);
}

/** The 9 Poseidon inputs of the v2 tariff commitment:
 *  TAG_TARIFF_V2, salted digest (hi, lo), pack(quantum, min, max), pack(P1, B1), pack(P2, B2),
 *  pack(P3, B3), pack(P4, rounding), salt. */
export function tariffHashInputsV2(n: TariffNumerics, saltedDigest: string, salt: bigint): bigint[] {
  assertField(salt, 'tariff salt');
  const { hi, lo } = digestLimbs(saltedDigest);
  return [
    TAG_TARIFF_V2,
    hi,
    lo,
    pack(n.quantum, n.min, n.max),
    pack(n.prices[0], n.bounds[0]),
    pack(n.prices[1], n.bounds[1]),
    pack(n.prices[2], n.bounds[2]),
    pack(n.prices[3], n.rounding),
    salt,
  ];
}

/** The public v2 commitment of a tariff version under its salt. Throws ChargeError on a tariff the
 *  charge engine rejects. */
export function tariffCommitmentV2(tariff: TariffSnapshot, salt: bigint, hash: PoseidonHash = poseidonHash): Promise<bigint> {
  return hash(tariffHashInputsV2(tariffNumerics(tariff), saltedTariffDigest(tariff, salt), salt));
}

/** The statement tag: the first 31 bytes of SHA-256 over the canonical statement, big-endian
 *  (< 2^248 < p). It binds the proof to everything the statement says (binding version, tenant,
 *  window, chain position, issue time, key). */
export function statementTag(statement: StatementV2): bigint {
  const d = sha256(canonicalBytes(statement));
  return BigInt(`0x${toHex(d.subarray(0, 31))}`);
}

/** The public signals of a v2 proof, every one from the signed statement (in circuit order) and the
 *  tariff version's published commitment. */
export function publicSignalsV2(statement: StatementV2, tariffCommitment: bigint): bigint[] {
  assertField(tariffCommitment, 'tariff commitment');
  const e = digestLimbs(statement.event_digest);
  const t = digestLimbs(statement.tariff_digest);
  return [
    statementTag(statement),
    e.hi,
    e.lo,
    t.hi,
    t.lo,
    BigInt(statement.usage_units),
    OUTCOME_CODES[statement.outcome],
    BigInt(statement.chain.cumulative_units_before),
    BigInt(statement.chain.cumulative_units_after),
    BigInt(statement.charge_micros),
    tariffCommitment,
  ];
}

/** The witness input of circuits/billing_v2.circom for a statement, its tariff and the tariff's
 *  salt (decimal strings; arrays for the tiers). Values are passed through unchecked: a statement
 *  that does not follow from the tariff has no witness. */
export async function circuitInputsV2(args: { statement: StatementV2; tariff: TariffSnapshot; tariffSalt: bigint }): Promise<Record<string, string | string[]>> {
  const n = tariffNumerics(args.tariff);
  const commitment = await poseidonHash(tariffHashInputsV2(n, args.statement.tariff_digest, args.tariffSalt));
  const pub = publicSignalsV2(args.statement, commitment);
  const s = (v: bigint) => v.toString();
  return {
    ...Object.fromEntries(PUBLIC_SIGNAL_NAMES_V2.map((name, i) => [name, s(pub[i]!)])),
    unit_quantum: s(n.quantum),
    min_charge_micros: s(n.min),
    max_charge_micros: s(n.max),
    rounding_mode: s(n.rounding),
    tier_price: n.prices.map(s),
    tier_bound: n.bounds.map(s),
    tariff_salt: s(args.tariffSalt),
  };
}

/** The bytes of a log leaf. v1 logged the canonical statement; v2 logs only the canonical
 *  {statement_digest, type: meterproof/log-leaf/v2}: the statement's digest covers salted
 *  digests, so a leaf reveals nothing commercial, and a bundle still proves its inclusion. */
export function logLeafV2(statementDigest: string): Uint8Array {
  return canonicalBytes({ statement_digest: statementDigest, type: LOG_LEAF_TYPE_V2 });
}


/** The log leaf of a statement of either binding version. */
export function logLeafBytes(statement: Statement): Uint8Array {
  return isV2(statement) ? logLeafV2(digestOf(statement)) : canonicalBytes(statement);
}
