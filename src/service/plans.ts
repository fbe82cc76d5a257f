// Published plan versions and subscriptions (docs/protocol.md §5.1). A plan version is immutable
// once published (same id and version with other content: 409; the same content: a replay). A
// subscription binds a tenant to a plan version from a time on.
import { and, eq } from 'drizzle-orm';
import { ZodError, z } from 'zod';
import { normalizePlan, type Plan, PlanError, planDigest } from '../core/plan.ts';
import { identInput, utcTimestamp } from '../core/schemas.ts';
import { type Db, schema } from '../db/index.ts';
import { ServiceError, invalidInput } from './errors.ts';
import { ReadCache } from './read-cache.ts';
import type { PublishedTariff, TariffService } from './tariffs.ts';

export interface PublishedPlan {
  readonly plan: Plan;
  readonly planDigest: string;
  readonly createdAt: Date;
}

export interface Subscription {
  readonly tenant_id: string;
  readonly plan_id: string;
  readonly plan_version: string;
  readonly effective_from: string;
}

const SubscriptionInput = z.strictObject({ tenant_id: identInput, plan_id: identInput, plan_version: identInput, effective_from: utcTimestamp });

/** How long a tenant's subscriptions are cached per process (one written here applies at once;
 *  one written by another process within this). */
export const SUBSCRIPTIONS_CACHE_MS = 1000;

export class PlanService {
  private readonly cache = new Map<string, PublishedPlan>();
  /** Per tenant: its subscriptions by effective_from. */
  private readonly schedules = new ReadCache<string, Subscription[]>({ ttlMs: SUBSCRIPTIONS_CACHE_MS });

  constructor(
    private readonly db: Db,
    private readonly tariffs: TariffService,
  ) {}

  async publish(body: unknown): Promise<{ created: boolean; plan: PublishedPlan }> {
    let plan: Plan;
    try {
      plan = normalizePlan(body);
    } catch (e) {
      if (e instanceof ZodError) throw invalidInput(e, 'INVALID_PLAN', 'plan is not valid', '');
      if (e instanceof PlanError) throw new ServiceError(400, e.code, e.message, [{ path: e.field, message: e.message }]);
      throw e;
    }
    // every meter's tariff is a published version in the plan's currency
    for (const m of plan.meters) {
      const t = await this.tariffs.get(m.tariff.tariff_id, m.tariff.tariff_version, { fresh: true });
      if (!t) throw new ServiceError(422, 'TARIFF_NOT_PUBLISHED', `tariff ${m.tariff.tariff_id}@${m.tariff.tariff_version} of meter ${m.endpoint} is not published`);
      if (t.snapshot.currency !== plan.currency) throw new ServiceError(422, 'CURRENCY_MISMATCH', `tariff ${m.tariff.tariff_id}@${m.tariff.tariff_version} is in ${t.snapshot.currency}, the plan in ${plan.currency}`);
    }
    const digest = planDigest(plan);
    const inserted = await this.db
      .insert(schema.plans)
      .values({ planId: plan.plan_id, planVersion: plan.plan_version, plan, planDigest: digest })
      .onConflictDoNothing()
      .returning({ id: schema.plans.planId });
    const stored = (await this.get(plan.plan_id, plan.plan_version))!;
    if (stored.planDigest !== digest) throw new ServiceError(409, 'PLAN_VERSION_EXISTS', `${plan.plan_id}@${plan.plan_version} is published with other content; publish a new version`);
    return { created: inserted.length > 0, plan: stored };
  }

  /** A published version (cached forever once found: immutable). */
  async get(id: string, version: string): Promise<PublishedPlan | null> {
    const k = `${id}\u0000${version}`;
    const hit = this.cache.get(k);
    if (hit) return hit;
    const p = schema.plans;
    const [row] = await this.db.select().from(p).where(and(eq(p.planId, id), eq(p.planVersion, version)));
    if (!row) return null;
    const out = { plan: row.plan as Plan, planDigest: row.planDigest, createdAt: row.createdAt };
    this.cache.set(k, out);
    return out;
  }

  async list(): Promise<PublishedPlan[]> {
    const rows = await this.db.select().from(schema.plans).orderBy(schema.plans.planId, schema.plans.createdAt);
    return rows.map((row) => ({ plan: row.plan as Plan, planDigest: row.planDigest, createdAt: row.createdAt }));
  }

  async subscribe(body: unknown): Promise<{ created: boolean; subscription: Subscription }> {
    const r = SubscriptionInput.safeParse(body);
    if (!r.success) throw invalidInput(r.error, 'INVALID_SUBSCRIPTION', 'expected {tenant_id, plan_id, plan_version, effective_from}', '');
    const b = r.data;
    await this.tariffs.requireTenant(b.tenant_id);
    if (!(await this.get(b.plan_id, b.plan_version))) throw new ServiceError(422, 'PLAN_NOT_PUBLISHED', `plan ${b.plan_id}@${b.plan_version} is not published`);
    const s = schema.subscriptions;
    const from = new Date(b.effective_from);
    const inserted = await this.db.insert(s).values({ tenantId: b.tenant_id, effectiveFrom: from, planId: b.plan_id, planVersion: b.plan_version }).onConflictDoNothing().returning({ id: s.tenantId });
    const [row] = await this.db.select().from(s).where(and(eq(s.tenantId, b.tenant_id), eq(s.effectiveFrom, from)));
    if (row!.planId !== b.plan_id || row!.planVersion !== b.plan_version) {
      throw new ServiceError(409, 'SUBSCRIPTION_EXISTS', `tenant ${b.tenant_id} already has a subscription from ${from.toISOString()}, to ${row!.planId}@${row!.planVersion}`);
    }
    this.schedules.invalidate(b.tenant_id);
    return { created: inserted.length > 0, subscription: subscriptionView(row!) };
  }

  /** A tenant's subscriptions, oldest first. `cached`: a read at most SUBSCRIPTIONS_CACHE_MS old
   *  will do (the attest path); otherwise read now. */
  async subscriptions(tenantId: string, opts: { cached?: boolean } = {}): Promise<readonly Subscription[]> {
    const s = schema.subscriptions;
    const read = async () => (await this.db.select().from(s).where(eq(s.tenantId, tenantId)).orderBy(s.effectiveFrom)).map(subscriptionView);
    // uncached (a settlement run, the admin API): read now, joining no read in flight
    return opts.cached ? this.schedules.get(tenantId, read) : this.schedules.fresh(tenantId, read);
  }

  /** The plan version in effect for a tenant at a time: its latest subscription from at or before
   *  it (from the cached subscriptions when `cached`). */
  async planAt(tenantId: string, at: Date, opts: { cached?: boolean } = {}): Promise<PublishedPlan | null> {
    const rows = await this.subscriptions(tenantId, opts);
    const t = at.getTime();
    const row = rows.findLast((r) => Date.parse(r.effective_from) <= t);
    return row ? this.get(row.plan_id, row.plan_version) : null;
  }

  /**
   * The windows in which a subscription to a plan with `consumer_pop: "required"` makes every
   * statement of its tenant carry a PoP, as the trust material states them: from the later of its
   * effective_from and its creation (a subscription written with a past date does not condemn
   * bundles issued before it existed), plus the SUBSCRIPTIONS_CACHE_MS within which every process
   * enforces it, until the next subscription takes over.
   */
  async popRequirements(): Promise<{ tenant_id: string; since: string; until?: string }[]> {
    const s = schema.subscriptions;
    const rows = await this.db.select().from(s).orderBy(s.tenantId, s.effectiveFrom);
    const out: { tenant_id: string; since: string; until?: string }[] = [];
    const takesOver = (r: (typeof rows)[number]) => Math.max(r.effectiveFrom.getTime(), r.createdAt.getTime());
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const plan = await this.get(r.planId, r.planVersion);
      if (plan?.plan.consumer_pop !== 'required') continue;
      const next = rows[i + 1]?.tenantId === r.tenantId ? rows[i + 1] : undefined;
      const since = takesOver(r) + SUBSCRIPTIONS_CACHE_MS;
      const until = next ? takesOver(next) : undefined;
      if (until !== undefined && until <= since) continue;
      out.push({ tenant_id: r.tenantId, since: new Date(since).toISOString(), ...(until !== undefined ? { until: new Date(until).toISOString() } : {}) });
    }
    return out;
  }

  /** The tariff of a tenant's meter at a time, from its subscription (attest without a tariff). */
  async tariffFor(tenantId: string, endpoint: string, at: Date, opts: { cached?: boolean } = {}): Promise<PublishedTariff> {
    const p = await this.planAt(tenantId, at, opts);
    if (!p && !(await this.subscriptions(tenantId, opts)).length) throw new ServiceError(400, 'TARIFF_REQUIRED', 'send tariff_snapshot or tariff: {tariff_id, tariff_version}, or subscribe the tenant to a plan');
    if (!p) throw new ServiceError(422, 'NO_SUBSCRIPTION', `tenant ${tenantId} has no subscription in effect at ${at.toISOString()}; name a tariff or subscribe the tenant to a plan`);
    const m = p.plan.meters.find((x) => x.endpoint === endpoint);
    if (!m) throw new ServiceError(422, 'METER_NOT_IN_PLAN', `plan ${p.plan.plan_id}@${p.plan.plan_version} has no meter ${endpoint}`);
    const t = await this.tariffs.get(m.tariff.tariff_id, m.tariff.tariff_version);
    if (!t) throw new ServiceError(422, 'TARIFF_NOT_PUBLISHED', `tariff ${m.tariff.tariff_id}@${m.tariff.tariff_version} is not published`);
    return t;
  }
}

const subscriptionView = (r: typeof schema.subscriptions.$inferSelect): Subscription => ({ tenant_id: r.tenantId, plan_id: r.planId, plan_version: r.planVersion, effective_from: r.effectiveFrom.toISOString() });

export const planView = (p: PublishedPlan) => ({ plan: p.plan, plan_digest: p.planDigest, published_at: p.createdAt.toISOString() });
