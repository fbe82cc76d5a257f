// The browser verifier page (docs/verifier-page.md): the open verifier (../index.ts, Groth16
// included) run on a bundle the user drops, chooses or pastes, against trust material the user
// gives or that the serving page embedded. No network: the page is one file, and its Content
// Security Policy refuses every connection (connect-src 'none').
import { z } from 'zod';
import { type EvidenceVerdict, type PinnedTrust, parseJsonStrict, verifyEvidencePack, verifyJson, zkVerifier, type VerificationReport } from '../index.ts';
import { firstProblem, isEvidencePack, packRows, packTotals, rows, summary, type Row } from './present.ts';

// zod would probe `new Function` (refused by the page's CSP, with a console error): no JIT here
z.config({ jitless: true });

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
};

const inputText = $<HTMLTextAreaElement>('input-text');
const inputFile = $<HTMLInputElement>('input-file');
const trustText = $<HTMLTextAreaElement>('trust-text');
const trustFile = $<HTMLInputElement>('trust-file');
const trustSource = $<HTMLParagraphElement>('trust-source');
const profile = $<HTMLSelectElement>('profile');
const form = $<HTMLFormElement>('verify-form');
const status = $<HTMLParagraphElement>('status');
const result = $<HTMLElement>('result');

/** Trust material the serving page put in (GET /verify of the service); null in the built file. */
function embeddedTrust(): { trust: unknown; source: string } | null {
  const el = document.getElementById('embedded-trust');
  if (!el?.textContent) return null;
  try {
    const v = JSON.parse(el.textContent) as { trust?: unknown; source?: string } | null;
    return v && v.trust ? { trust: v.trust, source: v.source ?? 'the serving service' } : null;
  } catch {
    return null;
  }
}

const embedded = embeddedTrust();
if (embedded) {
  trustText.value = JSON.stringify(embedded.trust, null, 2);
  trustSource.textContent = `Prefilled with the trust material of ${embedded.source}, embedded in this page when it was served. Replace it to verify against other trust material.`;
}

async function readInto(file: File | undefined, target: HTMLTextAreaElement): Promise<void> {
  if (!file) return;
  target.value = await file.text();
}

inputFile.addEventListener('change', () => void readInto(inputFile.files?.[0], inputText).then(() => form.requestSubmit()));
trustFile.addEventListener('change', () => void readInto(trustFile.files?.[0], trustText));

for (const [zone, target, submit] of [
  [$('input-zone'), inputText, true],
  [$('trust-zone'), trustText, false],
] as const) {
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    void readInto(e.dataTransfer?.files[0], target).then(() => {
      if (submit) form.requestSubmit();
    });
  });
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, attrs: Record<string, string> = {}): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function render(report: VerificationReport, bundle: unknown, note: string | null): void {
  result.replaceChildren();
  const problem = firstProblem(report);
  const verdict = el('h2', report.valid ? '✓ Valid: every required check passed' : '✗ Not valid', { id: 'verdict', tabindex: '-1', 'data-valid': String(report.valid) });
  result.append(verdict);
  if (problem) {
    result.append(el('p', `First problem: the ${problem.name} check${problem.code ? ` (${problem.code})` : ' was skipped but the profile requires it'}.`, { id: 'first-problem', 'data-check': problem.name, 'data-code': problem.code }));
  }
  if (note) result.append(el('p', note));
  result.append(el('p', `Profile ${report.profile}; ${report.redacted ? 'redacted bundle' : 'full bundle'}${report.statement_digest ? `; statement ${report.statement_digest}` : ''}.`));

  const s = summary(bundle);
  if (s.charge) {
    result.append(el('h3', 'The charge'));
    const dl = el('dl', undefined, { id: 'charge' });
    dl.append(el('dt', 'Charge'), el('dd', s.charge, { id: 'charge-amount' }));
    for (const [k, v] of s.facts) dl.append(el('dt', k), el('dd', v));
    result.append(dl);
    result.append(el('h3', 'What was hidden'));
    const ul = el('ul', undefined, { id: 'hidden' });
    if (s.hidden.length === 0) ul.append(el('li', 'Nothing: this is a full bundle (the event and tariff are in it, and the charge was recomputed from them).'));
    for (const h of s.hidden) ul.append(el('li', h));
    result.append(ul);
    if (s.hidden.length) result.append(el('p', 'The signature, the zero-knowledge proof and the log receipt still vouch for the charge without them.'));
  }

  result.append(checksTable(rows(report)));
  verdict.focus();
}

/** An evidence pack's verdict: the pack checks, the bundles' count and failures, the totals. */
function renderPack(v: EvidenceVerdict): void {
  result.replaceChildren();
  // valid only against pinned trust: against the pack's own keys it is consistent with itself
  const headline = !v.valid ? '✗ Not a valid evidence pack' : v.trust_source === 'pinned' ? '✓ Valid evidence pack: every check passed' : '✓ Consistent with itself: every check passed, but against the keys the pack carries (not pinned)';
  const verdict = el('h2', headline, { id: 'verdict', tabindex: '-1', 'data-valid': String(v.valid) });
  result.append(verdict);
  const failed = v.checks.find((c) => c.status === 'fail') ?? v.checks.find((c) => c.status !== 'pass');
  if (!v.valid && failed) {
    result.append(el('p', `First problem: the ${failed.name} check${v.code ? ` (${v.code})` : ''}.`, { id: 'first-problem', 'data-check': failed.name, 'data-code': v.code ?? '' }));
  }
  const scope = v.scope ? Object.entries(v.scope).map(([k, x]) => `${k} ${String(x)}`).join(', ') : 'unknown';
  result.append(el('p', `Scope: ${scope}; made ${v.created_at ?? '(unknown)'}; profile ${v.profile}.`));
  result.append(
    el(
      'p',
      v.trust_source === 'pinned'
        ? "Trust: the pack's signing keys and log key were checked against the trust material you gave (pinned)."
        : "Trust: none given, so the pack's own snapshot was used: this shows the pack is consistent, not that it comes from the service you trust. Give that service's trust material to pin it.",
      { id: 'trust-source-used', 'data-source': v.trust_source },
    ),
  );
  result.append(el('h3', 'The charges'));
  const dl = el('dl', undefined, { id: 'charge' });
  const totals = packTotals(v);
  dl.append(el('dt', 'Total'), el('dd', totals.join('; ') || 'none', { id: 'charge-amount' }));
  dl.append(el('dt', 'Bundles'), el('dd', `${v.bundles.total}: ${v.bundles.valid} valid, ${v.bundles.invalid} invalid`, { id: 'pack-bundles' }));
  if (v.settlement_totals) dl.append(el('dt', 'Settlement'), el('dd', `${v.settlement_totals.total_micros} micros total, ${v.settlement_totals.net_micros} net (${v.settlement_totals.currency})`));
  result.append(dl);
  if (v.bundles.failures.length) {
    result.append(el('h3', 'Bundles that failed'));
    const ul = el('ul', undefined, { id: 'bundle-failures' });
    for (const f of v.bundles.failures) ul.append(el('li', `Bundle ${f.index}: ${f.check} ✗ ${f.code} — ${f.reason}`));
    result.append(ul);
  }
  result.append(checksTable(packRows(v)));
  verdict.focus();
}

function checksTable(list: readonly Row[]): HTMLElement {
  const wrap = el('div');
  wrap.append(el('h3', 'Every check'));
  // explicit roles: the phone layout lays rows out as grids, which would drop a table's semantics
  const table = el('table', undefined, { id: 'checks', role: 'table' });
  table.append(el('caption', 'Each check with its result (✓ passed, ✗ failed, – skipped), code and reason'));
  const head = el('tr', undefined, { role: 'row' });
  for (const h of ['Result', 'Check', 'Code', 'What it means']) head.append(el('th', h, { scope: 'col', role: 'columnheader' }));
  const thead = el('thead', undefined, { role: 'rowgroup' });
  thead.append(head);
  table.append(thead);
  const body = el('tbody', undefined, { role: 'rowgroup' });
  for (const r of list) {
    const tr = el('tr', undefined, { 'data-check': r.name, 'data-status': r.status, 'data-code': r.code, class: r.status, role: 'row' });
    tr.append(el('td', `${r.mark} ${r.word}`, { role: 'cell' }), el('th', r.name, { scope: 'row', role: 'rowheader' }), el('td', r.code || '—', { role: 'cell' }));
    const what = el('td', undefined, { role: 'cell' });
    what.append(el('span', r.meaning));
    if (r.why) what.append(el('br'), el('strong', r.why));
    tr.append(what);
    body.append(tr);
  }
  table.append(body);
  const scroll = el('div', undefined, { class: 'table' });
  scroll.append(table);
  wrap.append(scroll);
  return wrap;
}

function showError(message: string): void {
  result.replaceChildren(el('h2', `✗ Cannot verify: ${message}`, { id: 'verdict', tabindex: '-1', 'data-valid': 'false' }));
  $('verdict').focus();
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  void run();
});

async function run(): Promise<void> {
  document.documentElement.dataset['state'] = 'verifying';
  result.replaceChildren();
  try {
    await verifyInput();
  } finally {
    document.documentElement.dataset['state'] = 'done';
  }
}

async function verifyInput(): Promise<void> {
  const text = inputText.value.trim();
  if (!text) return showError('give a bundle or an evidence pack (choose a file, drop one, or paste it).');
  if (isEvidencePack(text)) return verifyPack(text);
  let parsed: unknown;
  try {
    parsed = parseJsonStrict(text);
  } catch {
    parsed = undefined; // verifyJson reports INVALID_JSON / DUPLICATE_KEY as the schema check
  }
  const trust = trustText.value.trim();
  if (!trust) return showError('no trust material: paste the output of GET /v1/trust of the service you trust, or choose the file.');
  status.textContent = 'Verifying… (the zero-knowledge proof takes a moment)';
  try {
    const report = await verifyJson(text, trust, { profile: profile.value === 'standard' ? 'standard' : 'strict' });
    render(report, parsed, null);
  } catch (err) {
    showError(err instanceof Error ? err.message : String(err));
  } finally {
    status.textContent = 'Done.';
  }
}

document.documentElement.dataset['state'] = 'ready';

/** An evidence pack, pinned to the trust material in the trust field when there is some. */
async function verifyPack(text: string): Promise<void> {
  const pinnedText = trustText.value.trim();
  let pinned: PinnedTrust | undefined;
  if (pinnedText) {
    try {
      pinned = parseJsonStrict(pinnedText) as PinnedTrust;
    } catch (e) {
      return showError(`the trust material is not JSON (${e instanceof Error ? e.message : String(e)}).`);
    }
  }
  status.textContent = 'Verifying the evidence pack… (every bundle, proofs included)';
  try {
    const verdict = await verifyEvidencePack(text, { zk: zkVerifier, profile: profile.value === 'standard' ? 'standard' : 'strict', ...(pinned ? { pinned } : {}) });
    renderPack(verdict);
  } catch (err) {
    showError(err instanceof Error ? err.message : String(err));
  } finally {
    status.textContent = 'Done.';
  }
}
