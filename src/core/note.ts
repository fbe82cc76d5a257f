// C2SP signed-note (https://c2sp.org/signed-note) with Ed25519 keys (signature type 0x01), and
// C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) bodies. Pure: signing is injected,
// verification goes through ed25519Verify. Every parse error is a NoteError with a closed code.
import { bytesEqual, concatBytes, sha256, toB64, toHex, utf8 } from './bytes.ts';
import { decodeB64 } from './platform.ts';
import { ed25519Signer, ed25519Verify, publicKeyFromSeed } from './ed25519.ts';

export const NOTE_ERROR_CODES = [
  'MALFORMED_NOTE', // encoding, layout or a signature line that breaks signed-note §Format
  'INVALID_KEY_NAME', // empty, or containing a Unicode space, '+' or a control character
  'MALFORMED_VERIFIER_KEY', // not <name>+<8 hex>+<base64(type || key)>, or a key of the wrong length
  'UNSUPPORTED_KEY_TYPE', // a signature type other than Ed25519 (0x01)
  'KEY_ID_MISMATCH', // key id is not SHA-256(name || 0x0A || type || key)[:4]
  'AMBIGUOUS_KEY', // two different trusted keys with the same name and key id
  'TOO_MANY_SIGNATURES', // more signature lines than the verifier accepts
  'SIGNATURE_INVALID', // a signature by a known key does not verify
  'NO_VERIFIED_SIGNATURE', // no signature by a known key
  'MALFORMED_CHECKPOINT', // note text that breaks tlog-checkpoint §Note text
  'ORIGIN_MISMATCH', // checkpoint origin is not the expected one
] as const;
export type NoteErrorCode = (typeof NOTE_ERROR_CODES)[number];

export class NoteError extends Error {
  override readonly name = 'NoteError';
  readonly code: NoteErrorCode;

  constructor(code: NoteErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** signed-note §Signature types: Ed25519. */
export const SIG_TYPE_ED25519 = 0x01;
/** signed-note §Format: verifiers MUST accept at least 16 signatures; this is our default cap. */
export const DEFAULT_MAX_SIGNATURES = 100;
const SIG_PREFIX = '\u2014 '; // em dash, space
const U64_MAX = (1n << 64n) - 1n;
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface NoteVerifier {
  readonly name: string;
  /** uint32 key id. */
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  verify(msg: Uint8Array, sig: Uint8Array): boolean;
}

export interface NoteSigner {
  readonly name: string;
  /** uint32 key id. */
  readonly keyId: number;
  sign(msg: Uint8Array): Uint8Array;
}

export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** Signature bytes without the 4-byte key id. */
  readonly signature: Uint8Array;
}

export interface OpenedNote {
  /** Note text, including its final newline. */
  readonly text: string;
  /** Signatures by known keys, all verified. */
  readonly verified: readonly NoteSignature[];
  /** Signatures by unknown keys, ignored (not verified). */
  readonly unverified: readonly NoteSignature[];
}

export interface OpenNoteOptions {
  /** Cap on signature lines (default 100; the spec requires accepting at least 16). */
  readonly maxSignatures?: number;
}

// ---------------------------------------------------------------------------------------------
// Keys

/** signed-note §Format: key names are non-empty, without Unicode spaces or '+'. Control chars are banned too. */
export function isValidKeyName(name: string): boolean {
  return typeof name === 'string' && name.length > 0 && !/[\p{White_Space}\p{Z}\p{Cc}+]/u.test(name) && wellFormed(name);
}

/** signed-note §Signatures: key ID = SHA-256(key name || 0x0A || signature type || public key)[:4], big-endian. */
export function noteKeyId(name: string, sigType: number, publicKey: Uint8Array): number {
  const h = sha256(concatBytes(utf8(name), new Uint8Array([0x0a, sigType]), publicKey));
  return readU32(h);
}

/** signed-note §Ed25519 signatures: key id of an Ed25519 key. */
export function ed25519KeyId(name: string, publicKey: Uint8Array): number {
  return noteKeyId(name, SIG_TYPE_ED25519, publicKey);
}

/** Verifier key string `<name>+<8 hex key id>+<base64(0x01 || 32-byte public key)>`. */
export function formatVerifierKey(name: string, publicKey: Uint8Array): string {
  assertKeyName(name);
  if (publicKey.length !== 32) throw new NoteError('MALFORMED_VERIFIER_KEY', 'Ed25519 public key must be 32 bytes');
  const keyData = concatBytes(new Uint8Array([SIG_TYPE_ED25519]), publicKey);
  return `${name}+${hex8(ed25519KeyId(name, publicKey))}+${toB64(keyData)}`;
}

/** Parses a verifier key string (Ed25519 only) and checks its key id. */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const m = typeof vkey === 'string' ? /^([^+]*)\+([0-9a-f]{8})\+(.*)$/su.exec(vkey) : null;
  if (!m) throw new NoteError('MALFORMED_VERIFIER_KEY', 'verifier key is not <name>+<8 hex>+<base64>');
  const [, name = '', idHex = '', b64 = ''] = m;
  assertKeyName(name);
  const keyData = fromB64Canonical(b64);
  if (!keyData || keyData.length === 0) throw new NoteError('MALFORMED_VERIFIER_KEY', 'verifier key data is not base64');
  if (keyData[0] !== SIG_TYPE_ED25519) {
    throw new NoteError('UNSUPPORTED_KEY_TYPE', `unsupported signature type 0x${toHex(keyData.subarray(0, 1))}`);
  }
  const publicKey = keyData.subarray(1);
  if (publicKey.length !== 32) throw new NoteError('MALFORMED_VERIFIER_KEY', 'Ed25519 public key must be 32 bytes');
  const keyId = Number.parseInt(idHex, 16);
  if (keyId !== ed25519KeyId(name, publicKey)) {
    throw new NoteError('KEY_ID_MISMATCH', `key id ${idHex} does not match the key`);
  }
  return ed25519NoteVerifier(name, publicKey);
}

/** Verifier for an Ed25519 public key under a key name. */
export function ed25519NoteVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  assertKeyName(name);
  if (publicKey.length !== 32) throw new NoteError('MALFORMED_VERIFIER_KEY', 'Ed25519 public key must be 32 bytes');
  const pub = new Uint8Array(publicKey);
  return { name, keyId: ed25519KeyId(name, pub), publicKey: pub, verify: (msg, sig) => ed25519Verify(pub, msg, sig) };
}

/** Signer from an injected Ed25519 signing function and its public key (for the key id). */
export function ed25519NoteSigner(name: string, publicKey: Uint8Array, sign: (msg: Uint8Array) => Uint8Array): NoteSigner {
  assertKeyName(name);
  if (publicKey.length !== 32) throw new NoteError('MALFORMED_VERIFIER_KEY', 'Ed25519 public key must be 32 bytes');
  return { name, keyId: ed25519KeyId(name, publicKey), sign };
}

/** Signer from a 32-byte Ed25519 seed. */
export function ed25519NoteSignerFromSeed(name: string, seed: Uint8Array): NoteSigner {
  return ed25519NoteSigner(name, publicKeyFromSeed(seed), ed25519Signer(seed));
}

// ---------------------------------------------------------------------------------------------
// Notes

/** Signs `text` (which must end in a newline) and returns the signed note. */
export function signNote(text: string, signers: NoteSigner | readonly NoteSigner[]): string {
  const list: readonly NoteSigner[] = Array.isArray(signers) ? signers : [signers as NoteSigner];
  if (list.length === 0) throw new NoteError('MALFORMED_NOTE', 'a signed note needs at least one signature');
  checkNoteChars(text);
  if (!text.endsWith('\n')) throw new NoteError('MALFORMED_NOTE', 'note text must end in a newline'); // §Format
  const msg = utf8(text);
  let out = `${text}\n`; // §Format: blank line between text and signatures
  for (const s of list) {
    assertKeyName(s.name);
    const sig = s.sign(msg);
    // §Signatures: — <key name> base64(32-bit key ID || signature)
    out += `${SIG_PREFIX}${s.name} ${toB64(concatBytes(u32(s.keyId), sig))}\n`;
  }
  return out;
}

/**
 * Opens a signed note: checks the format, verifies every signature by a known key (any failure
 * rejects the note), ignores unknown keys, and requires at least one verified signature.
 */
export function openNote(
  note: string | Uint8Array,
  verifiers: readonly NoteVerifier[],
  opts: OpenNoteOptions = {},
): OpenedNote {
  const msg = decodeNote(note);
  checkNoteChars(msg);
  const known = verifierMap(verifiers);
  // §Format: the text is separated from the signatures by the last empty line.
  const split = msg.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('MALFORMED_NOTE', 'no blank line before the signatures');
  const text = msg.slice(0, split + 1);
  const block = msg.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) {
    throw new NoteError('MALFORMED_NOTE', 'signature block must end in a newline');
  }
  const lines = block.slice(0, -1).split('\n');
  const max = opts.maxSignatures ?? DEFAULT_MAX_SIGNATURES;
  if (lines.length > max) {
    throw new NoteError('TOO_MANY_SIGNATURES', `${lines.length} signatures, at most ${max} accepted`);
  }

  const textBytes = utf8(text);
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    const sig = parseSignatureLine(line);
    const key = `${sig.name}\n${sig.keyId}`;
    const v = known.get(key);
    if (v === undefined) {
      // §Signatures: verifiers MUST ignore signatures from unknown keys.
      if (!seen.has(line)) unverified.push(sig);
      seen.add(line);
      continue;
    }
    if (seen.has(key)) continue; // a second signature by the same key adds nothing
    seen.add(key);
    // §Signatures: a known key's signature MUST be verified; a failure rejects the note.
    if (!v.verify(textBytes, sig.signature)) {
      throw new NoteError('SIGNATURE_INVALID', `invalid signature by ${sig.name}+${hex8(sig.keyId)}`);
    }
    verified.push(sig);
  }
  // §Signatures: if no signature from a known key verifies, clients MUST reject the note.
  if (verified.length === 0) throw new NoteError('NO_VERIFIED_SIGNATURE', 'no signature by a known key');
  return { text, verified, unverified };
}

function parseSignatureLine(line: string): NoteSignature {
  // §Format: em dash, space, key name, space, base64 signature.
  if (!line.startsWith(SIG_PREFIX)) {
    throw new NoteError('MALFORMED_NOTE', 'signature line must start with an em dash and a space');
  }
  const rest = line.slice(SIG_PREFIX.length);
  const sp = rest.indexOf(' ');
  const name = sp < 0 ? '' : rest.slice(0, sp);
  if (!isValidKeyName(name)) throw new NoteError('MALFORMED_NOTE', 'signature line has an invalid key name');
  const raw = fromB64Canonical(rest.slice(sp + 1));
  // §Format: base64 of 4 + n bytes, n > 0
  if (!raw || raw.length < 5) throw new NoteError('MALFORMED_NOTE', 'signature is not base64 of a key id and a signature');
  return { name, keyId: readU32(raw), signature: raw.slice(4) };
}

function verifierMap(verifiers: readonly NoteVerifier[]): Map<string, NoteVerifier> {
  const m = new Map<string, NoteVerifier>();
  for (const v of verifiers) {
    const key = `${v.name}\n${v.keyId}`;
    const prev = m.get(key);
    if (prev !== undefined && !bytesEqual(prev.publicKey, v.publicKey)) {
      throw new NoteError('AMBIGUOUS_KEY', `two trusted keys named ${v.name}+${hex8(v.keyId)}`);
    }
    m.set(key, v);
  }
  return m;
}

function decodeNote(note: string | Uint8Array): string {
  if (typeof note === 'string') {
    if (!wellFormed(note)) throw new NoteError('MALFORMED_NOTE', 'note is not valid Unicode');
    return note;
  }
  try {
    // §Format: signed notes MUST be valid UTF-8 (a BOM is kept, so the bytes round-trip).
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(note);
  } catch {
    throw new NoteError('MALFORMED_NOTE', 'note is not valid UTF-8');
  }
}

function checkNoteChars(s: string): void {
  // §Format: no ASCII control characters other than newline.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) throw new NoteError('MALFORMED_NOTE', 'note contains a control character');
  }
  if (!wellFormed(s)) throw new NoteError('MALFORMED_NOTE', 'note is not valid Unicode');
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

export interface Checkpoint {
  readonly origin: string;
  readonly size: bigint;
  /** 32-byte RFC 6962 root hash. */
  readonly rootHash: Uint8Array;
  readonly extensions: readonly string[];
}

export interface CheckpointInput {
  readonly origin: string;
  readonly size: bigint;
  readonly rootHash: Uint8Array;
  readonly extensions?: readonly string[];
}

/** tlog-checkpoint §Note text: `<origin>\n<decimal size>\n<base64 root>\n[<extension>\n]*`. */
export function formatCheckpoint(cp: CheckpointInput): string {
  if (typeof cp.size !== 'bigint' || cp.size < 0n || cp.size > U64_MAX) throw checkpointError('size is not a uint64');
  if (!(cp.rootHash instanceof Uint8Array) || cp.rootHash.length !== 32) {
    throw checkpointError('root hash must be 32 bytes');
  }
  const lines = [cp.origin, cp.size.toString(10), toB64(cp.rootHash), ...(cp.extensions ?? [])];
  for (const l of lines) {
    // §Note text: origin and extension lines are non-empty single lines.
    if (typeof l !== 'string' || l.length === 0 || l.includes('\n')) {
      throw checkpointError('checkpoint lines must be non-empty and without newlines');
    }
  }
  const text = `${lines.join('\n')}\n`;
  assertCheckpointChars(text);
  return text;
}

/** Strict tlog-checkpoint parser: the note text of a checkpoint, as returned by openNote. */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== 'string' || !text.endsWith('\n')) throw checkpointError('checkpoint must end in a newline');
  assertCheckpointChars(text);
  const lines = text.slice(0, -1).split('\n');
  // §Note text: at least three non-empty lines; extension lines MUST be non-empty.
  if (lines.length < 3) throw checkpointError('checkpoint has fewer than three lines');
  if (lines.some((l) => l.length === 0)) throw checkpointError('checkpoint has an empty line');
  const [origin = '', sizeText = '', rootText = '', ...extensions] = lines;
  // §Note text 2: ASCII decimal, no leading zeroes (except the empty tree's "0").
  if (!/^(?:0|[1-9][0-9]{0,19})$/.test(sizeText)) throw checkpointError('tree size is not canonical decimal');
  const size = BigInt(sizeText);
  if (size > U64_MAX) throw checkpointError('tree size is not a uint64');
  // §Note text 3: standard base64 of the 32-byte root hash.
  const rootHash = fromB64Canonical(rootText);
  if (!rootHash || rootHash.length !== 32) throw checkpointError('root hash is not base64 of 32 bytes');
  return { origin, size, rootHash, extensions };
}

/** Formats and signs a checkpoint. */
export function signCheckpoint(cp: CheckpointInput, signers: NoteSigner | readonly NoteSigner[]): string {
  return signNote(formatCheckpoint(cp), signers);
}

export interface OpenCheckpointOptions extends OpenNoteOptions {
  /** When set, the checkpoint origin must equal it. */
  readonly origin?: string;
}

/** Opens a signed checkpoint note and parses its text. */
export function openCheckpoint(
  note: string | Uint8Array,
  verifiers: readonly NoteVerifier[],
  opts: OpenCheckpointOptions = {},
): { checkpoint: Checkpoint; note: OpenedNote } {
  const opened = openNote(note, verifiers, opts);
  const checkpoint = parseCheckpoint(opened.text);
  if (opts.origin !== undefined && checkpoint.origin !== opts.origin) {
    throw new NoteError('ORIGIN_MISMATCH', `checkpoint origin is not ${JSON.stringify(opts.origin)}`);
  }
  return { checkpoint, note: opened };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function checkpointError(message: string): NoteError {
  return new NoteError('MALFORMED_CHECKPOINT', message);
}

function assertCheckpointChars(text: string): void {
  try {
    checkNoteChars(text);
  } catch {
    throw checkpointError('checkpoint contains a control character or invalid Unicode');
  }
}

function assertKeyName(name: string): void {
  if (!isValidKeyName(name)) throw new NoteError('INVALID_KEY_NAME', `invalid key name ${JSON.stringify(name)}`);
}

/** Standard padded base64 that re-encodes to the same string (no stray trailing bits). */
function fromB64Canonical(s: string): Uint8Array | null {
  if (!B64_RE.test(s)) return null;
  const out = decodeB64(s);
  return toB64(out) === s ? out : null;
}

/** No lone UTF-16 surrogates, so the string has a UTF-8 encoding. */
function wellFormed(s: string): boolean {
  return !/\p{Surrogate}/u.test(s);
}

function readU32(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

function u32(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new NoteError('MALFORMED_NOTE', 'key id is not a uint32');
  return new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}
