// Standard Webhooks: signatures (the spec's example vector), the outbox written with the proof
// state, delivery to a real HTTP receiver, retries with backoff, replay safety and endpoint admin.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhook, webhookHeaders, WebhookVerificationError } from '../src/core/webhooks.ts';
import { MAX_ATTEMPTS, startProofWorker } from '../src/service/proofs.ts';
import { createProveFn } from '../src/service/prove.ts';
import { startWebhookDeliverer } from '../src/service/webhooks.ts';
import { eq } from 'drizzle-orm';
import { schema } from '../src/db/index.ts';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { testService, type TestService } from './support/service.ts';

const codeOf = (f: () => unknown) => {
  try {
    f();
    return 'accepted';
  } catch (e) {
    return e instanceof WebhookVerificationError ? e.code : String(e);
  }
};

describe('signatures', () => {
  // the example in the Standard Webhooks specification
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const id = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
  const ts = 1614265330;
  const body = '{"test": 2432232314}';
  const now = new Date(ts * 1000);

  it('signs the specification example to its published signature', () => {
    expect(signWebhook(secret, id, ts, body)).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('verifies a good message and refuses every alteration', () => {
    const h = webhookHeaders(secret, id, ts, body);
    expect(verifyWebhook(secret, h, body, { now }).payload).toEqual({ test: 2432232314 });
    expect(codeOf(() => verifyWebhook(secret, h, body.replace('2', '3'), { now }))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(() => verifyWebhook('whsec_' + Buffer.alloc(24, 1).toString('base64'), h, body, { now }))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(() => verifyWebhook(secret, { ...h, 'webhook-id': 'msg_other' }, body, { now }))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(() => verifyWebhook(secret, { ...h, 'webhook-timestamp': String(ts + 1) }, body, { now }))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(() => verifyWebhook(secret, { ...h, 'webhook-signature': 'v2,' + h['webhook-signature']!.slice(3) }, body, { now }))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(() => verifyWebhook(secret, { ...h, 'webhook-signature': undefined }, body, { now }))).toBe('WEBHOOK_HEADERS_MISSING');
    expect(codeOf(() => verifyWebhook(secret, { ...h, 'webhook-timestamp': '1e9' }, body, { now }))).toBe('WEBHOOK_TIMESTAMP_INVALID');
  });

  it('accepts a timestamp within 300 s either way and refuses one beyond (replay window)', () => {
    const h = webhookHeaders(secret, id, ts, body);
    expect(codeOf(() => verifyWebhook(secret, h, body, { now: new Date((ts + 300) * 1000) }))).toBe('accepted');
    expect(codeOf(() => verifyWebhook(secret, h, body, { now: new Date((ts - 300) * 1000) }))).toBe('accepted');
    expect(codeOf(() => verifyWebhook(secret, h, body, { now: new Date((ts + 301) * 1000) }))).toBe('WEBHOOK_TIMESTAMP_STALE');
    expect(codeOf(() => verifyWebhook(secret, h, body, { now: new Date((ts - 301) * 1000) }))).toBe('WEBHOOK_TIMESTAMP_STALE');
  });

  it('accepts any of several space-separated signatures (secret rotation)', () => {
    const other = 'whsec_' + Buffer.alloc(24, 2).toString('base64');
    const h = webhookHeaders(secret, id, ts, body);
    const both = { ...h, 'webhook-signature': `${signWebhook(other, id, ts, body)} ${h['webhook-signature']}` };
    expect(codeOf(() => verifyWebhook(secret, both, body, { now }))).toBe('accepted');
    expect(codeOf(() => verifyWebhook(other, both, body, { now }))).toBe('accepted');
  });
});

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A real HTTP receiver; `answer` decides each response's status. */
async function receiver(answer: (n: number) => number) {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.statusCode = answer(got.length);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const waitFor = async (cond: () => boolean | Promise<boolean>, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('delivery', () => {
  let s: TestService;
  let attestKey: string;
  beforeAll(async () => {
    s = await testService();
    for (const id of ['tenant_acme', 'tenant_other']) await s.call('POST', '/v1/admin/tenants', { body: { id } });
    await s.call('POST', '/v1/admin/tariffs', { body: pilotTariff });
    attestKey = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest', 'read'] } })).body.secret;
  });
  afterAll(async () => s?.close());

  const attest = async (eventId: string, tenant = 'tenant_acme') => {
    const r = await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: { ...pilotEvent, event_id: eventId, tenant_id: tenant }, tariff: { tariff_id: pilotTariff.tariff_id, tariff_version: pilotTariff.tariff_version } } });
    expect(r.status).toBe(201);
    return r.headers.get('x-attestation-id')!;
  };

  /** The proof job's last attempt fails (as after MAX_ATTEMPTS real failures). */
  const failForGood = async (id: string) => {
    await s.store.database.db.update(schema.proofJobs).set({ attempts: MAX_ATTEMPTS }).where(eq(schema.proofJobs.attestationId, id));
    expect(await s.container.proofs.fail(id, 'injected')).toBe(true);
  };

  it('validates endpoints and shows the secret once', async () => {
    for (const body of [{}, { url: 'ftp://x' }, { url: 'not a url' }, { url: 'https://u:p@x.test' }, { url: 'https://x.test', events: ['nope'] }, { url: 'https://x.test', events: [] }, { url: 'https://x.test', extra: 1 }]) {
      const r = await s.call('POST', '/v1/admin/webhooks', { body });
      expect([r.status, r.body.code], JSON.stringify(body)).toEqual([400, 'INVALID_WEBHOOK']);
    }
    expect((await s.call('POST', '/v1/admin/webhooks', { body: { url: 'https://x.test', tenant_id: 'tenant_none' } })).body.code).toBe('TENANT_UNKNOWN');
    expect((await s.call('POST', '/v1/admin/webhooks', { token: attestKey, body: { url: 'https://x.test' } })).status).toBe(403);
    const made = await s.call('POST', '/v1/admin/webhooks', { body: { url: 'https://x.test/h' } });
    expect(made.status).toBe(201);
    expect(made.body.secret).toMatch(/^whsec_/);
    expect(made.body.events).toEqual(['proof.ready', 'proof.failed', 'settlement.status_changed']);
    const list = await s.call('GET', '/v1/admin/webhooks');
    expect(JSON.stringify(list.body)).not.toContain(made.body.secret);
    expect((await s.call('DELETE', `/v1/admin/webhooks/${made.body.id}`)).body.disabled_at).not.toBeNull();
    expect((await s.call('DELETE', '/v1/admin/webhooks/wh_nope')).status).toBe(404);
  });

  it('announces a real proof as proof.ready, signed, to the endpoints of its tenant only', async () => {
    const rx = await receiver(() => 204);
    const mine = (await s.call('POST', '/v1/admin/webhooks', { body: { url: rx.url, tenant_id: 'tenant_acme', events: ['proof.ready'] } })).body;
    const elsewhere = await receiver(() => 204);
    await s.call('POST', '/v1/admin/webhooks', { body: { url: elsewhere.url, tenant_id: 'tenant_other' } });
    const deliverer = startWebhookDeliverer(s.store.database.db, { pollMs: 20 });
    const prover = await createProveFn(s.container.keys, { workers: 1 });
    const worker = startProofWorker(s.store.database.db, s.container.proofs, prover.prove, { pollMs: 20 });
    try {
      const id = await attest('wh-ready-1');
      await waitFor(() => rx.got.length === 1);
      const msg = rx.got[0]!;
      const { payload } = verifyWebhook(mine.secret, msg.headers as Record<string, string>, msg.body);
      expect(payload).toMatchObject({ type: 'proof.ready', data: { attestation_id: id, proof_status: 'proved', bundle_url: `/v1/attestations/${id}` } });
      // the bundle the message points at is proved
      expect((await s.call('GET', `/v1/attestations/${id}`, { token: attestKey })).body.attestation.proof_status).toBe('proved');
      const deliveries = await s.call('GET', `/v1/admin/webhooks/${mine.id}/deliveries`);
      expect(deliveries.body.items[0]).toMatchObject({ id: msg.headers['webhook-id'], status: 'delivered', attempts: 1, last_status: 204 });
      expect(elsewhere.got).toHaveLength(0);
    } finally {
      await worker.stop();
      await prover.close();
      await deliverer.stop();
      await rx.close();
      await elsewhere.close();
    }
  });

  it('retries a failing endpoint with the same id and body, then marks the message failed', async () => {
    // answers 500 twice, then 200; a second endpoint never succeeds
    const flaky = await receiver((n) => (n <= 2 ? 500 : 200));
    const dead = await receiver(() => 503);
    const a = (await s.call('POST', '/v1/admin/webhooks', { body: { url: flaky.url, events: ['proof.failed'] } })).body;
    const b = (await s.call('POST', '/v1/admin/webhooks', { body: { url: dead.url, events: ['proof.failed'] } })).body;
    const deliverer = startWebhookDeliverer(s.store.database.db, { pollMs: 20, retryScheduleMs: [50, 50] });
    try {
      const id = await attest('wh-failed-1');
      // the proof fails for good (its last attempt): proof.failed is queued with that state change
      await failForGood(id);
      await waitFor(async () => (await s.call('GET', `/v1/admin/webhooks/${b.id}/deliveries`)).body.items[0]?.status === 'failed');
      await waitFor(() => flaky.got.length === 3);
      const ids = new Set(flaky.got.map((g) => g.headers['webhook-id']));
      expect(ids.size).toBe(1); // one message, three attempts
      expect(new Set(flaky.got.map((g) => g.body)).size).toBe(1);
      for (const g of flaky.got) expect(verifyWebhook(a.secret, g.headers as Record<string, string>, g.body).payload).toMatchObject({ type: 'proof.failed', data: { attestation_id: id } });
      expect((await s.call('GET', `/v1/admin/webhooks/${a.id}/deliveries`)).body.items[0]).toMatchObject({ status: 'delivered', attempts: 3 });
      expect((await s.call('GET', `/v1/admin/webhooks/${b.id}/deliveries`)).body.items[0]).toMatchObject({ status: 'failed', attempts: 3, last_status: 503, last_error: 'HTTP 503' });
      expect(dead.got).toHaveLength(3);
      // the other endpoint's secret does not verify this endpoint's messages
      expect(codeOf(() => verifyWebhook(b.secret, flaky.got[0]!.headers as Record<string, string>, flaky.got[0]!.body))).toBe('WEBHOOK_SIGNATURE_INVALID');
    } finally {
      await deliverer.stop();
      await flaky.close();
      await dead.close();
    }
  });

  it('two deliverers on one store send each message once', async () => {
    const rx = await receiver(() => 200);
    await s.call('POST', '/v1/admin/webhooks', { body: { url: rx.url, events: ['proof.failed'], tenant_id: 'tenant_other' } });
    const d1 = startWebhookDeliverer(s.store.database.db, { pollMs: 5 });
    const d2 = startWebhookDeliverer(s.store.database.db, { pollMs: 5 });
    try {
      const ids = await Promise.all([1, 2, 3, 4, 5].map((i) => attest(`wh-two-${i}`, 'tenant_other')));
      for (const id of ids) await failForGood(id);
      await waitFor(() => rx.got.length >= 5);
      await new Promise((r) => setTimeout(r, 300));
      expect(rx.got).toHaveLength(5);
      expect(new Set(rx.got.map((g) => g.headers['webhook-id'])).size).toBe(5);
    } finally {
      await d1.stop();
      await d2.stop();
      await rx.close();
    }
  });
});
