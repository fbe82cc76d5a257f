// The auditor's report (docs/disputes.md): one self-contained, printable HTML page built from an
// evidence pack's verdict and, optionally, a reconciliation — totals, breakdowns, every check with
// its code, the reconciliation summary and the exact commands to re-verify offline. No script, no
// external resource; print CSS for A4 (a PDF through the browser's print). Every value taken from
// the pack or the invoice is HTML-escaped. Pure: data in, text out.
import type { Amount, EvidenceVerdict } from '../verifier/evidence.ts';
import type { ReconcileReport } from './reconcile.ts';

export interface ReportInput {
  readonly verdict: EvidenceVerdict;
  readonly reconciliation?: ReconcileReport | null;
  /** The pack's file name as the commands should name it. */
  readonly packFile: string;
  /** `sha256:<hex>` of the pack's bytes, so the reader knows which file was checked. */
  readonly packDigest?: string | null;
  /** The pinned trust file's name (the commands pass it with --trust). */
  readonly trustFile?: string | null;
  /** The invoice file's name (the reconcile command). */
  readonly invoiceFile?: string | null;
  /** When the report was made (default: now). */
  readonly generatedAt?: Date;
  /** What made it (`meterproof 0.1.0`). */
  readonly generator?: string;
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** HTML-escape text for element content and quoted attribute values. */
export const esc = (v: unknown): string => String(v ?? '').replace(/[&<>"']/g, (c) => ESC[c]!);

/** Exact micros as a decimal of the major unit with digit grouping: 1234567890 → "1,234.567890". */
export function formatMicros(micros: string | bigint): string {
  const v = BigInt(micros);
  const neg = v < 0n;
  const a = neg ? -v : v;
  const whole = (a / 1_000_000n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const frac = (a % 1_000_000n).toString().padStart(6, '0');
  return `${neg ? '−' : ''}${whole}.${frac}`;
}
const money = (micros: string | bigint, currency: string) => `<span class="num">${esc(formatMicros(micros))}</span>&nbsp;${esc(currency)}`;

/** A shell word: quoted when it holds anything but safe characters. */
const sh = (w: string) => (/^[A-Za-z0-9_./:=@%+-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

const MARK = { pass: '✓', fail: '✗', skipped: '–' } as const;

function amountTable(title: string, rows: readonly Amount[], keyLabel: string): string {
  if (!rows.length) return '';
  return `<h3>${esc(title)}</h3>
<table><thead><tr><th>${esc(keyLabel)}</th><th class="r">events</th><th class="r">charge</th></tr></thead><tbody>
${rows.map((r) => `<tr><td>${esc(r.key)}</td><td class="r num">${r.events.toLocaleString('en-US')}</td><td class="r">${money(r.charge_micros, r.currency)}</td></tr>`).join('\n')}
</tbody></table>`;
}

function scopeLine(v: EvidenceVerdict): string {
  const s = v.scope;
  if (!s) return 'unknown (the pack header could not be read)';
  if (s.kind === 'attestation') return `attestation ${s.attestation_id} of tenant ${s.tenant_id}`;
  if (s.kind === 'settlement') return `settlement ${s.settlement_id} — tenant ${s.tenant_id}, billing window ${s.billing_window_id}`;
  return `tenant ${s.tenant_id}, billing window ${s.billing_window_id}${s.consumer_id ? `, consumer ${s.consumer_id}` : ''}`;
}

function reconciliationSection(r: ReconcileReport, invoice: string | null | undefined): string {
  const labels: Record<string, string> = {
    matched: 'matched',
    amount_mismatch: 'amount mismatch',
    billed_without_attestation: 'billed without attestation',
    attested_unbilled: 'attested but unbilled',
    duplicate: 'billed twice',
    invalid: 'unreadable invoice line',
  };
  const cats = Object.entries(r.categories);
  const rate = `${(r.match_rate_bps / 100).toFixed(2)} %`;
  const items = r.items.slice(0, 50);
  return `<section class="recon">
<h2>Reconciliation${invoice ? ` of <code>${esc(invoice)}</code>` : ''}</h2>
<p class="rate">Match rate <strong>${esc(rate)}</strong> (${r.match_rate_bps} bps) over ${r.lines.toLocaleString('en-US')} invoice lines.</p>
<table><thead><tr><th>category</th><th class="r">lines</th><th class="r">billed</th><th class="r">attested</th></tr></thead><tbody>
${cats
  .map(([k, c]) => {
    const billed = c.amounts.map((a) => money(a.billed_micros, a.currency)).join('<br>') || '—';
    const attested = c.amounts.map((a) => money(a.attested_micros, a.currency)).join('<br>') || '—';
    return `<tr class="${k === 'matched' ? 'ok' : c.count ? 'bad' : ''}"><td>${esc(labels[k] ?? k)}</td><td class="r num">${c.count.toLocaleString('en-US')}</td><td class="r">${billed}</td><td class="r">${attested}</td></tr>`;
  })
  .join('\n')}
</tbody></table>
<h3>Totals</h3>
<table><thead><tr><th>currency</th><th class="r">billed</th><th class="r">attested</th><th class="r">billed − attested</th></tr></thead><tbody>
${r.totals.map((t) => `<tr><td>${esc(t.currency)}</td><td class="r">${money(t.billed_micros, t.currency)}</td><td class="r">${money(t.attested_micros, t.currency)}</td><td class="r ${t.difference_micros === '0' ? '' : 'warn'}">${money(t.difference_micros, t.currency)}</td></tr>`).join('\n')}
</tbody></table>
${
  items.length
    ? `<h3>Discrepancies${r.items.length > items.length || r.items_truncated ? ` (first ${items.length}; the command below lists all)` : ''}</h3>
<table class="small"><thead><tr><th>line</th><th>category</th><th>reference</th><th class="r">billed</th><th class="r">attested</th><th>note</th></tr></thead><tbody>
${items
  .map(
    (i) =>
      `<tr><td class="num">${i.line ?? '—'}</td><td>${esc(labels[i.category] ?? i.category)}</td><td class="mono">${esc(i.ref ?? '—')}</td><td class="r">${i.billed_micros !== null ? money(i.billed_micros, i.currency ?? '') : '—'}</td><td class="r">${i.attested_micros !== null ? money(i.attested_micros, i.currency ?? '') : '—'}</td><td>${esc(i.reason ?? '')}</td></tr>`,
  )
  .join('\n')}
</tbody></table>`
    : '<p>No discrepancy: every invoice line matches an attested charge, and every attested charge is billed.</p>'
}
</section>`;
}

const CSS = `
:root{--ink:#1b1f24;--muted:#5b6470;--line:#d8dde3;--ok:#1a7f37;--bad:#c62828;--warn:#9a6700;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);margin:0;background:#fff}
main{max-width:960px;margin:0 auto;padding:32px 40px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:14px;margin:18px 0 6px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.sub{color:var(--muted);margin:0 0 16px}
.verdict{display:flex;gap:16px;align-items:center;border:2px solid;border-radius:8px;padding:12px 16px;margin:16px 0}
.verdict.ok{border-color:var(--ok);background:#eaf6ed}.verdict.bad{border-color:var(--bad);background:#fdecea}.verdict.self{border-color:var(--warn);background:#fff8e5}
.verdict .big{font-size:22px;font-weight:700}.verdict.ok .big{color:var(--ok)}.verdict.bad .big{color:var(--bad)}.verdict.self .big{color:var(--warn)}
.note{border-left:4px solid var(--warn);background:#fff8e5;padding:8px 12px;margin:12px 0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:8px 0}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;word-break:break-all}
table{border-collapse:collapse;width:100%;margin:6px 0 10px}th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}.r{text-align:right}.num{font-variant-numeric:tabular-nums}
table.small td,table.small th{font-size:12px}
.mono,code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
td.mark{font-size:16px;width:28px;text-align:center}tr.pass td.mark,tr.ok td:first-child{color:var(--ok)}tr.fail td.mark,tr.bad td:first-child{color:var(--bad)}tr.skipped td.mark{color:var(--muted)}
td.warn{color:var(--warn)}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:10px 12px;white-space:pre-wrap;word-break:break-all}
.rate strong{font-size:18px}
footer{margin-top:32px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:8px}
@page{size:A4;margin:14mm}
@media print{main{max-width:none;padding:0}body{font-size:11px}h2{break-after:avoid}table,pre,.verdict{break-inside:avoid}tr{break-inside:avoid}.verdict.ok,.verdict.bad,.verdict.self,.note,th,pre{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
`;

/** The report as one HTML document. */
export function renderAuditReport(input: ReportInput): string {
  const v = input.verdict;
  // VALID only against pinned trust: against the pack's own keys it shows self-consistency only
  const pinned = v.trust_source === 'pinned';
  const pack = input.packFile;
  const trustArg = input.trustFile ? ` --trust ${sh(input.trustFile)}` : ' --trust pinned.json';
  const invoice = input.invoiceFile;
  const commands = [
    `sha256sum ${sh(pack)}${input.packDigest ? `    # ${input.packDigest.slice('sha256:'.length)}` : ''}`,
    `meterproof evidence verify ${sh(pack)}${trustArg}`,
    ...(invoice ? [`meterproof reconcile ${sh(invoice)} --pack ${sh(pack)}${trustArg} --out discrepancies.ndjson`] : []),
    `meterproof report ${sh(pack)}${trustArg}${invoice ? ` --invoice ${sh(invoice)}` : ''} > report.html`,
  ];
  const title = v.scope ? (v.scope.kind === 'settlement' ? `settlement ${v.scope.settlement_id}` : v.scope.kind === 'window' ? `${v.scope.tenant_id} · ${v.scope.billing_window_id}` : `attestation ${v.scope.attestation_id.slice(0, 12)}…`) : 'unreadable pack';
  const s = v.settlement_totals;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Auditor's report — ${esc(title)}</title>
<style>${CSS}</style></head>
<body><main>
<h1>Auditor's report</h1>
<p class="sub">${esc(scopeLine(v))}</p>
<div class="verdict ${!v.valid ? 'bad' : pinned ? 'ok' : 'self'}"><span class="big">${!v.valid ? '✗ INVALID' : pinned ? '✓ VALID' : '✓ CONSISTENT WITH ITSELF'}</span><span>${
    v.valid
      ? `every check passed for ${v.bundles.total.toLocaleString('en-US')} attested ${v.bundles.total === 1 ? 'event' : 'events'} (profile ${esc(v.profile)})`
      : `first failure: <code>${esc(v.code ?? 'unknown')}</code> — ${v.bundles.invalid.toLocaleString('en-US')} of ${v.bundles.total.toLocaleString('en-US')} bundles invalid`
  }</span></div>
${
  v.trust_source === 'embedded'
    ? `<p class="note">Checked against the trust material <strong>embedded in the pack</strong>: this shows the pack is consistent with itself. Pin the service's JWKS and log verifier key obtained out of band (<code>${esc(v.pin_out_of_band.join(', '))}</code>) and re-run with <code>--trust</code> to trust it.</p>`
    : `<p class="note" style="border-color:var(--ok);background:#eaf6ed">Checked against <strong>pinned</strong> trust material: the pack's JWKS and log verifier key match the pinned ones.</p>`
}
<h2>The pack</h2>
<dl class="facts">
<dt>file</dt><dd><code>${esc(pack)}</code></dd>
${input.packDigest ? `<dt>SHA-256</dt><dd><code>${esc(input.packDigest)}</code></dd>` : ''}
<dt>scope</dt><dd>${esc(v.scope?.kind ?? '—')}</dd>
<dt>made at</dt><dd>${esc(v.created_at ?? '—')}</dd>
<dt>bundles</dt><dd>${v.bundles.total.toLocaleString('en-US')} (${v.bundles.valid.toLocaleString('en-US')} valid, ${v.bundles.invalid.toLocaleString('en-US')} invalid)</dd>
<dt>trust</dt><dd>${v.trust_source === 'pinned' ? 'pinned' : 'embedded in the pack (not pinned)'}</dd>
</dl>
<h2>Totals</h2>
${amountTable('Attested charges by currency', v.totals.by_currency, 'currency')}
${s ? `<h3>Settlement statement (signed)</h3><table><tbody><tr><td>total</td><td class="r">${money(s.total_micros, s.currency)}</td></tr><tr><td>platform fee</td><td class="r">${money(s.platform_fee_micros, s.currency)}</td></tr><tr><td>net</td><td class="r">${money(s.net_micros, s.currency)}</td></tr></tbody></table>` : ''}
<h2>Breakdowns</h2>
${amountTable('By tariff version', v.totals.by_tariff, 'tariff@version')}
${amountTable('By endpoint', v.totals.by_endpoint, 'endpoint')}
${amountTable('By outcome', v.totals.by_outcome, 'outcome')}
<h2>Checks</h2>
<table><thead><tr><th></th><th>check</th><th>result</th><th>code</th><th>detail</th></tr></thead><tbody>
${v.checks.map((c) => `<tr class="${c.status}"><td class="mark">${MARK[c.status]}</td><td>${esc(c.name)}</td><td>${esc(c.status)}</td><td class="mono">${esc(c.code ?? '')}</td><td>${esc(c.reason ?? '')}</td></tr>`).join('\n')}
</tbody></table>
${
  v.settlement
    ? `<h3>Settlement checks</h3><table><tbody>${v.settlement.checks.map((c) => `<tr class="${c.status}"><td class="mark">${MARK[c.status]}</td><td>${esc(c.name)}</td><td>${esc(c.status)}</td><td class="mono">${esc(c.code ?? '')}</td><td>${esc(c.message ?? '')}</td></tr>`).join('\n')}</tbody></table>`
    : ''
}
${
  v.bundles.failures.length
    ? `<h3>Invalid bundles${v.bundles.invalid > v.bundles.failures.length ? ` (first ${v.bundles.failures.length} of ${v.bundles.invalid})` : ''}</h3>
<table class="small"><thead><tr><th>#</th><th>statement digest</th><th>check</th><th>code</th><th>detail</th></tr></thead><tbody>
${v.bundles.failures.map((f) => `<tr class="fail"><td class="num">${f.index}</td><td class="mono">${esc(f.statement_digest ?? '—')}</td><td>${esc(f.check)}</td><td class="mono">${esc(f.code)}</td><td>${esc(f.reason)}</td></tr>`).join('\n')}
</tbody></table>`
    : ''
}
${input.reconciliation ? reconciliationSection(input.reconciliation, invoice) : ''}
<h2>Re-verify offline</h2>
<p>With the <code>meterproof</code> command (<code>npm install -g meterproof</code>), no server and no network; <code>pinned.json</code> holds the JWKS and log verifier key obtained out of band (a saved <code>GET /v1/trust</code>):</p>
<pre>${commands.map(esc).join('\n')}</pre>
<footer>Made ${esc((input.generatedAt ?? new Date()).toISOString())}${input.generator ? ` by ${esc(input.generator)}` : ''} · format ${esc(v.type)} (docs/protocol.md §6) · print this page for a PDF.</footer>
</main></body></html>
`;
}
