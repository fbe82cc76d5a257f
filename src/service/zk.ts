// The ZK parts the service needs at attest time: tariff commitments (Poseidon) of both binding
// versions, and the verification keys for /v1/trust.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tariffCommitment } from '../core/commitment.ts';
import { tariffCommitmentV2 } from '../core/binding-v2.ts';
import { BINDING_VERSION, BINDING_VERSION_V2 } from '../core/schemas.ts';
import type { ZkParts } from './container.ts';

/** The keys of bn128-poseidon8-v1 (at the top of keys/, where they have always been). */
export const KEYS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../keys');
/** The keys of bn128-poseidon8-v2. */
export const V2_KEYS_DIR = path.join(KEYS_DIR, BINDING_VERSION_V2);

function readKey(dir: string): Record<string, unknown> | undefined {
  const f = path.join(dir, 'verification_key.json');
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, unknown>) : undefined;
}

export async function zkParts(keysDir = KEYS_DIR, v2KeysDir = V2_KEYS_DIR): Promise<ZkParts> {
  const verificationKeys: Record<string, Record<string, unknown>> = {};
  const v1 = readKey(keysDir);
  const v2 = readKey(v2KeysDir);
  if (v1) verificationKeys[BINDING_VERSION] = v1;
  if (v2) verificationKeys[BINDING_VERSION_V2] = v2;
  return { tariffCommitment, tariffCommitmentV2, verificationKeys };
}
