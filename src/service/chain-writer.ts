// Writing attestations of one chain: an in-process mutex per chain and a cached chain head, then
// ONE atomic SQL statement per group of events — the chain head moves only if it is still where
// we read it (optimistic check on next_seq, so several API processes stay correct), and the
// attestations, their proof jobs and their log-queue entries are inserted by data-modifying CTEs
// of the same statement. A unique violation on (tenant, event_id) aborts the whole statement.
import { sql } from 'drizzle-orm';
import { attestEvent } from '../core/attest.ts';
import { randomBlinding } from '../core/commitment.ts';
import { digestOf } from '../core/canonical.ts';
import type { SigningKey } from '../core/keys.ts';
import type { FullBundle, MeterEvent, TariffSnapshot } from '../core/schemas.ts';
import type { ChainLink } from '../core/statement.ts';
import { U64_MAX } from '../core/u64.ts';
import type { Db } from '../db/index.ts';
import { ServiceError } from './errors.ts';

export interface PendingEvent {
  readonly event: MeterEvent;
  readonly tariff: TariffSnapshot;
  readonly eventDigest: string;
  readonly tariffDigest: string;
  readonly requestDigest: string;
  /** Set when the tariff was given inline and is not known to be published: the write must fail
   *  if a published version with this id and version exists with another digest. */
  readonly inlineTariffDigest?: string;
}

export interface WrittenAttestation {
  readonly id: string;
  readonly bundle: FullBundle;
  readonly statementDigest: string;
  readonly seq: bigint;
  readonly blinding: string;
  readonly cursor: number;
}

export class StaleHead extends Error {}
export class TariffMismatch extends Error {}

type Head = ChainLink;

function rowsOf(r: unknown): Record<string, unknown>[] {
  return (Array.isArray(r) ? r : (r as { rows: Record<string, unknown>[] }).rows) ?? [];
}

export class ChainWriter {
  private readonly heads = new Map<string, Head>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly db: Db) {}

  /** Run `fn` with this process's lock on the chain (other processes are handled optimistically). */
  async withChain<T>(cid: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(cid) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(cid, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(cid) === tail) this.locks.delete(cid);
    }
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

  /** Price, sign and store `items` (all of chain `cid`, in order). Call inside withChain(cid). */
  async write(cid: string, tenantId: string, items: readonly PendingEvent[], key: SigningKey, issuedAt: string): Promise<WrittenAttestation[]> {
    let head = this.heads.get(cid) ?? (await this.readHead(cid));
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.tryWrite(cid, tenantId, items, key, issuedAt, head);
      } catch (e) {
        if (!(e instanceof StaleHead) || attempt >= 20) throw e;
        head = await this.readHead(cid);
      }
    }
  }

  private async tryWrite(cid: string, tenantId: string, items: readonly PendingEvent[], key: SigningKey, issuedAt: string, start: Head): Promise<WrittenAttestation[]> {
    let link = start;
    const out: Omit<WrittenAttestation, 'cursor'>[] = [];
    const rows: unknown[] = [];
    for (const it of items) {
      const r = attestEvent({ event: it.event, tariff: it.tariff, key, chain: link, issuedAt, eventDigest: it.eventDigest, tariffDigest: it.tariffDigest, chainId: cid });
      if (r.next.cumulativeBefore > U64_MAX) {
        throw new ServiceError(422, 'CUMULATIVE_OUT_OF_RANGE', 'the running unit total of this meter and window would reach 2^64');
      }
      const id = r.statementDigest.slice('sha256:'.length);
      const blinding = randomBlinding().toString();
      // One JSON parameter for all rows (jsonb_to_recordset below): cheap to build and to parse.
      rows.push({
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
        bundle: r.bundle,
        blinding,
        created_at: issuedAt,
      });
      out.push({ id, bundle: r.bundle, statementDigest: r.statementDigest, seq: link.seq, blinding });
      link = r.next;
    }
    // Inline tariffs that might be published meanwhile: refuse the write when a published version
    // with the same id and version has another digest.
    const guards = items.filter((i) => i.inlineTariffDigest);
    const tariffGuard = guards.length
      ? sql`not exists (select 1 from tariffs t join (values ${sql.join(
          guards.map((g) => sql`(${g.tariff.tariff_id}, ${g.tariff.tariff_version}, ${g.inlineTariffDigest!})`),
          sql`, `,
        )}) as g(id, version, digest) on t.tariff_id = g.id and t.tariff_version = g.version and t.tariff_digest <> g.digest)`
      : sql`true`;
    const expected = start.seq.toString();
    const statement = sql`
      with c as (
        insert into chains (chain_id, tenant_id, next_seq, prev_digest, cumulative_units)
        select ${cid}, ${tenantId}, ${link.seq.toString()}::bigint, ${link.prev}, ${link.cumulativeBefore.toString()}::numeric
        where ${tariffGuard}
        on conflict (chain_id) do update set next_seq = excluded.next_seq, prev_digest = excluded.prev_digest, cumulative_units = excluded.cumulative_units
          where chains.next_seq = ${expected}::bigint
        returning 1
      ), a as (
        insert into attestations (id, tenant_id, event_id, request_digest, statement_digest, billing_window_id, chain_id, seq, charge_micros, currency, bundle, blinding, proof_status, created_at)
        select v.id, v.tenant_id, v.event_id, v.request_digest, v.statement_digest, v.billing_window_id, v.chain_id, v.seq, v.charge_micros, v.currency, v.bundle, v.blinding, 'pending', v.created_at
        from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as v(id text, tenant_id text, event_id text, request_digest text, statement_digest text, billing_window_id text, chain_id text, seq bigint, charge_micros numeric, currency text, bundle jsonb, blinding text, created_at timestamptz)
        where exists (select 1 from c)
        returning id, seq, cursor
      ), j as (
        insert into proof_jobs (attestation_id, status) select id, 'queued' from a
      ), q as (
        insert into log_queue (attestation_id) select id from a order by seq
      )
      select (select count(*) from c)::int as chain_ok, (select json_agg(json_build_array(id, cursor)) from a) as cursors,
        ${guards.length ? sql`not ${tariffGuard}` : sql`false`} as tariff_mismatch`;
    const [res] = rowsOf(await this.db.execute(statement));
    if (res?.['tariff_mismatch'] === true) throw new TariffMismatch();
    if (Number(res?.['chain_ok'] ?? 0) !== 1) throw new StaleHead();
    this.heads.set(cid, link);
    const raw = res?.['cursors'];
    const pairs = (typeof raw === 'string' ? JSON.parse(raw) : raw) as [string, number][];
    const cursors = new Map(pairs.map(([id, c]) => [id, Number(c)]));
    return out.map((w) => ({ ...w, cursor: cursors.get(w.id)! }));
  }

  /** Forget a cached head (after a failed write whose effect is unknown). */
  forget(cid: string): void {
    this.heads.delete(cid);
  }
}

/** Identifies a request's content for idempotency: the digests of its normalized event and tariff. */
export const requestDigestOf = (eventDigest: string, tariffDigest: string) => digestOf({ event_digest: eventDigest, tariff_digest: tariffDigest });
