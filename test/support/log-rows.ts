// Log test data: attestation rows carrying real signed bundles (the pilot event with a given id
// and units), inserted with their log_queue rows in one transaction, as the attest path does.
import { GENESIS, attestEvent, normalizeMeterEvent, normalizeTariff } from '../../src/core/attest.ts';
import { type Db, schema } from '../../src/db/index.ts';
import { keyA, pilotEvent, pilotTariff } from './fixtures.ts';

const tariff = normalizeTariff(pilotTariff);

/** Queue one attestation per [event_id, usage_units]; returns the attestation ids in order. */
export async function queueAttestations(db: Db, events: readonly (readonly [string, number])[]): Promise<string[]> {
  const rows = events.map(([eventId, units]) => {
    const event = normalizeMeterEvent({ ...pilotEvent, event_id: eventId, usage_units: units });
    const r = attestEvent({ event, tariff, key: keyA, chain: GENESIS, issuedAt: '2026-05-29T12:00:01.000Z' });
    return {
      id: r.statementDigest.slice('sha256:'.length),
      tenantId: event.tenant_id,
      eventId: event.event_id,
      requestDigest: r.statementDigest,
      statementDigest: r.statementDigest,
      billingWindowId: event.billing_window_id,
      chainId: r.statement.chain.id,
      seq: 0n,
      chargeMicros: r.statement.charge_micros,
      currency: r.statement.currency,
      bundle: r.bundle,
      blinding: '1',
      proofStatus: 'pending',
    };
  });
  await db.transaction(async (tx) => {
    await tx.insert(schema.attestations).values(rows);
    await tx.insert(schema.logQueue).values(rows.map((r) => ({ attestationId: r.id })));
  });
  return rows.map((r) => r.id);
}
