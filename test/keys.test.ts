// Each binding's keys must be a verified Groth16 setup of its circuit in circuits/: this fails
// when a circuit changes without a new ceremony (`npm run ceremony -- --binding <version>`), or
// when any key file is altered. A binding whose circuit is in the repository must have keys.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { presentBindings, verifyCeremony } from '../scripts/ceremony-verify.ts';
import { BINDINGS, KEYS_DIR } from '../scripts/ceremony.ts';

describe.each(presentBindings())('%s keys match its circuit', (binding) => {
  it('recompiles to the committed wasm and r1cs; the zkey verifies against them and the committed ptau with the transcript’s contributions; the verification key is the zkey’s', async () => {
    const checks = await verifyCeremony({ binding });
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    const names = checks.map((c) => c.name);
    expect(names).toContain('wasm matches billing.wasm');
    expect(names).toContain('verification_key.json equals the key exported from the zkey');
    if (BINDINGS[binding]!.frozen) {
      expect(names).toContain('zkey verifies against the r1cs and the committed ptau');
      expect(names).toContain('the zkey’s contributions and beacon are the transcript’s');
    } else {
      expect(names).toContain('meterproof ceremony verify: transcript, zkey chain, circuit, ptau and verification key');
    }
  }, 150_000);
});

describe('keys/ of bn128-poseidon8-v1, altered', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meterproof-keys-test-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('notices a verification key, a wasm or a recorded beacon that is not the ceremony’s', async () => {
    for (const f of fs.readdirSync(KEYS_DIR)) if (fs.statSync(path.join(KEYS_DIR, f)).isFile()) fs.copyFileSync(path.join(KEYS_DIR, f), path.join(tmp, f));
    const vkPath = path.join(tmp, 'verification_key.json');
    const vk = JSON.parse(fs.readFileSync(vkPath, 'utf8')) as { IC: string[][] };
    vk.IC[1] = vk.IC[2]!; // a well-formed key for a different statement
    fs.writeFileSync(vkPath, JSON.stringify(vk));
    const wasmPath = path.join(tmp, 'billing.wasm');
    const wasm = fs.readFileSync(wasmPath);
    wasm.writeUInt8(wasm.readUInt8(wasm.length - 1) ^ 1, wasm.length - 1);
    fs.writeFileSync(wasmPath, wasm);
    const tPath = path.join(tmp, 'transcript.json');
    const t = JSON.parse(fs.readFileSync(tPath, 'utf8')) as { phase2: { beacon: { value: string } } };
    t.phase2.beacon.value = 'ff'.repeat(32);
    fs.writeFileSync(tPath, JSON.stringify(t));
    const failed = (await verifyCeremony({ keysDir: tmp })).filter((c) => !c.ok).map((c) => c.name);
    expect(failed.sort()).toEqual(
      [
        'billing.wasm matches its transcript hash',
        'the zkey’s contributions and beacon are the transcript’s',
        'verification_key.json equals the key exported from the zkey',
        'verification_key.json matches its transcript hash',
        'wasm matches billing.wasm',
      ].sort(),
    );
  }, 150_000);
});
