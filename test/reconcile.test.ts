// Reconciliation: the core over CSV, NDJSON and JSON invoice lines (exact amounts, every category,
// the match rate), and POST /v1/reconcile over the real service and store (PostgreSQL with
// DATABASE_URL, PGlite otherwise): the window's attested charges, streamed body, access rules.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryLookup, ReconcileInputError, parseMicros, reconcile, splitCsv, type ReconcileReport } from '../src/core/reconcile.ts';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { EVIDENCE_PAGE } from '../src/service/evidence.ts';
import { verifyEvidencePack } from '../src/verifier/index.ts';
import { testService, type TestService } from './support/service.ts';

const id = (n: number) => n.toString(16).padStart(64, '0');
function lookupOf(n: number): MemoryLookup {
  const l = new MemoryLookup();
  for (let k = 1; k <= n; k++) l.add({ attestation_id: id(k), event_id: `e${k}`, charge_micros: BigInt(k * 1_000_000 + 1), currency: 'USD' });
  return l;
}
const counts = (r: ReconcileReport) => Object.fromEntries(Object.entries(r.categories).map(([k, c]) => [k, c.count]));

describe('the reconciliation core', () => {
  it('parses amounts exactly: micros as integers, decimals of the major unit with at most 6 digits, never a float', () => {
    expect(parseMicros('1000001', undefined)).toBe(1_000_001n);
    expect(parseMicros(undefined, '1.000001')).toBe(1_000_001n);
    expect(parseMicros(undefined, '12345678901234.999999')).toBe(12_345_678_901_234_999_999n);
    expect(parseMicros(undefined, '0.1')).toBe(100_000n);
    expect(() => parseMicros(undefined, '0.0000001')).toThrow(/at most 6/);
    expect(() => parseMicros(undefined, '1e3')).toThrow();
    expect(() => parseMicros(undefined, 1.5)).toThrow(/decimal string/);
    expect(() => parseMicros('-1', undefined)).toThrow();
    expect(() => parseMicros('18446744073709551616', undefined)).toThrow(/uint64/);
    expect(splitCsv('a,"b,""c""",d')).toEqual(['a', 'b,"c"', 'd']);
    expect(() => splitCsv('"open')).toThrow();
  });

  it('puts each line in its category, finds the unbilled, and computes the match rate in basis points', async () => {
    const csv = [
      'event_id,attestation_id,amount,currency',
      'e1,,1.000001,USD', // matched
      `,${id(2)},2.000001,USD`, // matched by attestation id
      `,sha256:${id(3)},3.000000,USD`, // amount mismatch (1 micro under)
      'e4,,4.000001,EUR', // currency mismatch
      'e1,,1.000001,USD', // billed twice
      'ghost,,9.99,USD', // billed without attestation
      'e6,,not money,USD', // invalid
      '"e7",,"7.000001",USD', // matched, quoted
    ];
    const r = await reconcile(csv, { lookup: lookupOf(8) });
    expect(counts(r)).toEqual({ matched: 3, amount_mismatch: 2, billed_without_attestation: 1, attested_unbilled: 3, duplicate: 1, invalid: 1 });
    expect(r.lines).toBe(8);
    expect(r.match_rate_bps).toBe(Math.floor((3 * 10_000) / (8 + 3)));
    expect(r.items.find((i) => i.ref === id(3))).toMatchObject({ category: 'amount_mismatch', line: 4, billed_micros: '3000000', attested_micros: '3000001', reason: 'billed -1 micros against the attested charge' });
    expect(r.items.find((i) => i.ref === 'e4')).toMatchObject({ category: 'amount_mismatch', reason: 'billed in EUR, attested in USD' });
    expect(r.items.filter((i) => i.category === 'attested_unbilled').map((i) => i.ref)).toEqual(['e5', 'e6', 'e8']);
    expect(r.items.find((i) => i.category === 'invalid')).toMatchObject({ line: 8, reason: expect.stringMatching(/amount/) });
    // totals per currency: billed (valid lines) and attested (all in scope)
    const usd = r.totals.find((t) => t.currency === 'USD')!;
    expect(usd.attested_micros).toBe(String([1, 2, 3, 4, 5, 6, 7, 8].reduce((a, k) => a + k * 1_000_000 + 1, 0)));
    expect(usd.billed_micros).toBe(String(1_000_001 + 2_000_001 + 3_000_000 + 1_000_001 + 9_990_000 + 7_000_001));
    expect(r.totals.find((t) => t.currency === 'EUR')).toEqual({ currency: 'EUR', billed_micros: '4000001', attested_micros: '0', difference_micros: '4000001' });
  });

  it('reads NDJSON and a JSON array alike; caps the listed items but counts all; refuses an unreadable input', async () => {
    const rows = [
      { event_id: 'e1', billed_micros: '1000001', currency: 'USD' },
      { event_id: 'e2', billed_micros: 2000001, currency: 'USD' },
      { event_id: 'x', amount: '1', currency: 'USD' },
    ];
    const nd = await reconcile(rows.map((x) => JSON.stringify(x)), { lookup: lookupOf(3), maxListed: 1 });
    const js = await reconcile(JSON.stringify(rows, null, 2).split('\n'), { lookup: lookupOf(3), maxListed: 1 });
    for (const r of [nd, js]) {
      expect(counts(r)).toMatchObject({ matched: 2, billed_without_attestation: 1, attested_unbilled: 1 });
      expect(r.items).toHaveLength(1);
      expect(r.items_truncated).toBe(true);
    }
    await expect(reconcile(['id,amount,currency', 'e1,1,USD'], { lookup: lookupOf(1) })).rejects.toBeInstanceOf(ReconcileInputError);
    await expect(reconcile(['event_id,amount'], { lookup: lookupOf(1) })).rejects.toThrow(/currency/);
    await expect(reconcile(['[1,'], { lookup: lookupOf(1) })).rejects.toThrow(/not JSON/);
    const empty = await reconcile([], { lookup: lookupOf(0) });
    expect(empty.match_rate_bps).toBe(10_000);
  });

  it('a line naming a member twice is never matched: invalid in NDJSON, the whole JSON array refused', async () => {
    // e1 is attested at 1000001: with the last value kept, the line would match
    const twice = '{"event_id":"e1","billed_micros":"1","billed_micros":"1000001","currency":"USD"}';
    const nd = await reconcile([twice], { lookup: lookupOf(1) });
    expect(counts(nd)).toMatchObject({ matched: 0, invalid: 1 });
    await expect(reconcile([`[${twice}]`], { lookup: lookupOf(1) })).rejects.toThrow(/duplicate object key "billed_micros"/);
  });
});

describe('POST /v1/reconcile', () => {
  let s: TestService;
  let key: string;
  const charges: Record<string, string> = {};
  const url = `/v1/reconcile?tenant_id=tenant_acme&window=${pilotEvent.billing_window_id}`;

  beforeAll(async () => {
    s = await testService();
    await s.call('POST', '/v1/admin/tenants', { body: { id: 'tenant_acme' } });
    await s.call('POST', '/v1/admin/tenants', { body: { id: 'tenant_other' } });
    await s.call('POST', '/v1/admin/tariffs', { body: pilotTariff });
    key = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest', 'read'], tenants: ['tenant_acme'] } })).body.secret;
    const tariff = { tariff_id: pilotTariff.tariff_id, tariff_version: pilotTariff.tariff_version };
    const events = Array.from({ length: 30 }, (_, k) => ({ meter_event: { ...pilotEvent, event_id: `r${k}`, usage_units: 1000 + k * 500 }, tariff }));
    const r = await s.call('POST', '/v1/attest/batch', { token: key, body: { events } });
    for (const [k, x] of (r.body.results as { status: number; bundle: { attestation: { statement: { charge_micros: string } } } }[]).entries()) {
      expect(x.status).toBe(201);
      charges[`r${k}`] = x.bundle.attestation.statement.charge_micros;
    }
    // another window and another tenant: out of scope
    await s.call('POST', '/v1/attest', { token: key, body: { meter_event: { ...pilotEvent, event_id: 'later', billing_window_id: '2026-06' }, tariff } });
  }, 60_000);
  afterAll(async () => s?.close());

  it('reconciles a CSV body against the window: categories, amounts, the unbilled', async () => {
    const lines = ['event_id,billed_micros,currency'];
    for (let k = 0; k < 25; k++) lines.push(`r${k},${BigInt(charges[`r${k}`]!) + (k === 3 ? 5n : 0n)},USD`);
    lines.push(`later,${charges['r0']},USD`); // another window's event: not attested in this one
    const r = await s.call('POST', url, { token: key, raw: lines.join('\r\n'), headers: { 'content-type': 'text/csv' } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(counts(r.body)).toEqual({ matched: 24, amount_mismatch: 1, billed_without_attestation: 1, attested_unbilled: 5, duplicate: 0, invalid: 0 });
    expect(r.body.match_rate_bps).toBe(Math.floor((24 * 10_000) / (26 + 5)));
    expect(r.body.items[0]).toMatchObject({ category: 'amount_mismatch', ref: 'r3', line: 5, reason: 'billed +5 micros against the attested charge' });
    const attested = Object.values(charges).reduce((a, c) => a + BigInt(c), 0n);
    expect(r.body.totals).toEqual([expect.objectContaining({ currency: 'USD', attested_micros: attested.toString() })]);
  });

  it('takes NDJSON and JSON, by attestation id too; refuses other media types, other tenants and unreadable input', async () => {
    const all = (await s.call('GET', `/v1/attestations?tenant_id=tenant_acme&window=${pilotEvent.billing_window_id}&limit=100`, { token: key })).body.items as { id: string; bundle: { attestation: { statement: { charge_micros: string } } } }[];
    const rows = all.map((a) => ({ attestation_id: a.id, billed_micros: a.bundle.attestation.statement.charge_micros, currency: 'USD' }));
    const nd = await s.call('POST', url, { token: key, raw: rows.map((x) => JSON.stringify(x)).join('\n'), headers: { 'content-type': 'application/x-ndjson' } });
    expect(counts(nd.body)).toMatchObject({ matched: 30, attested_unbilled: 0 });
    expect(nd.body.match_rate_bps).toBe(10_000);
    const js = await s.call('POST', url, { token: key, body: rows.slice(0, 10) });
    expect(counts(js.body)).toMatchObject({ matched: 10, attested_unbilled: 20 });
    expect((await s.call('POST', url, { token: key, raw: 'x', headers: { 'content-type': 'text/plain' } })).body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect((await s.call('POST', url, { token: key, raw: 'nothing,useful\n', headers: { 'content-type': 'text/csv' } })).body.code).toBe('INVALID_INVOICE');
    const other = await s.call('POST', `/v1/reconcile?tenant_id=tenant_other&window=${pilotEvent.billing_window_id}`, { token: key, raw: 'event_id,amount,currency\n', headers: { 'content-type': 'text/csv' } });
    expect(other.status).toBe(403);
    expect((await s.call('POST', url, { token: null, raw: '', headers: { 'content-type': 'text/csv' } })).status).toBe(401);
    expect((await s.call('POST', '/v1/reconcile?tenant_id=tenant_acme', { token: key, raw: '', headers: { 'content-type': 'text/csv' } })).body.code).toBe('INVALID_QUERY');
  });

  it('reads the body as a stream: lines split across chunks, a UTF-8 character split across chunks', async () => {
    const text = `event_id,billed_micros,currency\nr0,${charges['r0']},USD\nr1,${charges['r1']},USD\n"é-not-attested",1,USD\n`;
    const bytes = new TextEncoder().encode(text);
    const cut = text.indexOf('é') + 1; // inside the two bytes of é
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (const [a, b] of [[0, 17], [17, cut], [cut, bytes.length]] as const) c.enqueue(bytes.slice(a, b));
        c.close();
      },
    });
    const res = await s.app.request(url, { method: 'POST', body, headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv' }, duplex: 'half' } as RequestInit);
    const r = (await res.json()) as ReconcileReport;
    expect(counts(r)).toMatchObject({ matched: 2, billed_without_attestation: 1, attested_unbilled: 28 });
    expect(r.items[0]).toMatchObject({ ref: 'é-not-attested' });
  });

  it('a window larger than a page of the store: the pack is read page by page in chain order, complete, and reconciles', async () => {
    const tariff = { tariff_id: pilotTariff.tariff_id, tariff_version: pilotTariff.tariff_version };
    await s.call('PUT', '/v1/admin/tenants/tenant_acme/proof-policy', { body: { policy: 'on_demand' } });
    const n = EVIDENCE_PAGE * 2 + 37;
    const events = Array.from({ length: n }, (_, k) => ({ meter_event: { ...pilotEvent, event_id: `big${k}`, billing_window_id: '2026-08', endpoint: `/v1/e${k % 3}`, usage_units: 100 + k }, tariff }));
    let last = '';
    for (let k = 0; k < n; k += 1000) {
      const r = await s.call('POST', '/v1/attest/batch', { token: key, headers: { prefer: 'return=minimal' }, body: { events: events.slice(k, k + 1000) } });
      last = r.body.results.at(-1).id;
    }
    await s.call('GET', `/v1/attestations/${last}?log=sync`, { token: key });
    const pack = (await s.call('GET', '/v1/evidence?tenant_id=tenant_acme&window=2026-08', { token: key })).body as string;
    const invoice: string[] = ['event_id,billed_micros,currency'];
    const lookup: string[] = [];
    const v = await verifyEvidencePack(pack, { profile: 'standard', onBundle: (b) => void lookup.push(`${b.event_id},${b.charge_micros},${b.currency}`) });
    expect(v.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(v).toMatchObject({ valid: true, bundles: { total: n, valid: n } });
    const r = await s.call('POST', '/v1/reconcile?tenant_id=tenant_acme&window=2026-08', { token: key, raw: [...invoice, ...lookup].join('\n'), headers: { 'content-type': 'text/csv' } });
    expect(counts(r.body)).toMatchObject({ matched: n, attested_unbilled: 0 });
    expect(r.body.match_rate_bps).toBe(10_000);
  }, 120_000);
});
