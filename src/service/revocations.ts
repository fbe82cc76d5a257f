// Revocation (docs/protocol.md §2.11): signing keys from a point in time, single attestations with a reason.
// The list is signed with the current statement key and served at
// /.well-known/billing-revocations.json and in /v1/trust. Revoking the current key rotates first.
// Every change raises the list's sequence in its own transaction; the signed list is kept and
// signed again when the sequence or the key changes or half its lifetime has passed, so a
// served list always has at least half its lifetime left (docs/protocol.md §2.11).
import { and, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import { signObject } from '../core/keys.ts';
import { Digest, utcTimestamp } from '../core/schemas.ts';
import { REVOCATIONS_TYPE, type RevocationListBody, type SignedRevocationList } from '../core/trust.ts';
import { type Db, type Tx, schema } from '../db/index.ts';
import { ServiceError, zodIssues } from './errors.ts';
import type { KeyRing } from './keyring.ts';

export const RevokeKey = z.strictObject({
  key_id: z.string().min(1),
  revoked_from: utcTimestamp.optional(),
  reason: z.string().min(1).max(1024),
});
export const RevokeAttestation = z.strictObject({
  attestation_id: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  statement_digest: Digest.optional(),
  reason: z.string().min(1).max(1024),
});

/** Default `expires_at − issued_at` of a served list (REVOCATION_LIST_LIFETIME_MS). */
export const DEFAULT_REVOCATION_LIST_LIFETIME_MS = 24 * 3600 * 1000;

const state = schema.revocationListState;

/** Raise the sequence; the row lock orders concurrent changes, so sequences follow commits. */
async function nextSequence(tx: Tx): Promise<void> {
  await tx.update(state).set({ sequence: sql`${state.sequence} + 1` }).where(eq(state.id, 1));
}

export class RevocationService {
  private cached: { sequence: bigint; keyId: string; renewAt: number; signed: SignedRevocationList } | null = null;

  constructor(
    private readonly db: Db,
    private readonly keys: KeyRing,
    private readonly clock: () => Date = () => new Date(),
    private readonly lifetimeMs = DEFAULT_REVOCATION_LIST_LIFETIME_MS,
  ) {}

  async revokeKey(body: unknown) {
    const r = RevokeKey.safeParse(body);
    if (!r.success) throw new ServiceError(400, 'INVALID_REVOCATION', 'expected {key_id, revoked_from?, reason}', zodIssues(r.error, ''));
    if (!(await this.keys.isKnown(r.data.key_id))) throw new ServiceError(404, 'NOT_FOUND', `signing key ${r.data.key_id} is not known`);
    const now = this.clock();
    const from = r.data.revoked_from ? new Date(r.data.revoked_from) : now;
    // Never keep signing with a revoked key: rotate away from it first.
    let rotatedTo: string | null = null;
    if ((await this.keys.current(now, true)).keyId === r.data.key_id) rotatedTo = (await this.keys.rotate(now)).keyId;
    await this.db.transaction(async (tx) => {
      await tx
        .insert(schema.revocations)
        .values({ kind: 'key', subject: r.data.key_id, effectiveAt: from, reason: r.data.reason })
        .onConflictDoUpdate({ target: [schema.revocations.kind, schema.revocations.subject], set: { effectiveAt: from, reason: r.data.reason } });
      await nextSequence(tx);
    });
    return { key_id: r.data.key_id, revoked_from: from.toISOString(), reason: r.data.reason, rotated_to: rotatedTo };
  }

  async revokeAttestation(body: unknown) {
    const r = RevokeAttestation.safeParse(body);
    if (!r.success || (!r.data.attestation_id && !r.data.statement_digest)) {
      throw new ServiceError(400, 'INVALID_REVOCATION', 'expected {attestation_id | statement_digest, reason}', r.success ? [] : zodIssues(r.error, ''));
    }
    const digest = r.data.statement_digest ?? `sha256:${r.data.attestation_id}`;
    // the id is the statement digest's hex (primary key)
    const [row] = await this.db.select({ id: schema.attestations.id }).from(schema.attestations).where(eq(schema.attestations.id, digest.slice('sha256:'.length)));
    if (!row) throw new ServiceError(404, 'NOT_FOUND', 'attestation not found');
    const now = this.clock();
    // revoked once: revoking again answers the stored revocation (its time and reason), as the list has it
    const stored = await this.db.transaction(async (tx) => {
      const added = await tx
        .insert(schema.revocations)
        .values({ kind: 'attestation', subject: digest, effectiveAt: now, reason: r.data.reason })
        .onConflictDoNothing()
        .returning();
      if (added.length) await nextSequence(tx);
      return added[0] ?? (await tx.select().from(schema.revocations).where(and(eq(schema.revocations.kind, 'attestation'), eq(schema.revocations.subject, digest))))[0]!;
    });
    return { statement_digest: digest, revoked_at: stored.effectiveAt.toISOString(), reason: stored.reason };
  }

  /** The current list, signed with the current statement key. */
  async signedList(): Promise<SignedRevocationList> {
    const key = await this.keys.current();
    const now = this.clock();
    const [head] = await this.db.select({ sequence: state.sequence }).from(state);
    const c = this.cached;
    if (c && head && c.sequence === head.sequence && c.keyId === key.keyId && now.getTime() < c.renewAt) return c.signed;
    // the entries and their sequence from one statement, so from one snapshot
    const r = schema.revocations;
    const rows = await this.db
      .select({ sequence: state.sequence, kind: r.kind, subject: r.subject, effectiveAt: r.effectiveAt, reason: r.reason })
      .from(state)
      .leftJoin(r, sql`true`)
      .orderBy(r.createdAt, r.subject);
    const sequence = rows[0]?.sequence;
    if (sequence === undefined) throw new Error('revocation_list_state has no row (migration 0008 not applied)');
    const entries = rows.filter((x) => x.kind !== null);
    const list: RevocationListBody = {
      type: REVOCATIONS_TYPE,
      sequence: sequence.toString(),
      issued_at: now.toISOString(),
      expires_at: new Date(now.getTime() + this.lifetimeMs).toISOString(),
      keys: entries.filter((x) => x.kind === 'key').map((x) => ({ key_id: x.subject!, revoked_from: x.effectiveAt!.toISOString(), reason: x.reason! })),
      attestations: entries.filter((x) => x.kind === 'attestation').map((x) => ({ statement_digest: x.subject!, revoked_at: x.effectiveAt!.toISOString(), reason: x.reason! })),
    };
    const signed = { list, key_id: key.keyId, signature: signObject(key, list) };
    this.cached = { sequence, keyId: key.keyId, renewAt: now.getTime() + this.lifetimeMs / 2, signed };
    return signed;
  }
}
