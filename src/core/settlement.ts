// Settlement arithmetic and the settlement statement (docs/protocol.md §5). Pure: the caller
// supplies the attested statements of one tenant and billing window (in chain order), the plan,
// the chain heads and the clock. Money is bigint micros throughout; no floats.
import { canonicalBytes, digestBytes } from './canonical.ts';
import { fromHex, toHex } from './bytes.ts';
import { CodedError } from './errors.ts';
import { CompactRange, leafHash } from './merkle.ts';
import type { Adjustment, AdjustmentKind } from './adjustment.ts';
import { BPS, type Plan, type PlanMeter, planDigest } from './plan.ts';
import { OUTCOMES, STATEMENT_TYPE_V2, type Statement, type StatementV2 } from './schemas.ts';
import { chainId } from './statement.ts';

export const SETTLEMENT_TYPE = 'meterproof/settlement/v1';
/** The transparency-log leaf of a settlement statement: {statement_digest, type}. */
export const SETTLEMENT_LEAF_TYPE = 'meterproof/log-leaf/settlement/v1';
/** The key of a settlement's leaf in the log store (attestation leaves are keyed by bare hex). */
export const SETTLEMENT_LOG_KEY_PREFIX = 'settlement:';
/** The Merkle tree over included statement digests (leaf data: the digest's 32 raw bytes). */
export const SETTLEMENT_TREE = 'rfc6962-sha256/statement-digests';

export const SETTLEMENT_ERROR_CODES = [
  'CHAIN_GAP',
  'CHAIN_BROKEN',
  'CHAIN_INCOMPLETE',
  'UNPLANNED_METER',
  'CURRENCY_MISMATCH',
  'STATEMENT_UNSUPPORTED',
  'STATEMENT_MISMATCH',
  'NOTHING_TO_SETTLE',
] as const;
export type SettlementErrorCode = (typeof SETTLEMENT_ERROR_CODES)[number];

export class SettlementError extends CodedError<SettlementErrorCode> {
  override readonly name = 'SettlementError';
}

/** ⌈a / b⌉ for a ≥ 0, b > 0. */
export function ceilDiv(a: bigint, b: bigint): bigint {
  if (a < 0n || b <= 0n) throw new RangeError('ceilDiv needs a ≥ 0 and b > 0');
  return (a + b - 1n) / b;
}

/** The platform fee: ⌈amount × bps / 10,000⌉ (never below the exact share). */
export const platformFee = (amount: bigint, bps: number): bigint => ceilDiv(amount * BigInt(bps), BPS);

export interface TierLine {
  readonly up_to: string | null;
  readonly unit_price_micros: string;
  readonly units: string;
  readonly micros: string;
}

/** Graduated pricing of `units` overage units: tier i covers overage positions
 *  [up_to_{i-1}, up_to_i) (up_to_0 = 0; the last tier is open). */
export function overageByTier(tiers: PlanMeter['overage_tiers'], units: bigint): { lines: TierLine[]; micros: bigint } {
  let from = 0n;
  let micros = 0n;
  const lines = tiers.map((t) => {
    const to = t.up_to === null ? null : BigInt(t.up_to);
    const end = to === null || units < to ? units : to;
    const inTier = end > from ? end - from : 0n;
    const m = inTier * BigInt(t.unit_price_micros);
    micros += m;
    if (to !== null) from = to;
    return { up_to: t.up_to, unit_price_micros: t.unit_price_micros, units: inTier.toString(), micros: m.toString() };
  });
  return { lines, micros };
}

/** SLA of a meter from its outcome counts: an event is up unless its outcome is `error` or
 *  `timeout`; `actual_uptime_bps = ⌊up × 10000 / events⌋` (null without events). `compliant`:
 *  actual ≥ contracted (null when the plan contracts none or there are no events). */
export function slaOf(counts: Record<Outcome, { events: bigint }>, contracted: number | undefined) {
  const events = OUTCOMES.reduce((n, o) => n + counts[o].events, 0n);
  const down = counts.error.events + counts.timeout.events;
  const actual = events === 0n ? null : Number(((events - down) * BPS) / events);
  return {
    success: counts.success.events.toString(),
    partial: counts.partial.events.toString(),
    error: counts.error.events.toString(),
    timeout: counts.timeout.events.toString(),
    contracted_uptime_bps: contracted ?? null,
    actual_uptime_bps: actual,
    compliant: contracted === undefined || actual === null ? null : actual >= contracted,
  };
}

export interface MeterCharges {
  readonly included_units: string;
  readonly included_used_units: string;
  readonly reserved_units: string;
  readonly reserved_used_units: string;
  readonly reserved_unused_units: string;
  /** reserved_units × reserved_unit_price_micros: the commitment, billed whatever the usage. */
  readonly reserved_micros: string;
  /** reserved_unused_units × reserved_unit_price_micros: the part of the commitment not used (the true-up). */
  readonly true_up_micros: string;
  readonly overage_units: string;
  readonly overage_tiers: TierLine[];
  readonly overage_micros: string;
  readonly total_micros: string;
}

/** What one meter costs for `billable` units in the window: included units first, then the
 *  reserved units, then overage by tier. */
export function meterCharges(m: PlanMeter, billable: bigint): MeterCharges {
  const included = BigInt(m.included_units);
  const reserved = BigInt(m.reserved_units);
  const price = BigInt(m.reserved_unit_price_micros);
  const includedUsed = billable < included ? billable : included;
  const afterIncluded = billable - includedUsed;
  const reservedUsed = afterIncluded < reserved ? afterIncluded : reserved;
  const overageUnits = afterIncluded - reservedUsed;
  const over = overageByTier(m.overage_tiers, overageUnits);
  const reservedMicros = reserved * price;
  return {
    included_units: included.toString(),
    included_used_units: includedUsed.toString(),
    reserved_units: reserved.toString(),
    reserved_used_units: reservedUsed.toString(),
    reserved_unused_units: (reserved - reservedUsed).toString(),
    reserved_micros: reservedMicros.toString(),
    true_up_micros: ((reserved - reservedUsed) * price).toString(),
    overage_units: overageUnits.toString(),
    overage_tiers: over.lines,
    overage_micros: over.micros.toString(),
    total_micros: (reservedMicros + over.micros).toString(),
  };
}

type Outcome = (typeof OUTCOMES)[number];
type OutcomeCounts = Record<Outcome, { events: string; units: string }>;

interface Tally {
  events: bigint;
  billableUnits: bigint;
  attested: bigint;
  outcomes: Record<Outcome, { events: bigint; units: bigint }>;
}
const newTally = (): Tally => ({ events: 0n, billableUnits: 0n, attested: 0n, outcomes: Object.fromEntries(OUTCOMES.map((o) => [o, { events: 0n, units: 0n }])) as Tally['outcomes'] });
const outcomeView = (t: Tally): OutcomeCounts => Object.fromEntries(OUTCOMES.map((o) => [o, { events: t.outcomes[o].events.toString(), units: t.outcomes[o].units.toString() }])) as OutcomeCounts;

export interface ChainRange {
  readonly id: string;
  readonly endpoint: string;
  readonly first_seq: string;
  readonly last_seq: string;
  readonly count: string;
  /** Digest of the chain's last included statement. */
  readonly last_digest: string;
}

/** A late statement (docs/protocol.md §5.5): an event of an earlier, settled window of the tenant,
 *  attested after that window was sealed under a plan whose late events go to the next period. */
export interface LateLine {
  readonly statement_digest: string;
  readonly chain_id: string;
  readonly seq: string;
  /** The window the event was attested for (its original period). */
  readonly billing_window_id: string;
  /** When it was attested. */
  readonly issued_at: string;
}

export interface AdjustmentLine {
  readonly adjustment_digest: string;
  readonly kind: AdjustmentKind;
  readonly amount_micros: string;
}

export interface SettlementStatement {
  readonly type: typeof SETTLEMENT_TYPE;
  readonly tenant_id: string;
  readonly billing_window_id: string;
  readonly plan: { readonly plan_id: string; readonly plan_version: string; readonly plan_digest: string };
  readonly currency: string;
  readonly attestations: { readonly count: string; readonly tree: typeof SETTLEMENT_TREE; readonly merkle_root: string };
  readonly chains: readonly ChainRange[];
  /** Late statements of earlier windows this settlement claims, in chain order (excluded ones too). */
  readonly late: readonly LateLine[];
  /** Statements of the chains that count for nothing (revoked attestations), in chain order. */
  readonly excluded: readonly { readonly statement_digest: string; readonly reason: string }[];
  readonly meters: readonly ({
    readonly endpoint: string;
    readonly events: string;
    readonly billable_units: string;
    /** Σ charge_micros of the meter's statements (the tariff's per-event charges; for reconciliation). */
    readonly attested_charge_micros: string;
    readonly outcomes: OutcomeCounts;
    readonly sla: ReturnType<typeof slaOf>;
  } & MeterCharges)[];
  readonly outcomes: OutcomeCounts;
  readonly fixed_fee_micros: string;
  readonly total_micros: string;
  readonly platform_fee_bps: number;
  readonly platform_fee_micros: string;
  readonly net_micros: string;
  /** Signed adjustment lines this settlement claims, by adjustment digest. */
  readonly adjustments: { readonly items: readonly AdjustmentLine[]; readonly debit_micros: string; readonly credit_micros: string };
  /** total_micros + debit_micros − credit_micros: what the tenant owes (negative: a balance in its favour). */
  readonly amount_due_micros: string;
  readonly issued_at: string;
  readonly key_id: string;
}

/** The fields of a statement the settlement reads (a v2 statement; `type` checked). */
export type SettleStatement = Statement | (Pick<StatementV2, 'tenant_id' | 'billing_window_id' | 'currency' | 'usage_units' | 'outcome' | 'charge_micros' | 'issued_at' | 'chain'> & { readonly type: string });

const byChainThenSeq = (a: { id: string; seq: bigint }, b: { id: string; seq: bigint }) => a.id > b.id || (a.id === b.id && a.seq > b.seq);

/**
 * Accumulates a settlement in one pass and O(chains + meters + late + adjustments) memory: first
 * the window's statements in chain order (by chain id, then seq; each chain's from seq 0), then
 * the late statements of earlier windows in chain order, then the adjustments by digest. Checks
 * as it goes: same tenant (and window, for the window's statements), v2 statements, the plan's
 * currency, a planned meter, contiguous seq and prev links and running totals. The Merkle root
 * over the included statement digests is built incrementally (a compact range: O(log n)).
 */
export class SettlementAccumulator {
  private readonly meterOf = new Map<string, PlanMeter>();
  private readonly lateWindows = new Set<string>();
  private readonly tallies = new Map<string, Tally>();
  private readonly all = newTally();
  private readonly tree = CompactRange.empty();
  private readonly chains: ChainRange[] = [];
  private readonly late: LateLine[] = [];
  private readonly excluded: { statement_digest: string; reason: string }[] = [];
  private readonly adjustmentLines: AdjustmentLine[] = [];
  private debit = 0n;
  private credit = 0n;
  private phase: 'window' | 'late' | 'adjustments' = 'window';
  private cur: { id: string; endpoint: string; next: bigint; prev: string | null; cumulative: bigint } | null = null;
  private lateCur: { id: string; seq: bigint; prev: string; cumulative: bigint } | null = null;

  constructor(
    readonly tenantId: string,
    readonly windowId: string,
    readonly plan: Plan,
  ) {
    for (const m of plan.meters) this.meterOf.set(chainId(tenantId, m.endpoint, windowId), m);
  }

  /** `excluded`: a statement that counts for nothing may be in another currency (revoking the
   *  statements of a window priced in two currencies is how such a window is settled). */
  private check(statementDigest: string, s: SettleStatement, excluded: string | undefined): StatementV2 {
    if (s.type !== STATEMENT_TYPE_V2) throw new SettlementError('STATEMENT_UNSUPPORTED', `statement ${statementDigest} is not a ${STATEMENT_TYPE_V2} statement`);
    if (s.tenant_id !== this.tenantId) throw new SettlementError('STATEMENT_MISMATCH', `statement ${statementDigest} is not of tenant ${this.tenantId}`);
    if (excluded === undefined && s.currency !== this.plan.currency) throw new SettlementError('CURRENCY_MISMATCH', `statement ${statementDigest} is in ${s.currency}, the plan in ${this.plan.currency}`);
    return s as StatementV2;
  }

  /** Adds the next statement of the window. `excluded` (e.g. "revoked"): the statement keeps its
   *  place in its chain (the links are checked through it) but counts for nothing: not in the
   *  totals, not in the Merkle tree; it is listed under `excluded` with the reason. */
  add(statementDigest: string, s: SettleStatement, excluded?: string): void {
    if (this.phase !== 'window') throw new RangeError('the window statements come before late statements and adjustments');
    const st = this.check(statementDigest, s, excluded);
    if (st.billing_window_id !== this.windowId) throw new SettlementError('STATEMENT_MISMATCH', `statement ${statementDigest} is not of window ${this.windowId}`);
    const seq = BigInt(st.chain.seq);
    if (!this.cur || this.cur.id !== st.chain.id) {
      if (this.cur && st.chain.id < this.cur.id) throw new RangeError('statements must come ordered by chain id, then seq');
      this.closeChain();
      const meter = this.meterOf.get(st.chain.id);
      if (!meter) throw new SettlementError('UNPLANNED_METER', `chain ${st.chain.id} is of no meter of plan ${this.plan.plan_id}@${this.plan.plan_version}`);
      this.cur = { id: st.chain.id, endpoint: meter.endpoint, next: 0n, prev: null, cumulative: 0n };
    }
    const c = this.cur;
    if (seq !== c.next) throw new SettlementError('CHAIN_GAP', `chain ${c.id}: expected seq ${c.next}, found ${seq}`);
    const billable = linkCheck(c.id, st, c.prev, c.cumulative);
    c.next = seq + 1n;
    c.prev = statementDigest;
    c.cumulative += billable;
    this.count(statementDigest, st, c.endpoint, billable, excluded);
  }

  /** Adds the next late statement (an event of an earlier, settled window, attested after it was
   *  sealed). The first late statement of a chain starts where that window's settlement ended
   *  (its prev link and running total are taken as signed); the next ones must follow it. */
  addLate(statementDigest: string, s: SettleStatement, excluded?: string): void {
    if (this.phase === 'adjustments') throw new RangeError('late statements come before adjustments');
    this.closeChain();
    this.phase = 'late';
    const st = this.check(statementDigest, s, excluded);
    if (st.billing_window_id === this.windowId) throw new SettlementError('STATEMENT_MISMATCH', `statement ${statementDigest} is of window ${this.windowId}, not late`);
    const seq = BigInt(st.chain.seq);
    const id = st.chain.id;
    const prev = this.lateCur;
    if (prev && byChainThenSeq(prev, { id, seq: seq - 1n })) throw new RangeError('late statements must come ordered by chain id, then seq');
    const meter = this.lateMeter(st.billing_window_id, id);
    if (!meter) throw new SettlementError('UNPLANNED_METER', `chain ${id} (late, window ${st.billing_window_id}) is of no meter of plan ${this.plan.plan_id}@${this.plan.plan_version}`);
    let billable: bigint;
    if (prev && prev.id === id) {
      if (seq !== prev.seq + 1n) throw new SettlementError('CHAIN_GAP', `chain ${id} (late): expected seq ${prev.seq + 1n}, found ${seq}`);
      billable = linkCheck(id, st, prev.prev, prev.cumulative);
    } else {
      billable = linkCheck(id, st, st.chain.prev, BigInt(st.chain.cumulative_units_before));
    }
    this.lateCur = { id, seq, prev: statementDigest, cumulative: BigInt(st.chain.cumulative_units_after) };
    this.late.push({ statement_digest: statementDigest, chain_id: id, seq: st.chain.seq, billing_window_id: st.billing_window_id, issued_at: st.issued_at });
    this.count(statementDigest, st, meter.endpoint, billable, excluded);
  }

  private lateMeter(windowId: string, id: string): PlanMeter | undefined {
    if (!this.lateWindows.has(windowId)) {
      this.lateWindows.add(windowId);
      for (const m of this.plan.meters) this.meterOf.set(chainId(this.tenantId, m.endpoint, windowId), m);
    }
    return this.meterOf.get(id);
  }

  private count(statementDigest: string, st: StatementV2, endpoint: string, billable: bigint, excluded: string | undefined): void {
    if (excluded !== undefined) {
      this.excluded.push({ statement_digest: statementDigest, reason: excluded });
      return;
    }
    let t = this.tallies.get(endpoint);
    if (!t) this.tallies.set(endpoint, (t = newTally()));
    const units = BigInt(st.usage_units);
    const charge = BigInt(st.charge_micros);
    for (const x of [t, this.all]) {
      x.events++;
      x.billableUnits += billable;
      x.attested += charge;
      x.outcomes[st.outcome].events++;
      x.outcomes[st.outcome].units += units;
    }
    this.tree.append(leafHash(fromHex(statementDigest.slice(7))!));
  }

  /** Adds the next adjustment (ascending adjustment digest, each once). */
  adjust(adjustmentDigest: string, a: Pick<Adjustment, 'tenant_id' | 'currency' | 'kind' | 'amount_micros'>): void {
    this.closeChain();
    this.phase = 'adjustments';
    const last = this.adjustmentLines.at(-1);
    if (last && last.adjustment_digest >= adjustmentDigest) throw new RangeError('adjustments must come ordered by digest, each once');
    if (a.tenant_id !== this.tenantId) throw new SettlementError('STATEMENT_MISMATCH', `adjustment ${adjustmentDigest} is not of tenant ${this.tenantId}`);
    if (a.currency !== this.plan.currency) throw new SettlementError('CURRENCY_MISMATCH', `adjustment ${adjustmentDigest} is in ${a.currency}, the plan in ${this.plan.currency}`);
    const amount = BigInt(a.amount_micros);
    if (a.kind === 'debit') this.debit += amount;
    else this.credit += amount;
    this.adjustmentLines.push({ adjustment_digest: adjustmentDigest, kind: a.kind, amount_micros: a.amount_micros });
  }

  private closeChain(): void {
    const c = this.cur;
    if (!c) return;
    this.chains.push({ id: c.id, endpoint: c.endpoint, first_seq: '0', last_seq: (c.next - 1n).toString(), count: c.next.toString(), last_digest: c.prev! });
    this.cur = null;
  }

  /**
   * The statement (unsigned fields filled by the caller's key and clock). `heads`: each of the
   * window's chains' length at the seal (next seq); a chain with statements below it that are
   * not given is incomplete.
   */
  finish(args: { heads: ReadonlyMap<string, bigint>; issuedAt: string; keyId: string }): SettlementStatement {
    this.closeChain();
    if (!this.chains.length) throw new SettlementError('NOTHING_TO_SETTLE', `tenant ${this.tenantId} has no attestations in window ${this.windowId}`);
    for (const c of this.chains) {
      const head = args.heads.get(c.id);
      if (head === undefined || head !== BigInt(c.count)) throw new SettlementError('CHAIN_INCOMPLETE', `chain ${c.id}: ${c.count} statements, the chain holds ${head ?? 'none'}`);
    }
    const settled = new Set(this.chains.map((c) => c.id));
    for (const id of args.heads.keys()) {
      if (!settled.has(id)) throw new SettlementError('CHAIN_INCOMPLETE', `chain ${id} of the window has no statements in the settlement`);
    }
    const meters = this.plan.meters.map((m) => {
      const t = this.tallies.get(m.endpoint) ?? newTally();
      return { endpoint: m.endpoint, events: t.events.toString(), billable_units: t.billableUnits.toString(), attested_charge_micros: t.attested.toString(), outcomes: outcomeView(t), sla: slaOf(t.outcomes, m.contracted_uptime_bps), ...meterCharges(m, t.billableUnits) };
    });
    const total = meters.reduce((s, m) => s + BigInt(m.total_micros), BigInt(this.plan.fixed_fee_micros));
    const fee = platformFee(total, this.plan.platform_fee_bps);
    return {
      type: SETTLEMENT_TYPE,
      tenant_id: this.tenantId,
      billing_window_id: this.windowId,
      plan: { plan_id: this.plan.plan_id, plan_version: this.plan.plan_version, plan_digest: planDigest(this.plan) },
      currency: this.plan.currency,
      attestations: { count: this.all.events.toString(), tree: SETTLEMENT_TREE, merkle_root: toHex(this.tree.root()) },
      chains: this.chains,
      late: this.late,
      excluded: this.excluded,
      meters,
      outcomes: outcomeView(this.all),
      fixed_fee_micros: this.plan.fixed_fee_micros,
      total_micros: total.toString(),
      platform_fee_bps: this.plan.platform_fee_bps,
      platform_fee_micros: fee.toString(),
      net_micros: (total - fee).toString(),
      adjustments: { items: this.adjustmentLines, debit_micros: this.debit.toString(), credit_micros: this.credit.toString() },
      amount_due_micros: (total + this.debit - this.credit).toString(),
      issued_at: args.issuedAt,
      key_id: args.keyId,
    };
  }
}

/** Checks a statement's prev link and running totals against the expected ones; returns its
 *  billable units (usage on success or partial). */
function linkCheck(id: string, st: StatementV2, prev: string | null, cumulative: bigint): bigint {
  const seq = st.chain.seq;
  if (st.chain.prev !== prev || BigInt(st.chain.cumulative_units_before) !== cumulative) {
    throw new SettlementError('CHAIN_BROKEN', `chain ${id}: seq ${seq} does not link to seq ${BigInt(seq) - 1n} (prev digest or running total)`);
  }
  const billable = st.outcome === 'success' || st.outcome === 'partial' ? BigInt(st.usage_units) : 0n;
  if (BigInt(st.chain.cumulative_units_after) !== cumulative + billable) throw new SettlementError('CHAIN_BROKEN', `chain ${id}: seq ${seq} has a wrong running total`);
  return billable;
}

/** The log leaf of a settlement statement (its digest, typed). */
export function settlementLeaf(settlementDigest: string): Uint8Array {
  return canonicalBytes({ statement_digest: settlementDigest, type: SETTLEMENT_LEAF_TYPE });
}

/** The content hash of a settlement statement: sha256 over its RFC 8785 bytes. */
export const settlementDigest = (s: SettlementStatement): string => digestBytes(canonicalBytes(s));

export const SETTLEMENT_STATUSES = ['pending', 'invoiced', 'disputed', 'paid', 'void'] as const;
export type SettlementStatus = (typeof SETTLEMENT_STATUSES)[number];

/** The status machine: pending → invoiced → paid; invoiced → disputed → invoiced; pending,
 *  invoiced or disputed → void. Paid and void are final. */
export const SETTLEMENT_TRANSITIONS: Readonly<Record<SettlementStatus, readonly SettlementStatus[]>> = {
  pending: ['invoiced', 'void'],
  invoiced: ['paid', 'disputed', 'void'],
  disputed: ['invoiced', 'void'],
  paid: [],
  void: [],
};

export const canTransition = (from: SettlementStatus, to: SettlementStatus): boolean => SETTLEMENT_TRANSITIONS[from].includes(to);
