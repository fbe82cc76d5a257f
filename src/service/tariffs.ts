// Tenants and published tariff versions. Published versions are immutable: publishing the same
// id and version again with other content is a conflict; with the same content it is a replay.
import { and, eq } from 'drizzle-orm';
import { ZodError } from 'zod';
import { normalizeTariff } from '../core/attest.ts';
import { digestOf } from '../core/canonical.ts';
import { ChargeError } from '../core/errors.ts';
import { identInput, type TariffSnapshot } from '../core/schemas.ts';
import { type Db, isUniqueViolation, schema } from '../db/index.ts';
import { ServiceError, chargeProblem, invalidInput } from './errors.ts';

export interface PublishedTariff {
  readonly snapshot: TariffSnapshot;
  readonly tariffDigest: string;
  readonly tariffCommitment: string;
  readonly createdAt: Date;
}

export type TariffCommitmentFn = (t: TariffSnapshot) => Promise<bigint>;

export class TariffService {
  private readonly cache = new Map<string, PublishedTariff>();
  private readonly tenantCache = new Map<string, number>();
  private readonly missing = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly commit: TariffCommitmentFn,
  ) {}

  /** A published version. Found versions are cached forever (immutable); "not published" for a
   *  few seconds — safe because the attest write re-checks inline tariffs in SQL. */
  async get(id: string, version: string, opts: { fresh?: boolean } = {}): Promise<PublishedTariff | null> {
    const k = `${id}\u0000${version}`;
    const hit = this.cache.get(k);
    if (hit) return hit;
    const miss = this.missing.get(k);
    if (!opts.fresh && miss && Date.now() - miss < 5000) return null;
    const t = schema.tariffs;
    const [row] = await this.db.select().from(t).where(and(eq(t.tariffId, id), eq(t.tariffVersion, version)));
    if (!row) {
      if (this.missing.size > 10_000) this.missing.clear();
      this.missing.set(k, Date.now());
      return null;
    }
    this.missing.delete(k);
    const p = { snapshot: row.snapshot as TariffSnapshot, tariffDigest: row.tariffDigest, tariffCommitment: row.tariffCommitment, createdAt: row.createdAt };
    this.cache.set(k, p);
    return p;
  }

  async list(): Promise<PublishedTariff[]> {
    const rows = await this.db.select().from(schema.tariffs).orderBy(schema.tariffs.tariffId, schema.tariffs.createdAt);
    return rows.map((row) => ({ snapshot: row.snapshot as TariffSnapshot, tariffDigest: row.tariffDigest, tariffCommitment: row.tariffCommitment, createdAt: row.createdAt }));
  }

  async publish(body: unknown): Promise<{ created: boolean; tariff: PublishedTariff }> {
    let snapshot: TariffSnapshot;
    try {
      snapshot = normalizeTariff(body);
    } catch (e) {
      if (e instanceof ZodError) throw invalidInput(e, 'INVALID_TARIFF', 'tariff is not valid', '');
      if (e instanceof ChargeError) throw chargeProblem(e, 'tariff');
      throw e;
    }
    const digest = digestOf(snapshot);
    const existing = await this.get(snapshot.tariff_id, snapshot.tariff_version, { fresh: true });
    if (existing) {
      if (existing.tariffDigest !== digest) throw new ServiceError(409, 'TARIFF_VERSION_EXISTS', `${snapshot.tariff_id}@${snapshot.tariff_version} is published with other content; publish a new version`);
      return { created: false, tariff: existing };
    }
    const commitment = (await this.commit(snapshot)).toString();
    try {
      await this.db.insert(schema.tariffs).values({ tariffId: snapshot.tariff_id, tariffVersion: snapshot.tariff_version, snapshot, tariffDigest: digest, tariffCommitment: commitment });
    } catch (e) {
      if (isUniqueViolation(e)) return this.publish(body);
      throw e;
    }
    return { created: true, tariff: (await this.get(snapshot.tariff_id, snapshot.tariff_version, { fresh: true }))! };
  }

  async createTenant(body: unknown): Promise<{ created: boolean; tenant: { id: string; name: string; created_at: string } }> {
    const b = body as { id?: unknown; name?: unknown } | null;
    const id = identInput.safeParse(b?.id);
    const name = typeof b?.name === 'string' && b.name.length <= 256 ? b.name : id.success ? id.data : '';
    if (!id.success && b && typeof b === 'object' && typeof b.id === 'string') {
      const refusal = invalidInput(id.error, 'INVALID_TENANT', 'expected {id, name?}', 'id');
      if (refusal.code === 'NOT_NFC') throw refusal;
    }
    if (!b || typeof b !== 'object' || !id.success || Object.keys(b).some((k) => k !== 'id' && k !== 'name')) {
      throw new ServiceError(400, 'INVALID_TENANT', 'expected {id, name?}', [{ path: 'id', message: 'a non-empty identifier of at most 256 characters' }]);
    }
    const rows = await this.db.insert(schema.tenants).values({ id: id.data, name }).onConflictDoNothing().returning();
    const [row] = rows.length ? rows : await this.db.select().from(schema.tenants).where(eq(schema.tenants.id, id.data));
    return { created: rows.length > 0, tenant: { id: row!.id, name: row!.name, created_at: row!.createdAt.toISOString() } };
  }

  async listTenants() {
    const rows = await this.db.select().from(schema.tenants).orderBy(schema.tenants.id);
    return rows.map((r) => ({ id: r.id, name: r.name, created_at: r.createdAt.toISOString() }));
  }

  /** The tenant must exist before events are attested for it. Positive answers cached for a minute. */
  async requireTenant(id: string): Promise<void> {
    const at = this.tenantCache.get(id);
    if (at && Date.now() - at < 60_000) return;
    const [row] = await this.db.select({ id: schema.tenants.id }).from(schema.tenants).where(eq(schema.tenants.id, id));
    if (!row) throw new ServiceError(422, 'TENANT_UNKNOWN', `tenant ${id} does not exist; create it with POST /v1/admin/tenants`);
    this.tenantCache.set(id, Date.now());
  }
}
