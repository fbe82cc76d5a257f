// The canonical texts the attest path hashes and signs, written out field by field in RFC 8785
// key order instead of walking an object (src/core/jcs.ts): the salted event digest from the
// event's canonical text (already made for the request digest), the salted fingerprint and the
// v2 statement. Each is the same text canonicalString gives for the same object; the verifier
// keeps the generic walk (binding-v2.ts, statement.ts), so a difference between the two could
// only make a bundle fail verification, never pass, and every attest-then-verify test would see
// it. test/attest-texts.test.ts compares both on random values.
import { digestBytes } from './canonical.ts';
import { utf8 } from './bytes.ts';
import { CanonicalizationError } from './errors.ts';
import type { ConsumerPop, MeterEvent, StatementV2, TariffSnapshot } from './schemas.ts';
import { LOG_LEAF_TYPE_V2 } from './binding-v2.ts';

/** Thrown by str() for a value that is not a string: the text is then not made here (null), and
 *  the caller leaves the value to the generic walk. */
const NOT_A_STRING = Symbol('not a string');

/** The RFC 8785 text of a string (JSON.stringify escapes as §3.2.2.2 asks); lone surrogates are
 *  refused, as canonicalString refuses them. */
function str(s: string): string {
  if (typeof s !== 'string') throw NOT_A_STRING;
  if (!s.isWellFormed()) throw new CanonicalizationError('lone surrogate in string');
  return JSON.stringify(s);
}

/** make(), or null when it met a value that is not a string. */
function orNull(make: () => string): string | null {
  try {
    return make();
  } catch (e) {
    if (e === NOT_A_STRING) return null;
    throw e;
  }
}

/** Keys of a meter event without dimensions. */
const PLAIN_EVENT_KEYS = 9;

/** The canonical text of a meter event without dimensions (nine string fields), or null for any
 *  other shape: the caller then canonicalizes generically (canonicalString). */
export function plainEventText(e: MeterEvent): string | null {
  if (keyCount(e) !== PLAIN_EVENT_KEYS || 'dimensions' in e) return null;
  return orNull(
    () =>
      `{"api_key_id":${str(e.api_key_id)},"billing_window_id":${str(e.billing_window_id)},"contract_version":${str(e.contract_version)},"endpoint":${str(e.endpoint)},` +
      `"event_id":${str(e.event_id)},"event_timestamp":${str(e.event_timestamp)},"outcome":${str(e.outcome)},"tenant_id":${str(e.tenant_id)},"usage_units":${str(e.usage_units)}}`,
  );
}

/** saltedEventDigest(event, salt), from the event's canonical text and the salt's decimal text:
 *  sha256 over {"meter_event":…,"salt":"…","type":"meterproof/event/v2"}. */
export function saltedEventDigestOfText(eventText: string, saltText: string): string {
  return digestBytes(`{"meter_event":${eventText},"salt":"${saltText}","type":"meterproof/event/v2"}`);
}

/** saltedFingerprint(event, tariff, chargeMicros, salt), with the salt's decimal text; null when a
 *  field is not a string. */
export function saltedFingerprintOfText(event: MeterEvent, tariff: TariffSnapshot, chargeMicros: string, saltText: string): string | null {
  const text = orNull(
    () =>
      `{"billing_window_id":${str(event.billing_window_id)},"charge_micros":${str(chargeMicros)},"currency":${str(tariff.currency)},"event_id":${str(event.event_id)},"salt":"${saltText}","tariff_id":${str(tariff.tariff_id)},"tariff_version":${str(tariff.tariff_version)},"tenant_id":${str(event.tenant_id)},"type":"meterproof/reconciliation/v2","usage_units":${str(event.usage_units)}}`,
  );
  return text === null ? null : digestBytes(text);
}

/** Keys of a v2 statement and of its chain, without consumer_pop_digest. */
const STATEMENT_KEYS = 16;
const CHAIN_KEYS = 5;

/** Own and inherited enumerable keys, counted without making an array of them. */
function keyCount(o: object): number {
  let n = 0;
  for (const _ in o) n++;
  return n;
}

/** The canonical text of a v2 statement as buildStatementV2 makes it (string fields, the chain
 *  object, prev null or a string), or null for any other shape: the caller then canonicalizes
 *  generically, and refuses what the generic walk refuses. */
export function statementV2Text(s: StatementV2): string | null {
  const pop = s.consumer_pop_digest;
  const c = s.chain;
  if (keyCount(s) !== STATEMENT_KEYS + (pop === undefined ? 0 : 1) || c === null || typeof c !== 'object' || keyCount(c) !== CHAIN_KEYS) return null;
  return orNull(
    () =>
      `{"billing_verify_fingerprint":${str(s.billing_verify_fingerprint)},"billing_window_id":${str(s.billing_window_id)},"binding":${str(s.binding)},` +
      `"chain":{"cumulative_units_after":${str(c.cumulative_units_after)},"cumulative_units_before":${str(c.cumulative_units_before)},"id":${str(c.id)},"prev":${c.prev === null ? 'null' : str(c.prev)},"seq":${str(c.seq)}},` +
      `"charge_micros":${str(s.charge_micros)},${pop === undefined ? '' : `"consumer_pop_digest":${str(pop)},`}"currency":${str(s.currency)},"event_digest":${str(s.event_digest)},` +
      `"issued_at":${str(s.issued_at)},"key_id":${str(s.key_id)},"outcome":${str(s.outcome)},"tariff_digest":${str(s.tariff_digest)},"tariff_id":${str(s.tariff_id)},` +
      `"tariff_version":${str(s.tariff_version)},"tenant_id":${str(s.tenant_id)},"type":${str(s.type)},"usage_units":${str(s.usage_units)}}`,
  );
}

/** logLeafV2's bytes for a statement digest the signing path made (`sha256:` and hex digits),
 *  or null for anything else: the caller then canonicalizes generically. */
export function logLeafV2Text(statementDigest: string): Uint8Array | null {
  if (!/^sha256:[0-9a-f]{64}$/.test(statementDigest)) return null;
  return utf8(`{"statement_digest":"${statementDigest}","type":${JSON.stringify(LOG_LEAF_TYPE_V2)}}`);
}

/**
 * A full v2 bundle's JSON text from the texts the signing path already holds: the event's and the
 * statement's canonical texts and the tariff snapshot's JSON. It is the same JSON value as
 * JSON.stringify of the bundle object (signed() in attest.ts), though the event and the statement
 * come with their keys in canonical order; null when a field is not a string (the caller then
 * stringifies the object).
 */
export function bundleV2Text(p: {
  eventText: string;
  tariffText: string;
  billing: { expected_charge_micros: string; billing_verify_fingerprint: string; cumulative_units_before: string };
  salts: { event: string; tariff: string };
  statementText: string;
  keyId: string;
  signature: string;
  consumerPop?: ConsumerPop;
}): string | null {
  const b = p.billing;
  return orNull(
    () =>
      `{"meter_event":${p.eventText},"tariff_snapshot":${p.tariffText},` +
      `"billing":{"expected_charge_micros":${str(b.expected_charge_micros)},"billing_verify_fingerprint":${str(b.billing_verify_fingerprint)},"cumulative_units_before":${str(b.cumulative_units_before)}},` +
      `"salts":{"event":${str(p.salts.event)},"tariff":${str(p.salts.tariff)}},` +
      `"attestation":{"statement":${p.statementText},"key_id":${str(p.keyId)},"signature":${str(p.signature)},"proof_status":"pending"}` +
      `${p.consumerPop ? `,"consumer_pop":${JSON.stringify(p.consumerPop)}` : ''}}`,
  );
}
