// The attest path: normalize, dedupe on (tenant, event_id), then per chain price, sign and store
// the attestations with their proof jobs and log entries in one atomic statement (chain-writer.ts).
// Nothing slow happens here: Poseidon, proving and log integration are asynchronous.
import { and, eq, getTableColumns, sql } from 'drizzle-orm';
import { ZodError } from 'zod';
import { cloudEventRequest, meterEventText, normalizeMeterEvent, normalizeTariff } from '../core/attest.ts';
import { DefaultTariffs, resolveOrder } from './default-tariffs.ts';
import { ChainWriter, ItemRefused, TariffMismatch, requestDigestOf, type PendingEvent } from './chain-writer.ts';
import { digestBytes, digestOf } from '../core/canonical.ts';
import { ChargeError } from '../core/errors.ts';
import type { MeterEvent, TariffSnapshot } from '../core/schemas.ts';
import { chainId } from '../core/statement.ts';
import { type Db, isUniqueViolation, schema } from '../db/index.ts';
import { describeStoreError, isStoreUnavailable } from '../db/faults.ts';
import { type Auth, type Principal, maySee, requireScope, requireTenant, unknownKey } from './auth.ts';
import { ServiceError, chargeProblem, invalidInput, storeUnavailable } from './errors.ts';
import type { KeyRing } from './keyring.ts';
import type { PublishedTariff, TariffService } from './tariffs.ts';
import type { PlanService } from './plans.ts';
import { type Metrics, since } from './metrics.ts';
import { type PopGate, requestDigestWithPop } from './pop.ts';
import type { ProofPolicyService } from './proof-policy.ts';

/** A stored attestation with its log index (null until the log has integrated it). A row this
 *  process has just written also carries its bundle's JSON text as stored (`bundleText`), so that
 *  the answer need not serialize the bundle again. */
export type AttestationRow = typeof schema.attestations.$inferSelect & { logIndex: number | null; bundleText?: string };

/** Attestations joined with their log leaf: the log index lives only in log_leaves, so storing
 *  a leaf never rewrites the attestation row. */
function selectRows(db: Db) {
  const a = schema.attestations;
  const l = schema.logLeaves;
  return db
    .select({ ...getTableColumns(a), logIndex: l.idx })
    .from(a)
    .leftJoin(l, eq(l.attestationId, a.id));
}

export interface AttestOutcome {
  readonly created: boolean;
  readonly row: AttestationRow;
}

/** A request's outcomes, one per item, and each item's tenant (undefined for an item refused
 *  before its tenant was known). */
interface Outcomes {
  readonly out: (AttestOutcome | ServiceError)[];
  readonly tenants: (string | undefined)[];
}

export class AttestService {
  readonly writer: ChainWriter;

  constructor(
    private readonly db: Db,
    private readonly keys: KeyRing,
    private readonly tariffs: TariffService,
    private readonly clock: () => Date = () => new Date(),
    private readonly metrics?: Metrics,
    /** The tenants' proof policies and the proof queue's bound (absent: every event `pending`). */
    private readonly policies?: ProofPolicyService,
    /** Subscriptions: the tariff of a request that names none. */
    private readonly plans?: PlanService,
    /** Bilateral metering: the consumer PoP check (none: a consumer_pop is refused as unknown). */
    private readonly pop?: PopGate,
    /** Confirms a principal authenticated from memory (Auth.attestPrincipal) before anything but
     *  fresh attestations is answered to it. */
    private readonly auth?: Pick<Auth, 'confirm' | 'forget'>,
  ) {
    this.writer = new ChainWriter(db, metrics);
    this.defaults = new DefaultTariffs(db, tariffs);
  }

  /** The tenants' default tariffs per meter, for requests that name none. */
  readonly defaults: DefaultTariffs;

  /** Where a group of events that could not be stored is reported (serve: the JSON log, with the
   *  error's SQLSTATE and class only). */
  onStoreFailure: (message: string, e: unknown) => void = (message, e) => console.error(`${message}: ${describeStoreError(e)}`);

  /** Validate and normalize one request body item; throws ServiceError (400/422/404). */
  async normalize(body: unknown, principal: Principal): Promise<{ event: MeterEvent; tariff: TariffInUse }> {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ServiceError(400, 'BAD_REQUEST', 'expected a JSON object');
    // A bare CloudEvent (structured mode) is a request with its tariff in extension attributes or none.
    const b = ('specversion' in body ? cloudEventRequest(body as Record<string, unknown>) : body) as Record<string, unknown>;
    const extra = Object.keys(b).filter((k) => !['meter_event', 'tariff_snapshot', 'tariff', ...(this.pop ? ['consumer_pop'] : [])].includes(k));
    if (extra.length) throw new ServiceError(400, 'BAD_REQUEST', `unknown field ${extra[0]}`, extra.map((k) => ({ path: k, message: 'unknown field' })));
    let event: MeterEvent;
    try {
      event = normalizeMeterEvent(b['meter_event']);
    } catch (e) {
      if (e instanceof ZodError) throw invalidInput(e, 'INVALID_METER_EVENT', 'meter_event is not valid', 'meter_event');
      throw e;
    }
    // before any tariff lookup, so that nothing about another tenant's tariffs shows through
    requireTenant(principal, event.tenant_id);
    let inline: TariffSnapshot | undefined;
    if (b['tariff_snapshot'] !== undefined) {
      try {
        inline = normalizeTariff(b['tariff_snapshot']);
      } catch (e) {
        if (e instanceof ZodError) throw invalidInput(e, 'INVALID_TARIFF', 'tariff_snapshot is not valid', 'tariff_snapshot');
        if (e instanceof ChargeError) throw chargeProblem(e, 'tariff_snapshot');
        throw e;
      }
    }
    const ref = b['tariff'];
    if (ref !== undefined) {
      const r = ref as Record<string, unknown> | null;
      if (!r || typeof r !== 'object' || typeof r['tariff_id'] !== 'string' || typeof r['tariff_version'] !== 'string' || Object.keys(r).length !== 2) {
        throw new ServiceError(400, 'INVALID_TARIFF_REF', 'tariff must be {tariff_id, tariff_version}', [{ path: 'tariff', message: 'expected {tariff_id, tariff_version}' }]);
      }
      const published = await this.tariffs.get(r['tariff_id'], r['tariff_version'], { fresh: true });
      if (!published) throw new ServiceError(422, 'TARIFF_NOT_PUBLISHED', `tariff ${r['tariff_id']}@${r['tariff_version']} is not published`);
      if (inline && tariffDigestOf(inline) !== published.tariffDigest) {
        throw new ServiceError(422, 'TARIFF_MISMATCH', 'tariff_snapshot differs from the published version it names');
      }
      return { event, tariff: fromPublished(published) };
    }
    if (!inline) {
      const me = b['meter_event'] as Record<string, unknown>;
      // no tariff named: a tenant with a subscription is priced by its plan (the contract); any other
      // by its default tariff for the meter (CloudEvents type, endpoint, *)
      if (this.plans && (await this.plans.subscriptions(event.tenant_id, { cached: true })).length) {
        return { event, tariff: fromPublished(await this.plans.tariffFor(event.tenant_id, event.endpoint, new Date(event.event_timestamp), { cached: true })) };
      }
      const meters = resolveOrder({ type: typeof me['type'] === 'string' && 'specversion' in me ? me['type'] : undefined, endpoint: event.endpoint });
      const byDefault = await this.defaults.resolve(event.tenant_id, meters);
      if (byDefault) return { event, tariff: fromPublished(byDefault) };
      throw new ServiceError(400, 'TARIFF_REQUIRED', `send tariff_snapshot or tariff: {tariff_id, tariff_version}, subscribe tenant ${event.tenant_id} to a plan, or set a default tariff for meter ${meters.join(', ')}`);
    }
    const published = await this.tariffs.get(inline.tariff_id, inline.tariff_version);
    if (published && tariffDigestOf(inline) !== published.tariffDigest) {
      throw new ServiceError(422, 'TARIFF_MISMATCH', 'tariff_snapshot names a published version but differs from it');
    }
    // An inline copy of a published version is that version (its salt and commitment). An inline
    // tariff that is not published stays private to the event: it is not published (publishing
    // needs the admin scope), and each event gets a tariff salt of its own. Its full bundles verify;
    // its redacted bundles do not (no published commitment: TARIFF_NOT_PUBLISHED), by design.
    return { event, tariff: published ? fromPublished(published) : { snapshot: inline, tariffDigest: tariffDigestOf(inline), inline: true } };
  }

  /** Attest one event: 201 with a new attestation, 200 for an exact replay, 409 otherwise. */
  async attest(principal: Principal, body: unknown): Promise<AttestOutcome> {
    const [r] = await this.attestMany(principal, [body]);
    if (r instanceof ServiceError) throw r;
    return r!;
  }

  /**
   * Attest several events; one result per item, in order (an AttestOutcome or the ServiceError of
   * that item). Duplicates are found with one query; new events are written with one statement
   * per chain (tenant, meter, window), in input order within each chain.
   */
  async attestMany(principal: Principal, bodies: readonly unknown[]): Promise<(AttestOutcome | ServiceError)[]> {
    const { out, tenants } = await this.attestConfirmed(principal, bodies);
    if (this.metrics) this.count(this.metrics, out, tenants);
    return out;
  }

  /**
   * attestMany's outcomes for a principal that may be unconfirmed (Auth.attestPrincipal). Fresh
   * attestations were stored by a statement that found the key unrevoked; every other answer (a
   * replay, a refusal) is given only once the key is confirmed, and a revoked key's request is
   * refused as a whole (401) unless some of it was stored before the revocation. An answer that
   * the store is unavailable (503) needs no look-up: it acts on nothing and tells nothing. (A
   * refusal thrown instead of returned is confirmed by the attest routes' middleware, which also
   * covers the refusals made before this service is called.)
   */
  private async attestConfirmed(principal: Principal, bodies: readonly unknown[]): Promise<Outcomes> {
    const auth = this.auth;
    if (!principal.unconfirmed || !auth) return this.attestAs(principal, bodies);
    // A PoP's nonce is recorded before anything is stored: the key is confirmed first.
    if (bodies.some((b) => b !== null && typeof b === 'object' && 'consumer_pop' in b)) return this.attestAs(await auth.confirm(principal), bodies);
    const r = await this.attestAs(principal, bodies);
    const { out } = r;
    const created = out.some((o) => !(o instanceof ServiceError) && o.created);
    if (out.some((o) => o instanceof ServiceError && o.status === 401)) {
      auth.forget(principal.id);
      if (!created) throw unknownKey();
    }
    if (out.every((o) => (o instanceof ServiceError ? o.status === 401 || o.status === 503 : o.created))) return r;
    try {
      await auth.confirm(principal);
    } catch (e) {
      if (!created) throw e;
      // revoked: 401; the store unreachable: retryable, never 401 (the fresh items keep their 201)
      const refusal = e instanceof ServiceError ? e : storeUnavailable();
      return { ...r, out: out.map((o) => (o instanceof ServiceError || !o.created ? refusal : o)) };
    }
    return r;
  }

  private async attestAs(principal: Principal, bodies: readonly unknown[]): Promise<Outcomes> {
    requireScope(principal, 'attest');
    const results: (AttestOutcome | ServiceError | undefined)[] = new Array(bodies.length);
    const pending: { index: number; item: PendingEvent; cid: string }[] = [];
    const normalizeStart = performance.now();
    await Promise.all(
      bodies.map(async (body, index) => {
        try {
          const { event, tariff } = await this.normalize(body, principal);
          await this.tariffs.requireTenant(event.tenant_id);
          // the policy is cached: no await (no extra turn) when it is at hand
          const decider = this.policies?.decider(event.tenant_id);
          const proof = decider instanceof Promise ? await decider : decider;
          // the event's canonical text serves the request digest here and the salted event digest
          // when it is signed
          const eventText = meterEventText(event);
          const plainDigest = requestDigestOf(digestBytes(eventText), tariff.tariffDigest);
          const consumerPop = await this.pop?.admit(event, (body as Record<string, unknown>)['consumer_pop'], tariff.inline ? undefined : tariff.tariffDigestV2, plainDigest);
          const requestDigest = requestDigestWithPop(plainDigest, consumerPop);
          const item: PendingEvent = {
            event,
            eventText,
            tariff: tariff.snapshot,
            requestDigest,
            ...(principal.unconfirmed ? { apiKeyId: principal.id } : {}),
            ...(consumerPop ? { consumerPop } : {}),
            ...(proof ? { proof } : {}),
            ...(tariff.inline ? { inlineTariffDigest: tariff.tariffDigest } : { tariffSalt: tariff.salt, tariffDigestV2: tariff.tariffDigestV2 }),
          };
          pending.push({ index, item, cid: chainIdOf(event) });
        } catch (e) {
          if (e instanceof ServiceError) results[index] = e;
          else throw e;
        }
      }),
    );
    this.metrics?.attestPhase(1, since(normalizeStart));
    pending.sort((a, b) => a.index - b.index);

    // Replays and conflicts with what is already stored, and duplicates inside this request.
    // A single event skips the look-up: the unique index turns a duplicate into a failed write,
    // which is then settled as a replay or a conflict (one round trip for a new event).
    const looked = bodies.length > 1;
    const existing = looked ? await this.existing(pending.map((p) => p.item.event)) : new Map<string, AttestationRow>();
    const firstInBatch = new Map<string, number>();
    const fresh: typeof pending = [];
    const laterDuplicates: typeof pending = [];
    for (const p of pending) {
      const k = `${p.item.event.tenant_id}\u0000${p.item.event.event_id}`;
      const row = existing.get(k);
      if (row) results[p.index] = row.requestDigest === p.item.requestDigest ? { created: false, row } : conflict(p.item.event.event_id);
      else if (firstInBatch.has(k)) laterDuplicates.push(p);
      else {
        firstInBatch.set(k, p.index);
        fresh.push(p);
      }
    }

    const byChain = new Map<string, typeof pending>();
    for (const p of fresh) {
      const group = byChain.get(p.cid);
      if (group) group.push(p);
      else byChain.set(p.cid, [p]);
    }
    await Promise.all([...byChain].map(([cid, group]) => this.writeGroup(cid, group, results, looked)));

    for (const p of laterDuplicates) {
      const first = results[firstInBatch.get(`${p.item.event.tenant_id}\u0000${p.item.event.event_id}`)!];
      if (first && !(first instanceof ServiceError) && first.row.requestDigest === p.item.requestDigest) results[p.index] = { created: false, row: first.row };
      else results[p.index] = first instanceof ServiceError ? first : conflict(p.item.event.event_id);
    }
    const out = results.map((r) => r ?? new ServiceError(503, 'NOT_PROCESSED', 'item was not processed'));
    const tenants: (string | undefined)[] = new Array(out.length);
    for (const p of pending) tenants[p.index] = p.item.event.tenant_id;
    return { out, tenants };
  }

  /** Outcomes by tenant; an item refused before its tenant was established counts under ''. */
  private count(m: Metrics, out: readonly (AttestOutcome | ServiceError)[], tenants: readonly (string | undefined)[]): void {
    for (let i = 0; i < out.length; i++) {
      const r = out[i]!;
      m.attestations.inc(tenants[i] ?? '', r instanceof ServiceError ? (r.status >= 500 ? 3 : 2) : r.created ? 0 : 1);
    }
  }

  /** `looked`: the items' replays were looked up before (attestAs does for more than one item). */
  private async writeGroup(cid: string, group: { index: number; item: PendingEvent }[], results: (AttestOutcome | ServiceError | undefined)[], looked: boolean): Promise<void> {
    const tenantId = group[0]!.item.event.tenant_id;
    try {
      const written = await this.writer.submit(cid, tenantId, group.map((g) => g.item), () => this.keys.signer(this.clock));
      if (this.policies) {
        let queued = 0;
        let deferred = 0;
        for (const w of written) {
          if (w.proofStatus === 'pending') queued++;
          else if (w.proofStatus === 'deferred') deferred++;
        }
        this.policies.noteWritten(tenantId, queued, deferred);
      }
      group.forEach((g, i) => {
        const w = written[i]!;
        const row = freshRow({
          id: w.id,
          tenantId,
          eventId: g.item.event.event_id,
          requestDigest: g.item.requestDigest,
          statementDigest: w.statementDigest,
          billingWindowId: g.item.event.billing_window_id,
          chainId: cid,
          seq: w.seq,
          chargeMicros: w.chargeMicros,
          currency: w.currency,
          bundleText: w.bundleText,
          blinding: w.blinding,
          proofStatus: w.proofStatus,
          logIndex: null,
          createdAt: w.issuedAt,
          eventAt: new Date(g.item.event.event_timestamp),
          cursor: w.cursor,
        });
        results[g.index] = { created: true, row };
      });
    } catch (caught) {
      this.writer.forget(cid);
      let e = caught;
      if (e instanceof ItemRefused) {
        const refused = e.error;
        if (refused instanceof ChargeError || refused instanceof ServiceError) {
          // One item's own fault (its charge, or the running total it would reach) stopped the
          // group while it was being signed, before anything was stored: that item fails alone,
          // the items before it are written as a group, and those after it follow on the chain.
          const before = group.slice(0, e.index);
          if (before.length) await this.writeGroup(cid, before, results, looked);
          const item = group[e.index]!;
          // a single event skipped the look-up for replays: the retry of an event that is stored
          // (say, the one that brought the running total to its limit) is a replay, not a refusal
          if (looked || (await this.answerStored([item], results)).length) results[item.index] = refused instanceof ChargeError ? chargeProblem(refused, 'meter_event') : refused;
          const after = group.slice(e.index + 1);
          if (after.length) await this.writeGroup(cid, after, results, looked);
          return;
        }
        e = refused;
      }
      if (e instanceof ServiceError && e.code === 'PERIOD_SETTLED') {
        // a retry of an event stored before the window was sealed is a replay, not a refusal (a
        // single event skips the look-up for replays before writing: do it now)
        for (const g of await this.answerStored(group, results)) results[g.index] = e;
        return;
      }
      if (e instanceof ServiceError) return group.forEach((g) => (results[g.index] = e)); // e.g. KEY_UNAVAILABLE
      if (e instanceof TariffMismatch || isUniqueViolation(e)) {
        // Something in the group raced with another request: settle the items one by one.
        if (group.length > 1) {
          for (const g of group) await this.writeGroup(cid, [g], results, looked);
          return;
        }
        const g = group[0]!;
        if (e instanceof TariffMismatch) {
          results[g.index] = new ServiceError(422, 'TARIFF_MISMATCH', 'tariff_snapshot names a published version but differs from it');
          return;
        }
        if (!(await this.answerStored([g], results)).length) return;
      }
      // Anything else (the store failed or is unreachable): this group's items fail alone, with
      // a retryable answer; the other items of a batch keep their results.
      this.onStoreFailure(`attest: storing ${group.length} event(s) of chain ${cid} failed`, e);
      const failed = isStoreUnavailable(e)
        ? storeUnavailable()
        : new ServiceError(503, 'STORE_FAILED', 'the attestation could not be stored; retry the request (if it was stored after all, the retry is answered as a replay)');
      group.forEach((g) => (results[g.index] = failed));
    }
  }

  /** Answers the items of `group` that are stored already: a replay of the same content, a
   *  conflict otherwise. Returns the items that are not stored. */
  private async answerStored<G extends { index: number; item: PendingEvent }>(group: G[], results: (AttestOutcome | ServiceError | undefined)[]): Promise<G[]> {
    const stored = await this.existing(group.map((g) => g.item.event));
    return group.filter((g) => {
      const row = stored.get(`${g.item.event.tenant_id}\u0000${g.item.event.event_id}`);
      if (row) results[g.index] = row.requestDigest === g.item.requestDigest ? { created: false, row } : conflict(g.item.event.event_id);
      return !row;
    });
  }

  private async existing(events: readonly MeterEvent[]): Promise<Map<string, AttestationRow>> {
    const out = new Map<string, AttestationRow>();
    if (!events.length) return out;
    const a = schema.attestations;
    const byTenant = new Map<string, string[]>();
    for (const e of events) {
      const ids = byTenant.get(e.tenant_id);
      if (ids) ids.push(e.event_id);
      else byTenant.set(e.tenant_id, [e.event_id]);
    }
    for (const [tenant, ids] of byTenant) {
      // one array parameter rather than one per id: a fixed-shape statement that is cheap to build
      const rows = await selectRows(this.db).where(and(eq(a.tenantId, tenant), sql`${a.eventId} = any(array(select jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb)))`));
      for (const r of rows) out.set(`${r.tenantId}\u0000${r.eventId}`, r);
    }
    return out;
  }

  /** An attestation by its id: the statement digest's 64 hex digits, or the digest itself
   *  (`sha256:` and the same digits), as bundles and adjustments name it. */
  async get(principal: Principal, given: string): Promise<AttestationRow> {
    requireScope(principal, 'read');
    const id = given.startsWith('sha256:') ? given.slice('sha256:'.length) : given;
    if (!/^[0-9a-f]{64}$/.test(id)) throw new ServiceError(404, 'NOT_FOUND', 'attestation not found');
    const [row] = await selectRows(this.db).where(eq(schema.attestations.id, id));
    // A key that may not see the tenant gets the same answer as for a missing attestation.
    if (!row || !maySee(principal, row.tenantId) || !consumerMaySee(principal, row)) throw new ServiceError(404, 'NOT_FOUND', 'attestation not found');
    return row;
  }

  async list(principal: Principal, q: { tenantId: string; windowId?: string; after?: number; limit: number }): Promise<AttestationRow[]> {
    requireScope(principal, 'read');
    requireTenant(principal, q.tenantId);
    const a = schema.attestations;
    return selectRows(this.db)
      .where(
        and(
          eq(a.tenantId, q.tenantId),
          q.windowId ? eq(a.billingWindowId, q.windowId) : undefined,
          q.after !== undefined ? sql`${a.cursor} > ${q.after}` : undefined,
          // a consumer-scoped key: the attestations whose PoP this consumer signed
          principal.consumer !== undefined ? sql`(${a.bundle}->'consumer_pop'->>'consumer_id') = ${principal.consumer}` : undefined,
        ),
      )
      .orderBy(a.cursor)
      .limit(q.limit);
  }

  /** One page of a tenant's attestations in chain order (chain id, then seq), after `after`:
   *  the rows of an evidence pack, read page by page. `chainId`/`maxSeq` narrow it to one chain's
   *  first statements (a settlement's). Authorisation is the caller's (evidence.ts). */
  async chainPage(q: { tenantId: string; windowId: string; consumerId?: string; chainId?: string; maxSeq?: bigint; after?: { chainId: string; seq: bigint }; limit: number }): Promise<AttestationRow[]> {
    const a = schema.attestations;
    return selectRows(this.db)
      .where(
        and(
          eq(a.tenantId, q.tenantId),
          eq(a.billingWindowId, q.windowId),
          q.chainId !== undefined ? eq(a.chainId, q.chainId) : undefined,
          q.maxSeq !== undefined ? sql`${a.seq} <= ${q.maxSeq.toString()}::bigint` : undefined,
          q.after ? sql`(${a.chainId}, ${a.seq}) > (${q.after.chainId}, ${q.after.seq.toString()}::bigint)` : undefined,
          q.consumerId !== undefined ? sql`(${a.bundle}->'consumer_pop'->>'consumer_id') = ${q.consumerId}` : undefined,
        ),
      )
      .orderBy(a.chainId, a.seq)
      .limit(q.limit);
  }

  /** The tenant's attestations with these ids, in chain order (a settlement's late statements). */
  async byIds(tenantId: string, ids: readonly string[]): Promise<AttestationRow[]> {
    const a = schema.attestations;
    return selectRows(this.db)
      .where(and(eq(a.tenantId, tenantId), sql`${a.id} in (select jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb))`))
      .orderBy(a.chainId, a.seq);
  }
}

/** A row this process has just written. Its bundle object is parsed from the stored text when
 *  something asks for it (an answer needs only the text): the writer keeps no bundle objects. */
function freshRow(fields: Omit<AttestationRow, 'bundle'> & { bundleText: string }): AttestationRow {
  const text = fields.bundleText;
  let bundle: unknown;
  return Object.defineProperty(fields, 'bundle', {
    get: () => (bundle ??= JSON.parse(text)),
    set: (v: unknown) => void (bundle = v),
    enumerable: true,
    configurable: true,
  }) as AttestationRow;
}

/** A consumer-scoped key sees only the attestations whose PoP its consumer signed. */
const consumerMaySee = (p: Principal, row: AttestationRow) => p.consumer === undefined || (row.bundle as { consumer_pop?: { consumer_id?: string } }).consumer_pop?.consumer_id === p.consumer;

/** The tariff an event is attested under: a published version (its salt and salted digest), or
 *  an inline tariff that is not published. */
type TariffInUse =
  | { readonly snapshot: TariffSnapshot; readonly tariffDigest: string; readonly inline: false; readonly salt: bigint; readonly tariffDigestV2: string }
  | { readonly snapshot: TariffSnapshot; readonly tariffDigest: string; readonly inline: true };

const fromPublished = (p: PublishedTariff): TariffInUse => ({ snapshot: p.snapshot, tariffDigest: p.tariffDigest, inline: false, salt: p.salt, tariffDigestV2: p.tariffDigestV2 });

const conflict = (eventId: string) => new ServiceError(409, 'IDEMPOTENCY_CONFLICT', `event_id ${eventId} was already attested with different content`);

/** Tariff digests, memoized per snapshot object (published snapshots are shared, cached objects). */
const tariffDigests = new WeakMap<TariffSnapshot, string>();
function tariffDigestOf(t: TariffSnapshot): string {
  let d = tariffDigests.get(t);
  if (!d) tariffDigests.set(t, (d = digestOf(t)));
  return d;
}

/** Chain ids, memoized (a bounded map: the set of active meters is small). */
const chainIds = new Map<string, string>();
function chainIdOf(e: MeterEvent): string {
  const k = `${e.tenant_id}\u0000${e.endpoint}\u0000${e.billing_window_id}`;
  let id = chainIds.get(k);
  if (!id) {
    if (chainIds.size > 50_000) chainIds.clear();
    chainIds.set(k, (id = chainId(e.tenant_id, e.endpoint, e.billing_window_id)));
  }
  return id;
}
