// OpenAPI 3.1 document generated from the zod schemas (JSON Schema 2020-12 via z.toJSONSchema).
import { z } from 'zod';
import { FullBundle, RedactedBundle, MeterEventInput, CloudEventInput, TariffSnapshotInput, VerificationReport } from '../core/schemas.ts';
import { TrustMaterial } from '../core/trust.ts';
import { CreateApiKey } from '../service/admin.ts';
import { ProofPolicyInput } from '../core/proof-policy.ts';

let cached: object | null = null;

const schemaOf = (s: z.ZodType, io: 'input' | 'output' = 'output') => z.toJSONSchema(s, { io, unrepresentable: 'any', target: 'draft-2020-12' });

export function openApiDocument(): object {
  if (cached) return cached;
  const problem = { $ref: '#/components/schemas/Problem' };
  const err = (desc: string) => ({ description: desc, content: { 'application/problem+json': { schema: problem } } });
  const json = (ref: string) => ({ content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } } });
  cached = {
    openapi: '3.1.0',
    info: { title: 'meterproof', version: '0.1.0', description: 'Zero-knowledge billing attestation. See docs/api.md.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Bundle: schemaOf(FullBundle),
        RedactedBundle: schemaOf(RedactedBundle),
        MeterEvent: schemaOf(MeterEventInput, 'input'),
        CloudEvent: schemaOf(CloudEventInput, 'input'),
        TariffSnapshot: schemaOf(TariffSnapshotInput, 'input'),
        VerificationReport: schemaOf(VerificationReport),
        TrustMaterial: schemaOf(TrustMaterial),
        CreateApiKey: schemaOf(CreateApiKey, 'input'),
        ProofPolicy: schemaOf(ProofPolicyInput, 'input'),
        AttestRequest: {
          type: 'object',
          additionalProperties: false,
          required: ['meter_event'],
          properties: {
            meter_event: { oneOf: [{ $ref: '#/components/schemas/MeterEvent' }, { $ref: '#/components/schemas/CloudEvent' }] },
            tariff_snapshot: { $ref: '#/components/schemas/TariffSnapshot' },
            tariff: { type: 'object', additionalProperties: false, required: ['tariff_id', 'tariff_version'], properties: { tariff_id: { type: 'string' }, tariff_version: { type: 'string' } } },
          },
        },
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'code', 'detail'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            code: { type: 'string' },
            detail: { type: 'string' },
            errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
          },
        },
      },
    },
    paths: {
      '/v1/attest': {
        post: {
          summary: 'Attest one billable event',
          security: [{ bearer: [] }],
          parameters: [
            { name: 'proof', in: 'query', schema: { enum: ['async', 'sync'], default: 'async' } },
            { name: 'Prefer', in: 'header', description: '`return=minimal`: {id, statement_digest, charge_micros, proof_status} instead of the bundle (RFC 7240)', schema: { type: 'string' } },
          ],
          requestBody: { required: true, ...json('AttestRequest') },
          responses: {
            '201': { description: 'attested', ...json('Bundle') },
            '200': { description: 'exact replay of an attested event: the original bundle', ...json('Bundle') },
            '400': err('invalid input'),
            '401': err('no or unknown API key'),
            '403': err('scope or tenant not allowed'),
            '409': err('same event_id, different content'),
            '413': err('body too large'),
            '422': err('semantically invalid (tariff, tenant, ranges)'),
          },
        },
      },
      '/v1/attest/batch': {
        post: {
          summary: 'Attest up to 1,000 events, one result per item',
          security: [{ bearer: [] }],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['events'], properties: { events: { type: 'array', maxItems: 1000, items: { $ref: '#/components/schemas/AttestRequest' } } } } } } },
          parameters: [{ name: 'Prefer', in: 'header', description: '`return=minimal`: per item {index, status, id, statement_digest, charge_micros, proof_status} instead of the bundle (RFC 7240)', schema: { type: 'string' } }],
          responses: { '200': { description: 'per-item results (status, id, bundle or problem)' }, '400': err('invalid batch') },
        },
      },
      '/v1/attestations/{id}': {
        get: {
          summary: 'Fetch a bundle with its receipt refreshed to the latest checkpoint',
          security: [{ bearer: [] }],
          parameters: [
            { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
            { name: 'proof', in: 'query', schema: { enum: ['async', 'sync'] } },
          ],
          responses: { '200': { description: 'the bundle (X-Proof-Status: pending | proved | failed | on_demand | deferred)', ...json('Bundle') }, '404': err('not found') },
        },
      },
      '/v1/attestations/{id}/prove': {
        post: {
          summary: 'Prove an attestation now (on_demand, deferred; a queued job moves ahead of the queue)',
          security: [{ bearer: [] }],
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{64}$' } }],
          responses: { '202': { description: '{id, proof_status: "pending"}: the job runs' }, '200': { description: '{id, proof_status}: proved or failed already' }, '404': err('not found') },
        },
      },
      '/v1/attestations': {
        get: {
          summary: 'List attestations of a tenant (cursor pagination)',
          security: [{ bearer: [] }],
          parameters: [
            { name: 'tenant_id', in: 'query', required: true, schema: { type: 'string' } },
            { name: 'window', in: 'query', schema: { type: 'string' } },
            { name: 'cursor', in: 'query', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500 } },
          ],
          responses: { '200': { description: '{items, next_cursor}' } },
        },
      },
      '/v1/verify': {
        post: {
          summary: 'Verify a bundle (no auth) with the service trust material',
          parameters: [{ name: 'profile', in: 'query', schema: { enum: ['strict', 'standard'], default: 'strict' } }],
          requestBody: { required: true, content: { 'application/json': { schema: { oneOf: [{ $ref: '#/components/schemas/Bundle' }, { $ref: '#/components/schemas/RedactedBundle' }] } } } },
          responses: { '200': { description: 'the report', ...json('VerificationReport') } },
        },
      },
      '/v1/trust': { get: { summary: 'Trust material for offline verification', responses: { '200': { description: 'trust', ...json('TrustMaterial') } } } },
      '/.well-known/jwks.json': { get: { summary: 'Statement-signing public keys with validity windows', responses: { '200': { description: 'JWKS' } } } },
      '/health': { get: { summary: 'Liveness: the process answers (no I/O)', responses: { '200': { description: '{"status":"ok"}' } } } },
      '/ready': {
        get: {
          summary: 'Readiness: store reachable, migrations applied, signing key loaded, log sequencer running, not shutting down',
          responses: {
            '200': { description: '{"status":"ready","checks":{"store":"ok","migrations":"ok","keys":"ok","sequencer":"ok"}}' },
            '503': err('NOT_READY: the problem names what is not ready; `checks` holds every check'),
          },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics (text format 0.0.4); an API key with the `metrics` scope or the admin token',
          security: [{ bearer: [] }],
          responses: { '200': { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } }, '401': err('no or unknown key'), '403': err('the key lacks the metrics scope') },
        },
      },
      '/v1/status': { get: { summary: 'Service status', responses: { '200': { description: 'status' } } } },
      '/v1/admin/tenants': { post: { summary: 'Create a tenant', security: [{ bearer: [] }], responses: { '201': { description: 'created' } } }, get: { summary: 'List tenants', security: [{ bearer: [] }], responses: { '200': { description: 'tenants' } } } },
      '/v1/admin/tenants/{id}': { get: { summary: 'A tenant with its proof policy', security: [{ bearer: [] }], parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'the tenant' }, '404': err('unknown tenant') } } },
      '/v1/admin/tenants/{id}/proof-policy': {
        put: {
          summary: "Set the tenant's proof policy: eager, on_demand, or sampled at a rate (0 < rate ≤ 1)",
          security: [{ bearer: [] }],
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/ProofPolicy' } } } },
          responses: { '200': { description: 'the tenant' }, '400': err('INVALID_PROOF_POLICY'), '404': err('unknown tenant') },
        },
      },
      '/v1/admin/api-keys': {
        post: { summary: 'Create an API key (secret shown once)', security: [{ bearer: [] }], requestBody: { required: true, ...json('CreateApiKey') }, responses: { '201': { description: 'the key and its secret' } } },
        get: { summary: 'List API keys (never secrets)', security: [{ bearer: [] }], responses: { '200': { description: 'keys' } } },
      },
      '/v1/admin/tariffs': { post: { summary: 'Publish an immutable tariff version', security: [{ bearer: [] }], requestBody: { required: true, ...json('TariffSnapshot') }, responses: { '201': { description: 'published, with its tariff commitment' }, '409': err('version exists with other content') } } },
      '/v1/admin/keys/rotate': { post: { summary: 'Rotate the statement-signing key', security: [{ bearer: [] }], responses: { '201': { description: 'new key id and JWKS' } } } },
    },
  };
  return cached;
}
