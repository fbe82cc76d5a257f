// Bulk verification: verifyBatch (one thread) and the worker pool give every bundle the report
// that verifying it alone gives; a batch with bad proofs names exactly the bundles that fail.
// Real proved bundles (bn128-poseidon8-v2 from the service with receipts, v1 from the prover).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicJwk } from '../src/core/keys.ts';
import { publicSignalsV2 } from '../src/core/binding-v2.ts';
import type { FullBundle, StatementV2, VerificationReport } from '../src/core/schemas.ts';
import type { TrustMaterial } from '../src/core/trust.ts';
import { MAX_VERIFY_BATCH } from '../src/http/app.ts';
import { createProver } from '../src/prover/index.ts';
import { createVerifyPool, verify, verifyBatch, type VerifyPool } from '../src/verifier/index.ts';
import { pairingCheck, type PairingItem } from '../src/verifier/pairing.ts';
import { g1, g2 } from '../src/verifier/bn254.ts';
import { PINNED_VKEYS } from '../src/verifier/vkeys.ts';
import { runAsync } from './support/cli.ts';
import { G1, g1Json, g1Of, g2Json, nonSubgroupG2 } from './support/bn254.ts';
import { keyA, provedPilotBundle } from './support/fixtures.ts';
import { provedBundles } from './support/proved-bundles.ts';
import { testService, type TestService } from './support/service.ts';

let s: TestService;
let bundles: FullBundle[];
let trust: TrustMaterial;
let v1: FullBundle;
let pool: VerifyPool;

beforeAll(async () => {
  s = await testService();
  ({ bundles, trust } = await provedBundles(s, 10, { workers: 2 }));
  const prover = await createProver({ workers: 0 });
  try {
    v1 = await provedPilotBundle(prover);
  } finally {
    await prover.close();
  }
  pool = createVerifyPool({ threads: 2, maxChunk: 4 });
}, 300_000);

afterAll(async () => {
  await pool?.close();
  await s?.close();
});

const proofOf = (b: FullBundle) => b.attestation.billing_proof!.proof;
/** index → "valid" or the failing checks as name:code */
const verdicts = (reports: VerificationReport[]) =>
  reports.map((r) => (r.valid ? 'valid' : r.checks.filter((c) => c.status === 'fail').map((c) => `${c.name}:${c.code}`).join(',')));
/** Each bundle verified alone (verify(), the single path): the reports the batch must give. */
const alone = (items: unknown[], t: unknown, profile: 'strict' | 'standard' = 'strict') => Promise.all(items.map((b) => verify(b, t, { profile })));

describe('bulk verification gives each bundle the report of verifying it alone', () => {
  it('a batch of valid bundles: all valid, on one thread and on the pool', async () => {
    const expected = await alone(bundles, trust);
    expect(expected.every((r) => r.valid)).toBe(true);
    expect(await verifyBatch(bundles.map((bundle) => ({ bundle })), trust)).toEqual(expected);
    expect(await pool.verifyMany(bundles.map((bundle) => ({ bundle })), trust)).toEqual(expected);
    // the same as JSON text (parsed strictly, as verifyJson does)
    expect(await pool.verifyMany(bundles.map((b) => ({ text: JSON.stringify(b) })), trust)).toEqual(expected);
  });

  it('one tampered proof among many: exactly that bundle fails, with PROOF_INVALID from the pairing check', async () => {
    const batch = structuredClone(bundles);
    // C of another proof: a valid curve point, so only the pairing equation can catch it
    proofOf(batch[6]!).pi_c = proofOf(bundles[2]!).pi_c;
    const got = await pool.verifyMany(batch.map((bundle) => ({ bundle })), trust);
    expect(verdicts(got)).toEqual(batch.map((_, i) => (i === 6 ? 'proof:PROOF_INVALID' : 'valid')));
    expect(got[6]!.checks.find((c) => c.name === 'proof')?.reason).toBe('the Groth16 pairing check fails for these public signals');
    expect(got).toEqual(await alone(batch, trust));
  });

  it('proofs swapped between two bundles: both fail, the others stay valid', async () => {
    const batch = structuredClone(bundles);
    [batch[1]!.attestation.billing_proof, batch[8]!.attestation.billing_proof] = [batch[8]!.attestation.billing_proof, batch[1]!.attestation.billing_proof];
    const got = await verifyBatch(batch.map((bundle) => ({ bundle })), trust);
    expect(verdicts(got)).toEqual(batch.map((_, i) => (i === 1 || i === 8 ? 'proof:PROOF_INVALID' : 'valid')));
    expect(got).toEqual(await alone(batch, trust));
  });

  it('a point off the curve or outside the subgroup is refused for its own bundle (PROOF_MALFORMED) before any batching', async () => {
    const batch = structuredClone(bundles);
    const a = proofOf(batch[0]!).pi_a;
    a[1] = (BigInt(a[1]!) + 1n).toString(); // (x, y + 1) is not on y² = x³ + 3
    proofOf(batch[4]!).pi_b = g2Json(nonSubgroupG2('verify-batch'));
    const got = await pool.verifyMany(batch.map((bundle) => ({ bundle })), trust);
    expect(verdicts(got)).toEqual(batch.map((_, i) => (i === 0 || i === 4 ? 'proof:PROOF_MALFORMED' : 'valid')));
    expect(got[0]!.checks.find((c) => c.name === 'proof')?.reason).toBe('pi_a is not on the curve');
    expect(got[4]!.checks.find((c) => c.name === 'proof')?.reason).toBe('pi_b is not in the prime-order subgroup');
    expect(got).toEqual(await alone(batch, trust));
  });

  it('mixed bindings (v1 and v2 proofs, two verification keys) in one batch; a bad v1 proof among them is named', async () => {
    // trust that covers both: the service's, plus the key that signed the v1 proof statement
    const mixedTrust: TrustMaterial = { ...trust, jwks: { keys: [...trust.jwks.keys, publicJwk(keyA, '2026-01-01T00:00:00Z')] } };
    const batch = [bundles[0]!, v1, bundles[1]!, structuredClone(v1), bundles[2]!];
    const expected = await alone(batch, mixedTrust, 'standard');
    expect(expected.every((r) => r.valid)).toBe(true); // standard: the v1 bundle has no receipt
    expect(await pool.verifyMany(batch.map((bundle) => ({ bundle })), mixedTrust, { profile: 'standard' })).toEqual(expected);
    proofOf(batch[3] as FullBundle).pi_a = proofOf(bundles[3]!).pi_a; // a v2 proof's A in a v1 proof
    const got = await verifyBatch(batch.map((bundle) => ({ bundle })), mixedTrust, { profile: 'standard' });
    expect(verdicts(got)).toEqual(['valid', 'valid', 'valid', 'proof:PROOF_INVALID', 'valid']);
    expect(got).toEqual(await alone(batch, mixedTrust, 'standard'));
  });

  it('two forged proofs whose errors cancel in an unweighted sum are caught: the batch scalars are random', async () => {
    const key = PINNED_VKEYS['bn128-poseidon8-v2']!.key as Record<string, unknown>;
    const [p, q] = [bundles[0]!, bundles[1]!];
    const signals = (b: FullBundle) => {
      const st = b.attestation.statement as StatementV2;
      const published = trust.tariffs!.find((t) => t.binding === 'bn128-poseidon8-v2' && t.tariff_id === st.tariff_id && t.tariff_version === st.tariff_version)!;
      return publicSignalsV2(st, BigInt(published.tariff_commitment));
    };
    const shift = G1.BASE.multiply(123456789n);
    const item = async (b: FullBundle, c: string[]): Promise<PairingItem> => ({
      key: { alpha: g1(key['vk_alpha_1'], 'α'), beta: await g2(key['vk_beta_2'], 'β'), gamma: await g2(key['vk_gamma_2'], 'γ'), delta: await g2(key['vk_delta_2'], 'δ'), ic: (key['IC'] as unknown[]).map((x) => g1(x, 'IC')) },
      signals: signals(b),
      a: g1(proofOf(b).pi_a, 'a'),
      b: await g2(proofOf(b).pi_b, 'b'),
      c: g1(c, 'c'),
    });
    const good = [await item(p, proofOf(p).pi_c), await item(q, proofOf(q).pi_c)];
    expect(await pairingCheck(good)).toBe(true);
    // C + S in one proof and C − S in the other: e(S, δ)·e(−S, δ) = 1, so with equal weights the
    // product of the two equations would still be 1
    const forged = [await item(p, g1Json(g1Of(proofOf(p).pi_c).add(shift))), await item(q, g1Json(g1Of(proofOf(q).pi_c).subtract(shift)))];
    expect(await pairingCheck([forged[0]!])).toBe(false);
    expect(await pairingCheck([forged[1]!])).toBe(false);
    for (let i = 0; i < 5; i++) expect(await pairingCheck(forged)).toBe(false);
  });
});

describe('POST /v1/verify/batch', () => {
  it('answers each bundle in order with its index, as an array or {bundles}', async () => {
    const batch = structuredClone(bundles.slice(0, 5));
    proofOf(batch[3]!).pi_c = proofOf(bundles[0]!).pi_c;
    const single = await Promise.all(batch.map(async (b) => (await s.call('POST', '/v1/verify', { token: null, body: b })).body));
    for (const body of [batch, { bundles: batch }]) {
      const r = await s.call('POST', '/v1/verify/batch', { token: null, body });
      expect(r.status).toBe(200);
      expect(r.body.summary).toEqual({ total: 5, valid: 4, invalid: 1 });
      expect(r.body.results).toEqual(single.map((rep, index) => ({ index, ...rep })));
      expect(r.body.results[3].checks.find((c: { name: string }) => c.name === 'proof')).toMatchObject({ status: 'fail', code: 'PROOF_INVALID' });
    }
    const standard = await s.call('POST', '/v1/verify/batch?profile=standard', { token: null, body: [bundles[0]] });
    expect(standard.body.results[0]).toMatchObject({ index: 0, valid: true, profile: 'standard' });
  });

  it('refuses an empty batch, an oversize batch and a body that is not a list of bundles (problem+json)', async () => {
    const cases: [unknown, number, string][] = [
      [[], 400, 'BATCH_SIZE'],
      [{ bundles: [] }, 400, 'BATCH_SIZE'],
      [Array.from({ length: MAX_VERIFY_BATCH + 1 }, () => ({})), 400, 'BATCH_SIZE'],
      [{ bundles: bundles.slice(0, 1), extra: 1 }, 400, 'BAD_REQUEST'],
      [bundles[0], 400, 'BAD_REQUEST'],
      ['x', 400, 'BAD_REQUEST'],
    ];
    for (const [body, status, code] of cases) {
      const r = await s.call('POST', '/v1/verify/batch', { token: null, body });
      expect(r.status, code).toBe(status);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      expect(r.body.code).toBe(code);
    }
    const dup = await s.call('POST', '/v1/verify/batch', { token: null, raw: '[{"a":1,"a":2}]' });
    expect(dup.body.code).toBe('DUPLICATE_KEY');
    expect((await s.call('POST', '/v1/verify/batch?profile=lax', { token: null, body: bundles.slice(0, 1) })).body.code).toBe('INVALID_QUERY');
  });

  it('an item that is not a bundle fails its own schema check; the others are verified', async () => {
    const r = await s.call('POST', '/v1/verify/batch', { token: null, body: [bundles[0], { not: 'a bundle' }, bundles[1]] });
    expect(r.status).toBe(200);
    expect(r.body.results.map((x: VerificationReport) => x.valid)).toEqual([true, false, true]);
    expect(r.body.results[1].checks[0]).toMatchObject({ name: 'schema', status: 'fail', code: 'SCHEMA_INVALID' });
  });
});

describe('meterproof verify with many files', { timeout: 240_000 }, () => {
  const run = runAsync;
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-vbatch-'));
    fs.writeFileSync(path.join(dir, 'trust.json'), JSON.stringify(trust));
    bundles.slice(0, 6).forEach((b, i) => fs.writeFileSync(path.join(dir, `b${i}.json`), JSON.stringify(b)));
    const bad = structuredClone(bundles[4]!);
    proofOf(bad).pi_c = proofOf(bundles[5]!).pi_c;
    fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify(bad));
    fs.writeFileSync(path.join(dir, 'dup.json'), JSON.stringify(bundles[0]).replace('{', '{"receipt":null,'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const files = (n: number) => Array.from({ length: n }, (_, i) => `b${i}.json`);

  it('all valid: exit 0, one line per file; --json gives each report with its file', async () => {
    // on two worker threads (by default, as few bundles are verified on the calling thread)
    const r = await run(['verify', ...files(6), '--trust', 'trust.json', '--threads', '2'], dir);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([...files(6).map((f) => `${f}: VALID (strict)`), '6 of 6 bundles VALID']);
    const j = await run(['verify', ...files(3), '--trust', 'trust.json', '--json'], dir);
    expect(j.status).toBe(0);
    const reports = JSON.parse(j.stdout) as (VerificationReport & { index: number; file: string })[];
    expect(reports.map((x) => [x.index, x.file, x.valid])).toEqual(files(3).map((f, i) => [i, f, true]));
    expect(reports.map(({ index: _i, file: _f, ...rep }) => rep)).toEqual(await alone(bundles.slice(0, 3), trust));
  });

  it('one bad proof among many files: exit 1, that file named with PROOF_INVALID', async () => {
    const r = await run(['verify', 'b0.json', 'b1.json', 'bad.json', 'b2.json', '--trust', 'trust.json'], dir);
    expect(r.status).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l.includes('INVALID'))).toEqual([expect.stringMatching(/^bad\.json: INVALID \(strict\): proof PROOF_INVALID — the Groth16 pairing check fails/)]);
    expect(lines.at(-1)).toBe('3 of 4 bundles VALID');
  });

  it('an unusable file makes the exit 2; a missing file stops the run with one line', async () => {
    const r = await run(['verify', 'b0.json', 'dup.json', '--trust', 'trust.json'], dir);
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/^dup\.json: INVALID \(strict\): schema DUPLICATE_KEY/m);
    expect(r.stderr.trim()).toBe('unusable bundle(s): dup.json');
    const missing = await run(['verify', 'b0.json', 'nope.json', '--trust', 'trust.json'], dir);
    expect(missing.status).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stdout).toBe('');
    const withProof = await run(['verify', 'b0.json', 'b1.json', '--trust', 'trust.json', '--consistency-proof', 'x.json'], dir);
    expect(withProof.status).toBe(2);
  });
});
