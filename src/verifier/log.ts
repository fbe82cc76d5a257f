// Transparency-log checks of the open verifier (docs/transparency-log.md §8): inclusion of the statement leaf,
// the checkpoint signature (C2SP signed-note / tlog-checkpoint) and consistency with a checkpoint
// the verifier already trusts. Pure: no I/O. Every failure is a VerificationError with
// INCLUSION_INVALID, CHECKPOINT_INVALID or CONSISTENCY_INVALID; nothing else escapes.
import { bytesEqual, fromB64, toB64 } from '../core/bytes.ts';
import { logLeafBytes } from '../core/binding-v2.ts';
import { MerkleError, leafHash, verifyConsistency, verifyInclusion } from '../core/merkle.ts';
import { type Checkpoint, NoteError, openCheckpoint, parseCheckpoint, parseVerifierKey } from '../core/note.ts';
import type { Receipt, Statement, VerifyCode } from '../core/schemas.ts';
import { type LogVerifier, VerificationError } from '../core/verify.ts';

const U64_MAX = (1n << 64n) - 1n;
const DECIMAL = /^(?:0|[1-9][0-9]{0,19})$/;
/** Longest proof a uint64 tree can need (inclusion ≤ 64, consistency ≤ 2·64). */
const MAX_PROOF = 128;

type LogCode = Extract<VerifyCode, 'INCLUSION_INVALID' | 'CHECKPOINT_INVALID' | 'CONSISTENCY_INVALID'>;

/** Runs `fn`, turning any exception into a VerificationError with `code`. */
function guard(code: LogCode, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof VerificationError) throw e;
    if (e instanceof MerkleError || e instanceof NoteError) throw new VerificationError(code, `${e.code}: ${e.message}`);
    throw new VerificationError(code, `malformed log data: ${e instanceof Error ? e.message : String(e)}`);
  }
}

const fail = (code: LogCode, message: string) => new VerificationError(code, message);

function u64(v: unknown, what: string, code: LogCode): bigint {
  if (typeof v !== 'string' || !DECIMAL.test(v)) throw fail(code, `${what} is not a canonical decimal integer`);
  const n = BigInt(v);
  if (n > U64_MAX) throw fail(code, `${what} is not a uint64`);
  return n;
}

/** Strict padded standard base64 that re-encodes to itself, of exactly 32 bytes. */
function hash32(v: unknown, what: string, code: LogCode): Uint8Array {
  const b = typeof v === 'string' ? fromB64(v) : null;
  if (!b || toB64(b) !== v || b.length !== 32) throw fail(code, `${what} is not standard base64 of a 32-byte hash`);
  return b;
}

function hashes(v: unknown, what: string, code: LogCode): Uint8Array[] {
  if (!Array.isArray(v)) throw fail(code, `${what} is not an array`);
  if (v.length > MAX_PROOF) throw fail(code, `${what} has ${v.length} hashes, more than any uint64 tree needs`);
  return v.map((h, i) => hash32(h, `${what}[${i}]`, code));
}

/** The checkpoint text of a signed note, parsed without checking any signature. */
function unverifiedCheckpoint(note: unknown, code: LogCode): Checkpoint {
  if (typeof note !== 'string') throw fail(code, 'checkpoint is not a string');
  // signed-note §Format: the text ends at the last blank line (as openNote splits it).
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw fail(code, 'checkpoint is not a signed note');
  return parseCheckpoint(note.slice(0, split + 1));
}

function openWith(note: unknown, verifierKey: string, origin: unknown, code: LogCode, what: string): Checkpoint {
  if (typeof note !== 'string') throw fail(code, `${what} is not a string`);
  if (typeof origin !== 'string' || origin.length === 0) throw fail(code, 'receipt log_origin is missing');
  let verifier;
  try {
    verifier = parseVerifierKey(verifierKey);
  } catch (e) {
    throw fail(code, `log verifier key is unusable: ${e instanceof Error ? e.message : String(e)}`);
  }
  // tlog-checkpoint: the origin must be the expected log's. The expected log is the one the
  // trusted verifier key names (our log signs under key name = origin); the receipt must agree.
  if (origin !== verifier.name) throw fail(code, `receipt log_origin ${JSON.stringify(origin)} is not the log of the verifier key (${verifier.name})`);
  try {
    return openCheckpoint(note, [verifier], { origin }).checkpoint;
  } catch (e) {
    if (e instanceof NoteError) throw fail(code, `${what}: ${e.code}: ${e.message}`);
    throw e;
  }
}

/**
 * Inclusion: the leaf hash is recomputed from the canonical statement and must equal
 * receipt.leaf_hash; the proof must lead from it at receipt.log_index to the root of the receipt's
 * checkpoint, whose size must equal receipt.tree_size. The checkpoint is only parsed here; its
 * signature is the `checkpoint` check.
 */
function checkInclusion(receipt: Receipt, statement: Statement): void {
  // the leaf (docs/protocol.md): v1 the canonical statement, v2 {statement_digest, type}
  guard('INCLUSION_INVALID', () => checkLeafInclusion(receipt, logLeafBytes(statement)));
}

/** Inclusion of any leaf (e.g. a settlement statement's typed leaf), as checkInclusion. */
function checkLeafInclusion(receipt: Receipt, leafBytes: Uint8Array): void {
  guard('INCLUSION_INVALID', () => {
    const r = receipt as Partial<Record<keyof Receipt, unknown>>;
    const index = u64(r.log_index, 'log_index', 'INCLUSION_INVALID');
    const size = u64(r.tree_size, 'tree_size', 'INCLUSION_INVALID');
    const claimed = hash32(r.leaf_hash, 'leaf_hash', 'INCLUSION_INVALID');
    const proof = hashes(r.inclusion_proof, 'inclusion_proof', 'INCLUSION_INVALID');
    const leaf = leafHash(leafBytes); // RFC 9162 §2.1.1 leaf hash
    if (!bytesEqual(leaf, claimed)) throw fail('INCLUSION_INVALID', 'leaf_hash is not the leaf hash of this statement');
    const cp = unverifiedCheckpoint(r.checkpoint, 'INCLUSION_INVALID');
    if (cp.size !== size) throw fail('INCLUSION_INVALID', `tree_size ${size} differs from the checkpoint size ${cp.size}`);
    verifyInclusion(index, size, leaf, cp.rootHash, proof); // RFC 9162 §2.1.3.2
  });
}

/**
 * Checkpoint: the note must carry a valid signature by the log verifier key, and its origin must be
 * receipt.log_origin, which must be the key name of the verifier key (key name = origin).
 */
function checkCheckpoint(receipt: Receipt, verifierKey: string): void {
  guard('CHECKPOINT_INVALID', () => {
    const r = receipt as Partial<Record<keyof Receipt, unknown>>;
    openWith(r.checkpoint, verifierKey, r.log_origin, 'CHECKPOINT_INVALID', 'receipt checkpoint');
  });
}

/**
 * Consistency between the receipt's checkpoint and a trusted one, both opened with the log key
 * and both of the receipt's origin. Accepted in either direction, with `proof` (base64 hashes,
 * RFC 9162 §2.1.4) always from the smaller size to the larger:
 *   - equal sizes: the roots must be equal and the proof empty (or absent);
 *   - trusted older (smaller): proof from the trusted size to the receipt's size;
 *   - trusted newer (larger): proof from the receipt's size to the trusted size;
 *   - either tree empty: trivially consistent, the proof must be empty (or absent).
 */
function checkConsistency(receipt: Receipt, trustedCheckpoint: string, verifierKey: string, proof: readonly string[] | undefined): void {
  guard('CONSISTENCY_INVALID', () => {
    const r = receipt as Partial<Record<keyof Receipt, unknown>>;
    const trusted = openWith(trustedCheckpoint, verifierKey, r.log_origin, 'CONSISTENCY_INVALID', 'trusted checkpoint');
    const current = openWith(r.checkpoint, verifierKey, r.log_origin, 'CONSISTENCY_INVALID', 'receipt checkpoint');
    const p = proof === undefined ? [] : hashes(proof, 'consistency proof', 'CONSISTENCY_INVALID');
    const [older, newer] = trusted.size <= current.size ? [trusted, current] : [current, trusted];
    if (older.size === newer.size) {
      if (!bytesEqual(older.rootHash, newer.rootHash)) {
        throw fail('CONSISTENCY_INVALID', `two checkpoints of size ${older.size} with different roots (split view)`);
      }
      if (p.length !== 0) throw fail('CONSISTENCY_INVALID', 'a consistency proof between equal sizes must be empty');
      return;
    }
    if (older.size === 0n) {
      if (p.length !== 0) throw fail('CONSISTENCY_INVALID', 'a consistency proof from the empty tree must be empty');
      return;
    }
    if (proof === undefined) {
      throw fail('CONSISTENCY_INVALID', `a consistency proof from size ${older.size} to ${newer.size} is required`);
    }
    verifyConsistency(older.size, newer.size, older.rootHash, newer.rootHash, p); // RFC 9162 §2.1.4.2
  });
}

export const logVerifier: LogVerifier = { checkInclusion, checkLeafInclusion, checkCheckpoint, checkConsistency };
