// zod schemas of the HTTP layer: the query strings the routes parse, and the request and
// response bodies that are not protocol objects (those live in src/core/schemas.ts). The routes
// validate with the query schemas; GET /openapi.json is generated from all of them
// (src/http/openapi.ts), and test/openapi.test.ts checks real responses against them.
import { z } from 'zod';
import { CloudEventInput, ConsumerPop, Digest, FieldElement, FullBundle, MeterEventInput, PROOF_STATUSES, TariffSnapshot, TariffSnapshotInput, VerificationReport, identInput, utcTimestamp } from '../core/schemas.ts';
import { Jwks } from '../core/keys.ts';
import { PROOF_POLICIES } from '../core/proof-policy.ts';
import { u64String } from '../core/u64.ts';
import { SCOPES } from '../service/auth.ts';
import { WEBHOOK_EVENTS } from '../service/webhooks.ts';
import { PROBLEM_CODES, type ProblemCode } from '../service/problem-codes.ts';

// ── query strings ─────────────────────────────────────────────────────────────────────────
// Built once: zod compiles a schema on first use, so a schema created per request would be
// compiled on every request.
export const VerifyQuery = z.strictObject({
  profile: z.enum(['strict', 'standard']).default('strict').describe('`strict` requires the proof, the receipt and fresh trust material; `standard` accepts a bundle without them'),
});
export const ListQuery = z.strictObject({
  tenant_id: z.string().min(1).describe('the tenant whose attestations are listed'),
  window: z.string().min(1).optional().describe('only this billing_window_id'),
  cursor: z.string().regex(/^\d{1,15}$/).optional().describe('next_cursor of the previous page'),
  limit: z.coerce.number().int().min(1).max(500).default(100).describe('page size'),
});
/** GET /v1/evidence: exactly one scope — an attestation, a tenant's billing window, or a settlement. */
export const EvidenceQuery = z
  .strictObject({
    attestation_id: z.string().regex(/^(sha256:)?[0-9a-f]{64}$/).optional().describe('one attestation: its id, or its statement digest (`sha256:` and the id)'),
    tenant_id: z.string().min(1).optional().describe("with `window`: the tenant's billing window"),
    window: z.string().min(1).optional().describe('with `tenant_id`: the billing_window_id'),
    settlement_id: z.string().min(1).max(256).optional().describe('a settlement (its covered bundles and signed statement)'),
  })
  .refine((q) => [q.attestation_id !== undefined, q.tenant_id !== undefined || q.window !== undefined, q.settlement_id !== undefined].filter(Boolean).length === 1 && (q.tenant_id === undefined) === (q.window === undefined), {
    message: 'give exactly one of attestation_id, tenant_id with window, or settlement_id',
  });
/** POST /v1/reconcile: the tenant's billing window the invoice lines are checked against. */
export const ReconcileQuery = z.strictObject({
  tenant_id: z.string().min(1).describe('the tenant billed'),
  window: z.string().min(1).describe('the billing_window_id the invoice covers'),
});
const categoryTotals = z.strictObject({ count: z.number().int(), amounts: z.array(z.strictObject({ currency: z.string(), billed_micros: z.string(), attested_micros: z.string() })) });
/** POST /v1/reconcile's answer (src/core/reconcile.ts ReconcileReport, with the window). */
export const ReconcileResponse = z
  .strictObject({
    tenant_id: z.string(),
    billing_window_id: z.string(),
    type: z.literal('meterproof/reconciliation/v1'),
    lines: z.number().int().describe('invoice lines read (blank lines and the CSV header not counted)'),
    categories: z.strictObject({ matched: categoryTotals, amount_mismatch: categoryTotals, billed_without_attestation: categoryTotals, attested_unbilled: categoryTotals, duplicate: categoryTotals, invalid: categoryTotals }),
    totals: z.array(z.strictObject({ currency: z.string(), billed_micros: z.string(), attested_micros: z.string(), difference_micros: z.string() })),
    match_rate_bps: z.number().int().min(0).max(10_000).describe('⌊matched × 10000 / (lines + attested_unbilled)⌋'),
    items: z
      .array(
        z.strictObject({
          category: z.enum(['matched', 'amount_mismatch', 'billed_without_attestation', 'attested_unbilled', 'duplicate', 'invalid']),
          line: z.number().int().nullable(),
          ref: z.string().nullable(),
          ref_kind: z.enum(['event_id', 'attestation_id']).nullable(),
          attestation_id: z.string().nullable(),
          billed_micros: z.string().nullable(),
          attested_micros: z.string().nullable(),
          currency: z.string().nullable(),
          reason: z.string().optional(),
        }),
      )
      .describe('the discrepancies, in input order then attested order: at most 1,000'),
    items_truncated: z.boolean(),
  });
export const SettlementListQuery = z.strictObject({ tenant_id: z.string().min(1).describe('the tenant whose settlements are listed') });
export const SyncQuery = z.strictObject({
  proof: z.enum(['async', 'sync']).default('async').describe('`sync` waits (up to 30 s) for the Groth16 proof and the log receipt'),
  log: z.enum(['async', 'sync']).default('async').describe('`sync` waits for the log receipt only'),
});
/** The /v1/log reads take canonical non-negative decimal integers (parsed by log-routes.ts). */
const logIndex = (description: string) => z.string().regex(/^(?:0|[1-9][0-9]*)$/).describe(description);
export const InclusionQuery = z.strictObject({ index: logIndex('leaf index'), tree_size: logIndex('size of the tree the proof is for') });
export const ConsistencyQuery = z.strictObject({ from: logIndex('the older tree size'), to: logIndex('the newer tree size') });
export const EntriesQuery = z.strictObject({ start: logIndex('first index'), end: logIndex('one past the last index') });

/** An attestation's proof state as the API reports it (X-Proof-Status, minimal answers, lists):
 *  the bundle's `proof_status`, or `on_demand` / `deferred` for one without a queued job (the
 *  bundle then says `pending`; docs/operations.md, "Proof policies and the proof queue"). */
const PROOF_STATES = [...PROOF_STATUSES, 'on_demand', 'deferred'] as const;

// ── path parameters ───────────────────────────────────────────────────────────────────────
export const AttestationId = z.string().regex(/^[0-9a-f]{64}$/).describe("the statement digest's hex");

// ── problems ──────────────────────────────────────────────────────────────────────────────
const codes = Object.keys(PROBLEM_CODES) as [ProblemCode, ...ProblemCode[]];
/** RFC 9457 problem details, as every error is answered (src/http/problem.ts). */
export const Problem = z
  .object({
    type: z.string().describe('a URI naming the problem type, or about:blank'),
    title: z.string(),
    status: z.number().int(),
    code: z.enum(codes).describe(`Stable code to switch on (\`detail\` is for humans):\n\n${codes.map((c) => `- \`${c}\` (${[PROBLEM_CODES[c].status, ...(PROBLEM_CODES[c].also ?? [])].join(', ')}): ${PROBLEM_CODES[c].description}`).join('\n')}`),
    detail: z.string(),
    errors: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional().describe('the fields at fault'),
  })
  .describe('RFC 9457 problem details');

// ── attest ────────────────────────────────────────────────────────────────────────────────
export const TariffRef = z.strictObject({ tariff_id: identInput, tariff_version: identInput });
export const AttestRequest = z
  .strictObject({
    meter_event: z.union([MeterEventInput, CloudEventInput]).describe('the plain form or a CloudEvents 1.0 envelope'),
    tariff_snapshot: TariffSnapshotInput.optional().describe('an inline tariff (send this or `tariff`)'),
    tariff: TariffRef.optional().describe('a published tariff version (send this or `tariff_snapshot`)'),
    consumer_pop: ConsumerPop.optional().describe("bilateral metering: the consumer's signed proof of possession (docs/protocol.md §2.14)"),
  })
  .describe('one event and its tariff');
export const BatchRequest = z.strictObject({ events: z.array(AttestRequest).min(1).max(1000) });
/** CloudEvents batched mode (application/cloudevents-batch+json): a JSON array of CloudEvents. */
export const CloudEventBatch = z.array(CloudEventInput).min(1).max(1000);

/** POST /v1/verify/batch: 1 to 256 bundles, as an array or `{bundles: [...]}`. Each element is
 *  checked by the verifier (a malformed one gets its failing report, not a 400). */
const bundleList = z.array(z.unknown().describe('a full or redacted bundle')).min(1).max(256);
export const VerifyBatchRequest = z.union([bundleList, z.strictObject({ bundles: bundleList })]);
export const VerifyBatchResponse = z.strictObject({
  summary: z.strictObject({ total: z.number().int(), valid: z.number().int(), invalid: z.number().int() }),
  results: z.array(VerificationReport.extend({ index: z.number().int().min(0) })).describe('one report per bundle, in order'),
});

/** `Prefer: return=minimal`: the attestation's identity and charge instead of the bundle. */
export const AttestMinimal = z.strictObject({
  id: AttestationId,
  statement_digest: Digest,
  charge_micros: u64String,
  proof_status: z.enum(PROOF_STATES),
});
export type AttestMinimal = z.infer<typeof AttestMinimal>;
export const AttestResponse = z.union([FullBundle, AttestMinimal]).describe('the full bundle, or the minimal form under Prefer: return=minimal');
const itemHead = { index: z.number().int().min(0), status: z.number().int() };
export const BatchResult = z.union([
  z.strictObject({ ...itemHead, id: AttestationId, bundle: FullBundle }).describe('attested (201) or replayed (200)'),
  z.strictObject({ ...itemHead, ...AttestMinimal.shape }).describe('attested or replayed, with Prefer: return=minimal'),
  z.strictObject({ ...itemHead, error: Problem }).describe('refused: the item status and its problem'),
]);
export const BatchResponse = z.strictObject({ results: z.array(BatchResult) });

export const AttestationList = z.strictObject({
  items: z.array(z.strictObject({ id: AttestationId, proof_status: z.enum(PROOF_STATES), bundle: FullBundle })),
  next_cursor: z.string().nullable().describe('pass back as `cursor` until null'),
});

/** A published tariff version as holders of read or admin keys see it. */
export const TariffView = z.strictObject({
  tariff_snapshot: TariffSnapshot,
  tariff_digest: Digest.describe('bn128-poseidon8-v1: digest of the snapshot'),
  tariff_commitment: FieldElement.describe('bn128-poseidon8-v1: unsalted commitment'),
  v2: z.strictObject({
    salt: FieldElement.describe("the version's tariff salt"),
    tariff_digest: Digest.describe('salted digest, as in v2 statements'),
    tariff_commitment: FieldElement.describe('salted commitment, as published in GET /v1/trust'),
  }),
  published_at: utcTimestamp,
});
export type TariffView = z.infer<typeof TariffView>;
export const TariffList = z.strictObject({ items: z.array(TariffView) });

// ── service ───────────────────────────────────────────────────────────────────────────────
export const Health = z.strictObject({ status: z.literal('ok') });
export const Ready = z.strictObject({ status: z.literal('ready'), checks: z.record(z.string(), z.string()).describe('each check: `ok`, or why not') });
export const NotReady = z.intersection(Problem, z.object({ checks: z.record(z.string(), z.string()) })).describe('problem NOT_READY with every check');
export const Status = z.strictObject({
  status: z.literal('operational'),
  version: z.string(),
  store: z.enum(['pglite', 'postgres']),
  signing_key_id: z.string(),
  proof_jobs: z.record(z.string(), z.number().int()).describe('proof jobs by status'),
  store_writes: z.strictObject({
    statements: z.number().int(),
    attestations: z.number().int(),
    statement_ms: z.strictObject({ p50: z.number(), p95: z.number(), p99: z.number(), statements: z.number().int() }).nullable(),
  }),
  log_size: z.number().int().nullable(),
  proof_queue: z
    .strictObject({ depth: z.number().int(), limit: z.number().int(), full: z.boolean(), oldest_age_seconds: z.number().nullable(), deferred: z.number().int() })
    .describe('proof jobs queued or running, the PROOF_QUEUE_LIMIT at which eager jobs are deferred, the oldest job age, the deferred attestations'),
});
export const OpenApiDocument = z.record(z.string(), z.unknown()).describe('this OpenAPI 3.1 document');

// ── admin ─────────────────────────────────────────────────────────────────────────────────
export const CreateTenant = z.strictObject({ id: identInput, name: z.string().max(256).optional().describe('defaults to the id') });
export const TenantProofPolicy = z.strictObject({
  policy: z.enum(PROOF_POLICIES),
  rate: z.number().gt(0).lte(1).optional().describe('sampled only: the share of events proved at attest'),
  updated_at: utcTimestamp.nullable(),
});
export const Tenant = z.strictObject({ id: z.string(), name: z.string(), created_at: utcTimestamp, proof_policy: TenantProofPolicy });
export const ProveAnswer = z.strictObject({ id: AttestationId, proof_status: z.enum(PROOF_STATES) });
export const TenantList = z.strictObject({ items: z.array(Tenant) });
const keyFields = { id: z.string(), name: z.string(), scopes: z.array(z.enum(SCOPES)), tenants: z.array(z.string()).nullable(), consumer_id: z.string().nullable().describe('a consumer-scoped key: the consumer whose attestations it reads'), created_at: utcTimestamp };
export const ApiKeyCreated = z.strictObject({ ...keyFields, secret: z.string().describe('the bearer secret, shown once'), note: z.string() });
export const ApiKeyList = z.strictObject({ items: z.array(z.strictObject({ ...keyFields, revoked_at: utcTimestamp.nullable() })) });
export const ApiKeyRevoked = z.strictObject({ id: z.string(), revoked_at: utcTimestamp });
export const KeyRotated = z.strictObject({ key_id: z.string(), jwks: Jwks });
export const KeyRevoked = z.strictObject({ key_id: z.string(), revoked_from: utcTimestamp, reason: z.string(), rotated_to: z.string().nullable().describe('the new current key when the current one was revoked') });
export const DefaultTariff = z.strictObject({
  meter: z.string().describe('a CloudEvents type, an endpoint, or *'),
  tariff_id: z.string(),
  tariff_version: z.string(),
  updated_at: utcTimestamp,
});
export const DefaultTariffList = z.strictObject({ items: z.array(DefaultTariff) });
export const CreateWebhook = z.strictObject({
  url: z.string().describe('absolute http(s) URL without credentials'),
  events: z.array(z.enum(WEBHOOK_EVENTS)).min(1).optional().describe('default: every event type'),
  tenant_id: identInput.nullable().optional().describe('only events of this tenant (default: every tenant)'),
});
const webhookFields = { id: z.string(), url: z.string(), tenant_id: z.string().nullable(), events: z.array(z.enum(WEBHOOK_EVENTS)), created_at: utcTimestamp, disabled_at: utcTimestamp.nullable() };
export const WebhookEndpoint = z.strictObject(webhookFields);
export const WebhookCreated = z.strictObject({ ...webhookFields, secret: z.string().describe('the signing secret (whsec_…), shown once') });
export const WebhookList = z.strictObject({ items: z.array(WebhookEndpoint) });
export const DeliveriesQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100).describe('most recent first') });
export const WebhookDeliveries = z.strictObject({
  items: z.array(
    z.strictObject({
      id: z.string().describe('the webhook-id of the message'),
      event_type: z.enum(WEBHOOK_EVENTS),
      status: z.enum(['pending', 'delivered', 'failed']),
      attempts: z.number().int(),
      last_status: z.number().int().nullable().describe("the endpoint's last HTTP status"),
      last_error: z.string().nullable(),
      next_attempt_at: utcTimestamp.nullable(),
      created_at: utcTimestamp,
      delivered_at: utcTimestamp.nullable(),
    }),
  ),
});
/** What a webhook endpoint receives (Standard Webhooks v1; signed headers in docs/api.md). */
export const ProofWebhook = z.strictObject({
  type: z.enum(['proof.ready', 'proof.failed']),
  timestamp: utcTimestamp,
  data: z.strictObject({ attestation_id: AttestationId, statement_digest: Digest, proof_status: z.enum(['proved', 'failed']), bundle_url: z.string() }),
});
export const SettlementWebhook = z.strictObject({
  type: z.literal('settlement.status_changed'),
  timestamp: utcTimestamp,
  data: z.strictObject({ settlement_id: z.string(), from: z.string(), to: z.string(), actor: z.string(), changed_at: utcTimestamp, settlement_url: z.string() }),
});
export const AttestationRevoked = z.strictObject({ statement_digest: Digest, revoked_at: utcTimestamp, reason: z.string() });
export const Requeued = z.strictObject({ requeued: z.number().int().describe('proof jobs put back in the queue') });

// ── transparency log ──────────────────────────────────────────────────────────────────────
const b64Hash = z.string().describe('base64 SHA-256 hash');
export const InclusionProof = z.strictObject({ index: z.number().int(), tree_size: z.number().int(), leaf_hash: b64Hash, hashes: z.array(b64Hash) });
export const ConsistencyProof = z.strictObject({ from: z.number().int(), to: z.number().int(), hashes: z.array(b64Hash) });
export const LogEntries = z.strictObject({
  entries: z.array(z.strictObject({ index: z.number().int(), leaf_hash: b64Hash, leaf: z.string().describe('RFC 8785 JSON text of the leaf') })),
});
