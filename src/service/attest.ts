// The attest path: normalize, dedupe on (tenant, event_id), lock the chain head, price, sign,
// and in the same transaction store the attestation, enqueue its proof job and its log entry.
// Nothing slow happens here: Poseidon, proving and log integration are asynchronous.
import { and, eq, sql } from 'drizzle-orm';
import { ZodError } from 'zod';
import { attestEvent, normalizeMeterEvent, normalizeTariff } from '../core/attest.ts';
import { digestOf } from '../core/canonical.ts';
import { ChargeError } from '../core/errors.ts';
import { randomBlinding } from '../core/commitment.ts';
import type { FullBundle, MeterEvent, TariffSnapshot } from '../core/schemas.ts';
import { chainId } from '../core/statement.ts';
import { U64_MAX } from '../core/u64.ts';
import { type Db, isUniqueViolation, schema } from '../db/index.ts';
import { type Principal, requireScope, requireTenant } from './auth.ts';
import { ServiceError, chargeProblem, zodIssues } from './errors.ts';
import type { KeyRing } from './keyring.ts';
import type { TariffService } from './tariffs.ts';

export type AttestationRow = typeof schema.attestations.$inferSelect;

export interface AttestOutcome {
  readonly created: boolean;
  readonly row: AttestationRow;
}

export class AttestService {
  constructor(
    private readonly db: Db,
    private readonly keys: KeyRing,
    private readonly tariffs: TariffService,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Validate and normalize one request body item; throws ServiceError (400/422/404). */
  async normalize(body: unknown): Promise<{ event: MeterEvent; tariff: TariffSnapshot }> {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ServiceError(400, 'BAD_REQUEST', 'expected a JSON object');
    const b = body as Record<string, unknown>;
    const extra = Object.keys(b).filter((k) => !['meter_event', 'tariff_snapshot', 'tariff'].includes(k));
    if (extra.length) throw new ServiceError(400, 'BAD_REQUEST', `unknown field ${extra[0]}`, extra.map((k) => ({ path: k, message: 'unknown field' })));
    let event: MeterEvent;
    try {
      event = normalizeMeterEvent(b['meter_event']);
    } catch (e) {
      if (e instanceof ZodError) throw new ServiceError(400, 'INVALID_METER_EVENT', 'meter_event is not valid', zodIssues(e, 'meter_event'));
      throw e;
    }
    let inline: TariffSnapshot | undefined;
    if (b['tariff_snapshot'] !== undefined) {
      try {
        inline = normalizeTariff(b['tariff_snapshot']);
      } catch (e) {
        if (e instanceof ZodError) throw new ServiceError(400, 'INVALID_TARIFF', 'tariff_snapshot is not valid', zodIssues(e, 'tariff_snapshot'));
        if (e instanceof ChargeError) throw chargeProblem(e, 'tariff_snapshot');
        throw e;
      }
    }
    const ref = b['tariff'];
    if (ref !== undefined) {
      const r = ref as Record<string, unknown> | null;
      if (!r || typeof r !== 'object' || typeof r['tariff_id'] !== 'string' || typeof r['tariff_version'] !== 'string' || Object.keys(r).length !== 2) {
        throw new ServiceError(400, 'INVALID_TARIFF_REF', 'tariff must be {tariff_id, tariff_version}', [{ path: 'tariff', message: 'expected {tariff_id, tariff_version}' }]);
      }
      const published = await this.tariffs.get(r['tariff_id'], r['tariff_version']);
      if (!published) throw new ServiceError(422, 'TARIFF_NOT_PUBLISHED', `tariff ${r['tariff_id']}@${r['tariff_version']} is not published`);
      if (inline && digestOf(inline) !== digestOf(published.snapshot)) {
        throw new ServiceError(422, 'TARIFF_MISMATCH', 'tariff_snapshot differs from the published version it names');
      }
      return { event, tariff: published.snapshot };
    }
    if (!inline) throw new ServiceError(400, 'TARIFF_REQUIRED', 'send tariff_snapshot or tariff: {tariff_id, tariff_version}');
    const published = await this.tariffs.get(inline.tariff_id, inline.tariff_version);
    if (published && digestOf(inline) !== digestOf(published.snapshot)) {
      throw new ServiceError(422, 'TARIFF_MISMATCH', 'tariff_snapshot names a published version but differs from it');
    }
    return { event, tariff: inline };
  }

  async attest(principal: Principal, body: unknown): Promise<AttestOutcome> {
    requireScope(principal, 'attest');
    const { event, tariff } = await this.normalize(body);
    requireTenant(principal, event.tenant_id);
    await this.tariffs.requireTenant(event.tenant_id);
    const requestDigest = digestOf({ meter_event: event, tariff_snapshot: tariff });

    const replay = await this.findReplay(event.tenant_id, event.event_id, requestDigest);
    if (replay) return { created: false, row: replay };

    try {
      return await this.insert(event, tariff, requestDigest);
    } catch (e) {
      // A concurrent request with the same (tenant, event_id) won the race: answer as a replay.
      if (isUniqueViolation(e)) {
        const again = await this.findReplay(event.tenant_id, event.event_id, requestDigest);
        if (again) return { created: false, row: again };
      }
      throw e;
    }
  }

  private async findReplay(tenantId: string, eventId: string, requestDigest: string): Promise<AttestationRow | null> {
    const [row] = await this.db
      .select()
      .from(schema.attestations)
      .where(and(eq(schema.attestations.tenantId, tenantId), eq(schema.attestations.eventId, eventId)));
    if (!row) return null;
    if (row.requestDigest !== requestDigest) {
      throw new ServiceError(409, 'IDEMPOTENCY_CONFLICT', `event_id ${eventId} was already attested with different content`);
    }
    return row;
  }

  private async insert(event: MeterEvent, tariff: TariffSnapshot, requestDigest: string): Promise<AttestOutcome> {
    const key = await this.keys.current(this.clock());
    const cid = chainId(event.tenant_id, event.endpoint, event.billing_window_id);
    return this.db.transaction(async (tx) => {
      await tx.insert(schema.chains).values({ chainId: cid, tenantId: event.tenant_id, nextSeq: 0n, prevDigest: null, cumulativeUnits: '0' }).onConflictDoNothing();
      const [head] = await tx.select().from(schema.chains).where(eq(schema.chains.chainId, cid)).for('update');
      if (!head) throw new Error('chain head vanished');
      // Re-check under the chain lock: a duplicate on this chain has committed by now if it exists.
      const [dup] = await tx
        .select({ d: schema.attestations.requestDigest })
        .from(schema.attestations)
        .where(and(eq(schema.attestations.tenantId, event.tenant_id), eq(schema.attestations.eventId, event.event_id)));
      if (dup) throw Object.assign(new Error('duplicate'), { code: '23505' });

      const chain = { seq: head.nextSeq, prev: head.prevDigest, cumulativeBefore: BigInt(head.cumulativeUnits) };
      let result;
      try {
        result = attestEvent({ event, tariff, key, chain, issuedAt: this.clock().toISOString() });
      } catch (e) {
        if (e instanceof ChargeError) throw chargeProblem(e, 'meter_event');
        throw e;
      }
      if (result.next.cumulativeBefore > U64_MAX) {
        throw new ServiceError(422, 'CUMULATIVE_OUT_OF_RANGE', 'the running unit total of this meter and window would reach 2^64');
      }
      const id = result.statementDigest.slice('sha256:'.length);
      const [row] = await tx
        .insert(schema.attestations)
        .values({
          id,
          tenantId: event.tenant_id,
          eventId: event.event_id,
          requestDigest,
          statementDigest: result.statementDigest,
          billingWindowId: event.billing_window_id,
          chainId: cid,
          seq: chain.seq,
          chargeMicros: result.statement.charge_micros,
          currency: result.statement.currency,
          bundle: result.bundle,
          blinding: randomBlinding().toString(),
          proofStatus: 'pending',
        })
        .returning();
      await tx
        .update(schema.chains)
        .set({ nextSeq: result.next.seq, prevDigest: result.next.prev, cumulativeUnits: result.next.cumulativeBefore.toString() })
        .where(eq(schema.chains.chainId, cid));
      await tx.insert(schema.proofJobs).values({ attestationId: id, status: 'queued' });
      await tx.insert(schema.logQueue).values({ attestationId: id });
      return { created: true, row: row! };
    });
  }

  async get(principal: Principal, id: string): Promise<AttestationRow> {
    requireScope(principal, 'read');
    if (!/^[0-9a-f]{64}$/.test(id)) throw new ServiceError(404, 'NOT_FOUND', 'attestation not found');
    const [row] = await this.db.select().from(schema.attestations).where(eq(schema.attestations.id, id));
    // A key that may not see the tenant gets the same answer as for a missing attestation.
    if (!row || (principal.tenants && !principal.tenants.has(row.tenantId))) throw new ServiceError(404, 'NOT_FOUND', 'attestation not found');
    return row;
  }

  async list(principal: Principal, q: { tenantId: string; windowId?: string; after?: number; limit: number }): Promise<AttestationRow[]> {
    requireScope(principal, 'read');
    requireTenant(principal, q.tenantId);
    const a = schema.attestations;
    return this.db
      .select()
      .from(a)
      .where(
        and(
          eq(a.tenantId, q.tenantId),
          q.windowId ? eq(a.billingWindowId, q.windowId) : undefined,
          q.after !== undefined ? sql`${a.cursor} > ${q.after}` : undefined,
        ),
      )
      .orderBy(a.cursor)
      .limit(q.limit);
  }
}

export type { FullBundle };
