// The OpenAPI 3.1 description served at GET /openapi.json. Every route is one entry of OPERATIONS
// below; its parameters, bodies and responses are the zod schemas the server validates with or
// answers in (src/core/schemas.ts, src/http/schemas.ts, the services), turned into JSON Schema
// 2020-12 by z.toJSONSchema (request bodies from zod's input side, so a field with a default is
// optional). test/openapi.test.ts fails when a route of the app has no entry here.
//
// To document a route: add its entry to OPERATIONS (in its tag's section); give each body
// schema a component name in COMPONENTS (input: request bodies, output: responses).
import { z } from 'zod';
import { $ZodRegistry, type $ZodType } from 'zod/v4/core';
import * as P from '../core/schemas.ts';
import { Bundle, CloudEventInput, FullBundle, MeterEventInput, RedactedBundle, TariffSnapshotInput, VerificationReport, identInput, utcTimestamp } from '../core/schemas.ts';
import { Jwks, PublicJwk } from '../core/keys.ts';
import { SignedRevocationList, TrustMaterial } from '../core/trust.ts';
import { u64Input, u64String } from '../core/u64.ts';
import { CreateApiKey } from '../service/admin.ts';
import { PlanInput } from '../core/plan.ts';
import { AdjustmentInput } from '../core/adjustment.ts';
import { ProofPolicyInput } from '../core/proof-policy.ts';
import type { Scope } from '../service/auth.ts';
import { PROBLEM_CODES, type ProblemInfoStatus } from '../service/problem-codes.ts';
import { RevokeAttestation, RevokeKey } from '../service/revocations.ts';
import * as S from './schemas.ts';

// ── named schemas (components.schemas) ──────────────────────────────────────────────────────
// Every request and response body is one of these (by identity), and is referenced by name;
// schemas inside them that are named here become references too.
/** Request bodies: converted from zod's input side (what a client may send). */
const INPUT: Record<string, z.ZodType> = {
  MeterEventInput,
  CloudEventInput,
  TariffSnapshotInput,
  TariffRef: S.TariffRef,
  AttestRequest: S.AttestRequest,
  BatchRequest: S.BatchRequest,
  VerifyBatchRequest: S.VerifyBatchRequest,
  CloudEventBatch: S.CloudEventBatch,
  CreateTenant: S.CreateTenant,
  PlanInput,
  AdjustmentInput,
  ProofPolicyInput,
  CreateWebhook: S.CreateWebhook,
  CreateApiKey,
  RevokeKey,
  RevokeAttestation,
};
/** Responses (and the protocol objects in them): converted from zod's output side. */
const OUTPUT: Record<string, z.ZodType> = {
  // protocol objects (src/core)
  Bundle: FullBundle,
  RedactedBundle,
  AnyBundle: Bundle,
  MeterEvent: P.MeterEvent,
  TariffSnapshot: P.TariffSnapshot,
  Billing: P.Billing,
  Salts: P.Salts,
  Attestation: P.Attestation,
  StatementV1: P.StatementV1,
  StatementV2: P.StatementV2,
  BillingProofV1: P.BillingProofV1,
  BillingProofV2: P.BillingProofV2,
  Groth16Proof: P.Groth16Proof,
  Receipt: P.Receipt,
  VerificationReport,
  CheckResult: P.CheckResult,
  TrustMaterial,
  Jwks,
  PublicJwk,
  SignedRevocationList,
  // HTTP answers (src/http/schemas.ts)
  Problem: S.Problem,
  AttestResponse: S.AttestResponse,
  AttestMinimal: S.AttestMinimal,
  BatchResult: S.BatchResult,
  BatchResponse: S.BatchResponse,
  VerifyBatchResponse: S.VerifyBatchResponse,
  AttestationList: S.AttestationList,
  TariffView: S.TariffView,
  TariffList: S.TariffList,
  Health: S.Health,
  Ready: S.Ready,
  NotReady: S.NotReady,
  Status: S.Status,
  OpenApiDocument: S.OpenApiDocument,
  Tenant: S.Tenant,
  ProveAnswer: S.ProveAnswer,
  TenantList: S.TenantList,
  ApiKeyCreated: S.ApiKeyCreated,
  ApiKeyList: S.ApiKeyList,
  ApiKeyRevoked: S.ApiKeyRevoked,
  KeyRotated: S.KeyRotated,
  KeyRevoked: S.KeyRevoked,
  AttestationRevoked: S.AttestationRevoked,
  Requeued: S.Requeued,
  DefaultTariff: S.DefaultTariff,
  DefaultTariffList: S.DefaultTariffList,
  WebhookEndpoint: S.WebhookEndpoint,
  WebhookCreated: S.WebhookCreated,
  WebhookList: S.WebhookList,
  WebhookDeliveries: S.WebhookDeliveries,
  ProofWebhook: S.ProofWebhook,
  SettlementWebhook: S.SettlementWebhook,
  InclusionProof: S.InclusionProof,
  ConsistencyProof: S.ConsistencyProof,
  LogEntries: S.LogEntries,
  Reconciliation: S.ReconcileResponse,
};
type Io = 'input' | 'output';
const COMPONENTS: Record<string, { schema: z.ZodType; io: Io }> = Object.fromEntries([
  ...Object.entries(INPUT).map(([name, schema]) => [name, { schema, io: 'input' as const }]),
  ...Object.entries(OUTPUT).map(([name, schema]) => [name, { schema, io: 'output' as const }]),
]);

// ── operations ────────────────────────────────────────────────────────────────────────────
export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
/** A problem status with its own components.responses entry; `[status, note]` adds what it
 *  means for this operation. */
type ErrorStatus = ProblemInfoStatus | [ProblemInfoStatus, string];

export interface Reply {
  readonly description: string;
  /** A JSON body (a named schema), `'text'` for text/plain, `'html'` for a page (text/html) or
   *  `'asset'` for a page's stylesheet or script (text/css, text/javascript). */
  readonly body?: z.ZodType | 'text' | 'html' | 'asset';
  /** Of a JSON body; application/json unless given. */
  readonly contentType?: 'application/json' | 'application/problem+json';
  readonly headers?: Record<string, { description: string; schema?: object }>;
}

export interface Operation {
  readonly method: Method;
  /** OpenAPI form: /v1/attestations/{id}. */
  readonly path: string;
  readonly operationId: string;
  readonly tag: Tag;
  readonly summary: string;
  readonly description?: string;
  /** `public`, or the API-key scope the route needs (the admin token has every scope). */
  readonly auth: 'public' | Scope;
  readonly params?: z.ZodObject;
  readonly query?: z.ZodObject;
  readonly headers?: { name: string; description: string }[];
  /** The request body: a schema (application/json), or one per media type. */
  readonly body?: z.ZodType | Record<string, z.ZodType>;
  /** 2xx (and other non-problem) answers. */
  readonly replies: Partial<Record<number, Reply>>;
  /** problem+json answers, beyond those every operation has (ALWAYS below). */
  readonly errors?: ErrorStatus[];
}

const TAGS = {
  service: 'Liveness, readiness, status, metrics and this document',
  trust: 'Public keys, trust material and the signed revocation list, for offline verification',
  verify: 'Verify a bundle with the service trust material',
  attest: 'Attest billable events',
  read: 'Read attestations and published tariffs',
  admin: 'Tenants, API keys, tariffs, signing keys, revocations and proof jobs (scope admin)',
  log: 'The transparency log (C2SP tlog): checkpoint, proofs, entries',
  settle: 'Plans, subscriptions, settlements of billing windows and their evidence, SLA figures',
} as const;
type Tag = keyof typeof TAGS;

const bundleHeaders = {
  Location: { description: '/v1/attestations/{id}', schema: { type: 'string' } },
  'X-Attestation-Id': { description: "the attestation id (the statement digest's hex)", schema: { type: 'string' } },
  'X-Proof-Status': { description: 'pending, proved or failed', schema: { type: 'string', enum: ['pending', 'proved', 'failed'] } },
};
const preferMinimal = { name: 'Prefer', description: '`return=minimal` (RFC 7240): answer with {id, statement_digest, charge_micros, proof_status} instead of the bundle' };
const preferenceApplied = { 'Preference-Applied': { description: '`return=minimal` when the minimal form was sent', schema: { type: 'string' } } };
const idParam = z.strictObject({ id: S.AttestationId });
const tenantParam = z.strictObject({ tenant: identInput.describe('tenant id') });
const meterParams = z.strictObject({ ...tenantParam.shape, meter: z.string().min(1).max(256).describe('a CloudEvents type, an endpoint (percent-encoded) or *') });
const webhookParam = z.strictObject({ id: z.string().describe('the endpoint id (wh_…)') });
const textBody = 'text' as const;

export const OPERATIONS: readonly Operation[] = [
  // ── service ──
  { method: 'get', path: '/health', operationId: 'getHealth', tag: 'service', auth: 'public', summary: 'Liveness: the process answers (no I/O)', replies: { 200: { description: 'alive', body: S.Health } } },
  {
    method: 'get', path: '/ready', operationId: 'getReady', tag: 'service', auth: 'public',
    summary: 'Readiness: store reachable, migrations applied, signing key loaded, log sequencer running, not shutting down',
    replies: { 200: { description: 'ready', body: S.Ready }, 503: { description: 'NOT_READY: `detail` names what is not ready, `checks` holds every check (Retry-After: 1)', body: S.NotReady, contentType: 'application/problem+json' } },
  },
  {
    method: 'get', path: '/metrics', operationId: 'getMetrics', tag: 'service', auth: 'metrics',
    summary: 'Prometheus metrics (text format 0.0.4)',
    replies: { 200: { description: 'the metrics', body: textBody } }, errors: [401, 403, 503],
  },
  { method: 'get', path: '/v1/status', operationId: 'getStatus', tag: 'service', auth: 'public', summary: 'Service status: store, current key, proof jobs, group-commit figures, log size', replies: { 200: { description: 'status', body: S.Status } }, errors: [503] },
  { method: 'get', path: '/openapi.json', operationId: 'getOpenApi', tag: 'service', auth: 'public', summary: 'This OpenAPI 3.1 document', replies: { 200: { description: 'the document', body: S.OpenApiDocument } } },
  {
    method: 'get', path: '/docs', operationId: 'getDocs', tag: 'service', auth: 'public',
    summary: 'Interactive API documentation of this document (Swagger UI, served from the package: no third-party requests)',
    replies: { 200: { description: 'the documentation page', body: 'html' } },
  },
  {
    method: 'get', path: '/docs/{file}', operationId: 'getDocsAsset', tag: 'service', auth: 'public',
    summary: "A stylesheet or script of the documentation page (Swagger UI's, and the one line that points it at /openapi.json)",
    params: z.strictObject({ file: z.enum(['swagger-ui.css', 'swagger-ui-bundle.js', 'init.js']).describe('the asset') }),
    replies: { 200: { description: 'the asset', body: 'asset' } }, errors: [404],
  },

  // ── verify ──
  {
    method: 'get', path: '/verify', operationId: 'getVerifierPage', tag: 'verify', auth: 'public',
    summary: "The browser verifier: a page that verifies a bundle or evidence pack in the browser (Groth16 included), the service's trust material embedded",
    description: 'The same page as `npm run build:verifier` builds, with GET /v1/trust embedded when served; it makes no network requests (docs/verifier-page.md). 404 when the page has not been built.',
    replies: { 200: { description: 'the verifier page', body: 'html' } }, errors: [404, 503],
  },

  // ── trust ──
  { method: 'get', path: '/.well-known/jwks.json', operationId: 'getJwks', tag: 'trust', auth: 'public', summary: 'Statement-signing public keys with validity windows', replies: { 200: { description: 'JWKS', body: Jwks } }, errors: [503] },
  { method: 'get', path: '/v1/trust', operationId: 'getTrust', tag: 'trust', auth: 'public', summary: 'Trust material for offline verification (`meterproof verify --trust`)', replies: { 200: { description: 'the trust material', body: TrustMaterial } }, errors: [503] },
  { method: 'get', path: '/.well-known/billing-revocations.json', operationId: 'getRevocations', tag: 'trust', auth: 'public', summary: 'The signed revocation list', replies: { 200: { description: 'the list, signed with the current statement key', body: SignedRevocationList } }, errors: [503] },
  {
    method: 'post', path: '/v1/verify', operationId: 'verifyBundle', tag: 'verify', auth: 'public',
    summary: 'Verify a bundle (full or redacted) with the service trust material',
    description: 'Always 200 with the report (docs/protocol.md §3) when the body is JSON; a bundle that does not verify is a report with `valid: false`.',
    query: S.VerifyQuery, body: Bundle,
    replies: { 200: { description: 'the verification report', body: VerificationReport } }, errors: [413, 415, 503],
  },

  {
    method: 'post', path: '/v1/verify/batch', operationId: 'verifyBundles', tag: 'verify', auth: 'public',
    summary: 'Verify 1 to 256 bundles with the service trust material; the Groth16 pairing checks are batched',
    description: 'Every check of every bundle runs as in POST /v1/verify; the proofs\' pairing equations are combined with random weights (docs/zk-binding.md §5) and, if the combination fails, checked one by one, so a failing bundle is named. 200 with one report per bundle, in order.',
    query: S.VerifyQuery, body: S.VerifyBatchRequest,
    replies: { 200: { description: 'a summary and the reports', body: S.VerifyBatchResponse } },
    errors: [[400, 'BAD_REQUEST (not a list of bundles), BATCH_SIZE (empty or more than 256)'], 413, 415, 503],
  },

  // ── attest ──
  {
    method: 'post', path: '/v1/attest', operationId: 'attest', tag: 'attest', auth: 'attest',
    summary: 'Attest one billable event',
    description: 'Idempotent per tenant and event_id: an exact replay answers 200 with the original bundle, different content 409.',
    query: S.SyncQuery, headers: [preferMinimal],
    // CloudEvents structured mode: the event alone, priced with the tenant's default tariff
    body: { 'application/json': S.AttestRequest, 'application/cloudevents+json': CloudEventInput },
    replies: {
      201: { description: 'attested: the full bundle (or the minimal form)', body: S.AttestResponse, headers: { ...bundleHeaders, ...preferenceApplied } },
      200: { description: 'exact replay of an attested event: the original bundle (or the minimal form)', body: S.AttestResponse, headers: { ...bundleHeaders, ...preferenceApplied } },
    },
    errors: [401, 403, [409, 'IDEMPOTENCY_CONFLICT: same event_id, different content'], 413, 415, 422, 503],
  },
  {
    method: 'post', path: '/v1/attest/batch', operationId: 'attestBatch', tag: 'attest', auth: 'attest',
    summary: 'Attest 1 to 1,000 events, one result per item',
    description: 'Items are independent: each result carries its own status and a bundle, the minimal form or a problem.',
    headers: [preferMinimal],
    // CloudEvents batched mode: an array of events, each priced with the tenant's default tariff
    body: { 'application/json': S.BatchRequest, 'application/cloudevents-batch+json': S.CloudEventBatch },
    replies: { 200: { description: 'one result per item, in order', body: S.BatchResponse, headers: preferenceApplied } },
    errors: [401, 403, 413, 415, 503],
  },

  // ── read ──
  {
    method: 'get', path: '/v1/attestations/{id}', operationId: 'getAttestation', tag: 'read', auth: 'read',
    summary: 'A bundle, with its receipt refreshed to the latest checkpoint',
    params: idParam, query: S.SyncQuery,
    replies: { 200: { description: 'the bundle', body: FullBundle, headers: bundleHeaders } }, errors: [401, 403, 404, 503],
  },
  {
    method: 'post', path: '/v1/attestations/{id}/prove', operationId: 'proveAttestation', tag: 'read', auth: 'read',
    summary: 'Prove an attestation now (on_demand or deferred; a queued job moves ahead of the queue)',
    params: idParam,
    replies: { 202: { description: 'its proof job runs', body: S.ProveAnswer, headers: bundleHeaders }, 200: { description: 'proved, or failed for good, already', body: S.ProveAnswer, headers: bundleHeaders } },
    errors: [401, 403, 404, 503],
  },
  {
    method: 'get', path: '/v1/attestations', operationId: 'listAttestations', tag: 'read', auth: 'read',
    summary: "A tenant's attestations, in write order (cursor pagination)",
    query: S.ListQuery,
    replies: { 200: { description: 'a page', body: S.AttestationList } }, errors: [401, 403, 503],
  },
  {
    method: 'get', path: '/v1/tariffs/{id}/{version}', operationId: 'getTariff', tag: 'read', auth: 'read',
    summary: 'A published tariff version, with its commitments and salt',
    params: z.strictObject({ id: identInput.describe('tariff_id'), version: identInput.describe('tariff_version') }),
    replies: { 200: { description: 'the version', body: S.TariffView } }, errors: [401, 403, 404, 503],
  },

  // ── admin ──
  { method: 'post', path: '/v1/admin/tenants', operationId: 'createTenant', tag: 'admin', auth: 'admin', summary: 'Create a tenant', body: S.CreateTenant, replies: { 201: { description: 'created', body: S.Tenant }, 200: { description: 'it exists: the stored tenant', body: S.Tenant } }, errors: [401, 403, 413, 415, 503] },
  { method: 'get', path: '/v1/admin/tenants', operationId: 'listTenants', tag: 'admin', auth: 'admin', summary: 'List tenants', replies: { 200: { description: 'the tenants', body: S.TenantList } }, errors: [401, 403, 503] },
  { method: 'get', path: '/v1/admin/tenants/{tenant}', operationId: 'getTenant', tag: 'admin', auth: 'admin', summary: 'A tenant with its proof policy', params: tenantParam, replies: { 200: { description: 'the tenant', body: S.Tenant } }, errors: [401, 403, 404, 503] },
  {
    method: 'put', path: '/v1/admin/tenants/{tenant}/proof-policy', operationId: 'setProofPolicy', tag: 'admin', auth: 'admin',
    summary: "Set a tenant's proof policy: eager, on_demand, or sampled with a rate (docs/operations.md)",
    params: tenantParam, body: ProofPolicyInput,
    replies: { 200: { description: 'the tenant with its new policy', body: S.Tenant } }, errors: [[400, 'INVALID_PROOF_POLICY'], 401, 403, 404, 413, 415, 503],
  },
  {
    method: 'get', path: '/v1/admin/tenants/{tenant}/default-tariffs', operationId: 'listDefaultTariffs', tag: 'admin', auth: 'admin',
    summary: "A tenant's default tariff per meter", params: tenantParam,
    replies: { 200: { description: 'the defaults', body: S.DefaultTariffList } }, errors: [401, 403, [404, 'TENANT_UNKNOWN'], 503],
  },
  {
    method: 'put', path: '/v1/admin/tenants/{tenant}/default-tariffs/{meter}', operationId: 'setDefaultTariff', tag: 'admin', auth: 'admin',
    summary: 'Set the default tariff of a meter (used when an attest names no tariff)',
    description: 'The meter is a CloudEvents `type`, an endpoint (percent-encoded) or `*`; an event is priced with the default of its type, else of its endpoint, else of `*`. The version must be published.',
    params: meterParams, body: S.TariffRef,
    replies: { 201: { description: 'set', body: S.DefaultTariff }, 200: { description: 'replaced', body: S.DefaultTariff } },
    errors: [401, 403, [404, 'TENANT_UNKNOWN'], 413, 415, [422, 'TARIFF_NOT_PUBLISHED'], 503],
  },
  {
    method: 'delete', path: '/v1/admin/tenants/{tenant}/default-tariffs/{meter}', operationId: 'removeDefaultTariff', tag: 'admin', auth: 'admin',
    summary: 'Remove the default tariff of a meter', params: meterParams,
    replies: { 204: { description: 'removed' } }, errors: [401, 403, 404, 503],
  },
  { method: 'post', path: '/v1/admin/api-keys', operationId: 'createApiKey', tag: 'admin', auth: 'admin', summary: 'Create an API key (the secret is shown once)', body: CreateApiKey, replies: { 201: { description: 'the key and its secret', body: S.ApiKeyCreated } }, errors: [401, 403, 413, 415, 503] },
  { method: 'get', path: '/v1/admin/api-keys', operationId: 'listApiKeys', tag: 'admin', auth: 'admin', summary: 'List API keys (never their secrets)', replies: { 200: { description: 'the keys', body: S.ApiKeyList } }, errors: [401, 403, 503] },
  { method: 'delete', path: '/v1/admin/api-keys/{id}', operationId: 'revokeApiKey', tag: 'admin', auth: 'admin', summary: 'Revoke an API key (refused from the next request on)', params: z.strictObject({ id: z.string().describe('the key id (key_…)') }), replies: { 200: { description: 'revoked', body: S.ApiKeyRevoked } }, errors: [401, 403, 404, 503] },
  {
    method: 'post', path: '/v1/admin/tariffs', operationId: 'publishTariff', tag: 'admin', auth: 'admin',
    summary: 'Publish an immutable tariff version, with a fresh tariff salt',
    body: TariffSnapshotInput,
    replies: { 201: { description: 'published', body: S.TariffView }, 200: { description: 'the same content again: the stored version (same salt)', body: S.TariffView } },
    errors: [401, 403, [409, 'TARIFF_VERSION_EXISTS: the version is published with other content'], 413, 415, 422, 503],
  },
  { method: 'get', path: '/v1/admin/tariffs', operationId: 'listTariffs', tag: 'admin', auth: 'admin', summary: 'Every published tariff version', replies: { 200: { description: 'the versions', body: S.TariffList } }, errors: [401, 403, 503] },
  { method: 'post', path: '/v1/admin/keys/rotate', operationId: 'rotateSigningKey', tag: 'admin', auth: 'admin', summary: "Start signing with a new key; the old key's window closes after KEY_ROTATION_GRACE_MS", replies: { 201: { description: 'the new key id and the JWKS', body: S.KeyRotated } }, errors: [401, 403, 503] },
  { method: 'post', path: '/v1/admin/revocations/keys', operationId: 'revokeSigningKey', tag: 'admin', auth: 'admin', summary: 'Revoke a signing key from a time (default now); revoking the current key rotates first', body: RevokeKey, replies: { 201: { description: 'revoked', body: S.KeyRevoked } }, errors: [401, 403, 404, 413, 415, 503] },
  { method: 'post', path: '/v1/admin/revocations/attestations', operationId: 'revokeAttestation', tag: 'admin', auth: 'admin', summary: 'Revoke one attestation (by attestation_id or statement_digest)', body: RevokeAttestation, replies: { 201: { description: 'revoked', body: S.AttestationRevoked } }, errors: [401, 403, 404, 413, 415, 503] },
  {
    method: 'post', path: '/v1/admin/webhooks', operationId: 'createWebhook', tag: 'admin', auth: 'admin',
    summary: 'Register a webhook endpoint (Standard Webhooks v1; the secret is shown once)', body: S.CreateWebhook,
    replies: { 201: { description: 'registered, with its secret', body: S.WebhookCreated } }, errors: [401, 403, 413, 415, [422, 'TENANT_UNKNOWN'], 503],
  },
  { method: 'get', path: '/v1/admin/webhooks', operationId: 'listWebhooks', tag: 'admin', auth: 'admin', summary: 'List webhook endpoints (never their secrets)', replies: { 200: { description: 'the endpoints', body: S.WebhookList } }, errors: [401, 403, 503] },
  { method: 'delete', path: '/v1/admin/webhooks/{id}', operationId: 'disableWebhook', tag: 'admin', auth: 'admin', summary: 'Disable a webhook endpoint (nothing more is sent to it, pending messages included)', params: webhookParam, replies: { 200: { description: 'disabled', body: S.WebhookEndpoint } }, errors: [401, 403, 404, 503] },
  {
    method: 'get', path: '/v1/admin/webhooks/{id}/deliveries', operationId: 'listWebhookDeliveries', tag: 'admin', auth: 'admin',
    summary: "An endpoint's recent messages and their delivery state", params: webhookParam, query: S.DeliveriesQuery,
    replies: { 200: { description: 'the messages, most recent first', body: S.WebhookDeliveries } }, errors: [401, 403, 503],
  },
  { method: 'post', path: '/v1/admin/proofs/requeue', operationId: 'requeueFailedProofs', tag: 'admin', auth: 'admin', summary: 'Put proof jobs that exhausted their retries back in the queue', replies: { 200: { description: 'how many', body: S.Requeued } }, errors: [401, 403, 503] },

  // ── settle ── (docs/protocol.md §5; response bodies described in docs/api.md)
  { method: 'post', path: '/v1/admin/plans', operationId: 'publishPlan', tag: 'settle', auth: 'admin', summary: 'Publish an immutable plan version (same content again: the stored one)', body: PlanInput, replies: { 201: { description: '{plan, plan_digest, published_at}' }, 200: { description: 'published already with this content' } }, errors: [401, 403, [409, 'PLAN_VERSION_EXISTS'], 413, 415, 422, 503] },
  { method: 'get', path: '/v1/admin/plans', operationId: 'listPlans', tag: 'settle', auth: 'admin', summary: 'Every published plan version', replies: { 200: { description: '{items: [{plan, plan_digest, published_at}]}' } }, errors: [401, 403, 503] },
  { method: 'get', path: '/v1/plans/{id}/{version}', operationId: 'getPlan', tag: 'settle', auth: 'read', summary: 'A published plan version', params: z.strictObject({ id: z.string().describe('plan_id'), version: z.string().describe('plan_version') }), replies: { 200: { description: '{plan, plan_digest, published_at}' } }, errors: [401, 403, 404, 503] },
  { method: 'post', path: '/v1/admin/subscriptions', operationId: 'subscribe', tag: 'settle', auth: 'admin', summary: 'Put a plan version in effect for a tenant from a date', replies: { 201: { description: '{tenant_id, plan_id, plan_version, effective_from}' }, 200: { description: 'the same subscription exists' } }, errors: [401, 403, [409, 'SUBSCRIPTION_EXISTS'], 413, 415, 422, 503] },
  { method: 'get', path: '/v1/admin/subscriptions', operationId: 'listSubscriptions', tag: 'settle', auth: 'admin', summary: "A tenant's subscriptions", query: S.SettlementListQuery, replies: { 200: { description: '{items: [subscription]}' } }, errors: [401, 403, 503] },
  { method: 'post', path: '/v1/settlements', operationId: 'settle', tag: 'settle', auth: 'admin', summary: "Settle a tenant's billing window: claim, re-verify, aggregate, sign, log", replies: { 201: { description: 'the settlement (statement, digest, signature, status)' } }, errors: [401, 403, [409, 'SETTLEMENT_EXISTS; LATE_EVENTS_CLAIMED: a settlement of another window holds late statements of this one'], 413, 415, [422, 'the failed run\'s code (CHAIN_GAP, NOTHING_TO_SETTLE, …)'], 503] },
  { method: 'get', path: '/v1/settlements', operationId: 'listSettlements', tag: 'settle', auth: 'read', summary: "A tenant's settlements", query: S.SettlementListQuery, replies: { 200: { description: '{items: [settlement]}' } }, errors: [401, 403, 503] },
  { method: 'get', path: '/v1/settlements/{id}', operationId: 'getSettlement', tag: 'settle', auth: 'read', summary: 'A settlement with its status history', params: z.strictObject({ id: z.string() }), replies: { 200: { description: 'the settlement' } }, errors: [401, 403, 404, 503] },
  { method: 'get', path: '/v1/settlements/{id}/evidence', operationId: 'settlementEvidence', tag: 'settle', auth: 'read', summary: 'The evidence to recompute and check a settlement offline (meterproof settlement verify)', params: z.strictObject({ id: z.string() }), replies: { 200: { description: 'signed settlement, receipt, plan and every included statement' } }, errors: [401, 403, 404, 503] },
  { method: 'post', path: '/v1/settlements/adjustments', operationId: 'createAdjustment', tag: 'settle', auth: 'admin', summary: "A signed credit or debit line (exact micros) naming the attestations it corrects; the tenant's next settlement run claims it", body: AdjustmentInput,
    headers: [{ name: 'Idempotency-Key', description: 'optional, 1 to 255 visible ASCII characters: a retry with the same key and body is answered 200 with the adjustment first signed (Idempotent-Replayed: true); the same key with another body is 409 IDEMPOTENCY_CONFLICT' }],
    replies: {
      201: { description: '{id, adjustment, adjustment_digest, key_id, signature, settlement_id: null}' },
      200: { description: 'a retry with the same Idempotency-Key and body: the adjustment its first attempt signed, with its settlement_id', headers: { 'Idempotent-Replayed': { description: '`true`', schema: { type: 'string', enum: ['true'] } } } },
    },
    errors: [401, 403, [409, 'IDEMPOTENCY_CONFLICT'], 413, 415, [422, 'ADJUSTMENT_ATTESTATION_UNKNOWN'], 503] },
  { method: 'get', path: '/v1/settlements/adjustments/{id}', operationId: 'getAdjustment', tag: 'settle', auth: 'read', summary: 'A signed adjustment and the settlement that claimed it (null until one does)', params: z.strictObject({ id: z.string() }), replies: { 200: { description: '{id, adjustment, adjustment_digest, key_id, signature, settlement_id}' } }, errors: [401, 403, 404, 503] },
  { method: 'get', path: '/v1/evidence', operationId: 'evidencePack', tag: 'settle', auth: 'read', summary: 'An evidence pack (docs/protocol.md §6) of one attestation, a billing window or a settlement: application/x-ndjson, streamed', query: S.EvidenceQuery, replies: { 200: { description: 'the pack (application/x-ndjson): header, one line per bundle, the settlement line, the signed manifest' } }, errors: [401, 403, 404, [503, 'LOG_NOT_READY; STORE_UNAVAILABLE']] },
  { method: 'get', path: '/v1/reports', operationId: 'auditReport', tag: 'settle', auth: 'read', summary: "The auditor's report (text/html, printable) of an attestation, a billing window or a settlement: the pack made and verified by the service, totals, breakdowns, every check", query: S.EvidenceQuery, replies: { 200: { description: 'a self-contained HTML page (text/html)' } }, errors: [401, 403, 404, [503, 'LOG_NOT_READY; STORE_UNAVAILABLE']] },
  { method: 'post', path: '/v1/reconcile', operationId: 'reconcile', tag: 'settle', auth: 'read', summary: 'Reconcile invoice lines (text/csv, application/x-ndjson or application/json; streamed, up to 256 MiB) with the attested charges of a billing window', query: S.ReconcileQuery, replies: { 200: { description: 'the reconciliation', body: S.ReconcileResponse } }, errors: [[400, 'INVALID_INVOICE, INVALID_UTF8'], 401, 403, 413, 415, 503] },
  { method: 'patch', path: '/v1/settlements/{id}/status', operationId: 'setSettlementStatus', tag: 'settle', auth: 'admin', summary: 'Move a settlement: pending → invoiced → paid; invoiced ⇄ disputed; → void', params: z.strictObject({ id: z.string() }), replies: { 200: { description: 'the settlement with its new status' } }, errors: [401, 403, 404, [409, 'ILLEGAL_TRANSITION'], 413, 415, 503] },
  { method: 'get', path: '/v1/sla', operationId: 'sla', tag: 'settle', auth: 'read', summary: 'Per meter: outcome counts and actual vs contracted uptime (basis points) over a period', replies: { 200: { description: 'per-meter SLA figures' } }, errors: [401, 403, 503] },

  // ── bilateral metering ── (docs/protocol.md §2.14, §2.15; response bodies described in docs/api.md)
  { method: 'put', path: '/v1/admin/tenants/{tenant}/consumer-pop', operationId: 'setConsumerPopPolicy', tag: 'admin', auth: 'admin', summary: "Require a consumer's proof of possession with every event of the tenant, or not", params: tenantParam, replies: { 200: { description: '{tenant_id, consumer_pop, required_since}' } }, errors: [[400, 'INVALID_POP_POLICY'], 401, 403, 404, 413, 415, 503] },
  { method: 'post', path: '/v1/admin/consumers', operationId: 'registerConsumer', tag: 'admin', auth: 'admin', summary: 'Register a consumer of a tenant with its Ed25519 public key', replies: { 201: { description: 'the consumer and its keys' }, 200: { description: 'registered already with this key' } }, errors: [[400, 'INVALID_CONSUMER, INVALID_CONSUMER_KEY'], 401, 403, [409, 'CONSUMER_EXISTS'], 413, 415, [422, 'TENANT_UNKNOWN'], 503] },
  { method: 'get', path: '/v1/admin/consumers', operationId: 'listConsumers', tag: 'admin', auth: 'admin', summary: 'Consumers (of one tenant with ?tenant_id=)', replies: { 200: { description: '{items: [consumer]}' } }, errors: [401, 403, 503] },
  { method: 'get', path: '/v1/admin/consumers/{tenant}/{consumer}', operationId: 'getConsumer', tag: 'admin', auth: 'admin', summary: 'A consumer and its keys', params: z.strictObject({ tenant: z.string(), consumer: z.string() }), replies: { 200: { description: 'the consumer and its keys' } }, errors: [401, 403, [404, 'CONSUMER_UNKNOWN'], 503] },
  { method: 'post', path: '/v1/admin/consumers/{tenant}/{consumer}/keys', operationId: 'rotateConsumerKey', tag: 'admin', auth: 'admin', summary: "Add a consumer's new key (rotation)", params: z.strictObject({ tenant: z.string(), consumer: z.string() }), replies: { 201: { description: 'the consumer and its keys' } }, errors: [[400, 'INVALID_CONSUMER_KEY'], 401, 403, [404, 'CONSUMER_UNKNOWN'], [409, 'CONSUMER_KEY_EXISTS'], 413, 415, 503] },
  { method: 'post', path: '/v1/admin/consumers/{tenant}/{consumer}/keys/{kid}/revoke', operationId: 'revokeConsumerKey', tag: 'admin', auth: 'admin', summary: "Revoke a consumer's key from a time (default now)", params: z.strictObject({ tenant: z.string(), consumer: z.string(), kid: z.string() }), replies: { 200: { description: 'the consumer and its keys' } }, errors: [[400, 'INVALID_REVOCATION'], 401, 403, [404, 'CONSUMER_UNKNOWN, CONSUMER_KEY_UNKNOWN'], 413, 415, 503] },
  { method: 'post', path: '/v1/attestations/{id}/countersignatures', operationId: 'countersign', tag: 'read', auth: 'read', summary: "Store the consumer's countersignature of the attestation's statement digest", params: idParam, replies: { 201: { description: 'stored: the countersignature as bundles carry it' }, 200: { description: 'the same countersignature again' } }, errors: [[400, 'INVALID_COUNTERSIGNATURE'], 401, 403, 404, [409, 'COUNTERSIGNATURE_EXISTS'], 413, 415, [422, 'COUNTERSIGNATURE_INVALID'], 503] },

  // ── log ──
  { method: 'get', path: '/v1/log/checkpoint', operationId: 'getLogCheckpoint', tag: 'log', auth: 'public', summary: 'The latest signed checkpoint (C2SP signed note)', replies: { 200: { description: 'the checkpoint note', body: textBody } }, errors: [[503, 'LOG_NOT_READY before the first checkpoint; STORE_UNAVAILABLE']] },
  { method: 'get', path: '/v1/log/verifier-key', operationId: 'getLogVerifierKey', tag: 'log', auth: 'public', summary: 'The C2SP signed-note verifier key `<name>+<hex id>+<base64 key>`', replies: { 200: { description: 'the verifier key and a newline', body: textBody } } },
  { method: 'get', path: '/v1/log/proof/inclusion', operationId: 'getInclusionProof', tag: 'log', auth: 'public', summary: 'Inclusion proof of a leaf in a tree size', query: S.InclusionQuery, replies: { 200: { description: 'the proof', body: S.InclusionProof } }, errors: [503] },
  { method: 'get', path: '/v1/log/proof/consistency', operationId: 'getConsistencyProof', tag: 'log', auth: 'public', summary: 'Consistency proof between two tree sizes', query: S.ConsistencyQuery, replies: { 200: { description: 'the proof', body: S.ConsistencyProof } }, errors: [503] },
  { method: 'get', path: '/v1/log/entries', operationId: 'getLogEntries', tag: 'log', auth: 'public', summary: 'Log entries [start, end)', query: S.EntriesQuery, replies: { 200: { description: 'the entries', body: S.LogEntries } }, errors: [503] },
];

// ── document ──────────────────────────────────────────────────────────────────────────────
const ERROR_RESPONSES: Partial<Record<ProblemInfoStatus, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  408: 'RequestTimeout',
  409: 'Conflict',
  413: 'ContentTooLarge',
  415: 'UnsupportedMediaType',
  422: 'UnprocessableContent',
  431: 'RequestHeaderFieldsTooLarge',
  500: 'InternalServerError',
  503: 'ServiceUnavailable',
};
/** Every route: 400 UNSUPPORTED_CHARACTER (%00 in the URL) and the HTTP parser's refusals
 *  (MALFORMED_HTTP, REQUEST_TIMEOUT, HEADERS_TOO_LARGE), 500 INTERNAL. */
const ALWAYS: ProblemInfoStatus[] = [400, 408, 431, 500];

/** Extra JSON Schema for shared zod schemas whose checks JSON Schema cannot express (refinements). */
class DocsRegistry extends $ZodRegistry<Record<string, unknown>> {
  /** Also what the schemas carry themselves (`.describe()` puts it in zod's global registry). */
  override get(schema: $ZodType): Record<string, unknown> | undefined {
    const own = z.globalRegistry.get(schema);
    const here = super.get(schema);
    return own || here ? { ...own, ...here } : undefined;
  }
}
const docs = new DocsRegistry();
docs.add(u64String, { description: 'unsigned 64-bit integer as a canonical decimal string', pattern: '^(0|[1-9][0-9]{0,19})$' });
docs.add(u64Input, { description: 'unsigned 64-bit integer: a safe JSON integer or a canonical decimal string (< 2^64)' });
docs.add(utcTimestamp, { description: 'RFC 3339 timestamp in UTC (Z), e.g. 2026-05-29T12:00:00.000Z', format: 'date-time' });
for (const [name, c] of Object.entries(COMPONENTS)) docs.add(c.schema, { ...docs.get(c.schema), id: name });

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const nameOf = new Map([...Object.entries(COMPONENTS)].map(([name, c]) => [c.schema, name]));

function jsonSchema(schema: z.ZodType, io: Io, keepDefaults = false): Record<string, unknown> {
  const s = z.toJSONSchema(schema, { io, target: 'draft-2020-12', unrepresentable: 'any', metadata: docs, override: overrideFor(keepDefaults ? 'output' : io) }) as Record<string, unknown>;
  delete s['$schema'];
  return s;
}

type Def = { type: string; in?: { _zod: { def: { type: string } } }; out?: z.ZodType };

/** Adjustments to what z.toJSONSchema makes of a schema:
 *  - a pipe from a check JSON Schema cannot express (z.custom) into a representable schema
 *    (dimensions) is documented as the schema it pipes into;
 *  - on the input side, a field's default goes into its description instead of `default`: code
 *    generators (openapi-typescript by default) make a field with a `default` required, and a
 *    client must be able to leave it out (parameters keep `default`: an absent parameter is
 *    optional whatever its schema says). */
function overrideFor(io: Io) {
  return (ctx: { zodSchema: unknown; jsonSchema: Record<string, unknown> }): void => {
    const def = (ctx.zodSchema as { _zod: { def: Def } })._zod.def;
    if (def.type === 'pipe' && def.in?._zod.def.type === 'custom' && def.out) Object.assign(ctx.jsonSchema, jsonSchema(def.out, 'output'));
    if (io === 'input' && 'default' in ctx.jsonSchema) {
      const text = `Default: \`${JSON.stringify(ctx.jsonSchema['default'])}\`.`;
      const d = ctx.jsonSchema['description'];
      ctx.jsonSchema['description'] = typeof d === 'string' && d ? `${d}. ${text}` : text;
      delete ctx.jsonSchema['default'];
    }
  };
}

function componentSchemas(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const io of ['input', 'output'] as const) {
    const all = z.toJSONSchema(docs, { io, target: 'draft-2020-12', unrepresentable: 'any', metadata: docs, override: overrideFor(io), uri: (id) => `#/components/schemas/${id}` }).schemas as Record<string, Record<string, unknown>>;
    for (const [name, c] of Object.entries(COMPONENTS)) {
      if (c.io !== io) continue;
      const { $schema: _s, $id: _i, ...schema } = all[name]!;
      out[name] = schema;
    }
  }
  return Object.fromEntries(Object.keys(COMPONENTS).sort().map((k) => [k, out[k]]));
}

function bodySchema(schema: z.ZodType): object {
  const name = nameOf.get(schema);
  if (!name) throw new Error('every request and response body is a named component (add it to COMPONENTS in src/http/openapi.ts)');
  return ref(name);
}

function requestContent(body: z.ZodType | Record<string, z.ZodType>): object {
  const byType = body instanceof z.ZodType ? { 'application/json': body } : body;
  return Object.fromEntries(Object.entries(byType).map(([type, schema]) => [type, { schema: bodySchema(schema) }]));
}

function parameters(op: Operation): object[] {
  const out: object[] = [];
  const add = (where: 'path' | 'query', obj: z.ZodObject | undefined) => {
    for (const [name, field] of Object.entries(obj?.shape ?? {})) {
      const f = field as z.ZodType;
      const { description, ...schema } = jsonSchema(f, 'input', true);
      out.push({ name, in: where, required: where === 'path' || !f.safeParse(undefined).success, ...(description ? { description } : {}), schema });
    }
  };
  add('path', op.params);
  add('query', op.query);
  for (const h of op.headers ?? []) out.push({ name: h.name, in: 'header', required: false, description: h.description, schema: { type: 'string' } });
  return out;
}

/** The content of the bodies that are not JSON. */
const NON_JSON = {
  text: { 'text/plain': { schema: { type: 'string' } } },
  html: { 'text/html': { schema: { type: 'string' } } },
  asset: { 'text/css': { schema: { type: 'string' } }, 'text/javascript': { schema: { type: 'string' } } },
} as const;

function operation(op: Operation, used: Set<ProblemInfoStatus>): object {
  const responses: Record<string, object> = {};
  for (const [status, r] of Object.entries(op.replies)) {
    const content = r!.body === undefined ? undefined : typeof r!.body === 'string' ? NON_JSON[r!.body] : { [r!.contentType ?? 'application/json']: { schema: bodySchema(r!.body) } };
    responses[status] = { description: r!.description, ...(r!.headers ? { headers: r!.headers } : {}), ...(content ? { content } : {}) };
  }
  const errors: ErrorStatus[] = [...ALWAYS, ...(op.errors ?? [])];
  for (const e of errors) {
    const [status, note] = Array.isArray(e) ? e : [e, undefined];
    if (responses[status]) continue;
    const name = ERROR_RESPONSES[status];
    if (!name) throw new Error(`no components.responses entry for ${status} (add it to ERROR_RESPONSES)`);
    used.add(status);
    // OpenAPI 3.1: a Reference Object may carry its own description
    responses[status] = { $ref: `#/components/responses/${name}`, ...(note ? { description: note } : {}) };
  }
  const sorted = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => Number(a) - Number(b)));
  const params = parameters(op);
  return {
    operationId: op.operationId,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    security: op.auth === 'public' ? [] : [{ apiKey: [op.auth] }, { adminToken: [] }],
    ...(params.length ? { parameters: params } : {}),
    ...(op.body ? { requestBody: { required: true, content: requestContent(op.body) } } : {}),
    responses: sorted,
  };
}

function errorResponses(used: Set<ProblemInfoStatus>): Record<string, object> {
  const out: Record<string, object> = {};
  for (const [status, name] of Object.entries(ERROR_RESPONSES)) {
    if (!used.has(Number(status) as ProblemInfoStatus)) continue;
    const codes = Object.entries(PROBLEM_CODES).filter(([, i]) => [i.status, ...(i.also ?? [])].map(String).includes(status)).map(([c]) => `\`${c}\``);
    out[name] = {
      description: codes.length ? `problem+json: ${codes.join(', ')}` : 'problem+json',
      ...(status === '503' ? { headers: { 'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer' } } } } : {}),
      content: { 'application/problem+json': { schema: ref('Problem') } },
    };
  }
  return out;
}

export function buildOpenApiDocument(version = '0.1.0'): Record<string, unknown> {
  const paths: Record<string, Record<string, object>> = {};
  const used = new Set<ProblemInfoStatus>();
  for (const op of OPERATIONS) (paths[op.path] ??= {})[op.method] = operation(op, used);
  return {
    openapi: '3.1.0',
    info: {
      title: 'meterproof',
      version,
      description:
        'Zero-knowledge billing attestation: exact charges, signed bundles, a transparency log and Groth16 proofs. The guide is docs/api.md. Every error is application/problem+json with a stable `code`; every response carries X-Request-Id.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    // relative: the server that serves this document (a local `meterproof serve` listens on PORT, 8088 by default)
    servers: [{ url: '/', description: 'the server that serves this document' }],
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
    paths,
    // what this service sends to registered endpoints (POST /v1/admin/webhooks)
    webhooks: Object.fromEntries([
      ...(['proof.ready', 'proof.failed'] as const).map((type) => [
        type,
        {
          post: {
            operationId: type === 'proof.ready' ? 'onProofReady' : 'onProofFailed',
            tags: ['admin'],
            summary: type === 'proof.ready' ? 'The Groth16 proof of an attestation is ready' : 'Proving an attestation failed for good',
            description: 'Standard Webhooks v1: webhook-id, webhook-timestamp and webhook-signature headers (docs/api.md, Webhooks). Answer 2xx; anything else is retried with backoff.',
            security: [],
            requestBody: { required: true, content: { 'application/json': { schema: ref('ProofWebhook') } } },
            responses: { '200': { description: 'received' } },
          },
        },
      ]),
      [
        'settlement.status_changed',
        {
          post: {
            operationId: 'onSettlementStatusChanged',
            tags: ['settle'],
            summary: "A settlement's status changed (invoiced, disputed, paid, void)",
            description: 'Standard Webhooks v1: webhook-id, webhook-timestamp and webhook-signature headers (docs/api.md, Webhooks). Answer 2xx; anything else is retried with backoff.',
            security: [],
            requestBody: { required: true, content: { 'application/json': { schema: ref('SettlementWebhook') } } },
            responses: { '200': { description: 'received' } },
          },
        },
      ],
    ]),
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'An API key secret (`mp_…`, POST /v1/admin/api-keys). Each operation names the scope it needs; a key with the admin scope has every scope.' },
        adminToken: { type: 'http', scheme: 'bearer', description: 'The admin token (METERPROOF_ADMIN_TOKEN, or DATA_DIR/admin-token): every scope.' },
      },
      schemas: componentSchemas(),
      responses: errorResponses(used),
    },
  };
}

let cached: { version: string; doc: Record<string, unknown> } | null = null;
/** The document for this service version, built once per process. */
export function openApiDocument(version = '0.1.0'): Record<string, unknown> {
  if (cached?.version !== version) cached = { version, doc: buildOpenApiDocument(version) };
  return cached.doc;
}
