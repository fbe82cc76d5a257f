// Revocation (DESIGN §7): signing keys from a point in time, single attestations with a reason.
// The list is signed with the current statement key and served at
// /.well-known/billing-revocations.json and in /v1/trust. Revoking the current key rotates first.
import { eq } from 'drizzle-orm';
import { z } from 'zod';
import { signObject } from '../core/keys.ts';
import { Digest, utcTimestamp } from '../core/schemas.ts';
import { REVOCATIONS_TYPE, type RevocationListBody, type SignedRevocationList } from '../core/trust.ts';
import { type Db, schema } from '../db/index.ts';
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

export class RevocationService {
  constructor(
    private readonly db: Db,
    private readonly keys: KeyRing,
    private readonly clock: () => Date = () => new Date(),
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
    await this.db
      .insert(schema.revocations)
      .values({ kind: 'key', subject: r.data.key_id, effectiveAt: from, reason: r.data.reason })
      .onConflictDoUpdate({ target: [schema.revocations.kind, schema.revocations.subject], set: { effectiveAt: from, reason: r.data.reason } });
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
    await this.db.insert(schema.revocations).values({ kind: 'attestation', subject: digest, effectiveAt: now, reason: r.data.reason }).onConflictDoNothing();
    return { statement_digest: digest, revoked_at: now.toISOString(), reason: r.data.reason };
  }

  /** The current list, signed with the current statement key. */
  async signedList(): Promise<SignedRevocationList> {
    const rows = await this.db.select().from(schema.revocations).orderBy(schema.revocations.createdAt, schema.revocations.subject);
    const list: RevocationListBody = {
      type: REVOCATIONS_TYPE,
      issued_at: this.clock().toISOString(),
      keys: rows.filter((r) => r.kind === 'key').map((r) => ({ key_id: r.subject, revoked_from: r.effectiveAt.toISOString(), reason: r.reason })),
      attestations: rows.filter((r) => r.kind === 'attestation').map((r) => ({ statement_digest: r.subject, revoked_at: r.effectiveAt.toISOString(), reason: r.reason })),
    };
    const key = await this.keys.current();
    return { list, key_id: key.keyId, signature: signObject(key, list) };
  }
}
