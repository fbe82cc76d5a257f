// Every `code` an HTTP problem (RFC 9457) can carry, with its status and meaning: the closed list
// clients switch on. ServiceError only takes a code from this list, so a new code does not
// compile until it is listed here; GET /openapi.json publishes the list as the Problem `code`
// enum, and docs/api.md names every code (test/openapi.test.ts checks both).
import { CHARGE_ERROR_CODES, type ChargeErrorCode } from '../core/errors.ts';

export interface ProblemCodeInfo {
  readonly status: 400 | 401 | 403 | 404 | 408 | 409 | 413 | 415 | 422 | 429 | 431 | 500 | 503;
  readonly description: string;
  /** Other statuses the code is answered with. */
  readonly also?: readonly ProblemCodeInfo['status'][];
}

export type ProblemInfoStatus = ProblemCodeInfo['status'];

const SERVICE_CODES = {
  INVALID_JSON: { status: 400, description: 'the body is not JSON' },
  INVALID_UTF8: { status: 400, description: 'the body is not UTF-8' },
  DUPLICATE_KEY: { status: 400, description: 'an object names a member twice (I-JSON, RFC 7493); errors[0].path names the object' },
  NOT_NFC: { status: 400, description: 'an identifier is not in Unicode NFC' },
  BAD_REQUEST: { status: 400, description: 'the body does not have the expected shape' },
  INVALID_QUERY: { status: 400, description: 'a query parameter is unknown, missing, repeated or malformed' },
  INVALID_METER_EVENT: { status: 400, description: 'meter_event is not valid' },
  INVALID_TARIFF: { status: 400, description: 'the tariff snapshot is not valid' },
  INVALID_TARIFF_REF: { status: 400, description: 'tariff is not {tariff_id, tariff_version}' },
  TARIFF_REQUIRED: { status: 400, description: 'neither tariff_snapshot nor tariff was sent, and the tenant has no default tariff for the meter' },
  INVALID_CLOUDEVENT: { status: 400, description: 'a CloudEvents structured or batched body holds something that is not a CloudEvent' },
  INVALID_METER: { status: 400, description: 'a default-tariff meter is not a CloudEvents type, an endpoint or *' },
  INVALID_WEBHOOK: { status: 400, description: 'a webhook endpoint request is not valid' },
  BATCH_SIZE: { status: 400, description: 'a batch holds 1 to 1,000 events' },
  UNSUPPORTED_CHARACTER: { status: 400, description: 'U+0000 or a lone surrogate in a string or key, or %00 in the URL' },
  BODY_INCOMPLETE: { status: 400, description: 'the client closed the connection mid-body' },
  MALFORMED_HTTP: { status: 400, description: 'refused by the HTTP parser (unknown method, bad chunk, malformed request line or headers)' },
  INVALID_TENANT: { status: 400, description: 'a tenant request is not {id, name?}' },
  INVALID_PLAN: { status: 400, description: 'a plan is not valid (docs/protocol.md §5.1)' },
  PLAN_TIERS_INVALID: { status: 400, description: "a plan meter's overage tiers are not increasing or do not end unbounded" },
  PLAN_METERS_DUPLICATE: { status: 400, description: 'a plan names a meter twice' },
  INVALID_SUBSCRIPTION: { status: 400, description: 'a subscription is not {tenant_id, plan_id, plan_version, effective_from}' },
  INVALID_SETTLEMENT_REQUEST: { status: 400, description: 'a settlement request is not {tenant_id, billing_window_id}' },
  INVALID_ADJUSTMENT: { status: 400, description: 'an adjustment is not {tenant_id, kind: credit | debit, amount_micros > 0, currency, attestation_ids, reason}' },
  INVALID_IDEMPOTENCY_KEY: { status: 400, description: 'an Idempotency-Key header is not 1 to 255 visible ASCII characters' },
  INVALID_STATUS: { status: 400, description: 'a status change is not {status, reason?}' },
  PLAN_VERSION_EXISTS: { status: 409, description: 'the plan version is published with other content; publish a new version' },
  SUBSCRIPTION_EXISTS: { status: 409, description: 'the tenant has a subscription from that date already' },
  PERIOD_SETTLED: { status: 409, description: "attest: the tenant's billing window is settled or being settled, and its plan refuses late events" },
  SETTLEMENT_EXISTS: { status: 409, description: 'another run, or a settlement that is not void, holds the window' },
  LATE_EVENTS_CLAIMED: { status: 409, description: "a settlement of another window (not void) claimed late statements of this window: void it first" },
  ILLEGAL_TRANSITION: { status: 409, description: 'the settlement status cannot move that way (pending → invoiced → paid; invoiced ⇄ disputed; → void)' },
  NO_SUBSCRIPTION: { status: 422, description: 'the tenant has no subscription in effect at that time' },
  METER_NOT_IN_PLAN: { status: 422, description: "the plan in effect has no such meter" },
  PLAN_NOT_PUBLISHED: { status: 422, description: 'the plan version is not published' },
  CURRENCY_MISMATCH: { status: 422, description: "a plan's tariffs, or a window's statements, are in other currencies than the plan" },
  ADJUSTMENT_ATTESTATION_UNKNOWN: { status: 422, description: 'an adjustment names an attestation the tenant does not have' },
  NOTHING_TO_SETTLE: { status: 422, description: 'the window has no attestation to settle' },
  CHAIN_GAP: { status: 422, description: 'settlement: a chain of the window misses a sequence number' },
  CHAIN_BROKEN: { status: 422, description: "settlement: a statement's prev link does not match its predecessor" },
  CHAIN_INCOMPLETE: { status: 422, description: 'settlement: a chain of the window does not start at seq 0 or ends before its head' },
  UNPLANNED_METER: { status: 422, description: 'settlement: the window has events of a meter the plan does not have' },
  STATEMENT_UNSUPPORTED: { status: 422, description: 'settlement: a statement is not of a type a settlement takes' },
  STATEMENT_MISMATCH: { status: 422, description: 'settlement: a stored statement differs from its row' },
  STATEMENT_DIGEST_MISMATCH: { status: 422, description: "settlement: a statement's digest differs from its stored digest" },
  SIGNATURE_INVALID: { status: 422, description: "settlement: a statement's signature does not verify" },
  KEY_REVOKED: { status: 422, description: 'settlement: a statement was signed by a key revoked at its time' },
  INVALID_CONSUMER: { status: 400, description: 'a consumer registration is not {tenant_id, consumer_id, public_key (Ed25519 JWK)}' },
  INVALID_CONSUMER_KEY: { status: 400, description: "a consumer key is not an Ed25519 public JWK, or its kid is not the key's RFC 7638 thumbprint" },
  INVALID_POP_POLICY: { status: 400, description: 'a consumer PoP policy is not {consumer_pop: "required" | "optional"}' },
  INVALID_COUNTERSIGNATURE: { status: 400, description: 'a countersignature is not {consumer_id, key_id, signed_at, signature}' },
  CONSUMER_FORBIDDEN: { status: 403, description: "the consumer-scoped key may not act for that consumer, or read what covers every consumer (settlements, SLA figures)" },
  CONSUMER_UNKNOWN: { status: 404, description: 'no such consumer of the tenant' },
  CONSUMER_KEY_UNKNOWN: { status: 404, description: 'no such key of the consumer' },
  CONSUMER_EXISTS: { status: 409, description: 'the consumer is registered with another key' },
  CONSUMER_KEY_EXISTS: { status: 409, description: 'the consumer has that key already' },
  COUNTERSIGNATURE_EXISTS: { status: 409, description: 'the consumer countersigned this attestation with another signature' },
  POP_REPLAY: { status: 409, description: "the PoP's nonce was used before by this consumer (docs/protocol.md §2.14)" },
  POP_INVALID: { status: 422, description: 'the consumer PoP is malformed, its key unknown or not valid now, or its signature does not verify' },
  POP_REQUIRED: { status: 422, description: "the tenant's events need a consumer PoP" },
  POP_STALE: { status: 422, description: "the PoP's timestamp is further from the server's clock than POP_TOLERANCE_MS" },
  POP_TARIFF_MISMATCH: { status: 422, description: 'the PoP names another tariff digest than the pinned tariff, or the request its payload hash does not match' },
  COUNTERSIGNATURE_INVALID: { status: 422, description: "the countersignature does not verify with the consumer's key valid at its time" },
  INVALID_PROOF_POLICY: { status: 400, description: 'a proof policy is {policy: "eager" | "on_demand"} or {policy: "sampled", rate: 0 < rate ≤ 1}' },
  INVALID_API_KEY_REQUEST: { status: 400, description: 'an API key request is not valid' },
  INVALID_REVOCATION: { status: 400, description: 'a revocation request is not valid' },
  INVALID_INVOICE: { status: 400, description: 'POST /v1/reconcile: the invoice lines cannot be read at all (a CSV header without a reference, amount or currency column; JSON that is not an array)' },
  OUT_OF_RANGE: { status: 400, description: 'a log index, size or range this log cannot serve' },
  UNAUTHENTICATED: { status: 401, description: 'no bearer token, or an unknown or revoked one' },
  FORBIDDEN: { status: 403, description: 'the key lacks the scope the route needs (or, an admin key with a tenant allowlist, the route acts for every tenant)' },
  TENANT_FORBIDDEN: { status: 403, description: "the tenant is outside the key's allowlist" },
  NOT_FOUND: { status: 404, description: 'no such route or resource (also an attestation of a tenant the key may not see)' },
  REQUEST_TIMEOUT: { status: 408, description: "the request did not arrive within Node's request or header timeout" },
  IDEMPOTENCY_CONFLICT: { status: 409, description: 'same tenant and event_id (or Idempotency-Key of an adjustment), different content' },
  TARIFF_VERSION_EXISTS: { status: 409, description: 'the tariff version is published with other content' },
  PAYLOAD_TOO_LARGE: { status: 413, description: 'the body exceeds BODY_LIMIT_BYTES' },
  CHUNK_EXTENSIONS_TOO_LARGE: { status: 413, description: 'chunk extensions over the server limit (HTTP parser)' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'the body is not sent as application/json' },
  TENANT_UNKNOWN: { status: 422, also: [404], description: 'the tenant does not exist (404 on the routes of a tenant: /v1/admin/tenants/{tenant}/…)' },
  TARIFF_NOT_PUBLISHED: { status: 422, description: 'the tariff reference names no published version' },
  TARIFF_MISMATCH: { status: 422, description: 'an inline snapshot differs from the published version it names' },
  HEADERS_TOO_LARGE: { status: 431, description: 'request line and headers over 16 KiB (HTTP parser)' },
  HTTP_ERROR: { status: 400, description: 'an HTTP-level refusal without a more specific code' },
  INTERNAL: { status: 500, description: 'an unexpected server error (logged with the request id)' },
  STORE_UNAVAILABLE: { status: 503, description: 'the database is unreachable, overloaded or too slow; retry after Retry-After' },
  STORE_FAILED: { status: 503, description: 'the database refused to store a chain group; retry after Retry-After' },
  KEY_UNAVAILABLE: { status: 503, description: 'no private key for a signing key valid now; retry after Retry-After' },
  NOT_PROCESSED: { status: 503, description: 'a batch item was not processed; retry it' },
  NOT_READY: { status: 503, description: 'GET /ready: the process is not ready (detail and checks say why)' },
  LOG_NOT_READY: { status: 503, description: 'the log has not signed its first checkpoint yet' },
} as const satisfies Record<string, ProblemCodeInfo>;

const chargeCodes = Object.fromEntries(
  CHARGE_ERROR_CODES.map((c) => [c, { status: 422, description: "the charge engine's range and consistency checks (docs/protocol.md)" }]),
) as Record<ChargeErrorCode, ProblemCodeInfo>;

export type ProblemCode = keyof typeof SERVICE_CODES | ChargeErrorCode;

export const PROBLEM_CODES: Readonly<Record<ProblemCode, ProblemCodeInfo>> = { ...SERVICE_CODES, ...chargeCodes };
