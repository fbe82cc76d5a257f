// API keys and the admin token. Keys are `mp_<43 base64url chars>`, stored only as SHA-256.
import { randomBytes } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
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
  /** A consumer-scoped key (bilateral metering): sees only this consumer's attestations. */
  readonly consumer?: string;
}

/** What `Authorization: Bearer <token>` can carry: RFC 6750 §2.1 b64token,
 *  1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=". No spaces, no "!", nothing else. */
export const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const BEARER = new RegExp(`^Bearer (${B64TOKEN.source.slice(1, -1)})$`);

export const hashSecret = (secret: string) => toHex(sha256(secret));

export function newSecret(): string {
  return `mp_${toB64Url(randomBytes(32))}`;
}

/**
 * Every request's key is looked up in the database (one indexed, prepared select), so a revoked
 * key is refused on the very next request by every process sharing the store. Requests for one
 * key arriving in the same turn of the event loop share a look-up; a look-up is only shared by
 * requests that arrived before it was sent, so none is answered from a read older than itself.
 */
export class Auth {
  /** Per key hash: the look-up gathering requests, not sent yet. */
  private readonly gathering = new Map<string, Promise<Principal | null>>();
  /** The key look-up, built once: a prepared statement (nothing to assemble per request). */
  private readonly byHash;
  constructor(
    db: Db,
    private readonly adminTokenHash: string,
  ) {
    this.byHash = db.select().from(schema.apiKeys).where(eq(schema.apiKeys.secretHash, sql.placeholder('h'))).prepare('auth_key_by_hash');
  }

  async authenticate(header: string | undefined): Promise<Principal> {
    const m = header ? BEARER.exec(header) : null;
    if (!m) throw new ServiceError(401, 'UNAUTHENTICATED', 'send Authorization: Bearer <api key>');
    const h = hashSecret(m[1]!);
    if (h === this.adminTokenHash) return { id: 'admin-token', scopes: new Set(SCOPES), tenants: null };
    let pending = this.gathering.get(h);
    if (!pending) {
      // sent at the end of this turn: requests of the same turn join it, later ones make their own
      pending = new Promise<void>((r) => setImmediate(r)).then(() => {
        this.gathering.delete(h);
        return this.load(h);
      });
      this.gathering.set(h, pending);
    }
    const p = await pending;
    if (!p) throw new ServiceError(401, 'UNAUTHENTICATED', 'unknown or revoked API key');
    return p;
  }


  private async load(h: string): Promise<Principal | null> {
    const [row] = await this.byHash.execute({ h });
    if (!row || row.revokedAt) return null;
    return { id: row.id, scopes: new Set(row.scopes as Scope[]), tenants: row.tenants ? new Set(row.tenants) : null, ...(row.consumerId !== null ? { consumer: row.consumerId } : {}) };
  }
}

export function requireScope(p: Principal, scope: Scope): void {
  if (!p.scopes.has(scope) && !p.scopes.has('admin')) throw new ServiceError(403, 'FORBIDDEN', `this key lacks the ${scope} scope`);
}

export function requireTenant(p: Principal, tenantId: string): void {
  if (p.tenants && !p.tenants.has(tenantId)) throw new ServiceError(403, 'TENANT_FORBIDDEN', `this key may not act for tenant ${tenantId}`);
}
