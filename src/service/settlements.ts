// Settlement runs (docs/protocol.md §5): seal a tenant's billing window, claim its attestations,
// re-verify every statement signature, aggregate (src/core/settlement.ts), sign the settlement
// statement, queue it for the transparency log and store it immutably. Then its status machine.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { and, asc, desc, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import { toB64Url } from '../core/bytes.ts';
import { canonicalBytes, digestBytes, digestOf } from '../core/canonical.ts';
import type { Jwks, SigningKey } from '../core/keys.ts';
import type { CheckedStatement } from '../core/settlement-verify.ts';
import { createStatementPool } from '../verifier/statement-pool.ts';
import { leafHash } from '../core/merkle.ts';
import { ADJUSTMENT_CLAIM_PREFIX, type Adjustment, AdjustmentInput, adjustmentTerms, buildAdjustment } from '../core/adjustment.ts';
import type { LateEventPolicy, Plan } from '../core/plan.ts';
import { OUTCOMES, identInput, utcTimestamp } from '../core/schemas.ts';
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
import { type Db, type Tx, isUniqueViolation, rowsOf, schema } from '../db/index.ts';
import { describeStoreError, isStoreError } from '../db/faults.ts';
import { type Principal, maySee, requireScope, requireTenant } from './auth.ts';
import { ServiceError, invalidInput, zodIssues } from './errors.ts';
import type { KeyRing } from './keyring.ts';
import type { PlanService } from './plans.ts';
import type { TariffService } from './tariffs.ts';
import { enqueueWebhook } from './webhooks.ts';


interface Seal {
  /** The tenant's highest attestation cursor at the seal. */
  readonly cursor: number;
  /** The window's chains and their next seq at the seal. */
  readonly heads: ReadonlyMap<string, bigint>;
}

export interface AdjustmentRecord {
  readonly id: string;
  readonly adjustment: Adjustment;
  readonly adjustment_digest: string;
  readonly key_id: string;
  readonly signature: string;
  /** The settlement holding it (null until the tenant's next run claims it). */
  readonly settlement_id: string | null;
}

/** Rows per statement of the window scan, and attestations per claims insert. */
const SCAN_ROWS = 100_000;
/** The young generation (MiB) of a run's statement-check workers: the run shares the server's
 *  memory with the API (statement-pool.ts). */
const RUN_WORKER_YOUNG_GENERATION_MB = 4;
const CLAIM_ROWS = 50_000;
/** A `running` run this old whose row no transaction holds is abandoned (takeOverAbandoned):
 *  well above what a live run may take, on a slow store, from its start to its settling
 *  transaction (the seal's lock wait, the key reads, each within a statement bound: ~45 s). */
const ABANDONED_AFTER_S = 120;
/** An Idempotency-Key header: 1 to 255 visible ASCII characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** An attestation row's signed statement as the evidence holds it: {statement, key_id, signature} (JSON text). */
const SIGNED_STATEMENT_TEXT = sql`json_build_object('statement', a.bundle -> 'attestation' -> 'statement', 'key_id', a.bundle -> 'attestation' -> 'key_id', 'signature', a.bundle -> 'attestation' -> 'signature')::text`;

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

/** Settlements and SLA figures span every consumer of a tenant: a consumer-scoped key reads none. */
function refuseConsumer(p: Principal, what: string): void {
  if (p.consumer !== undefined) throw new ServiceError(403, 'CONSUMER_FORBIDDEN', `a consumer-scoped key cannot read ${what}: they cover every consumer's events`);
}
const parsed = <T>(v: unknown): T => (typeof v === 'string' ? JSON.parse(v) : v) as T;

/**
 * The ids of rows just locked FOR UPDATE SKIP LOCKED, as a jsonb array for a second statement
 * that reads them and keeps those still unclaimed. One statement is not enough under READ
 * COMMITTED: its snapshot is taken before it locks, so a run of another window that claimed a row
 * and committed in between (its lock released, so the row is no longer skipped) is not seen by
 * it; the next statement's snapshot sees that claim. Without the second look both runs would sign
 * the row into their statements, and the second run's claim would fail on the claims' primary
 * key (a 500).
 */
const lockedIds = (locked: readonly Row[]) => JSON.stringify(locked.map((r) => r['id'] as string));

export class SettlementService {
  /** Attestations per page of a run and of its evidence (memory per page, round trips per run).
   *  A 400,000-event run at 2,000 / 1,000 / 500: peak RSS ~390 / ~365 / ~335 MiB at the same CPU
   *  within noise (`npm run bench:settle -- --run-only`, interleaved runs). */
  pageSize = 500;
  /** Attestations per page of a settlement's evidence (GET /v1/settlements/{id}/evidence): its
   *  pages are written out as they come and nothing waits on worker threads, so a larger page
   *  costs little memory and saves round trips. */
  evidencePageSize = 2000;
  /** From how many statements a run checks them on worker threads (one per core). */
  parallelFrom = 20_000;

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
    requireTenant(principal, tenantId);
    await this.tariffs.requireTenant(tenantId);
    const scan = await this.scanWindow(tenantId, windowId);
    if (!scan.first) throw new ServiceError(422, 'NOTHING_TO_SETTLE', `tenant ${tenantId} has no attestations in window ${windowId}`);
    const at = scan.first;
    const plan = await this.plans.planAt(tenantId, at);
    if (!plan) throw new ServiceError(422, 'NO_SUBSCRIPTION', `tenant ${tenantId} has no subscription in effect at ${at.toISOString()} (the window's first event)`);

    await this.refuseLateClaimed(tenantId, windowId);
    const runId = randomUUID();
    const seal = await this.seal(runId, tenantId, windowId, principal.id, plan.plan.late_events, scan);
    try {
      // read before the transaction: the embedded store has one connection, which it holds
      const jwksDoc = await this.keys.jwks();
      const signing = await this.keys.signer(this.clock);
      const id = await this.db.transaction((tx) => this.settle(tx, { runId, tenantId, windowId, plan: plan.plan, actor: principal.id, jwksDoc, signing, seal }));
      return await this.read(id);
    } catch (e) {
      const coded = e instanceof SettlementError || e instanceof ServiceError;
      const code = coded ? e.code : isStoreError(e) ? 'STORE_UNAVAILABLE' : 'INTERNAL';
      // recorded as failed, so the window reopens; when the store fails that too, the next run
      // of the window takes the run over once it is ABANDONED_AFTER_S old (seal)
      await this.markFailed(runId, code, coded || !isStoreError(e) ? (e instanceof Error ? e.message : String(e)) : describeStoreError(e));
      // a settlement of another window that claimed late statements of this one while this run
      // raced it (committed after the check above) shows up as missing statements: name it
      if (e instanceof SettlementError && (e.code === 'CHAIN_INCOMPLETE' || e.code === 'CHAIN_GAP')) await this.refuseLateClaimed(tenantId, windowId);
      if (e instanceof SettlementError) throw new ServiceError(422, e.code, e.message);
      throw e;
    }
  }

  /** Records a run as failed before the answer. When the store fails that too, the answer does
   *  not wait on it: two more attempts follow in the background, and a run left `running` anyway
   *  is taken over by the window's next run (takeOverAbandoned). */
  private async markFailed(runId: string, code: string, detail: string): Promise<void> {
    const mark = () =>
      this.db
        .update(schema.settlementRuns)
        .set({ status: 'failed', errorCode: code, errorDetail: detail.slice(0, 1024), finishedAt: this.clock() })
        .where(and(eq(schema.settlementRuns.id, runId), eq(schema.settlementRuns.status, 'running')));
    try {
      await mark();
    } catch (e) {
      if (!isStoreError(e)) return; // the run's own error is the answer; the run is taken over later
      void (async () => {
        for (const ms of [500, 2_000]) {
          await new Promise((resolve) => setTimeout(resolve, ms).unref());
          if (await mark().then(() => true, () => false)) return;
        }
      })();
    }
  }

  /** A window whose late statements another settlement (not void) claimed is settled again only
   *  once that settlement is void too: the new run would have to cover those statements, which
   *  the other settlement holds. Named up front, and again when a run fails on missing
   *  statements (a settlement that claimed them while this run started, CHAIN_INCOMPLETE or
   *  CHAIN_GAP otherwise). */
  private async refuseLateClaimed(tenantId: string, windowId: string): Promise<void> {
    const holders = rowsOf<{ id: string }>(
      await this.db.execute(sql`select s.id from settlements s
        where s.tenant_id = ${tenantId} and s.status <> 'void' and s.billing_window_id <> ${windowId}
          and exists (select 1 from json_array_elements(case when json_typeof(s.statement -> 'late') = 'array' then s.statement -> 'late' else '[]'::json end) l
            where l ->> 'billing_window_id' = ${windowId})
          -- a window settled (or being settled) is SETTLEMENT_EXISTS, whatever else holds its events
          and not exists (select 1 from settlement_runs r where r.tenant_id = ${tenantId} and r.billing_window_id = ${windowId} and r.status in ('running', 'settled'))
        order by s.id`),
    ).map((r) => r.id);
    if (holders.length) {
      throw new ServiceError(409, 'LATE_EVENTS_CLAIMED', `late statements of window ${windowId} of tenant ${tenantId} are claimed by settlement ${holders.join(', ')}; void ${holders.length > 1 ? 'them' : 'it'} to settle the window again`);
    }
  }

  /**
   * One pass over the window's attestations in cursor order, in statements of SCAN_ROWS rows
   * (each well within the statement timeout): the earliest event_timestamp (whose plan the
   * window is settled under; from the event_at column, or the bundle for rows stored before it),
   * the window's chains, and the highest cursor seen.
   */
  private async scanWindow(tenantId: string, windowId: string): Promise<{ first: Date | null; chains: string[]; cursor: number }> {
    let first: Date | null = null;
    const chains = new Set<string>();
    let cursor = 0;
    for (;;) {
      const [r] = rowsOf<{ at: Date | string | null; chains: unknown; last: string | number | null; n: string | number }>(
        await this.db.execute(sql`select min(coalesce(x.event_at, (x.bundle -> 'meter_event' ->> 'event_timestamp')::timestamptz)) as at, json_agg(distinct x.chain_id) as chains, max(x.cursor) as last, count(*) as n
          from (select a.event_at, a.bundle, a.chain_id, a.cursor from attestations a
            where a.tenant_id = ${tenantId} and a.billing_window_id = ${windowId} and a.cursor > ${cursor}
            order by a.cursor limit ${SCAN_ROWS}) x`),
      );
      if (!r || Number(r.n) === 0) break;
      if (r.at && (!first || new Date(r.at) < first)) first = new Date(r.at);
      for (const c of parsed<string[]>(r.chains) ?? []) chains.add(c);
      cursor = Number(r.last);
      if (Number(r.n) < SCAN_ROWS) break;
    }
    return { first, chains: [...chains], cursor };
  }

  /**
   * Seal the window: a live run row, written under a SHARE ROW EXCLUSIVE lock on chains, with the
   * window's chain heads and the tenant's highest attestation cursor at that moment. Attest
   * statements that wrote to chains before are committed by then (the run sees them); later ones
   * wait for the lock and then see the run: they refuse the window's events (PERIOD_SETTLED), or,
   * when the plan sends late events to the next period, are attested with higher cursors (late).
   */
  private async seal(runId: string, tenantId: string, windowId: string, actor: string, lateEvents: LateEventPolicy, scan: { chains: string[]; cursor: number }, takeOver = true): Promise<Seal> {
    try {
      return await this.db.transaction(async (tx) => {
        await tx.execute(sql`lock table chains in share row exclusive mode`);
        const [c] = rowsOf<{ cursor: string | number | null }>(await tx.execute(sql`select max(cursor) as cursor from attestations where tenant_id = ${tenantId}`));
        const heads: Record<string, string> = {};
        // the window's chains: those the scan saw, and any of attestations stored since
        for (const h of rowsOf<Row>(
          await tx.execute(sql`select chain_id, next_seq from chains where chain_id in
            (select jsonb_array_elements_text(${JSON.stringify(scan.chains)}::jsonb)
             union select distinct chain_id from attestations where tenant_id = ${tenantId} and billing_window_id = ${windowId} and cursor > ${scan.cursor})
            order by chain_id`),
        )) {
          heads[h['chain_id'] as string] = String(h['next_seq']);
        }
        const cursor = Number(c?.cursor ?? 0);
        await tx.insert(schema.settlementRuns).values({ id: runId, tenantId, billingWindowId: windowId, status: 'running', actor, lateEvents, sealedCursor: cursor, sealedHeads: heads });
        return { cursor, heads: new Map(Object.entries(heads).map(([k, v]) => [k, BigInt(v)])) };
      });
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      if (takeOver && (await this.takeOverAbandoned(tenantId, windowId))) return this.seal(runId, tenantId, windowId, actor, lateEvents, scan, false);
      const s = schema.settlementRuns;
      const [live] = await this.db.select().from(s).where(and(eq(s.tenantId, tenantId), eq(s.billingWindowId, windowId), sql`${s.status} in ('running', 'settled')`));
      throw new ServiceError(409, 'SETTLEMENT_EXISTS', live?.status === 'settled' ? `window ${windowId} of tenant ${tenantId} is settled (settlement ${live.settlementId}); void it to settle again` : `window ${windowId} of tenant ${tenantId} is being settled by another run`);
    }
  }

  /**
   * A run that holds the window (`running`) but whose process died, or lost the store before it
   * could record its failure, would hold it for ever: it is taken over — recorded failed,
   * ABANDONED — when no transaction holds its row (a live run locks it for its whole settling
   * transaction, see settle) and it began more than ABANDONED_AFTER_S seconds ago (past the
   * moment between its seal and that transaction). True when one was taken over.
   */
  private async takeOverAbandoned(tenantId: string, windowId: string): Promise<boolean> {
    const taken = rowsOf(
      await this.db.execute(sql`update settlement_runs set status = 'failed', error_code = 'ABANDONED', finished_at = now(),
          error_detail = 'taken over by a later run: its process stopped, or lost the store, before it finished'
        where id in (select id from settlement_runs where tenant_id = ${tenantId} and billing_window_id = ${windowId} and status = 'running'
          and started_at < now() - make_interval(secs => ${ABANDONED_AFTER_S}) for update skip locked)
        returning id`),
    );
    return taken.length > 0;
  }

  /**
   * The run, streamed: the window's attestations chain by chain in pages (keyset on seq, locked
   * FOR UPDATE SKIP LOCKED: a row another transaction holds is skipped and shows up as a gap, so
   * the run fails rather than settle a part), each page re-verified and added to the accumulator
   * and then dropped; then the tenant's late attestations (of settled windows whose plan sends
   * late events to the next period) and its unclaimed adjustments. Claims are written at the end,
   * range by range: the claims' primary key refuses an attestation a live settlement holds.
   */
  private async settle(
    tx: Tx,
    args: { runId: string; tenantId: string; windowId: string; plan: Plan; actor: string; jwksDoc: Jwks; signing: { key: SigningKey; issuedAt: Date }; seal: Seal },
  ): Promise<string> {
    const { runId, tenantId, windowId, plan, actor, seal } = args;
    const PAGE = this.pageSize;
    // the run's row stays locked while it settles: what tells a live run from an abandoned one
    const [own] = rowsOf<{ status: string }>(await tx.execute(sql`select status from settlement_runs where id = ${runId} for update`));
    if (own?.status !== 'running') throw new ServiceError(409, 'SETTLEMENT_EXISTS', `this run of window ${windowId} stalled and was taken over by a later one`);
    const revoked = await this.revocations(tx);
    const acc = new SettlementAccumulator(tenantId, windowId, plan);
    // the statements' checks (parse, canonical bytes, digest, Ed25519) on worker threads for a
    // large window, while the next page is read; the results are added in order
    const events = [...seal.heads.values()].reduce((a, b) => a + b, 0n);
    const pool = createStatementPool(args.jwksDoc, events >= BigInt(this.parallelFrom) ? os.availableParallelism() : 0, { youngGenerationMb: RUN_WORKER_YOUNG_GENERATION_MB });
    // a page in flight keeps only its digests: its statement texts (most of its memory) are
    // copied to a worker and dropped here at once, so they die young instead of being promoted
    // to the old generation while the page waits its turn (peak RSS)
    const inflight: { digests: string[]; late: boolean; checked: Promise<CheckedStatement[]> }[] = [];
    const consume = (digests: string[], checked: CheckedStatement[], late: boolean) => {
      digests.forEach((stored, i) => {
        const c = checked[i]!;
        if (c.failure) throw new ServiceError(422, 'SIGNATURE_INVALID', `attestation ${stored}: ${c.failure.code}: ${c.failure.message}`);
        if (c.digest !== stored) throw new ServiceError(422, 'STATEMENT_DIGEST_MISMATCH', `attestation ${stored}: the stored statement does not hash to its digest`);
        const revokedFrom = revoked.keys.get(c.statement.key_id);
        if (revokedFrom && Date.parse(c.statement.issued_at) >= revokedFrom.getTime()) throw new ServiceError(422, 'KEY_REVOKED', `attestation ${stored}: signed by key ${c.statement.key_id} after its revocation`);
        const reason = revoked.attestations.get(stored);
        const why = reason === undefined ? undefined : `revoked: ${reason}`;
        if (late) acc.addLate(stored, c.statement, why);
        else acc.add(stored, c.statement, why);
      });
    };
    const submit = (rows: Row[], late: boolean) =>
      inflight.push({ digests: rows.map((r) => r['statement_digest'] as string), late, checked: pool.check(rows.map((r) => r['attestation'] as string), 0, true) });
    const drain = async (max: number) => {
      while (inflight.length > max) {
        const x = inflight.shift()!;
        consume(x.digests, await x.checked, x.late);
      }
    };
    let late: Row[];
    try {
      // pages are seq ranges [lo, lo + PAGE) of each chain below its sealed length: bounded
      // index range scans whatever the planner's statistics (a missing row is a gap)
      for (const [chain, head] of seal.heads) {
        for (let lo = 0n; lo < head; lo += BigInt(PAGE)) {
          const hi = lo + BigInt(PAGE) < head ? lo + BigInt(PAGE) : head;
          const rows = rowsOf<Row>(
            await tx.execute(sql`select a.statement_digest, (a.bundle -> 'attestation')::text as attestation
              from attestations a
              where a.chain_id = ${chain} and a.seq >= ${lo.toString()}::bigint and a.seq < ${hi.toString()}::bigint and a.cursor <= ${seal.cursor}
                and not exists (select 1 from settlement_claims c where c.attestation_id = a.id)
              order by a.seq
              for update of a skip locked`),
          );
          submit(rows, false);
          await drain(2 * Math.max(pool.threads, 1));
        }
      }
      // late: few by nature, locked in one statement and read in another (see lockedIds)
      const lateIds = rowsOf<Row>(
        await tx.execute(sql`select a.id
          from settlement_runs r join attestations a
            on a.tenant_id = r.tenant_id and a.billing_window_id = r.billing_window_id and a.cursor > r.sealed_cursor
          where r.tenant_id = ${tenantId} and r.status = 'settled' and r.late_events = 'next_period' and r.billing_window_id <> ${windowId}
            and not exists (select 1 from settlement_claims c where c.attestation_id = a.id)
          for update of a skip locked`),
      );
      late = rowsOf<Row>(
        await tx.execute(sql`select a.id, a.statement_digest, (a.bundle -> 'attestation')::text as attestation from attestations a
          where a.id in (select jsonb_array_elements_text(${lockedIds(lateIds)}::jsonb))
            and not exists (select 1 from settlement_claims c where c.attestation_id = a.id)
          order by a.chain_id, a.seq`),
      );
      submit(late, true);
      // the claims need only their ids
      late = late.map((r) => ({ id: r['id'] }));
      await drain(0);
    } finally {
      await Promise.allSettled(inflight.map((x) => x.checked));
      await pool.close();
    }
    // those in the plan's currency (one in another waits for a settlement in its currency), locked
    // in one statement and read in another (lockedIds)
    const adjustmentIds = rowsOf<Row>(
      await tx.execute(sql`select a.id from settlement_adjustments a
        where a.tenant_id = ${tenantId} and a.adjustment ->> 'currency' = ${plan.currency}
          and not exists (select 1 from settlement_claims c where c.attestation_id = ${ADJUSTMENT_CLAIM_PREFIX} || a.id)
        for update of a skip locked`),
    );
    const adjustments = rowsOf<Row>(
      await tx.execute(sql`select a.id, a.adjustment_digest, a.adjustment from settlement_adjustments a
        where a.id in (select jsonb_array_elements_text(${lockedIds(adjustmentIds)}::jsonb))
          and not exists (select 1 from settlement_claims c where c.attestation_id = ${ADJUSTMENT_CLAIM_PREFIX} || a.id)
        order by a.id`),
    );
    for (const row of adjustments) acc.adjust(row['adjustment_digest'] as string, parsed<Adjustment>(row['adjustment']));

    const { key, issuedAt } = args.signing;
    const statement = acc.finish({ heads: seal.heads, issuedAt: issuedAt.toISOString(), keyId: key.keyId });
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
    // one live settlement per attestation and adjustment: the claims' primary key refuses a second
    // in ranges of CLAIM_ROWS statements (each insert well within the statement timeout)
    for (const c of statement.chains) {
      for (let lo = 0n; lo <= BigInt(c.last_seq); lo += BigInt(CLAIM_ROWS)) {
        const hi = lo + BigInt(CLAIM_ROWS) - 1n < BigInt(c.last_seq) ? lo + BigInt(CLAIM_ROWS) - 1n : BigInt(c.last_seq);
        await tx.execute(sql`insert into settlement_claims (attestation_id, settlement_id)
          select a.id, ${id} from attestations a where a.chain_id = ${c.id} and a.seq between ${lo.toString()}::bigint and ${hi.toString()}::bigint`);
      }
    }
    const others = JSON.stringify([...late!.map((r) => r['id'] as string), ...adjustments.map((r) => `${ADJUSTMENT_CLAIM_PREFIX}${r['id'] as string}`)]);
    await tx.execute(sql`insert into settlement_claims (attestation_id, settlement_id) select jsonb_array_elements_text(${others}::jsonb), ${id}`);
    await tx.insert(schema.logQueue).values({ attestationId: settlementLogKey(id), leafHash: leafHash(settlementLeaf(digest)) });
    await tx.update(schema.settlementRuns).set({ status: 'settled', settlementId: id, finishedAt: this.clock() }).where(eq(schema.settlementRuns.id, runId));
    return id;
  }

  /** POST /v1/settlements/adjustments: a signed credit or debit line for the tenant's next
   *  settlement run, naming the tenant's attestations it corrects and why. */
  async adjust(principal: Principal, body: unknown, idempotencyKey?: string): Promise<AdjustmentRecord & { replayed: boolean }> {
    requireScope(principal, 'admin');
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new ServiceError(400, 'INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1 to 255 visible ASCII characters');
    }
    const r = AdjustmentInput.safeParse(body);
    if (!r.success) throw invalidInput(r.error, 'INVALID_ADJUSTMENT', 'expected {tenant_id, kind: credit | debit, amount_micros, currency, attestation_ids, reason}', '');
    const input = r.data;
    requireTenant(principal, input.tenant_id);
    await this.tariffs.requireTenant(input.tenant_id);
    // A retry (same key, same terms) is answered with the adjustment its first attempt signed,
    // whatever changed since; the key with other terms is a conflict.
    const terms = adjustmentTerms(input);
    const requestDigest = idempotencyKey === undefined ? undefined : digestOf(terms);
    const replay = async () => {
      if (idempotencyKey === undefined) return null;
      const t = schema.settlementAdjustments;
      const [row] = await this.db.select({ id: t.id, requestDigest: t.requestDigest }).from(t).where(and(eq(t.tenantId, input.tenant_id), eq(t.idempotencyKey, idempotencyKey)));
      if (!row) return null;
      if (row.requestDigest !== requestDigest) {
        throw new ServiceError(409, 'IDEMPOTENCY_CONFLICT', `Idempotency-Key ${JSON.stringify(idempotencyKey)} was used for another adjustment of tenant ${input.tenant_id}`);
      }
      return { ...(await this.adjustment(principal, row.id)), replayed: true };
    };
    const earlier = await replay();
    if (earlier) return earlier;
    // in a currency the tenant is billed in (a typo would otherwise wait for a settlement forever)
    const currencies = new Set<string>();
    for (const sub of await this.plans.subscriptions(input.tenant_id)) {
      const p = await this.plans.get(sub.plan_id, sub.plan_version);
      if (p) currencies.add(p.plan.currency);
    }
    if (currencies.size && !currencies.has(input.currency)) {
      throw new ServiceError(422, 'CURRENCY_MISMATCH', `tenant ${input.tenant_id} is billed in ${[...currencies].sort().join(', ')}, not ${input.currency} (its plans' currencies)`);
    }
    const ids = JSON.stringify(terms.attestation_ids.map((d) => d.slice('sha256:'.length)));
    const found = rowsOf<{ id: string }>(
      await this.db.execute(sql`select a.id from attestations a where a.tenant_id = ${input.tenant_id} and a.id in (select jsonb_array_elements_text(${ids}::jsonb))`),
    );
    const known = new Set(found.map((f) => f.id));
    const missing = (JSON.parse(ids) as string[]).filter((id) => !known.has(id));
    if (missing.length) throw new ServiceError(422, 'ADJUSTMENT_ATTESTATION_UNKNOWN', `tenant ${input.tenant_id} has no attestation sha256:${missing[0]}${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`);
    // Stored unless a row holds its key (a concurrent retry stored first: answered with that
    // row) or its id (the same terms signed in the same millisecond by another request without
    // this key: signed again, a moment later, with another issue time).
    for (let attempt = 1; ; attempt++) {
      const { key, issuedAt } = await this.keys.signer(this.clock);
      const adjustment = buildAdjustment(terms, key.keyId, issuedAt.toISOString());
      const bytes = canonicalBytes(adjustment);
      const digest = digestBytes(bytes);
      const id = digest.slice('sha256:'.length);
      const signature = toB64Url(key.sign(bytes));
      const inserted = await this.db
        .insert(schema.settlementAdjustments)
        .values({ id, tenantId: input.tenant_id, adjustmentDigest: digest, adjustment, keyId: key.keyId, signature, ...(idempotencyKey === undefined ? {} : { idempotencyKey, requestDigest }) })
        .onConflictDoNothing()
        .returning({ id: schema.settlementAdjustments.id });
      if (inserted.length) return { ...(await this.adjustment(principal, id)), replayed: false };
      const first = await replay();
      if (first) return first;
      if (attempt >= 3) throw new ServiceError(503, 'STORE_UNAVAILABLE', 'the adjustment could not be stored under a fresh id; retry');
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  /** GET /v1/settlements/adjustments/{id}: the signed adjustment and the settlement holding it. */
  async adjustment(principal: Principal, id: string): Promise<AdjustmentRecord> {
    requireScope(principal, 'read');
    const t = schema.settlementAdjustments;
    const [row] = /^[0-9a-f]{64}$/.test(id) ? await this.db.select().from(t).where(eq(t.id, id)) : [];
    if (!row || principal.consumer !== undefined || !maySee(principal, row.tenantId)) throw new ServiceError(404, 'NOT_FOUND', 'adjustment not found');
    const [claim] = await this.db.select().from(schema.settlementClaims).where(eq(schema.settlementClaims.attestationId, `${ADJUSTMENT_CLAIM_PREFIX}${id}`));
    return { id, adjustment: parsed<Adjustment>(row.adjustment), adjustment_digest: row.adjustmentDigest, key_id: row.keyId, signature: row.signature, settlement_id: claim?.settlementId ?? null };
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
    // a consumer-scoped key sees none: a settlement covers every consumer's events (its evidence
    // holds their statements), as a settlement evidence pack does
    if (!rec || principal.consumer !== undefined || !maySee(principal, rec.statement.tenant_id)) throw new ServiceError(404, 'NOT_FOUND', 'settlement not found');
    return rec;
  }

  async list(principal: Principal, tenantId: string): Promise<{ id: string; billing_window_id: string; status: string; total_micros: string; created_at: string }[]> {
    requireScope(principal, 'read');
    requireTenant(principal, tenantId);
    refuseConsumer(principal, "a tenant's settlements");
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
      // outside the key's tenant allowlist: not found, as for reading it
      if (!row || !maySee(principal, row.tenantId)) throw new ServiceError(404, 'NOT_FOUND', 'settlement not found');
      const from = row.status as SettlementStatus;
      if (!canTransition(from, to)) throw new ServiceError(409, 'ILLEGAL_TRANSITION', `${/^[aeiou]/.test(from) ? 'an' : 'a'} ${from} settlement cannot become ${to}`);
      const now = this.clock();
      await tx.update(s).set({ status: to, statusChangedAt: now }).where(eq(s.id, id));
      await tx.insert(schema.settlementStatusChanges).values({ settlementId: id, fromStatus: from, toStatus: to, actor: principal.id, reason: r.data.reason ?? null, changedAt: now });
      await enqueueWebhook(tx, 'settlement.status_changed', row.tenantId, { settlement_id: id, from, to, actor: principal.id, changed_at: now.toISOString(), settlement_url: `/v1/settlements/${id}` }, now);
      if (to === 'void') {
        // in batches (each statement within the statement timeout: a window may hold millions)
        for (;;) {
          const gone = rowsOf<{ n: string | number }>(
            await tx.execute(sql`with d as (delete from settlement_claims where attestation_id in
              (select attestation_id from settlement_claims where settlement_id = ${id} limit ${CLAIM_ROWS}) returning 1)
              select count(*) as n from d`),
          );
          if (Number(gone[0]?.n ?? 0) < CLAIM_ROWS) break;
        }
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
    refuseConsumer(principal, "a tenant's SLA figures");
    if (Date.parse(start) >= Date.parse(end)) throw new ServiceError(400, 'INVALID_QUERY', 'start must be before end');
    const rows = rowsOf<{ endpoint: string; outcome: Outcome; n: string | number }>(
      await this.db.execute(sql`select bundle -> 'meter_event' ->> 'endpoint' as endpoint, bundle -> 'meter_event' ->> 'outcome' as outcome, count(*) as n
        from attestations where tenant_id = ${tenantId}
          and coalesce(event_at, (bundle -> 'meter_event' ->> 'event_timestamp')::timestamptz) >= ${start}::timestamptz
          and coalesce(event_at, (bundle -> 'meter_event' ->> 'event_timestamp')::timestamptz) < ${end}::timestamptz
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
   *  the signed statement, the plan, the signed adjustments it claims and every attested
   *  statement it covers (excluded ones too): the window's chain by chain, then the late ones.
   *  The statements are an async iterable read in pages (JSON text, one per statement), so the
   *  evidence of a large window is streamed. The receipt is added by the caller (the log). */
  async evidence(principal: Principal, id: string): Promise<{ record: SettlementRecord; plan: Plan; adjustments: unknown[]; attestations: AsyncIterable<string> }> {
    const record = await this.get(principal, id);
    const st = record.statement;
    const plan = await this.plans.get(st.plan.plan_id, st.plan.plan_version);
    if (!plan) throw new Error(`plan ${st.plan.plan_id}@${st.plan.plan_version} of settlement ${id} is missing`);
    const adjustments = await this.signedAdjustments(st);
    const db = this.db;
    const PAGE = this.evidencePageSize;
    async function* attestations(): AsyncIterable<string> {
      for (const c of st.chains) {
        for (let lo = 0n; lo <= BigInt(c.last_seq); lo += BigInt(PAGE)) {
          const rows = rowsOf<Row>(
            await db.execute(sql`select ${SIGNED_STATEMENT_TEXT} as t from attestations a where a.chain_id = ${c.id} and a.seq >= ${lo.toString()}::bigint and a.seq < ${(lo + BigInt(PAGE)).toString()}::bigint and a.seq <= ${c.last_seq}::bigint order by a.seq`),
          );
          for (const r of rows) yield r['t'] as string;
        }
      }
      const late = st.late ?? [];
      for (let i = 0; i < late.length; i += PAGE) {
        const ids = JSON.stringify(late.slice(i, i + PAGE).map((l) => l.statement_digest.slice('sha256:'.length)));
        const rows = rowsOf<Row>(await db.execute(sql`select ${SIGNED_STATEMENT_TEXT} as t from attestations a where a.id in (select jsonb_array_elements_text(${ids}::jsonb)) order by a.chain_id, a.seq`));
        for (const r of rows) yield r['t'] as string;
      }
    }
    return { record, plan: plan.plan, adjustments, attestations: attestations() };
  }

  /** The signed adjustments a settlement statement claims ({adjustment, key_id, signature}), by digest. */
  async signedAdjustments(st: SettlementStatement): Promise<unknown[]> {
    const ids = JSON.stringify((st.adjustments?.items ?? []).map((x) => x.adjustment_digest.slice('sha256:'.length)));
    return rowsOf<Row>(
      await this.db.execute(sql`select adjustment, key_id, signature from settlement_adjustments where id in (select jsonb_array_elements_text(${ids}::jsonb)) order by id`),
    ).map((r) => ({ adjustment: parsed(r['adjustment']), key_id: r['key_id'], signature: r['signature'] }));
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
