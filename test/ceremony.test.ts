// The multi-party phase 2 (`meterproof ceremony`, docs/ceremony.md) on a tiny circuit compiled
// here with circom2 and a 2^4 powers of tau made here: every step runs as its own process in
// its own directory, as separate parties would; then each kind of transcript tampering must
// fail verification with its own code.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as snarkjs from 'snarkjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyBeacon, contribute, readZkeyChain } from '../src/ceremony/index.ts';
import { type CeremonyFacts, checkTranscript, isFailure, parseTranscript, type Transcript } from '../src/core/ceremony.ts';
import { terminateCurve } from '../src/verifier/groth16.ts';
import { verifyCeremony } from '../scripts/ceremony-verify.ts';
import { runCeremony } from '../scripts/ceremony.ts';

const BIN = path.resolve('bin/meterproof.js');
const CIRCOM = path.resolve('node_modules/circom2/cli.js');
const BEACON = '5d3a6c1e0f2b4a8897c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4';

const TINY = `pragma circom 2.1.0;
template Tiny() {
  signal input a;
  signal input b;
  signal output c;
  signal d;
  d <== a * b;
  c <== d * a + b;
}
component main {public [a]} = Tiny();
`;

let dir: string;
const p = (...parts: string[]) => path.join(dir, ...parts);
const run = (args: string[], input?: string) => spawnSync(process.execPath, [BIN, 'ceremony', ...args], { cwd: dir, encoding: 'utf8', ...(input !== undefined ? { input } : {}) });

function compile(name: string, source: string): string {
  fs.writeFileSync(p(`${name}.circom`), source);
  execFileSync(process.execPath, [CIRCOM, p(`${name}.circom`), '--r1cs', '--O2', '-o', dir]);
  return p(`${name}.r1cs`);
}

async function makePtau(file: string, entropy: string): Promise<void> {
  const curve = await snarkjs.curves.getCurveFromName('bn128');
  await snarkjs.powersOfTau.newAccumulator(curve, 4, `${file}.0`);
  await snarkjs.powersOfTau.contribute(`${file}.0`, `${file}.1`, 'test phase 1', entropy);
  await snarkjs.powersOfTau.preparePhase2(`${file}.1`, file);
}

/** Hands files over as a party would: copy into a fresh directory. */
function handOver(to: string, files: string[]): void {
  fs.mkdirSync(p(to));
  for (const f of files) fs.copyFileSync(p(f), p(to, path.basename(f)));
}

describe('meterproof ceremony: init → two contributors → beacon → verify', () => {
  let r1cs: string;
  let ptau: string;
  let facts: CeremonyFacts;
  let final: Transcript;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-ceremony-'));
    r1cs = compile('tiny', TINY);
    ptau = p('pot4.ptau');
    await makePtau(ptau, 'test entropy for a throwaway ptau');
  });
  afterAll(async () => {
    await terminateCurve();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs as separate processes in separate directories, and verify accepts the result', async () => {
    const init = run(['init', '--circuit', r1cs, '--ptau', ptau, '--out', p('coordinator'), '--beacon-source', 'drand quicknet round 23456789 randomness', '--label', 'test']);
    expect(init.status, init.stderr).toBe(0);
    expect(fs.existsSync(p('coordinator', 'tiny_0000.zkey'))).toBe(true);

    // contributor 1 signs with their own key and types some noise
    handOver('alice', ['coordinator/tiny_0000.zkey', 'coordinator/transcript.json']);
    const key = spawnSync(process.execPath, [BIN, 'keys', 'generate', '--out', p('alice', 'alice.key.json')], { encoding: 'utf8' });
    expect(key.status, key.stderr).toBe(0);
    const c1 = run(['contribute', 'alice/tiny_0000.zkey', 'alice/tiny_0001.zkey', '--name', 'alice', '--entropy-file', '-', '--key', 'alice/alice.key.json'], 'keyboard noise 8f3k2j');
    expect(c1.status, c1.stderr).toBe(0);
    expect(c1.stdout).toMatch(/^contribution hash [0-9a-f]{128}$/m);

    // contributor 2 checks what they received, then contributes without a key
    handOver('bob', ['alice/tiny_0001.zkey', 'alice/transcript.json']);
    const check = run(['verify', '--transcript', 'bob/transcript.json', '--circuit', r1cs, '--ptau', ptau, '--zkey', 'bob/tiny_0001.zkey', '--in-progress']);
    expect(check.status, check.stderr).toBe(0);
    const c2 = run(['contribute', 'bob/tiny_0001.zkey', 'bob/tiny_0002.zkey', '--name', 'bob']);
    expect(c2.status, c2.stderr).toBe(0);

    // the coordinator applies the announced beacon
    handOver('final', ['bob/tiny_0002.zkey', 'bob/transcript.json']);
    const b = run(['beacon', 'final/tiny_0002.zkey', 'final/tiny_final.zkey', '--beacon-hash', BEACON, '--iterations', '10']);
    expect(b.status, b.stderr).toBe(0);
    const vk = await snarkjs.zKey.exportVerificationKey(p('final', 'tiny_final.zkey'));
    fs.writeFileSync(p('final', 'verification_key.json'), JSON.stringify(vk));

    const v = run(['verify', '--transcript', 'final/transcript.json', '--circuit', r1cs, '--ptau', ptau, '--zkey', 'final/tiny_final.zkey', '--vkey', 'final/verification_key.json', '--beacon-hash', BEACON]);
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
    expect(v.stdout).toBe('OK: 2 contribution(s) (1 signed) and the beacon verify against the circuit and the ptau; the verification key is the zkey’s\n');

    const t = parseTranscript(JSON.parse(fs.readFileSync(p('final', 'transcript.json'), 'utf8')));
    if (isFailure(t)) throw new Error(t.reason);
    final = t;
    expect(final.contributions.map((c) => [c.name, !!c.signature])).toEqual([['alice', true], ['bob', false]]);
    expect(final.beacon).toMatchObject({ value: BEACON, iterations_exp: 10, source: 'drand quicknet round 23456789 randomness' });
    // the entropy never reaches the disk: nothing in the contributors' directories holds it
    for (const d of ['alice', 'bob']) for (const f of fs.readdirSync(p(d))) expect(fs.readFileSync(p(d, f)).includes('keyboard noise')).toBe(false);
  }, 60_000);

  it('reports the first mismatch with its code, through the CLI: exit 1 and one line', () => {
    const t = structuredClone(final);
    t.contributions[0]!.contribution_hash = t.contributions[1]!.contribution_hash;
    fs.writeFileSync(p('final', 'bad.json'), JSON.stringify(t));
    const v = run(['verify', '--transcript', 'final/bad.json', '--circuit', r1cs, '--ptau', ptau, '--zkey', 'final/tiny_final.zkey']);
    expect(v.status).toBe(1);
    expect(v.stdout).toBe('');
    expect(v.stderr).toMatch(/^meterproof ceremony verify: CONTRIBUTION_MISMATCH: contribution 1 \(alice\): contribution hash [0-9a-f]{16}… differs from the zkey's contribution 1 \(alice\) [0-9a-f]{16}…\n$/);

    const wrongVk = JSON.parse(fs.readFileSync(p('final', 'verification_key.json'), 'utf8'));
    wrongVk.IC[0] = wrongVk.IC[1];
    fs.writeFileSync(p('final', 'wrong_vk.json'), JSON.stringify(wrongVk));
    const w = run(['verify', '--transcript', 'final/transcript.json', '--circuit', r1cs, '--ptau', ptau, '--zkey', 'final/tiny_final.zkey', '--vkey', 'final/wrong_vk.json']);
    expect(w.status).toBe(1);
    expect(w.stderr).toMatch(/^meterproof ceremony verify: VKEY_MISMATCH: /);

    const otherBeacon = run(['verify', '--transcript', 'final/transcript.json', '--circuit', r1cs, '--ptau', ptau, '--zkey', 'final/tiny_final.zkey', '--beacon-hash', 'ff'.repeat(32)]);
    expect(otherBeacon.status).toBe(1);
    expect(otherBeacon.stderr).toMatch(/^meterproof ceremony verify: BEACON_MISMATCH: the beacon value 5d3a.* is not the announced public value ffff/);

    const missing = run(['verify', '--transcript', 'final/transcript.json', '--circuit', r1cs, '--ptau', ptau]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--zkey is required/);
  }, 120_000);

  describe('tampered transcripts and files', () => {
    beforeAll(async () => {
      facts = await readZkeyChain(r1cs, ptau, p('final', 'tiny_final.zkey'));
    });
    const tamper = (edit: (t: Transcript) => void, more: Partial<CeremonyFacts> = {}) => {
      const t = structuredClone(final);
      edit(t);
      return checkTranscript(t, { ...facts, ...more });
    };

    it('the untouched transcript passes against the recomputed facts', () => {
      expect(facts.chainValid).toBe(true);
      expect(facts.zkeyContributions.map((c) => c.name)).toEqual(['alice', 'bob', 'beacon']);
      expect(facts.zkeyContributions.map((c) => c.hash)).toEqual([...final.contributions.map((c) => c.contribution_hash), final.beacon!.contribution_hash]);
      expect(facts.zkeyContributions[2]!.beacon).toEqual({ value: BEACON, iterationsExp: 10 });
      expect(tamper(() => {})).toEqual({ contributions: 2, signed: 1, beacon: true });
    });

    it.each<[string, (t: Transcript) => void, string, RegExp]>([
      ['a wrong contribution hash', (t) => void (t.contributions[1]!.contribution_hash = 'ab'.repeat(64)), 'CONTRIBUTION_MISMATCH', /^contribution 2 \(bob\): contribution hash abab/],
      ['a dropped contribution', (t) => void t.contributions.splice(0, 1), 'CHAIN_BROKEN', /^contribution 1 \(bob\) has index 2/],
      [
        'a dropped contribution, renumbered',
        (t) => {
          t.contributions.splice(0, 1);
          t.contributions[0]!.index = 1;
          t.beacon!.index = 2;
        },
        'CHAIN_BROKEN',
        /^contribution 1 \(bob\) starts from zkey sha256 .* \(an entry dropped or reordered\)/,
      ],
      ['reordered contributions', (t) => void t.contributions.reverse(), 'CHAIN_BROKEN', /^contribution 1 \(bob\) has index 2/],
      [
        'reordered contributions, renumbered and re-chained',
        (t) => {
          const [a, b] = t.contributions as [Transcript['contributions'][0], Transcript['contributions'][0]];
          t.contributions = [
            { ...b, index: 1, input_zkey_sha256: t.init.zkey_sha256 },
            { ...a, index: 2, input_zkey_sha256: b.output_zkey_sha256 },
          ];
        },
        'PREV_MISMATCH',
        /^contribution 1 \(bob\): prev does not match/,
      ],
      ['a wrong beacon value', (t) => void (t.beacon!.value = 'ff'.repeat(32)), 'BEACON_MISMATCH', /^the zkey's beacon used value 5d3a.*, the transcript records ffff/],
      ['wrong beacon iterations', (t) => void (t.beacon!.iterations_exp = 11), 'BEACON_MISMATCH', /2\^10 iterations, the transcript records 2\^11/],
      ['a beacon source other than the announced one', (t) => void (t.beacon!.source = 'bitcoin block 900000'), 'BEACON_MISMATCH', /names source "bitcoin block 900000", the transcript announced/],
      ['an announcement changed after contributions', (t) => void (t.beacon_source = 'bitcoin block 900000'), 'PREV_MISMATCH', /^contribution 1 \(alice\): prev/],
      ['a signed entry edited (time)', (t) => void (t.contributions[0]!.time = '2026-01-01T00:00:00Z'), 'SIGNATURE_INVALID', /^contribution 1 \(alice\): the contributor's Ed25519 signature does not verify/],
      ['a signature moved to another signer', (t) => void (t.contributions[1]!.signer = t.contributions[0]!.signer!), 'SIGNATURE_INVALID', /^contribution 2 \(bob\)/],
      ['a renamed contributor', (t) => void (t.contributions[1]!.name = 'carol'), 'CONTRIBUTION_MISMATCH', /the zkey names contribution 2 "bob"/],
      ['the beacon entry dropped', (t) => void (t.beacon = null), 'CONTRIBUTION_MISSING', /the zkey holds contribution 3 \(beacon\)/],
      ['the last output digest changed', (t) => void (t.beacon!.output_zkey_sha256 = '00'.repeat(32)), 'FINAL_ZKEY_MISMATCH', /is not the last one in the transcript/],
      ['another initial zkey', (t) => void (t.init.zkey_sha256 = '00'.repeat(32)), 'INIT_MISMATCH', /initial zkey/],
      ['another circuit', (t) => void (t.circuit.r1cs_sha256 = '00'.repeat(32)), 'CIRCUIT_MISMATCH', /the r1cs/],
      ['another ptau', (t) => void (t.ptau.sha256 = '00'.repeat(32)), 'PTAU_MISMATCH', /the ptau/],
    ])('%s fails with %s', (_desc, edit, code, reason) => {
      const r = tamper(edit);
      expect(r).toMatchObject({ code });
      expect(isFailure(r) && r.reason).toMatch(reason);
    });

    it('a transcript without beacon fails unless --in-progress, and a chain longer than the transcript fails', () => {
      const partial = { ...facts, zkeyContributions: facts.zkeyContributions.slice(0, 2), finalZkeySha256: final.contributions[1]!.output_zkey_sha256 };
      const t = structuredClone(final);
      t.beacon = null;
      expect(checkTranscript(t, partial)).toMatchObject({ code: 'BEACON_MISSING' });
      expect(checkTranscript(t, { ...partial, inProgress: true })).toEqual({ contributions: 2, signed: 1, beacon: false });
      t.contributions.pop();
      expect(checkTranscript(t, { ...partial, inProgress: true })).toMatchObject({ code: 'CONTRIBUTION_MISSING' });
    });

    it('a malformed transcript is TRANSCRIPT_MALFORMED naming the field', () => {
      const t = structuredClone(final) as unknown as { contributions: { contribution_hash: string }[] };
      t.contributions[0]!.contribution_hash = 'xyz';
      expect(parseTranscript(t)).toMatchObject({ code: 'TRANSCRIPT_MALFORMED', reason: expect.stringMatching(/^transcript contributions\.0\.contribution_hash: /) });
    });

    it('a zkey altered after the beacon is ZKEY_INVALID (snarkjs rejects the chain)', async () => {
      const z = fs.readFileSync(p('final', 'tiny_final.zkey'));
      // flip a byte in the last point of the L/H sections (before the contribution section)
      z.writeUInt8(z.readUInt8(z.length - 1200) ^ 1, z.length - 1200);
      fs.writeFileSync(p('final', 'altered.zkey'), z);
      const f = await readZkeyChain(r1cs, ptau, p('final', 'altered.zkey'));
      expect(checkTranscript(final, f)).toMatchObject({ code: 'ZKEY_INVALID' });
    });

    it('a zkey of another circuit is CIRCUIT_MISMATCH', async () => {
      const other = compile('other', TINY.replace('c <== d * a + b;', 'c <== d * b + a;'));
      const f = await readZkeyChain(other, ptau, p('final', 'tiny_final.zkey'));
      expect(checkTranscript(final, f)).toMatchObject({ code: 'CIRCUIT_MISMATCH' });
      expect(f.chainValid).toBe(false);
    });
  });

  it('contribute and beacon refuse a stale zkey, an existing output, a closed ceremony and bad arguments', async () => {
    // through the CLI: exit 1 with one line for a refused step, 2 for usage
    const notLatest = run(['contribute', 'alice/tiny_0000.zkey', 'bob/x.zkey', '--name', 'mallory', '--transcript', 'bob/transcript.json']);
    expect(notLatest.status).toBe(1);
    expect(notLatest.stderr).toMatch(/^meterproof ceremony contribute: alice\/tiny_0000\.zkey \(sha256 [0-9a-f]{16}…\) is not the latest zkey of the transcript [^\n]*\n$/);
    expect(run(['contribute', 'bob/tiny_0002.zkey', 'bob/c.zkey']).status).toBe(2);
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/meterproof ceremony contribute <in\.zkey> <out\.zkey> --name <who>/);

    // the same steps in-process
    const c = (inZkey: string, outZkey: string, name: string, transcript: string) => contribute({ inZkey: p(inZkey), outZkey: p(outZkey), name, transcript: p(transcript) });
    await expect(c('bob/tiny_0001.zkey', 'final/x.zkey', 'mallory', 'final/transcript.json')).rejects.toThrow(/the transcript already ends with the beacon/);
    await expect(c('bob/tiny_0002.zkey', 'bob/tiny_0001.zkey', 'carol', 'bob/transcript.json')).rejects.toThrow(/already exists/);
    await expect(c('bob/tiny_0002.zkey', 'bob/c.zkey', 'line\nbreak', 'bob/transcript.json')).rejects.toThrow(/--name must be/);
    const b = (value: string, iterationsExp: number) => applyBeacon({ inZkey: p('bob/tiny_0002.zkey'), outZkey: p('bob/b.zkey'), transcript: p('bob/transcript.json'), value, iterationsExp });
    await expect(b('xyz', 10)).rejects.toThrow(/--beacon-hash must be/);
    await expect(b('ab', 9)).rejects.toThrow(/--iterations must be/);
    expect(fs.existsSync(p('bob', 'c.zkey'))).toBe(false);
    expect(fs.existsSync(p('bob', 'x.zkey'))).toBe(false);
    expect(fs.existsSync(p('bob', 'b.zkey'))).toBe(false);
  }, 60_000);

  it('npm run ceremony --publish writes keys from the finished ceremony that ceremony:verify accepts, and notices altered ones', async () => {
    const setup = { circuit: p('tiny.circom'), keysDir: p('keys', 'tiny'), frozen: false };
    await runCeremony({ binding: 'test', setup, keysRoot: p('keys'), ptau, publish: p('final', 'tiny_final.zkey'), transcript: p('final', 'transcript.json'), log: () => {} });
    expect(fs.readdirSync(p('keys', 'tiny')).sort()).toEqual(['billing.wasm', 'billing.zkey', 'transcript.json', 'verification_key.json']);
    const checks = await verifyCeremony({ setup, keysRoot: p('keys') });
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks.map((c) => c.name)).toContain('meterproof ceremony verify: transcript, zkey chain, circuit, ptau and verification key');

    // another contribution list in the committed transcript, and a changed circuit source
    const tPath = p('keys', 'tiny', 'transcript.json');
    const t = JSON.parse(fs.readFileSync(tPath, 'utf8'));
    t.contributions[1].contribution_hash = 'cd'.repeat(64);
    fs.writeFileSync(tPath, JSON.stringify(t));
    fs.appendFileSync(p('tiny.circom'), '// a comment\n');
    const failed = (await verifyCeremony({ setup, keysRoot: p('keys') })).filter((c) => !c.ok);
    expect(failed.map((c) => c.name)).toEqual(['circuit sources match the transcript', 'meterproof ceremony verify: transcript, zkey chain, circuit, ptau and verification key']);
    expect(failed[1]!.detail).toMatch(/^CONTRIBUTION_MISMATCH: contribution 2 \(bob\)/);
  }, 60_000);
});
