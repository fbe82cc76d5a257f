// keys/ must be a verified Groth16 setup of the circuit in circuits/: this fails when the circuit
// changes without a new ceremony (`npm run ceremony`), or when any key file is altered.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyCeremony } from '../scripts/ceremony-verify.ts';
import { KEYS_DIR } from '../scripts/ceremony.ts';

describe('keys/ match circuits/billing.circom', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meterproof-keys-test-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('recompiles to the committed wasm and r1cs; the zkey verifies against them and the committed ptau; the verification key is the zkey’s', async () => {
    const checks = await verifyCeremony();
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    const names = checks.map((c) => c.name);
    expect(names).toContain('zkey verifies against the r1cs and the committed ptau');
    expect(names).toContain('verification_key.json equals the key exported from the zkey');
    expect(names).toContain('wasm matches keys/billing.wasm');
  }, 150_000);

  it('notices a verification key or wasm that is not the ceremony’s', async () => {
    for (const f of fs.readdirSync(KEYS_DIR)) fs.copyFileSync(path.join(KEYS_DIR, f), path.join(tmp, f));
    const vkPath = path.join(tmp, 'verification_key.json');
    const vk = JSON.parse(fs.readFileSync(vkPath, 'utf8')) as { IC: string[][] };
    vk.IC[1] = vk.IC[2]!; // a well-formed key for a different statement
    fs.writeFileSync(vkPath, JSON.stringify(vk));
    const wasmPath = path.join(tmp, 'billing.wasm');
    const wasm = fs.readFileSync(wasmPath);
    wasm.writeUInt8(wasm.readUInt8(wasm.length - 1) ^ 1, wasm.length - 1);
    fs.writeFileSync(wasmPath, wasm);
    const failed = (await verifyCeremony({ keysDir: tmp, skipZkeyVerify: true })).filter((c) => !c.ok).map((c) => c.name);
    expect(failed.sort()).toEqual(
      [
        'billing.wasm matches its transcript hash',
        'verification_key.json equals the key exported from the zkey',
        'verification_key.json matches its transcript hash',
        'wasm matches keys/billing.wasm',
      ].sort(),
    );
  }, 60_000);
});
