// The attest write path under concurrency (src/service/chain-writer.ts): group commit stores the
// events of many concurrent requests with few statements, and two writers with separate caches
// (as two API processes are) keep every chain linear, lose nothing and store each event once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import fs from 'node:fs';
import path from 'node:path';
import { MIGRATIONS, openDatabase, rowsOf } from '../src/db/index.ts';
import { toProblem } from '../src/http/problem.ts';
import postgres from 'postgres';
import { digestOf } from '../src/core/canonical.ts';
import { normalizeMeterEvent, normalizeTariff } from '../src/core/attest.ts';
import { chainId } from '../src/core/statement.ts';
import { type PendingEvent, requestDigestOf } from '../src/service/chain-writer.ts';
import { AttestService } from '../src/service/attest.ts';
import { ServiceError } from '../src/service/errors.ts';
import type { Principal } from '../src/service/auth.ts';
import { TEST_TARIFF_SALT, pilotEvent, pilotTariff } from './support/fixtures.ts';
import { saltedTariffDigest, tariffCommitmentV2 } from '../src/core/binding-v2.ts';
import { TariffService } from '../src/service/tariffs.ts';
import { testService, type TestService } from './support/service.ts';
import { usingPostgres } from './support/db.ts';

let s: TestService;
let one: AttestService;
let two: AttestService;
const principal: Principal = { id: 'test', scopes: new Set(['attest', 'read']), tenants: null };

beforeAll(async () => {
  s = await testService();
  await s.call('POST', '/v1/admin/tenants', { body: { id: 'tenant_acme' } });
  one = s.container.attest;
  // a second writer over the same database: its own chain-head cache, its own group commit
  two = new AttestService(s.store.database.db, s.container.keys, s.container.tariffs);
}, 60_000);
afterAll(async () => s?.close());

const body = (id: string, endpoint: string, units = 10) => ({ meter_event: { ...pilotEvent, event_id: id, endpoint, usage_units: units }, tariff_snapshot: pilotTariff });


describe('chain writer', () => {
  it('stores concurrent single events with fewer statements than events (group commit)', async () => {
    const before = { ...one.writer.stats };
    const res = await Promise.all(Array.from({ length: 120 }, (_, i) => one.attest(principal, body(`gc-${i}`, `/gc${i % 12}`))));
    expect(res.every((r) => r.created)).toBe(true);
    const statements = one.writer.stats.statements - before.statements;
    expect(one.writer.stats.events - before.events).toBe(120);
    expect(statements).toBeLessThan(120);
  }, 60_000);

  it('one hot meter: concurrent requests share statements; replays and conflicts in the crowd are answered', async () => {
    const before = { ...one.writer.stats };
    const reqs = Array.from({ length: 80 }, (_, i) => body(`hot-${i}`, '/hot', 1 + (i % 9)));
    // ten replays of events in the same crowd, and five with other content (conflicts)
    const replays = reqs.slice(0, 10);
    const conflicts = reqs.slice(10, 15).map((b) => body(b.meter_event.event_id, '/hot', 1000));
    const out = await Promise.all([...reqs, ...replays, ...conflicts].map((b) => one.attest(principal, b).then((o) => o, (e: unknown) => e)));
    const created = out.slice(0, 80) as { created: boolean; row: { id: string; seq: bigint } }[];
    const later = out.slice(80);
    // whichever copy came first is the stored one; the other gets 200 (same content) or 409
    const ids = new Map<string, string>();
    for (const o of [...created, ...later]) if (!(o instanceof ServiceError) && (o as { created: boolean }).created) ids.set((o as { row: { eventId: string } }).row.eventId, (o as { row: { id: string } }).row.id);
    expect(ids.size).toBe(80);
    const codes = out.filter((o) => o instanceof ServiceError).map((o) => (o as ServiceError).code);
    expect(codes.every((c) => c === 'IDEMPOTENCY_CONFLICT')).toBe(true);
    expect(codes).toHaveLength(5);
    const stored = one.writer.stats.events - before.events;
    expect(stored).toBe(80);
    expect(one.writer.stats.statements - before.statements).toBeLessThan(40); // a handful of rounds, not one statement per request
    const seqs = rowsOf(await s.store.database.db.execute(sql`select seq from attestations where event_id like 'hot-%' order by seq`)).map((r) => Number(r['seq']));
    expect(seqs).toEqual(seqs.map((_, i) => i));
  }, 60_000);

  it('two writers on shared chains: each event once, replays answered, conflicts refused, chains linear', async () => {
    const reqs: { svc: AttestService; id: string; b: ReturnType<typeof body>; kind: 'new' | 'replay' | 'conflict' }[] = [];
    for (let i = 0; i < 240; i++) {
      const b = body(`mw-${i}`, `/mw${i % 4}`, 1 + (i % 7));
      reqs.push({ svc: i % 2 ? one : two, id: b.meter_event.event_id, b, kind: 'new' });
      if (i % 6 === 0) reqs.push({ svc: i % 2 ? two : one, id: b.meter_event.event_id, b, kind: 'replay' });
      if (i % 10 === 3) reqs.push({ svc: i % 2 ? two : one, id: b.meter_event.event_id, b: body(b.meter_event.event_id, `/mw${i % 4}`, 999), kind: 'conflict' });
    }
    const out = await Promise.all(reqs.map((r) => r.svc.attest(principal, r.b).then((o) => ({ r, o }), (e: unknown) => ({ r, e }))));
    // per event id: exactly one stored attestation; every other request for it is a replay of
    // it (same content) or a 409 (different content) — whichever request got there first
    const stored = new Map<string, string>();
    for (const x of out) {
      if ('o' in x && x.o.created) {
        expect(stored.has(x.r.id)).toBe(false);
        stored.set(x.r.id, x.o.row.id);
      }
    }
    expect(stored.size).toBe(240);
    for (const x of out) {
      if ('e' in x) {
        expect(x.e, String((x.e as Error).stack)).toBeInstanceOf(ServiceError);
        expect((x.e as ServiceError).code).toBe('IDEMPOTENCY_CONFLICT');
      } else if (!x.o.created) {
        expect(x.o.row.id).toBe(stored.get(x.r.id));
      }
    }
    const db = s.store.database.db;
    const rows = rowsOf(
      await db.execute(sql`select chain_id, seq, statement_digest, bundle -> 'attestation' -> 'statement' -> 'chain' as chain from attestations where event_id like 'mw-%' order by chain_id, seq`),
    );
    expect(rows).toHaveLength(240);
    const byChain = new Map<string, Record<string, unknown>[]>();
    for (const r of rows) byChain.set(r['chain_id'] as string, [...(byChain.get(r['chain_id'] as string) ?? []), r]);
    expect(byChain.size).toBe(4);
    for (const chain of byChain.values()) {
      chain.forEach((r, i) => {
        const link = (typeof r['chain'] === 'string' ? JSON.parse(r['chain']) : r['chain']) as { seq: string; prev: string | null };
        expect(Number(r['seq'])).toBe(i);
        expect(link.seq).toBe(String(i));
        expect(link.prev).toBe(i === 0 ? null : chain[i - 1]!['statement_digest']);
      });
    }
    // every stored attestation has its proof job and its log entry (queued or integrated)
    const [counts] = rowsOf(
      await db.execute(sql`select
        (select count(*) from proof_jobs j join attestations a on a.id = j.attestation_id where a.event_id like 'mw-%')::int as jobs,
        ((select count(*) from log_queue q join attestations a on a.id = q.attestation_id where a.event_id like 'mw-%')
          + (select count(*) from log_leaves l join attestations a on a.id = l.attestation_id where a.event_id like 'mw-%'))::int as logged`),
    );
    expect(counts).toEqual({ jobs: 240, logged: 240 });
  }, 120_000);
});

describe('stored bundles', () => {
  /** Does this server have lz4? (PostgreSQL 14+ built with it; not PGlite) */
  const serverHasLz4 = async () => {
    try {
      await s.store.database.db.execute(sql.raw('do $$ begin create temp table lz4_probe (j json compression lz4); drop table lz4_probe; end $$'));
      return true;
    } catch {
      return false;
    }
  };

  it('are compressed with lz4 where the server has it, pglz otherwise (PGlite), and read back whole', async () => {
    const db = s.store.database.db;
    const lz4 = await serverHasLz4();
    if (usingPostgres()) expect(lz4).toBe(true); // the machine's PostgreSQL (CI) has it
    const out = await one.attest(principal, body('lz4-1', '/lz4'));
    const [row] = rowsOf(await db.execute(sql`select pg_column_compression(bundle) as method, bundle from attestations where id = ${out.row.id}`));
    expect(row!['method']).toBe(lz4 ? 'lz4' : 'pglz');
    const stored = typeof row!['bundle'] === 'string' ? JSON.parse(row!['bundle'] as string) : row!['bundle'];
    expect(stored).toEqual(JSON.parse(JSON.stringify(out.row.bundle)));
  });

  it('are stored as the text the writer made (json, not jsonb), each joined to its own row in a many-chain batch', async () => {
    const db = s.store.database.db;
    // ids with quotes, backslashes and non-ASCII text, over several chains and one statement
    const items = Array.from({ length: 60 }, (_, i) => body(`join-${i}-"q"\\-ü-路-😀`, `/join${i % 7}`, 1 + i));
    const res = await one.attestMany(principal, items);
    const written = res.map((r) => {
      if (r instanceof ServiceError) throw r;
      return r.row;
    });
    const [type] = rowsOf(await db.execute(sql`select data_type from information_schema.columns where table_name = 'attestations' and column_name = 'bundle'`));
    expect(type!['data_type']).toBe('json');
    const rows = rowsOf<{ id: string; event_id: string; statement_digest: string; seq: string | number; text: string }>(
      await db.execute(sql`select id, event_id, statement_digest, seq, bundle::text as text from attestations where event_id like 'join-%'`),
    );
    expect(rows).toHaveLength(60);
    const byId = new Map(written.map((w) => [w.id, w]));
    for (const r of rows) {
      const w = byId.get(r.id)!;
      expect(r.text).toBe(JSON.stringify(w.bundle)); // byte for byte what the writer sent
      const b = JSON.parse(r.text) as { meter_event: { event_id: string }; attestation: { statement: { chain: { seq: string } } } };
      expect(b.meter_event.event_id).toBe(r.event_id);
      expect(digestOf(b.attestation.statement)).toBe(r.statement_digest);
      expect(b.attestation.statement.chain.seq).toBe(String(r.seq));
    }
  });

  it('U+001E (the bundles\' separator) inside a bundle\'s strings is stored escaped, each bundle with its own row', async () => {
    // the schema refuses control characters in events; the writer is fed directly here
    const db = s.store.database.db;
    const tariff = normalizeTariff(pilotTariff);
    const tariffDigest = digestOf(tariff);
    const items: PendingEvent[] = ['sep-\u001e-1', 'sep-2', 'sep-\u001e\u001e-3'].map((id) => {
      const event = { ...normalizeMeterEvent({ ...pilotEvent, endpoint: '/sep' }), event_id: id };
      return { event, tariff, tariffSalt: TEST_TARIFF_SALT, tariffDigestV2: saltedTariffDigest(tariff, TEST_TARIFF_SALT), requestDigest: requestDigestOf(digestOf(event), tariffDigest) };
    });
    const cid = chainId(pilotEvent.tenant_id, '/sep', pilotEvent.billing_window_id);
    const written = await one.writer.submit(cid, pilotEvent.tenant_id, items, async () => ({ key: await s.container.keys.current(), issuedAt: new Date() }));
    expect(written).toHaveLength(3);
    const rows = rowsOf<{ id: string; event_id: string; text: string }>(await db.execute(sql`select id, event_id, bundle::text as text from attestations where chain_id = ${cid} order by seq`));
    expect(rows.map((r) => r.event_id)).toEqual(items.map((i) => i.event.event_id));
    for (const [i, r] of rows.entries()) {
      expect(r.text).not.toContain('\u001e'); // escaped as the six characters \u001e
      expect(JSON.parse(r.text).meter_event.event_id).toBe(items[i]!.event.event_id);
      expect(r.id).toBe(written[i]!.id);
    }
  });

  it('an empty submission stores nothing and creates no chain row; the chain is written normally after it', async () => {
    const db = s.store.database.db;
    const cid = chainId(pilotEvent.tenant_id, '/empty', pilotEvent.billing_window_id);
    expect(await one.writer.submit(cid, pilotEvent.tenant_id, [], async () => ({ key: await s.container.keys.current(), issuedAt: new Date() }))).toEqual([]);
    expect(rowsOf(await db.execute(sql`select 1 from chains where chain_id = ${cid}`))).toHaveLength(0);
    // concurrent submissions on several chains, one of them empty, share statements: every row keeps its own bundle
    const out = await Promise.all([
      one.attest(principal, body('empty-a', '/empty')),
      one.writer.submit(chainId(pilotEvent.tenant_id, '/empty-none', pilotEvent.billing_window_id), pilotEvent.tenant_id, [], async () => ({ key: await s.container.keys.current(), issuedAt: new Date() })),
      one.attest(principal, body('empty-b', '/empty-2')),
    ]);
    for (const o of [out[0], out[2]] as { row: { id: string; eventId: string } }[]) {
      const [r] = rowsOf<{ text: string }>(await db.execute(sql`select bundle::text as text from attestations where id = ${o.row.id}`));
      expect(JSON.parse(r!.text).meter_event.event_id).toBe(o.row.eventId);
    }
  });

  it('a tariff version published before migration 0009 keeps its v1 commitment public and gets its v2 salt once, on first use', async () => {
    const db = s.store.database.db;
    const old = { ...pilotTariff, tariff_version: 'pre-0009' };
    const published = await s.container.tariffs.publish(old);
    expect(published.tariff.v1Public).toBe(false); // a version published now: no v1 commitment in the trust material
    // the row as the code before 0009 left it
    await db.execute(sql`update tariffs set salt = null, tariff_digest_v2 = null, tariff_commitment_v2 = null, v1_public = false where tariff_version = 'pre-0009'`);
    const journal = JSON.parse(fs.readFileSync(path.join(MIGRATIONS, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string; when: number }[] };
    const since = journal.entries.find((e) => e.tag.startsWith('0009_'))!.when;
    await db.execute(sql`delete from drizzle.__drizzle_migrations where created_at >= ${since}`);
    await s.store.database.migrate();
    const row = async () => rowsOf<{ salt: string | null; v1_public: boolean }>(await db.execute(sql`select salt, v1_public from tariffs where tariff_version = 'pre-0009'`))[0]!;
    expect(await row()).toMatchObject({ salt: null, v1_public: true });
    // a fresh service (no cache) reads it: salted once, concurrently, one salt for all
    const fresh = new TariffService(db, { v1: async () => 1n, v2: tariffCommitmentV2 });
    const got = await Promise.all(Array.from({ length: 5 }, () => fresh.get(old.tariff_id, 'pre-0009')));
    expect(new Set(got.map((g) => g!.salt)).size).toBe(1);
    expect((await row()).salt).toBe(got[0]!.salt.toString());
    expect(got[0]!.tariffCommitmentV2).toBe((await tariffCommitmentV2(published.tariff.snapshot, got[0]!.salt)).toString());
    const trust = await s.container.deps.trust();
    const entries = trust.tariffs!.filter((t) => t.tariff_version === 'pre-0009');
    expect(entries.map((t) => t.binding ?? 'v1').sort()).toEqual(['bn128-poseidon8-v2', 'v1']);
  });

  it('written as jsonb before migration 0007 are converted to json and read back the same', async () => {
    const db = s.store.database.db;
    const before = await one.attest(principal, body('m0007-1', '/m0007'));
    const journal = JSON.parse(fs.readFileSync(path.join(MIGRATIONS, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string; when: number }[] };
    const since = journal.entries.find((e) => e.tag.startsWith('0007_'))!.when;
    // the store as the code before 0007 left it
    await db.execute(sql`alter table attestations alter column bundle type jsonb using bundle::jsonb`);
    await db.execute(sql`delete from drizzle.__drizzle_migrations where created_at >= ${since}`);
    const typeOf = async () => rowsOf(await db.execute(sql`select data_type from information_schema.columns where table_name = 'attestations' and column_name = 'bundle'`))[0]!['data_type'];
    expect(await typeOf()).toBe('jsonb');
    const methods = async () => rowsOf<{ method: string }>(await db.execute(sql`select distinct pg_column_compression(bundle) as method from attestations where pg_column_compression(bundle) is not null`)).map((r) => r.method);
    const lz4 = await serverHasLz4();
    expect(await methods()).toEqual(['pglz']); // the test's own jsonb rewrite above recompressed with the default
    await s.store.database.migrate();
    expect(await typeOf()).toBe('json');
    // the rewrite keeps lz4 where the server has it (a type change alone recompresses with pglz)
    expect(await methods()).toEqual([lz4 ? 'lz4' : 'pglz']);
    if (usingPostgres()) expect(lz4).toBe(true);
    const again = await one.get(principal, before.row.id);
    expect(again.bundle).toEqual(JSON.parse(JSON.stringify(before.row.bundle)));
    const after = await one.attest(principal, body('m0007-2', '/m0007'));
    expect((after.row.bundle as { attestation: { statement: { chain: { prev: string } } } }).attestation.statement.chain.prev).toBe(before.row.statementDigest);
  });
});

describe('a store failure reaches only its own chain group', () => {
  // A real database error for one event (a trigger refusing it), not a mock: the other events
  // of the same group commit (other requests, other chains) are stored; the failing one gets a
  // retryable 503 STORE_FAILED.
  const db = () => s.store.database.db;
  beforeAll(async () => {
    await db().execute(sql.raw(`create or replace function mp_test_refuse() returns trigger language plpgsql as $$
      begin if new.event_id like 'refuse-%' then raise exception 'refused by test trigger'; end if; return new; end $$`));
    await db().execute(sql.raw(`create trigger mp_test_refuse before insert on attestations for each row execute function mp_test_refuse()`));
  });
  afterAll(async () => {
    await db().execute(sql.raw('drop trigger if exists mp_test_refuse on attestations'));
  });

  it('concurrent single events: the refused one fails alone', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => (i === 17 ? 'refuse-1' : `iso-${i}`));
    const out = await Promise.all(ids.map((id, i) => one.attest(principal, body(id, `/iso${i % 8}`)).then((o) => o, (e: unknown) => e)));
    out.forEach((o, i) => {
      if (ids[i] === 'refuse-1') {
        expect(o).toBeInstanceOf(ServiceError);
        expect((o as ServiceError).status).toBe(503);
        expect((o as ServiceError).code).toBe('STORE_FAILED');
      } else expect((o as { created: boolean }).created).toBe(true);
    });
    // the chain of the refused event goes on without a gap
    const next = await one.attest(principal, body('iso-after', '/iso1'));
    expect(next.created).toBe(true);
    const seqs = rowsOf(await db().execute(sql`select seq from attestations where chain_id = ${next.row.chainId} order by seq`)).map((r) => Number(r['seq']));
    expect(seqs).toEqual(seqs.map((_, i) => i));
  }, 60_000);

  it('a batch: per-item results, the refused chain group fails, the rest is stored', async () => {
    const items = Array.from({ length: 30 }, (_, i) => body(i === 4 ? 'refuse-2' : `isob-${i}`, `/isob${i % 6}`));
    const res = await one.attestMany(principal, items);
    const failed = res.map((r, i) => (r instanceof ServiceError ? i : -1)).filter((i) => i >= 0);
    // the refused event's chain group (/isob4: items 4, 10, 16, 22, 28) is stored in one statement
    expect(failed).toEqual([4, 10, 16, 22, 28]);
    for (const i of failed) expect((res[i] as ServiceError).code).toBe('STORE_FAILED');
    expect(res.filter((r) => !(r instanceof ServiceError) && r.created)).toHaveLength(25);
  }, 60_000);
});

describe('an unavailable store', () => {
  it.runIf(usingPostgres())('a shared statement stuck behind a lock is answered 503 for all its groups within about two statement bounds, not one bound per group (PostgreSQL)', async () => {
    const STATEMENT_MS = 700;
    const short = await openDatabase({ url: s.store.url!, timeouts: { statementMs: STATEMENT_MS } });
    const locker = postgres(s.store.url!, { max: 1 });
    const w = new AttestService(short.db, s.container.keys, s.container.tariffs);
    /** `requests` sent while another session holds the chains table: their errors and the wait. */
    const behindLock = async (requests: ReturnType<typeof body>[]) => {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const locked = locker.begin(async (tx) => {
        await tx`lock table chains in access exclusive mode`;
        await held;
      });
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      const errors = await Promise.all(requests.map((b) => w.attest(principal, b).then(() => null, (e: unknown) => e)));
      const waited = Date.now() - started;
      release();
      await locked;
      return { codes: errors.map((e) => toProblem(e).code), waited };
    };
    try {
      const meters = Array.from({ length: 6 }, (_, i) => `/lk${i}`);
      for (const m of meters) expect((await w.attest(principal, body(`lk-warm${m}`, m))).created).toBe(true);
      // six meters: the first statement alone, then the others together, every request refused
      // as unavailable; one by one they would wait 1 + 6 bounds (4.9 s), together 2 and the connects
      const spread = await behindLock(meters.map((m) => body(`lk-new${m}`, m)));
      expect(spread.codes).toEqual(meters.map(() => 'STORE_UNAVAILABLE'));
      expect(spread.waited).toBeLessThan(4 * STATEMENT_MS + 1000);
      // nothing of them was stored, and each is attested afterwards on its chain (heads re-read)
      const stored = rowsOf(await s.store.database.db.execute(sql`select 1 from attestations where event_id like 'lk-new%'`));
      expect(stored).toEqual([]);
      for (const m of meters) expect((await w.attest(principal, body(`lk-new${m}`, m))).created).toBe(true);
      // six requests for one meter (one chain group of six): answered together too, not split in
      // halves each waiting the bound out (~10 bounds)
      const hot = await behindLock(Array.from({ length: 6 }, (_, i) => body(`lk-hot${i}`, '/lk0')));
      expect(hot.codes).toEqual(hot.codes.map(() => 'STORE_UNAVAILABLE'));
      expect(hot.waited).toBeLessThan(4 * STATEMENT_MS + 1000);
    } finally {
      await locker.end();
      await short.close();
    }
  }, 30_000);
});
