// zod schemas of the protocol objects (docs/protocol.md §2). The inferred types are the public types.
// Two forms of each input object: a lenient *input* form (accepts safe JSON integers, fills
// documented defaults) and the strict *canonical* form found inside bundles (decimal strings,
// every default explicit, unknown fields rejected). `parseX` turns input into canonical form.
import { z } from 'zod';
import { u64Input, u64String } from './u64.ts';

export const OUTCOMES = ['success', 'error', 'timeout', 'partial'] as const;
export const ROUNDING_MODES = ['floor', 'ceil', 'half_up', 'half_even'] as const;
export const TARIFF_CLASSES = ['usage_linear', 'usage_graduated'] as const;
export const MAX_TIERS = 4;

const RFC3339_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?Z$/;

/** An RFC 3339 timestamp in UTC (`Z`), with a real calendar date. */
export function isUtcTimestamp(s: string): boolean {
  const m = RFC3339_UTC.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, se));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d && h < 24 && mi < 60 && se < 60;
}

/** RFC 3339 timestamp in UTC (`Z`), with a real calendar date. */
export const utcTimestamp = z.string().refine(isUtcTimestamp, { message: 'expected an RFC 3339 UTC timestamp such as 2026-05-29T12:00:00.000Z' });

/** Identifiers: non-empty, at most 256 characters, no control characters. */
export const ident = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^\p{Cc}]+$/u, 'control characters are not allowed');

/** Unicode NFC (UAX #15). Identifiers must arrive in NFC: "é" as U+00E9 and as e + U+0301 look
 *  alike but are different strings, so they would name two events (two charges) or two tenants.
 *  They are refused rather than normalized, because normalizing would change the bytes the client
 *  signed, hashed or stored on its side. The issue carries params.code NOT_NFC. */
export const isNfc = (s: string) => s === s.normalize('NFC');
export const NOT_NFC = { message: 'must be in Unicode normalization form C (NFC)', params: { code: 'NOT_NFC' } } as const;

/** Identifiers as a client sends them (the input forms): also no U+FEFF. The embedded store's
 *  driver (PGlite) decodes each text value with a default TextDecoder, which drops a leading
 *  byte order mark, so an id starting with one would not read back as stored (a replay would then
 *  look new and fail on the unique index). Canonical forms in bundles keep accepting `ident`, so
 *  what verifies does not change. */
export const identInput = ident.refine((s) => !s.includes('\uFEFF'), 'U+FEFF (byte order mark) is not allowed').refine(isNfc, NOT_NFC);

/** Dimensions: keys are like identifiers (no control characters); values are free text except
 *  U+0000, which no PostgreSQL text or jsonb value can hold. A key "__proto__" is refused: zod's
 *  record drops it (prototype-pollution guard), so it would vanish from what is signed. */
const dimensions = z
  .custom<unknown>((v) => !(v && typeof v === 'object' && Object.hasOwn(v, '__proto__')), '"__proto__" is not allowed as a dimension key')
  .pipe(
    z
      .record(
        z.string().min(1).max(128).regex(/^[^\p{Cc}]+$/u, 'control characters are not allowed'),
        z
          .string()
          .max(1024)
          .refine((v) => !v.includes('\u0000'), 'U+0000 is not allowed'),
      )
      .refine((d) => Object.keys(d).length <= 32, {
        message: 'at most 32 dimensions',
      }),
  );

function meterEventSchema<U extends z.ZodType<string, unknown>>(u64: U, lenient: boolean) {
  const id = lenient ? identInput : ident;
  return z.strictObject({
    event_id: id,
    event_timestamp: utcTimestamp,
    tenant_id: id,
    api_key_id: id,
    endpoint: id,
    usage_units: u64,
    contract_version: id,
    billing_window_id: id,
    outcome: lenient ? z.enum(OUTCOMES).default('success') : z.enum(OUTCOMES),
    dimensions: dimensions.optional(),
  });
}

/** Canonical meter event as it appears in a bundle. */
export const MeterEvent = meterEventSchema(u64String, false);
export type MeterEvent = z.infer<typeof MeterEvent>;
/** Meter event as a client may send it (numbers allowed, `outcome` defaults to `success`). */
export const MeterEventInput = meterEventSchema(u64Input, true);
export type MeterEventInput = z.input<typeof MeterEventInput>;

/** CloudEvents 1.0 envelope carrying a meter event: id → event_id, time → event_timestamp,
 *  subject → endpoint (unless data.endpoint is given); the rest comes from `data`. */
export const CloudEventInput = z.strictObject({
  specversion: z.literal('1.0'),
  id: identInput,
  source: z.string().min(1).max(1024).refine(isNfc, NOT_NFC), // the endpoint when there is no subject
  type: z.string().min(1).max(256),
  time: utcTimestamp,
  subject: identInput.optional(),
  datacontenttype: z.literal('application/json').optional(),
  data: z.strictObject({
    tenant_id: identInput,
    api_key_id: identInput,
    endpoint: identInput.optional(),
    usage_units: u64Input,
    contract_version: identInput,
    billing_window_id: identInput,
    outcome: z.enum(OUTCOMES).optional(),
    dimensions: dimensions.optional(),
  }),
});
export type CloudEventInput = z.input<typeof CloudEventInput>;

function tierSchema<U extends z.ZodType<string, unknown>>(u64: U) {
  return z.strictObject({ up_to: u64.nullable(), unit_price_micros: u64 });
}

function tariffSchema<U extends z.ZodType<string, unknown>>(u64: U, lenient: boolean) {
  const withDefault = <T extends z.ZodType>(s: T, d: unknown) => (lenient ? s.default(d as never) : s);
  const common = {
    tariff_id: lenient ? identInput : ident,
    tariff_version: lenient ? identInput : ident,
    currency: z.string().regex(/^[A-Z]{3}$/, 'expected an ISO 4217 currency code'),
    unit_quantum: withDefault(u64, '1'),
    min_charge_micros: withDefault(u64, '0'),
    max_charge_micros: withDefault(u64, '18446744073709551615'),
    rounding_mode: withDefault(z.enum(ROUNDING_MODES), 'floor'),
  };
  return z.discriminatedUnion('tariff_class', [
    z.strictObject({ ...common, tariff_class: z.literal('usage_linear'), unit_price_micros: u64 }),
    z.strictObject({
      ...common,
      tariff_class: z.literal('usage_graduated'),
      tiers: z.array(tierSchema(u64)).min(1).max(MAX_TIERS),
    }),
  ]);
}

/** Canonical tariff snapshot (every default explicit). Arithmetic limits are checked by the charge engine. */
export const TariffSnapshot = tariffSchema(u64String, false);
export type TariffSnapshot = z.infer<typeof TariffSnapshot>;
export const TariffSnapshotInput = tariffSchema(u64Input, true);
export type TariffSnapshotInput = z.input<typeof TariffSnapshotInput>;

export const Digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected sha256:<64 lowercase hex>');
const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/, 'expected base64url without padding');
const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected standard base64');
/** The order of the bn128 (BN254) scalar field: every field element is below it. */
export const BN128_P = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
/** A bn128 scalar field element as a canonical decimal string. */
export const FieldElement = z.string().regex(/^(0|[1-9][0-9]{0,76})$/, 'expected a field element as a decimal string');

export const STATEMENT_TYPE = 'meterproof/statement/v1';
export const PROOF_STATEMENT_TYPE = 'meterproof/proof-statement/v1';
export const BINDING_VERSION = 'bn128-poseidon8-v1';

/** The fields both statement versions have (in v2 the digests and the fingerprint are salted). */
const statementFields = {
  tenant_id: ident,
  billing_window_id: ident,
  event_digest: Digest,
  tariff_digest: Digest,
  tariff_id: ident,
  tariff_version: ident,
  billing_verify_fingerprint: Digest,
  charge_micros: u64String,
  currency: z.string().regex(/^[A-Z]{3}$/),
  issued_at: utcTimestamp,
  key_id: b64url,
};
const chainFields = {
  /** sha256 over the canonical {type: meterproof/chain/v1, tenant_id, endpoint, billing_window_id}: names the chain without revealing the meter. */
  id: Digest,
  /** Position in the chain, 0 for the first statement. */
  seq: u64String,
  /** Digest of the previous statement of this chain, null for the first. */
  prev: Digest.nullable(),
  cumulative_units_before: u64String,
};

/** The signed statement of binding bn128-poseidon8-v1: small, digests only, so a redacted bundle still verifies. */
export const StatementV1 = z.strictObject({ type: z.literal(STATEMENT_TYPE), ...statementFields, chain: z.strictObject(chainFields) });
export type StatementV1 = z.infer<typeof StatementV1>;

export const STATEMENT_TYPE_V2 = 'meterproof/statement/v2';
export const BINDING_VERSION_V2 = 'bn128-poseidon8-v2';
export const BINDING_VERSIONS = [BINDING_VERSION, BINDING_VERSION_V2] as const;
export type BindingVersion = (typeof BINDING_VERSIONS)[number];

/** The signed statement of binding bn128-poseidon8-v2: every public input of the proof is in it
 *  (or is the statement's own digest), so no second signed object is needed. The event and tariff
 *  digests and the fingerprint are salted (the salts travel in full bundles only). */
export const StatementV2 = z.strictObject({
  type: z.literal(STATEMENT_TYPE_V2),
  binding: z.literal(BINDING_VERSION_V2),
  // event_digest: sha256 over the canonical {type: meterproof/event/v2, salt, meter_event};
  // tariff_digest: sha256 over the canonical {type: meterproof/tariff/v2, salt, tariff_snapshot}
  ...statementFields,
  usage_units: u64String,
  outcome: z.enum(OUTCOMES),
  /** sha256 over the canonical consumer_pop of the bundle (the consumer's proof of possession,
   *  signature included), when the event was attested with one. */
  consumer_pop_digest: Digest.optional(),
  chain: z.strictObject({
    ...chainFields,
    /** cumulative_units_before plus the billable units of this event (usage on success or partial). */
    cumulative_units_after: u64String,
  }),
});
export type StatementV2 = z.infer<typeof StatementV2>;

export const Statement = z.discriminatedUnion('type', [StatementV1, StatementV2]);
export type Statement = z.infer<typeof Statement>;

/** The statement signed for the additive ZK part (docs/protocol.md §2.8): ties public signals to a statement. */
export const ProofStatement = z.strictObject({
  type: z.literal(PROOF_STATEMENT_TYPE),
  binding: z.literal(BINDING_VERSION),
  statement_digest: Digest,
  binding_commitment: FieldElement,
  charge_micros: u64String,
  tariff_commitment: FieldElement,
  issued_at: utcTimestamp,
  key_id: b64url,
});
export type ProofStatement = z.infer<typeof ProofStatement>;

const G1 = z.tuple([FieldElement, FieldElement, FieldElement]);
const G2 = z.tuple([z.tuple([FieldElement, FieldElement]), z.tuple([FieldElement, FieldElement]), z.tuple([FieldElement, FieldElement])]);
export const Groth16Proof = z.strictObject({
  pi_a: G1,
  pi_b: G2,
  pi_c: G1,
  protocol: z.literal('groth16'),
  curve: z.literal('bn128'),
});
export type Groth16Proof = z.infer<typeof Groth16Proof>;

export const BillingProofV1 = z.strictObject({
  statement: ProofStatement,
  key_id: b64url,
  signature: b64url,
  proof: Groth16Proof,
  /** The blinding salt of the event commitment. Withheld in redacted bundles. */
  blinding: FieldElement.optional(),
});
export type BillingProofV1 = z.infer<typeof BillingProofV1>;

/** The proof of a v2 statement: nothing else is needed, every public signal comes from the signed
 *  statement and the tariff version's commitment. */
export const BillingProofV2 = z.strictObject({
  binding: z.literal(BINDING_VERSION_V2),
  proof: Groth16Proof,
});
export type BillingProofV2 = z.infer<typeof BillingProofV2>;

export const BillingProof = z.union([BillingProofV1, BillingProofV2]);
export type BillingProof = z.infer<typeof BillingProof>;

/** The salts of a v2 bundle (field elements, uniform in [0, p)): of the event digest and the
 *  fingerprint, and of the tariff version's digest and commitment. Withheld in redacted bundles. */
const salt = FieldElement.refine((v) => BigInt(v) < BN128_P, 'a salt must be below the bn128 scalar field modulus p');
export const Salts = z.strictObject({ event: salt, tariff: salt });
export type Salts = z.infer<typeof Salts>;

export const isV2 = (s: Statement): s is StatementV2 => s.type === STATEMENT_TYPE_V2;

export const CONSUMER_POP_TYPE = 'meterproof/consumer-pop/v1';
export const COUNTERSIGNATURE_TYPE = 'meterproof/countersignature/v1';
/** An Ed25519 signature: 64 bytes in unpadded base64url (86 characters). */
const signature64 = z.string().regex(/^[A-Za-z0-9_-]{85}[AQgw]$/, 'expected a 64-byte Ed25519 signature in base64url');
/** A PoP nonce: 16 to 64 base64url characters (at least 96 bits when drawn at random). */
export const PopNonce = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'expected 16 to 64 base64url characters');
const thumbprint = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'expected an RFC 7638 thumbprint (43 base64url characters)');

/** What the consumer signs to ask for one event at one price (docs/protocol.md §2.14): the
 *  signature is Ed25519 over the RFC 8785 canonical bytes of every field but `signature`. */
export const ConsumerPop = z.strictObject({
  type: z.literal(CONSUMER_POP_TYPE),
  tenant_id: ident,
  consumer_id: ident,
  key_id: thumbprint,
  event_id: ident,
  /** The pinned tariff version's salted digest (the statement's tariff_digest). */
  tariff_digest: Digest,
  /** sha256 of the consumer's request payload, as the consumer computed it. */
  request_payload_hash: Digest,
  timestamp: utcTimestamp,
  nonce: PopNonce,
  signature: signature64,
});
export type ConsumerPop = z.infer<typeof ConsumerPop>;

/** The PoP as an attest request carries it: tenant_id and event_id come from the meter event. */
export const ConsumerPopInput = ConsumerPop.omit({ type: true, tenant_id: true, event_id: true });
export type ConsumerPopInput = z.infer<typeof ConsumerPopInput>;

/** The consumer's countersignature of an attestation: Ed25519 over the canonical bytes of every
 *  field but `signature` (docs/protocol.md §2.15). */
export const Countersignature = z.strictObject({
  type: z.literal(COUNTERSIGNATURE_TYPE),
  tenant_id: ident,
  consumer_id: ident,
  key_id: thumbprint,
  statement_digest: Digest,
  signed_at: utcTimestamp,
  signature: signature64,
});
export type Countersignature = z.infer<typeof Countersignature>;
const countersignatures = z.array(Countersignature).min(1).max(16);

export const PROOF_STATUSES = ['pending', 'proved', 'failed'] as const;

export const Attestation = z
  .strictObject({
    statement: Statement,
    key_id: b64url,
    signature: b64url,
    /** `proved` exactly when `billing_proof` is present; `pending` or `failed` otherwise. */
    proof_status: z.enum(PROOF_STATUSES),
    billing_proof: BillingProof.optional(),
  })
  .refine((a) => (a.proof_status === 'proved') === (a.billing_proof !== undefined), {
    message: 'proof_status must be "proved" exactly when billing_proof is present',
    path: ['proof_status'],
  })
  .refine((a) => a.billing_proof === undefined || ('binding' in a.billing_proof) === isV2(a.statement), {
    message: 'billing_proof must be of the statement\'s binding version',
    path: ['billing_proof'],
  });
export type Attestation = z.infer<typeof Attestation>;

export const Billing = z.strictObject({
  expected_charge_micros: u64String,
  billing_verify_fingerprint: Digest,
  cumulative_units_before: u64String,
});
export type Billing = z.infer<typeof Billing>;

/** Transparency-log receipt (docs/protocol.md §2.10). Hashes in standard base64. */
export const Receipt = z.strictObject({
  log_origin: z.string().min(1),
  log_index: u64String,
  leaf_hash: b64,
  tree_size: u64String,
  inclusion_proof: z.array(b64).max(64),
  /** The signed C2SP checkpoint note the proof verifies against. */
  checkpoint: z.string().min(1).max(8192),
});
export type Receipt = z.infer<typeof Receipt>;

export const FullBundle = z
  .strictObject({
    meter_event: MeterEvent,
    tariff_snapshot: TariffSnapshot,
    billing: Billing,
    /** Present exactly when the statement is v2. */
    salts: Salts.optional(),
    attestation: Attestation,
    receipt: Receipt.optional(),
    consumer_pop: ConsumerPop.optional(),
    countersignatures: countersignatures.optional(),
  })
  .refine((b) => (b.salts !== undefined) === isV2(b.attestation.statement), {
    message: 'a full bundle carries salts exactly when its statement is of binding bn128-poseidon8-v2',
    path: ['salts'],
  });
export type FullBundle = z.infer<typeof FullBundle>;

/** Redacted: the private parts (event, tariff, billing detail, blinding) withheld. */
export const RedactedBundle = z.strictObject({
  redacted: z.literal(true),
  attestation: Attestation,
  receipt: Receipt.optional(),
  consumer_pop: ConsumerPop.optional(),
  countersignatures: countersignatures.optional(),
});
export type RedactedBundle = z.infer<typeof RedactedBundle>;

export const Bundle = z.union([FullBundle, RedactedBundle]);
export type Bundle = z.infer<typeof Bundle>;

export const CHECK_NAMES = [
  'schema',
  'signature',
  'key_validity',
  'revocation',
  'digests',
  'fingerprint',
  'charge',
  'chain',
  'proof_signature',
  'commitments',
  'proof',
  'inclusion',
  'checkpoint',
  'consistency',
  'consumer_pop',
  'countersignatures',
] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export const VERIFY_CODES = [
  'SCHEMA_INVALID',
  'INVALID_JSON',
  'DUPLICATE_KEY',
  'SIGNATURE_INVALID',
  'KEY_UNKNOWN',
  'KEY_NOT_VALID_AT_TIME',
  'REVOKED',
  'REVOCATION_LIST_INVALID',
  'REVOCATIONS_EXPIRED',
  'REVOCATIONS_ROLLBACK',
  'REVOCATIONS_NO_EXPIRY',
  'DIGEST_MISMATCH',
  'FINGERPRINT_MISMATCH',
  'CHARGE_MISMATCH',
  'TARIFF_INVALID',
  'TARIFF_NOT_PUBLISHED',
  'CHAIN_INVALID',
  'PROOF_SIGNATURE_INVALID',
  'COMMITMENT_MISMATCH',
  'PROOF_INVALID',
  'PROOF_MALFORMED',
  'VKEY_NOT_PINNED',
  'VKEY_INVALID',
  'INCLUSION_INVALID',
  'CHECKPOINT_INVALID',
  'CONSISTENCY_INVALID',
  'TRUST_MATERIAL_MISSING',
  'CONSUMER_POP_MISSING',
  'CONSUMER_POP_MISMATCH',
  'CONSUMER_POP_SIGNATURE_INVALID',
  'CONSUMER_KEY_UNKNOWN',
  'CONSUMER_KEY_NOT_VALID_AT_TIME',
  'COUNTERSIGNATURE_MISSING',
  'COUNTERSIGNATURE_INVALID',
  'INTERNAL_ERROR',
] as const;
export type VerifyCode = (typeof VERIFY_CODES)[number];

export const CheckResult = z.strictObject({
  name: z.enum(CHECK_NAMES),
  status: z.enum(['pass', 'fail', 'skipped']),
  code: z.enum(VERIFY_CODES).optional(),
  reason: z.string().optional(),
});
export type CheckResult = z.infer<typeof CheckResult>;

/** A check the profile requires that did not run, and why: what made an INVALID report invalid
 *  besides its failed checks. */
export const SkippedCheck = z.strictObject({ name: z.enum(CHECK_NAMES), reason: z.string() });
export type SkippedCheck = z.infer<typeof SkippedCheck>;

export const VerificationReport = z.strictObject({
  valid: z.boolean(),
  profile: z.enum(['strict', 'standard']),
  redacted: z.boolean(),
  statement_digest: Digest.nullable(),
  checks: z.array(CheckResult),
  /** Every check the profile requires that was skipped (in check order); empty when valid. */
  skipped_but_required: z.array(SkippedCheck),
});
export type VerificationReport = z.infer<typeof VerificationReport>;
