// Admin operations on API keys (and, with the transparency log, revocations).
import { randomBytes } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import { z } from 'zod';
import { type Db, schema } from '../db/index.ts';
import { SCOPES, hashSecret, newSecret } from './auth.ts';
import { identInput } from '../core/schemas.ts';
import { ServiceError, invalidInput } from './errors.ts';

export const CreateApiKey = z.strictObject({
  name: z.string().min(1).max(128).default('api key'),
  scopes: z.array(z.enum(SCOPES)).min(1),
  tenants: z.array(identInput).min(1).max(1000).nullable().optional(),
  /** A consumer-scoped key: tenants names the consumer's one tenant, scopes is ["read"]. */
  consumer_id: identInput.optional(),
});

export class AdminService {
  constructor(
    private readonly db: Db,
    /** Told of each API key revoked, so that nothing here keeps using it from memory. */
    private readonly onRevoked: (id: string) => void = () => {},
  ) {}

  async createApiKey(body: unknown) {
    const r = CreateApiKey.safeParse(body);
    if (!r.success) throw invalidInput(r.error, 'INVALID_API_KEY_REQUEST', 'invalid API key request', '');
    const consumerId = r.data.consumer_id;
    if (consumerId !== undefined) {
      const tenant = r.data.tenants?.length === 1 ? r.data.tenants[0]! : null;
      if (!tenant || r.data.scopes.some((s) => s !== 'read')) {
        throw new ServiceError(400, 'INVALID_API_KEY_REQUEST', 'a consumer-scoped key has scopes ["read"] and tenants naming the consumer\'s one tenant');
      }
      const c = schema.consumers;
      const [found] = await this.db.select().from(c).where(and(eq(c.tenantId, tenant), eq(c.consumerId, consumerId)));
      if (!found) throw new ServiceError(404, 'CONSUMER_UNKNOWN', `consumer ${consumerId} of tenant ${tenant} is not registered`);
    }
    const secret = newSecret();
    const id = `key_${randomBytes(9).toString('base64url')}`;
    const [row] = await this.db
      .insert(schema.apiKeys)
      .values({ id, secretHash: hashSecret(secret), name: r.data.name, scopes: r.data.scopes, tenants: r.data.tenants ?? null, consumerId: consumerId ?? null })
      .returning();
    return { id, secret, name: row!.name, scopes: row!.scopes, tenants: row!.tenants, consumer_id: row!.consumerId, created_at: row!.createdAt.toISOString(), note: 'the secret is shown once; store it now' };
  }

  async listApiKeys() {
    const rows = await this.db.select().from(schema.apiKeys).orderBy(schema.apiKeys.createdAt);
    return rows.map((r) => ({ id: r.id, name: r.name, scopes: r.scopes, tenants: r.tenants, consumer_id: r.consumerId, created_at: r.createdAt.toISOString(), revoked_at: r.revokedAt?.toISOString() ?? null }));
  }

  /** Revokes a key once: revoking it again answers the first revocation's time, unchanged. */
  async revokeApiKey(id: string) {
    const k = schema.apiKeys;
    const rows = await this.db.update(k).set({ revokedAt: new Date() }).where(and(eq(k.id, id), isNull(k.revokedAt))).returning();
    const row = rows[0] ?? (await this.db.select().from(k).where(eq(k.id, id)))[0];
    if (!row) throw new ServiceError(404, 'NOT_FOUND', 'API key not found');
    this.onRevoked(id);
    return { id, revoked_at: row.revokedAt!.toISOString() };
  }
}
