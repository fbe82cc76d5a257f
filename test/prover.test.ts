// The Groth16 prover (src/prover/groth16-prove.ts): proofs verify under the ceremony's
// verification key, are randomized, carry the witness's public signals, and a malformed proving
// key or witness is refused with a clear error.
import fs from 'node:fs';
import path from 'node:path';
import * as snarkjs from 'snarkjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeMeterEvent, normalizeTariff } from '../src/core/attest.ts';
import { computeCharge, pricingFromTariff } from '../src/core/charge.ts';
import { circuitInputs, randomBlinding } from '../src/core/commitment.ts';
import { createProver, DEFAULT_KEYS_DIR, loadProvingKeys, terminateCurve, verifyGroth16, type Prover } from '../src/prover/index.ts';
import { ProvingKeyError, readProvingKey, witnessOf } from '../src/prover/groth16-prove.ts';
import { graduatedTariff, pilotEvent } from './support/fixtures.ts';

const vkey = JSON.parse(fs.readFileSync(path.join(DEFAULT_KEYS_DIR, 'verification_key.json'), 'utf8')) as Record<string, unknown>;

async function input(units: number, cumulativeBefore: bigint) {
  const event = normalizeMeterEvent({ ...pilotEvent, usage_units: units });
  const tariff = normalizeTariff(graduatedTariff);
  const { charge } = computeCharge({ units: BigInt(units), outcome: event.outcome, cumulativeBefore }, pricingFromTariff(tariff));
  return circuitInputs({ event, tariff, cumulativeBefore, blinding: randomBlinding(), charge });
}

let pool: Prover;
let inProcess: Prover;
beforeAll(async () => {
  pool = await createProver({ workers: 1 });
  inProcess = await createProver({ workers: 0 });
}, 60_000);
afterAll(async () => {
  await pool?.close();
  await inProcess?.close();
  await terminateCurve();
});

describe('Groth16 prover', () => {
  it('proves in a worker and in-process; every proof verifies and carries the public signals', async () => {
    for (const [units, before] of [[1842, 0n], [7, 49_999n], [120_000, 3n]] as const) {
      const inp = await input(units, before);
      for (const prover of [pool, inProcess]) {
        const { proof, publicSignals } = await prover.prove(inp);
        expect(publicSignals).toEqual([inp['binding_commitment'], inp['charge'], inp['tariff_commitment']]);
        expect(await verifyGroth16(vkey, publicSignals, proof)).toBe(true);
        // bound to its public signals: any other charge or commitment fails
        expect(await verifyGroth16(vkey, [publicSignals[0], String(BigInt(publicSignals[1]!) + 1n), publicSignals[2]], proof)).toBe(false);
        expect(await verifyGroth16(vkey, [publicSignals[2], publicSignals[1], publicSignals[0]], proof)).toBe(false);
      }
    }
  }, 120_000);

  it('is randomized: two proofs of one witness differ and both verify', async () => {
    const inp = await input(1842, 100n);
    const a = await pool.prove(inp);
    const b = await pool.prove(inp);
    expect(a.publicSignals).toEqual(b.publicSignals);
    expect(a.proof.pi_a).not.toEqual(b.proof.pi_a);
    expect(a.proof.pi_c).not.toEqual(b.proof.pi_c);
    expect(await verifyGroth16(vkey, b.publicSignals, b.proof)).toBe(true);
  }, 60_000);

  it('agrees with snarkjs.groth16.prove on the same witness', async () => {
    const inp = await input(50_001, 49_990n);
    const keys = loadProvingKeys();
    const wtns = { type: 'mem' as const };
    await snarkjs.wtns.calculate(inp, { type: 'mem', data: keys.wasm }, wtns);
    const theirs = await snarkjs.groth16.prove({ type: 'mem', data: keys.zkey }, wtns);
    const ours = await inProcess.prove(inp);
    expect(ours.publicSignals).toEqual(theirs.publicSignals);
    expect(await verifyGroth16(vkey, theirs.publicSignals, theirs.proof)).toBe(true);
    expect(await verifyGroth16(vkey, ours.publicSignals, ours.proof)).toBe(true);
  }, 60_000);

  it('refuses a malformed proving key or witness with PROVING_KEY_INVALID', () => {
    const { zkey } = loadProvingKeys();
    const pk = readProvingKey(zkey);
    expect(pk.nPublic).toBe(3);
    expect(pk.domainSize).toBe(4096);
    const bad = (bytes: Uint8Array) => {
      try {
        readProvingKey(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(ProvingKeyError);
        return (e as ProvingKeyError).code;
      }
      return 'accepted';
    };
    expect(bad(zkey.subarray(0, zkey.length - 1))).toBe('PROVING_KEY_INVALID');
    expect(bad(new TextEncoder().encode('wtns'))).toBe('PROVING_KEY_INVALID');
    const wrongMagic = zkey.slice();
    wrongMagic[0] = 0x5a;
    expect(bad(wrongMagic)).toBe('PROVING_KEY_INVALID');
    // a plonk key (protocol 2) is not a Groth16 key
    const plonk = zkey.slice();
    const dv = new DataView(plonk.buffer);
    let p = 12;
    while (dv.getUint32(p, true) !== 1) p += 12 + Number(dv.getBigUint64(p + 4, true));
    dv.setUint32(p + 12, 2, true);
    expect(bad(plonk)).toBe('PROVING_KEY_INVALID');
    // a witness for another circuit size
    const wtns = new Uint8Array(12 + 12 + 40 + 12 + 32);
    const wv = new DataView(wtns.buffer);
    wtns.set(new TextEncoder().encode('wtns'));
    wv.setUint32(4, 2, true);
    wv.setUint32(8, 2, true);
    wv.setUint32(12, 1, true);
    wv.setBigUint64(16, 40n, true);
    wv.setUint32(24, 32, true);
    let r = pk.r;
    for (let i = 0; i < 32; i++, r >>= 8n) wtns[28 + i] = Number(r & 0xffn);
    wv.setUint32(60, 1, true);
    wv.setUint32(64, 2, true);
    wv.setBigUint64(68, 32n, true);
    expect(() => witnessOf(wtns, pk)).toThrow(/witness has 1 values/);
  });
});
