// What every benchmark prints about the machine it ran on: the CPU, cores, memory, Node, and this
// machine's raw Ed25519 signing rate measured in the same run (a yardstick for comparing figures
// from different machines).
import os from 'node:os';
import { ED25519_SIGNER, generateEd25519, nodeEd25519Signer, sodiumEd25519Signer } from '../src/core/ed25519.ts';

/** Signatures per second of 400-byte messages on one core, over 2 s (NaN when the signer is absent). */
export function signingRate(make: (seed: Uint8Array) => ((m: Uint8Array) => Uint8Array) | null): number {
  const sign = make(generateEd25519().seed);
  if (!sign) return NaN;
  const msg = Buffer.alloc(400, 7);
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 2000) {
    sign(msg);
    n++;
  }
  return (n / (performance.now() - t0)) * 1000;
}

/** "raw Ed25519 signing (one core, same run): node:crypto …/s, libsodium …/s; the server signs with …" */
export function signingLine(): string {
  const rates = `node:crypto ${signingRate(nodeEd25519Signer).toFixed(0)}/s, libsodium ${signingRate(sodiumEd25519Signer).toFixed(0)}/s`;
  return `raw Ed25519 signing (one core, same run): ${rates}; the server signs with ${ED25519_SIGNER}`;
}

/** "machine: <cpu>, N cores, M GiB, node vX" */
export function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  return `machine: ${cpu}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
}

/** The PostgreSQL server's version (`SHOW server_version`), for the machine line. */
export async function postgresVersion(sql: { unsafe(query: string): PromiseLike<unknown> }): Promise<string> {
  const rows = (await sql.unsafe('show server_version')) as { server_version: string }[];
  return rows[0]?.server_version ?? 'unknown';
}
