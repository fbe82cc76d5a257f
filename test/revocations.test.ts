// Revocation list freshness and the revocation check (docs/protocol.md §2.11, §2.13, §3):
// expiry against the verifier's clock, rollback against the trust state, and revocation of
// each signed object by its own signing time. The same check runs behind the API and the CLI.
import { describe, expect, it } from 'vitest';
import { signObject, type SigningKey } from '../src/core/keys.ts';
import { advanceTrustState, entriesDigest, TRUST_STATE_TYPE, type TrustState } from '../src/core/revocations.ts';
import { PROOF_STATEMENT_TYPE, BINDING_VERSION, type FullBundle } from '../src/core/schemas.ts';
import { digestOf } from '../src/core/canonical.ts';
import { REVOCATIONS_TYPE, REVOCATIONS_TYPE_V1, type RevocationListBody, type TrustMaterial } from '../src/core/trust.ts';
import { verifyBundle, type VerifyOptions } from '../src/core/verify.ts';
import { keyA, keyB, pilotBundle, pilotBundleV1, trustFor } from './support/fixtures.ts';

const NOW = new Date('2026-12-05T12:00:00.000Z');
const HOUR = 3600_000;
const at = (ms: number) => new Date(NOW.getTime() + ms).toISOString();

type Entries = Pick<RevocationListBody, 'keys' | 'attestations'>;
const none: Entries = { keys: [], attestations: [] };

function listV2(sequence: string, entries: Entries = none, issuedAt = at(-HOUR), expiresAt = at(HOUR)): RevocationListBody {
  return { type: REVOCATIONS_TYPE, sequence, issued_at: issuedAt, expires_at: expiresAt, ...entries };
}

function trustWith(list: RevocationListBody | null, signer: SigningKey = keyA): TrustMaterial {
  const t = trustFor(keyA, keyB);
  return list ? { ...t, revocations: { list, key_id: signer.keyId, signature: signObject(signer, list) } } : t;
}

function stateAfter(trust: TrustMaterial, previous?: TrustState): TrustState {
  const s = advanceTrustState(trust, previous, NOW);
  if (!s) throw new Error('list not accepted');
  return s;
}

const { bundle } = pilotBundle(); // signed by keyA at 2026-05-29T12:00:01Z
const statementDigest = digestOf(bundle.attestation.statement);

/** A bn128-poseidon8-v1 bundle (v2 has no proof statement) with a proof statement signed by
 *  `key` at `issuedAt` (the Groth16 part is not looked at by the revocation check). */
const v1 = pilotBundleV1().bundle;
function withProof(key: SigningKey, issuedAt: string): FullBundle {
  const b = structuredClone(v1);
  const statement = {
    type: PROOF_STATEMENT_TYPE,
    binding: BINDING_VERSION,
    statement_digest: digestOf(v1.attestation.statement),
    binding_commitment: '1',
    charge_micros: b.attestation.statement.charge_micros,
    tariff_commitment: '2',
    issued_at: issuedAt,
    key_id: key.keyId,
  } as const;
  b.attestation.proof_status = 'proved';
  b.attestation.billing_proof = {
    statement,
    key_id: key.keyId,
    signature: signObject(key, statement),
    proof: { pi_a: ['1', '2', '1'], pi_b: [['1', '2'], ['3', '4'], ['1', '0']], pi_c: ['1', '2', '1'], protocol: 'groth16', curve: 'bn128' },
    blinding: '5',
  };
  return b;
}

async function revocation(b: unknown, trust: TrustMaterial, opts: VerifyOptions = {}) {
  const r = await verifyBundle(b, trust, { profile: 'standard', now: NOW, ...opts });
  return { check: r.checks.find((c) => c.name === 'revocation')!, valid: r.valid };
}

describe('revocation list freshness', () => {
  it('passes a fresh, authentic v2 list, with or without a trust state that is not newer', async () => {
    const trust = trustWith(listV2('3'));
    expect((await revocation(bundle, trust)).check).toMatchObject({ status: 'pass' });
    const r = await revocation(bundle, trust, { trustState: stateAfter(trust) });
    expect(r.check).toMatchObject({ status: 'pass' });
    expect(r.valid).toBe(true);
    // a newer list than the state records is accepted
    expect((await revocation(bundle, trustWith(listV2('4')), { trustState: stateAfter(trust) })).check.status).toBe('pass');
  });

  it('refuses an expired list against the verifier clock: REVOCATIONS_EXPIRED (at expires_at itself too)', async () => {
    for (const expiresAt of [at(-1), at(0)]) {
      const r = await revocation(bundle, trustWith(listV2('3', none, at(-HOUR), expiresAt)));
      expect(r.check).toMatchObject({ status: 'fail', code: 'REVOCATIONS_EXPIRED' });
      expect(r.valid).toBe(false);
    }
    // the same list is fine for a verifier whose clock is one millisecond earlier
    const list = listV2('3', none, at(-HOUR), at(0));
    expect((await revocation(bundle, trustWith(list), { now: new Date(NOW.getTime() - 1) })).check.status).toBe('pass');
    // and the strict profile gives the same code
    const strict = await verifyBundle(bundle, trustWith(list), { profile: 'strict', now: NOW });
    expect(strict.checks.find((c) => c.name === 'revocation')).toMatchObject({ status: 'fail', code: 'REVOCATIONS_EXPIRED' });
  });

  it('refuses a list that expires before it is issued', async () => {
    const r = await revocation(bundle, trustWith(listV2('3', none, at(HOUR), at(HOUR))));
    expect(r.check).toMatchObject({ status: 'fail', code: 'REVOCATION_LIST_INVALID' });
  });

  it('refuses a rollback to an older sequence: REVOCATIONS_ROLLBACK', async () => {
    const seen = stateAfter(trustWith(listV2('7')));
    const r = await revocation(bundle, trustWith(listV2('6')), { trustState: seen });
    expect(r.check).toMatchObject({ status: 'fail', code: 'REVOCATIONS_ROLLBACK' });
    expect(r.valid).toBe(false);
    // u64 compared as numbers, not strings ("10" > "9")
    const nine = stateAfter(trustWith(listV2('10')));
    expect((await revocation(bundle, trustWith(listV2('9')), { trustState: nine })).check.code).toBe('REVOCATIONS_ROLLBACK');
  });

  it('refuses the same sequence with other entries, accepts it re-signed with the same entries', async () => {
    const entries: Entries = { keys: [], attestations: [{ statement_digest: `sha256:${'ab'.repeat(32)}`, revoked_at: at(-2 * HOUR), reason: 'duplicate' }] };
    const seen = stateAfter(trustWith(listV2('5', entries)));
    const other = await revocation(bundle, trustWith(listV2('5')), { trustState: seen });
    expect(other.check).toMatchObject({ status: 'fail', code: 'REVOCATIONS_ROLLBACK' });
    const otherReason = { ...entries, attestations: [{ ...entries.attestations[0]!, reason: 'other' }] };
    expect((await revocation(bundle, trustWith(listV2('5', otherReason)), { trustState: seen })).check.code).toBe('REVOCATIONS_ROLLBACK');
    // re-signed later, by the other current key, with a new expiry: the same list content
    const resigned = listV2('5', entries, at(-60_000), at(24 * HOUR));
    const t = trustWith(resigned, keyB);
    expect((await revocation(bundle, t, { trustState: seen })).check.status).toBe('pass');
  });

  it('refuses a tampered sequence or expiry: the signature no longer verifies', async () => {
    const trust = trustWith(listV2('5'));
    for (const change of [{ sequence: '6' }, { sequence: '4' }, { expires_at: at(48 * HOUR) }]) {
      const t = { ...trust, revocations: { ...trust.revocations!, list: { ...trust.revocations!.list, ...change } } };
      expect((await revocation(bundle, t)).check, JSON.stringify(change)).toMatchObject({ status: 'fail', code: 'REVOCATION_LIST_INVALID' });
      expect(advanceTrustState(t, undefined, NOW)).toBeUndefined();
    }
    // a sequence that is not a u64 makes the trust material unusable
    const t = { ...trust, revocations: { ...trust.revocations!, list: { ...trust.revocations!.list, sequence: '-1' } } };
    const r = await verifyBundle(bundle, t, { profile: 'standard', now: NOW });
    expect(r.checks.find((c) => c.name === 'schema')).toMatchObject({ status: 'fail', code: 'TRUST_MATERIAL_MISSING' });
  });

  it('with a trust state, a missing list or a list without sequence (v1) is a rollback', async () => {
    const seen = stateAfter(trustWith(listV2('2')));
    expect((await revocation(bundle, trustWith(null), { trustState: seen })).check).toMatchObject({ status: 'fail', code: 'REVOCATIONS_ROLLBACK' });
    const v1: RevocationListBody = { type: REVOCATIONS_TYPE_V1, issued_at: at(-HOUR), ...none };
    expect((await revocation(bundle, trustWith(v1), { trustState: seen })).check).toMatchObject({ status: 'fail', code: 'REVOCATIONS_ROLLBACK' });
  });

  it('a v1 list (no sequence, no expiry): REVOCATIONS_NO_EXPIRY under strict, freshness skipped under standard, entries still apply', async () => {
    const v1: RevocationListBody = { type: REVOCATIONS_TYPE_V1, issued_at: '2026-06-01T00:00:00.000Z', ...none };
    const strict = await verifyBundle(bundle, trustWith(v1), { profile: 'strict', now: NOW });
    expect(strict.checks.find((c) => c.name === 'revocation')).toMatchObject({ status: 'fail', code: 'REVOCATIONS_NO_EXPIRY' });
    const std = await revocation(bundle, trustWith(v1));
    expect(std.check.status).toBe('skipped');
    expect(std.valid).toBe(true);
    const revoking: RevocationListBody = { ...v1, attestations: [{ statement_digest: statementDigest, revoked_at: v1.issued_at, reason: 'refund' }] };
    expect((await revocation(bundle, trustWith(revoking))).check).toMatchObject({ status: 'fail', code: 'REVOKED' });
    // nothing to record from a v1 list
    expect(advanceTrustState(trustWith(v1), undefined, NOW)).toBeUndefined();
  });

  it('an unusable trust state fails the check instead of being ignored', async () => {
    for (const bad of [{}, { type: TRUST_STATE_TYPE, revocations: { sequence: 'x' } }, 'state']) {
      const r = await revocation(bundle, trustWith(listV2('1')), { trustState: bad as TrustState });
      expect(r.check).toMatchObject({ status: 'fail', code: 'TRUST_MATERIAL_MISSING' });
    }
  });
});

describe('advanceTrustState', () => {
  it('records an accepted list and refuses to move back to an older, expired, forged or equivocating one', () => {
    const entries: Entries = { keys: [{ key_id: keyB.keyId, revoked_from: at(-HOUR), reason: 'leak' }], attestations: [] };
    const s1 = stateAfter(trustWith(listV2('4', entries)));
    expect(s1).toEqual({
      type: TRUST_STATE_TYPE,
      revocations: { sequence: '4', entries_digest: entriesDigest(listV2('4', entries)), issued_at: at(-HOUR), expires_at: at(HOUR) },
    });
    expect(advanceTrustState(trustWith(listV2('3')), s1, NOW)).toBeUndefined();
    expect(advanceTrustState(trustWith(listV2('4')), s1, NOW)).toBeUndefined();
    expect(advanceTrustState(trustWith(listV2('5', entries, at(-2 * HOUR), at(-1))), s1, NOW)).toBeUndefined();
    expect(advanceTrustState(trustWith(null), s1, NOW)).toBeUndefined();
    expect(advanceTrustState({ jwks: 'nope' }, s1, NOW)).toBeUndefined();
    // a rotated-out key cannot sign an acceptable list
    const rotated = trustWith(listV2('9'));
    rotated.jwks.keys[0] = { ...rotated.jwks.keys[0]!, valid_until: at(-HOUR) };
    expect(advanceTrustState(rotated, s1, NOW)).toBeUndefined();
    expect(stateAfter(trustWith(listV2('5', entries)), s1).revocations?.sequence).toBe('5');
  });
});

describe('revocation of each signed object by its own signing time', () => {
  const proofAt = '2026-05-29T12:05:00.000Z'; // the proof statement, five minutes after the statement
  const revokeKey = (key: SigningKey, from: string) => trustWith(listV2('1', { keys: [{ key_id: key.keyId, revoked_from: from, reason: 'compromise' }], attestations: [] }));

  it('fails a proof statement signed at or after its key was revoked, even when the statement was signed before', async () => {
    for (const from of ['2026-05-29T12:03:00.000Z', proofAt]) {
      const r = await revocation(withProof(keyB, proofAt), revokeKey(keyB, from));
      expect(r.check, from).toMatchObject({ status: 'fail', code: 'REVOKED' });
      expect(r.check.reason).toMatch(/^proof statement signed at/);
      expect(r.valid).toBe(false);
    }
    // the same key signed both: the statement is before revoked_from, the proof after it
    const same = await revocation(withProof(keyA, proofAt), revokeKey(keyA, '2026-05-29T12:03:00.000Z'));
    expect(same.check).toMatchObject({ status: 'fail', code: 'REVOKED' });
    expect(same.check.reason).toMatch(/^proof statement/);
  });

  it('keeps a proof statement signed before its key was revoked', async () => {
    for (const key of [keyA, keyB]) {
      const r = await revocation(withProof(key, proofAt), revokeKey(key, '2026-05-29T12:05:00.001Z'));
      expect(r.check, key.keyId).toMatchObject({ status: 'pass' });
    }
  });

  it('fails a statement signed at or after its key was revoked, keeps one signed before', async () => {
    const issued = bundle.attestation.statement.issued_at;
    const hit = await revocation(bundle, revokeKey(keyA, issued));
    expect(hit.check).toMatchObject({ status: 'fail', code: 'REVOKED' });
    expect(hit.check.reason).toMatch(/^statement signed at/);
    expect((await revocation(bundle, revokeKey(keyA, '2026-05-29T12:00:01.001Z'))).check.status).toBe('pass');
    // another key's revocation does not touch it
    expect((await revocation(bundle, revokeKey(keyB, '2026-01-01T00:00:00.000Z'))).check.status).toBe('pass');
  });
});
