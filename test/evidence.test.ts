// Evidence packs over the real service and store (PostgreSQL with DATABASE_URL, PGlite otherwise):
// GET /v1/evidence for an attestation, a window and a settlement; verifyEvidencePack on them, with
// the embedded or pinned trust; tampered packs fail with their named code; the CLI's exit codes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateConsumerKey } from '../src/consumer/index.ts';
import { digestOf } from '../src/core/canonical.ts';
import { generateSigningKey, publicJwk, signObject } from '../src/core/keys.ts';
import { formatVerifierKey } from '../src/core/note.ts';
import type { FullBundle } from '../src/core/schemas.ts';
import type { TrustMaterial } from '../src/core/trust.ts';
import { type EvidenceVerdict, packLines, verifyEvidencePack, zkVerifier } from '../src/verifier/index.ts';
import { nextStatementsDigest, STATEMENTS_DIGEST_EMPTY } from '../src/verifier/evidence.ts';
import { provedBundles } from './support/proved-bundles.ts';
import { runCli } from './support/cli.ts';
import { renderAuditReport } from '../src/core/report.ts';
import { graduatedTariff, pilotEvent, pilotTariff } from './support/fixtures.ts';
import { ADMIN, testService, type TestService } from './support/service.ts';
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';

let s: TestService;
let trust: TrustMaterial;
let bundles: FullBundle[];
let windowPack: string;
const WINDOW = pilotEvent.billing_window_id;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-evidence-'));

const lines = (pack: string) => pack.trimEnd().split('\n').map((l) => JSON.parse(l));
const text = (ls: unknown[]) => `${ls.map((l) => JSON.stringify(l)).join('\n')}\n`;
const verify = (pack: string, pinned?: unknown): Promise<EvidenceVerdict> => verifyEvidencePack(pack, { zk: zkVerifier, ...(pinned ? { pinned: pinned as never } : {}) });
const failed = (v: EvidenceVerdict) => v.checks.filter((c) => c.status === 'fail').map((c) => `${c.name}:${c.code}`);

async function getPack(q: string): Promise<string> {
  const r = await s.call('GET', `/v1/evidence?${q}`);
  expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(200);
  expect(r.headers.get('content-type')).toBe('application/x-ndjson');
  return typeof r.body === 'string' ? r.body : `${JSON.stringify(r.body)}\n`;
}

beforeAll(async () => {
  s = await testService();
  ({ bundles, trust } = await provedBundles(s, 4, { workers: 2, tag: 'ev' }));
  windowPack = await getPack(`tenant_id=tenant_acme&window=${WINDOW}`);
}, 600_000);
afterAll(async () => {
  await s?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a window pack', () => {
  it('is header, one line per bundle in chain order, the signed manifest; it verifies with the embedded trust', async () => {
    const ls = lines(windowPack);
    expect(ls[0]).toMatchObject({ type: 'meterproof/evidence-pack/v1', scope: { kind: 'window', tenant_id: 'tenant_acme', billing_window_id: WINDOW }, pin_out_of_band: ['log.verifier_key', 'jwks'] });
    expect(ls).toHaveLength(bundles.length + 2);
    expect(ls.at(-1).manifest).toMatchObject({ type: 'meterproof/evidence-manifest/v1', count: String(bundles.length) });
    const v = await verify(windowPack);
    expect(failed(v)).toEqual([]);
    expect(v.valid).toBe(true);
    expect(v.trust_source).toBe('embedded');
    expect(v.bundles).toMatchObject({ total: bundles.length, valid: bundles.length, invalid: 0 });
    // the same pack arriving as bytes in 7-byte chunks (lines and UTF-8 sequences cut anywhere)
    const bytes = new TextEncoder().encode(windowPack);
    const chunks = Array.from({ length: Math.ceil(bytes.length / 7) }, (_, k) => bytes.slice(k * 7, k * 7 + 7));
    expect((await verifyEvidencePack(packLines(chunks), { zk: zkVerifier })).valid).toBe(true);
    const sum = bundles.reduce((a, b) => a + BigInt(b.attestation.statement.charge_micros), 0n);
    expect(v.totals.by_currency).toEqual([{ key: 'USD', currency: 'USD', events: bundles.length, charge_micros: sum.toString() }]);
  });

  it('verifies against pinned trust (the JWKS and log key of GET /v1/trust); a wrong pinned log key or JWKS fails by name', async () => {
    const v = await verify(windowPack, trust);
    expect(v.valid).toBe(true);
    expect(v.trust_source).toBe('pinned');
    const otherLog = formatVerifierKey('test.meterproof/log', generateSigningKey().publicKey);
    const wrongLog = await verify(windowPack, { ...trust, log: { verifier_key: otherLog } });
    expect(wrongLog.valid).toBe(false);
    expect(wrongLog.code).toBe('PINNED_LOG_KEY_MISMATCH');
    const k = generateSigningKey();
    const otherJwks = { keys: trust.jwks.keys.map((j) => ({ ...j, x: Buffer.from(k.publicKey).toString('base64url') })) };
    const wrongJwks = await verify(windowPack, { jwks: otherJwks, log: trust.log });
    expect(wrongJwks.code).toBe('PINNED_JWKS_MISMATCH');
    expect((await verify(windowPack, { jwks: trust.jwks, log: trust.log })).valid).toBe(true);
    expect((await verify(windowPack, { nothing: 1 })).code).toBe('PINNED_TRUST_INVALID');
  });

  it('refuses a pin of only one of the JWKS and the log key: a pack re-signed with a key of its own does not pass as pinned', async () => {
    // a forger drops a bundle, adds a key of its own to the header's JWKS and signs a new manifest
    // with it: consistent with itself, and with the genuine log key
    const ls = lines(windowPack);
    const forger = generateSigningKey();
    const header = ls[0] as { created_at: string; trust: { jwks: { keys: unknown[] } } };
    header.trust.jwks.keys.push(publicJwk(forger, '2000-01-01T00:00:00.000Z'));
    const kept = ls.slice(1, -2) as { bundle: FullBundle }[]; // the last bundle dropped
    const { manifest } = ls.at(-1) as { manifest: { chains: { id: string; count: string }[] } };
    const forgedManifest = {
      ...manifest,
      header_digest: digestOf(header),
      count: String(kept.length),
      statements_digest: kept.reduce((d, l) => nextStatementsDigest(d, digestOf(l.bundle.attestation.statement)), STATEMENTS_DIGEST_EMPTY),
      chains: manifest.chains.map((c) => ({ ...c, count: String(kept.filter((l) => l.bundle.attestation.statement.chain.id === c.id).length) })).filter((c) => c.count !== '0'),
    };
    const forged = text([header, ...kept, { manifest: forgedManifest, key_id: forger.keyId, signature: signObject(forger, forgedManifest) }]);
    const selfCheck = await verify(forged);
    expect(selfCheck.valid, JSON.stringify(selfCheck.checks)).toBe(true); // consistent with itself
    for (const partial of [{ log: trust.log }, trust.jwks, { jwks: trust.jwks }]) {
      const v = await verify(forged, partial);
      expect(v.valid).toBe(false);
      expect(v.code).toBe('PINNED_TRUST_INVALID');
    }
    expect((await verify(forged, trust)).code).toBe('PINNED_JWKS_MISMATCH');
  });

  it('tampered: a charge changed, a proof swapped, a bundle dropped, a truncated file — each fails with its code', async () => {
    const ls = lines(windowPack);
    // the charge of a bundle's billing block (the statement is signed: changing it there is a signature failure)
    const charged = structuredClone(ls);
    charged[1].bundle.billing.expected_charge_micros = String(BigInt(charged[1].bundle.billing.expected_charge_micros) + 1n);
    const v1 = await verify(text(charged));
    expect(v1.valid).toBe(false);
    expect(v1.code).toBe('DIGEST_MISMATCH');
    expect(v1.bundles.failures[0]).toMatchObject({ index: 0, check: 'digests', code: 'DIGEST_MISMATCH' });
    const signedCharge = structuredClone(ls);
    signedCharge[1].bundle.attestation.statement.charge_micros = '1';
    expect(failed(await verify(text(signedCharge)))).toEqual(expect.arrayContaining(['manifest:PACK_INCOMPLETE', 'bundles:SIGNATURE_INVALID']));
    // the proofs of two bundles swapped
    const swapped = structuredClone(ls);
    [swapped[1].bundle.attestation.billing_proof, swapped[2].bundle.attestation.billing_proof] = [swapped[2].bundle.attestation.billing_proof, swapped[1].bundle.attestation.billing_proof];
    const v2 = await verify(text(swapped));
    expect(v2.code).toBe('PROOF_INVALID');
    // a bundle dropped from the window
    const dropped = [...ls.slice(0, 2), ...ls.slice(3)];
    const v3 = await verify(text(dropped));
    expect(v3.valid).toBe(false);
    expect(v3.code).toBe('PACK_INCOMPLETE');
    // truncated: the file cut in the middle of a line, or before the manifest
    expect((await verify(windowPack.slice(0, Math.floor(windowPack.length * 0.7)))).code).toBe('PACK_TRUNCATED');
    expect((await verify(text(ls.slice(0, -1)))).code).toBe('PACK_TRUNCATED');
    expect((await verify('not json\n')).code).toBe('PACK_MALFORMED');
  });
});

describe('GET /v1/reports', () => {
  it("serves the auditor's report of a window as HTML, the pack verified by the service against its own keys", async () => {
    const r = await s.call('GET', `/v1/reports?tenant_id=tenant_acme&window=${WINDOW}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    expect(r.body).toContain('✓ VALID');
    expect(r.body).toContain(`tenant tenant_acme, billing window ${WINDOW}`);
    expect(r.body).toContain('meterproof evidence verify evidence-window.ndjson --trust pinned.json');
    expect((await s.call('GET', '/v1/reports?window=x')).body.code).toBe('INVALID_QUERY');
  });
});

describe("the auditor's report", () => {
  it('escapes every value from the pack: a hostile endpoint, tariff, code and file name stay text', async () => {
    const v = await verify(windowPack);
    const evil = '<img src=x onerror=alert(1)>"\'&';
    const hostile = {
      ...v,
      valid: false,
      code: evil,
      totals: { ...v.totals, by_endpoint: [{ key: evil, currency: 'USD', events: 1, charge_micros: '1' }], by_tariff: [{ key: evil, currency: evil, events: 1, charge_micros: '1' }] },
      checks: v.checks.map((c) => ({ ...c, reason: evil })),
      bundles: { ...v.bundles, failures: [{ index: 0, statement_digest: evil, check: evil, code: evil, reason: evil }] },
    };
    const html = renderAuditReport({ verdict: hostile, packFile: `pack ${evil}.ndjson`, trustFile: evil });
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;');
    expect(html).toContain('✗ INVALID');
    expect(html).not.toMatch(/<script|src="http|href="http/); // self-contained: nothing loaded
  });
});

describe('an attestation pack', () => {
  it('holds the one bundle and verifies, read line by line', async () => {
    const id = bundles[0]!.attestation.statement.charge_micros && (await s.call('GET', `/v1/attestations?tenant_id=tenant_acme&limit=1`)).body.items[0].id;
    const pack = await getPack(`attestation_id=${id}`);
    const v = await verifyEvidencePack(pack.split('\n'), { zk: zkVerifier, pinned: trust });
    expect(failed(v)).toEqual([]);
    expect(v).toMatchObject({ valid: true, scope: { kind: 'attestation', attestation_id: id }, bundles: { total: 1 } });
  });
});

describe('a settlement pack', () => {
  let pack: string;
  beforeAll(async () => {
    const ref = (t: { tariff_id: string; tariff_version: string }) => ({ tariff_id: t.tariff_id, tariff_version: t.tariff_version });
    const meter = (endpoint: string, t: { tariff_id: string; tariff_version: string }) => ({ endpoint, tariff: ref(t), included_units: 100, overage_tiers: [{ up_to: null, unit_price_micros: 7 }] });
    const plan = { plan_id: 'ev', plan_version: '1', currency: 'USD', fixed_fee_micros: 1_000_000, platform_fee_bps: 250, meters: [meter('/v1/m0', pilotTariff), meter('/v1/m1', graduatedTariff), meter('/v1/m2', pilotTariff), meter('/v1/m3', graduatedTariff)] };
    expect((await s.call('POST', '/v1/admin/plans', { body: plan })).status).toBe(201);
    expect((await s.call('POST', '/v1/admin/subscriptions', { body: { tenant_id: 'tenant_acme', plan_id: 'ev', plan_version: '1', effective_from: '2026-01-01T00:00:00Z' } })).status).toBe(201);
    const run = await s.call('POST', '/v1/settlements', { body: { tenant_id: 'tenant_acme', billing_window_id: WINDOW } });
    expect(run.status, JSON.stringify(run.body)).toBe(201);
    // wait for the settlement leaf to be logged (its receipt is part of the pack)
    for (let i = 0; i < 200 && !(await s.call('GET', `/v1/settlements/${run.body.id}`)).body.receipt; i++) await new Promise((r) => setTimeout(r, 20));
    pack = await getPack(`settlement_id=${run.body.id}`);
  }, 60_000);

  it('carries the settlement line and verifies: every bundle, the recomputation, the settlement receipt', async () => {
    const ls = lines(pack);
    expect(ls.at(-2)).toHaveProperty('settlement');
    const v = await verify(pack, trust);
    expect(failed(v)).toEqual([]);
    expect(v.valid).toBe(true);
    expect(v.settlement?.valid).toBe(true);
    expect(v.settlement_totals?.currency).toBe('USD');
  });

  it('a consumer-scoped key gets no settlement pack or report: 404, as for a settlement it may not see (the pack would hold the other consumers\' bundles)', async () => {
    const id = lines(pack)[0].scope.settlement_id as string;
    const consumer = generateConsumerKey();
    expect((await s.call('POST', '/v1/admin/consumers', { body: { tenant_id: 'tenant_acme', consumer_id: 'ev_alice', public_key: consumer.publicJwk } })).status).toBe(201);
    const key = (await s.call('POST', '/v1/admin/api-keys', { body: { name: 'ev_alice', scopes: ['read'], tenants: ['tenant_acme'], consumer_id: 'ev_alice' } })).body.secret as string;
    for (const route of ['/v1/evidence', '/v1/reports']) {
      const r = await s.call('GET', `${route}?settlement_id=${id}`, { token: key });
      expect(r.status, route).toBe(404);
      expect(r.body.code, route).toBe('NOT_FOUND');
    }
    // the same key still gets its own (here: empty) window pack
    const own = await s.call('GET', `/v1/evidence?tenant_id=tenant_acme&window=${WINDOW}`, { token: key });
    expect(own.status).toBe(200);
    expect(String(own.body)).not.toContain('"bundle"');
  });

  it('a statement left out of the settlement fails the recomputation (and the manifest)', async () => {
    const ls = lines(pack);
    const v = await verify(text([...ls.slice(0, -3), ...ls.slice(-2)]), trust);
    expect(v.valid).toBe(false);
    expect(failed(v)).toEqual(expect.arrayContaining(['manifest:PACK_INCOMPLETE', 'chains:CHAIN_GAP']));
    expect(v.checks.find((c) => c.name === 'settlement')?.status).toBe('fail');
  });
});

describe('the CLI: evidence verify, reconcile, report', () => {
  let files: { pack: string; trust: string; wrongTrust: string; truncated: string; notPack: string; invoice: string };
  beforeAll(() => {
    const ls = lines(windowPack);
    const events = ls.slice(1, -1).map((l) => l.bundle as FullBundle);
    const [a, b, c] = events;
    const micros = (x: FullBundle) => BigInt(x.attestation.statement.charge_micros);
    const decimal = (m: bigint) => `${m / 1_000_000n}.${(m % 1_000_000n).toString().padStart(6, '0')}`;
    const invoice = [
      'event_id,amount,currency',
      `${a!.meter_event.event_id},${decimal(micros(a!))},USD`, // matched
      `${b!.meter_event.event_id},${decimal(micros(b!) + 1n)},USD`, // amount mismatch (1 micro over)
      `${c!.meter_event.event_id},${decimal(micros(c!))},USD`, // matched
      '"<script>x</script>",1.00,USD', // billed without attestation (and an HTML-escaping probe)
    ].join('\n');
    files = {
      pack: path.join(dir, 'pack.ndjson'),
      trust: path.join(dir, 'trust.json'),
      wrongTrust: path.join(dir, 'wrong-trust.json'),
      truncated: path.join(dir, 'truncated.ndjson'),
      notPack: path.join(dir, 'not-a-pack.ndjson'),
      invoice: path.join(dir, 'invoice.csv'),
    };
    fs.writeFileSync(files.pack, windowPack);
    fs.writeFileSync(files.trust, JSON.stringify(trust));
    fs.writeFileSync(files.wrongTrust, JSON.stringify({ ...trust, log: { verifier_key: formatVerifierKey('test.meterproof/log', generateSigningKey().publicKey) } }));
    fs.writeFileSync(files.truncated, windowPack.slice(0, windowPack.lastIndexOf('\n', windowPack.length - 2) + 1));
    fs.writeFileSync(files.notPack, '{"hello":"world"}\n');
    fs.writeFileSync(files.invoice, `${invoice}\n`);
  });

  it('evidence verify: 0 valid, 1 truncated or wrong pin (named), 2 not a pack', async () => {
    const ok = await runCli(['evidence', 'verify', files.pack, '--trust', files.trust], dir);
    expect(ok.stdout).toMatch(/^VALID: 4 bundles, 4 valid; trust pinned$/m);
    expect(ok.status).toBe(0);
    const [truncated, wrong, notPack] = await Promise.all([
      runCli(['evidence', 'verify', files.truncated, '--embedded-trust'], dir),
      runCli(['evidence', 'verify', files.pack, '--trust', files.wrongTrust], dir),
      runCli(['evidence', 'verify', files.notPack, '--embedded-trust'], dir),
    ]);
    expect(truncated.status).toBe(1);
    expect(truncated.stdout).toMatch(/INVALID \(PACK_TRUNCATED\)/);
    expect(wrong.status).toBe(1);
    expect(wrong.stdout).toMatch(/INVALID \(PINNED_LOG_KEY_MISMATCH\)/);
    expect(notPack.status).toBe(2);
    expect(notPack.stderr).toMatch(/^not an evidence pack/);
  }, 120_000);

  it('a pack is trusted only when asked: no --trust is a usage error; --embedded-trust is never called VALID', async () => {
    const [none, both, self, rec, rep] = await Promise.all([
      runCli(['evidence', 'verify', files.pack], dir),
      runCli(['evidence', 'verify', files.pack, '--trust', files.trust, '--embedded-trust'], dir),
      runCli(['evidence', 'verify', files.pack, '--embedded-trust'], dir),
      runCli(['reconcile', files.invoice, '--pack', files.pack, '--json'], dir),
      runCli(['report', files.pack, '--invoice', files.invoice], dir),
    ]);
    for (const r of [none, rec, rep]) {
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/give --trust <pinned\.json> .*or --embedded-trust/);
    }
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/not both/);
    expect(self.status).toBe(0);
    expect(self.stdout).toMatch(/^CONSISTENT WITH ITSELF: 4 bundles, 4 valid; trust embedded in the pack, not pinned/m);
    expect(self.stdout).not.toMatch(/^VALID/m);
    const [selfRec, selfRep] = await Promise.all([
      runCli(['reconcile', files.invoice, '--pack', files.pack, '--embedded-trust', '--json'], dir),
      runCli(['report', files.pack, '--embedded-trust'], dir),
    ]);
    expect(selfRec.status).toBe(1); // the invoice's discrepancies, as with pinned trust
    expect(JSON.parse(selfRec.stdout).lines).toBe(4);
    expect(selfRec.stderr).toMatch(/checked only against the keys it carries/);
    expect(selfRep.status).toBe(0);
    expect(selfRep.stdout).toContain('✓ CONSISTENT WITH ITSELF');
    expect(selfRep.stdout).not.toContain('✓ VALID');
  }, 120_000);

  it('evidence export streams a pack from a running server; reconcile --url posts the invoice to it', async () => {
    const server = serve({ fetch: s.app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const exported = path.join(dir, 'exported.ndjson');
      const env = { env: { METERPROOF_TOKEN: ADMIN } };
      const [ex, rec, refused] = await Promise.all([
        runCli(['evidence', 'export', '--url', url, '--tenant', 'tenant_acme', '--window', WINDOW, '-o', exported], dir, env),
        runCli(['reconcile', files.invoice, '--url', url, '--tenant', 'tenant_acme', '--window', WINDOW, '--json'], dir, env),
        runCli(['evidence', 'export', '--url', url, '--tenant', 'tenant_none', '--window', WINDOW, '--token', 'mp_wrong'], dir),
      ]);
      expect(ex.status, ex.stderr).toBe(0);
      const v = await verify(fs.readFileSync(exported, 'utf8'), trust);
      expect(v.valid).toBe(true);
      expect(v.bundles.total).toBe(bundles.length);
      expect(rec.status, rec.stderr).toBe(1);
      expect(JSON.parse(rec.stdout).categories.amount_mismatch.count).toBe(1);
      expect(refused.status).toBe(2);
      expect(refused.stderr).toMatch(/answered 401 UNAUTHENTICATED/);
    } finally {
      await new Promise((r) => server.close(r));
    }
  }, 120_000);

  it('reconcile against the pack: each category, every discrepancy in --out; report: escaped HTML with the commands', async () => {
    const items = path.join(dir, 'items.ndjson');
    const html = path.join(dir, 'report.html');
    const [r, rep] = await Promise.all([
      runCli(['reconcile', files.invoice, '--pack', files.pack, '--trust', files.trust, '--out', items, '--json'], dir),
      runCli(['report', files.pack, '--trust', files.trust, '--invoice', files.invoice, '-o', html], dir),
    ]);
    expect(r.status, r.stderr).toBe(1); // discrepancies
    const report = JSON.parse(r.stdout);
    expect(report.lines).toBe(4);
    expect(Object.fromEntries(Object.entries(report.categories).map(([k, c]) => [k, (c as { count: number }).count]))).toEqual({ matched: 2, amount_mismatch: 1, billed_without_attestation: 1, attested_unbilled: 1, duplicate: 0, invalid: 0 });
    expect(report.match_rate_bps).toBe(4000); // 2 matched of 4 lines + 1 unbilled
    const listed = fs.readFileSync(items, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(listed.map((i: { category: string }) => i.category)).toEqual(['amount_mismatch', 'billed_without_attestation', 'attested_unbilled']);
    expect(listed[0]).toMatchObject({ line: 3, reason: 'billed +1 micros against the attested charge' });
    expect(rep.status, rep.stderr).toBe(0);
    const page = fs.readFileSync(html, 'utf8');
    expect(page).toContain('✓ VALID');
    expect(page).toContain('&lt;script&gt;x&lt;/script&gt;');
    expect(page).not.toContain('<script>');
    expect(page).toContain(`meterproof evidence verify ${files.pack} --trust ${files.trust}`);
    expect(page).toContain('Match rate <strong>40.00 %</strong>');
  }, 120_000);
});
