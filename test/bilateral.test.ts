// Bilateral metering: consumers and their keys, the consumer's PoP on attest, the PoP in the
// bundle and its check by the verifier, countersignatures, consumer-scoped keys, and the
// meterproof/consumer helper. On PostgreSQL when DATABASE_URL is set, PGlite otherwise; the
// two-process replay test needs PostgreSQL.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Consumer, digestOfJson, generateConsumerKey, sha256Digest, verifyConsumerSignature } from '../src/consumer/index.ts';
import { popMessage } from '../src/core/bilateral.ts';
import { digestOf } from '../src/core/canonical.ts';
import { GENESIS, normalizeMeterEvent, normalizeTariff } from '../src/core/attest.ts';
import { jwkThumbprint, publicJwk } from '../src/core/keys.ts';
import { CONSUMER_POP_TYPE, type ConsumerPop, type FullBundle, type StatementV2, type VerificationReport } from '../src/core/schemas.ts';
import type { TrustMaterial } from '../src/core/trust.ts';
import { verifyBundle } from '../src/core/verify.ts';
import { buildContainer } from '../src/service/container.ts';
import { createApp } from '../src/http/app.ts';
import { redact, verify } from '../src/verifier/index.ts';
import { zkVerifier } from '../src/verifier/zk.ts';
import { createProver } from '../src/prover/index.ts';
import { proveBundleV2 } from '../src/service/prove.ts';
import { V2_KEYS_DIR, zkParts } from '../src/service/zk.ts';
import { keyA, pilotEvent, pilotTariff, testAttest, trustFor } from './support/fixtures.ts';
import { usingPostgres } from './support/db.ts';
import { api, startServerPair, type ServerPair } from './support/server.ts';
import { runCli } from './support/cli.ts';
import { ADMIN, testService, type TestService } from './support/service.ts';
import { fromB64Url } from '../src/core/bytes.ts';

let s: TestService;
/** The service's clock: real time unless a test freezes it. */
let frozen: Date | null = null;
const clock = () => frozen ?? new Date();
let attestKey: string;
let tariffDigest: string;
const alice = generateConsumerKey();
const bob = generateConsumerKey();
const carol = generateConsumerKey(); // a consumer of tenant_other
const aliceC = new Consumer({ tenantId: 'tenant_acme', consumerId: 'alice', secretKey: alice.secretKey });
const bobC = new Consumer({ tenantId: 'tenant_acme', consumerId: 'bob', secretKey: bob.secretKey });
let n = 0;
const eventId = () => `evt_bi_${++n}`;
const event = (id: string, over: Record<string, unknown> = {}) => ({ ...pilotEvent, event_id: id, ...over });
const tariffRef = { tariff_id: pilotTariff.tariff_id, tariff_version: pilotTariff.tariff_version };
const attest = (body: unknown, token = attestKey, url = '/v1/attest') => s.call('POST', url, { token, body });
const checkOf = (r: VerificationReport, name: string) => r.checks.find((c) => c.name === name)!;
const failing = (r: VerificationReport) => JSON.stringify(r.checks.filter((c) => c.status === 'fail'));
const trust = async (): Promise<TrustMaterial> => (await s.call('GET', '/v1/trust', { token: null })).body;

/** A signed PoP request for a new event of tenant_acme (or the given one). */
function popFor(c: Consumer, id: string, over: Partial<Parameters<Consumer['signPop']>[0]> = {}) {
  return c.signPop({ eventId: id, tariffDigest, requestPayload: `{"prompt":"${id}"}`, timestamp: clock(), ...over });
}

beforeAll(async () => {
  s = await testService({ clock });
  for (const id of ['tenant_acme', 'tenant_other']) expect((await s.call('POST', '/v1/admin/tenants', { body: { id, name: id } })).status).toBe(201);
  attestKey = (await s.call('POST', '/v1/admin/api-keys', { body: { name: 'backend', scopes: ['attest', 'read'] } })).body.secret;
  const t = await s.call('POST', '/v1/admin/tariffs', { body: pilotTariff });
  expect(t.status).toBe(201);
  tariffDigest = t.body.v2.tariff_digest;
  for (const [tenant, consumer, key] of [['tenant_acme', 'alice', alice], ['tenant_acme', 'bob', bob], ['tenant_other', 'carol', carol]] as const) {
    const r = await s.call('POST', '/v1/admin/consumers', { body: { tenant_id: tenant, consumer_id: consumer, public_key: key.publicJwk } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
}, 60_000);
afterAll(async () => s?.close());

describe('consumers and their keys', () => {
  it('registers a consumer once: the same registration again is 200, another key 409, an unknown tenant 422, a wrong kid 400', async () => {
    const again = await s.call('POST', '/v1/admin/consumers', { body: { tenant_id: 'tenant_acme', consumer_id: 'alice', public_key: alice.publicJwk } });
    expect(again.status).toBe(200);
    expect(again.body.keys).toEqual([expect.objectContaining({ kid: alice.publicJwk.kid, valid_until: null, revoked_at: null })]);
    const other = await s.call('POST', '/v1/admin/consumers', { body: { tenant_id: 'tenant_acme', consumer_id: 'alice', public_key: bob.publicJwk } });
    expect(other.body.code).toBe('CONSUMER_EXISTS');
    expect((await s.call('POST', '/v1/admin/consumers', { body: { tenant_id: 'nope', consumer_id: 'x', public_key: alice.publicJwk } })).body.code).toBe('TENANT_UNKNOWN');
    const badKid = await s.call('POST', '/v1/admin/consumers', { body: { tenant_id: 'tenant_acme', consumer_id: 'dave', public_key: { ...alice.publicJwk, kid: bob.publicJwk.kid } } });
    expect([badKid.status, badKid.body.code]).toEqual([400, 'INVALID_CONSUMER_KEY']);
    const short = await s.call('POST', '/v1/admin/consumers', { body: { tenant_id: 'tenant_acme', consumer_id: 'dave', public_key: { kty: 'OKP', crv: 'Ed25519', x: 'AAAA' } } });
    expect([short.status, short.body.code]).toEqual([400, 'INVALID_CONSUMER']);
    // admin only
    expect((await s.call('POST', '/v1/admin/consumers', { token: attestKey, body: {} })).status).toBe(403);
  });

  it('publishes consumer keys in the trust material, kid = RFC 7638 thumbprint (the service computes it the same way as the consumer module)', async () => {
    const t = await trust();
    const a = t.consumers!.find((c) => c.tenant_id === 'tenant_acme' && c.consumer_id === 'alice')!;
    expect(a.keys).toHaveLength(1);
    expect(a.keys[0]!.kid).toBe(jwkThumbprint(fromB64Url(alice.publicJwk.x)!));
    expect(a.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', x: alice.publicJwk.x, valid_until: null });
    expect(t.consumers!.find((c) => c.consumer_id === 'carol')!.tenant_id).toBe('tenant_other');
  });
});

describe('PoP on attest', () => {
  let bundle: FullBundle;
  let sent: ReturnType<Consumer['signPop']>;

  it('happy path: 201, the bundle carries the PoP, the statement commits to it, the API and the library verify it, a retry is 200', async () => {
    const id = eventId();
    sent = popFor(aliceC, id);
    const r = await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: sent });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    bundle = r.body;
    const pop = bundle.consumer_pop!;
    expect(pop).toEqual({ type: CONSUMER_POP_TYPE, tenant_id: 'tenant_acme', event_id: id, ...sent });
    expect(bundle.attestation.statement).toMatchObject({ consumer_pop_digest: digestOf(pop), tariff_digest: tariffDigest });
    const t = await trust();
    const lib = await verify(bundle, t, { profile: 'standard' });
    expect(lib.valid, failing(lib)).toBe(true);
    expect(checkOf(lib, 'consumer_pop').status).toBe('pass');
    expect(checkOf(lib, 'countersignatures')).toMatchObject({ status: 'skipped', reason: 'none in this bundle' });
    const viaApi = await s.call('POST', '/v1/verify?profile=standard', { token: null, body: bundle });
    expect(viaApi.body.valid).toBe(true);
    expect(checkOf(viaApi.body, 'consumer_pop').status).toBe('pass');
    // the same request again (same PoP): answered as a replay
    const again = await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: sent });
    expect(again.status).toBe(200);
    expect(again.body.attestation.statement).toEqual(bundle.attestation.statement);
    // the same event with another PoP: a conflict, not a second attestation
    const other = await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: popFor(aliceC, id) });
    expect(other.body.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('the Groth16 v2 proof of a statement with a PoP verifies (the statement tag covers consumer_pop_digest: no circuit change), full and redacted', async () => {
    const p = await createProver({ workers: 0, keysDir: V2_KEYS_DIR });
    let proof;
    try {
      proof = await proveBundleV2(p, bundle);
    } finally {
      await p.close();
    }
    const proved: FullBundle = { ...bundle, attestation: { ...bundle.attestation, proof_status: 'proved', billing_proof: proof } };
    const t = await trust();
    for (const b of [proved, redact(proved)]) {
      const r = await verify(b, t, { profile: 'standard' });
      expect(r.valid, failing(r)).toBe(true);
      expect([checkOf(r, 'proof').status, checkOf(r, 'consumer_pop').status]).toEqual(['pass', 'pass']);
    }
    // the same proof for the statement without its PoP digest: the statement tag differs
    const { consumer_pop_digest: _d, ...bare } = bundle.attestation.statement as StatementV2;
    const stripped = await verifyBundle({ ...proved, attestation: { ...proved.attestation, statement: bare } }, t, { profile: 'standard', zk: zkVerifier });
    expect(checkOf(stripped, 'proof')).toMatchObject({ status: 'fail', code: 'PROOF_INVALID' });
  }, 300_000);

  it('a redacted bundle keeps the PoP and still verifies it', async () => {
    const red = redact(bundle);
    expect(red.consumer_pop).toEqual(bundle.consumer_pop);
    const r = await verify(red, await trust(), { profile: 'standard' });
    expect(r.valid, failing(r)).toBe(true);
    expect(checkOf(r, 'consumer_pop').status).toBe('pass');
  });

  it('the consumer helper accepts the bundle it asked for and refuses one carrying another PoP', async () => {
    const t = await trust();
    const ok = await aliceC.check(bundle, t, (b, tr) => verify(b, tr, { profile: 'standard' }), sent);
    expect(ok.problems).toEqual([]);
    const other = await aliceC.check(bundle, t, (b, tr) => verify(b, tr, { profile: 'standard' }), popFor(aliceC, 'evt_x'));
    expect(other.problems).toContain('the bundle does not carry the PoP this consumer sent');
  });

  it('POP_INVALID: a signature by another key, an unknown consumer, a malformed PoP, a consumer of another tenant', async () => {
    const id = eventId();
    const forged = { ...popFor(bobC, id), consumer_id: 'alice', key_id: aliceC.keyId };
    const r1 = await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: forged });
    expect([r1.status, r1.body.code]).toEqual([422, 'POP_INVALID']);
    expect(r1.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const r2 = await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: { ...popFor(aliceC, id), consumer_id: 'mallory' } });
    expect(r2.body.code).toBe('POP_INVALID');
    const r3 = await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: { ...popFor(aliceC, id), nonce: 'short' } });
    expect([r3.status, r3.body.code]).toEqual([422, 'POP_INVALID']);
    expect(r3.body.errors?.[0]?.path ?? JSON.stringify(r3.body)).toMatch(/consumer_pop\.nonce/);
    const carolC = new Consumer({ tenantId: 'tenant_acme', consumerId: 'carol', secretKey: carol.secretKey });
    const r4 = await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: popFor(carolC, id) });
    expect(r4.body.code).toBe('POP_INVALID');
    // signed for another event: the signature does not cover this one
    const r5 = await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: popFor(aliceC, `${id}-other`) });
    expect(r5.body.code).toBe('POP_INVALID');
    // nothing was attested
    expect((await s.call('POST', '/v1/attest', { token: attestKey, body: { meter_event: event(id), tariff: tariffRef, consumer_pop: popFor(aliceC, id) } })).status).toBe(201);
  });

  it('POP_STALE: |now − timestamp| ≤ 300 s passes at both boundaries, 1 ms beyond fails', async () => {
    frozen = new Date();
    try {
      const at = (ms: number) => new Date(frozen!.getTime() + ms);
      for (const offset of [-300_000, 300_000]) {
        const id = eventId();
        const r = await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: popFor(aliceC, id, { timestamp: at(offset) }) });
        expect(r.status, `offset ${offset}: ${JSON.stringify(r.body)}`).toBe(201);
      }
      for (const offset of [-300_001, 300_001]) {
        const id = eventId();
        const r = await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: popFor(aliceC, id, { timestamp: at(offset) }) });
        expect([r.status, r.body.code], `offset ${offset}`).toEqual([422, 'POP_STALE']);
      }
    } finally {
      frozen = null;
    }
  });

  it('POP_TARIFF_MISMATCH: another digest than the pinned tariff version, or an inline tariff that is not published', async () => {
    const id = eventId();
    const r = await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: popFor(aliceC, id, { tariffDigest: digestOf(pilotTariff) }) });
    expect([r.status, r.body.code]).toEqual([422, 'POP_TARIFF_MISMATCH']);
    const inline = { ...pilotTariff, tariff_version: 'inline-1' };
    const r2 = await attest({ meter_event: event(id), tariff_snapshot: inline, consumer_pop: popFor(aliceC, id) });
    expect(r2.body.code).toBe('POP_TARIFF_MISMATCH');
  });

  it('POP_REPLAY: a nonce used once per (tenant, consumer) — another consumer may use the same nonce', async () => {
    const nonce = 'replay-nonce-0000000001';
    const a = eventId();
    expect((await attest({ meter_event: event(a), tariff: tariffRef, consumer_pop: popFor(aliceC, a, { nonce }) })).status).toBe(201);
    const b = eventId();
    const r = await attest({ meter_event: event(b), tariff: tariffRef, consumer_pop: popFor(aliceC, b, { nonce }) });
    expect([r.status, r.body.code]).toEqual([409, 'POP_REPLAY']);
    expect((await attest({ meter_event: event(b), tariff: tariffRef, consumer_pop: popFor(bobC, b, { nonce }) })).status).toBe(201);
  });

  it('POP_REPLAY in a batch: two items with one nonce, one is attested', async () => {
    const nonce = 'replay-nonce-batch-00001';
    const [a, b] = [eventId(), eventId()];
    const r = await attest(
      { events: [a, b].map((id) => ({ meter_event: event(id), tariff: tariffRef, consumer_pop: popFor(aliceC, id, { nonce }) })) },
      attestKey,
      '/v1/attest/batch',
    );
    const statuses = r.body.results.map((x: { status: number; error?: { code: string } }) => x.error?.code ?? x.status).sort();
    expect(statuses).toEqual([201, 'POP_REPLAY']);
  });

  it('a nonce replayed concurrently through two service instances on one database: exactly one succeeds', async () => {
    const second = await buildContainer({ database: s.store.database, dataDir: s.dataDir, adminToken: ADMIN, zk: await zkParts(), clock });
    const app2 = createApp(second.deps);
    const call2 = async (body: unknown) => {
      const res = await app2.request('/v1/attest', { method: 'POST', headers: { authorization: `Bearer ${attestKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as { code?: string } };
    };
    try {
      for (let round = 0; round < 5; round++) {
        const nonce = `concurrent-nonce-${round}-0000`;
        const [a, b] = [eventId(), eventId()];
        const results = await Promise.all([
          attest({ meter_event: event(a, { endpoint: `/c${round}a` }), tariff: tariffRef, consumer_pop: popFor(aliceC, a, { nonce }) }),
          call2({ meter_event: event(b, { endpoint: `/c${round}b` }), tariff: tariffRef, consumer_pop: popFor(aliceC, b, { nonce }) }),
        ]);
        const outcomes = results.map((r) => r.body.code ?? r.status).sort();
        expect(outcomes, `round ${round}`).toEqual([201, 'POP_REPLAY']);
      }
    } finally {
      await second.waiters.close();
    }
  });

  it('POP_REQUIRED when the tenant requires a PoP; the trust material says since when, and the verifier then refuses a bundle without one', async () => {
    const before = await attest({ meter_event: event(eventId()), tariff: tariffRef });
    expect(before.status).toBe(201);
    const set = await s.call('PUT', '/v1/admin/tenants/tenant_acme/consumer-pop', { body: { consumer_pop: 'required' } });
    expect(set.body).toMatchObject({ tenant_id: 'tenant_acme', consumer_pop: 'required' });
    try {
      await new Promise((r) => setTimeout(r, 1100)); // the per-process policy cache
      const r = await attest({ meter_event: event(eventId()), tariff: tariffRef });
      expect([r.status, r.body.code]).toEqual([422, 'POP_REQUIRED']);
      const t = await trust();
      // binding from the moment every process enforces it (their policy caches last a second)
      expect(t.consumer_pop_required).toEqual([{ tenant_id: 'tenant_acme', since: new Date(Date.parse(set.body.required_since) + 1000).toISOString() }]);
      // issued before the requirement: still fine
      const old = await verify(before.body, t, { profile: 'standard' });
      expect(old.valid, failing(old)).toBe(true);
      // a statement issued after it without a PoP: refused (a bundle signed offline under the same key would be)
      const late = await verifyBundle(before.body, { ...t, consumer_pop_required: [{ tenant_id: 'tenant_acme', since: '2000-01-01T00:00:00Z' }] }, { profile: 'standard' });
      expect(checkOf(late, 'consumer_pop')).toMatchObject({ status: 'fail', code: 'CONSUMER_POP_MISSING' });
      expect(late.valid).toBe(false);
      // the verifier's own option does the same
      const opt = await verify(before.body, await trust(), { profile: 'standard', requireConsumerPop: true });
      expect(checkOf(opt, 'consumer_pop').code).toBe('CONSUMER_POP_MISSING');
    } finally {
      await s.call('PUT', '/v1/admin/tenants/tenant_acme/consumer-pop', { body: { consumer_pop: 'optional' } });
      await new Promise((r) => setTimeout(r, 1100));
    }
  });
});

describe('PoP required by a plan', () => {
  it('a subscription to a plan with consumer_pop "required" requires a PoP while it is in effect; the trust material gives the window; a later plan without it ends it', async () => {
    const dana = generateConsumerKey();
    const danaC = new Consumer({ tenantId: 'tenant_plan', consumerId: 'dana', secretKey: dana.secretKey });
    expect((await s.call('POST', '/v1/admin/tenants', { body: { id: 'tenant_plan', name: 'plan' } })).status).toBe(201);
    expect((await s.call('POST', '/v1/admin/consumers', { body: { tenant_id: 'tenant_plan', consumer_id: 'dana', public_key: dana.publicJwk } })).status).toBe(201);
    const plan = (version: string, extra: Record<string, unknown>) => ({
      plan_id: 'plan_bilateral', plan_version: version, currency: 'USD', ...extra,
      meters: [{ endpoint: pilotEvent.endpoint, tariff: tariffRef, overage_tiers: [{ up_to: null, unit_price_micros: '0' }] }],
    });
    const p1 = await s.call('POST', '/v1/admin/plans', { body: plan('1', { consumer_pop: 'required' }) });
    expect(p1.status, JSON.stringify(p1.body)).toBe(201);
    expect(p1.body.plan.consumer_pop).toBe('required');
    // a plan without the field keeps it absent (and its digest what it was before the field existed)
    const p2 = await s.call('POST', '/v1/admin/plans', { body: plan('2', {}) });
    expect(p2.body.plan).not.toHaveProperty('consumer_pop');
    const bad = await s.call('POST', '/v1/admin/plans', { body: plan('3', { consumer_pop: 'sometimes' }) });
    expect(bad.status).toBe(400);

    const sub = await s.call('POST', '/v1/admin/subscriptions', { body: { tenant_id: 'tenant_plan', plan_id: 'plan_bilateral', plan_version: '1', effective_from: '2020-01-01T00:00:00Z' } });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const ev = (id: string) => ({ ...pilotEvent, tenant_id: 'tenant_plan', event_id: id });
    const none = await attest({ meter_event: ev('evt_plan_1'), tariff: tariffRef });
    expect([none.status, none.body.code]).toEqual([422, 'POP_REQUIRED']);
    // with a PoP, and priced by the plan when no tariff is named
    const id = 'evt_plan_2';
    const ok = await attest({ meter_event: ev(id), consumer_pop: danaC.signPop({ eventId: id, tariffDigest, requestPayload: '{}', timestamp: clock() }) });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    let t = await trust();
    const window = t.consumer_pop_required!.filter((w) => w.tenant_id === 'tenant_plan');
    expect(window).toHaveLength(1);
    expect(window[0]!.until).toBeUndefined();
    // from when the subscription was written (not its past effective_from), plus a second
    expect(Date.parse(window[0]!.since)).toBeGreaterThan(Date.parse('2026-01-01T00:00:00Z'));
    expect(Date.parse(window[0]!.since)).toBeLessThanOrEqual(Date.parse(ok.body.attestation.statement.issued_at) + 1000);
    expect((await verify(ok.body, t, { profile: 'standard' })).valid).toBe(true);

    // the next subscription, to the plan without the requirement, ends it (written more than a
    // second later: a requirement that ends sooner never bound every process, and is not listed)
    await new Promise((r) => setTimeout(r, 1100));
    const next = await s.call('POST', '/v1/admin/subscriptions', { body: { tenant_id: 'tenant_plan', plan_id: 'plan_bilateral', plan_version: '2', effective_from: new Date(Date.now() - 1000).toISOString() } });
    expect(next.status).toBe(201);
    const free = await attest({ meter_event: ev('evt_plan_3'), tariff: tariffRef });
    expect(free.status, JSON.stringify(free.body)).toBe(201);
    t = await trust();
    const ended = t.consumer_pop_required!.filter((w) => w.tenant_id === 'tenant_plan');
    expect(ended).toHaveLength(1);
    expect(ended[0]!.until).toBeDefined();
    expect((await verify(free.body, t, { profile: 'standard' })).valid).toBe(true);
    // the verifier applies the window: a statement issued inside it without a PoP is refused
    const inside = { ...t, consumer_pop_required: [{ tenant_id: 'tenant_plan', since: '2000-01-01T00:00:00Z', until: '2100-01-01T00:00:00Z' }] };
    expect(checkOf(await verifyBundle(free.body, inside, { profile: 'standard' }), 'consumer_pop')).toMatchObject({ status: 'fail', code: 'CONSUMER_POP_MISSING' });
    const after = { ...t, consumer_pop_required: [{ tenant_id: 'tenant_plan', since: '2000-01-01T00:00:00Z', until: '2001-01-01T00:00:00Z' }] };
    expect(checkOf(await verifyBundle(free.body, after, { profile: 'standard' }), 'consumer_pop').status).toBe('skipped');
  });
});

describe('key rotation and revocation', () => {
  it('a rotated-out key signs no new PoP; the new key does; bundles signed before still verify', async () => {
    const dave = generateConsumerKey();
    const dave2 = generateConsumerKey();
    expect((await s.call('POST', '/v1/admin/consumers', { body: { tenant_id: 'tenant_acme', consumer_id: 'dave', public_key: dave.publicJwk } })).status).toBe(201);
    const d1 = new Consumer({ tenantId: 'tenant_acme', consumerId: 'dave', secretKey: dave.secretKey });
    const d2 = new Consumer({ tenantId: 'tenant_acme', consumerId: 'dave', secretKey: dave2.secretKey });
    const id = eventId();
    const before = await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: popFor(d1, id) });
    expect(before.status).toBe(201);
    const rot = await s.call('POST', '/v1/admin/consumers/tenant_acme/dave/keys', { body: { public_key: dave2.publicJwk } });
    expect(rot.status).toBe(201);
    expect(rot.body.keys.map((k: { valid_until: string | null }) => k.valid_until === null)).toEqual([false, true]);
    const id2 = eventId();
    expect((await attest({ meter_event: event(id2), tariff: tariffRef, consumer_pop: popFor(d1, id2) })).body.code).toBe('POP_INVALID');
    expect((await attest({ meter_event: event(id2), tariff: tariffRef, consumer_pop: popFor(d2, id2) })).status).toBe(201);
    const r = await verify(before.body, await trust(), { profile: 'standard' });
    expect(r.valid, failing(r)).toBe(true);
  });

  it('a revoked key: POP_INVALID at once; revoked from before a bundle was issued, that bundle fails CONSUMER_KEY_NOT_VALID_AT_TIME', async () => {
    const erin = generateConsumerKey();
    expect((await s.call('POST', '/v1/admin/consumers', { body: { tenant_id: 'tenant_acme', consumer_id: 'erin', public_key: erin.publicJwk } })).status).toBe(201);
    const e = new Consumer({ tenantId: 'tenant_acme', consumerId: 'erin', secretKey: erin.secretKey });
    const registeredAt = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    const id = eventId();
    const b = await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: popFor(e, id) });
    expect(b.status).toBe(201);
    const rev = await s.call('POST', `/v1/admin/consumers/tenant_acme/erin/keys/${e.keyId}/revoke`, { body: { reason: 'laptop stolen' } });
    expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    expect(rev.body.keys[0].revoked_at).not.toBeNull();
    const id2 = eventId();
    const after = await attest({ meter_event: event(id2), tariff: tariffRef, consumer_pop: popFor(e, id2) });
    expect([after.status, after.body.code]).toEqual([422, 'POP_INVALID']);
    expect(after.body.detail).toMatch(/revoked/);
    // revoked from now: the earlier bundle stands
    expect((await verify(b.body, await trust(), { profile: 'standard' })).valid).toBe(true);
    // revoked from a time before the bundle (a compromise found later): it no longer verifies
    await s.call('POST', `/v1/admin/consumers/tenant_acme/erin/keys/${e.keyId}/revoke`, { body: { revoked_from: registeredAt, reason: 'compromised since registration' } });
    const r = await verify(b.body, await trust(), { profile: 'standard' });
    expect(checkOf(r, 'consumer_pop')).toMatchObject({ status: 'fail', code: 'CONSUMER_KEY_NOT_VALID_AT_TIME' });
    expect(r.valid).toBe(false);
    expect((await s.call('POST', '/v1/admin/consumers/tenant_acme/erin/keys/nokey/revoke', { body: {} })).body.code).toBe('CONSUMER_KEY_UNKNOWN');
  });
});

describe('the verifier on tampered bundles', () => {
  let bundle: FullBundle;
  let t: TrustMaterial;
  beforeAll(async () => {
    const id = eventId();
    bundle = (await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: popFor(aliceC, id) })).body;
    t = await trust();
  });
  const codeOf = async (b: unknown, opts: { requireCountersignature?: boolean } = {}) => {
    const r = await verify(b, t, { profile: 'standard', ...opts });
    expect(r.valid).toBe(false);
    return r.checks.filter((c) => c.status === 'fail').map((c) => `${c.name}:${c.code}`);
  };

  it('a changed PoP field, a PoP swapped for another signed one, a removed PoP, a PoP added to a bundle without one', async () => {
    const pop = bundle.consumer_pop!;
    expect(await codeOf({ ...bundle, consumer_pop: { ...pop, request_payload_hash: sha256Digest('other') } })).toEqual(['consumer_pop:CONSUMER_POP_MISMATCH']);
    const another = { type: CONSUMER_POP_TYPE, tenant_id: 'tenant_acme', event_id: pop.event_id, ...popFor(aliceC, pop.event_id) } as ConsumerPop;
    expect(await codeOf({ ...bundle, consumer_pop: another })).toEqual(['consumer_pop:CONSUMER_POP_MISMATCH']);
    const { consumer_pop: _drop, ...without } = bundle;
    expect(await codeOf(without)).toEqual(['consumer_pop:CONSUMER_POP_MISSING']);
    const plain = (await attest({ meter_event: event(eventId()), tariff: tariffRef })).body;
    expect(await codeOf({ ...plain, consumer_pop: pop })).toEqual(['consumer_pop:CONSUMER_POP_MISMATCH']);
  });

  it('a statement that commits to a PoP whose signature does not verify (signed offline by the operator key): CONSUMER_POP_SIGNATURE_INVALID; an unknown consumer key: CONSUMER_KEY_UNKNOWN', async () => {
    const ev = normalizeMeterEvent(event('evt_offline_1'));
    const fields = { tenant_id: 'tenant_acme', consumer_id: 'alice', key_id: aliceC.keyId, event_id: ev.event_id, tariff_digest: 'sha256:' + '0'.repeat(64), request_payload_hash: sha256Digest('x'), timestamp: '2026-05-29T12:00:00.000Z', nonce: 'offline-nonce-000001' };
    const good = { ...popMessage(fields), signature: aliceC.signPop({ eventId: ev.event_id, tariffDigest: fields.tariff_digest, requestPayloadHash: fields.request_payload_hash, timestamp: fields.timestamp, nonce: fields.nonce }).signature };
    const make = (pop: ConsumerPop) => {
      const r = testAttest({ event: ev, tariff: normalizeTariff(pilotTariff), key: keyA, chain: GENESIS, issuedAt: new Date().toISOString(), consumerPop: pop });
      return { ...r.bundle, consumer_pop: pop }; // the tariff digest must match the statement's
    };
    const withDigest = (p: ConsumerPop, statementTariff: string) => ({ ...p, tariff_digest: statementTariff });
    // first learn the statement's salted tariff digest, then sign a PoP naming it
    const probe = make(good);
    const td = probe.attestation.statement.tariff_digest;
    const signedForTd = aliceC.signPop({ eventId: ev.event_id, tariffDigest: td, requestPayloadHash: fields.request_payload_hash, timestamp: fields.timestamp, nonce: fields.nonce });
    const valid = withDigest({ ...good, signature: signedForTd.signature }, td);
    const tr: TrustMaterial = { ...trustFor(keyA), consumers: t.consumers!.map((c) => ({ ...c, keys: c.keys.map((k) => ({ ...k, valid_from: '2020-01-01T00:00:00Z' })) })) };
    const ok = await verifyBundle(make(valid), tr, { profile: 'standard' });
    expect(ok.valid, failing(ok)).toBe(true);
    const flipped = valid.signature.startsWith('A') ? `B${valid.signature.slice(1)}` : `A${valid.signature.slice(1)}`;
    const bad = await verifyBundle(make({ ...valid, signature: flipped }), tr, { profile: 'standard' });
    expect(checkOf(bad, 'consumer_pop')).toMatchObject({ status: 'fail', code: 'CONSUMER_POP_SIGNATURE_INVALID' });
    const unknown = await verifyBundle(make(valid), { ...tr, consumers: [] }, { profile: 'standard' });
    expect(checkOf(unknown, 'consumer_pop')).toMatchObject({ status: 'fail', code: 'CONSUMER_KEY_UNKNOWN' });
  });
});

describe('the CLI verifier', () => {
  it('checks the PoP too; --require-countersignature fails a bundle without one (exit 1, COUNTERSIGNATURE_MISSING)', async () => {
    const id = eventId();
    const bundle = (await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: popFor(aliceC, id) })).body;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-bi-cli-'));
    try {
      fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify(bundle));
      fs.writeFileSync(path.join(dir, 't.json'), JSON.stringify(await trust()));
      const cli = (...extra: string[]) => runCli(['verify', 'b.json', '--trust', 't.json', '--profile', 'standard', ...extra], dir);
      const [ok, required] = await Promise.all([cli(), cli('--require-countersignature')]);
      expect(ok.status, ok.stdout + ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/✓ consumer_pop\s+pass/);
      expect(required.status).toBe(1);
      expect(required.stdout).toMatch(/countersignatures\s+fail COUNTERSIGNATURE_MISSING/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('countersignatures', () => {
  let id: string;
  let bundle: FullBundle;
  beforeAll(async () => {
    const ev = eventId();
    const r = await attest({ meter_event: event(ev), tariff: tariffRef, consumer_pop: popFor(aliceC, ev) });
    bundle = r.body;
    id = r.headers.get('x-attestation-id')!;
  });

  it('the consumer countersigns the statement digest: stored, returned in the bundle, checked by the verifier; the same again is 200', async () => {
    const body = aliceC.countersign(bundle);
    const r = await s.call('POST', `/v1/attestations/${id}/countersignatures`, { token: attestKey, body });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ statement_digest: digestOfJson(bundle.attestation.statement), consumer_id: 'alice' });
    expect(r.body.statement_digest).toBe(digestOf(bundle.attestation.statement));
    expect((await s.call('POST', `/v1/attestations/${id}/countersignatures`, { token: attestKey, body })).status).toBe(200);
    const again = aliceC.countersign(bundle, new Date(Date.now() - 1000));
    expect((await s.call('POST', `/v1/attestations/${id}/countersignatures`, { token: attestKey, body: again })).body.code).toBe('COUNTERSIGNATURE_EXISTS');
    const got = await s.call('GET', `/v1/attestations/${id}`, { token: attestKey });
    expect(got.body.countersignatures).toHaveLength(1);
    const listed = (await s.call('GET', '/v1/attestations?tenant_id=tenant_acme&limit=500', { token: attestKey })).body.items.find((i: { id: string }) => i.id === id);
    expect(listed.bundle.countersignatures).toEqual(got.body.countersignatures);
    const rep = await verify(got.body, await trust(), { profile: 'standard', requireCountersignature: true });
    expect(rep.valid, failing(rep)).toBe(true);
    expect(checkOf(rep, 'countersignatures').status).toBe('pass');
    // the noble verification in the consumer module agrees with the service's node:crypto one
    const cs = got.body.countersignatures[0];
    const { signature, ...message } = cs;
    expect(verifyConsumerSignature(aliceC.publicJwk.x, message, signature)).toBe(true);
  });

  it('refuses a bad signature, another consumer than the PoP\'s, and an unknown attestation', async () => {
    const body = aliceC.countersign(bundle);
    const bad = await s.call('POST', `/v1/attestations/${id}/countersignatures`, { token: attestKey, body: { ...body, signed_at: new Date(Date.now() - 5000).toISOString() } });
    expect([bad.status, bad.body.code]).toEqual([422, 'COUNTERSIGNATURE_INVALID']);
    const byBob = await s.call('POST', `/v1/attestations/${id}/countersignatures`, { token: attestKey, body: bobC.countersign(bundle) });
    expect(byBob.body.code).toBe('COUNTERSIGNATURE_INVALID');
    expect((await s.call('POST', `/v1/attestations/${'0'.repeat(64)}/countersignatures`, { token: attestKey, body })).status).toBe(404);
  });

  it('a tampered countersignature fails the verifier with COUNTERSIGNATURE_INVALID; requiring one without any fails COUNTERSIGNATURE_MISSING', async () => {
    const got = (await s.call('GET', `/v1/attestations/${id}`, { token: attestKey })).body as FullBundle;
    const t = await trust();
    const cs = got.countersignatures![0]!;
    for (const tampered of [{ ...cs, signed_at: '2026-01-01T00:00:00.000Z' }, { ...cs, statement_digest: digestOf('x') }, { ...cs, consumer_id: 'bob' }]) {
      const r = await verify({ ...got, countersignatures: [tampered] }, t, { profile: 'standard' });
      expect(checkOf(r, 'countersignatures').code ?? 'none', JSON.stringify(tampered)).toMatch(/COUNTERSIGNATURE_INVALID|CONSUMER_KEY_(UNKNOWN|NOT_VALID_AT_TIME)/);
      expect(r.valid).toBe(false);
    }
    const sig = await verify({ ...got, countersignatures: [{ ...cs, signature: bobC.countersign(got).signature }] }, t, { profile: 'standard' });
    expect(checkOf(sig, 'countersignatures').code).toBe('COUNTERSIGNATURE_INVALID');
    const { countersignatures: _c, ...none } = got;
    expect(checkOf(await verify(none, t, { profile: 'standard', requireCountersignature: true }), 'countersignatures').code).toBe('COUNTERSIGNATURE_MISSING');
  });
});

describe('tenant and consumer isolation', () => {
  it('a consumer-scoped key reads only its consumer\'s attestations and countersigns only as that consumer', async () => {
    const aliceKey = (await s.call('POST', '/v1/admin/api-keys', { body: { name: 'alice', scopes: ['read'], tenants: ['tenant_acme'], consumer_id: 'alice' } })).body;
    expect(aliceKey.consumer_id).toBe('alice');
    const a = eventId();
    const b = eventId();
    const ra = await attest({ meter_event: event(a, { endpoint: '/iso' }), tariff: tariffRef, consumer_pop: popFor(aliceC, a) });
    const rb = await attest({ meter_event: event(b, { endpoint: '/iso' }), tariff: tariffRef, consumer_pop: popFor(bobC, b) });
    const plain = await attest({ meter_event: event(eventId(), { endpoint: '/iso' }), tariff: tariffRef });
    const idA = ra.headers.get('x-attestation-id');
    expect((await s.call('GET', `/v1/attestations/${idA}`, { token: aliceKey.secret })).status).toBe(200);
    expect((await s.call('GET', `/v1/attestations/${rb.headers.get('x-attestation-id')}`, { token: aliceKey.secret })).status).toBe(404);
    expect((await s.call('GET', `/v1/attestations/${plain.headers.get('x-attestation-id')}`, { token: aliceKey.secret })).status).toBe(404);
    const list = await s.call('GET', '/v1/attestations?tenant_id=tenant_acme&limit=500', { token: aliceKey.secret });
    expect(list.body.items.length).toBeGreaterThan(0);
    expect(list.body.items.every((i: { bundle: FullBundle }) => i.bundle.consumer_pop?.consumer_id === 'alice')).toBe(true);
    expect((await s.call('GET', '/v1/attestations?tenant_id=tenant_other', { token: aliceKey.secret })).body.code).toBe('TENANT_FORBIDDEN');
    // it countersigns as alice only, and cannot attest
    const cs = await s.call('POST', `/v1/attestations/${idA}/countersignatures`, { token: aliceKey.secret, body: bobC.countersign(ra.body) });
    expect([cs.status, cs.body.code]).toEqual([403, 'CONSUMER_FORBIDDEN']);
    expect((await s.call('POST', `/v1/attestations/${idA}/countersignatures`, { token: aliceKey.secret, body: aliceC.countersign(ra.body) })).status).toBe(201);
    expect((await attest({ meter_event: event(eventId()), tariff: tariffRef }, aliceKey.secret)).body.code).toBe('FORBIDDEN');
  });

  it('a consumer-scoped key needs exactly its tenant, the read scope only, and a registered consumer', async () => {
    const bad = async (body: unknown) => (await s.call('POST', '/v1/admin/api-keys', { body })).body.code;
    expect(await bad({ scopes: ['read', 'attest'], tenants: ['tenant_acme'], consumer_id: 'alice' })).toBe('INVALID_API_KEY_REQUEST');
    expect(await bad({ scopes: ['read'], consumer_id: 'alice' })).toBe('INVALID_API_KEY_REQUEST');
    expect(await bad({ scopes: ['read'], tenants: ['tenant_other'], consumer_id: 'alice' })).toBe('CONSUMER_UNKNOWN');
  });

  it('a PoP of a tenant_other consumer on a tenant_acme event, and a tenant_other event with a tenant_acme consumer: POP_INVALID', async () => {
    const carolC = new Consumer({ tenantId: 'tenant_other', consumerId: 'carol', secretKey: carol.secretKey });
    const id = eventId();
    // carol signs for tenant_other; the event is tenant_acme's: the signed tenant differs
    expect((await attest({ meter_event: event(id), tariff: tariffRef, consumer_pop: popFor(carolC, id) })).body.code).toBe('POP_INVALID');
    const o = eventId();
    expect((await attest({ meter_event: event(o, { tenant_id: 'tenant_other' }), tariff: tariffRef, consumer_pop: popFor(aliceC, o) })).body.code).toBe('POP_INVALID');
    expect((await attest({ meter_event: event(o, { tenant_id: 'tenant_other' }), tariff: tariffRef, consumer_pop: popFor(carolC, o) })).status).toBe(201);
  });
});

describe('outcomes are part of what both sign', () => {
  it('error and timeout cost 0, partial is charged on its units; the outcome is in the statement the PoP and countersignature bind', async () => {
    const charges: Record<string, string> = {};
    for (const outcome of ['success', 'error', 'timeout', 'partial']) {
      const id = eventId();
      const r = await attest({ meter_event: event(id, { outcome, endpoint: `/outcome-${outcome}` }), tariff: tariffRef, consumer_pop: popFor(aliceC, id) });
      expect(r.status).toBe(201);
      const st = r.body.attestation.statement;
      expect(st.outcome).toBe(outcome);
      charges[outcome] = st.charge_micros;
      const cs = aliceC.countersign(r.body);
      expect((await s.call('POST', `/v1/attestations/${r.headers.get('x-attestation-id')}/countersignatures`, { token: attestKey, body: cs })).status).toBe(201);
      // changing the outcome changes the statement: the countersignature no longer matches it
      expect(digestOfJson({ ...st, outcome: outcome === 'error' ? 'success' : 'error' })).not.toBe(digestOfJson(st));
    }
    expect(charges).toEqual({ success: '221040', error: '0', timeout: '0', partial: '221040' });
  });
});

describe('meterproof/consumer runs in the browser too', () => {
  it('imports no Node built-in, directly or through the modules it uses', () => {
    const seen = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = fs.readFileSync(file, 'utf8');
      for (const m of src.matchAll(/^(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm)) {
        const spec = m[1]!;
        expect(spec, `${file} imports ${spec}`).not.toMatch(/^node:|^(fs|path|crypto|os|module|buffer)$/);
        if (spec.startsWith('.')) walk(path.resolve(path.dirname(file), spec));
        else expect(['@noble/curves/ed25519.js', '@noble/hashes/sha2.js', 'zod'], `${file} imports ${spec}`).toContain(spec);
      }
      expect(src, `${file} uses Buffer`).not.toMatch(/\bBuffer\./);
    };
    walk(path.resolve('src/consumer/index.ts'));
    expect(seen.size).toBeGreaterThan(3);
  });

  it('its signatures verify with node:crypto and its key id is the service\'s thumbprint', () => {
    const jwk = publicJwk({ publicKey: fromB64Url(alice.publicJwk.x)!, keyId: alice.publicJwk.kid }, '2020-01-01T00:00:00Z');
    expect(jwkThumbprint(fromB64Url(alice.publicJwk.x)!)).toBe(aliceC.keyId);
    const p = aliceC.signPop({ eventId: 'e1', tariffDigest, requestPayload: 'x', nonce: 'nonce-nonce-nonce-1' });
    const message = popMessage({ tenant_id: 'tenant_acme', event_id: 'e1', ...p });
    expect(verifyConsumerSignature(jwk.x, message, p.signature)).toBe(true);
    expect(p.request_payload_hash).toBe(sha256Digest('x'));
  });
});

describe.skipIf(!usingPostgres())('two server processes on one PostgreSQL (skipped without DATABASE_URL)', () => {
  let pair: ServerPair;
  beforeAll(async () => {
    pair = await startServerPair();
  }, 120_000);
  afterAll(async () => pair?.stop());

  it('the same nonce sent at once to both processes for two events: one 201, one POP_REPLAY', async () => {
    const { a, b } = pair;
    await api(a.url, 'POST', '/v1/admin/tenants', { id: 'tenant_acme', name: 'acme' });
    const key = (await api(a.url, 'POST', '/v1/admin/api-keys', { scopes: ['attest'] })).body.secret;
    const td = (await api(a.url, 'POST', '/v1/admin/tariffs', pilotTariff)).body.v2.tariff_digest;
    expect((await api(a.url, 'POST', '/v1/admin/consumers', { tenant_id: 'tenant_acme', consumer_id: 'alice', public_key: alice.publicJwk })).status).toBe(201);
    for (let round = 0; round < 5; round++) {
      const nonce = `two-process-nonce-${round}-00`;
      const body = (id: string) => ({ meter_event: event(id, { endpoint: `/p${id}` }), tariff: tariffRef, consumer_pop: aliceC.signPop({ eventId: id, tariffDigest: td, requestPayload: id, nonce }) });
      const [ra, rb] = await Promise.all([api(a.url, 'POST', '/v1/attest', body(`mp-${round}-a`), key), api(b.url, 'POST', '/v1/attest', body(`mp-${round}-b`), key)]);
      expect([ra.body.code ?? ra.status, rb.body.code ?? rb.status].sort(), `round ${round}`).toEqual([201, 'POP_REPLAY']);
    }
  }, 60_000);
});
