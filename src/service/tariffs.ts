// Tenants and published tariff versions. Published versions are immutable: publishing the same
// id and version again with other content is a conflict; with the same content it is a replay.
import { and, eq, isNull } from 'drizzle-orm';
import { randomSalt, saltedTariffDigest } from '../core/binding-v2.ts';
import { ZodError, z } from 'zod';
import { normalizeTariff } from '../core/attest.ts';
import { digestOf } from '../core/canonical.ts';
import { ChargeError } from '../core/errors.ts';
import { identInput, type TariffSnapshot } from '../core/schemas.ts';
import { type Db, schema } from '../db/index.ts';
import { ServiceError, chargeProblem, invalidInput } from './errors.ts';
import { ReadCache } from './read-cache.ts';

export interface PublishedTariff {
  readonly snapshot: TariffSnapshot;
  /** bn128-poseidon8-v1: the unsalted digest and commitment. */
  readonly tariffDigest: string;
  readonly tariffCommitment: string;
  /** Whether the v1 commitment is in the trust material (versions published before v2 only). */
  readonly v1Public: boolean;
  /** bn128-poseidon8-v2: the version's salt, its salted digest and commitment. */
  readonly salt: bigint;
  readonly tariffDigestV2: string;
  readonly tariffCommitmentV2: string;
  readonly createdAt: Date;
}

export interface TariffCommitmentFns {
  readonly v1: (t: TariffSnapshot) => Promise<bigint>;
  readonly v2: (t: TariffSnapshot, salt: bigint) => Promise<bigint>;
}

type Row = typeof schema.tariffs.$inferSelect;

/** POST /v1/admin/tenants: an identifier and an optional display name (default: the id). */
const TenantInput = z.strictObject({ id: identInput, name: z.string().max(256).optional() });

export class TariffService {
  private readonly cache = new Map<string, PublishedTariff>();
  /** Tenants known to exist (an unknown one is read again every time). */
  private readonly tenants = new ReadCache<string, boolean>({ ttlMs: 60_000, keep: (exists) => exists });
  private readonly missing = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly commit: TariffCommitmentFns,
  ) {}

  /** The v2 columns of a new version: a fresh salt, the salted digest and commitment. */
  private async v2Columns(snapshot: TariffSnapshot) {
    const salt = randomSalt();
    return { salt: salt.toString(), tariffDigestV2: saltedTariffDigest(snapshot, salt), tariffCommitmentV2: (await this.commit.v2(snapshot, salt)).toString() };
  }

  /** A version published before bn128-poseidon8-v2 gets its salt on first use, once: whoever
   *  fills it first wins, everyone reads the stored one. */
  private async withSalt(row: Row): Promise<PublishedTariff> {
    if (row.salt === null || row.tariffDigestV2 === null || row.tariffCommitmentV2 === null) {
      const t = schema.tariffs;
      const where = and(eq(t.tariffId, row.tariffId), eq(t.tariffVersion, row.tariffVersion));
      await this.db.update(t).set(await this.v2Columns(row.snapshot as TariffSnapshot)).where(and(where, isNull(t.salt)));
      [row] = (await this.db.select().from(t).where(where)) as [Row];
    }
    return {
      snapshot: row.snapshot as TariffSnapshot,
      tariffDigest: row.tariffDigest,
      tariffCommitment: row.tariffCommitment,
      v1Public: row.v1Public,
      salt: BigInt(row.salt!),
      tariffDigestV2: row.tariffDigestV2!,
      tariffCommitmentV2: row.tariffCommitmentV2!,
      createdAt: row.createdAt,
    };
  }

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
    const p = await this.withSalt(row);
    this.cache.set(k, p);
    return p;
  }

  async list(): Promise<PublishedTariff[]> {
    const rows = await this.db.select().from(schema.tariffs).orderBy(schema.tariffs.tariffId, schema.tariffs.createdAt);
    const out: PublishedTariff[] = [];
    for (const row of rows) out.push(await this.withSalt(row));
    return out;
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
    const pinned = await this.pinned(snapshot, digest);
    if (pinned.tariff.tariffDigest !== digest) throw new ServiceError(409, 'TARIFF_VERSION_EXISTS', `${snapshot.tariff_id}@${snapshot.tariff_version} is published with other content; publish a new version`);
    return pinned;
  }

  /** Publish a normalized snapshot (digest: its unsalted digest) unless its id and version are
   *  published already; returns the stored version, which differs from `snapshot` when another
   *  request published other content under the same id and version first. */
  private async pinned(snapshot: TariffSnapshot, digest: string): Promise<{ created: boolean; tariff: PublishedTariff }> {
    const commitment = (await this.commit.v1(snapshot)).toString();
    const v2 = await this.v2Columns(snapshot);
    const inserted = await this.db
      .insert(schema.tariffs)
      .values({ tariffId: snapshot.tariff_id, tariffVersion: snapshot.tariff_version, snapshot, tariffDigest: digest, tariffCommitment: commitment, ...v2 })
      .onConflictDoNothing()
      .returning({ id: schema.tariffs.tariffId });
    return { created: inserted.length > 0, tariff: (await this.get(snapshot.tariff_id, snapshot.tariff_version, { fresh: true }))! };
  }

  async createTenant(body: unknown): Promise<{ created: boolean; tenant: ReturnType<typeof tenantView> }> {
    // strict: a misspelt or mistyped member is named, not dropped
    const r = TenantInput.safeParse(body);
    if (!r.success) throw invalidInput(r.error, 'INVALID_TENANT', 'expected {id, name?}', '');
    const { id, name = id } = r.data;
    const rows = await this.db.insert(schema.tenants).values({ id, name }).onConflictDoNothing().returning();
    const [row] = rows.length ? rows : await this.db.select().from(schema.tenants).where(eq(schema.tenants.id, id));
    // known here at once (a requireTenant read in flight from before the insert is not joined)
    this.tenants.set(id, true);
    return { created: rows.length > 0, tenant: tenantView(row!) };
  }

  async listTenants() {
    const rows = await this.db.select().from(schema.tenants).orderBy(schema.tenants.id);
    return rows.map(tenantView);
  }

  async getTenant(id: string) {
    const [row] = await this.db.select().from(schema.tenants).where(eq(schema.tenants.id, id));
    if (!row) throw new ServiceError(404, 'NOT_FOUND', 'tenant not found');
    return tenantView(row);
  }

  /** The tenant must exist before events are attested for it. Positive answers cached for a minute. */
  async requireTenant(id: string, opts: { status?: 404 | 422 } = {}): Promise<void> {
    const exists = await this.tenants.get(id, async () => (await this.db.select({ id: schema.tenants.id }).from(schema.tenants).where(eq(schema.tenants.id, id))).length > 0);
    if (!exists) throw new ServiceError(opts.status ?? 422, 'TENANT_UNKNOWN', `tenant ${id} does not exist; create it with POST /v1/admin/tenants`);
  }
}

/** A tenant as the admin API shows it, with its proof policy (`rate` only under `sampled`). */
export function tenantView(r: typeof schema.tenants.$inferSelect) {
  return {
    id: r.id,
    name: r.name,
    created_at: r.createdAt.toISOString(),
    proof_policy: {
      policy: r.proofPolicy,
      ...(r.proofPolicy === 'sampled' ? { rate: r.proofSampleRate } : {}),
      updated_at: r.proofPolicyUpdatedAt?.toISOString() ?? null,
    },
  };
}
