// Trust material: everything a third party needs to verify offline (docs/protocol.md §2.12), and
// the signed revocation list (§2.11). The shape `GET /v1/trust` returns and `meterproof verify --trust` reads.
import { z } from 'zod';
import { BINDING_VERSION_V2, Digest, FieldElement, ident, utcTimestamp } from './schemas.ts';
import { Jwks, PublicJwk } from './keys.ts';
import { u64String } from './u64.ts';

/** The current revocation list format: sequenced and expiring (docs/protocol.md §2.11). */
export const REVOCATIONS_TYPE = 'meterproof/revocations/v2';
/** The earlier format, without `sequence` and `expires_at`: still parsed, never produced. */
export const REVOCATIONS_TYPE_V1 = 'meterproof/revocations/v1';

const revokedEntries = {
  /** Signatures by these keys on objects (statements, proof statements) issued at or after `revoked_from` are not trusted. */
  keys: z.array(z.strictObject({ key_id: z.string().min(1), revoked_from: utcTimestamp, reason: z.string().max(1024) })),
  attestations: z.array(z.strictObject({ statement_digest: Digest, revoked_at: utcTimestamp, reason: z.string().max(1024) })),
};

export const RevocationListBody = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal(REVOCATIONS_TYPE),
    /** Strictly increasing with every change of the entries; equal sequence ⇒ equal entries. */
    sequence: u64String,
    issued_at: utcTimestamp,
    /** A verifier refuses the list from this instant on. */
    expires_at: utcTimestamp,
    ...revokedEntries,
  }),
  z.strictObject({ type: z.literal(REVOCATIONS_TYPE_V1), issued_at: utcTimestamp, ...revokedEntries }),
]);
export type RevocationListBody = z.infer<typeof RevocationListBody>;

/** Signed like a statement: Ed25519 over the canonical `list`, by a key of the JWKS. */
export const SignedRevocationList = z.strictObject({
  list: RevocationListBody,
  key_id: z.string().min(1),
  signature: z.string().min(1),
});
export type SignedRevocationList = z.infer<typeof SignedRevocationList>;

/** A published tariff version's commitment. Without `binding` it is the unsalted commitment of
 *  bn128-poseidon8-v1; with binding bn128-poseidon8-v2 the salted one v2 proofs are checked against. */
export const PublishedTariff = z.strictObject({
  tariff_id: ident,
  tariff_version: ident,
  binding: z.literal(BINDING_VERSION_V2).optional(),
  tariff_commitment: FieldElement,
});
export type PublishedTariff = z.infer<typeof PublishedTariff>;

/** One consumer of a tenant and its keys (current, rotated out, revoked: each with its window). */
export const ConsumerKeys = z.strictObject({ tenant_id: ident, consumer_id: ident, keys: z.array(PublicJwk).max(100) });
export type ConsumerKeys = z.infer<typeof ConsumerKeys>;

export const TrustMaterial = z.strictObject({
  jwks: Jwks,
  /** snarkjs Groth16 verification key JSON. Optional: the open verifier pins the key of each
   *  binding version by digest and checks proofs under its own copy; a key here must be a pinned one. */
  verification_key: z.record(z.string(), z.unknown()).optional(),
  /** Verification keys by binding version (same rule: each must be the pinned key). */
  verification_keys: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  log: z
    .strictObject({
      /** C2SP signed-note verifier key `<name>+<hex id>+<base64 key>`. */
      verifier_key: z.string().min(1),
      /** A checkpoint note the verifier already trusts (for consistency checks). */
      trusted_checkpoint: z.string().optional(),
      /** Latest checkpoint as published (informational; not trusted by itself). */
      latest_checkpoint: z.string().optional(),
    })
    .optional(),
  revocations: SignedRevocationList.optional(),
  /** Tariff commitments of published versions: lets a redacted bundle's tariff be identified. */
  tariffs: z.array(PublishedTariff).optional(),
  /** Registered consumers' public keys (bilateral metering): what consumer PoPs and
   *  countersignatures are checked against. A key signs within [valid_from, valid_until). */
  consumers: z.array(ConsumerKeys).max(100_000).optional(),
  /** Tenants whose statements issued at or after `since` must carry a consumer PoP. */
  consumer_pop_required: z.array(z.strictObject({ tenant_id: ident, since: utcTimestamp, until: utcTimestamp.optional() })).max(100_000).optional(),
});
export type TrustMaterial = z.infer<typeof TrustMaterial>;
