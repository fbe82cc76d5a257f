// Plans (docs/protocol.md §5.1): what a tenant pays per billing window beyond the per-event
// charges of its tariffs: a fixed fee, and per meter the included units, reserved (committed)
// units and graduated overage tiers. Published plan versions are immutable; a plan's digest is
// sha256 over its canonical form (RFC 8785), like a tariff's.
import { z } from 'zod';
import { digestOf } from './canonical.ts';
import { CodedError } from './errors.ts';
import { ident, identInput } from './schemas.ts';
import { u64Input, u64String } from './u64.ts';

export const PLAN_TYPE = 'meterproof/plan/v1';
export const MAX_PLAN_METERS = 64;
export const MAX_OVERAGE_TIERS = 8;
/** Basis points: 10,000 = 100 %. */
export const BPS = 10_000n;
/** What happens to an event for a window that already has a live settlement: `refuse` (the
 *  default): 409 PERIOD_SETTLED; `next_period`: it is attested and the tenant's next settlement
 *  run claims it, listed there as late (docs/protocol.md §5.5). */
export const LATE_EVENT_POLICIES = ['refuse', 'next_period'] as const;
export type LateEventPolicy = (typeof LATE_EVENT_POLICIES)[number];
/** Bilateral metering under a plan: `required` makes every event of its subscribers carry a
 *  consumer PoP while the subscription is in effect (absent: the tenant's own setting decides). */
export const PLAN_POP_POLICIES = ['required', 'optional'] as const;

const bps = z.union([z.number().int().min(0).max(10_000), z.string().regex(/^(0|[1-9][0-9]{0,4})$/)]).transform((v, ctx) => {
  const n = Number(v);
  if (n > 10_000) {
    ctx.addIssue({ code: 'custom', message: 'basis points are at most 10000' });
    return z.NEVER;
  }
  return n;
});

function planSchema<U extends z.ZodType<string, unknown>>(u64: U, lenient: boolean) {
  const id = lenient ? identInput : ident;
  const withDefault = <T extends z.ZodType>(s: T, d: unknown) => (lenient ? s.default(d as never) : s);
  const tier = z.strictObject({ up_to: u64.nullable(), unit_price_micros: u64 });
  const meter = z.strictObject({
    endpoint: id,
    tariff: z.strictObject({ tariff_id: id, tariff_version: id }),
    included_units: withDefault(u64, '0'),
    reserved_units: withDefault(u64, '0'),
    reserved_unit_price_micros: withDefault(u64, '0'),
    overage_tiers: z.array(tier).min(1).max(MAX_OVERAGE_TIERS),
    contracted_uptime_bps: lenient ? bps.optional() : z.number().int().min(0).max(10_000).optional(),
  });
  return z.strictObject({
    type: lenient ? z.literal(PLAN_TYPE).default(PLAN_TYPE) : z.literal(PLAN_TYPE),
    plan_id: id,
    plan_version: id,
    currency: z.string().regex(/^[A-Z]{3}$/, 'expected an ISO 4217 currency code'),
    fixed_fee_micros: withDefault(u64, '0'),
    platform_fee_bps: lenient ? bps.default(0) : z.number().int().min(0).max(10_000),
    late_events: withDefault(z.enum(LATE_EVENT_POLICIES), 'refuse'),
    // optional, and absent unless given: the digests of plans published without it do not change
    consumer_pop: z.enum(PLAN_POP_POLICIES).optional(),
    meters: z.array(meter).min(1).max(MAX_PLAN_METERS),
  });
}

/** A plan in canonical form (every default explicit, meters sorted by endpoint). */
export const Plan = planSchema(u64String, false);
export type Plan = z.infer<typeof Plan>;
export const PlanInput = planSchema(u64Input, true);
export type PlanMeter = Plan['meters'][number];

export class PlanError extends CodedError<'PLAN_TIERS_INVALID' | 'PLAN_METERS_DUPLICATE'> {
  override readonly name = 'PlanError';
  declare readonly field: string;
}

const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Input → canonical plan. Throws the zod error of the input, or a PlanError: overage tiers not
 *  strictly increasing or not ending with an open tier, or one endpoint listed twice. */
export function normalizePlan(input: unknown): Plan {
  const p = PlanInput.parse(input);
  const meters = [...p.meters].sort((a, b) => byCodeUnits(a.endpoint, b.endpoint));
  meters.forEach((m, i) => {
    if (i > 0 && meters[i - 1]!.endpoint === m.endpoint) throw new PlanError('PLAN_METERS_DUPLICATE', `endpoint ${m.endpoint} is listed twice`, 'meters');
    checkTiers(m.overage_tiers, `meters.${m.endpoint}.overage_tiers`);
  });
  return Plan.parse({ ...p, meters });
}

function checkTiers(tiers: readonly { up_to: string | null }[], field: string): void {
  let prev = 0n;
  tiers.forEach((t, i) => {
    const last = i === tiers.length - 1;
    if (last !== (t.up_to === null)) throw new PlanError('PLAN_TIERS_INVALID', 'every overage tier but the last has up_to; the last has up_to null', field);
    if (t.up_to !== null) {
      const u = BigInt(t.up_to);
      if (u <= prev) throw new PlanError('PLAN_TIERS_INVALID', 'overage tier up_to values must be strictly increasing and above 0', field);
      prev = u;
    }
  });
}

export const planDigest = (p: Plan): string => digestOf(p);
