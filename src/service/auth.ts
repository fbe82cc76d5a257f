// API keys and the admin token. Keys are `mp_<43 base64url chars>`, stored only as SHA-256.
import { randomBytes } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import { sha256, toHex, toB64Url } from '../core/bytes.ts';
import { type Db, schema } from '../db/index.ts';
import { ServiceError } from './errors.ts';
import { isStoreError } from '../db/faults.ts';

export const SCOPES = ['attest', 'read', 'metrics', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  readonly id: string;
  readonly scopes: ReadonlySet<Scope>;
  /** null = all tenants */
  readonly tenants: ReadonlySet<string> | null;
  /** A consumer-scoped key (bilateral metering): sees only this consumer's attestations. */
  readonly consumer?: string;
  /** Set when the key was taken from memory without a look-up (Auth.attestPrincipal, the attest
   *  path only). Whoever answers for such a principal confirms the key first: the statement that
   *  stores attestations refuses a revoked key atomically, and every other answer (a replay, a
   *  refusal) waits for Auth.confirm. */
  readonly unconfirmed?: true;
}

/** What `Authorization: Bearer <token>` can carry: RFC 6750 §2.1 b64token,
 *  1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=". No spaces, no "!", nothing else. */
export const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const BEARER = new RegExp(`^Bearer (${B64TOKEN.source.slice(1, -1)})$`);

export const hashSecret = (secret: string) => toHex(sha256(secret));

export function newSecret(): string {
  return `mp_${toB64Url(randomBytes(32))}`;
}

/** How long a key that authenticated an attest request is remembered (attestPrincipal). */
const ATTEST_KEY_TTL_MS = 60_000;
const ATTEST_KEYS_MAX = 10_000;

/**
 * Every request's key is looked up in the database (one indexed, prepared select), so a revoked
 * key is refused on the very next request by every process sharing the store. Requests for one
 * key arriving in the same turn of the event loop share a look-up; a look-up is only shared by
 * requests that arrived before it was sent, so none is answered from a read older than itself.
 *
 * The attest path, the hot one, saves that look-up for keys it has seen in the last minute
 * (attestPrincipal): such a principal is `unconfirmed`, and the revocation check moves to where
 * the request acts. Its attestations are stored by a statement that also checks, atomically, that
 * the key is not revoked (chain-writer.ts); any other answer to it looks the key up first
 * (AttestService). A revoked key is thus refused on the next request on every route, as before.
 */
export class Auth {
  /** Per key hash: the look-up gathering requests, not sent yet. */
  private readonly gathering = new Map<string, Promise<Principal | null>>();
  /** The key look-up, built once: a prepared statement (nothing to assemble per request). */
  private readonly byHash;
  /** Keys that authenticated an attest request, by secret hash (attestPrincipal). */
  private readonly attestKeys = new Map<string, { readonly principal: Principal; readonly at: number }>();
  /** Per request (its principal), the answer of confirm(). */
  private readonly confirmations = new WeakMap<Principal, Promise<Principal>>();
  /** Whether a key is revoked, by id: confirm()'s look-up, prepared once. */
  private readonly byId;
  constructor(
    db: Db,
    private readonly adminTokenHash: string,
  ) {
    this.byHash = db.select().from(schema.apiKeys).where(eq(schema.apiKeys.secretHash, sql.placeholder('h'))).prepare('auth_key_by_hash');
    this.byId = db.select({ revokedAt: schema.apiKeys.revokedAt }).from(schema.apiKeys).where(eq(schema.apiKeys.id, sql.placeholder('id'))).prepare('auth_key_revoked');
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
    if (!p) throw unknownKey();
    return p;
  }


  /**
   * The principal of an attest request: from memory, `unconfirmed`, when the key authenticated an
   * attest request in the last minute; otherwise looked up (and then remembered). The caller must
   * confirm an unconfirmed principal before answering anything but stored attestations (see the
   * class comment).
   */
  async attestPrincipal(header: string | undefined): Promise<Principal> {
    const m = header ? BEARER.exec(header) : null;
    const h = m ? hashSecret(m[1]!) : undefined;
    const known = h === undefined ? undefined : this.attestKeys.get(h);
    // a copy per request: confirm() remembers its answer for that request only
    if (known && performance.now() - known.at < ATTEST_KEY_TTL_MS) return { ...known.principal };
    const p = await this.authenticate(header);
    if (h !== undefined && h !== this.adminTokenHash) {
      if (this.attestKeys.size >= ATTEST_KEYS_MAX) this.attestKeys.clear();
      this.attestKeys.set(h, { principal: { ...p, unconfirmed: true }, at: performance.now() });
    }
    return p;
  }

  /** Looks an unconfirmed principal's key up again: the principal, confirmed, or 401 (and the
   *  key is forgotten) when it is revoked. One look-up per request, however often it is asked
   *  (its answer, a failure included, is kept with the request's principal). */
  confirm(p: Principal): Promise<Principal> {
    if (!p.unconfirmed) return Promise.resolve(p);
    let answer = this.confirmations.get(p);
    if (!answer) {
      answer = this.byId.execute({ id: p.id }).then(([row]) => {
        if (!row || row.revokedAt) {
          this.forget(p.id);
          throw unknownKey();
        }
        const { unconfirmed: _u, ...confirmed } = p;
        return confirmed;
      });
      this.confirmations.set(p, answer);
    }
    return answer;
  }

  /** Drops a key from memory (revoked here, or refused by a store statement). */
  forget(keyId: string): void {
    for (const [h, k] of this.attestKeys) if (k.principal.id === keyId) this.attestKeys.delete(h);
  }

  private async load(h: string): Promise<Principal | null> {
    const [row] = await this.byHash.execute({ h });
    if (!row || row.revokedAt) return null;
    return { id: row.id, scopes: new Set(row.scopes as Scope[]), tenants: row.tenants ? new Set(row.tenants) : null, ...(row.consumerId !== null ? { consumer: row.consumerId } : {}) };
  }
}

export const unknownKey = () => new ServiceError(401, 'UNAUTHENTICATED', 'unknown or revoked API key');

/** An answer that the store is unavailable (a 503, or a store error on its way to become one):
 *  it acts on nothing and tells nothing, so it needs no key confirmation, which would only wait
 *  on the same store again. */
export const isUnavailable = (e: unknown) => (e instanceof ServiceError ? e.status === 503 : isStoreError(e));

export function requireScope(p: Principal, scope: Scope): void {
  if (!p.scopes.has(scope) && !p.scopes.has('admin')) throw new ServiceError(403, 'FORBIDDEN', `this key lacks the ${scope} scope`);
}

export function requireTenant(p: Principal, tenantId: string): void {
  if (!maySee(p, tenantId)) throw new ServiceError(403, 'TENANT_FORBIDDEN', `this key may not act for tenant ${tenantId}`);
}

/** For what acts for every tenant at once (API keys, the tariff and plan catalogues, the service
 *  key, revocations, webhooks, the proof queue): a key with a tenant allowlist may not. */
export function requireEveryTenant(p: Principal): void {
  if (p.tenants) throw new ServiceError(403, 'FORBIDDEN', 'this acts for every tenant: it needs an admin key without a tenant allowlist');
}

/** Whether the key may see `tenantId`'s records (lists keep only those). */
export function maySee(p: Principal, tenantId: string): boolean {
  return !p.tenants || p.tenants.has(tenantId);
}
