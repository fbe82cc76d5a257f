// Bilateral metering, the registry side: consumers of a tenant and their Ed25519 keys (register,
// rotate, revoke), each tenant's PoP requirement, the consumers' part of the trust material, and
// countersignatures. The attest path's PoP check is src/service/pop.ts.
import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import { z } from 'zod';
import { countersignatureMessage, keyValidAt } from '../core/bilateral.ts';
import { fromB64Url } from '../core/bytes.ts';
import { jwkThumbprint, type PublicJwk, verifyObject } from '../core/keys.ts';
import { COUNTERSIGNATURE_TYPE, type Countersignature, type FullBundle, identInput, utcTimestamp } from '../core/schemas.ts';
import type { ConsumerKeys, TrustMaterial } from '../core/trust.ts';
import { type Db, schema } from '../db/index.ts';
import { type Principal, requireScope } from './auth.ts';
import { ServiceError, invalidInput } from './errors.ts';
import type { ProblemCode } from './problem-codes.ts';

/** The default bound on |now − timestamp| of a PoP (and on a countersignature's lead): 300 s. */
/** How long a tenant's PoP requirement is cached per process (a change applies within it). */
export const POLICY_CACHE_MS = 1000;
export const DEFAULT_POP_TOLERANCE_MS = 300_000;

/** An Ed25519 public key as a JWK; `kid`, when given, must be its RFC 7638 thumbprint. */
const ConsumerPublicKey = z.strictObject({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: z.string().refine((s) => fromB64Url(s)?.length === 32, 'expected 32 bytes in unpadded base64url'),
  kid: z.string().optional(),
  use: z.literal('sig').optional(),
  alg: z.literal('EdDSA').optional(),
});
const RegisterConsumer = z.strictObject({ consumer_id: identInput, tenant_id: identInput, public_key: ConsumerPublicKey });
const RotateKey = z.strictObject({ public_key: ConsumerPublicKey });
const RevokeKey = z.strictObject({ revoked_from: utcTimestamp.optional(), reason: z.string().max(1024).default('') });
const PopPolicy = z.strictObject({ consumer_pop: z.enum(['required', 'optional']) });
const CountersignBody = z.strictObject({ consumer_id: identInput, key_id: z.string(), signed_at: utcTimestamp, signature: z.string() });

export interface ConsumerKeyRow {
  readonly kid: string;
  readonly x: string;
  readonly validFrom: Date;
  readonly validUntil: Date | null;
  readonly revokedAt: Date | null;
}

/** The verifier's view of a stored key (kid = thumbprint of x, the validity window). */
export const keyJwk = (k: ConsumerKeyRow): PublicJwk => ({
  kty: 'OKP',
  crv: 'Ed25519',
  x: k.x,
  kid: k.kid,
  use: 'sig',
  alg: 'EdDSA',
  valid_from: k.validFrom.toISOString(),
  valid_until: k.validUntil?.toISOString() ?? null,
});

function thumbprintOf(jwk: z.infer<typeof ConsumerPublicKey>): string {
  const kid = jwkThumbprint(fromB64Url(jwk.x)!);
  if (jwk.kid !== undefined && jwk.kid !== kid) throw new ServiceError(400, 'INVALID_CONSUMER_KEY', `public_key.kid must be the key's RFC 7638 thumbprint ${kid}`);
  return kid;
}

function parse<T extends z.ZodType>(s: T, body: unknown, code: ProblemCode, what: string): z.infer<T> {
  const r = s.safeParse(body);
  if (!r.success) throw invalidInput(r.error, code, `${what} is not valid`, '');
  return r.data;
}

export class ConsumerService {
  constructor(
    private readonly db: Db,
    private readonly clock: () => Date = () => new Date(),
    /** How far in the future a countersignature's signed_at may be (clock skew). */
    private readonly skewMs = DEFAULT_POP_TOLERANCE_MS,
  ) {}

  private async requireTenantRow(tenantId: string) {
    const [t] = await this.db.select().from(schema.tenants).where(eq(schema.tenants.id, tenantId));
    if (!t) throw new ServiceError(422, 'TENANT_UNKNOWN', `tenant ${tenantId} does not exist; create it with POST /v1/admin/tenants`);
    return t;
  }

  async requireConsumer(tenantId: string, consumerId: string): Promise<void> {
    const [c] = await this.db
      .select({ id: schema.consumers.consumerId })
      .from(schema.consumers)
      .where(and(eq(schema.consumers.tenantId, tenantId), eq(schema.consumers.consumerId, consumerId)));
    if (!c) throw new ServiceError(404, 'CONSUMER_UNKNOWN', `consumer ${consumerId} of tenant ${tenantId} is not registered`);
  }

  /** POST /v1/admin/consumers: 201 with the consumer and its key; 200 for the same registration
   *  again; 409 CONSUMER_EXISTS for another key (use rotation). */
  async register(body: unknown) {
    const b = parse(RegisterConsumer, body, 'INVALID_CONSUMER', 'consumer');
    const kid = thumbprintOf(b.public_key);
    await this.requireTenantRow(b.tenant_id);
    const now = this.clock();
    const created = await this.db.transaction(async (tx) => {
      const ins = await tx.insert(schema.consumers).values({ tenantId: b.tenant_id, consumerId: b.consumer_id, createdAt: now }).onConflictDoNothing().returning();
      if (!ins.length) return false;
      await tx.insert(schema.consumerKeys).values({ tenantId: b.tenant_id, consumerId: b.consumer_id, kid, x: b.public_key.x, validFrom: now });
      return true;
    });
    const view = await this.view(b.tenant_id, b.consumer_id);
    if (!created && !view.keys.some((k) => k.kid === kid && k.valid_until === null)) {
      throw new ServiceError(409, 'CONSUMER_EXISTS', `consumer ${b.consumer_id} of tenant ${b.tenant_id} exists with another key; rotate with POST /v1/admin/consumers/{tenant_id}/{consumer_id}/keys`);
    }
    return { created, consumer: view };
  }

  private async keys(tenantId: string, consumerId: string): Promise<ConsumerKeyRow[]> {
    const k = schema.consumerKeys;
    return this.db.select().from(k).where(and(eq(k.tenantId, tenantId), eq(k.consumerId, consumerId))).orderBy(k.validFrom);
  }

  async view(tenantId: string, consumerId: string) {
    await this.requireConsumer(tenantId, consumerId);
    const keys = await this.keys(tenantId, consumerId);
    return {
      tenant_id: tenantId,
      consumer_id: consumerId,
      keys: keys.map((k) => ({ ...keyJwk(k), revoked_at: k.revokedAt?.toISOString() ?? null })),
    };
  }

  async list(tenantId: string | undefined) {
    const c = schema.consumers;
    const rows = await this.db.select().from(c).where(tenantId ? eq(c.tenantId, tenantId) : undefined).orderBy(c.tenantId, c.consumerId);
    return Promise.all(rows.map((r) => this.view(r.tenantId, r.consumerId)));
  }

  /** A new key signs from now on; the consumer's current keys stop signing now. */
  async rotate(tenantId: string, consumerId: string, body: unknown) {
    const b = parse(RotateKey, body, 'INVALID_CONSUMER_KEY', 'key rotation');
    const kid = thumbprintOf(b.public_key);
    await this.requireConsumer(tenantId, consumerId);
    const now = this.clock();
    const k = schema.consumerKeys;
    await this.db.transaction(async (tx) => {
      const [existing] = await tx.select().from(k).where(and(eq(k.tenantId, tenantId), eq(k.consumerId, consumerId), eq(k.kid, kid)));
      if (existing) throw new ServiceError(409, 'CONSUMER_KEY_EXISTS', `key ${kid} was already registered for this consumer; a key is never reused`);
      await tx.update(k).set({ validUntil: now }).where(and(eq(k.tenantId, tenantId), eq(k.consumerId, consumerId), isNull(k.validUntil)));
      await tx.insert(k).values({ tenantId, consumerId, kid, x: b.public_key.x, validFrom: now });
    });
    return this.view(tenantId, consumerId);
  }

  /** Revoke a key from `revoked_from` (default now; earlier to disown what it signed since a
   *  compromise): its window ends there, so PoPs and countersignatures from then on fail. */
  async revoke(tenantId: string, consumerId: string, kid: string, body: unknown) {
    const b = parse(RevokeKey, body ?? {}, 'INVALID_REVOCATION', 'key revocation');
    const now = this.clock();
    const from = b.revoked_from ? new Date(b.revoked_from) : now;
    if (from.getTime() > now.getTime()) throw new ServiceError(400, 'INVALID_REVOCATION', 'revoked_from may not be in the future');
    const k = schema.consumerKeys;
    const rows = await this.db
      .update(k)
      .set({
        validUntil: sql`least(coalesce(${k.validUntil}, ${from.toISOString()}::timestamptz), ${from.toISOString()}::timestamptz)`,
        revokedAt: sql`coalesce(${k.revokedAt}, ${now.toISOString()}::timestamptz)`,
        revocationReason: b.reason,
      })
      .where(and(eq(k.tenantId, tenantId), eq(k.consumerId, consumerId), eq(k.kid, kid)))
      .returning();
    if (!rows.length) throw new ServiceError(404, 'CONSUMER_KEY_UNKNOWN', `key ${kid} of consumer ${consumerId} (tenant ${tenantId}) is not registered`);
    return this.view(tenantId, consumerId);
  }

  /** PUT /v1/admin/tenants/{id}/consumer-pop: `required` from now on (kept if already), or `optional`. */
  async setPopPolicy(tenantId: string, body: unknown) {
    const b = parse(PopPolicy, body, 'INVALID_POP_POLICY', 'PoP policy');
    const t = await this.requireTenantRow(tenantId);
    const since = b.consumer_pop === 'required' ? (t.popRequiredSince ?? this.clock()) : null;
    await this.db.update(schema.tenants).set({ popRequiredSince: since }).where(eq(schema.tenants.id, tenantId));
    return { tenant_id: tenantId, consumer_pop: b.consumer_pop, required_since: since?.toISOString() ?? null };
  }

  /** The trust material's consumers and PoP requirements. */
  async trust(byPlans: NonNullable<TrustMaterial['consumer_pop_required']> = []): Promise<Pick<TrustMaterial, 'consumers' | 'consumer_pop_required'>> {
    const rows = await this.db.select().from(schema.consumerKeys).orderBy(schema.consumerKeys.tenantId, schema.consumerKeys.consumerId, schema.consumerKeys.validFrom);
    const byConsumer = new Map<string, ConsumerKeys>();
    for (const r of rows) {
      const key = `${r.tenantId}\u0000${r.consumerId}`;
      let c = byConsumer.get(key);
      if (!c) byConsumer.set(key, (c = { tenant_id: r.tenantId, consumer_id: r.consumerId, keys: [] }));
      c.keys.push(keyJwk(r));
    }
    const byTenant = await this.db.select().from(schema.tenants).where(sql`${schema.tenants.popRequiredSince} is not null`).orderBy(schema.tenants.id);
    // a tenant's own requirement binds bundles from the moment every process enforces it
    const required = [...byTenant.map((t) => ({ tenant_id: t.id, since: new Date(t.popRequiredSince!.getTime() + POLICY_CACHE_MS).toISOString() })), ...byPlans];
    return {
      ...(byConsumer.size ? { consumers: [...byConsumer.values()] } : {}),
      ...(required.length ? { consumer_pop_required: required } : {}),
    };
  }

  /** POST /v1/attestations/{id}/countersignatures: the consumer's Ed25519 signature over the
   *  canonical countersignature of the attestation's statement digest. 201 new, 200 the same
   *  again, 409 another one by the same key. */
  async countersign(principal: Principal, row: { id: string; tenantId: string; statementDigest: string; bundle: unknown }, body: unknown) {
    requireScope(principal, 'read');
    const b = parse(CountersignBody, body, 'INVALID_COUNTERSIGNATURE', 'countersignature');
    if (principal.consumer !== undefined && principal.consumer !== b.consumer_id) {
      throw new ServiceError(403, 'CONSUMER_FORBIDDEN', `this key acts for consumer ${principal.consumer} only`);
    }
    const pop = (row.bundle as FullBundle).consumer_pop;
    if (pop && pop.consumer_id !== b.consumer_id) {
      throw new ServiceError(422, 'COUNTERSIGNATURE_INVALID', `only the consumer of the PoP (${pop.consumer_id}) countersigns this attestation`);
    }
    await this.requireConsumer(row.tenantId, b.consumer_id);
    const k = schema.consumerKeys;
    const [key] = await this.db.select().from(k).where(and(eq(k.tenantId, row.tenantId), eq(k.consumerId, b.consumer_id), eq(k.kid, b.key_id)));
    if (!key) throw new ServiceError(422, 'COUNTERSIGNATURE_INVALID', `key ${b.key_id} of consumer ${b.consumer_id} is not registered`);
    const now = this.clock().getTime();
    const signedAt = Date.parse(b.signed_at);
    if (signedAt > now + this.skewMs) throw new ServiceError(422, 'COUNTERSIGNATURE_INVALID', 'signed_at is in the future');
    if (!keyValidAt(keyJwk(key), signedAt) || !keyValidAt(keyJwk(key), now)) {
      throw new ServiceError(422, 'COUNTERSIGNATURE_INVALID', `key ${b.key_id} does not sign at ${b.signed_at} or now (rotated or revoked)`);
    }
    const cs: Countersignature = { type: COUNTERSIGNATURE_TYPE, tenant_id: row.tenantId, consumer_id: b.consumer_id, key_id: b.key_id, statement_digest: row.statementDigest, signed_at: b.signed_at, signature: b.signature };
    if (!verifyObject(keyJwk(key), countersignatureMessage(cs), b.signature)) {
      throw new ServiceError(422, 'COUNTERSIGNATURE_INVALID', 'the Ed25519 signature over the canonical countersignature does not verify');
    }
    const c = schema.countersignatures;
    const ins = await this.db
      .insert(c)
      .values({ attestationId: row.id, tenantId: row.tenantId, consumerId: b.consumer_id, keyId: b.key_id, signedAt: b.signed_at, signature: b.signature })
      .onConflictDoNothing()
      .returning();
    if (!ins.length) {
      const [stored] = await this.db.select().from(c).where(and(eq(c.attestationId, row.id), eq(c.consumerId, b.consumer_id), eq(c.keyId, b.key_id)));
      if (stored && stored.signature === b.signature && stored.signedAt === b.signed_at) return { created: false, countersignature: cs };
      throw new ServiceError(409, 'COUNTERSIGNATURE_EXISTS', `consumer ${b.consumer_id} has already countersigned this attestation with key ${b.key_id}`);
    }
    return { created: true, countersignature: cs };
  }

  /** The countersignatures of attestations, by attestation id (each list in signing order). */
  async countersignaturesOf(rows: readonly { id: string; statementDigest: string }[]): Promise<Map<string, Countersignature[]>> {
    const out = new Map<string, Countersignature[]>();
    if (!rows.length) return out;
    const digests = new Map(rows.map((r) => [r.id, r.statementDigest]));
    const c = schema.countersignatures;
    const stored = await this.db.select().from(c).where(inArray(c.attestationId, [...digests.keys()])).orderBy(c.createdAt, c.consumerId, c.keyId);
    for (const s of stored) {
      const list = out.get(s.attestationId) ?? [];
      list.push({ type: COUNTERSIGNATURE_TYPE, tenant_id: s.tenantId, consumer_id: s.consumerId, key_id: s.keyId, statement_digest: digests.get(s.attestationId)!, signed_at: s.signedAt, signature: s.signature });
      out.set(s.attestationId, list);
    }
    return out;
  }
}
