// The `revocation` check of the verifier (docs/protocol.md §2.11, §3): the list's signature, the
// entries that hit this bundle, and the list's freshness (expiry against the verifier's clock,
// sequence against the trust state a verifier kept from the lists it accepted before). Pure.
import { z } from 'zod';
import { digestOf } from './canonical.ts';
import { type Jwks, verifyObject } from './keys.ts';
import { Digest, utcTimestamp, type VerifyCode } from './schemas.ts';
import { REVOCATIONS_TYPE, type RevocationListBody, type SignedRevocationList, TrustMaterial } from './trust.ts';
import { u64String } from './u64.ts';

export const TRUST_STATE_TYPE = 'meterproof/trust-state/v1';

/** What a verifier keeps between runs: the newest revocation list it accepted (docs/protocol.md §2.13). */
export const TrustState = z.strictObject({
  type: z.literal(TRUST_STATE_TYPE),
  revocations: z
    .strictObject({ sequence: u64String, entries_digest: Digest, issued_at: utcTimestamp, expires_at: utcTimestamp })
    .optional(),
});
export type TrustState = z.infer<typeof TrustState>;

/** A check outcome: a failure with its code, a skip with its reason, or nothing (pass). */
export type RevocationOutcome = { readonly code: VerifyCode; readonly message: string } | { readonly skipped: string } | undefined;

export interface RevocationContext {
  /** The verifier's clock: a list is refused from its `expires_at` on. */
  readonly now: Date;
  /** Trust state from earlier runs; a list older than the one it records is refused. */
  readonly previous?: unknown;
  /** Under strict a list without expiry (v1) fails; under standard its freshness is skipped. */
  readonly strict: boolean;
}

/** An object signed by a key that a revocation may hit: the statement, the proof statement. */
export interface SignedObject {
  readonly what: string;
  readonly key_id: string;
  /** The object's own signing time (its `issued_at`). */
  readonly issued_at: string;
}

const fail = (code: VerifyCode, message: string): RevocationOutcome => ({ code, message });

/** The digest of what the sequence number stands for: the entries, not the signing times. */
export function entriesDigest(list: RevocationListBody): string {
  return digestOf({ keys: list.keys, attestations: list.attestations });
}

function parseState(previous: unknown): TrustState | { code: VerifyCode; message: string } | undefined {
  if (previous === undefined) return undefined;
  const r = TrustState.safeParse(previous);
  return r.success ? r.data : { code: 'TRUST_MATERIAL_MISSING', message: `the trust state is not a ${TRUST_STATE_TYPE} object` };
}

// Only the current key (open validity window) may sign the list: a stolen, rotated-out key
// cannot produce an acceptable list that omits itself.
function authentic(rl: SignedRevocationList, jwks: Jwks): RevocationOutcome {
  const signer = jwks.keys.find((k) => k.kid === rl.key_id);
  if (!signer || signer.valid_until || !verifyObject(signer, rl.list, rl.signature)) {
    return fail('REVOCATION_LIST_INVALID', 'the revocation list is not signed by the current key of the JWKS');
  }
  return undefined;
}

function fresh(list: RevocationListBody, ctx: RevocationContext, prev: TrustState | undefined): RevocationOutcome {
  const seen = prev?.revocations;
  if (list.type !== REVOCATIONS_TYPE) {
    if (seen) return fail('REVOCATIONS_ROLLBACK', `a list without a sequence is older than the list of sequence ${seen.sequence} seen before`);
    if (ctx.strict) return fail('REVOCATIONS_NO_EXPIRY', `a ${list.type} list has no sequence and no expiry: its freshness cannot be judged`);
    return { skipped: `a ${list.type} list has no sequence and no expiry: its freshness is unknown` };
  }
  const expires = Date.parse(list.expires_at);
  if (expires <= Date.parse(list.issued_at)) return fail('REVOCATION_LIST_INVALID', 'the revocation list expires before it is issued');
  if (ctx.now.getTime() >= expires) return fail('REVOCATIONS_EXPIRED', `the revocation list expired at ${list.expires_at} (verifier time ${ctx.now.toISOString()})`);
  if (seen) {
    const seq = BigInt(list.sequence);
    const before = BigInt(seen.sequence);
    if (seq < before) return fail('REVOCATIONS_ROLLBACK', `revocation list sequence ${seq} is older than the ${before} seen before`);
    if (seq === before && entriesDigest(list) !== seen.entries_digest) {
      return fail('REVOCATIONS_ROLLBACK', `revocation list sequence ${seq} has other entries than the list of that sequence seen before`);
    }
  }
  return undefined;
}

/**
 * The `revocation` check: the list is authentic; no signed object is signed (by its own
 * `issued_at`) at or after its key's `revoked_from`; the statement's digest is not listed; the
 * list is fresh. A revocation in an authentic list counts even when the list is stale.
 */
export function checkRevocations(trust: TrustMaterial, signed: readonly SignedObject[], statementDigest: string, ctx: RevocationContext): RevocationOutcome {
  const prev = parseState(ctx.previous);
  if (prev && 'code' in prev) return prev;
  const rl = trust.revocations;
  if (!rl) {
    if (prev?.revocations) return fail('REVOCATIONS_ROLLBACK', `no revocation list, but the list of sequence ${prev.revocations.sequence} was seen before`);
    return { skipped: 'no revocation list in the trust material' };
  }
  const bad = authentic(rl, trust.jwks);
  if (bad) return bad;
  for (const k of rl.list.keys) {
    const from = Date.parse(k.revoked_from);
    const hit = signed.find((o) => o.key_id === k.key_id && Date.parse(o.issued_at) >= from);
    if (hit) return fail('REVOKED', `${hit.what} signed at ${hit.issued_at} by key ${k.key_id}, revoked from ${k.revoked_from}: ${k.reason}`);
  }
  const listed = rl.list.attestations.find((a) => a.statement_digest === statementDigest);
  if (listed) return fail('REVOKED', `attestation revoked at ${listed.revoked_at}: ${listed.reason}`);
  return fresh(rl.list, ctx, prev);
}

/**
 * The trust state to keep after these trust material: the state recording their revocation list
 * when that list is authentic, fresh at `now` and not older than `previous`; otherwise
 * `undefined` (keep the previous state). The same rules as `checkRevocations`, minus the bundle.
 */
export function advanceTrustState(trustInput: unknown, previous: unknown, now: Date = new Date()): TrustState | undefined {
  const trust = TrustMaterial.safeParse(trustInput);
  const prev = parseState(previous);
  if (!trust.success || (prev && 'code' in prev)) return undefined;
  const rl = trust.data.revocations;
  if (!rl || rl.list.type !== REVOCATIONS_TYPE) return undefined;
  if (authentic(rl, trust.data.jwks) || fresh(rl.list, { now, strict: true }, prev)) return undefined;
  const { sequence, issued_at, expires_at } = rl.list;
  return { type: TRUST_STATE_TYPE, revocations: { sequence, entries_digest: entriesDigest(rl.list), issued_at, expires_at } };
}
