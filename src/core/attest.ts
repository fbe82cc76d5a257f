// Making a bundle from an event, a tariff and a key. Pure: the caller supplies the chain link
// (running total and previous statement) and the clock. Used by the service, the CLI's
// `attest --offline`, the tests and the docs' tour.
import { type PricingTariff, computeCharge, pricingFromTariff, unitsAdvanced } from './charge.ts';
import type { SigningKey } from './keys.ts';
import { toB64Url, utf8 } from './bytes.ts';
import { CloudEventInput, MeterEvent, MeterEventInput, OUTCOMES, STATEMENT_TYPE_V2, TariffSnapshot, TariffSnapshotInput, isNfc, isUtcTimestamp } from './schemas.ts';
import { isU64String } from './u64.ts';
import { type ChainLink, buildStatement, buildStatementV2 } from './statement.ts';
import { cumulativeAfter, logLeafV2, saltString, saltedFingerprint, saltedTariffDigest } from './binding-v2.ts';
import { canonicalBytes, canonicalString, digestBytes, digestOf } from './canonical.ts';
import { bundleV2Text, logLeafV2Text, plainEventText, saltedEventDigestOfText, saltedFingerprintOfText, statementV2Text } from './attest-texts.ts';
import type { ConsumerPop, FullBundle, Statement } from './schemas.ts';

/** Accepts a meter event in its plain or CloudEvents 1.0 form; returns the canonical event.
 *  Throws the zod error of the form it most likely meant. */
export function normalizeMeterEvent(input: unknown): MeterEvent {
  if (input && typeof input === 'object' && 'specversion' in input) {
    const ce = CloudEventInput.parse(input);
    return MeterEvent.parse({
      event_id: ce.id,
      event_timestamp: ce.time,
      tenant_id: ce.data.tenant_id,
      api_key_id: ce.data.api_key_id,
      endpoint: ce.data.endpoint ?? ce.subject ?? ce.source,
      usage_units: ce.data.usage_units,
      contract_version: ce.data.contract_version,
      billing_window_id: ce.data.billing_window_id,
      outcome: ce.data.outcome ?? 'success',
      ...(ce.data.dimensions ? { dimensions: ce.data.dimensions } : {}),
    });
  }
  return plainMeterEvent(input) ?? MeterEvent.parse(MeterEventInput.parse(input));
}

const EVENT_KEYS = new Set<string>(['event_id', 'tenant_id', 'api_key_id', 'endpoint', 'contract_version', 'billing_window_id', 'event_timestamp', 'usage_units', 'outcome']);
/** Control characters (what `ident` refuses) and U+FEFF (what `identInput` refuses). */
const NOT_IN_IDS = /[\p{Cc}\uFEFF]/u;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** An identifier as `identInput` accepts it: 1 to 256 UTF-16 code units, no control character,
 *  no U+FEFF, in NFC (an ASCII string always is). */
const plainId = (v: unknown): v is string => typeof v === 'string' && v.length >= 1 && v.length <= 256 && !NOT_IN_IDS.test(v) && (PRINTABLE_ASCII.test(v) || isNfc(v));

/**
 * The common case of normalizeMeterEvent without zod: a plain event (no dimensions) that is
 * valid as it stands, normalized exactly as the two schemas would (same fields, same order);
 * null for anything else, which the schemas then parse and, if it is invalid, explain. It costs
 * a fraction of the schemas' two passes on the attest path. Each field is read once, so what is
 * checked is what is returned. test/meter-event-fast.test.ts compares both on random valid and
 * invalid events.
 */
export function plainMeterEvent(input: unknown): MeterEvent | null {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return null;
  const o = input as Record<string, unknown>;
  let n = 0;
  for (const k in o) {
    if (!Object.hasOwn(o, k) || !EVENT_KEYS.has(k)) return null;
    n++;
  }
  if (Object.getPrototypeOf(o) !== Object.prototype || Object.getOwnPropertySymbols(o).length) return null;
  const { event_id, event_timestamp, tenant_id, api_key_id, endpoint, usage_units: u, contract_version, billing_window_id, outcome: given } = o;
  if (!plainId(event_id) || !plainId(tenant_id) || !plainId(api_key_id) || !plainId(endpoint) || !plainId(contract_version) || !plainId(billing_window_id)) return null;
  if (typeof event_timestamp !== 'string' || !isUtcTimestamp(event_timestamp)) return null;
  const units = typeof u === 'number' ? (Number.isSafeInteger(u) && u >= 0 ? String(u) : null) : u;
  if (!isU64String(units)) return null;
  const outcome = given === undefined ? 'success' : given;
  if (n !== (given === undefined ? 8 : 9) || !(OUTCOMES as readonly unknown[]).includes(outcome)) return null;
  return { event_id, event_timestamp, tenant_id, api_key_id, endpoint, usage_units: units, contract_version, billing_window_id, outcome: outcome as MeterEvent['outcome'] };
}

/** CloudEvents extension attributes that name the tariff of a bare (structured-mode) CloudEvent;
 *  both or neither. */
export const CE_TARIFF_EXTENSIONS = ['tariffid', 'tariffversion'] as const;

/** A bare CloudEvent as an attest request: `{meter_event: <the event without the tariff
 *  extensions>, tariff?: {tariff_id, tariff_version}}`. Without the extensions the tariff comes from
 *  the tenant's default for the event's meter. The event itself is validated by normalizeMeterEvent. */
export function cloudEventRequest(ce: Record<string, unknown>): Record<string, unknown> {
  const { tariffid, tariffversion, ...event } = ce;
  if (tariffid === undefined && tariffversion === undefined) return { meter_event: event };
  if (typeof tariffid !== 'string' || typeof tariffversion !== 'string') {
    // shaped like a malformed tariff reference, so the request is refused with INVALID_TARIFF_REF
    return { meter_event: event, tariff: { tariffid, tariffversion } };
  }
  return { meter_event: event, tariff: { tariff_id: tariffid, tariff_version: tariffversion } };
}

/** Canonical tariff snapshot with every default explicit; arithmetic limits checked too. */
export function normalizeTariff(input: unknown): TariffSnapshot {
  const t = TariffSnapshot.parse(TariffSnapshotInput.parse(input));
  pricingFromTariff(t); // throws ChargeError (named) on out-of-range values
  return t;
}

export interface AttestResult {
  readonly bundle: FullBundle;
  /** The bundle as JSON text (what the service stores and answers): the same value as
   *  JSON.stringify(bundle), made from texts the signing path already holds where it can. */
  readonly bundleText: string;
  readonly statement: Statement;
  readonly statementDigest: string;
  /** The RFC 8785 canonical bytes of the statement (what is signed). */
  readonly statementBytes: Uint8Array;
  /** The bytes of its transparency-log leaf (v1: the statement; v2: its digest, typed). */
  readonly leafBytes: Uint8Array;
  /** The chain state after this event, for the next statement of the same chain. */
  readonly next: ChainLink;
}

/** Signs the statement and assembles the full bundle (with the salts of a v2 statement).
 *  `texts`: the event's canonical text and the tariff's JSON text, where the caller has them (v2). */
function signed(statement: Statement, key: SigningKey, event: MeterEvent, tariff: TariffSnapshot, salts?: { event: string; tariff: string }, consumerPop?: ConsumerPop, texts?: { event: string; tariff?: string | undefined }): Omit<AttestResult, 'next'> {
  // One canonicalization serves the digest, the signature and (v1) the leaf.
  const v2 = statement.type === STATEMENT_TYPE_V2;
  const text = v2 ? statementV2Text(statement) : null;
  const bytes = text === null ? canonicalBytes(statement) : utf8(text);
  const statementDigest = digestBytes(bytes);
  const signature = toB64Url(key.sign(bytes));
  const billing = {
    expected_charge_micros: statement.charge_micros,
    billing_verify_fingerprint: statement.billing_verify_fingerprint,
    cumulative_units_before: statement.chain.cumulative_units_before,
  };
  const bundle: FullBundle = {
    meter_event: event,
    tariff_snapshot: tariff,
    billing,
    ...(salts ? { salts } : {}),
    attestation: { statement, key_id: key.keyId, signature, proof_status: 'pending' },
    ...(consumerPop ? { consumer_pop: consumerPop } : {}),
  };
  // the bundle's text from the texts in hand (the statement's and the event's canonical texts, the
  // tariff's JSON); JSON.stringify where a part has no such text
  const bundleText =
    (text !== null && texts && salts && bundleV2Text({ eventText: texts.event, tariffText: texts.tariff ?? JSON.stringify(tariff), billing, salts, statementText: text, keyId: key.keyId, signature, ...(consumerPop ? { consumerPop } : {}) })) ||
    JSON.stringify(bundle);
  return { bundle, bundleText, statement, statementDigest, statementBytes: bytes, leafBytes: v2 ? (logLeafV2Text(statementDigest) ?? logLeafV2(statementDigest)) : bytes };
}

/** A meter event's canonical text (RFC 8785): written field by field for a plain event. */
export function meterEventText(event: MeterEvent): string {
  return plainEventText(event) ?? canonicalString(event);
}

/** Attest one event under binding bn128-poseidon8-v2 (what the service issues). The salts are
 *  field elements drawn at random (randomBlinding): the event's fresh per event, the tariff's
 *  fixed per published tariff version. */
export function attestEvent(args: {
  event: MeterEvent;
  tariff: TariffSnapshot;
  key: SigningKey;
  chain: ChainLink;
  issuedAt: string;
  eventSalt: bigint;
  tariffSalt: bigint;
  /** Precomputed salted tariff digest and chain id, when the caller has them. */
  tariffDigest?: string;
  chainId?: string;
  /** The event's canonical text, when the caller has it (the request digest is made from it):
   *  meterEventText(event). It is what the statement's event digest and the bundle's meter_event
   *  are made of, so it must be the text of `event`. */
  eventText?: string;
  /** JSON.stringify(tariff) and pricingFromTariff(tariff), when the caller keeps them per
   *  published version (the service: src/service/chain-writer.ts). */
  tariffText?: string;
  pricing?: PricingTariff;
  /** The consumer's proof of possession (already checked): carried by the bundle, its digest
   *  committed to by the statement. */
  consumerPop?: ConsumerPop;
}): AttestResult {
  const { event, tariff, key, chain } = args;
  const units = BigInt(event.usage_units);
  const { charge } = computeCharge({ units, outcome: event.outcome, cumulativeBefore: chain.cumulativeBefore }, args.pricing ?? pricingFromTariff(tariff));
  const after = cumulativeAfter(chain.cumulativeBefore, event.outcome, units);
  const eventSalt = saltString(args.eventSalt);
  const chargeText = charge.toString();
  const eventText = args.eventText ?? meterEventText(event);
  const statement = buildStatementV2({
    event,
    tariff,
    chargeMicros: charge,
    chain,
    cumulativeAfter: after,
    issuedAt: args.issuedAt,
    keyId: key.keyId,
    eventDigest: saltedEventDigestOfText(eventText, eventSalt),
    tariffDigest: args.tariffDigest ?? saltedTariffDigest(tariff, args.tariffSalt),
    fingerprint: saltedFingerprintOfText(event, tariff, chargeText, eventSalt) ?? saltedFingerprint(event, tariff, chargeText, args.eventSalt),
    ...(args.chainId ? { chainId: args.chainId } : {}),
    ...(args.consumerPop ? { consumerPopDigest: digestOf(args.consumerPop) } : {}),
  });
  const r = signed(statement, key, event, tariff, { event: eventSalt, tariff: saltString(args.tariffSalt) }, args.consumerPop, { event: eventText, tariff: args.tariffText });
  return { ...r, next: { seq: chain.seq + 1n, prev: r.statementDigest, cumulativeBefore: after } };
}

/** Attest one event under binding bn128-poseidon8-v1 (unsalted digests, the statement as the log
 *  leaf). Kept to produce v1 bundles for compatibility tests; the service issues v2. */
export function attestEventV1(args: { event: MeterEvent; tariff: TariffSnapshot; key: SigningKey; chain: ChainLink; issuedAt: string }): AttestResult {
  const { event, tariff, key, chain } = args;
  const units = BigInt(event.usage_units);
  const { charge } = computeCharge({ units, outcome: event.outcome, cumulativeBefore: chain.cumulativeBefore }, pricingFromTariff(tariff));
  const statement = buildStatement({ event, tariff, chargeMicros: charge, chain, issuedAt: args.issuedAt, keyId: key.keyId });
  const r = signed(statement, key, event, tariff);
  return { ...r, next: { seq: chain.seq + 1n, prev: r.statementDigest, cumulativeBefore: chain.cumulativeBefore + unitsAdvanced(event.outcome, units) } };
}

export const GENESIS: ChainLink = { seq: 0n, prev: null, cumulativeBefore: 0n };
