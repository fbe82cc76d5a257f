// Log test data: attestation rows carrying real signed bundles (the pilot event with a given id
// and units), inserted with their log_queue rows in one transaction, as the attest path does.
import { asc, eq, getTableColumns } from 'drizzle-orm';
import { GENESIS, normalizeMeterEvent, normalizeTariff } from '../../src/core/attest.ts';
import { type Db, schema } from '../../src/db/index.ts';
import { leafHash } from '../../src/core/merkle.ts';
import { keyA, pilotEvent, pilotTariff, testAttest } from './fixtures.ts';

const tariff = normalizeTariff(pilotTariff);

/** Queue one attestation per [event_id, usage_units]; returns the attestation ids in order.
 *  Queue rows carry the leaf hash as the attest path writes it, unless `legacy` (rows queued
 *  before leaf_hash existed: the sequencer hashes the stored statement). */
export async function queueAttestations(db: Db, events: readonly (readonly [string, number])[], opts: { legacy?: boolean } = {}): Promise<string[]> {
  const rows = events.map(([eventId, units]) => {
    // each event on its own meter, so each row is seq 0 of its own chain (unique per chain and seq)
    const event = normalizeMeterEvent({ ...pilotEvent, event_id: eventId, usage_units: units, endpoint: `/log/${eventId}` });
    const r = testAttest({ event, tariff, key: keyA, chain: GENESIS, issuedAt: '2026-05-29T12:00:01.000Z' });
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
      leafHash: leafHash(r.leafBytes),
    };
  });
  await db.transaction(async (tx) => {
    await tx.insert(schema.attestations).values(rows.map(({ leafHash: _, ...row }) => row));
    await tx.insert(schema.logQueue).values(rows.map((r) => ({ attestationId: r.id, leafHash: opts.legacy ? null : r.leafHash })));
  });
  return rows.map((r) => r.id);
}

/** Attestations with their log index (from log_leaves), in write order. */
export async function attestationRows(db: Db) {
  const a = schema.attestations;
  return db
    .select({ ...getTableColumns(a), logIndex: schema.logLeaves.idx })
    .from(a)
    .leftJoin(schema.logLeaves, eq(schema.logLeaves.attestationId, a.id))
    .orderBy(asc(a.cursor));
}
