// The served revocation list (docs/protocol.md §2.11): a sequence raised in the transaction of
// every change (ordered by commit across processes on one database), an expiry, and signing
// again before half the lifetime has passed. Real store: PostgreSQL when DATABASE_URL is set.
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../src/core/canonical.ts';
import { advanceTrustState, entriesDigest } from '../src/core/revocations.ts';
import type { RevocationListBody, SignedRevocationList, TrustMaterial } from '../src/core/trust.ts';
import { verifyBundle } from '../src/core/verify.ts';
import { MIGRATIONS, openDatabase, rowsOf, type Database } from '../src/db/index.ts';
import { KeyRing } from '../src/service/keyring.ts';
import { RevocationService } from '../src/service/revocations.ts';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { testService, type TestService } from './support/service.ts';

const LIFETIME = 10 * 60_000;
let s: TestService;
let attestKey: string;
let offset = 0; // the service clock runs `offset` ms ahead of real time
const clock = () => new Date(Date.now() + offset);

type V2 = Extract<RevocationListBody, { sequence: string }>;
const v2 = (l: SignedRevocationList): V2 => {
  if (!('sequence' in l.list)) throw new Error(`served a ${l.list.type} list`);
  return l.list;
};

beforeAll(async () => {
  s = await testService({ clock, revocationListLifetimeMs: LIFETIME });
  expect((await s.call('POST', '/v1/admin/tenants', { body: { id: 'tenant_acme', name: 'Acme' } })).status).toBe(201);
  attestKey = (await s.call('POST', '/v1/admin/api-keys', { body: { name: 'backend', scopes: ['attest'] } })).body.secret;
});
afterAll(async () => s?.close());

async function attestMany(prefix: string, n: number): Promise<any[]> {
  const events = Array.from({ length: n }, (_, i) => ({ meter_event: { ...pilotEvent, event_id: `${prefix}-${i}` }, tariff_snapshot: pilotTariff }));
  const r = await s.call('POST', '/v1/attest/batch', { token: attestKey, body: { events } });
  expect(r.status).toBe(200);
  return r.body.results.map((x: { bundle: unknown }) => x.bundle);
}
const served = async (): Promise<SignedRevocationList> => (await s.call('GET', '/.well-known/billing-revocations.json', { token: null })).body;
const trust = async (): Promise<TrustMaterial> => (await s.call('GET', '/v1/trust', { token: null })).body;

describe('the served revocation list', () => {
  it('raises the sequence with every change and only then; the trust state refuses the older lists afterwards', async () => {
    const [a, b] = await attestMany('seq', 2);
    const l0 = await served();
    expect(l0.list).toMatchObject({ type: 'meterproof/revocations/v2', sequence: '0', keys: [], attestations: [] });
    const t0 = await trust();
    const state0 = advanceTrustState(t0, undefined, clock());
    expect(state0?.revocations?.sequence).toBe('0');

    const revoke = (x: any) => s.call('POST', '/v1/admin/revocations/attestations', { body: { statement_digest: digestOf(x.attestation.statement), reason: 'duplicate billing' } });
    expect((await revoke(a)).status).toBe(201);
    expect(v2(await served()).sequence).toBe('1');
    expect((await revoke(a)).status).toBe(201); // already revoked: no change, no new sequence
    expect(v2(await served()).sequence).toBe('1');
    const kid = b.attestation.key_id;
    expect((await s.call('POST', '/v1/admin/revocations/keys', { body: { key_id: kid, revoked_from: b.attestation.statement.issued_at, reason: 'drill' } })).status).toBe(201);
    const l2 = v2(await served());
    expect(l2.sequence).toBe('2');
    expect(l2.keys.map((k) => k.key_id)).toEqual([kid]);
    // moving revoked_from is a change too
    expect((await s.call('POST', '/v1/admin/revocations/keys', { body: { key_id: kid, revoked_from: '2026-01-01T00:00:00.000Z', reason: 'drill' } })).status).toBe(201);
    const t3 = await trust();
    expect(v2(t3.revocations!).sequence).toBe('3');

    // a verifier that has seen sequence 3 refuses the list of sequence 0 it was shown before
    const state3 = advanceTrustState(t3, state0, clock());
    expect(state3?.revocations?.sequence).toBe('3');
    const r = await verifyBundle(a, t0, { profile: 'standard', now: clock(), trustState: state3! });
    expect(r.checks.find((c) => c.name === 'revocation')).toMatchObject({ status: 'fail', code: 'REVOCATIONS_ROLLBACK' });
    expect(advanceTrustState(t0, state3, clock())).toBeUndefined();
  });

  it('is kept until half its lifetime has passed, then signed again: never served expired', async () => {
    offset = 0;
    // attested while the service clock is real time (a key signs only inside its known window)
    const bundle = (await attestMany('fresh', 1))[0];
    const first = await served();
    const l = v2(first);
    expect(Date.parse(l.expires_at) - Date.parse(l.issued_at)).toBe(LIFETIME);
    expect(await served()).toEqual(first); // the same signed list while nothing changed
    offset = LIFETIME / 2 - 1_000;
    expect(await served()).toEqual(first);
    offset = LIFETIME / 2 + 1_000;
    const again = v2(await served());
    expect(again.sequence).toBe(l.sequence);
    expect(entriesDigest(again)).toBe(entriesDigest(l));
    expect(Date.parse(again.issued_at)).toBeGreaterThanOrEqual(Date.parse(l.issued_at) + LIFETIME / 2);
    expect(Date.parse(again.expires_at) - clock().getTime()).toBeGreaterThanOrEqual(LIFETIME / 2 - 1_000);
    // an old copy of the list is expired for a verifier whose clock is past its expiry, the served one is not
    const t = await trust();
    const late = new Date(Date.parse(l.expires_at));
    const old = { ...t, revocations: first };
    expect((await verifyBundle(bundle, old, { profile: 'standard', now: late })).checks.find((c) => c.name === 'revocation')).toMatchObject({ code: 'REVOCATIONS_EXPIRED' });
    expect((await verifyBundle(bundle, t, { profile: 'standard', now: late })).checks.find((c) => c.name === 'revocation')?.status).toBe('pass');
    // the API verifies with the service's clock and its own, fresh list
    expect((await s.call('POST', '/v1/verify?profile=standard', { token: null, body: bundle })).body.valid).toBe(true);
    offset = 0;
  });

  it('two processes revoking at once: one sequence per change, and one list content per sequence', async () => {
    // the second "process": its own connection pool on PostgreSQL, its own services
    let other: Database | null = null;
    if (s.store.url) other = await openDatabase({ url: s.store.url });
    const db2 = other?.db ?? s.store.database.db;
    const keys2 = new KeyRing(db2, path.join(s.dataDir, 'keys'));
    await keys2.init();
    const rev2 = new RevocationService(db2, keys2, clock, LIFETIME);
    const services = [s.container.revocations, rev2];
    try {
      const base = v2(await served());
      const bundles = await attestMany('race', 24);
      const seen: V2[] = [];
      await Promise.all([
        ...bundles.map((b, i) => services[i % 2]!.revokeAttestation({ statement_digest: digestOf(b.attestation.statement), reason: `race ${i}` })),
        ...Array.from({ length: 24 }, async (_, i) => seen.push(v2(await services[i % 2]!.signedList()))),
      ]);
      const last = v2(await rev2.signedList());
      expect(BigInt(last.sequence) - BigInt(base.sequence)).toBe(24n);
      expect(v2(await s.container.revocations.signedList()).sequence).toBe(last.sequence);
      // each list's entries are exactly those of its sequence (one snapshot), whichever process signed it
      const bySeq = new Map<string, string>();
      for (const l of [...seen, last]) {
        expect(BigInt(l.attestations.length - base.attestations.length)).toBe(BigInt(l.sequence) - BigInt(base.sequence));
        const d = entriesDigest(l);
        expect(bySeq.get(l.sequence) ?? d).toBe(d);
        bySeq.set(l.sequence, d);
      }
    } finally {
      await other?.close();
    }
  });

  it('migration 0008 starts the sequence at the number of revocations already stored, and keeps it when applied again', async () => {
    const db = s.store.database.db;
    const count = async () => Number(rowsOf<{ n: string | number }>(await db.execute(sql`select count(*) as n from revocations`))[0]!.n);
    const sequence = async () => v2(await new RevocationService(db, s.container.keys, clock, LIFETIME).signedList()).sequence;
    const stored = await count();
    expect(stored).toBeGreaterThan(3);
    expect(BigInt(await sequence())).toBeGreaterThan(BigInt(stored)); // more changes than rows so far
    const journal = JSON.parse(fs.readFileSync(path.join(MIGRATIONS, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string; when: number }[] };
    const since = journal.entries.find((e) => e.tag.startsWith('0008_'))!.when;
    const before = await sequence();
    // applied again over itself (as an upgrade test of an earlier migration does): unchanged
    await db.execute(sql`delete from drizzle.__drizzle_migrations where created_at >= ${since}`);
    await s.store.database.migrate();
    expect(await sequence()).toBe(before);
    // the store as the code before 0008 left it: revocations, no sequence
    await db.execute(sql`drop table revocation_list_state`);
    await db.execute(sql`delete from drizzle.__drizzle_migrations where created_at >= ${since}`);
    await s.store.database.migrate();
    expect(await sequence()).toBe(String(stored));
  });
});
