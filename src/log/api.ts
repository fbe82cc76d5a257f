// What the transparency log offers the HTTP layer (the port src/http builds on): receipts for
// bundles, the tree size for /ready, and the reads behind the public /v1/log routes.
import type { Receipt } from '../core/schemas.ts';
import type { AttestationRow } from '../service/attest.ts';
import { ServiceError } from '../service/errors.ts';

/** A signed checkpoint as stored. */
export interface CheckpointRecord {
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** The signed note (checkpoint text, blank line, signature line). */
  readonly note: string;
}

export interface InclusionProofResponse {
  readonly index: number;
  readonly tree_size: number;
  readonly leaf_hash: string;
  readonly hashes: string[];
}

export interface ConsistencyProofResponse {
  readonly from: number;
  readonly to: number;
  readonly hashes: string[];
}

export interface LogEntry {
  readonly index: number;
  readonly leaf_hash: string;
  /** The leaf data (RFC 8785 canonical JSON text): for a bn128-poseidon8-v2 statement only
   *  {statement_digest, type: meterproof/log-leaf/v2}, which reveals nothing commercial; for a v1
   *  statement the statement itself. */
  readonly leaf: string;
}

export interface LogApi {
  /** The receipt of a log leaf (an attestation's or a settlement's), once integrated. */
  receipt(row: Pick<AttestationRow, 'logIndex'>): Promise<Receipt | undefined>;
  size(): Promise<number>;
  /** C2SP signed-note verifier key `<name>+<8 hex key id>+<base64(0x01 || key)>`. */
  verifierKey(): string;
  /** Latest signed checkpoint, read from the store (null before the first one). */
  latestCheckpoint(): Promise<CheckpointRecord | null>;
  inclusionProof(index: number, treeSize: number): Promise<InclusionProofResponse>;
  consistencyProof(from: number, to: number): Promise<ConsistencyProofResponse>;
  entries(start: number, end: number): Promise<LogEntry[]>;
}

/** The error a read outside the log (an index, size or range it cannot serve) is answered with. */
export function outOfRange(message: string): ServiceError {
  return new ServiceError(400, 'OUT_OF_RANGE', message);
}
