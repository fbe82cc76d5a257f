// Bilateral metering: the messages a consumer signs (docs/protocol.md §2.14–2.15). Pure and free
// of Node built-ins (src/consumer uses it in the browser too): the canonical bytes of a message
// are RFC 8785 (jcs.ts) of the object without its `signature`.
import { CONSUMER_POP_TYPE, COUNTERSIGNATURE_TYPE, type ConsumerPop, type Countersignature } from './schemas.ts';

/** The fields of a PoP the consumer signs (everything but the signature). */
export type PopFields = Omit<ConsumerPop, 'type' | 'signature'>;
export type CountersignatureFields = Omit<Countersignature, 'type' | 'signature'>;

/** The signed object of a PoP: {type, tenant_id, consumer_id, key_id, event_id, tariff_digest,
 *  request_payload_hash, timestamp, nonce}. */
export function popMessage(p: PopFields): Omit<ConsumerPop, 'signature'> {
  return {
    type: CONSUMER_POP_TYPE,
    tenant_id: p.tenant_id,
    consumer_id: p.consumer_id,
    key_id: p.key_id,
    event_id: p.event_id,
    tariff_digest: p.tariff_digest,
    request_payload_hash: p.request_payload_hash,
    timestamp: p.timestamp,
    nonce: p.nonce,
  };
}

/** The signed object of a countersignature: {type, tenant_id, consumer_id, key_id,
 *  statement_digest, signed_at}. */
export function countersignatureMessage(c: CountersignatureFields): Omit<Countersignature, 'signature'> {
  return {
    type: COUNTERSIGNATURE_TYPE,
    tenant_id: c.tenant_id,
    consumer_id: c.consumer_id,
    key_id: c.key_id,
    statement_digest: c.statement_digest,
    signed_at: c.signed_at,
  };
}

/** The key of a consumer's key that signs at `at` (ms): valid_from ≤ at < valid_until. */
export function keyValidAt(k: { valid_from: string; valid_until?: string | null }, at: number): boolean {
  return at >= Date.parse(k.valid_from) && (k.valid_until == null || at < Date.parse(k.valid_until));
}
