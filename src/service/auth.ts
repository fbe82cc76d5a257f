// API keys and the admin token. Keys are `mp_<43 base64url chars>`, stored only as SHA-256.
import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { sha256, toHex, toB64Url } from '../core/bytes.ts';
import { type Db, schema } from '../db/index.ts';
import { ServiceError } from './errors.ts';

export const SCOPES = ['attest', 'read', 'metrics', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  readonly id: string;
  readonly scopes: ReadonlySet<Scope>;
  /** null = all tenants */
  readonly tenants: ReadonlySet<string> | null;
}

export const hashSecret = (secret: string) => toHex(sha256(secret));

export function newSecret(): string {
  return `mp_${toB64Url(randomBytes(32))}`;
}

export class Auth {
  private readonly cache = new Map<string, { p: Principal | null; at: number }>();
  private readonly loading = new Map<string, Promise<Principal | null>>();
  constructor(
    private readonly db: Db,
    private readonly adminTokenHash: string,
  ) {}

  async authenticate(header: string | undefined): Promise<Principal> {
    const m = header ? /^Bearer ([A-Za-z0-9_\-.~+/]+=*)$/.exec(header) : null;
    if (!m) throw new ServiceError(401, 'UNAUTHENTICATED', 'send Authorization: Bearer <api key>');
    const h = hashSecret(m[1]!);
    if (h === this.adminTokenHash) return { id: 'admin-token', scopes: new Set(SCOPES), tenants: null };
    const hit = this.cache.get(h);
    let p: Principal | null;
    if (hit && Date.now() - hit.at < 2000) p = hit.p;
    else {
      // one look-up per key at a time: concurrent requests with a stale entry share it
      let pending = this.loading.get(h);
      if (!pending) {
        pending = this.load(h).finally(() => this.loading.delete(h));
        this.loading.set(h, pending);
      }
      p = await pending;
    }
    if (!p) throw new ServiceError(401, 'UNAUTHENTICATED', 'unknown or revoked API key');
    return p;
  }

  private async load(h: string): Promise<Principal | null> {
    const [row] = await this.db.select().from(schema.apiKeys).where(eq(schema.apiKeys.secretHash, h));
    const p = row && !row.revokedAt ? { id: row.id, scopes: new Set(row.scopes as Scope[]), tenants: row.tenants ? new Set(row.tenants) : null } : null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(h, { p, at: Date.now() });
    return p;
  }
}

export function requireScope(p: Principal, scope: Scope): void {
  if (!p.scopes.has(scope) && !p.scopes.has('admin')) throw new ServiceError(403, 'FORBIDDEN', `this key lacks the ${scope} scope`);
}

export function requireTenant(p: Principal, tenantId: string): void {
  if (p.tenants && !p.tenants.has(tenantId)) throw new ServiceError(403, 'TENANT_FORBIDDEN', `this key may not act for tenant ${tenantId}`);
}
