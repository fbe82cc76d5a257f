// Webhooks (Standard Webhooks v1): endpoints, the outbox and its deliverer. An event is written to
// the outbox (webhook_deliveries) in the same transaction as the change it reports, so a committed
// change is always announced and a rolled-back one never is. The deliverer claims due rows with
// FOR UPDATE SKIP LOCKED (any number of processes), POSTs them signed, and retries failures on a
// schedule; every attempt of one message carries the same webhook-id and body.
import { randomBytes } from 'node:crypto';
import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import { newWebhookSecret, webhookHeaders } from '../core/webhooks.ts';
import { identInput } from '../core/schemas.ts';
import { type Db, type Tx, rowsOf, schema } from '../db/index.ts';
import { ServiceError } from './errors.ts';
import { pauser } from './pause.ts';

/** The event types a webhook endpoint can receive. */
export const WEBHOOK_EVENTS = ['proof.ready', 'proof.failed', 'settlement.status_changed'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** Delay before each retry (Standard Webhooks' suggested schedule): the first attempt is
 *  immediate, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; after that the message has failed. */
export const RETRY_SCHEDULE_MS = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];
/** How long a claimed delivery is leased to the process sending it (longer than one attempt). */
const LEASE_MS = 60_000;
const ATTEMPT_TIMEOUT_MS = 15_000;

export interface EndpointView {
  readonly id: string;
  readonly url: string;
  readonly tenant_id: string | null;
  readonly events: readonly string[];
  readonly created_at: string;
  readonly disabled_at: string | null;
}

type Executor = Pick<Db | Tx, 'execute'>;

/**
 * Writes one message to the outbox for every enabled endpoint that takes `type` for `tenantId`,
 * inside the caller's transaction (one statement; nothing when no endpoint matches).
 */
export async function enqueueWebhook(tx: Executor, type: WebhookEvent, tenantId: string, data: Record<string, unknown>, at = new Date()): Promise<void> {
  const body = JSON.stringify({ type, timestamp: at.toISOString(), data });
  await tx.execute(sql`
    insert into webhook_deliveries (id, endpoint_id, event_type, body, status, attempts, next_attempt_at)
    select 'msg_' || replace(gen_random_uuid()::text, '-', ''), e.id, ${type}, ${body}, 'pending', 0, now()
    from webhook_endpoints e
    where e.disabled_at is null and (e.tenant_id is null or e.tenant_id = ${tenantId}) and e.events @> ${JSON.stringify([type])}::jsonb`);
}

export class WebhookService {
  constructor(private readonly db: Db) {}

  /** Registers an endpoint; the answer carries its secret, shown this once. */
  async create(body: unknown): Promise<EndpointView & { secret: string }> {
    const b = body as Record<string, unknown> | null;
    const bad = (message: string) => new ServiceError(400, 'INVALID_WEBHOOK', message);
    if (!b || typeof b !== 'object' || Array.isArray(b)) throw bad('expected {url, events?, tenant_id?}');
    const extra = Object.keys(b).filter((k) => !['url', 'events', 'tenant_id'].includes(k));
    if (extra.length) throw bad(`unknown field ${extra[0]}`);
    let url: URL;
    try {
      url = new URL(String(b['url']));
    } catch {
      throw bad('url is not an absolute URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad('url must be http or https');
    if (url.username || url.password) throw bad('url may not carry credentials');
    const events = b['events'] ?? [...WEBHOOK_EVENTS];
    if (!Array.isArray(events) || !events.length || events.some((e) => !(WEBHOOK_EVENTS as readonly unknown[]).includes(e))) {
      throw bad(`events is a non-empty list of ${WEBHOOK_EVENTS.join(', ')}`);
    }
    let tenantId: string | null = null;
    if (b['tenant_id'] !== undefined && b['tenant_id'] !== null) {
      const t = identInput.safeParse(b['tenant_id']);
      if (!t.success) throw bad('tenant_id is not an identifier');
      const [row] = await this.db.select({ id: schema.tenants.id }).from(schema.tenants).where(eq(schema.tenants.id, t.data));
      if (!row) throw new ServiceError(422, 'TENANT_UNKNOWN', `tenant ${t.data} does not exist`);
      tenantId = t.data;
    }
    const secret = newWebhookSecret();
    const [row] = await this.db
      .insert(schema.webhookEndpoints)
      .values({ id: `wh_${randomBytes(12).toString('hex')}`, url: url.toString(), tenantId, secret, events: [...new Set(events as string[])] })
      .returning();
    return { ...view(row!), secret };
  }

  async list(): Promise<EndpointView[]> {
    return (await this.db.select().from(schema.webhookEndpoints).orderBy(schema.webhookEndpoints.createdAt)).map(view);
  }

  /** Disables an endpoint: nothing new is queued for it and its pending messages are not sent. */
  async disable(id: string): Promise<EndpointView> {
    const w = schema.webhookEndpoints;
    const [row] = await this.db.update(w).set({ disabledAt: new Date() }).where(and(eq(w.id, id), isNull(w.disabledAt))).returning();
    if (row) return view(row);
    const [old] = await this.db.select().from(w).where(eq(w.id, id));
    if (!old) throw new ServiceError(404, 'NOT_FOUND', 'webhook endpoint not found');
    return view(old);
  }

  async deliveries(endpointId: string, limit = 100) {
    const d = schema.webhookDeliveries;
    const rows = await this.db.select().from(d).where(eq(d.endpointId, endpointId)).orderBy(desc(d.createdAt)).limit(Math.min(Math.max(1, limit), 1000));
    return rows.map((r) => ({
      id: r.id,
      event_type: r.eventType,
      status: r.status,
      attempts: r.attempts,
      last_status: r.lastStatus,
      last_error: r.lastError,
      next_attempt_at: r.status === 'pending' ? r.nextAttemptAt.toISOString() : null,
      created_at: r.createdAt.toISOString(),
      delivered_at: r.deliveredAt?.toISOString() ?? null,
    }));
  }
}

function view(r: typeof schema.webhookEndpoints.$inferSelect): EndpointView {
  return { id: r.id, url: r.url, tenant_id: r.tenantId, events: r.events, created_at: r.createdAt.toISOString(), disabled_at: r.disabledAt?.toISOString() ?? null };
}

export interface DelivererOptions {
  readonly pollMs?: number;
  readonly batch?: number;
  /** Delay before retry n (index n−1); its length is the number of retries. */
  readonly retryScheduleMs?: readonly number[];
  readonly attemptTimeoutMs?: number;
  readonly onError?: (e: unknown) => void;
  readonly now?: () => Date;
}

interface Due {
  id: string;
  body: string;
  attempts: number;
  url: string;
  secret: string;
}

/** The deliverer loop. `stop()` waits for the attempts in flight. */
export function startWebhookDeliverer(db: Db, opts: DelivererOptions = {}) {
  const pollMs = opts.pollMs ?? 1000;
  const schedule = opts.retryScheduleMs ?? RETRY_SCHEDULE_MS;
  const now = opts.now ?? (() => new Date());
  let stopped = false;

  const claim = async (): Promise<Due[]> => {
    const t = now();
    const rows = await db.execute(sql`
      with due as (
        select d.id from webhook_deliveries d
        where d.status = 'pending' and d.next_attempt_at <= ${t.toISOString()}::timestamptz
        order by d.next_attempt_at limit ${opts.batch ?? 32}
        for update skip locked)
      update webhook_deliveries d set next_attempt_at = ${new Date(t.getTime() + LEASE_MS).toISOString()}::timestamptz, attempts = d.attempts + 1
      from due, webhook_endpoints e
      where d.id = due.id and e.id = d.endpoint_id
      returning d.id, d.body, d.attempts, e.url, e.secret, e.disabled_at`);
    const out: Due[] = [];
    for (const r of rowsOf<Due & { disabled_at: unknown }>(rows)) {
      // an endpoint disabled after the message was queued: the message is not sent
      if (r.disabled_at) await db.update(schema.webhookDeliveries).set({ status: 'failed', lastError: 'endpoint disabled' }).where(eq(schema.webhookDeliveries.id, r.id));
      else out.push({ id: r.id, body: r.body, attempts: Number(r.attempts), url: r.url, secret: r.secret });
    }
    return out;
  };

  const attempt = async (d: Due) => {
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        headers: webhookHeaders(d.secret, d.id, Math.floor(now().getTime() / 1000), d.body),
        body: d.body,
        redirect: 'manual', // a redirect is a failed attempt, never followed
        signal: AbortSignal.timeout(opts.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS),
      });
      status = res.status;
      await res.body?.cancel();
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (e) {
      error = e instanceof Error ? (e.name === 'TimeoutError' ? 'timed out' : e.message) : String(e);
    }
    const d_ = schema.webhookDeliveries;
    if (!error) {
      await db.update(d_).set({ status: 'delivered', lastStatus: status, lastError: null, deliveredAt: now() }).where(eq(d_.id, d.id));
      return;
    }
    const retry = schedule[d.attempts - 1];
    await db
      .update(d_)
      .set(retry === undefined ? { status: 'failed', lastStatus: status, lastError: error.slice(0, 500) } : { lastStatus: status, lastError: error.slice(0, 500), nextAttemptAt: new Date(now().getTime() + retry) })
      .where(eq(d_.id, d.id));
  };

  const { pause, wake } = pauser();

  const loop = async () => {
    while (!stopped) {
      let due: Due[] = [];
      try {
        due = await claim();
        if (due.length) await Promise.all(due.map((d) => attempt(d).catch((e: unknown) => opts.onError?.(e))));
      } catch (e) {
        opts.onError?.(e); // the store is down: the leases expire and the rows are claimed again
      }
      if (!stopped && due.length === 0) await pause(pollMs);
    }
  };
  const running = loop();
  return {
    poke: wake,
    async stop() {
      stopped = true;
      wake();
      await running;
    },
  };
}
