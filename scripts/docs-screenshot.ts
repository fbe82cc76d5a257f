// `npm run docs:screenshot`: regenerates docs/img/auditor-report.png, the auditor's report shown in
// docs/disputes.md. A service runs in-process on a temporary embedded store; a few events of a
// window are attested, proved and logged; its evidence pack is fetched (GET /v1/evidence),
// verified against the pinned trust (GET /v1/trust) and reconciled with an invoice that has one
// amount mismatch, one line without attestation and one unbilled event; the report is rendered as
// `meterproof report` renders it and photographed by headless Chromium (CHROMIUM, default
// /usr/bin/chromium: `apt-get install chromium`). `--pdf <file>` also prints it to PDF.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { MemoryLookup, reconcile } from '../src/core/reconcile.ts';
import { renderAuditReport } from '../src/core/report.ts';
import type { FullBundle } from '../src/core/schemas.ts';
import { releaseZk, verifyEvidencePack, zkVerifier } from '../src/verifier/index.ts';
import { provedBundles } from '../test/support/proved-bundles.ts';
import { testService } from '../test/support/service.ts';

const OUT = path.resolve('docs/img/auditor-report.png');
const pdfAt = process.argv.indexOf('--pdf');
const PDF = pdfAt >= 0 ? process.argv[pdfAt + 1] : undefined;

async function main(): Promise<void> {
  const s = await testService();
  let html: string;
  try {
    const { bundles, trust } = await provedBundles(s, 8, { workers: 2, tag: 'inv-2026-05' });
    const window = bundles[0]!.meter_event.billing_window_id;
    const pack = (await s.call('GET', `/v1/evidence?tenant_id=tenant_acme&window=${window}`)).body as string;
    // the invoice the customer disputes: line 3 is 0.25 over, one event is not attested, one attested event is not billed
    const decimal = (m: bigint) => `${m / 1_000_000n}.${(m % 1_000_000n).toString().padStart(6, '0')}`;
    const byEvent = [...bundles].sort((a, b) => (a.meter_event.event_id < b.meter_event.event_id ? -1 : 1));
    const lines = ['event_id,amount,currency'];
    byEvent.slice(0, -1).forEach((b: FullBundle, k) => lines.push(`${b.meter_event.event_id},${decimal(BigInt(b.attestation.statement.charge_micros) + (k === 1 ? 250_000n : 0n))},USD`));
    lines.push('inv-2026-05-manual-adjustment,0.400000,USD');
    const lookup = new MemoryLookup();
    const verdict = await verifyEvidencePack(pack, {
      zk: zkVerifier,
      pinned: trust,
      onBundle: (b) => b.valid && lookup.add({ attestation_id: b.attestation_id, event_id: b.event_id, charge_micros: b.charge_micros, currency: b.currency }),
    });
    if (!verdict.valid) throw new Error(`the demo pack does not verify: ${verdict.code}`);
    const reconciliation = await reconcile(lines, { lookup });
    const digest = `sha256:${(await import('node:crypto')).createHash('sha256').update(pack).digest('hex')}`;
    html = renderAuditReport({ verdict, reconciliation, packFile: 'acme-2026-05.ndjson', packDigest: digest, trustFile: 'pinned.json', invoiceFile: 'invoice-2026-05.csv', generator: 'meterproof report' });
  } finally {
    await s.close();
    await releaseZk();
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-report-'));
  const file = path.join(dir, 'report.html');
  fs.writeFileSync(file, html);
  const browser = await chromium.launch({ executablePath: process.env['CHROMIUM'] ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1040, height: 900 }, deviceScaleFactor: 1 });
    await page.goto(`file://${file}`);
    fs.mkdirSync(path.dirname(OUT), { recursive: true });
    await page.screenshot({ path: OUT, fullPage: true });
    if (PDF) await page.pdf({ path: PDF, format: 'A4', printBackground: true });
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`${OUT} written${PDF ? `; ${PDF} printed` : ''}`);
}

await main();
