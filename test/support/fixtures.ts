// Shared test fixtures: the seed's pilot event and tariff, and deterministic keys.
import fs from 'node:fs';
import path from 'node:path';
import { signingKeyFromSeed, publicJwk, type SigningKey } from '../../src/core/keys.ts';
import { attestEvent, attestEventV1, normalizeMeterEvent, normalizeTariff, GENESIS } from '../../src/core/attest.ts';
import type { FullBundle } from '../../src/core/schemas.ts';
import type { TrustMaterial } from '../../src/core/trust.ts';
import type { Prover } from '../../src/prover/index.ts';
import type { KeyRing } from '../../src/service/keyring.ts';

export const VECTORS = path.resolve(process.cwd(), '../shared/vectors');
export const hasVectors = (sub: string) => fs.existsSync(path.join(VECTORS, sub));

export const pilotEvent = {
  event_id: 'evt_pilot_001',
  event_timestamp: '2026-05-29T12:00:00.000Z',
  tenant_id: 'tenant_acme',
  api_key_id: 'api_live_001',
  endpoint: '/v1/completions',
  usage_units: 1842,
  contract_version: 'contract-v1',
  billing_window_id: '2026-05',
};

export const pilotTariff = {
  tariff_id: 'tariff_default',
  tariff_version: '1.0.0',
  tariff_class: 'usage_linear',
  unit_price_micros: 120,
  min_charge_micros: 50000,
  max_charge_micros: 5000000000,
  rounding_mode: 'floor',
  currency: 'USD',
};

export const graduatedTariff = {
  tariff_id: 'tariff_vex',
  tariff_version: '2026.1',
  tariff_class: 'usage_graduated',
  currency: 'USD',
  tiers: [
    { up_to: 50000, unit_price_micros: 5000 },
    { up_to: null, unit_price_micros: 8000 },
  ],
  unit_quantum: 1,
  rounding_mode: 'half_even',
};

export const keyA: SigningKey = signingKeyFromSeed(new Uint8Array(32).fill(7), '2026-01-01T00:00:00Z');
export const keyB: SigningKey = signingKeyFromSeed(new Uint8Array(32).fill(9), '2026-01-01T00:00:00Z');

export function trustFor(...keys: SigningKey[]): TrustMaterial {
  return { jwks: { keys: keys.map((k) => publicJwk(k, '2026-01-01T00:00:00Z')) } };
}

/** Fixed salts of the test bundles (the service draws them at random). */
export const TEST_EVENT_SALT = 1234567890123456789012345678901234567890n;
export const TEST_TARIFF_SALT = 9876543210987654321098765432109876543210n;

/** attestEvent (bn128-poseidon8-v2) with the fixed test salts unless given. */
export function testAttest(args: Omit<Parameters<typeof attestEvent>[0], 'eventSalt' | 'tariffSalt'> & { eventSalt?: bigint; tariffSalt?: bigint }) {
  return attestEvent({ eventSalt: TEST_EVENT_SALT, tariffSalt: TEST_TARIFF_SALT, ...args });
}

/** The pilot event and tariff, attested under bn128-poseidon8-v2 at the chain's start. */
export function pilotBundle(key = keyA) {
  return testAttest({ event: normalizeMeterEvent(pilotEvent), tariff: normalizeTariff(pilotTariff), key, chain: GENESIS, issuedAt: '2026-05-29T12:00:01.000Z' });
}

/** The same under bn128-poseidon8-v1 (compatibility). */
export function pilotBundleV1(key = keyA) {
  return attestEventV1({ event: normalizeMeterEvent(pilotEvent), tariff: normalizeTariff(pilotTariff), key, chain: GENESIS, issuedAt: '2026-05-29T12:00:01.000Z' });
}

/** The v1 pilot bundle with a real bn128-poseidon8-v1 Groth16 proof (a prover on keys/), its
 *  proof statement signed by keyA (by the service's proveBundle, given a key ring that always
 *  hands out keyA). */
export async function provedPilotBundle(prover: Prover): Promise<FullBundle> {
  const { proveBundle } = await import('../../src/service/prove.ts'); // the prover stack, only when asked for
  const { bundle, statementDigest } = pilotBundleV1();
  const ring = { signer: async () => ({ key: keyA, issuedAt: new Date('2026-06-01T00:00:00.000Z') }) } as unknown as KeyRing;
  const bp = await proveBundle(prover, ring, bundle, 12345678901234567890n, statementDigest);
  return { ...bundle, attestation: { ...bundle.attestation, proof_status: 'proved', billing_proof: bp } };
}

/** The v2 pilot bundle with a real bn128-poseidon8-v2 proof (a prover on keys/bn128-poseidon8-v2). */
export async function provedPilotBundleV2(prover: Prover): Promise<FullBundle> {
  const { proveBundleV2 } = await import('../../src/service/prove.ts');
  const { bundle } = pilotBundle();
  return { ...bundle, attestation: { ...bundle.attestation, proof_status: 'proved', billing_proof: await proveBundleV2(prover, bundle) } };
}
