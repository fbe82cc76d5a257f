// The browser verifier page in a real browser: Debian's Chromium (/usr/bin/chromium, installed by
// .ci/run) driven by playwright-core. One build of the page and one browser for the file. The
// page verifies real bundles of an in-process service (Groth16 proofs by the production prover,
// log receipts): valid, redacted, and tampered three ways, naming the failing check, and an
// evidence pack of their window (pinned, under a wrong log key, with a tampered charge); from file://
// with the network off and from GET /verify of a running server with its trust embedded; every
// request the page makes is recorded, and none but the page itself may leave it. Its verdicts
// equal the Node verifier's, check by check.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateEd25519 } from '../src/core/ed25519.ts';
import { formatVerifierKey, parseVerifierKey } from '../src/core/note.ts';
import type { FullBundle } from '../src/core/schemas.ts';
import type { TrustMaterial } from '../src/core/trust.ts';
import { EVIDENCE_CHECKS, redact, verifyEvidencePack, verifyJson, zkVerifier } from '../src/verifier/index.ts';
import { buildVerifierPage } from '../scripts/build-verifier.mjs';
import { provedBundles } from './support/proved-bundles.ts';
import { testService, type TestService } from './support/service.ts';

const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
/** Every page is opened as on a phone. */
const PHONE = { width: 390, height: 844 };

let s: TestService;
let server: ServerType;
let origin: string;
let browser: Browser;
let bundles: FullBundle[];
let trust: TrustMaterial;
/** An evidence pack (GET /v1/evidence) of the window of both bundles. */
let pack: string;
let dir: string;
let pagePath: string;

beforeAll(async () => {
  // the page under test is built from the present sources, into a directory of this file's own
  // (npm pack in test/package.test.ts rebuilds dist/ meanwhile); GET /verify serves that build
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterproof-page-'));
  pagePath = await buildVerifierPage(path.join(dir, 'meterproof-verifier.html'));
  s = await testService({ verifierPagePath: pagePath });
  ({ bundles, trust } = await provedBundles(s, 2, { workers: 1, tag: 'page' }));
  const r = await s.call('GET', '/v1/evidence?tenant_id=tenant_acme&window=2026-05');
  if (r.status !== 200 || typeof r.body !== 'string') throw new Error(`evidence pack: ${r.status} ${String(r.body).slice(0, 300)}`);
  pack = r.body;
  server = serve({ fetch: s.app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM });
}, 600_000);

afterAll(async () => {
  expect(pageErrors).toEqual([]);
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await s?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Shown {
  valid: boolean;
  first: { check: string | null; code: string | null } | null;
  checks: { name: string; status: string; code: string; text: string }[];
  charge: string | null;
  hidden: string[];
}

/** A fresh context whose every request is recorded; all but `allow` are aborted. */
/** Errors the pages raised or logged (a Content Security Policy refusal is logged): none expected. */
const pageErrors: string[] = [];

async function open(url: string, allow: string): Promise<{ page: Page; context: BrowserContext; requests: string[] }> {
  const context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
  const requests: string[] = [];
  context.on('request', (r) => requests.push(r.url()));
  await context.route('**/*', (route) => (route.request().url() === allow ? route.continue() : route.abort('blockedbyclient')));
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${url}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`${url}: console: ${m.text()}`);
  });
  await page.goto(url);
  await page.waitForSelector('html[data-state="ready"]');
  return { page, context, requests };
}

/** Verify in the page: the bundle by the file input or pasted, the trust pasted (unless kept). */
async function verifyIn(page: Page, input: { file?: string; text?: string; trust?: string }): Promise<Shown> {
  if (input.trust !== undefined) await page.getByLabel('Or paste it', { exact: true }).nth(1).fill(input.trust);
  // not "done" until this verification ends (a chosen file is read before it is verified)
  await page.evaluate(() => (document.documentElement.dataset['state'] = 'pending'));
  if (input.file) {
    await page.getByLabel('Choose a file (or drop it here)').setInputFiles(input.file); // verifies on selection
  } else {
    await page.getByLabel('Or paste it', { exact: true }).first().fill(input.text ?? '');
    await page.getByRole('button', { name: 'Verify' }).click();
  }
  await page.waitForSelector('html[data-state="done"]', { timeout: 120_000 });
  return shown(page);
}

function shown(page: Page): Promise<Shown> {
  return page.evaluate(() => {
    const verdict = document.getElementById('verdict')!;
    const first = document.getElementById('first-problem');
    return {
      valid: verdict.dataset['valid'] === 'true',
      first: first ? { check: first.dataset['check'] ?? null, code: first.dataset['code'] ?? null } : null,
      checks: [...document.querySelectorAll<HTMLTableRowElement>('#checks tbody tr')].map((tr) => ({
        name: tr.dataset['check']!,
        status: tr.dataset['status']!,
        code: tr.dataset['code']!,
        text: tr.innerText,
      })),
      charge: document.getElementById('charge-amount')?.textContent ?? null,
      hidden: [...document.querySelectorAll('#hidden li')].map((li) => li.textContent ?? ''),
    };
  });
}

const json = (v: unknown) => JSON.stringify(v);
const write = (name: string, v: unknown) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, json(v));
  return f;
};

/** The Node verifier's report for the same input: the page must show the same checks. */
async function expectSameAsNode(got: Shown, bundle: unknown, trustMaterial: unknown): Promise<void> {
  const report = await verifyJson(json(bundle), json(trustMaterial));
  expect(got.valid).toBe(report.valid);
  expect(got.checks.map(({ name, status, code }) => ({ name, status, code }))).toEqual(report.checks.map((c) => ({ name: c.name, status: c.status, code: c.code ?? '' })));
}

function tamperedCharge(b: FullBundle): FullBundle {
  const t = structuredClone(b);
  t.attestation.statement.charge_micros = String(BigInt(t.attestation.statement.charge_micros) + 1n);
  return t;
}

function swappedProof(b: FullBundle, other: FullBundle): FullBundle {
  const t = structuredClone(b);
  t.attestation.billing_proof!.proof = structuredClone(other.attestation.billing_proof!.proof);
  return t;
}

function wrongLogKey(t: TrustMaterial): TrustMaterial {
  const name = parseVerifierKey(t.log!.verifier_key).name;
  return { ...t, log: { ...t.log!, verifier_key: formatVerifierKey(name, generateEd25519().publicKey) } };
}

describe('the built page, from file:// with the network off', () => {
  let page: Page;
  let context: BrowserContext;
  let requests: string[];
  let url: string;

  beforeAll(async () => {
    url = pathToFileURL(pagePath).href;
    ({ page, context, requests } = await open(url, url));
    await context.setOffline(true);
  });
  afterAll(async () => context?.close());

  it('has no embedded trust: the trust field starts empty and says where to get it', async () => {
    expect(await page.getByLabel('Or paste it', { exact: true }).nth(1).inputValue()).toBe('');
    const r = await verifyIn(page, { text: json(bundles[0]) });
    expect(r.valid).toBe(false);
    expect(await page.locator('#verdict').innerText()).toContain('no trust material');
  });

  it('verifies a valid bundle chosen as a file: every check with its mark and word, the charge, nothing hidden', async () => {
    const r = await verifyIn(page, { trust: json(trust), file: write('bundle.json', bundles[0]) });
    expect(r.valid).toBe(true);
    expect(r.first).toBeNull();
    expect(r.checks.find((c) => c.name === 'proof')).toMatchObject({ status: 'pass' });
    expect(r.checks.find((c) => c.name === 'proof')!.text).toMatch(/^✓ passed/);
    expect(r.checks.find((c) => c.name === 'consistency')!.text).toMatch(/^– skipped/);
    expect(r.charge).toContain(`(${bundles[0]!.attestation.statement.charge_micros} micros)`);
    expect(r.hidden[0]).toMatch(/^Nothing/);
    await expectSameAsNode(r, bundles[0], trust);
  });

  it('verifies a redacted bundle (pasted) and says what was hidden', async () => {
    const red = redact(bundles[1]);
    const r = await verifyIn(page, { text: json(red) });
    expect(r.valid).toBe(true);
    expect(r.checks.find((c) => c.name === 'charge')!.text).toMatch(/^– skipped/);
    expect(r.checks.find((c) => c.name === 'proof')!.status).toBe('pass');
    expect(r.hidden.join('\n')).toMatch(/meter event[\s\S]*tariff snapshot[\s\S]*salts/);
    await expectSameAsNode(r, red, trust);
  });

  it('names the failing check of a tampered charge', async () => {
    const bad = tamperedCharge(bundles[0]!);
    const r = await verifyIn(page, { text: json(bad) });
    expect(r.valid).toBe(false);
    expect(r.first).toEqual({ check: 'signature', code: 'SIGNATURE_INVALID' });
    expect(r.checks.find((c) => c.name === 'signature')!.text).toMatch(/^✗ failed[\s\S]*SIGNATURE_INVALID/);
    expect(r.checks.find((c) => c.name === 'proof')).toMatchObject({ status: 'fail', code: 'PROOF_INVALID' });
    await expectSameAsNode(r, bad, trust);
  });

  it("names the failing check of another bundle's proof swapped in", async () => {
    const bad = swappedProof(bundles[0]!, bundles[1]!);
    const r = await verifyIn(page, { text: json(bad) });
    expect(r.valid).toBe(false);
    expect(r.first).toEqual({ check: 'proof', code: 'PROOF_INVALID' });
    expect(r.checks.find((c) => c.name === 'signature')!.status).toBe('pass');
    await expectSameAsNode(r, bad, trust);
  });

  it('names the failing check under a wrong log key', async () => {
    const wrong = wrongLogKey(trust);
    const r = await verifyIn(page, { text: json(bundles[0]), trust: json(wrong) });
    expect(r.valid).toBe(false);
    expect(r.first).toEqual({ check: 'checkpoint', code: 'CHECKPOINT_INVALID' });
    await expectSameAsNode(r, bundles[0], wrong);
  });

  it('verifies a file dropped on the bundle box at once', async () => {
    await page.evaluate((text) => {
      document.documentElement.dataset['state'] = 'dropping'; // not "done" until the drop's verification ends
      document.getElementById('result')!.replaceChildren();
      const data = new DataTransfer();
      data.items.add(new File([text], 'dropped.json', { type: 'application/json' }));
      document.getElementById('input-zone')!.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
    }, json(tamperedCharge(bundles[1]!)));
    await page.waitForSelector('html[data-state="done"]', { timeout: 120_000 });
    expect((await shown(page)).first).toEqual({ check: 'signature', code: 'SIGNATURE_INVALID' });
  });

  it('verifies an evidence pack pinned to the trust material: every pack check, the totals', async () => {
    const r = await verifyIn(page, { text: pack, trust: json(trust) });
    expect(r.valid).toBe(true);
    expect(r.checks.map((c) => c.name)).toEqual([...EVIDENCE_CHECKS]);
    expect(await page.locator('#pack-bundles').innerText()).toBe('2: 2 valid, 0 invalid');
    expect(await page.locator('#trust-source-used').getAttribute('data-source')).toBe('pinned');
    const node = await verifyEvidencePack(pack, { zk: zkVerifier, pinned: trust });
    expect(r.valid).toBe(node.valid);
    expect(r.checks.map(({ name, status, code }) => ({ name, status, code }))).toEqual(node.checks.map((c) => ({ name: c.name, status: c.status, code: c.code ?? '' })));
    const total = BigInt(bundles[0]!.attestation.statement.charge_micros) + BigInt(bundles[1]!.attestation.statement.charge_micros);
    expect(r.charge).toContain(`over 2 events (${total} micros)`);
  });

  it('calls a pack verified without trust material consistent with itself, never valid', async () => {
    await page.getByLabel('Or paste it', { exact: true }).nth(1).fill('');
    const r = await verifyIn(page, { text: pack });
    expect(r.valid).toBe(true); // every check passed…
    expect(await page.locator('#trust-source-used').getAttribute('data-source')).toBe('embedded');
    const headline = await page.locator('#verdict').innerText();
    expect(headline).toContain('Consistent with itself'); // …against the keys the pack carries
    expect(headline).not.toMatch(/valid/i);
  });

  it('names the failing check of an evidence pack under a wrong log key, and of a pack with a tampered charge', async () => {
    const r = await verifyIn(page, { text: pack, trust: json(wrongLogKey(trust)) });
    expect(r.valid).toBe(false);
    expect(r.first).toEqual({ check: 'pinned_trust', code: 'PINNED_LOG_KEY_MISMATCH' });
    const micros = bundles[0]!.attestation.statement.charge_micros;
    const tampered = pack.replace(`"charge_micros":"${micros}"`, `"charge_micros":"${BigInt(micros) + 1n}"`);
    expect(tampered).not.toBe(pack);
    const t = await verifyIn(page, { text: tampered, trust: json(trust) });
    expect(t.valid).toBe(false);
    expect(t.checks.find((c) => c.name === 'bundles')).toMatchObject({ status: 'fail' });
    expect(await page.locator('#bundle-failures li').first().innerText()).toMatch(/signature ✗ SIGNATURE_INVALID/);
  });

  it('made no request but loading itself', () => {
    expect(requests).toEqual([url]);
  });

  it('is keyboard-operable and fits a phone screen', async () => {
    await page.getByLabel('Or paste it', { exact: true }).nth(1).fill(json(trust));
    await page.reload();
    await page.waitForSelector('html[data-state="ready"]');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('input-file');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('input-text');
    await page.keyboard.insertText(json(bundles[0]));
    for (const id of ['trust-file', 'trust-text']) {
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe(id);
    }
    await page.keyboard.insertText(json(trust));
    await page.keyboard.press('Tab'); // the profile
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('verify');
    await page.keyboard.press('Enter');
    await page.waitForSelector('html[data-state="done"]', { timeout: 120_000 });
    if (process.env['PAGE_SCREENSHOT']) await page.screenshot({ path: process.env['PAGE_SCREENSHOT'], fullPage: true });
    expect((await shown(page)).valid).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('verdict'); // read out first
    expect(await page.evaluate(() => [window.innerWidth, document.documentElement.scrollWidth])).toEqual([PHONE.width, PHONE.width]); // nothing wider than the phone
    expect(await page.locator('meta[name="viewport"]').getAttribute('content')).toContain('width=device-width');
  });
});

describe('GET /verify of a running server', () => {
  it("prefills the server's trust material (embedded, not fetched) and verifies offline", async () => {
    const url = `${origin}/verify`;
    const { page, context, requests } = await open(url, url);
    try {
      await context.setOffline(true);
      const embedded = JSON.parse(await page.getByLabel('Or paste it', { exact: true }).nth(1).inputValue());
      expect(embedded).toEqual(trust);
      const r = await verifyIn(page, { text: json(bundles[1]) });
      expect(r.valid).toBe(true);
      const bad = await verifyIn(page, { text: json(tamperedCharge(bundles[1]!)) });
      expect(bad.first).toEqual({ check: 'signature', code: 'SIGNATURE_INVALID' });
      expect(requests).toEqual([url]);
    } finally {
      await context.close();
    }
  });
});

describe('GET /docs of a running server', () => {
  it('renders every operation of /openapi.json with Swagger UI, loading nothing from another host', async () => {
    const context = await browser.newContext({ viewport: PHONE });
    const requests: string[] = [];
    context.on('request', (r) => requests.push(r.url()));
    await context.route('**/*', (route) => (route.request().url().startsWith(`${origin}/`) ? route.continue() : route.abort('blockedbyclient')));
    try {
      const page = await context.newPage();
      await page.goto(`${origin}/docs`);
      await page.waitForSelector('.opblock-summary', { timeout: 60_000 });
      expect(await page.locator('.opblock-summary').count()).toBeGreaterThanOrEqual(30);
      expect(requests.filter((u) => !u.startsWith(`${origin}/`))).toEqual([]);
      expect(requests).toContain(`${origin}/openapi.json`);
    } finally {
      await context.close();
    }
  });
});
