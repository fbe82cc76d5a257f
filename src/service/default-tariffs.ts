// A tenant's default tariff per meter: what an attest request that names no tariff is priced with
// (CloudEvents structured and batched mode send bare events). A meter key is a CloudEvents `type`,
// an endpoint, or `*`; the request's own keys are tried in that order (resolveOrder).
import { and, eq } from 'drizzle-orm';
import { identInput } from '../core/schemas.ts';
import { type Db, schema } from '../db/index.ts';
import { ServiceError } from './errors.ts';
import { ReadCache } from './read-cache.ts';
import type { PublishedTariff, TariffService } from './tariffs.ts';

export const ANY_METER = '*';
/** How long a tenant's defaults are cached: a change takes effect within this bound. */
export const DEFAULTS_TTL_MS = 5_000;

export interface DefaultTariffView {
  readonly meter: string;
  readonly tariff_id: string;
  readonly tariff_version: string;
  readonly updated_at: string;
}

/** The meter keys tried for an event, most specific first, without repeats. */
export function resolveOrder(keys: { type?: string | undefined; endpoint: string }): string[] {
  return [...new Set([keys.type, keys.endpoint, ANY_METER].filter((k): k is string => typeof k === 'string'))];
}

export class DefaultTariffs {
  /** Per tenant: its defaults by meter. */
  private readonly cache: ReadCache<string, Map<string, { id: string; version: string }>>;

  constructor(
    private readonly db: Db,
    private readonly tariffs: TariffService,
    now: () => number = Date.now,
  ) {
    this.cache = new ReadCache({ ttlMs: DEFAULTS_TTL_MS, now });
  }

  /** Sets (or replaces) the default of one meter; the version must be published. */
  async set(tenantId: string, meter: string, body: unknown): Promise<{ created: boolean; item: DefaultTariffView }> {
    const m = meter === ANY_METER ? ANY_METER : identInput.safeParse(meter).data;
    if (m === undefined) throw new ServiceError(400, 'INVALID_METER', 'a meter is a CloudEvents type, an endpoint or *, at most 256 characters, NFC');
    const b = body as Record<string, unknown> | null;
    if (!b || typeof b !== 'object' || Array.isArray(b) || typeof b['tariff_id'] !== 'string' || typeof b['tariff_version'] !== 'string' || Object.keys(b).length !== 2) {
      throw new ServiceError(400, 'INVALID_TARIFF_REF', 'expected {tariff_id, tariff_version}', [{ path: '', message: 'expected {tariff_id, tariff_version}' }]);
    }
    await this.tariffs.requireTenant(tenantId, { status: 404 });
    const published = await this.tariffs.get(b['tariff_id'], b['tariff_version'], { fresh: true });
    if (!published) throw new ServiceError(422, 'TARIFF_NOT_PUBLISHED', `tariff ${b['tariff_id']}@${b['tariff_version']} is not published`);
    const t = schema.defaultTariffs;
    const values = { tenantId, meter: m, tariffId: published.snapshot.tariff_id, tariffVersion: published.snapshot.tariff_version, updatedAt: new Date() };
    const before = await this.db.select({ m: t.meter }).from(t).where(and(eq(t.tenantId, tenantId), eq(t.meter, m)));
    const [row] = await this.db
      .insert(t)
      .values(values)
      .onConflictDoUpdate({ target: [t.tenantId, t.meter], set: { tariffId: values.tariffId, tariffVersion: values.tariffVersion, updatedAt: values.updatedAt } })
      .returning();
    this.cache.invalidate(tenantId);
    return { created: before.length === 0, item: view(row!) };
  }

  async list(tenantId: string): Promise<DefaultTariffView[]> {
    await this.tariffs.requireTenant(tenantId, { status: 404 });
    const t = schema.defaultTariffs;
    return (await this.db.select().from(t).where(eq(t.tenantId, tenantId)).orderBy(t.meter)).map(view);
  }

  async remove(tenantId: string, meter: string): Promise<void> {
    const t = schema.defaultTariffs;
    const gone = await this.db.delete(t).where(and(eq(t.tenantId, tenantId), eq(t.meter, meter))).returning({ m: t.meter });
    this.cache.invalidate(tenantId);
    if (!gone.length) throw new ServiceError(404, 'NOT_FOUND', `tenant ${tenantId} has no default tariff for meter ${meter}`);
  }

  /** The published tariff for the first of `meters` that has a default, or null. */
  async resolve(tenantId: string, meters: readonly string[]): Promise<PublishedTariff | null> {
    const t = schema.defaultTariffs;
    const byMeter = await this.cache.get(tenantId, async () => new Map((await this.db.select().from(t).where(eq(t.tenantId, tenantId))).map((r) => [r.meter, { id: r.tariffId, version: r.tariffVersion }])));
    for (const m of meters) {
      const ref = byMeter.get(m);
      if (ref) return this.tariffs.get(ref.id, ref.version);
    }
    return null;
  }
}

function view(r: typeof schema.defaultTariffs.$inferSelect): DefaultTariffView {
  return { meter: r.meter, tariff_id: r.tariffId, tariff_version: r.tariffVersion, updated_at: r.updatedAt.toISOString() };
}
