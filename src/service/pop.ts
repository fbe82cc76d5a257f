// Bilateral metering on the attest path: the consumer's proof of possession (PoP). Called from
// one place (AttestService.attestMany), before the event is priced and signed. Checks, in order:
// the PoP's form, a registered key of a registered consumer, the strict Ed25519 signature over the
// canonical PoP, |now − timestamp| within the tolerance, the tariff digest equal to the pinned
// tariff version's, the key still valid now, and the nonce not used before by this (tenant,
// consumer) — the last by the primary key of consumer_pop_nonces, so it holds across processes.
import { and, eq, sql } from 'drizzle-orm';
import { popMessage } from '../core/bilateral.ts';
import { digestOf } from '../core/canonical.ts';
import { verifyObject } from '../core/keys.ts';
import { CONSUMER_POP_TYPE, type ConsumerPop, ConsumerPopInput, type MeterEvent } from '../core/schemas.ts';
import { type Db, rowsOf, schema } from '../db/index.ts';
import { DEFAULT_POP_TOLERANCE_MS, POLICY_CACHE_MS, keyJwk, type ConsumerKeyRow } from './consumers.ts';
import { ServiceError, zodIssues } from './errors.ts';
import type { PlanService } from './plans.ts';
import { ReadCache } from './read-cache.ts';


const invalid = (message: string, fields?: { path: string; message: string }[]) => new ServiceError(422, 'POP_INVALID', message, fields);

export interface PopOptions {
  /** The bound on |now − timestamp| (default 300 s). */
  readonly toleranceMs?: number;
  readonly clock?: () => Date;
  /** Subscriptions: a plan with `consumer_pop: "required"` requires a PoP of its subscribers. */
  readonly plans?: PlanService;
}

export class PopGate {
  private readonly toleranceMs: number;
  private readonly clock: () => Date;
  private readonly plans: PlanService | undefined;
  /** Per tenant: since when it requires a PoP (null: it does not). */
  private readonly policies = new ReadCache<string, number | null>({ ttlMs: POLICY_CACHE_MS });
  /** Public keys by (tenant, consumer, kid): immutable once registered (validity is re-read). */
  private readonly keyCache = new Map<string, ConsumerKeyRow>();

  constructor(
    private readonly db: Db,
    opts: PopOptions = {},
  ) {
    this.toleranceMs = opts.toleranceMs ?? DEFAULT_POP_TOLERANCE_MS;
    this.clock = opts.clock ?? (() => new Date());
    this.plans = opts.plans;
  }

  /** Whether a PoP is required of the tenant at `now`: by its own setting, or by the plan it is
   *  subscribed to then (both cached for up to a second). */
  private async required(tenantId: string, now: number): Promise<boolean> {
    if (await this.requiredByTenant(tenantId, now)) return true;
    const plan = await this.plans?.planAt(tenantId, new Date(now), { cached: true });
    return plan?.plan.consumer_pop === 'required';
  }

  /** Whether the tenant requires a PoP at `now` (cached for POLICY_CACHE_MS). */
  private async requiredByTenant(tenantId: string, now: number): Promise<boolean> {
    const since = await this.policies.get(tenantId, async () => {
      const [t] = await this.db.select({ since: schema.tenants.popRequiredSince }).from(schema.tenants).where(eq(schema.tenants.id, tenantId));
      return t?.since ? t.since.getTime() : null;
    });
    return since !== null && now >= since;
  }

  private async key(tenantId: string, consumerId: string, kid: string): Promise<ConsumerKeyRow | undefined> {
    const ck = `${tenantId}\u0000${consumerId}\u0000${kid}`;
    const hit = this.keyCache.get(ck);
    if (hit) return hit;
    const k = schema.consumerKeys;
    const [row] = await this.db.select().from(k).where(and(eq(k.tenantId, tenantId), eq(k.consumerId, consumerId), eq(k.kid, kid)));
    if (row) {
      if (this.keyCache.size > 10_000) this.keyCache.clear();
      this.keyCache.set(ck, row);
    }
    return row;
  }

  /**
   * Admit the PoP of one attest request item (`raw`: its consumer_pop member, possibly absent).
   * `pinnedTariffDigest` is the salted digest of the published tariff version the event is
   * priced under (undefined for an inline tariff that is not published: a PoP cannot name it).
   * `requestDigest` identifies the request, so that a retry of the same request with the same PoP
   * is let through (and then answered as a replay). Returns the PoP as the bundle carries it, or
   * undefined when there is none and none is required. Throws ServiceError POP_*.
   */
  async admit(event: MeterEvent, raw: unknown, pinnedTariffDigest: string | undefined, requestDigest: string): Promise<ConsumerPop | undefined> {
    const now = this.clock().getTime();
    if (raw === undefined) {
      if (await this.required(event.tenant_id, now)) throw new ServiceError(422, 'POP_REQUIRED', `tenant ${event.tenant_id} requires a consumer PoP (consumer_pop) with every event (its own setting or its plan's)`);
      return undefined;
    }
    const parsed = ConsumerPopInput.safeParse(raw);
    if (!parsed.success) throw invalid('consumer_pop is not valid', zodIssues(parsed.error, 'consumer_pop'));
    const pop: ConsumerPop = { type: CONSUMER_POP_TYPE, tenant_id: event.tenant_id, event_id: event.event_id, ...parsed.data };
    const key = await this.key(pop.tenant_id, pop.consumer_id, pop.key_id);
    if (!key) throw invalid(`consumer ${pop.consumer_id} of tenant ${pop.tenant_id} has no registered key ${pop.key_id}`);
    if (!verifyObject(keyJwk(key), popMessage(pop), pop.signature)) throw invalid('the Ed25519 signature over the canonical PoP does not verify');
    const skew = now - Date.parse(pop.timestamp);
    if (Math.abs(skew) > this.toleranceMs) {
      throw new ServiceError(422, 'POP_STALE', `the PoP timestamp is ${Math.round(Math.abs(skew) / 1000)} s ${skew > 0 ? 'old' : 'ahead'}; at most ${this.toleranceMs / 1000} s either way`);
    }
    if (pinnedTariffDigest === undefined) {
      throw new ServiceError(422, 'POP_TARIFF_MISMATCH', 'a PoP names a published tariff version; this event is priced under an inline tariff that is not published');
    }
    if (pop.tariff_digest !== pinnedTariffDigest) {
      throw new ServiceError(422, 'POP_TARIFF_MISMATCH', `the PoP's tariff_digest is not the pinned tariff's (${pinnedTariffDigest})`);
    }
    await this.recordNonce(pop, requestDigest, new Date(now));
    return pop;
  }

  /** Nonces waiting to be recorded: those of one turn of the event loop share one statement. */
  private gathering: { pop: ConsumerPop; requestDigest: string; now: Date; resolve(inserted: boolean): void; reject(e: unknown): void }[] = [];

  /** Record the nonce, or throw POP_INVALID (the key does not sign now) or POP_REPLAY. */
  private async recordNonce(pop: ConsumerPop, requestDigest: string, now: Date): Promise<void> {
    const inserted = await new Promise<boolean>((resolve, reject) => {
      if (!this.gathering.length) setImmediate(() => void this.flushNonces());
      this.gathering.push({ pop, requestDigest, now, resolve, reject });
    });
    if (!inserted) await this.refused(pop, requestDigest, now);
  }

  /** One statement for the gathered nonces: each is recorded only if its key is valid at its
   *  `now` (a revocation or rotation committed by any process counts), and at most once per
   *  (tenant, consumer) — ON CONFLICT DO NOTHING on the primary key, which also settles two
   *  items of one statement with the same nonce (the first is inserted). */
  private async flushNonces(): Promise<void> {
    const batch = this.gathering;
    this.gathering = [];
    try {
      const rows = batch.map((g, i) => ({
        i,
        tenant_id: g.pop.tenant_id,
        consumer_id: g.pop.consumer_id,
        kid: g.pop.key_id,
        nonce: g.pop.nonce,
        event_id: g.pop.event_id,
        request_digest: g.requestDigest,
        signature: g.pop.signature,
        at: g.now.toISOString(),
      }));
      const inserted = rowsOf<{ tenant_id: string; consumer_id: string; nonce: string; signature: string }>(
        await this.db.execute(sql`
          insert into consumer_pop_nonces (tenant_id, consumer_id, nonce, event_id, request_digest, signature)
          select v.tenant_id, v.consumer_id, v.nonce, v.event_id, v.request_digest, v.signature
          from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
            as v(i int, tenant_id text, consumer_id text, kid text, nonce text, event_id text, request_digest text, signature text, at timestamptz)
          where exists (select 1 from consumer_keys k where k.tenant_id = v.tenant_id and k.consumer_id = v.consumer_id and k.kid = v.kid
            and k.valid_from <= v.at and (k.valid_until is null or k.valid_until > v.at))
          order by v.i
          on conflict (tenant_id, consumer_id, nonce) do nothing
          returning tenant_id, consumer_id, nonce, signature`),
      );
      const got = new Set(inserted.map((r) => `${r.tenant_id}\u0000${r.consumer_id}\u0000${r.nonce}\u0000${r.signature}`));
      for (const g of batch) g.resolve(got.has(`${g.pop.tenant_id}\u0000${g.pop.consumer_id}\u0000${g.pop.nonce}\u0000${g.pop.signature}`));
    } catch (e) {
      for (const g of batch) g.reject(e);
    }
  }

  /** Why a nonce was not recorded: the key does not sign now, or the nonce was used — unless by
   *  this very request (same event, content and signature: a retry, let through). */
  private async refused(pop: ConsumerPop, requestDigest: string, now: Date): Promise<void> {
    const k = schema.consumerKeys;
    const [key] = await this.db.select().from(k).where(and(eq(k.tenantId, pop.tenant_id), eq(k.consumerId, pop.consumer_id), eq(k.kid, pop.key_id)));
    const t = now.getTime();
    if (!key || key.validFrom.getTime() > t || (key.validUntil && key.validUntil.getTime() <= t)) {
      throw invalid(`consumer key ${pop.key_id} does not sign now (${key?.revokedAt ? 'revoked' : 'rotated out or not yet valid'})`);
    }
    const n = schema.consumerPopNonces;
    const [used] = await this.db.select().from(n).where(and(eq(n.tenantId, pop.tenant_id), eq(n.consumerId, pop.consumer_id), eq(n.nonce, pop.nonce)));
    if (used && used.eventId === pop.event_id && used.requestDigest === requestDigest && used.signature === pop.signature) return;
    throw new ServiceError(409, 'POP_REPLAY', `nonce ${pop.nonce} was already used by consumer ${pop.consumer_id}`);
  }
}

/** The idempotency digest of a request that carries a PoP: the request's own and the PoP's, so
 *  the same event sent again with another PoP (or none) is a conflict, not a replay. */
export const requestDigestWithPop = (requestDigest: string, pop: ConsumerPop | undefined): string =>
  pop ? digestOf({ request_digest: requestDigest, consumer_pop_digest: digestOf(pop) }) : requestDigest;
