// Evidence packs over the real service and store (PostgreSQL with DATABASE_URL, PGlite otherwise):
// GET /v1/evidence for an attestation, a window and a settlement; verifyEvidencePack on them, with
// the embedded or pinned trust; tampered packs fail with their named code; the CLI's exit codes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../src/core/keys.ts';
import { formatVerifierKey } from '../src/core/note.ts';
import type { FullBundle } from '../src/core/schemas.ts';
import type { TrustMaterial } from '../src/core/trust.ts';
import { type EvidenceVerdict, verifyEvidencePack, zkVerifier } from '../src/verifier/index.ts';
import { provedBundles } from './support/proved-bundles.ts';
import { pilotEvent } from './support/fixtures.ts';
import { testService, type TestService } from './support/service.ts';

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
    const wrongJwks = await verify(windowPack, { jwks: otherJwks });
    expect(wrongJwks.code).toBe('PINNED_JWKS_MISMATCH');
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

describe('an attestation pack', () => {
  it('holds the one bundle and verifies, read line by line', async () => {
    const id = bundles[0]!.attestation.statement.charge_micros && (await s.call('GET', `/v1/attestations?tenant_id=tenant_acme&limit=1`)).body.items[0].id;
    const pack = await getPack(`attestation_id=${id}`);
    const v = await verifyEvidencePack(pack.split('\n'), { zk: zkVerifier, pinned: trust });
    expect(failed(v)).toEqual([]);
    expect(v).toMatchObject({ valid: true, scope: { kind: 'attestation', attestation_id: id }, bundles: { total: 1 } });
  });
});
