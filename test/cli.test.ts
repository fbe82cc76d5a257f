import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signObject } from '../src/core/keys.ts';
import { REVOCATIONS_TYPE } from '../src/core/trust.ts';
import { BIN, runAsync } from './support/cli.ts';
import { keyA, pilotBundle, pilotEvent, pilotTariff, trustFor } from './support/fixtures.ts';

const run = (args: string[], cwd: string) => spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, DATA_DIR: path.join(cwd, 'data') } });

describe('meterproof CLI', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-cli-'));
    fs.writeFileSync(path.join(dir, 'event.json'), JSON.stringify(pilotEvent));
    fs.writeFileSync(path.join(dir, 'tariff.json'), JSON.stringify(pilotTariff));
  });
  // the directory holds the private keys the tests generate: leave nothing behind
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keys generate writes a 0600 private key and prints only the public JWK', () => {
    const r = run(['keys', 'generate', '--out', 'k.json'], dir);
    expect(r.status).toBe(0);
    expect(fs.statSync(path.join(dir, 'k.json')).mode & 0o777).toBe(0o600);
    const pub = JSON.parse(r.stdout);
    expect(pub).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
    expect(pub.d).toBeUndefined();
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'k.json'), 'utf8')).kid).toBe(pub.kid);
    // never overwrites
    expect(run(['keys', 'generate', '--out', 'k.json'], dir).status).toBe(2);
  });

  it('attest --offline → verify: exit 0 valid, 1 tampered, 2 unusable; --json prints the report', () => {
    const a = run(['attest', '--offline', '--event', 'event.json', '--tariff', 'tariff.json', '--key', 'k.json'], dir);
    expect(a.status, a.stderr).toBe(0);
    const bundle = JSON.parse(a.stdout);
    expect(bundle.billing.expected_charge_micros).toBe('221040');
    fs.writeFileSync(path.join(dir, 'bundle.json'), a.stdout);
    const t = run(['trust', '--key', 'k.json'], dir);
    expect(t.status).toBe(0);
    fs.writeFileSync(path.join(dir, 'trust.json'), t.stdout);

    const ok = run(['verify', 'bundle.json', '--trust', 'trust.json', '--profile', 'standard'], dir);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/✓ signature/);
    expect(ok.stdout).toMatch(/^VALID/m);

    const strict = run(['verify', 'bundle.json', '--trust', 'trust.json'], dir);
    expect(strict.status).toBe(1); // proof and receipt are required under strict

    const bad = structuredClone(bundle);
    bad.meter_event.usage_units = '1843';
    fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify(bad));
    const r1 = run(['verify', 'bad.json', '--trust', 'trust.json', '--profile', 'standard', '--json'], dir);
    expect(r1.status).toBe(1);
    const report = JSON.parse(r1.stdout);
    expect(report.valid).toBe(false);
    expect(report.checks.find((c: { name: string }) => c.name === 'digests')).toMatchObject({ status: 'fail', code: 'DIGEST_MISMATCH' });

    fs.writeFileSync(path.join(dir, 'garbage.json'), '{not json');
    for (const args of [
      ['verify', 'missing.json', '--trust', 'trust.json'],
      ['verify', 'garbage.json', '--trust', 'trust.json'],
      ['verify', 'event.json', '--trust', 'trust.json'],
      ['verify', 'bundle.json', '--trust', 'event.json'],
      ['verify', 'bundle.json'],
      ['verify', 'bundle.json', '--trust', 'trust.json', '--bogus'],
    ]) {
      const r = run(args, dir);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^(meterproof verify: |unusable bundle: )/);
      expect(r.stdout).not.toMatch(/^VALID/m);
    }
  });

  it('verify refuses a bundle or trust file with a duplicated key, or bytes that are not UTF-8 (exit 2, one line, never VALID)', () => {
    const text = fs.readFileSync(path.join(dir, 'bundle.json'), 'utf8');
    const units = JSON.parse(text).meter_event.usage_units as string;
    // JSON.parse keeps the last "usage_units" (the signed one): the bundle would verify
    fs.writeFileSync(path.join(dir, 'dup.json'), text.replace(`"usage_units": "${units}"`, `"usage_units": "1", "usage_units": "${units}"`));
    expect(fs.readFileSync(path.join(dir, 'dup.json'), 'utf8')).not.toBe(text);
    fs.writeFileSync(path.join(dir, 'dup-trust.json'), fs.readFileSync(path.join(dir, 'trust.json'), 'utf8').replace('"jwks":', '"jwks": {}, "jwks":'));
    fs.writeFileSync(path.join(dir, 'latin1.json'), Buffer.concat([Buffer.from(text.slice(0, -2)), Buffer.from([0xe9]), Buffer.from(text.slice(-2))]));
    for (const [args, want] of [
      [['verify', 'dup.json', '--trust', 'trust.json', '--profile', 'standard'], /^unusable bundle: bundle: duplicate object key "usage_units" at meter_event/],
      [['verify', 'bundle.json', '--trust', 'dup-trust.json', '--profile', 'standard'], /^meterproof verify: trust dup-trust.json is not I-JSON \(DUPLICATE_KEY\)/],
      [['verify', 'latin1.json', '--trust', 'trust.json', '--profile', 'standard'], /^meterproof verify: bundle latin1.json is not valid UTF-8 \(INVALID_UTF8\)/],
    ] as const) {
      const r = run([...args], dir);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(want);
      expect(r.stdout).not.toMatch(/^VALID/m);
      expect(r.stdout, 'no report of checks for input that is not a bundle').toBe('');
    }
    const json = run(['verify', 'dup.json', '--trust', 'trust.json', '--profile', 'standard', '--json'], dir);
    expect(json.status).toBe(2);
    expect(JSON.parse(json.stdout).checks[0]).toMatchObject({ name: 'schema', status: 'fail', code: 'DUPLICATE_KEY' });
  });

  it('redact writes a bundle without the private fields', () => {
    const r = run(['redact', 'bundle.json'], dir);
    expect(r.status, r.stderr).toBe(0);
    const red = JSON.parse(r.stdout);
    expect(red.redacted).toBe(true);
    expect(red.meter_event).toBeUndefined();
    expect(red.tariff_snapshot).toBeUndefined();
    expect(red.billing).toBeUndefined();
    expect(red.salts).toBeUndefined();
    // it says what the redacted bundle still shows
    expect(r.stderr).toMatch(/still shows the signed statement: tenant, billing window, .*withholds the meter event/);
    fs.writeFileSync(path.join(dir, 'red.json'), r.stdout);
    // without the tariff version's published commitment a redacted bundle proves nothing about its charge
    const unpublished = run(['verify', 'red.json', '--trust', 'trust.json', '--profile', 'standard', '--json'], dir);
    expect(unpublished.status).toBe(1);
    expect(JSON.parse(unpublished.stdout).checks.find((c: { name: string }) => c.name === 'commitments')).toMatchObject({ status: 'fail', code: 'TARIFF_NOT_PUBLISHED' });
    // the tariff holder publishes it (here: trust material with the commitment of the full bundle's tariff version)
    const t = run(['trust', '--key', 'k.json', '--tariff-of', 'bundle.json'], dir);
    expect(t.status, t.stderr).toBe(0);
    expect(JSON.parse(t.stdout).tariffs).toEqual([expect.objectContaining({ tariff_id: pilotTariff.tariff_id, binding: 'bn128-poseidon8-v2' })]);
    expect(t.stdout).not.toContain(JSON.parse(fs.readFileSync(path.join(dir, 'bundle.json'), 'utf8')).salts.tariff);
    fs.writeFileSync(path.join(dir, 'trust-published.json'), t.stdout);
    const v = run(['verify', 'red.json', '--trust', 'trust-published.json', '--profile', 'standard', '--json'], dir);
    expect(v.status, v.stdout).toBe(0);
    const rep = JSON.parse(v.stdout);
    expect(rep.redacted).toBe(true);
    expect(rep.checks.find((c: { name: string }) => c.name === 'charge')).toMatchObject({ status: 'skipped', reason: 'redacted' });
    expect(run(['redact', 'event.json'], dir).status).toBe(2);
  });

  it('attest --offline refuses out-of-range tariffs with a named error and exit 2', () => {
    fs.writeFileSync(path.join(dir, 'bad-tariff.json'), JSON.stringify({ ...pilotTariff, min_charge_micros: 10, max_charge_micros: 1 }));
    const r = run(['attest', '--offline', '--event', 'event.json', '--tariff', 'bad-tariff.json', '--key', 'k.json'], dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/MIN_EXCEEDS_MAX/);
    expect(r.stdout).toBe('');
  });

  it('attest --offline refuses an event with a lone surrogate as bad input, exit 2, nothing signed', () => {
    const event = JSON.parse(fs.readFileSync(path.join(dir, 'event.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'surrogate-event.json'), JSON.stringify({ ...event, dimensions: { model: 'a\udc00' } }));
    expect(run(['keys', 'generate', '--out', 'k-surrogate.json'], dir).status).toBe(0);
    const r = run(['attest', '--offline', '--event', 'surrogate-event.json', '--tariff', 'tariff.json', '--key', 'k-surrogate.json'], dir);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('meterproof attest: input cannot be canonicalized (RFC 8785): lone surrogate in string at $.dimensions.model');
    expect(r.stdout).toBe('');
  });
});

describe('meterproof verify --trust-state / --revocations', () => {
  let dir: string;
  const write = (name: string, v: unknown) => fs.writeFileSync(path.join(dir, name), JSON.stringify(v));
  const readState = () => JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8'));
  const signedList = (sequence: string, expiresInMs = 3600_000, attestations: unknown[] = []) => {
    const now = Date.now();
    const list = { type: REVOCATIONS_TYPE, sequence, issued_at: new Date(now - 60_000).toISOString(), expires_at: new Date(now + expiresInMs).toISOString(), keys: [], attestations };
    return { list, key_id: keyA.keyId, signature: signObject(keyA, list) };
  };
  const revocationCode = (r: { stdout: string }) => JSON.parse(r.stdout).checks.find((c: { name: string }) => c.name === 'revocation').code;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-cli-state-'));
    write('bundle.json', pilotBundle().bundle);
    write('t5.json', { ...trustFor(keyA), revocations: signedList('5') });
    write('t4.json', { ...trustFor(keyA), revocations: signedList('4') });
    write('l5-other.json', signedList('5', 3600_000, [{ statement_digest: `sha256:${'ab'.repeat(32)}`, revoked_at: '2026-06-01T00:00:00.000Z', reason: 'x' }]));
    write('l6-expired.json', signedList('6', -1));
    write('l7.json', signedList('7'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('records the accepted list, refuses rollback, equivocation and expiry (state unchanged), moves on to a newer list', async () => {
    const verify = (...extra: string[]) => runAsync(['verify', 'bundle.json', '--trust', 't5.json', '--profile', 'standard', '--trust-state', 'state.json', '--json', ...extra], dir);
    const first = await verify();
    expect(first.status, first.stderr).toBe(0);
    expect(readState().revocations.sequence).toBe('5');

    const older = await runAsync(['verify', 'bundle.json', '--trust', 't4.json', '--profile', 'standard', '--trust-state', 'state.json', '--json'], dir);
    expect(older.status).toBe(1);
    expect(revocationCode(older)).toBe('REVOCATIONS_ROLLBACK');
    const other = await verify('--revocations', 'l5-other.json');
    expect(other.status).toBe(1);
    expect(revocationCode(other)).toBe('REVOCATIONS_ROLLBACK');
    const expired = await verify('--revocations', 'l6-expired.json');
    expect(expired.status).toBe(1);
    expect(revocationCode(expired)).toBe('REVOCATIONS_EXPIRED');
    expect(readState().revocations.sequence).toBe('5');

    const newer = await verify('--revocations', 'l7.json');
    expect(newer.status, newer.stderr).toBe(0);
    expect(readState().revocations.sequence).toBe('7');
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    // unusable state or list files: exit 2 with a one-line reason, the state file untouched
    write('bad-state.json', { type: 'meterproof/trust-state/v1', revocations: { sequence: 'seven' } });
    write('not-a-list.json', { list: {} });
    for (const args of [
      ['--trust-state', 'bad-state.json'],
      ['--revocations', 'not-a-list.json'],
    ]) {
      const r = await runAsync(['verify', 'bundle.json', '--trust', 't5.json', ...args], dir);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^meterproof verify: /);
    }
    expect(readState().revocations.sequence).toBe('7');
  });
});
