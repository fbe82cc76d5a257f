// The ZK parts the service needs at attest time: tariff commitments (Poseidon) and the
// verification key for /v1/trust. Wired to the bn128-poseidon8-v1 binding.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tariffCommitment } from '../core/commitment.ts';
import type { ZkParts } from './container.ts';

export const KEYS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../keys');

export async function zkParts(keysDir = KEYS_DIR): Promise<ZkParts> {
  const vkFile = path.join(keysDir, 'verification_key.json');
  const verificationKey = fs.existsSync(vkFile) ? (JSON.parse(fs.readFileSync(vkFile, 'utf8')) as Record<string, unknown>) : undefined;
  return { tariffCommitment, ...(verificationKey ? { verificationKey } : {}) };
}
