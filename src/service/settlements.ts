// Settlement runs (docs/protocol.md §5): seal a tenant's billing window, claim its attestations,
// re-verify every statement signature, aggregate (src/core/settlement.ts), sign the settlement
// statement, queue it for the transparency log and store it immutably. Then its status machine.
import { randomUUID } from 'node:crypto';
import { and, asc, desc, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import { toB64Url } from '../core/bytes.ts';
import { canonicalBytes, digestBytes } from '../core/canonical.ts';
import { type PublicJwk, type SigningKey, verifyBytes } from '../core/keys.ts';
import { leafHash } from '../core/merkle.ts';
import type { Plan } from '../core/plan.ts';
import { OUTCOMES, identInput, type Statement, utcTimestamp } from '../core/schemas.ts';
import {
  SETTLEMENT_LOG_KEY_PREFIX,
  SETTLEMENT_STATUSES,
  SettlementAccumulator,
  SettlementError,
  type SettlementStatement,
  type SettlementStatus,
  canTransition,
  slaOf,
  settlementLeaf,
} from '../core/settlement.ts';
import { keyValidAt } from '../core/verify.ts';
import { type Db, type Tx, isUniqueViolation, rowsOf, schema } from '../db/index.ts';
import { type Principal, requireScope, requireTenant } from './auth.ts';
import { ServiceError, zodIssues } from './errors.ts';
import type { KeyRing } from './keyring.ts';
import type { PlanService } from './plans.ts';
import type { TariffService } from './tariffs.ts';
import { enqueueWebhook } from './webhooks.ts';

const RunInput = z.strictObject({ tenant_id: identInput, billing_window_id: identInput });
const SlaQuery = z.strictObject({ tenant_id: identInput, start: utcTimestamp, end: utcTimestamp });
const zeroCounts = () => Object.fromEntries(OUTCOMES.map((o) => [o, { events: 0n }])) as Record<Outcome, { events: bigint }>;
type Outcome = (typeof OUTCOMES)[number];
const StatusInput = z.strictObject({ status: z.enum(SETTLEMENT_STATUSES), reason: z.string().min(1).max(1024).optional() });

/** The log_leaves / log_queue key of a settlement's leaf (attestation ids are bare hex). */
export const settlementLogKey = (id: string) => `${SETTLEMENT_LOG_KEY_PREFIX}${id}`;

export interface SettlementRecord {
  readonly id: string;
  readonly status: SettlementStatus;
  readonly statusChangedAt: Date;
  readonly statement: SettlementStatement;
  readonly statementDigest: string;
  readonly keyId: string;
  readonly signature: string;
  readonly runId: string;
  readonly logIndex: number | null;
  readonly history: readonly { from: string | null; to: string; actor: string; reason: string | null; at: string }[];
}

type Row = Record<string, unknown>;
const parsed = <T>(v: unknown): T => (typeof v === 'string' ? JSON.parse(v) : v) as T;

export class SettlementService {
  constructor(
    private readonly db: Db,
    private readonly keys: KeyRing,
    private readonly plans: PlanService,
    private readonly tariffs: TariffService,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** POST /v1/settlements: one run for a tenant's billing window. */
  async run(principal: Principal, body: unknown): Promise<SettlementRecord> {
    requireScope(principal, 'admin');
    const r = RunInput.safeParse(body);
    if (!r.success) throw new ServiceError(400, 'INVALID_SETTLEMENT_REQUEST', 'expected {tenant_id, billing_window_id}', zodIssues(r.error, ''));
    const { tenant_id: tenantId, billing_window_id: windowId } = r.data;
    await this.tariffs.requireTenant(tenantId);
    const a = schema.attestations;
    const [first] = rowsOf<{ at: Date | string | null }>(
      await this.db.execute(sql`select min(((${a.bundle} -> 'meter_event' ->> 'event_timestamp'))::timestamptz) as at from ${a} where ${a.tenantId} = ${tenantId} and ${a.billingWindowId} = ${windowId}`),
    );
    if (!first?.at) throw new ServiceError(422, 'NOTHING_TO_SETTLE', `tenant ${tenantId} has no attestations in window ${windowId}`);
    const at = new Date(first.at);
    const plan = await this.plans.planAt(tenantId, at);
    if (!plan) throw new ServiceError(422, 'NO_SUBSCRIPTION', `tenant ${tenantId} has no subscription in effect at ${at.toISOString()} (the window's first event)`);

    const runId = randomUUID();
    await this.seal(runId, tenantId, windowId, principal.id);
    try {
      // read before the transaction: the embedded store has one connection, which it holds
      const jwks = new Map((await this.keys.jwks()).keys.map((k) => [k.kid, k] as const));
      const signing = await this.keys.signer(this.clock);
      const id = await this.db.transaction((tx) => this.settle(tx, { runId, tenantId, windowId, plan: plan.plan, actor: principal.id, jwks, signing }));
      return await this.read(id);
    } catch (e) {
      const coded = e instanceof SettlementError || e instanceof ServiceError;
      await this.db
        .update(schema.settlementRuns)
        .set({ status: 'failed', errorCode: coded ? e.code : 'INTERNAL', errorDetail: e instanceof Error ? e.message.slice(0, 1024) : String(e), finishedAt: this.clock() })
        .where(eq(schema.settlementRuns.id, runId));
      if (e instanceof SettlementError) throw new ServiceError(422, e.code, e.message);
      throw e;
    }
  }

  /**
   * Seal the window: a live run row, written under a SHARE ROW EXCLUSIVE lock on chains. Attest
   * statements that wrote to chains before are committed by then (the run sees them); later
   * ones wait for the lock and then see the run, and refuse the window's events (PERIOD_SETTLED).
   */
  private async seal(runId: string, tenantId: string, windowId: string, actor: string): Promise<void> {
    try {
      await this.db.transaction(async (tx) => {
        await tx.execute(sql`lock table chains in share row exclusive mode`);
        await tx.insert(schema.settlementRuns).values({ id: runId, tenantId, billingWindowId: windowId, status: 'running', actor });
      });
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      const s = schema.settlementRuns;
      const [live] = await this.db.select().from(s).where(and(eq(s.tenantId, tenantId), eq(s.billingWindowId, windowId), sql`${s.status} in ('running', 'settled')`));
      throw new ServiceError(409, 'SETTLEMENT_EXISTS', live?.status === 'settled' ? `window ${windowId} of tenant ${tenantId} is settled (settlement ${live.settlementId}); void it to settle again` : `window ${windowId} of tenant ${tenantId} is being settled by another run`);
    }
  }

  private async settle(
    tx: Tx,
    args: { runId: string; tenantId: string; windowId: string; plan: Plan; actor: string; jwks: ReadonlyMap<string, PublicJwk>; signing: { key: SigningKey; issuedAt: Date } },
  ): Promise<string> {
    const { runId, tenantId, windowId, plan, actor, jwks } = args;
    // claim: every unclaimed attestation of the window, in chain order; rows another transaction
    // holds are skipped (and then show up as a gap: the run fails rather than settle a part)
    const rows = rowsOf<Row>(
      await tx.execute(sql`select a.id, a.statement_digest, a.bundle -> 'attestation' as attestation
        from attestations a
        where a.tenant_id = ${tenantId} and a.billing_window_id = ${windowId}
          and not exists (select 1 from settlement_claims c where c.attestation_id = a.id)
        order by a.chain_id, a.seq
        for update of a skip locked`),
    );
    const heads = new Map<string, bigint>();
    for (const h of rowsOf<Row>(
      await tx.execute(sql`select chain_id, next_seq from chains where chain_id in
        (select distinct chain_id from attestations where tenant_id = ${tenantId} and billing_window_id = ${windowId})`),
    )) {
      heads.set(h['chain_id'] as string, BigInt(h['next_seq'] as string | number));
    }
    const revoked = await this.revocations(tx);

    const acc = new SettlementAccumulator(tenantId, windowId, plan);
    for (const row of rows) {
      const att = parsed<{ statement: Statement; key_id: string; signature: string }>(row['attestation']);
      const digest = row['statement_digest'] as string;
      checkSignature(att, digest, jwks, revoked.keys);
      const reason = revoked.attestations.get(digest);
      acc.add(digest, att.statement, reason === undefined ? undefined : `revoked: ${reason}`);
    }
    const { key, issuedAt } = args.signing;
    const statement = acc.finish({ heads, issuedAt: issuedAt.toISOString(), keyId: key.keyId });
    const bytes = canonicalBytes(statement);
    const digest = digestBytes(bytes);
    const id = digest.slice('sha256:'.length);
    const signature = toB64Url(key.sign(bytes));
    await tx.insert(schema.settlements).values({
      id,
      runId,
      tenantId,
      billingWindowId: windowId,
      planId: plan.plan_id,
      planVersion: plan.plan_version,
      planDigest: statement.plan.plan_digest,
      statementDigest: digest,
      statement,
      keyId: key.keyId,
      signature,
      totalMicros: statement.total_micros,
      status: 'pending',
      statusChangedAt: issuedAt,
    });
    await tx.insert(schema.settlementStatusChanges).values({ settlementId: id, fromStatus: null, toStatus: 'pending', actor, changedAt: issuedAt });
    // one live settlement per attestation: the claims' primary key refuses a second
    const ids = JSON.stringify(rows.map((r) => r['id'] as string));
    await tx.execute(sql`insert into settlement_claims (attestation_id, settlement_id) select jsonb_array_elements_text(${ids}::jsonb), ${id}`);
    await tx.insert(schema.logQueue).values({ attestationId: settlementLogKey(id), leafHash: leafHash(settlementLeaf(digest)) });
    await tx.update(schema.settlementRuns).set({ status: 'settled', settlementId: id, finishedAt: this.clock() }).where(eq(schema.settlementRuns.id, runId));
    return id;
  }

  private async revocations(tx: Tx): Promise<{ keys: Map<string, Date>; attestations: Map<string, string> }> {
    const keys = new Map<string, Date>();
    const attestations = new Map<string, string>();
    for (const r of await tx.select().from(schema.revocations)) {
      if (r.kind === 'key') keys.set(r.subject, r.effectiveAt);
      else attestations.set(r.subject, r.reason);
    }
    return { keys, attestations };
  }

  async get(principal: Principal, id: string): Promise<SettlementRecord> {
    requireScope(principal, 'read');
    if (!/^[0-9a-f]{64}$/.test(id)) throw new ServiceError(404, 'NOT_FOUND', 'settlement not found');
    const rec = await this.readOrNull(id);
    if (!rec || (principal.tenants && !principal.tenants.has(rec.statement.tenant_id))) throw new ServiceError(404, 'NOT_FOUND', 'settlement not found');
    return rec;
  }

  async list(principal: Principal, tenantId: string): Promise<{ id: string; billing_window_id: string; status: string; total_micros: string; created_at: string }[]> {
    requireScope(principal, 'read');
    requireTenant(principal, tenantId);
    const s = schema.settlements;
    const rows = await this.db.select({ id: s.id, w: s.billingWindowId, status: s.status, total: s.totalMicros, at: s.createdAt }).from(s).where(eq(s.tenantId, tenantId)).orderBy(desc(s.createdAt)).limit(500);
    return rows.map((r) => ({ id: r.id, billing_window_id: r.w, status: r.status, total_micros: r.total, created_at: r.at.toISOString() }));
  }

  /** PATCH /v1/settlements/{id}/status. Voiding releases the claims and unseals the window. */
  async setStatus(principal: Principal, id: string, body: unknown): Promise<SettlementRecord> {
    requireScope(principal, 'admin');
    const r = StatusInput.safeParse(body);
    if (!r.success) throw new ServiceError(400, 'INVALID_STATUS', `expected {status: ${SETTLEMENT_STATUSES.join(' | ')}, reason?}`, zodIssues(r.error, ''));
    if (!/^[0-9a-f]{64}$/.test(id)) throw new ServiceError(404, 'NOT_FOUND', 'settlement not found');
    const to = r.data.status;
    await this.db.transaction(async (tx) => {
      const s = schema.settlements;
      const [row] = await tx.select({ status: s.status, runId: s.runId, tenantId: s.tenantId }).from(s).where(eq(s.id, id)).for('update');
      if (!row) throw new ServiceError(404, 'NOT_FOUND', 'settlement not found');
      const from = row.status as SettlementStatus;
      if (!canTransition(from, to)) throw new ServiceError(409, 'ILLEGAL_TRANSITION', `a ${from} settlement cannot become ${to}`);
      const now = this.clock();
      await tx.update(s).set({ status: to, statusChangedAt: now }).where(eq(s.id, id));
      await tx.insert(schema.settlementStatusChanges).values({ settlementId: id, fromStatus: from, toStatus: to, actor: principal.id, reason: r.data.reason ?? null, changedAt: now });
      await enqueueWebhook(tx, 'settlement.status_changed', row.tenantId, { settlement_id: id, from, to, actor: principal.id, changed_at: now.toISOString(), settlement_url: `/v1/settlements/${id}` }, now);
      if (to === 'void') {
        await tx.delete(schema.settlementClaims).where(eq(schema.settlementClaims.settlementId, id));
        await tx.update(schema.settlementRuns).set({ status: 'voided' }).where(eq(schema.settlementRuns.id, row.runId));
      }
    });
    return this.read(id);
  }

  /** GET /v1/sla: per meter, outcome counts and actual vs contracted uptime (basis points) of the
   *  tenant's events with start ≤ event_timestamp < end, against the plan in effect at start. */
  async sla(principal: Principal, query: unknown) {
    requireScope(principal, 'read');
    const r = SlaQuery.safeParse(query);
    if (!r.success) throw new ServiceError(400, 'INVALID_QUERY', 'expected ?tenant_id=&start=&end= (RFC 3339 UTC, start < end)', zodIssues(r.error, ''));
    const { tenant_id: tenantId, start, end } = r.data;
    requireTenant(principal, tenantId);
    if (Date.parse(start) >= Date.parse(end)) throw new ServiceError(400, 'INVALID_QUERY', 'start must be before end');
    const rows = rowsOf<{ endpoint: string; outcome: Outcome; n: string | number }>(
      await this.db.execute(sql`select bundle -> 'meter_event' ->> 'endpoint' as endpoint, bundle -> 'meter_event' ->> 'outcome' as outcome, count(*) as n
        from attestations where tenant_id = ${tenantId}
          and (bundle -> 'meter_event' ->> 'event_timestamp')::timestamptz >= ${start}::timestamptz
          and (bundle -> 'meter_event' ->> 'event_timestamp')::timestamptz < ${end}::timestamptz
        group by 1, 2`),
    );
    const plan = await this.plans.planAt(tenantId, new Date(start));
    const counts = new Map<string, Record<Outcome, { events: bigint }>>();
    for (const m of plan?.plan.meters ?? []) counts.set(m.endpoint, zeroCounts());
    for (const row of rows) {
      let c = counts.get(row.endpoint);
      if (!c) counts.set(row.endpoint, (c = zeroCounts()));
      c[row.outcome].events += BigInt(row.n);
    }
    const meters = [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([endpoint, c]) => ({ endpoint, ...slaOf(c, plan?.plan.meters.find((m) => m.endpoint === endpoint)?.contracted_uptime_bps) }));
    const judged = meters.filter((m) => m.compliant !== null);
    return {
      tenant_id: tenantId,
      start,
      end,
      plan: plan ? { plan_id: plan.plan.plan_id, plan_version: plan.plan.plan_version, plan_digest: plan.planDigest } : null,
      overall_compliant: judged.length ? judged.every((m) => m.compliant) : null,
      meters,
    };
  }

  /** The evidence an outside verifier recomputes the settlement from (docs/protocol.md §5.6):
   *  the signed statement, the plan and every attested statement of the chain ranges it lists,
   *  excluded ones included, in chain order. The receipt is added by the caller (the log). */
  async evidence(principal: Principal, id: string): Promise<{ record: SettlementRecord; plan: Plan; attestations: unknown[] }> {
    const record = await this.get(principal, id);
    const st = record.statement;
    const plan = await this.plans.get(st.plan.plan_id, st.plan.plan_version);
    if (!plan) throw new Error(`plan ${st.plan.plan_id}@${st.plan.plan_version} of settlement ${id} is missing`);
    const ranges = JSON.stringify(st.chains.map((c) => ({ id: c.id, last: c.last_seq })));
    const rows = rowsOf<Row>(
      await this.db.execute(sql`select a.bundle -> 'attestation' as attestation from attestations a
        join jsonb_to_recordset(${ranges}::jsonb) as r(id text, last bigint) on a.chain_id = r.id and a.seq <= r.last
        order by a.chain_id, a.seq`),
    );
    const attestations = rows.map((r) => {
      const a = parsed<{ statement: unknown; key_id: string; signature: string }>(r['attestation']);
      return { statement: a.statement, key_id: a.key_id, signature: a.signature };
    });
    return { record, plan: plan.plan, attestations };
  }

  private async read(id: string): Promise<SettlementRecord> {
    const rec = await this.readOrNull(id);
    if (!rec) throw new ServiceError(404, 'NOT_FOUND', 'settlement not found');
    return rec;
  }

  private async readOrNull(id: string): Promise<SettlementRecord | null> {
    const s = schema.settlements;
    const [row] = await this.db.select().from(s).where(eq(s.id, id));
    if (!row) return null;
    const [leaf] = await this.db.select({ idx: schema.logLeaves.idx }).from(schema.logLeaves).where(eq(schema.logLeaves.attestationId, settlementLogKey(id)));
    const c = schema.settlementStatusChanges;
    const history = await this.db.select().from(c).where(eq(c.settlementId, id)).orderBy(asc(c.id));
    return {
      id,
      status: row.status as SettlementStatus,
      statusChangedAt: row.statusChangedAt,
      statement: parsed<SettlementStatement>(row.statement),
      statementDigest: row.statementDigest,
      keyId: row.keyId,
      signature: row.signature,
      runId: row.runId,
      logIndex: leaf?.idx ?? null,
      history: history.map((h) => ({ from: h.fromStatus, to: h.toStatus, actor: h.actor, reason: h.reason, at: h.changedAt.toISOString() })),
    };
  }
}

/** Re-verify one attestation: its statement's bytes hash to the stored digest, and its signature
 *  is valid under a published key valid (and not revoked) at the statement's issue time. */
function checkSignature(att: { statement: Statement; key_id: string; signature: string }, digest: string, jwks: ReadonlyMap<string, PublicJwk>, revokedKeys: ReadonlyMap<string, Date>): void {
  const bytes = canonicalBytes(att.statement);
  if (digestBytes(bytes) !== digest) throw new ServiceError(422, 'STATEMENT_DIGEST_MISMATCH', `attestation ${digest}: the stored statement does not hash to its digest`);
  const jwk = jwks.get(att.key_id);
  if (!jwk || att.statement.key_id !== att.key_id || !keyValidAt(jwk, att.statement.issued_at) || !verifyBytes(jwk, bytes, att.signature)) {
    throw new ServiceError(422, 'SIGNATURE_INVALID', `attestation ${digest}: the statement signature does not verify`);
  }
  const revokedFrom = revokedKeys.get(att.key_id);
  if (revokedFrom && Date.parse(att.statement.issued_at) >= revokedFrom.getTime()) throw new ServiceError(422, 'KEY_REVOKED', `attestation ${digest}: signed by key ${att.key_id} after its revocation`);
}
