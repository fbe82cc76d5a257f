// Settlement adjustments (docs/protocol.md §5.7): corrections are never made by rewriting a chain
// or a settlement. An adjustment is a signed line, a credit or a debit in exact integer micros,
// that names the attestations it corrects and why; the tenant's next settlement run claims it
// (once) and adds it to its statement. Pure: the caller signs with the service key.
import { z } from 'zod';
import { Digest, ident, identInput, utcTimestamp } from './schemas.ts';
import { u64Input, u64String } from './u64.ts';

export const ADJUSTMENT_TYPE = 'meterproof/settlement-adjustment/v1';
export const ADJUSTMENT_KINDS = ['credit', 'debit'] as const;
export type AdjustmentKind = (typeof ADJUSTMENT_KINDS)[number];
export const MAX_ADJUSTMENT_ATTESTATIONS = 1000;
/** The settlement_claims key of an adjustment (attestation claims are keyed by bare hex). */
export const ADJUSTMENT_CLAIM_PREFIX = 'adjustment:';

const positive = (u64: z.ZodType<string, unknown>) => u64.refine((v) => v !== '0', 'an adjustment amount is above 0');

/** The signed adjustment (its digest: sha256 over its RFC 8785 bytes). */
export const Adjustment = z.strictObject({
  type: z.literal(ADJUSTMENT_TYPE),
  tenant_id: ident,
  kind: z.enum(ADJUSTMENT_KINDS),
  amount_micros: positive(u64String),
  currency: z.string().regex(/^[A-Z]{3}$/),
  /** Statement digests of the attestations it corrects, sorted, no duplicates. */
  attestation_ids: z.array(Digest).min(1).max(MAX_ADJUSTMENT_ATTESTATIONS),
  reason: z.string().min(1).max(1024),
  issued_at: utcTimestamp,
  key_id: z.string().min(1),
});
export type Adjustment = z.infer<typeof Adjustment>;

/** POST /v1/settlements/adjustments. */
export const AdjustmentInput = z.strictObject({
  tenant_id: identInput,
  kind: z.enum(ADJUSTMENT_KINDS),
  amount_micros: positive(u64Input),
  currency: z.string().regex(/^[A-Z]{3}$/, 'expected an ISO 4217 currency code'),
  attestation_ids: z.array(Digest).min(1).max(MAX_ADJUSTMENT_ATTESTATIONS),
  reason: z.string().trim().min(1).max(1024),
});

/** What an adjustment says, from its input: everything it signs but the key id and the issue
 *  time. Its attestation ids are a set (sorted, once each). Two requests with the same terms ask
 *  for the same adjustment (an Idempotency-Key retry is recognized by them). */
export function adjustmentTerms(input: z.output<typeof AdjustmentInput>) {
  return {
    type: ADJUSTMENT_TYPE,
    tenant_id: input.tenant_id,
    kind: input.kind,
    amount_micros: input.amount_micros,
    currency: input.currency,
    attestation_ids: [...new Set(input.attestation_ids)].sort(),
    reason: input.reason,
  };
}

/** The unsigned adjustment from its terms, the key id and the issue time. */
export function buildAdjustment(terms: ReturnType<typeof adjustmentTerms>, keyId: string, issuedAt: string): Adjustment {
  return Adjustment.parse({ ...terms, issued_at: issuedAt, key_id: keyId });
}
