// Writing attestations: an in-process mutex per chain and a cached chain head; signed rows are
// stored by ONE atomic SQL statement per group commit — chain heads move only if they are still
// where we read them (optimistic check on next_seq, so several API processes stay correct), and
// the attestations, their proof jobs and their log-queue entries are inserted by data-modifying
// CTEs of the same statement. An error (e.g. a unique violation on (tenant, event_id)) aborts the
// whole statement; its chain groups are then stored one by one.
import { sql } from 'drizzle-orm';
import { attestEvent } from '../core/attest.ts';
import { type PricingTariff, pricingFromTariff } from '../core/charge.ts';
import { randomSalt } from '../core/binding-v2.ts';
import { digestOf } from '../core/canonical.ts';
import type { SigningKey } from '../core/keys.ts';
import type { ConsumerPop, MeterEvent, TariffSnapshot } from '../core/schemas.ts';
import type { ChainLink } from '../core/statement.ts';
import { U64_MAX } from '../core/u64.ts';
import { toHex } from '../core/bytes.ts';
import { leafHash } from '../core/merkle.ts';
import { type Db, hasSqlState, rowsOf } from '../db/index.ts';
import { isStoreUnavailable } from '../db/faults.ts';
import type { InitialProofStatus } from '../core/proof-policy.ts';
import { ServiceError } from './errors.ts';
import { unknownKey } from './auth.ts';
import { type Metrics, since } from './metrics.ts';

export interface PendingEvent {
  readonly event: MeterEvent;
  /** The event's canonical text (RFC 8785), when the caller made it already. */
  readonly eventText?: string;
  readonly tariff: TariffSnapshot;
  /** A published tariff version's salt and salted digest. Absent for an inline tariff that is
   *  not a published version: each event then gets a salt of its own. */
  readonly tariffSalt?: bigint;
  readonly tariffDigestV2?: string;
  /** Idempotency: the digest of the normalized event and tariff (unsalted; stored, never served). */
  readonly requestDigest: string;
  /** Set when the tariff was given inline and is not known to be published: the write must fail
   *  if a published version with this id and version exists with another digest. */
  readonly inlineTariffDigest?: string;
  /** The API key of a request authenticated from memory (Principal.unconfirmed): the statement
   *  storing the event refuses it if the key is revoked (401), atomically. */
  readonly apiKeyId?: string;
  /** The consumer's proof of possession, checked and its nonce recorded (src/service/pop.ts). */
  readonly consumerPop?: ConsumerPop;
  /** The stored proof status of the signed statement, from its digest (the tenant's proof policy,
   *  src/service/proof-policy.ts); `pending` (a proof job is queued) when absent. */
  readonly proof?: (statementDigest: string) => InitialProofStatus;
}

export interface WrittenAttestation {
  readonly id: string;
  /** JSON.stringify(bundle): the text stored, and answered as is. The bundle object itself is not
   *  kept: a batch's thousand bundles would otherwise outlive their signing as object graphs for
   *  the garbage collector to trace and move until the answer is sent. */
  readonly bundleText: string;
  readonly chargeMicros: string;
  readonly currency: string;
  readonly issuedAt: Date;
  readonly statementDigest: string;
  readonly seq: bigint;
  readonly blinding: string;
  readonly proofStatus: InitialProofStatus;
  readonly cursor: number;
}

export class StaleHead extends Error {}

/** Item `index` of a submission could not be priced or signed (its charge, or the running total
 *  it would reach, is out of range: `error`). Nothing of the submission was stored; the items
 *  before it can be, as a group, and the chain continues after it. */
export class ItemRefused extends Error {
  constructor(
    readonly index: number,
    readonly error: unknown,
  ) {
    super(error instanceof Error ? error.message : String(error));
  }
}
export class TariffMismatch extends Error {}

type Head = ChainLink;

/** One chain's signed rows, ready to be stored if the chain head is still `start`. */
interface Prepared {
  readonly cid: string;
  readonly tenantId: string;
  readonly windowId: string;
  readonly start: Head;
  readonly link: Head;
  /** The rows without their bundles, each as JSON text (each row's bundle text is in `out`, in
   *  the same order). */
  readonly rows: readonly string[];
  readonly out: readonly Omit<WrittenAttestation, 'cursor'>[];
  readonly guards: readonly PendingEvent[];
  /** The distinct API keys to check (PendingEvent.apiKeyId). */
  readonly keys: readonly string[];
}

export interface Signing {
  readonly key: SigningKey;
  readonly issuedAt: Date;
}

interface ChainRequest {
  readonly items: readonly PendingEvent[];
  resolve(w: WrittenAttestation[]): void;
  reject(e: unknown): void;
}

interface Waiting {
  readonly p: Prepared;
  resolve(w: WrittenAttestation[]): void;
  reject(e: unknown): void;
}

/** Attempts to write a chain whose head another process keeps moving (then the request fails). */
const MAX_STALE_RETRIES = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Statements in flight at once, and events per statement. One at a time for single events: the
 *  requests that arrive meanwhile share the next statement, and each statement has a fixed cost
 *  (a round trip, planning, a commit and its WAL flush, ~1 ms of PostgreSQL CPU) that larger
 *  statements spread over more events. Measured with `npm run bench:attest`: a second statement
 *  in flight never raised throughput, and cost 15–20% where concurrent commits waited on each
 *  other's WAL flush (docs/benchmarks.md, "What did not help"). */
const MAX_IN_FLIGHT = 1;
const MAX_EVENTS_PER_STATEMENT = 250;
/** With this many events waiting (batches), up to MAX_IN_FLIGHT_BULK statements run at once: a
 *  large statement executes on one PostgreSQL backend, several use several. */
const BULK_WAITING = 200;
const MAX_IN_FLIGHT_BULK = 6;

/** A tariff snapshot's JSON text and pricing, once per snapshot object: a published version's
 *  snapshot is one object, held by the tariff cache and shared by every event priced under it.
 *  The service never changes a snapshot object once made. */
const TARIFF_PARTS = new WeakMap<TariffSnapshot, { readonly text: string; readonly pricing: PricingTariff }>();
function tariffParts(t: TariffSnapshot): { readonly text: string; readonly pricing: PricingTariff } {
  let p = TARIFF_PARTS.get(t);
  if (p === undefined) TARIFF_PARTS.set(t, (p = { text: JSON.stringify(t), pricing: pricingFromTariff(t) }));
  return p;
}

/** SQLSTATE 40P01: two statements locked chain rows in opposite orders; one was cancelled. */
const DEADLOCK = '40P01';

/** The rows of a store statement: one jsonb parameter holds every row but its bundle; the bundles
 *  travel as one text parameter, separated by U+001E (JSON text never holds it unescaped), and
 *  are zipped to their rows by position (ROWS FROM). Inside the jsonb parameter they would be
 *  parsed into jsonb, PostgreSQL's largest cost of the statement (migration 0007). */
const BUNDLE_SEPARATOR = '\u001e';
const ROWS_FROM = sql.raw(`rows from (jsonb_to_recordset(`);
const ROWS_THEN_BUNDLES = sql.raw(
  `::jsonb) as (id text, tenant_id text, event_id text, request_digest text, statement_digest text, billing_window_id text, chain_id text, seq bigint, charge_micros numeric, currency text, blinding text, created_at timestamptz, event_at timestamptz, leaf_hash text, proof_status text),
          unnest(string_to_array(`,
);
const ROWS_END = sql.raw(
  `::text, E'\\x1e'))) as x(id, tenant_id, event_id, request_digest, statement_digest, billing_window_id, chain_id, seq, charge_micros, currency, blinding, created_at, event_at, leaf_hash, proof_status, bundle)`,
);
const INSERT_ATTESTATIONS = sql.raw(
  `insert into attestations (id, tenant_id, event_id, request_digest, statement_digest, billing_window_id, chain_id, seq, charge_micros, currency, bundle, blinding, proof_status, created_at, event_at)
        select v.id, v.tenant_id, v.event_id, v.request_digest, v.statement_digest, v.billing_window_id, v.chain_id, v.seq, v.charge_micros, v.currency, v.bundle::json, v.blinding, coalesce(v.proof_status, 'pending'), v.created_at, v.event_at
        from v`,
);
/** The proof job (of each row stored `pending`: not `on_demand` nor `deferred`) and the log-queue
 *  entry (with its precomputed leaf hash) of each stored row. */
const QUEUE_WORK = sql.raw(`j as (
        insert into proof_jobs (attestation_id, status) select id, 'queued' from a where a.proof_status = 'pending'
      ), q as (
        insert into log_queue (attestation_id, leaf_hash) select a.id, decode(v.leaf_hash, 'hex') from a join v on v.id = a.id order by a.cursor
      )`);

/**
 * Writes chains' attestations. Events of one chain are serialized in this process (submit) and
 * signed from the cached chain head; the signed rows then go to a group commit: every chain group
 * waiting while a statement is in flight is stored by the next statement, together. Under load
 * one statement (one round trip, one commit) carries the events of many requests, across chains.
 * Each chain's head moves only if it is still where this process read it (optimistic check on
 * next_seq), so several API processes stay correct; a chain that lost the race is re-read and
 * re-signed. Anything that aborts a shared statement (a duplicate event id, a tariff published
 * meanwhile, a deadlock with another process, any other database error) is retried one chain
 * group per statement, so it only ever affects the group that caused it — except an unavailable
 * store (a lost connection, a statement timeout), which every group of the statement is
 * answered with at once.
 */
export class ChainWriter {
  private readonly heads = new Map<string, Head>();
  /** Per chain, the requests waiting while the chain is being written (a key = a busy chain). */
  private readonly queues = new Map<string, ChainRequest[]>();
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;
  private pumpScheduled = false;
  /** Statements that stored attestations, and the attestations they stored (group commit at work
   *  when events > statements). */
  readonly stats = { statements: 0, events: 0 };
  /** Wall time (ms) of the most recent store statements, commit included: a ring buffer. */
  private readonly durations = new Float64Array(1024);
  private recorded = 0;

  /** Resolved when nothing is queued, waiting or in flight (see idle()). */
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly metrics?: Metrics,
  ) {}

  /** Resolves once every chain group submitted so far is settled (stored or refused): shutdown
   *  waits for it, so that nothing acknowledged is cut off mid-commit. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.queues.size === 0 && this.waiting.length === 0 && this.inFlight === 0;
  }

  private checkIdle(): void {
    if (this.idleWaiters.length && this.isIdle()) for (const r of this.idleWaiters.splice(0)) r();
  }

  /**
   * Price, sign and store `items` (all of chain `cid`, in order) after everything submitted
   * earlier for the chain in this process. While the chain is being written, later submissions
   * wait and are then written together as one group (a hot meter's concurrent requests share a
   * statement, as different meters do through the group commit). If a combined group fails, each
   * submission is written again on its own, so an error reaches only the request it belongs to.
   * `signing` gives the key and the issue time, read when the group is signed.
   */
  submit(cid: string, tenantId: string, items: readonly PendingEvent[], signing: () => Promise<Signing>): Promise<WrittenAttestation[]> {
    if (items.length === 0) return Promise.resolve([]); // nothing to sign or store (nor a chain row to create)
    return new Promise((resolve, reject) => {
      const request = { items, resolve, reject };
      const queue = this.queues.get(cid);
      if (queue) return void queue.push(request);
      this.queues.set(cid, [request]);
      void this.drain(cid, tenantId, signing);
    });
  }

  private async drain(cid: string, tenantId: string, signing: () => Promise<Signing>): Promise<void> {
    const writeAll = async (rs: readonly ChainRequest[]) => {
      const { key, issuedAt } = await signing();
      return this.write(cid, tenantId, rs.flatMap((r) => r.items), key, issuedAt.toISOString());
    };
    // Write `rs` as one group; if that fails, halve it until the failing requests stand alone
    // (a replayed event id makes the whole group fail: a few of them cost a few statements).
    const writeSplit = async (rs: readonly ChainRequest[]): Promise<void> => {
      try {
        const written = await writeAll(rs);
        let at = 0;
        for (const r of rs) r.resolve(written.slice(at, (at += r.items.length)));
      } catch (e) {
        // an unavailable store is every request's answer: splitting would wait it out again and
        // again (write() has forgotten the chain head)
        if (rs.length === 1 || isStoreUnavailable(e)) {
          for (const r of rs) r.reject(e);
          return;
        }
        const half = Math.ceil(rs.length / 2);
        await writeSplit(rs.slice(0, half));
        await writeSplit(rs.slice(half));
      }
    };
    for (let queue = this.queues.get(cid)!; queue.length; ) {
      // everything waiting, except a request repeating an event id of an earlier one: it waits for
      // the next round, when the first is stored and it is answered as a replay or a conflict
      const taken: ChainRequest[] = [];
      const ids = new Set<string>();
      for (let i = 0; i < queue.length; ) {
        const r = queue[i]!;
        if (r.items.some((it) => ids.has(it.event.event_id))) {
          i++;
          continue;
        }
        for (const it of r.items) ids.add(it.event.event_id);
        taken.push(r);
        queue.splice(i, 1);
      }
      await writeSplit(taken);
    }
    this.queues.delete(cid);
    this.checkIdle();
  }

  private async readHead(cid: string): Promise<Head> {
    const r = rowsOf(await this.db.execute(sql`select next_seq, prev_digest, cumulative_units from chains where chain_id = ${cid}`));
    const row = r[0];
    const head = row
      ? { seq: BigInt(row['next_seq'] as string | number), prev: (row['prev_digest'] as string | null) ?? null, cumulativeBefore: BigInt(row['cumulative_units'] as string) }
      : { seq: 0n, prev: null, cumulativeBefore: 0n };
    if (this.heads.size > 100_000) this.heads.clear();
    this.heads.set(cid, head);
    return head;
  }

  /** Price, sign and store `items` (all of chain `cid`, in order); the caller serializes per chain. */
  private async write(cid: string, tenantId: string, items: readonly PendingEvent[], key: SigningKey, issuedAt: string): Promise<WrittenAttestation[]> {
    let head = this.heads.get(cid) ?? (await this.readHead(cid));
    for (let attempt = 0; ; attempt++) {
      try {
        const signStart = performance.now();
        const prepared = this.prepare(cid, tenantId, items, key, issuedAt, head);
        const storeStart = performance.now();
        this.metrics?.attestPhase(2, (storeStart - signStart) / 1000);
        let written: WrittenAttestation[];
        try {
          written = await new Promise<WrittenAttestation[]>((resolve, reject) => {
            this.waiting.push({ p: prepared, resolve, reject });
            this.schedulePump();
          });
        } finally {
          this.metrics?.attestPhase(3, since(storeStart)); // refused groups too
        }
        this.heads.set(cid, prepared.link);
        return written;
      } catch (e) {
        const retry = e instanceof StaleHead || hasSqlState(e, DEADLOCK);
        if (!retry || attempt >= MAX_STALE_RETRIES) {
          this.heads.delete(cid);
          throw e;
        }
        // Another process moved this chain meanwhile (or locked its row in the opposite order).
        // Back off a little (random, growing) so that two processes writing the same chain do not
        // keep invalidating each other, then re-read.
        await sleep(Math.random() * Math.min(50, 2 ** attempt));
        head = await this.readHead(cid);
      }
    }
  }

  private prepare(cid: string, tenantId: string, items: readonly PendingEvent[], key: SigningKey, issuedAt: string, start: Head): Prepared {
    let link = start;
    const out: Omit<WrittenAttestation, 'cursor'>[] = [];
    const rows: string[] = [];
    const issued = new Date(issuedAt);
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      let r: ReturnType<typeof attestEvent>;
      try {
        const t = tariffParts(it.tariff);
        r = attestEvent({ event: it.event, tariff: it.tariff, tariffText: t.text, pricing: t.pricing, key, chain: link, issuedAt, eventSalt: randomSalt(),
          ...(it.tariffSalt === undefined ? { tariffSalt: randomSalt() } : { tariffSalt: it.tariffSalt, ...(it.tariffDigestV2 ? { tariffDigest: it.tariffDigestV2 } : {}) }),
          chainId: cid,
          ...(it.eventText === undefined ? {} : { eventText: it.eventText }),
          ...(it.consumerPop ? { consumerPop: it.consumerPop } : {}),
        });
        if (r.next.cumulativeBefore > U64_MAX) {
          throw new ServiceError(422, 'CUMULATIVE_OUT_OF_RANGE', 'the running unit total of this meter and window would reach 2^64');
        }
      } catch (e) {
        throw new ItemRefused(i, e);
      }
      const id = r.statementDigest.slice('sha256:'.length);
      // the column once held v1's commitment blinding; it keeps the event's salt (also in the bundle)
      const blinding = r.bundle.salts!.event;
      const proofStatus = it.proof?.(r.statementDigest) ?? 'pending';
      // One JSON parameter for all rows but their bundles (jsonb_to_recordset; the bundles go as
      // text, see ROWS_FROM): cheap to build and to parse.
      rows.push(JSON.stringify({
        id,
        tenant_id: tenantId,
        event_id: it.event.event_id,
        request_digest: it.requestDigest,
        statement_digest: r.statementDigest,
        billing_window_id: it.event.billing_window_id,
        chain_id: cid,
        seq: link.seq.toString(),
        charge_micros: r.statement.charge_micros,
        currency: r.statement.currency,
        blinding,
        created_at: issuedAt,
        event_at: it.event.event_timestamp,
        leaf_hash: toHex(leafHash(r.leafBytes)),
        // absent (null in the statement) for the usual `pending`
        ...(proofStatus === 'pending' ? {} : { proof_status: proofStatus }),
      }));
      // JSON text escapes every control character, so it never holds BUNDLE_SEPARATOR
      const bundleText = r.bundleText;
      out.push({ id, bundleText, chargeMicros: r.statement.charge_micros, currency: r.statement.currency, issuedAt: issued, statementDigest: r.statementDigest, seq: link.seq, blinding, proofStatus });
      link = r.next;
    }
    const keys = new Set<string>();
    for (const it of items) if (it.apiKeyId !== undefined) keys.add(it.apiKeyId);
    return { cid, tenantId, windowId: items[0]!.event.billing_window_id, start, link, rows, out, guards: items.filter((i) => i.inlineTariffDigest), keys: [...keys] };
  }

  /** Groups queued in the same turn of the event loop (e.g. the chains of one batch) share a statement. */
  private schedulePump(): void {
    // nothing in flight: store at once (an idle writer adds no latency); otherwise gather what
    // arrives during this turn of the event loop
    if (this.inFlight === 0 && !this.pumpScheduled) return this.pump();
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private waitingEvents(): number {
    let n = 0;
    for (const w of this.waiting) if ((n += w.p.rows.length) >= BULK_WAITING) break;
    return n;
  }

  /** Start statements for waiting chain groups while fewer than MAX_IN_FLIGHT are running. */
  private pump(): void {
    const limit = () => (this.waitingEvents() >= BULK_WAITING ? MAX_IN_FLIGHT_BULK : MAX_IN_FLIGHT);
    while (this.inFlight < limit() && this.waiting.length) {
      const batch: Waiting[] = [];
      const chains = new Set<string>();
      let events = 0;
      // Take waiting groups in order up to the statement size; a chain appears at most once per
      // statement (submit already guarantees it; a repeat would stay queued for the next one).
      for (let i = 0; i < this.waiting.length; ) {
        const w = this.waiting[i]!;
        if (batch.length > 0 && events + w.p.rows.length > MAX_EVENTS_PER_STATEMENT) break;
        if (chains.has(w.p.cid)) {
          i++;
          continue;
        }
        this.waiting.splice(i, 1);
        chains.add(w.p.cid);
        events += w.p.rows.length;
        batch.push(w);
      }
      batch.sort((x, y) => (x.p.cid < y.p.cid ? -1 : x.p.cid > y.p.cid ? 1 : 0));
      this.inFlight++;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        this.inFlight--;
        this.pump();
        this.checkIdle();
      };
      void this.flush(batch, release)
        .catch(() => undefined) // every entry is settled by flush itself
        .finally(release);
    }
  }

  /** Store `batch`; `release` frees its in-flight slot (called at the latest when done). */
  private async flush(batch: Waiting[], release: () => void): Promise<void> {
    try {
      if (batch.length === 1) return await this.settle(batch[0]!, () => this.storeOne(batch[0]!.p));
      let stored: Map<string, Map<string, number>>;
      let refusals: Refusals;
      try {
        ({ stored, ...refusals } = await this.storeMany(batch.map((w) => w.p)));
      } catch (e) {
        // The store is down or too slow (a lost connection, a statement timeout behind a lock):
        // storing the groups one by one would wait the same fault out once per group, well past
        // the statement bound. Every group gets the answer now (503); a client's retry is a
        // replay if the statement committed after all (write() forgets the chain heads).
        if (isStoreUnavailable(e)) {
          for (const w of batch) w.reject(e);
          return;
        }
        // The shared statement failed as a whole for a reason of one of its groups: a duplicate
        // event id, a tariff published meanwhile, a deadlock, a value the store refuses... Store
        // the groups one by one so that the error reaches only the group it belongs to. These
        // retries give up the in-flight slot first: new statements need not wait behind them.
        release();
        for (const w of batch) await this.settle(w, () => this.storeOne(w.p));
        return;
      }
      for (const w of batch) {
        const cursors = stored.get(w.p.cid);
        if (cursors) w.resolve(withCursors(w.p, cursors));
        else w.reject(notStored(w.p, refusals));
      }
    } finally {
      // never leave a request waiting (resolve/reject after settlement are no-ops)
      for (const w of batch) w.reject(new Error('chain group was not settled'));
    }
  }

  private async settle(w: Waiting, store: () => Promise<WrittenAttestation[]>): Promise<void> {
    try {
      w.resolve(await store());
    } catch (e) {
      w.reject(e);
    }
  }

  /** The tariff guard of inline tariffs that might be published meanwhile: true when no
   *  published version with the same id and version has another digest. Each distinct inline
   *  tariff is checked once, as one jsonb parameter however many events carry it. */
  private tariffGuard(guards: readonly PendingEvent[]) {
    if (!guards.length) return sql`true`;
    const distinct = new Map(guards.map((g) => [`${g.tariff.tariff_id}\u0000${g.tariff.tariff_version}\u0000${g.inlineTariffDigest}`, { id: g.tariff.tariff_id, version: g.tariff.tariff_version, digest: g.inlineTariffDigest }]));
    return sql`not exists (select 1 from tariffs t join jsonb_to_recordset(${JSON.stringify([...distinct.values()])}::jsonb) as g(id text, version text, digest text)
      on t.tariff_id = g.id and t.tariff_version = g.version and t.tariff_digest <> g.digest)`;
  }

  /** One chain group alone: stored, or StaleHead when its chain head moved elsewhere. */
  private async storeOne(p: Prepared): Promise<WrittenAttestation[]> {
    const { stored, ...refusals } = await this.storeMany([p]);
    const cursors = stored.get(p.cid);
    if (!cursors) throw notStored(p, refusals);
    return withCursors(p, cursors);
  }

  /** Chain groups (distinct chains) in one statement: each chain row is moved if it is still at
   *  the expected head (or created if expected to be new); chains whose head moved elsewhere
   *  store nothing, the others are stored. Returns, for each stored chain, attestation id →
   *  cursor, and the chains refused because their tenant's window is being or has been settled
   *  (a live settlement run: `sealed`). A settlement run seals a window under a SHARE ROW
   *  EXCLUSIVE lock on chains, which this statement's update and insert conflict with: the
   *  statement either commits before the seal or takes its snapshot after it (and sees it). A
   *  chain group with an API key to check (Prepared.keys) is stored only if none of its keys is
   *  revoked in the statement's snapshot (`revoked`): a revocation committed before the statement
   *  began refuses it. */
  private async storeMany(ps: readonly Prepared[]): Promise<{ stored: Map<string, Map<string, number>> } & Refusals> {
    const chains = ps.map((p) => ({
      chain_id: p.cid,
      tenant_id: p.tenantId,
      billing_window_id: p.windowId,
      next_seq: p.link.seq.toString(),
      prev_digest: p.link.prev,
      cumulative_units: p.link.cumulativeBefore.toString(),
      expected: p.start.seq.toString(),
      ...(p.keys.length ? { keys: p.keys } : {}),
    }));
    const guard = this.tariffGuard(ps.flatMap((p) => p.guards));
    // rows and their bundles are zipped by position: each group's rows and `out` are built item by
    // item, and both are flattened group by group
    const rows = `[${ps.flatMap((p) => p.rows).join(',')}]`;
    const bundles = ps.flatMap((p) => p.out.map((o) => o.bundleText));
    const statement = sql`
      with i as (
        select * from jsonb_to_recordset(${JSON.stringify(chains)}::jsonb)
          as x(chain_id text, tenant_id text, billing_window_id text, next_seq bigint, prev_digest text, cumulative_units numeric, expected bigint, keys jsonb)
      ), s as (
        select i.chain_id from i where exists (select 1 from settlement_runs r
          where r.tenant_id = i.tenant_id and r.billing_window_id = i.billing_window_id and r.status in ('running', 'settled')
            and r.late_events = 'refuse')
      ), rk as (
        select i.chain_id from i where exists (select 1 from jsonb_array_elements_text(i.keys) as k(id)
          where not exists (select 1 from api_keys ak where ak.id = k.id and ak.revoked_at is null))
      ), g as (
        select ${guard} as ok
      ), u as (
        update chains set next_seq = i.next_seq, prev_digest = i.prev_digest, cumulative_units = i.cumulative_units
        from i where chains.chain_id = i.chain_id and i.expected > 0 and chains.next_seq = i.expected and (select ok from g)
          and i.chain_id not in (select chain_id from s) and i.chain_id not in (select chain_id from rk)
        returning chains.chain_id
      ), n as (
        insert into chains (chain_id, tenant_id, next_seq, prev_digest, cumulative_units)
        select chain_id, tenant_id, next_seq, prev_digest, cumulative_units from i where i.expected = 0 and (select ok from g)
          and i.chain_id not in (select chain_id from s) and i.chain_id not in (select chain_id from rk)
        on conflict (chain_id) do nothing
        returning chain_id
      ), ok as (
        select chain_id from u union all select chain_id from n
      ), v as (
        select * from ${ROWS_FROM}${rows}${ROWS_THEN_BUNDLES}${bundles.join(BUNDLE_SEPARATOR)}${ROWS_END}
        where x.chain_id in (select chain_id from ok)
      ), a as (
        ${INSERT_ATTESTATIONS}
        returning id, chain_id, cursor, proof_status
      ), ${QUEUE_WORK}
      select (select json_agg(chain_id) from ok) as chains, (select json_agg(json_build_array(id, cursor)) from a) as cursors,
        not (select ok from g) as tariff_mismatch, (select json_agg(chain_id) from s) as sealed, (select json_agg(chain_id) from rk) as revoked`;
    const started = performance.now();
    let res: Record<string, unknown> | undefined;
    let ok = false;
    try {
      [res] = rowsOf(await this.db.execute(statement));
      ok = true;
    } finally {
      // failed statements too: a deadlock or a lock wait is exactly what the figure should show
      const ms = performance.now() - started;
      this.durations[this.recorded++ % this.durations.length] = ms;
      this.metrics?.storeStatement(ok, ms / 1000);
    }
    if (res?.['tariff_mismatch'] === true) throw new TariffMismatch();
    const ids = (raw: unknown) => new Set(((typeof raw === 'string' ? JSON.parse(raw) : raw) ?? []) as string[]);
    const stored = ids(res?.['chains']);
    const revoked = ids(res?.['revoked']);
    const sealed = ids(res?.['sealed']);
    const cursors = cursorMap(res?.['cursors']);
    this.stats.statements++;
    this.stats.events += cursors.size;
    const out = new Map<string, Map<string, number>>();
    for (const p of ps) if (stored.has(p.cid)) out.set(p.cid, cursors);
    return { stored: out, sealed, revoked };
  }

  /** p50/p95/p99 wall time (ms, commit included) of the last 1,024 store statements, failed ones
   *  included, or null before the first: where an operator sees whether the database is what
   *  makes attest slow. */
  statementLatency(): { p50: number; p95: number; p99: number; statements: number } | null {
    const n = Math.min(this.recorded, this.durations.length);
    if (!n) return null;
    const sorted = this.durations.slice(0, n).sort();
    const at = (q: number) => Math.round(sorted[Math.min(n - 1, Math.floor(q * n))]! * 100) / 100;
    return { p50: at(0.5), p95: at(0.95), p99: at(0.99), statements: n };
  }

  /** Forget a cached head (after a failed write whose effect is unknown). */
  forget(cid: string): void {
    this.heads.delete(cid);
  }
}

/** The refusal of an event for a window with a live settlement run whose plan refuses late
 *  events (docs/protocol.md §5.5; with next_period the event is attested, late). */
const periodSettled = (p: Prepared) =>
  new ServiceError(409, 'PERIOD_SETTLED', `window ${p.windowId} of tenant ${p.tenantId} is settled (or being settled); void its settlement to attest more events for it`);

/** Why a store statement left chain groups unstored: their tenant's window is sealed, or an API
 *  key of theirs is revoked. */
interface Refusals {
  readonly sealed: ReadonlySet<string>;
  readonly revoked: ReadonlySet<string>;
}

/** The error of a chain group a statement did not store: a revoked key, a sealed window, or its
 *  head moved elsewhere (StaleHead: re-read and retry). */
const notStored = (p: Prepared, r: Refusals) => (r.revoked.has(p.cid) ? unknownKey() : r.sealed.has(p.cid) ? periodSettled(p) : new StaleHead());

const withCursors = (p: Prepared, cursors: ReadonlyMap<string, number>): WrittenAttestation[] => p.out.map((o) => ({ ...o, cursor: cursors.get(o.id)! }));

function cursorMap(raw: unknown): Map<string, number> {
  const pairs = ((typeof raw === 'string' ? JSON.parse(raw) : raw) ?? []) as [string, number][];
  return new Map(pairs.map(([id, c]) => [id, Number(c)]));
}

/** Identifies a request's content for idempotency: the digests of its normalized event and tariff. */
export const requestDigestOf = (eventDigest: string, tariffDigest: string) => digestOf({ event_digest: eventDigest, tariff_digest: tariffDigest });
