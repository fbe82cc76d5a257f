// The phase-2 ceremony transcript (docs/ceremony.md): what it holds, how a contributor signs
// their entry, and the check of a transcript against the facts recomputed from the files (the
// r1cs, the ptau and the zkey chain that snarkjs re-verifies). Pure: no file or snarkjs access.
//
// A transcript is a header (circuit, ptau, initial zkey, announced beacon source) followed by
// one entry per contribution and finally the beacon entry. Each entry names the sha256 of the
// zkey it started from and the one it produced, and `prev`, the sha256 of the RFC 8785 form
// of the record before it (the header for the first), so a contributor's signature covers the
// whole history they built on, including the announced beacon source.
import { z } from 'zod';
import { fromB64Url, sha256Hex, toB64Url } from './bytes.ts';
import { canonicalBytes } from './canonical.ts';
import { ed25519Verify } from './ed25519.ts';
import { jwkThumbprint } from './keys.ts';

export const TRANSCRIPT_FORMAT = 'meterproof-ceremony-transcript/1';
/** Domain separation of contributor signatures. */
export const SIGNATURE_CONTEXT = 'meterproof ceremony contribution v1';
/** snarkjs stores at most 64 characters of a contribution name; one line, printable. */
export const NAME_PATTERN = /^[\x20-\x7e]{1,64}$/;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');
const hex128 = z.string().regex(/^[0-9a-f]{128}$/, 'expected 128 lowercase hex digits');
const time = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/, 'expected a UTC timestamp');

export const Signer = z.strictObject({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: z.string().refine((s) => fromB64Url(s)?.length === 32, 'expected 32 bytes in base64url'),
  kid: z.string().min(1),
});
export type Signer = z.infer<typeof Signer>;

export const Header = z.object({
  format: z.literal(TRANSCRIPT_FORMAT),
  /** Free label, e.g. the binding version. */
  label: z.string().max(200).nullable(),
  circuit: z.object({
    r1cs_sha256: hex64,
    /** snarkjs "circuit hash" (blake2b-512 of the initial zkey's setup), hex. */
    circuit_hash: hex128,
    constraints: z.number().int().nonnegative(),
    public_inputs: z.number().int().nonnegative(),
    outputs: z.number().int().nonnegative(),
  }),
  ptau: z.object({ sha256: hex64 }),
  init: z.object({ zkey_sha256: hex64, time }),
  /** The public random value the beacon must be, named before contributions open (docs/ceremony.md). */
  beacon_source: z.string().min(1).max(500),
});
export type Header = z.infer<typeof Header>;

const entryFields = {
  index: z.number().int().positive(),
  name: z.string().regex(NAME_PATTERN, 'expected 1-64 printable ASCII characters'),
  contribution_hash: hex128,
  input_zkey_sha256: hex64,
  output_zkey_sha256: hex64,
  time,
  /** sha256 (hex) of the RFC 8785 bytes of the record before this one (the header for the first). */
  prev: hex64,
};

export const Contribution = z.strictObject({
  ...entryFields,
  kind: z.literal('contribution'),
  signer: Signer.optional(),
  /** Ed25519 over the RFC 8785 bytes of { context, entry without `signature` }, base64url. */
  signature: z.string().optional(),
});
export type Contribution = z.infer<typeof Contribution>;

export const Beacon = z.strictObject({
  ...entryFields,
  kind: z.literal('beacon'),
  /** The public value, as announced in `beacon_source` (hex, what snarkjs hashes). */
  value: z.string().regex(/^([0-9a-f]{2}){1,255}$/, 'expected hex bytes (1-255)'),
  /** snarkjs iterates the beacon hash 2^iterations_exp times. */
  iterations_exp: z.number().int().min(10).max(63),
  source: z.string().min(1).max(500),
});
export type Beacon = z.infer<typeof Beacon>;

export const Transcript = Header.extend({
  contributions: z.array(Contribution),
  beacon: Beacon.nullable(),
});
export type Transcript = z.infer<typeof Transcript>;

/** The header fields only (a transcript may carry more, e.g. the build record of `npm run ceremony`). */
export function headerOf(t: Transcript): Header {
  return { format: t.format, label: t.label, circuit: t.circuit, ptau: t.ptau, init: t.init, beacon_source: t.beacon_source };
}

/** `prev` for the entry after `record` (a header or an entry). */
export const recordDigest = (record: Header | Contribution | Beacon): string => sha256Hex(canonicalBytes(record));

/** The bytes a contributor signs: their entry without the signature, under a fixed context. */
export function signedBytes(entry: Omit<Contribution, 'signature'>): Uint8Array {
  const { signature: _s, ...unsigned } = entry as Contribution;
  return canonicalBytes({ context: SIGNATURE_CONTEXT, entry: unsigned });
}

export function signerFor(publicKey: Uint8Array): Signer {
  return { kty: 'OKP', crv: 'Ed25519', x: toB64Url(publicKey), kid: jwkThumbprint(publicKey) };
}

/** Entry digest chain: where the next step must start. */
export function lastOutput(t: Transcript): string {
  return t.beacon?.output_zkey_sha256 ?? t.contributions.at(-1)?.output_zkey_sha256 ?? t.init.zkey_sha256;
}

export function nextPrev(t: Transcript): string {
  const last = t.beacon ?? t.contributions.at(-1);
  return recordDigest(last ?? headerOf(t));
}

/** A contribution as snarkjs recomputes it from the zkey (`zkey verify`). */
export interface ZkeyContribution {
  readonly name: string;
  /** blake2b-512 of the contribution's public key, hex. */
  readonly hash: string;
  readonly beacon?: { readonly value: string; readonly iterationsExp: number };
}

/** What the verifier recomputed from the files. */
export interface CeremonyFacts {
  readonly r1csSha256: string;
  readonly ptauSha256: string;
  /** The zkey `snarkjs zkey new` makes from this r1cs and ptau (deterministic). */
  readonly initZkeySha256: string;
  readonly circuitHash: string;
  readonly finalZkeySha256: string;
  /** snarkjs verified the final zkey as a phase-2 chain from the initial one. */
  readonly chainValid: boolean;
  readonly chainError?: string;
  readonly zkeyContributions: readonly ZkeyContribution[];
  /** Both given: the committed verification key and the one exported from the final zkey. */
  readonly vkey?: { readonly committed: unknown; readonly exported: unknown };
  /** A beacon value the checker looked up themselves (hex). */
  readonly expectedBeacon?: string;
  /** Accept a chain that has no beacon yet (checking a zkey before contributing to it). */
  readonly inProgress?: boolean;
}

export const CEREMONY_ERROR_CODES = [
  'TRANSCRIPT_MALFORMED',
  'CIRCUIT_MISMATCH',
  'PTAU_MISMATCH',
  'INIT_MISMATCH',
  'ZKEY_INVALID',
  'CHAIN_BROKEN',
  'PREV_MISMATCH',
  'CONTRIBUTION_MISMATCH',
  'SIGNATURE_INVALID',
  'CONTRIBUTION_MISSING',
  'BEACON_MISSING',
  'BEACON_MISMATCH',
  'FINAL_ZKEY_MISMATCH',
  'VKEY_MISMATCH',
] as const;
export type CeremonyErrorCode = (typeof CEREMONY_ERROR_CODES)[number];

export interface CeremonyFailure {
  readonly code: CeremonyErrorCode;
  readonly reason: string;
}

export interface CeremonyOk {
  readonly contributions: number;
  readonly signed: number;
  readonly beacon: boolean;
}

const short = (h: string) => `${h.slice(0, 16)}…`;

/** Parses a transcript; a malformed one is a failure naming the first bad field. */
export function parseTranscript(input: unknown): Transcript | CeremonyFailure {
  const r = Transcript.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  return { code: 'TRANSCRIPT_MALFORMED', reason: `transcript ${issue.path.join('.') || '(root)'}: ${issue.message}` };
}

export function isFailure(x: unknown): x is CeremonyFailure {
  return typeof x === 'object' && x !== null && 'code' in x && 'reason' in x;
}

/** Every check of `meterproof ceremony verify`, in order; the first mismatch is returned. */
export function checkTranscript(t: Transcript, f: CeremonyFacts): CeremonyOk | CeremonyFailure {
  const fail = (code: CeremonyErrorCode, reason: string): CeremonyFailure => ({ code, reason });
  if (f.r1csSha256 !== t.circuit.r1cs_sha256) return fail('CIRCUIT_MISMATCH', `the r1cs (sha256 ${short(f.r1csSha256)}) is not the transcript's (${short(t.circuit.r1cs_sha256)})`);
  if (f.ptauSha256 !== t.ptau.sha256) return fail('PTAU_MISMATCH', `the ptau (sha256 ${short(f.ptauSha256)}) is not the transcript's (${short(t.ptau.sha256)})`);
  if (f.initZkeySha256 !== t.init.zkey_sha256 || f.circuitHash !== t.circuit.circuit_hash) {
    return fail('INIT_MISMATCH', `the initial zkey made from this r1cs and ptau (sha256 ${short(f.initZkeySha256)}) is not the transcript's (${short(t.init.zkey_sha256)})`);
  }
  if (!f.chainValid) return fail('ZKEY_INVALID', `snarkjs zkey verify rejects the zkey against this r1cs and ptau${f.chainError ? `: ${f.chainError}` : ''}`);

  const entries: (Contribution | Beacon)[] = [...t.contributions, ...(t.beacon ? [t.beacon] : [])];
  let input = t.init.zkey_sha256;
  let prev = recordDigest(headerOf(t));
  for (const [i, e] of entries.entries()) {
    const what = `${e.kind} ${i + 1} (${e.name})`;
    if (e.index !== i + 1) return fail('CHAIN_BROKEN', `${what} has index ${e.index}, expected ${i + 1}`);
    if (e.input_zkey_sha256 !== input) {
      return fail('CHAIN_BROKEN', `${what} starts from zkey sha256 ${short(e.input_zkey_sha256)} but the step before it produced ${short(input)} (an entry dropped or reordered)`);
    }
    if (e.prev !== prev) return fail('PREV_MISMATCH', `${what}: prev does not match the record before it (the transcript was edited before this entry)`);
    const z = f.zkeyContributions[i];
    if (!z) return fail('CONTRIBUTION_MISMATCH', `${what} is not in the zkey, which holds ${f.zkeyContributions.length} contribution(s)`);
    if (z.hash !== e.contribution_hash) return fail('CONTRIBUTION_MISMATCH', `${what}: contribution hash ${short(e.contribution_hash)} differs from the zkey's contribution ${i + 1} (${z.name}) ${short(z.hash)}`);
    if (z.name !== e.name) return fail('CONTRIBUTION_MISMATCH', `${what}: the zkey names contribution ${i + 1} "${z.name}"`);
    if (e.kind === 'contribution') {
      if (z.beacon) return fail('CONTRIBUTION_MISMATCH', `${what}: the zkey's contribution ${i + 1} is a beacon`);
      if (e.signature !== undefined || e.signer !== undefined) {
        const pub = e.signer ? fromB64Url(e.signer.x) : null;
        const sig = e.signature ? fromB64Url(e.signature) : null;
        const ok = !!pub && !!sig && !!e.signer && jwkThumbprint(pub) === e.signer.kid && ed25519Verify(pub, signedBytes(e), sig);
        if (!ok) return fail('SIGNATURE_INVALID', `${what}: the contributor's Ed25519 signature does not verify`);
      }
    } else {
      if (i !== entries.length - 1) return fail('CHAIN_BROKEN', `${what} is not the last entry`);
      if (!z.beacon) return fail('BEACON_MISMATCH', `${what}: the zkey's contribution ${i + 1} is not a beacon`);
      if (e.source !== t.beacon_source) return fail('BEACON_MISMATCH', `the beacon names source "${e.source}", the transcript announced "${t.beacon_source}"`);
      if (z.beacon.value !== e.value) return fail('BEACON_MISMATCH', `the zkey's beacon used value ${z.beacon.value}, the transcript records ${e.value}`);
      if (z.beacon.iterationsExp !== e.iterations_exp) return fail('BEACON_MISMATCH', `the zkey's beacon used 2^${z.beacon.iterationsExp} iterations, the transcript records 2^${e.iterations_exp}`);
    }
    input = e.output_zkey_sha256;
    prev = recordDigest(e);
  }
  const extra = f.zkeyContributions[entries.length];
  if (extra) return fail('CONTRIBUTION_MISSING', `the zkey holds contribution ${entries.length + 1} (${extra.name}) that the transcript does not record`);
  if (!t.beacon && !f.inProgress) return fail('BEACON_MISSING', 'the transcript has no beacon entry (the ceremony is not finished)');
  if (t.beacon && f.expectedBeacon !== undefined && f.expectedBeacon.toLowerCase() !== t.beacon.value) {
    return fail('BEACON_MISMATCH', `the beacon value ${t.beacon.value} is not the announced public value ${f.expectedBeacon.toLowerCase()}`);
  }
  if (f.finalZkeySha256 !== input) return fail('FINAL_ZKEY_MISMATCH', `the zkey (sha256 ${short(f.finalZkeySha256)}) is not the last one in the transcript (${short(input)})`);
  if (f.vkey && canonicalOrNull(f.vkey.committed) !== canonicalOrNull(f.vkey.exported)) {
    return fail('VKEY_MISMATCH', 'the verification key is not the one exported from the final zkey');
  }
  return { contributions: t.contributions.length, signed: t.contributions.filter((c) => c.signature).length, beacon: t.beacon !== null };
}

function canonicalOrNull(v: unknown): string | null {
  try {
    return sha256Hex(canonicalBytes(v));
  } catch {
    return null;
  }
}
